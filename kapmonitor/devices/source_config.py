"""The device sources configured on this laptop, as the Devices dialog edits and the window runs.

Why a module of its own, without Qt: the dialog (which checks what is typed), the window's feed
(which builds the sources) and the settings file (which keeps them as JSON) must agree on one
shape and one set of checks. A source is one of:

- ``mllp``: the listener bedside monitors and gateways connect to: host (loopback by default:
  MLLP has no authentication) and port, and how a message is matched to the running session
  (``patient_id``: PID-3 must carry the session's patient code; ``bed`` / ``device``: PV1-3 or
  the device id must equal ``match_value``);
- ``serial``: a Nonin-style oximeter on a serial port (``/dev/ttyUSB0``, ``COM3``);
- ``ble``: a Bluetooth LE oximeter or cuff by address.

A refusal is a :class:`~kapmonitor.domain.validation.ValidationError` naming the field, in plain
words, so the dialog shows it beside the field.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from kapmonitor.domain.validation import FieldError, ValidationError

if TYPE_CHECKING:  # the listener (asyncio, the HL7 parser) loads when a source starts
    from kapmonitor.devices.mllp_listener import PatientRule

__all__ = ["KINDS", "SourceConfig", "bind_problem", "load_sources", "session_rule"]

KINDS = ("mllp", "serial", "ble")
KIND_LABELS = {"mllp": "HL7 monitor (MLLP)", "serial": "Serial oximeter", "ble": "Bluetooth LE"}
MATCH_LABELS = {
    "patient_id": "Patient code in PID-3",
    "bed": "Bed in PV1-3",
    "device": "Device id",
}
MATCH_KINDS = tuple(MATCH_LABELS)  # the listener's PatientRule kinds (a test holds them equal)
DEFAULT_PORT = 2575  # the registered HL7 MLLP port
_HOST = re.compile(r"^[A-Za-z0-9.:\-]{1,253}$")
_BLE = re.compile(r"^([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f\-]{36})$")


@dataclass(frozen=True)
class SourceConfig:
    """One configured source (only the fields of its kind matter)."""

    kind: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    match: str = "patient_id"
    match_value: str = ""
    device: str = ""  # serial port path, or BLE address

    def __post_init__(self) -> None:
        errors = self.problems()
        if errors:
            raise ValidationError(errors)

    def problems(self) -> list[FieldError]:
        """Each field refused, with why (empty: a source the feed can run)."""
        if self.kind not in KINDS:
            return [FieldError("kind", f"unknown kind of source {self.kind!r}")]
        errors: list[FieldError] = []
        if self.kind == "mllp":
            if not _HOST.match(self.host):
                errors.append(FieldError("host", "Host: an address such as 127.0.0.1"))
            # 0 is "any free port" (tests, the benchmark: the indicator says which); the dialog
            # asks for a real one, since a monitor must be told where to connect.
            if isinstance(self.port, bool) or not 0 <= int(self.port) <= 65535:
                errors.append(FieldError("port", f"Port {self.port}: use 1–65535"))
            if self.match not in MATCH_KINDS:
                errors.append(FieldError("match", f"unknown way to match {self.match!r}"))
            elif self.match != "patient_id" and not self.match_value.strip():
                what = MATCH_LABELS[self.match].lower()
                errors.append(
                    FieldError("match_value", f"Say which {what} is this laptop's patient")
                )
        elif self.kind == "serial":
            if not self.device.strip():
                errors.append(FieldError("device", "Serial port: e.g. /dev/ttyUSB0 or COM3"))
        elif not _BLE.match(self.device.strip()):
            errors.append(
                FieldError("device", "Bluetooth address: six hex pairs, e.g. 00:1C:05:AB:12:34")
            )
        return errors

    @property
    def key(self) -> str:
        """What identifies the source on this laptop (two sources never share one)."""
        if self.kind == "mllp":
            return f"mllp {self.host}:{self.port}"
        return f"{self.kind} {self.device.strip()}"

    def label(self) -> str:
        """One line for the Devices dialog's list."""
        if self.kind == "mllp":
            match = MATCH_LABELS[self.match]
            value = f" = {self.match_value}" if self.match != "patient_id" else ""
            return f"{KIND_LABELS['mllp']} on {self.host}:{self.port} — {match}{value}"
        return f"{KIND_LABELS[self.kind]} {self.device.strip()}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "port" in known:
            known["port"] = int(known["port"])
        return cls(**known)


def load_sources(raw: Iterable[Any]) -> tuple[list[SourceConfig], list[str]]:
    """The settings file's list, each entry checked: (sources, one plain problem per entry
    dropped). A damaged entry never stops the others."""
    sources: list[SourceConfig] = []
    problems: list[str] = []
    keys: set[str] = set()
    for number, item in enumerate(raw, start=1):
        try:
            if not isinstance(item, dict):
                raise ValueError("not a source")
            source = SourceConfig.from_dict(item)
        except ValidationError as exc:
            problems.append(f"device source {number}: " + "; ".join(e.message for e in exc.errors))
            continue
        except (TypeError, ValueError):
            problems.append(f"device source {number}: not a device source")
            continue
        if source.key in keys:
            problems.append(f"device source {number}: {source.key} is listed twice")
            continue
        keys.add(source.key)
        sources.append(source)
    return sources, problems


def session_rule(source: SourceConfig, patient_code: str) -> PatientRule:
    """How ``source``'s messages are matched to the session of ``patient_code``."""
    from kapmonitor.devices.mllp_listener import PatientRule

    if source.match == "patient_id":
        return PatientRule("patient_id", patient_code)
    return PatientRule(source.match, source.match_value)


def bind_problem(exc: OSError, host: str, port: int) -> str:
    """Why a listener could not listen, in plain words (no errno, no traceback)."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is already in use by another program (or another KAP Monitor)"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port} (ports below 1024 need an administrator)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"this computer has no address {host}"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
