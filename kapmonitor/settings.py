"""Per-laptop preferences, each declared once with its type, default and description.

Stored as JSON in the platformdirs user config folder. Clinical numbers do not live here (they
belong to protocol and reference files); these are how the window looks and behaves on this laptop.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from kapmonitor.paths import user_config_dir

T = TypeVar("T")
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class ConfigVar(Generic[T]):
    key: str
    type: type
    default: T
    description: str

    def coerce(self, raw: Any) -> T:
        if self.type is bool:
            return bool(raw)  # type: ignore[return-value]
        return self.type(raw)  # type: ignore[no-any-return]


NIGHT_MODE = ConfigVar("night_mode", bool, False, "Dark, low-glare theme for a dim room")
LARGE_TYPE = ConfigVar(
    "large_type", bool, False, "Larger type everywhere, for reading from two metres"
)
CLOCK_TICK_MS = ConfigVar(
    "clock_tick_ms", int, 1000, "How often the session clocks refresh, in milliseconds"
)
# A new key, so a laptop where the old optional sound was once switched off starts with the
# critical sound on: turning it off now needs a reason, recorded in the audit trail.
ALARM_SOUND = ConfigVar(
    "critical_alarm_sound",
    bool,
    True,
    "A gentle system beep when a critical alarm is raised or a critical re-check turns overdue "
    "(visual first; on by default, and turning it off asks for a reason that is audited)",
)
WARNING_SOUND = ConfigVar(
    "warning_sound",
    bool,
    False,
    "Also a gentle beep for warnings and whenever a routine check turns overdue (optional)",
)
DEFAULT_PROTOCOL = ConfigVar(
    "default_protocol", str, "clinic-ketamine", "Protocol preselected when a session starts"
)
# The idle lock is not a laptop preference: it is the clinic's rule, kept in the database
# (kapmonitor.store.clinic_settings) so every laptop and user profile shares it.
BACKUP_INTERVAL_MINUTES = ConfigVar(
    "backup_interval_minutes",
    int,
    15,
    "While a session is recorded, back up the database this often (0 = only at session end)",
)
BACKUP_KEEP = ConfigVar(
    "backup_keep", int, 20, "How many backups to keep beside the database (oldest removed)"
)
# A second place the clinic chooses (another folder, a removable medium), where the audit chain's
# head is appended at each backup and export (kapmonitor.store.anchors); empty = no anchor log.
ANCHOR_LOG_FOLDER = ConfigVar(
    "anchor_log_folder",
    str,
    "",
    "A folder outside the database's own (another disk, a USB stick) where the audit chain's "
    "head is logged at each backup and export, so a cut or rolled-back file can be told "
    "(kapmonitor verify --anchors); empty: no anchor log",
)
TREATMENT_SETTING = ConfigVar(
    "treatment_setting",
    str,
    "",
    "The treatment setting the REMS Patient Monitoring Form asks for (e.g. the clinic's name "
    "and address); filled into every REMS summary from this laptop",
)

# The clinic's central archive (issue 14): where this laptop syncs, WITHOUT the password (the
# laptop role's password is sealed beside the database: kapmonitor.network.background).
SYNC_SERVER = ConfigVar(
    "clinic_server",
    str,
    "",
    "The clinic server's address this laptop sends its records to (postgresql://role@host/db, "
    "no password); set in Session ▸ Clinic server…; empty: the window does not sync",
)
SYNC_INTERVAL_SECONDS = ConfigVar(
    "clinic_sync_interval_seconds",
    int,
    30,
    "Besides after every save, try a sync this often (seconds) while the window is open",
)

# The device sources this laptop listens to (kapmonitor.devices.source_config.SourceConfig as
# dicts), edited in Session ▸ Devices…; none by default: nothing listens until a clinic adds one.
DEVICE_SOURCES = ConfigVar(
    "device_sources",
    tuple,
    (),
    "Bedside monitors and oximeters this laptop captures from during a session (MLLP listener "
    "host and port with its patient matching, serial port, Bluetooth address)",
)


class Settings:
    """Reads and writes the settings file; a damaged file falls back to defaults, never crashes."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or user_config_dir()) / SETTINGS_FILE
        self._values: dict[str, Any] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self._values = data
        except (OSError, ValueError):
            self._values = {}

    def get(self, var: ConfigVar[T]) -> T:
        if var.key not in self._values:
            return var.default
        try:
            return var.coerce(self._values[var.key])
        except (TypeError, ValueError):
            return var.default

    def set(self, var: ConfigVar[T], value: T) -> None:
        self._values[var.key] = var.coerce(value)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._values, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a preference that cannot be saved is not worth interrupting a session for
