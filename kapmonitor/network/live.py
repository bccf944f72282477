"""The live view's listener: sessions in progress on every laptop, pushed by the server.

The server (schema version 2) raises a ``NOTIFY kap_live`` after each insert into a table that
changes a running session's state, with only ``{"laptop": …, "session": …}`` as payload (no
clinical value: any role that can connect may LISTEN). :class:`LiveListener` holds its own
psycopg connection (autocommit), LISTENs, and on each notification re-reads **only the notified
session** (its row of ``kap.live_sessions`` and the rows the schedule needs), handing a typed
:class:`LiveSession` (or "this session ended") to a callback. A full refresh every
``refresh_s`` seconds is the safety net (a notification lost while reconnecting, a session whose
next check turned overdue with nothing inserted). When the server goes away it says so through
``on_state`` and reconnects by itself, then refreshes everything (catching up what it missed).

The next check due is computed here, by the domain's own schedule
(:func:`kapmonitor.domain.schedule.compute_schedule`) over the session's current rows and the
protocol copy stored with the session, exactly as the bedside window computes it: not a copy of
the rules in SQL. Qt-free: the window wraps the callbacks in signals.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kapmonitor.domain.schedule import compute_schedule
from kapmonitor.domain.session_rows import typed_row
from kapmonitor.domain.vital_alerts import vital_readings
from kapmonitor.network.connection import CONNECT_TIMEOUT_S, NetworkError, explain, redact
from kapmonitor.store.errors import StoreError
from kapmonitor.store.session_store import SessionLog

CHANNEL = "kap_live"
REFRESH_S = 30.0  # the safety net: every session re-read this often even without a notification
RETRY_S = 2.0  # wait between reconnection attempts while the server is away
WAIT_S = 0.5  # longest wait for a notification before looking at the stop flag
# A laptop clock off from the server's (see laptop_clock_offset): within this it is taken as
# right; two sync passes must agree this closely before a clock *behind* is corrected; this
# many of the laptop's newest chain heads (one per sync pass that sent something) are read.
CLOCK_TOLERANCE_S = 60.0
CLOCK_AGREE_S = 15.0
CLOCK_PASSES = 20
# The tables the schedule and the summary read for one session (kap.sessions read apart).
SESSION_TABLES = (
    "session_protocols",
    "phase_changes",
    "doses",
    "vitals",
    "observations",
    "alarms",
    "alarm_acknowledgements",
    "session_ends",
)
_SERVER_ONLY = ("laptop_id", "local_id", "server_received_at")

Key = tuple[str, str]  # (laptop, session id)


@dataclass(frozen=True)
class NextCheck:
    """The next check the protocol asks for: due at ``due_at``, overdue from ``overdue_at``."""

    label: str
    due_at: datetime
    overdue_at: datetime
    kind: str

    def status(self, now: datetime) -> str:
        """``upcoming``, ``due`` or ``overdue`` at ``now`` (the window ticks between reads)."""
        if now < self.due_at:
            return "upcoming"
        return "due" if now < self.overdue_at else "overdue"


@dataclass(frozen=True)
class LiveSession:
    """One session in progress as the server holds it (what the laptop has synced so far)."""

    laptop: str
    session_id: str
    patient_code: str
    phase: str
    started_at: datetime
    first_dose_at: datetime | None
    last_dose_at: datetime | None
    open_alarms: int
    open_critical: int
    top_alarm: str  # the most urgent open alarm's message ("" when none)
    next_check: NextCheck | None  # None: nothing due, or no protocol stored with the session
    last_recorded_at: datetime  # the newest entry's save time, by the laptop's clock
    read_at: datetime  # when the listener read it (server time is not used: see docs)
    problem: str = ""  # rows of this session the listener could not judge (see _judge)
    # How far the laptop's clock runs ahead of the server's, in seconds (negative: behind), as
    # its sync passes show it (laptop_clock_offset); every time above is already moved onto
    # the server's clock by it. 0: the clock looks right, or cannot be told.
    clock_offset_s: float = 0.0

    @property
    def key(self) -> Key:
        return (self.laptop, self.session_id)


@dataclass(frozen=True)
class LiveUpdate:
    """What changed: with ``full`` the whole list (sessions absent from it have ended or are
    no longer visible); otherwise only ``sessions`` changed and ``ended`` are gone."""

    full: bool
    sessions: tuple[LiveSession, ...] = ()
    ended: tuple[Key, ...] = ()
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class ListenerState:
    """The connection as the window should say it: ``connected`` or not, since when the list
    is known good, and the plain reason when not."""

    connected: bool
    last_good: datetime | None
    message: str = ""


def parse_payload(text: str) -> Key | None:
    """The (laptop, session) a notification names; None for anything else (never trusted)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    laptop, session = data.get("laptop"), data.get("session")
    if isinstance(laptop, str) and isinstance(session, str) and laptop and session:
        return (laptop, session)
    return None


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    when: datetime = value
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _log_of(conn: Any, laptop: str, session_id: str, session: dict[str, Any]) -> SessionLog:
    """The session's rows on the server as the laptop's own :class:`SessionLog`, so phase,
    alarms and schedule are judged by the same code as at the bedside."""
    rows: dict[str, list[Any]] = {}
    for table in SESSION_TABLES:
        cur = conn.execute(
            f"SELECT * FROM kap.{table} WHERE laptop_id = %s AND session_id = %s ORDER BY local_id",
            [laptop, session_id],
        )
        names = [d.name for d in cur.description or ()]
        rows[table] = [
            typed_row(table, {k: v for k, v in zip(names, r, strict=True) if k not in _SERVER_ONLY})
            for r in cur.fetchall()
        ]
    return SessionLog(session, [], rows)


def _next_check(log: SessionLog, now: datetime) -> NextCheck | None:
    """The domain's schedule over the server's rows: None without a stored protocol (older
    sessions) or when nothing more is due."""
    protocol = log.protocol  # one this version cannot read raises: _judge says so
    if protocol is None:
        return None
    state = compute_schedule(
        protocol,
        log.started_at(),
        log.first_dose_at(),
        log.vitals_times(),
        now,
        log.phase(),
        log.ended_at(),
        vital_readings=vital_readings(
            log.current("vitals"), log.current("observations"), log.current("alarms")
        ),
    )
    check = state.next_check
    if check is None:
        return None
    grace = timedelta(minutes=protocol.overdue_grace_minutes)
    return NextCheck(check.label, check.due_at, check.due_at + grace, check.kind)


def _judge(
    conn: Any, laptop: str, session_id: str, session: dict[str, Any], now: datetime
) -> tuple[str, NextCheck | None, datetime | None, str]:
    """(most urgent open alarm's message, next check, newest save time, problem) of a session.

    A laptop's role may insert any text in its own rows; a row the domain cannot read (a time
    that is not one, an unknown priority) leaves this session's details out with a plain
    problem, never the listener (and every other laptop's sessions) down."""
    try:
        log = _log_of(conn, laptop, session_id, session)
        alarms = log.active_alarms()
        top = str(alarms[0]["message"] or "") if alarms else ""
        return top, _next_check(log, now), log.latest_recorded_at(), ""
    except (ValueError, TypeError, KeyError, AttributeError):
        return "", None, None, "the server holds rows of this session it cannot read"


_SUMMARY = (
    "SELECT laptop_id, session_id, patient_code, phase, started_at, first_dose_at, "
    "last_dose_at, open_alarms, open_critical FROM kap.live_sessions"
)


def laptop_clock_offset(passes: Iterable[tuple[str, Any]]) -> float:
    """Seconds a laptop's clock runs ahead of the server's (negative: behind), from its sync
    passes' ``(entry_at, server_received_at)``; 0 when it looks right or cannot be told.

    Why: the live view's times (elapsed, since dose, next check) are the laptop's recorded
    times held against the supervisor's clock. A laptop 10 minutes ahead would show a session
    just begun as not yet begun and, worse, a check overdue as "in 10 min"; 10 minutes behind,
    a session begun now as 10 minutes old. Each pass records the laptop's newest audit entry's
    time (laptop clock) and the server stamps when it received it (server clock), so
    ``entry_at - received = offset - wait``, where ``wait >= 0`` is how long that save waited for
    its pass (under a second while the window's runner reaches the server). Hence:

    - the largest difference is a *lower bound* of how far the clock is ahead: above
      :data:`CLOCK_TOLERANCE_S` it is proof (no row arrives before it was saved), and used;
    - a negative difference is either a clock behind or rows that waited (a laptop offline):
      it is used only when the two best passes agree within :data:`CLOCK_AGREE_S` (waits of
      a laptop that was offline differ from pass to pass; a clock's offset does not). Else 0:
      an offline laptop's times are left as recorded, which errs towards "due" early.
    """
    from kapmonitor.domain.clock import from_iso

    diffs: list[float] = []
    for entry_at, received in passes:
        try:
            diffs.append((from_iso(str(entry_at)) - (_aware(received) or _NEVER)).total_seconds())
        except (ValueError, TypeError, OverflowError):
            continue  # a laptop's role may write any text: such a head says nothing
    diffs.sort(reverse=True)
    if not diffs:
        return 0.0
    best = diffs[0]
    if best > CLOCK_TOLERANCE_S:
        return best
    if best < -CLOCK_TOLERANCE_S and len(diffs) >= 2 and best - diffs[1] <= CLOCK_AGREE_S:
        return best
    return 0.0


_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _clock_offset(conn: Any, laptop: str) -> float:
    """:func:`laptop_clock_offset` over the laptop's newest chain heads on the server."""
    passes = conn.execute(
        "SELECT entry_at, server_received_at FROM kap.chain_heads WHERE laptop_id = %s "
        "ORDER BY entry DESC LIMIT %s",
        [laptop, CLOCK_PASSES],
    ).fetchall()
    return laptop_clock_offset((str(a), r) for a, r in passes)


def read_sessions(
    conn: Any, keys: Iterable[Key] | None = None, now: datetime | None = None
) -> tuple[list[LiveSession], list[Key]]:
    """The sessions in progress (all of them, or only ``keys``) and, of ``keys``, those no
    longer in progress (ended, or not visible to this role)."""
    now = now or datetime.now(UTC)
    wanted = sorted(set(keys)) if keys is not None else None
    if wanted is None:
        found = conn.execute(_SUMMARY + " ORDER BY laptop_id, started_at").fetchall()
    else:
        found = []
        for laptop, session_id in wanted:
            found += conn.execute(
                _SUMMARY + " WHERE laptop_id = %s AND session_id = %s", [laptop, session_id]
            ).fetchall()
    sessions: list[LiveSession] = []
    offsets: dict[str, float] = {}
    for laptop, session_id, code, phase, started, first_dose, last_dose, n_open, n_crit in found:
        if laptop not in offsets:
            offsets[laptop] = _clock_offset(conn, laptop)
        shift = timedelta(seconds=offsets[laptop])  # the laptop's clock minus the server's

        def on_server_clock(when: datetime | None, shift: timedelta = shift) -> datetime | None:
            return when - shift if when is not None else None

        session_row = conn.execute(
            "SELECT * FROM kap.sessions WHERE laptop_id = %s AND id = %s", [laptop, session_id]
        )
        names = [d.name for d in session_row.description or ()]
        values = session_row.fetchone()
        session = dict(zip(names, values or (), strict=False))
        # the schedule runs on the laptop's clock (its rows' times), at the laptop's "now"
        top_alarm, check, last_saved, problem = _judge(
            conn, laptop, session_id, session, now + shift
        )
        if check is not None and shift:
            check = NextCheck(
                check.label, check.due_at - shift, check.overdue_at - shift, check.kind
            )
        sessions.append(
            LiveSession(
                laptop=laptop,
                session_id=session_id,
                patient_code=code or "",
                phase=phase,
                started_at=on_server_clock(_aware(started)) or now,
                first_dose_at=on_server_clock(_aware(first_dose)),
                last_dose_at=on_server_clock(_aware(last_dose)),
                open_alarms=int(n_open),
                open_critical=int(n_crit),
                top_alarm=top_alarm,
                next_check=check,
                last_recorded_at=on_server_clock(last_saved) or now,
                read_at=now,
                problem=problem,
                clock_offset_s=offsets[laptop],
            )
        )
    present = {s.key for s in sessions}
    gone = [k for k in (wanted or []) if k not in present]
    return sessions, gone


class LiveListener:
    """LISTENs on its own connection and calls ``on_update`` from its own thread.

    ``on_update`` receives a full :class:`LiveUpdate` after each (re)connection and every
    ``refresh_s``, and a partial one per batch of notifications; ``on_state`` hears each change
    of connection state. Both are called on the listener's thread: a window forwards them to
    the GUI thread (a Qt signal). ``stop()`` returns within about ``WAIT_S``.
    """

    def __init__(
        self,
        url: str,
        on_update: Callable[[LiveUpdate], None],
        on_state: Callable[[ListenerState], None] | None = None,
        refresh_s: float = REFRESH_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self.url = url
        self.on_update = on_update
        self.on_state = on_state or (lambda _state: None)
        self.refresh_s, self.retry_s = refresh_s, retry_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self._last_good: datetime | None = None
        self._connected: bool | None = None
        self.notifications = 0  # sessions re-read on a notification (for the tests)

    # --- life -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="kapmonitor-live", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def last_good(self) -> datetime | None:
        return self._last_good

    # --- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        import psycopg

        while not self._stopping.is_set():
            try:
                self._connect()
                self._listen()
            except psycopg.Error as exc:
                self._say(False, str(explain(exc, self.url)))
            except StoreError as exc:  # NetworkError from connect: already plain
                self._say(False, str(exc))
            except Exception as exc:  # a long-lived reader says why, then starts again
                # (an unforeseen fault must not leave the supervisor a list that silently
                # stopped moving: the window shows the banner and the listener starts again)
                self._say(False, f"The live view stopped reading ({type(exc).__name__}).")
            finally:
                self._close()
            self._stopping.wait(self.retry_s)

    def _connect(self) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as exc:
            raise explain(exc, self.url) from exc
        self._conn.execute(f"LISTEN {CHANNEL}")
        self._full()  # first, or back after an outage: catch up on everything missed
        self._say(True)

    def _listen(self) -> None:
        refreshed = datetime.now(UTC)
        conn = self._conn
        while not self._stopping.is_set():
            touched: set[Key] = set()
            for note in conn.notifies(timeout=WAIT_S, stop_after=1):
                key = parse_payload(note.payload)
                if key is not None:
                    touched.add(key)
            if touched:
                # drain what queued meanwhile, so a burst is read once per session
                for note in conn.notifies(timeout=0):
                    key = parse_payload(note.payload)
                    if key is not None:
                        touched.add(key)
                self.notifications += len(touched)
                sessions, ended = read_sessions(conn, touched)
                self._last_good = datetime.now(UTC)
                self.on_update(LiveUpdate(False, tuple(sessions), tuple(ended)))
            if (datetime.now(UTC) - refreshed).total_seconds() >= self.refresh_s:
                self._full()
                refreshed = datetime.now(UTC)

    def _full(self) -> None:
        sessions, _gone = read_sessions(self._conn)
        self._last_good = datetime.now(UTC)
        self.on_update(LiveUpdate(True, tuple(sessions)))

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                self._conn.close()
            self._conn = None

    def _say(self, connected: bool, message: str = "") -> None:
        if connected == self._connected and connected:
            return
        self._connected = connected
        self.on_state(ListenerState(connected, self._last_good, message))


def describe_server(url: str) -> str:
    """The server's address for a title bar or message (no password)."""
    return redact(url)


__all__ = [
    "CHANNEL",
    "ListenerState",
    "LiveListener",
    "LiveSession",
    "LiveUpdate",
    "NetworkError",
    "NextCheck",
    "describe_server",
    "laptop_clock_offset",
    "parse_payload",
    "read_sessions",
]
