"""Live device capture in the bedside window: sources on a worker thread, rows on the GUI thread.

Issue 13 items 1 and 4 in the window. The configured sources (the MLLP listener, a serial
oximeter, a Bluetooth LE device: Session ▸ Devices…) run on one asyncio loop in a worker thread,
never the GUI thread, so a slow or hostile sender never freezes the window. Their readings are
stored on the GUI thread, because the window's store connection belongs to it (SQLite
connections are per thread, and the model and chart must see each write as it commits):

1. a source's sink (on the worker loop) queues the readings with a
   :class:`concurrent.futures.Future` for the GUI thread, wakes it by a queued Qt signal, and
   awaits that future;
2. the GUI slot stores every message queued by then with
   :func:`kapmonitor.store.device_store.add_device_messages` in one transaction (group commit)
   and sets each future's result only after the commit (a
   :class:`~kapmonitor.store.errors.StoreError` is set as the future's exception: "not stored",
   so the listener answers ``AE`` and the monitor resends), then hands the committed
   :class:`~kapmonitor.domain.changes.Changes` to ``window.apply_device_changes``;
3. the listener sends ``AA`` only when the future completes: an acknowledged reading is on disk.

The listener's patient rule follows the window's session: set when a session opens (the
session's patient code in PID-3 by default, or the source's bed / device id), and the sources stop
when the session ends or the window closes (the thread is joined; readings posted but not yet
stored are cancelled, so they are not acknowledged and the monitor resends them). A source that
cannot start (a port in use) is said in plain words in the status bar and the indicator, never a
traceback.

Connection state (:class:`~kapmonitor.devices.connection_watch.ConnectionWatch`) is judged on the
window's clock with the session protocol's no-data limits and shown in the status bar by
:class:`~kapmonitor.ui.widgets.device_status.DeviceStatusBar`, refreshed on every clock tick.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from kapmonitor.devices.source_config import (
    SourceConfig,
    bind_problem,
    load_sources,
    session_rule,
)
from kapmonitor.domain.protocol import DEFAULT_NO_DATA_ALARM_S, DEFAULT_NO_DATA_WARNING_S
from kapmonitor.settings import DEVICE_SOURCES, LARGE_TYPE, NIGHT_MODE
from kapmonitor.store.errors import StoreError
from kapmonitor.ui.widgets.device_status import DeviceStatusBar

# The device layer (asyncio, the HL7 parser, the connection watch) is imported when a session
# with configured sources starts, not with the window: the welcome page paints without it.
if TYPE_CHECKING:
    import asyncio

    from kapmonitor.devices.connection_watch import ConnectionWatch
    from kapmonitor.devices.mllp_listener import PatientRule
    from kapmonitor.devices.reading import ConnectionState, DeviceReading
    from kapmonitor.domain.changes import Changes
    from kapmonitor.ui.bedside.session_window import SessionWindow

__all__ = ["DeviceFeed"]

log = logging.getLogger("kapmonitor.devices.feed")
STOP_TIMEOUT_S = 10.0
# WAL checkpoints are taken after the ACKs, not inside a device message's commit (see _store).
CHECKPOINT_AFTER = 16  # device transactions between two checkpoints (about 0.5k WAL pages)
CHECKPOINT_DELAY_MS = 250  # after the chart's paint, long before a 1 Hz monitor's next message


class DeviceFeed(QObject):
    """Runs the configured sources for the window's session and shows their state."""

    # worker thread -> GUI thread (queued: the receiver lives in the GUI thread)
    _arrived = Signal()  # messages are queued: store what is there (see _store)
    _link = Signal(str, str)  # device id, ConnectionState value
    _listening = Signal(str, str, int)  # source key, host, port
    _failed = Signal(str, str)  # source key, plain reason

    def __init__(self, window: SessionWindow) -> None:
        super().__init__(window)
        self.window = window
        self.indicator = DeviceStatusBar(window)
        window.statusBar().addPermanentWidget(self.indicator)
        self.watch: ConnectionWatch | None = None  # built when a session starts capturing
        self.sources: dict[str, Any] = {}  # source key -> running source object
        self.configs: dict[str, SourceConfig] = {}
        self.addresses: dict[str, tuple[str, int]] = {}  # a listener's bound address
        self.failures: dict[str, str] = {}  # source key -> why it is not running
        self.last_seen: dict[str, datetime] = {}  # source key -> last stored message (app clock)
        self.stored = 0  # readings stored since the feed started (for the status line)
        self._device_source: dict[str, str] = {}  # device id -> source key
        self._session_id: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._outstanding: set[concurrent.futures.Future[None]] = set()
        # Messages posted by the sources and not yet taken by the GUI slot (under _lock).
        self._queue: deque[tuple[list[DeviceReading], concurrent.futures.Future[None], int]] = (
            deque()
        )
        # Which session each rule generation was for. The worker loop switches rules and its
        # generation together (so a message carries the generation it was matched under), and
        # the GUI stores a message only for that generation's session: a message matched for
        # the previous session is never attached to the next one.
        self._generation = 0  # the worker loop's current one (read and written on the loop)
        self._sessions: dict[int, str] = {}
        queued = Qt.ConnectionType.QueuedConnection
        self._arrived.connect(self._store, queued)
        self._since_checkpoint = 0  # device transactions committed since the last checkpoint
        self._checkpoint_timer = QTimer(self)
        self._checkpoint_timer.setSingleShot(True)
        self._checkpoint_timer.setInterval(CHECKPOINT_DELAY_MS)
        self._checkpoint_timer.timeout.connect(self._checkpoint)
        self._link.connect(self._on_link, queued)
        self._listening.connect(self._on_listening, queued)
        self._failed.connect(self._on_failed, queued)

    # --- configuration -----------------------------------------------------------------------

    def configured(self) -> tuple[list[SourceConfig], list[str]]:
        """The sources in this laptop's settings, and a plain problem per entry dropped."""
        return load_sources(self.window.settings.get(DEVICE_SOURCES))

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the session's life ---------------------------------------------------------------------

    def session_opened(self) -> None:
        """A session is shown: capture into it while it runs (an ended one takes no readings)."""
        log_ = self.window.log
        if log_ is None or log_.phase() == "ended":
            self.stop()
            return
        protocol = log_.protocol
        warning = protocol.no_data_warning_s if protocol else DEFAULT_NO_DATA_WARNING_S
        alarm = protocol.no_data_alarm_s if protocol else DEFAULT_NO_DATA_ALARM_S
        self.start(log_.id, str(log_.session["patient_code"]), warning, alarm)

    def session_ended(self) -> None:
        self.stop()

    def restart(self) -> None:
        """The Devices dialog changed the sources: run the new list for the open session."""
        if self._session_id is not None:
            self.session_opened()
        else:
            self.refresh()

    def start(self, session_id: str, patient_code: str, warning_s: float, alarm_s: float) -> None:
        """Run every configured source for ``session_id``: the running ones when the list is
        unchanged (another session: the listener keeps its port and its monitors' connections,
        only the matching rule changes), else on a fresh worker thread."""
        configs, problems = self.configured()
        loop = self._loop
        if (
            self.running()
            and loop is not None
            and list(self.configs.values()) == configs
            and self.watch is not None
        ):
            generation = max(self._sessions) + 1
            self._sessions[generation] = session_id
            self._session_id = session_id
            rules = {
                key: session_rule(self.configs[key], patient_code)
                for key, source in self.sources.items()
                if hasattr(source, "set_rule")
            }
            try:
                loop.call_soon_threadsafe(self._switch, generation, rules)
            except RuntimeError:  # the loop just ended (its sources stopped): start afresh
                pass
            else:
                self.watch.set_limits(warning_s, alarm_s)
                self.refresh()
                return
        self.stop()
        from kapmonitor.devices.connection_watch import ConnectionWatch

        self.watch = ConnectionWatch(self.window.clock.now, warning_s, alarm_s)
        self._session_id = session_id
        self._generation = 0
        self._sessions = {0: session_id}
        self.failures = {}
        for problem in problems:
            self.failures[problem] = problem
        self.configs = {c.key: c for c in configs}
        self.sources = {c.key: self._build(c, patient_code) for c in configs}
        if self.sources:
            self._thread = threading.Thread(
                target=self._main, args=(dict(self.sources),), name="kapmonitor-devices"
            )
            self._thread.daemon = True  # a hung device never keeps the app from exiting
            self._thread.start()
        self.refresh()

    def _build(self, config: SourceConfig, patient_code: str) -> Any:
        if config.kind == "mllp":
            from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener

            return MllpListener(
                session_rule(config, patient_code),
                ListenerConfig(host=config.host, port=config.port),
                clock=self.window.clock.now,
            )
        if config.kind == "serial":
            from kapmonitor.devices.serial_source import SerialOximeterSource

            return SerialOximeterSource(config.device)
        from kapmonitor.devices.ble_source import BleSource

        return BleSource(config.device)

    def stop(self) -> None:
        """Stop every source and join the worker; safe to call when nothing runs.

        Readings posted to the GUI thread but not yet stored are cancelled first (the listener
        then closes that connection without an ACK, and the monitor resends), so the worker
        never waits for a GUI thread that is waiting for it."""
        self._session_id = None
        self._loop = None
        with self._lock:
            outstanding, self._outstanding = self._outstanding, set()
            self._queue.clear()
        for future in outstanding:
            future.cancel()
        for source in self.sources.values():
            source.stop()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():  # a source ignored its stop: said, not hidden
                log.warning("device sources did not stop within %s s", STOP_TIMEOUT_S)
        self.sources = {}
        self.addresses = {}
        self.failures = {}
        self._device_source = {}
        self.watch = None
        self.refresh()

    # --- the worker thread ----------------------------------------------------------------------

    def _main(self, sources: dict[str, Any]) -> None:
        import asyncio

        try:
            asyncio.run(self._serve(sources))
        except Exception:  # never a traceback on stderr from the worker: said, and logged
            log.exception("device capture stopped by a fault")
            self._failed.emit("devices", "device capture stopped by a fault (see the log)")

    async def _serve(self, sources: dict[str, Any]) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        tasks = []
        for key, source in sources.items():
            if hasattr(source, "set_rule"):  # the MLLP listener says where it listens
                run: Coroutine[Any, Any, None] = source.run(
                    self._sink, self._on_state, ready=lambda a, k=key: self._listening.emit(k, *a)
                )
            else:
                run = source.run(self._sink, self._on_state)
            tasks.append(asyncio.create_task(self._guard(key, run)))
        await asyncio.gather(*tasks)

    async def _guard(self, key: str, run: Coroutine[Any, Any, None]) -> None:
        """One source's run; its failure is told to the window in words and ends only it."""
        import asyncio

        config = self.configs.get(key)
        try:
            await run
        except OSError as exc:
            if config is not None and config.kind == "mllp":
                self._failed.emit(key, bind_problem(exc, config.host, config.port))
            else:
                self._failed.emit(key, f"stopped: {exc.strerror or exc}")
        except StoreError as exc:
            self._failed.emit(key, f"stopped: a reading could not be stored ({exc})")
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            log.exception("device source %s stopped by a fault", key)
            self._failed.emit(key, f"stopped by a fault ({type(exc).__name__})")

    async def _sink(self, readings: Sequence[DeviceReading]) -> None:
        """Store on the GUI thread and wait for its commit: the caller acknowledges after this."""
        import asyncio

        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            self._outstanding.add(future)
            self._queue.append((list(readings), future, self._generation))
        self._arrived.emit()
        await asyncio.wrap_future(future)

    def _switch(self, generation: int, rules: dict[str, PatientRule]) -> None:
        """On the worker loop: the new session's rules and generation, together."""
        for key, rule in rules.items():
            self.sources[key].set_rule(rule)
        self._generation = generation

    def _on_state(self, device_id: str, state: ConnectionState) -> None:
        self._link.emit(device_id, str(state))

    # --- the GUI thread -------------------------------------------------------------------------

    def _store(self) -> None:
        """Commit every message queued so far in one transaction (group commit: a gateway
        flushing its buffer, several monitors at once), then let each be acknowledged, then
        show each. A message the store refused alone gets its own exception (AE); a fault of
        the database fails them all, and none is acknowledged."""
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
            for _, future, _ in taken:
                self._outstanding.discard(future)
        # A message cancelled by stop() is not stored, not acknowledged: the monitor resends.
        running = [(r, f, g) for r, f, g in taken if f.set_running_or_notify_cancel()]
        session_id = self._session_id
        batch = []
        for readings, future, generation in running:
            if self._sessions.get(generation) == session_id:
                batch.append((readings, future))
            else:  # matched for a session no longer shown: AE, the resend is matched anew
                future.set_exception(StoreError("the session changed while it was matched"))
        if not batch:
            return
        window = self.window
        try:
            if session_id is None or window.log is None or window.log.id != session_id:
                raise StoreError("no session is open in the window to take device readings")
            results = self._add_messages(session_id, [readings for readings, _ in batch])
        except Exception as exc:  # StoreError: the database's own words; else logged
            for _, future in batch:
                future.set_exception(exc)
            if not isinstance(exc, StoreError):
                log.exception("device readings could not be stored")
            reason = str(exc) if isinstance(exc, StoreError) else "see the log"
            window.statusBar().showMessage(f"⚠ Device reading not stored: {reason}", 15000)
            return
        stored: list[Changes] = []
        for (readings, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
                window.statusBar().showMessage(f"⚠ Device reading not stored: {result}", 15000)
                continue
            future.set_result(None)  # committed: the listener may acknowledge AA now
            stored.append(result)
            self._seen(readings)
        for changes in stored:
            self.stored += len(changes.device_readings)
            window.apply_device_changes(changes)
        self.refresh()
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_AFTER and not self._checkpoint_timer.isActive():
            self._checkpoint_timer.start()

    def _add_messages(
        self, session_id: str, messages: list[list[DeviceReading]]
    ) -> list[Changes | Exception]:
        """One group commit, without SQLite's automatic WAL checkpoint inside it.

        Why: the window's connection checkpoints automatically in whichever commit takes the
        log past 1,000 pages, and a device message writes about 30 (readings, confirmation,
        score, reviews, audit, their indexes): at 1 Hz one message in about 33 waited for a
        checkpoint of 4 MB before its ``AA`` and its chart update, which was the p99 of issue
        13's MLLP → charted figure. Here the automatic checkpoint is off for the device commit
        only (typed saves keep it), and :meth:`_checkpoint` copies the log back after the ACKs
        and the chart, every :data:`CHECKPOINT_AFTER` device transactions. A checkpoint only
        copies committed pages; skipping or delaying one loses nothing."""
        from kapmonitor.store import device_store

        store = self.window.store
        (previous,) = store.db.execute("PRAGMA wal_autocheckpoint").fetchone()
        store.db.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            return device_store.add_device_messages(store, session_id, messages)
        finally:
            try:
                store.db.execute(f"PRAGMA wal_autocheckpoint = {int(previous)}")
            except sqlite3.Error:  # committed already: the ACKs must not turn into AE for it
                log.warning("could not restore the automatic WAL checkpoint", exc_info=True)

    def _checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, never waiting for readers (a
        reader holding old pages leaves the rest for the next one)."""
        try:
            self.window.store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # the store closed meanwhile, or busy: tried after the next ones
            return
        self._since_checkpoint = 0

    def _seen(self, readings: list[DeviceReading]) -> None:
        """The watch and the dialog's "last message seen" learn of a stored message."""
        now = self.window.clock.now()
        if self.watch is not None:
            self.watch.readings(readings)
        for reading in readings:
            key = self._device_source.get(reading.device_id) or self._source_of(reading)
            self.last_seen[key] = now

    def _source_of(self, reading: DeviceReading) -> str:
        """Which configured source a device's readings came in through (by kind)."""
        for key, config in self.configs.items():
            if config.kind == reading.source:
                self._device_source[reading.device_id] = key
                return key
        return reading.source

    def _on_link(self, device_id: str, state: str) -> None:
        if self._session_id is None or self.watch is None:
            return
        from kapmonitor.devices.reading import ConnectionState

        self.watch.link(device_id, ConnectionState(state))
        self.refresh()

    def _on_listening(self, key: str, host: str, port: int) -> None:
        self.addresses[key] = (host, port)
        self.failures.pop(key, None)
        self.refresh()

    def _on_failed(self, key: str, reason: str) -> None:
        config = self.configs.get(key)
        name = config.label().split(" — ")[0] if config is not None else key
        self.failures[key] = f"{name}: {reason}"
        self.window.statusBar().showMessage(f"⚠ {name} not running: {reason}", 0)
        self.refresh()

    # --- showing --------------------------------------------------------------------------------

    def lines(self) -> list[tuple[str, str]]:
        """The indicator's lines: each device heard, each source not yet heard from, each
        source that could not start."""
        statuses = self.watch.statuses() if self.watch is not None else []
        out: list[tuple[str, str]] = [(s.text(), str(s.level)) for s in statuses]
        heard = set(self._device_source.values())
        for key in self.sources:
            if key in self.failures or key in heard:
                continue
            if key in self.addresses:
                host, port = self.addresses[key]
                out.append((f"listening on {host}:{port}, no device yet", "ok"))
            elif not key.startswith("mllp"):
                out.append((f"{key}: waiting for the device", "ok"))
        out += [(f"not running — {reason}", "warning") for reason in self.failures.values()]
        return out

    def refresh(self) -> None:
        """Recompute the indicator (every clock tick: "no data" grows with time)."""
        settings = self.window.settings
        self.indicator.apply_theme(settings.get(NIGHT_MODE), settings.get(LARGE_TYPE))
        self.indicator.set_lines(self.lines())

    def last_message(self, key: str) -> datetime | None:
        """When the source's last message was stored (the app clock), for the Devices dialog."""
        return self.last_seen.get(key)

    def open_dialog(self) -> None:
        """Session ▸ Devices…: edit the sources; the running ones follow the saved list."""
        from kapmonitor.ui.forms.devices_dialog import DevicesDialog

        dialog = DevicesDialog(
            self.window.settings,
            now=self.window.clock.now,
            last_seen=self.last_message,
            listening=lambda key: self.addresses.get(key),
            parent=self.window,
        )
        self.window.active_form = dialog
        try:
            dialog.exec()
        finally:
            self.window.active_form = None
        if dialog.changed:
            self.restart()
