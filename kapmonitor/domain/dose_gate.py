"""The gate before a dose: what the protocol requires to be on record before dosing may start.

The bedside window asks this before it opens the dose form (and offers the way through: take a
baseline, or override with a reason), the store asks it again before it commits a dose (no caller
can skip it), and the scenario runner asks it for a ``dose`` step. One function, so the three
refuse the same dose with the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kapmonitor.domain import suicidality
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.schedule import baseline_missing, baseline_missing_text
from kapmonitor.domain.session_rows import OverrideRow, StoredRow, rows_as

BASELINE_OVERRIDE = "dose_without_baseline"
BASELINE_MISSING = (
    "Dosing is blocked until a baseline vital-signs set is recorded "
    "(or a clinician overrides with a reason)"
)


@dataclass(frozen=True)
class DoseBlock:
    """One reason dosing may not start now, and the override kind that would clear it."""

    code: str
    message: str
    override: str | None = None


def has_baseline(current: Mapping[str, Sequence[StoredRow]]) -> bool:
    """A vitals set recorded before the first dose (any set, while no dose is recorded)."""
    doses = current.get("doses", ())
    first = from_iso(doses[0].observed_at) if doses else None
    return any(first is None or from_iso(v.observed_at) < first for v in current["vitals"])


def dose_blocks(
    protocol: Protocol | None, current: Mapping[str, Sequence[StoredRow]]
) -> list[DoseBlock]:
    """Every reason the next dose is held, given the session's current rows per table
    (``SessionLog.current``: ``doses``, ``vitals``, ``overrides``); empty when it may go ahead."""
    blocks: list[DoseBlock] = []
    # A positive PHQ-9 item 9 holds dosing until its alarm is acknowledged with a documented risk
    # assessment (kapmonitor.domain.suicidality), with or without a protocol; no override.
    held = suicidality.dose_hold(current)
    if held:
        blocks.append(DoseBlock("suicidality_hold", held))
    if protocol is None:
        return blocks
    overridden = {r.kind for r in rows_as(OverrideRow, current.get("overrides", ()))}
    first_dose = bool(current.get("doses"))
    # The baseline must hold every vital the protocol names (BP, HR and SpO₂ by default): an
    # SpO₂-only set is no baseline.
    missing = baseline_missing(current.get("vitals", ()), None, protocol.baseline_vitals)
    if (
        protocol.baseline_required
        and not first_dose
        and missing
        and BASELINE_OVERRIDE not in overridden
    ):
        message = BASELINE_MISSING
        if len(missing) < len(protocol.baseline_vitals):
            message += f"; the baseline lacks {baseline_missing_text(missing)}"
        blocks.append(DoseBlock("baseline_missing", message, BASELINE_OVERRIDE))
    return blocks
