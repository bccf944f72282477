"""Settings that belong to the clinic, not to one laptop: kept in the database file.

A laptop's preferences (night mode, large type) live in its settings file; a rule every user of
the clinic's file must share — today the idle lock — lives here, so changing laptops or user
profiles cannot loosen it. Only an administrator changes one; each change is a new row (the old
value stays readable as history) sealed into the audit trail, and a refusal is audited too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from sqlite_utils import Database

from kapmonitor.domain import idle_lock
from kapmonitor.domain.clock import Clock, to_iso
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store import audit
from kapmonitor.store.accounts import Accounts, User
from kapmonitor.store.database import explain

IDLE_LOCK_KEY = "idle_lock_minutes"
AUTOMATIC = None  # the stored JSON null: the running protocol decides


class ClinicSettings:
    """Read and change the clinic's settings on one open database."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _latest(self, key: str) -> tuple[bool, object]:
        """(found, value) of the newest row for ``key``."""
        try:
            row = self.db.execute(
                "SELECT value FROM clinic_settings WHERE key = ? ORDER BY id DESC LIMIT 1", [key]
            ).fetchone()
        except sqlite3.Error as exc:
            raise explain(exc, self._path()) from exc
        return (False, None) if row is None else (True, json.loads(row[0]))

    def idle_lock_minutes(self) -> int | None:
        """The administrator's idle lock in minutes (0 = never), or None for automatic."""
        found, value = self._latest(IDLE_LOCK_KEY)
        if not found or value is None:
            return AUTOMATIC
        try:
            return max(0, int(value))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return AUTOMATIC  # a value this version cannot read: the safe default

    def set_idle_lock_minutes(
        self, by: User, minutes: int | None, protocols: Iterable[Protocol]
    ) -> None:
        """Store the idle lock (None = automatic), refusing a value the protocols undercut."""
        Accounts(self.db, self.clock).require(
            by, "administrator", action="change the clinic's idle lock"
        )
        reason = idle_lock.refusal(minutes, protocols)
        if reason is not None:
            raise ValidationError(FieldError("idle_lock", reason))
        now = self.clock.now()
        try:
            with self.db.atomic():
                self.db.execute(
                    "INSERT INTO clinic_settings (key, value, observed_at, recorded_at, "
                    "recorded_by) VALUES (?, ?, ?, ?, ?)",
                    [IDLE_LOCK_KEY, json.dumps(minutes), to_iso(now), to_iso(now), by.username],
                )
                audit.seal(self.db, by.username, "clinic_setting_changed", now)
        except sqlite3.Error as exc:
            raise explain(exc, self._path()) from exc

    def _path(self) -> str:
        """The database file's name, for a plain error message."""
        try:
            return str(self.db.execute("PRAGMA database_list").fetchone()[2])
        except (sqlite3.Error, TypeError, IndexError):
            return "the database"
