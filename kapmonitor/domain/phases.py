"""Session phases as the seed describes them, in the only order they may follow."""

from __future__ import annotations

PHASES: tuple[str, ...] = ("preparation", "dosing", "monitoring", "recovery", "ended")


def next_phase(current: str) -> str | None:
    """The phase after ``current``; None once the session has ended."""
    index = PHASES.index(current)
    return PHASES[index + 1] if index + 1 < len(PHASES) else None
