"""``kapmonitor sync status``: what waits on this laptop, when the server last took rows, the lag.

Read from the laptop alone (its database and its sync state), so it answers with the server
down, which is when it is asked. "Pending" counts the rows past the marks the server last
acknowledged; a pass resumes from the server's own marks, so after a pass that failed between the
server's commit and the laptop's saving of the marks it can over-count, never under-count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kapmonitor.domain.clock import from_iso
from kapmonitor.network import server_schema, state
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.key_slots import DatabaseKeys


@dataclass(frozen=True)
class SyncStatus:
    pending: dict[str, int]  # rows not yet acknowledged, per table (tables with none left out)
    oldest_pending: str  # recorded_at of the oldest waiting row ("" when none or unknown)
    last_success: str
    last_error: str
    server: str
    laptop_id: str

    @property
    def total(self) -> int:
        return sum(self.pending.values())

    def lag_seconds(self, now: datetime | None = None) -> float | None:
        """How long the oldest waiting row has waited (0 with nothing waiting; None unknown)."""
        if not self.pending:
            return 0.0
        if not self.oldest_pending:
            return None
        return ((now or datetime.now(UTC)) - from_iso(self.oldest_pending)).total_seconds()

    def lines(self, now: datetime | None = None) -> list[str]:
        where = f"{self.server} as laptop {self.laptop_id}" if self.server else "no server yet"
        lines = [f"Server: {where}"]
        lines.append(f"Last success: {self.last_success or 'never'}")
        if self.last_error:
            lines.append(f"Last attempt failed: {self.last_error}")
        if not self.pending:
            lines.append("Pending: nothing; every row is on the server.")
            return lines
        lines.append(f"Pending: {self.total} row(s)")
        lines += [f"  {table}: {n}" for table, n in self.pending.items()]
        lag = self.lag_seconds(now)
        if lag is not None:
            lines.append(f"Lag: the oldest waiting row was recorded {_duration(lag)} ago")
        return lines


def _duration(seconds: float) -> str:
    minutes = int(max(seconds, 0) // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


def sync_status(db_path: Path | str, keys: DatabaseKeys | None = None) -> SyncStatus:
    saved = state.load(db_path)
    db = connect_readonly(db_path, keys)
    try:
        pending: dict[str, int] = {}
        oldest = ""
        for table in server_schema.sent_tables(db):
            mark = saved.acked.get(table, 0)
            count = db.execute(
                f"SELECT count(*) FROM main.[{table}] WHERE rowid > ?", [mark]
            ).fetchone()[0]
            if not count:
                continue
            pending[table] = int(count)
            columns = {c[1] for c in db.execute(f"PRAGMA table_info([{table}])").fetchall()}
            if "recorded_at" in columns:
                first = db.execute(
                    f"SELECT min(recorded_at) FROM main.[{table}] WHERE rowid > ?", [mark]
                ).fetchone()[0]
                if first and (not oldest or first < oldest):
                    oldest = str(first)
    finally:
        db.close()
    return SyncStatus(
        pending, oldest, saved.last_success, saved.last_error, saved.server, saved.laptop_id
    )
