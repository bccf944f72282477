"""Push a laptop's committed rows to the central archive: in order, in batches, idempotently.

One pass (:func:`sync_once`):

1. opens the laptop's database with a read connection of its own (encrypted, ``query_only``)
   and reads everything in one snapshot, so the rows pushed and the chain head recorded agree;
2. asks the server who this laptop is (its role, :func:`kap.my_laptop`), and holds the file
   against the newest chain head the server recorded for it: a file rolled back, rewritten or
   replaced is refused (:mod:`witness`) before anything is sent;
3. resumes from the server's own high-water marks (the highest ``local_id`` it holds per table):
   the server's commit *is* the acknowledgement, so a connection cut after the server committed
   and before the laptop heard of it costs nothing; a batch that is nevertheless sent twice (two
   passes at once, a saved mark behind the server) is stored once (``ON CONFLICT DO NOTHING``
   on ``(laptop_id, local_id)``);
4. sends rows table by table in creation order (sessions before their rows), each table in rowid
   order, at most ``batch_rows`` per transaction; a batch commits whole or not at all, so the
   server's mark for a table never passes a row it lacks;
5. records the laptop's chain head with the last batch, and saves the marks
   (:mod:`state`) after every batch for ``sync status``;
6. then brings back the supervisors' rows written at the centre about this laptop's sessions
   (:mod:`review_return`: checked against the laptop's own rows, stored once).

Any failure leaves the laptop's rows where they were: the next pass carries on. Nothing here
waits on the GUI thread: :class:`SyncRunner` runs passes on a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kapmonitor.domain.clock import to_iso
from kapmonitor.network import review_return, server_schema, state, witness
from kapmonitor.network.connection import NetworkError, connect, explain
from kapmonitor.store import anchors
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import DatabaseKeys

BATCH_ROWS = 500


@dataclass
class Hooks:
    """Test seams (the fault tests): called with the batch number around each commit."""

    before_commit: Callable[[int], None] | None = None
    after_commit: Callable[[int], None] | None = None
    after_marks: Callable[[], None] | None = None


@dataclass
class SyncResult:
    laptop_id: str
    sent: dict[str, int] = field(default_factory=dict)  # rows sent per table (new or replayed)
    stored: int = 0  # rows the server stored (a replayed row is not stored twice)
    batches: int = 0
    head_entry: int = 0
    reviews_received: int = 0  # central review rows stored on the laptop (review_return)

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())


def without_password(url: str) -> str:
    """The address to save: the password (if any) is left to libpq's ~/.pgpass or PGPASSWORD."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}"))


def _now() -> str:
    return to_iso(datetime.now(UTC))


def sync_once(
    db_path: Path | str,
    url: str,
    keys: DatabaseKeys | None = None,
    batch_rows: int = BATCH_ROWS,
    hooks: Hooks | None = None,
) -> SyncResult:
    """One sync pass; raises :class:`NetworkError` (or :class:`StoreError`) in plain words,
    after saving the failure in the laptop's sync state."""
    saved = state.load(db_path)
    saved.server = without_password(url)
    saved.last_attempt = _now()
    try:
        result = _pass(Path(db_path), url, keys, max(1, batch_rows), hooks or Hooks(), saved)
        # After the push: supervisors' review rows written at the centre come back here.
        result.reviews_received = review_return.pull(db_path, url, keys).stored
    except StoreError as exc:
        saved.last_error = str(exc)
        state.save(db_path, saved)
        raise
    saved.last_error = ""
    saved.last_success = _now()
    saved.rows_sent = result.sent_total
    state.save(db_path, saved)
    return result


def _pass(
    db_path: Path, url: str, keys: DatabaseKeys | None, batch_rows: int, hooks: Hooks, saved: Any
) -> SyncResult:
    import psycopg

    local = connect_readonly(db_path, keys)
    try:
        local.execute("BEGIN")  # one snapshot: the rows sent and the head recorded agree
        identity = anchors.identity(local)
        macs = dict(local.execute("SELECT id, hash FROM audit").fetchall())
        head = local.execute("SELECT id, hash, at FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        tables = server_schema.sent_tables(local)
        pg = connect(url)
        try:
            return _send(local, pg, db_path, identity, macs, head, tables, batch_rows, hooks, saved)
        except psycopg.Error as exc:
            raise explain(exc, url) from exc
        finally:
            pg.close()
    finally:
        local.close()


def _send(
    local: Any,
    pg: Any,
    db_path: Path,
    identity: str,
    macs: dict[int, str],
    head: Any,
    tables: list[str],
    batch_rows: int,
    hooks: Hooks,
    saved: state.SyncState,
) -> SyncResult:
    laptop_id = pg.execute("SELECT kap.my_laptop()").fetchone()[0]
    if laptop_id is None:
        raise NetworkError(
            "This server role is not registered as a laptop (kapmonitor server add-laptop "
            "makes one); nothing was sent.",
            "not-a-laptop",
        )
    saved.laptop_id, saved.database_identity = laptop_id, identity
    heads = [
        witness.Head(laptop_id, str(i), int(e), str(m), str(r))
        for i, e, m, r in pg.execute(
            "SELECT database_identity, entry, mac, server_received_at FROM kap.chain_heads "
            "ORDER BY entry DESC LIMIT 1"
        ).fetchall()
    ]
    problems = witness.disagreements(identity, macs, heads, laptop_id)
    if problems:
        raise NetworkError(
            f"Sync refused: {problems[0]}. Nothing was sent: rows from this file would reuse "
            "row numbers the server already holds. Ask the clinic's administrator (kapmonitor "
            "verify --server names what differs).",
            "diverged",
        )
    marks = _server_marks(pg, tables)
    pg.commit()
    if hooks.after_marks:
        hooks.after_marks()
    result = SyncResult(laptop_id)
    batch: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
    count = 0

    def flush(final: bool) -> None:
        nonlocal batch, count
        result.batches += 1
        with pg.transaction():
            for table, columns, rows in batch:
                names = ", ".join(["local_id", *columns])
                holes = ", ".join(["%s"] * (len(columns) + 1))
                with pg.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO kap.{table} ({names}) VALUES ({holes}) "
                        "ON CONFLICT (laptop_id, local_id) DO NOTHING",
                        rows,
                    )
                    result.stored += max(cur.rowcount, 0)
            if final and head is not None:
                pg.execute(
                    "INSERT INTO kap.chain_heads (database_identity, entry, mac, entry_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (laptop_id, entry) DO NOTHING",
                    [identity, int(head[0]), str(head[1]), str(head[2])],
                )
                result.head_entry = int(head[0])
            if hooks.before_commit:
                hooks.before_commit(result.batches)
        if hooks.after_commit:
            hooks.after_commit(result.batches)
        for table, _columns, rows in batch:
            saved.acked[table] = int(rows[-1][0])
            result.sent[table] = result.sent.get(table, 0) + len(rows)
        state.save(db_path, saved)
        batch, count = [], 0

    for table in tables:
        columns = [name for name, _kind in server_schema.laptop_columns(local, table)]
        mark = marks.get(table, 0)
        saved.acked.setdefault(table, mark)
        listed = ", ".join(f"[{c}]" for c in columns)
        while True:
            room = batch_rows - count
            rows = local.execute(
                f"SELECT rowid, {listed} FROM main.[{table}] WHERE rowid > ? ORDER BY rowid "
                "LIMIT ?",
                [mark, room],
            ).fetchall()
            if rows:
                batch.append((table, columns, [tuple(r) for r in rows]))
                count += len(rows)
                mark = int(rows[-1][0])
            if count >= batch_rows:
                flush(final=False)
            if len(rows) < room:
                break
        if not batch:
            saved.acked[table] = max(saved.acked.get(table, 0), mark)
    flush(final=True)  # the last rows (maybe none) and the chain head, together
    return result


def _server_marks(pg: Any, tables: list[str]) -> dict[str, int]:
    """The highest local id the server holds of this laptop, per table (its own rows only)."""
    union = " UNION ALL ".join(f"SELECT '{t}', (SELECT max(local_id) FROM kap.{t})" for t in tables)
    return {str(t): int(m or 0) for t, m in pg.execute(union).fetchall()}


@dataclass(frozen=True)
class RunnerStatus:
    """A snapshot for the window's panel (a later step) or a log line."""

    running: bool
    last_success: str
    last_error: str
    last_sent: int


class SyncRunner:
    """Runs sync passes on a worker thread of its own, never the GUI thread.

    ``request()`` asks for a pass now (e.g. after a commit); otherwise one runs every
    ``interval_s``. Passes never overlap (one lock), failures are kept as plain text in
    :meth:`status`, and ``stop()`` waits for a pass in progress to end.
    """

    def __init__(
        self,
        db_path: Path | str,
        url: str,
        keys: DatabaseKeys | None = None,
        interval_s: float = 30.0,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.db_path, self.url, self.keys = Path(db_path), url, keys
        self.interval_s, self.batch_rows = interval_s, batch_rows
        self._lock = threading.Lock()
        self._pass_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._last_success = ""
        self._last_error = ""
        self._last_sent = 0

    def run_once(self) -> SyncResult | None:
        """One pass now, on the calling thread; None when it failed (see :meth:`status`)."""
        with self._pass_lock:
            with self._lock:
                self._running = True
            try:
                result = sync_once(self.db_path, self.url, self.keys, self.batch_rows)
            except StoreError as exc:
                with self._lock:
                    self._last_error = str(exc)
                return None
            finally:
                with self._lock:
                    self._running = False
            with self._lock:
                self._last_success, self._last_error = _now(), ""
                self._last_sent = result.sent_total
            return result

    def status(self) -> RunnerStatus:
        with self._lock:
            return RunnerStatus(
                self._running, self._last_success, self._last_error, self._last_sent
            )

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="kapmonitor-sync", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            self._wake.wait(self.interval_s)
            self._wake.clear()
