"""``kapmonitor capture``: the device listener without a window, storing into a session.

Issue 13: for servers, tests and scripts, ``kapmonitor capture --db PATH --session ID --mllp
HOST:PORT [--serial DEV]`` runs the same MLLP listener the window runs (and the serial oximeter
source when asked) with the store as the sink: each device message is stored pending (and
confirmed automatically where the session's protocol says so) in one transaction, and only then
acknowledged ``AA``. After each commit it prints one line per row written, never a value:
``pending <vital> <id>`` for each device reading stored, ``confirmed vitals <id>`` for a vitals
row the protocol confirmed, ``alarm <priority> <id>`` for an alarm raised. It first prints
``listening HOST:PORT`` (the bound address: ``--mllp 127.0.0.1:0`` picks a free port). Ctrl-C
or SIGTERM stops it cleanly (a message being stored at that moment gets no ACK, so the device
resends it, and the database's unique key stores it once).

It lives outside :mod:`kapmonitor.devices` because it uses the store. It unlocks the database
like every other command (``KAPMONITOR_USER``/``KAPMONITOR_PASSWORD``, see
:mod:`kapmonitor.cli_keys`). SQLite is used from one writer thread only: the listener's loop
hands each message to it and waits, so the loop keeps serving other connections meanwhile;
messages arriving while a transaction commits are stored together in the next one (group
commit, :class:`StoreWriter`), each still acknowledged only after that commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kapmonitor import capture_writer
from kapmonitor.capture_writer import WriterProcess
from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.reading import DeviceReading
from kapmonitor.domain.changes import Changes
from kapmonitor.store import device_store
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore

log = logging.getLogger("kapmonitor.capture")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def report_lines(changes: Changes) -> list[str]:
    """What ``capture`` prints for one committed change: kinds and row ids, never values."""
    lines = [f"pending {row['vital']} {row.id}" for row in changes.device_readings]
    lines += [f"confirmed vitals {row.id}" for row in changes.of("vitals")]
    lines += [f"alarm {row.priority} {row.id}" for row in changes.alarms_raised]
    return lines


class StoreWriter:
    """The store as the listener's sink, with group commit: one writer thread, one transaction
    for every message that arrived while the previous transaction was committing.

    Why: each commit is an fsync of the WAL (``synchronous=FULL``), so a gateway flushing its
    buffer at one commit per message is held to the disk's fsync rate. Here each message's
    ``await sink(readings)`` queues it and waits; a single committer takes everything queued,
    stores it with :func:`~kapmonitor.store.device_store.add_device_messages` (one savepoint per
    message, ONE commit) and only after that commit returns resolves each message's wait, so the
    listener still sends ``AA`` only for readings already on disk. A message refused for itself
    raises its own error to its own wait (the listener answers it ``AE``); a failed batch (I/O,
    failed commit) raises to every message of the batch, so none of them is answered ``AA``.

    WAL checkpoints are taken off the acknowledgement path: SQLite's automatic checkpoint runs
    inside whichever commit crosses 1,000 WAL pages, and that message's ACK waited for it (the
    p99 of the 1 Hz latency). This connection turns it off and checkpoints (PASSIVE) itself on
    the writer thread right after a batch's waits are resolved when nothing else is queued, or
    inline after :attr:`FORCE_CHECKPOINT_AFTER` batches without a pause so the log stays
    bounded during a long flush. A checkpoint only copies committed pages into the database
    file; a crash during one loses nothing (the WAL is replayed on the next open).

    SQLite connections stay on their thread: everything touching ``store`` runs on ``pool``.

    By default the store is written by a process of its own (:mod:`kapmonitor.capture_writer`):
    the listener and the writer then use both cores instead of taking turns with one
    interpreter lock (issue 13's 2,000 messages/s into the store). ``in_process=True`` keeps
    the store on ``pool`` in this process (tests that reach into the store's functions).
    """

    MAX_BATCH = 512  # messages per transaction: bounds one commit's size and a batch's latency
    AHEAD = 2  # batches handed to a writer process before the oldest is answered
    AHEAD_SHARE = 2  # ... once 1/AHEAD_SHARE as many messages as the last batch sent wait
    POLL_S = 0.001  # how often the queue is looked at while the writer process works
    CHECKPOINT_AFTER = 16  # batches since the last checkpoint before an idle-time checkpoint
    FORCE_CHECKPOINT_AFTER = 4096  # batches without a pause before one is taken anyway

    def __init__(
        self,
        db_path: Path,
        session_id: str,
        on_changes: Callable[[Changes], None] | None = None,
        *,
        in_process: bool = False,
    ) -> None:
        self.session_id = session_id
        self.on_changes = on_changes
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kapmonitor-capture")
        self.store: SessionStore | None = None
        self.process: WriterProcess | None = None
        if in_process:
            self.store = self.pool.submit(capture_writer.open_store, db_path).result()
        else:
            self.process = self.pool.submit(WriterProcess, db_path, session_id).result()
        self.stored = 0
        self.batches = 0  # transactions committed (for tests and the benchmark)
        self.checkpoints = 0
        self._since_checkpoint = 0
        self._queue: list[tuple[Sequence[DeviceReading], asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._committing = 0
        self._draining = False  # a drain runs on the writer thread (see _drain)
        self._lock = threading.Lock()  # the queue is filled on the loop, taken on the writer

    def patient_code(self) -> str:
        def read() -> str:
            if self.process is not None:
                return self.process.patient_code()
            return capture_writer.patient_code(self.store, self.session_id)

        return self.pool.submit(read).result()

    @property
    def queued(self) -> int:
        """Messages waiting for the next transaction (tests, the benchmark)."""
        return len(self._queue)

    @property
    def committing(self) -> int:
        """Messages in the transaction being written now (tests, the benchmark)."""
        return self._committing

    async def sink(self, readings: Sequence[DeviceReading]) -> None:
        """Queue one message's readings and return once they are committed (raise otherwise)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._queue.append((readings, done))
            start = not self._draining
            self._draining = True
        if start:
            self._committer = asyncio.create_task(self._commit_queued())
        await asyncio.shield(done)  # a cancelled wait (stop) leaves the batch to finish

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.pool, self._drain, loop, self._take())

    def _take(self) -> list[tuple[Sequence[DeviceReading], asyncio.Future[None]]]:
        """The next transaction's messages, off the queue (what ``committing`` counts)."""
        with self._lock:
            batch = self._queue[: self.MAX_BATCH]
            del self._queue[: len(batch)]
            self._committing = len(batch)
        return batch

    def _drain(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Sequence[DeviceReading], asyncio.Future[None]]],
    ) -> None:
        if self.process is not None:
            self._drain_ahead(loop, batch, self.process)
        else:
            self._drain_here(loop, batch)

    def _drain_ahead(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Sequence[DeviceReading], asyncio.Future[None]]],
        process: WriterProcess,
    ) -> None:
        """The drain with the writer in its own process: while it writes one batch, the next
        is handed over as soon as half as many messages have queued (at most
        :attr:`AHEAD` batches in flight), so it never waits for this process between two
        transactions. Each batch is still its own transaction, answered in order, and each
        message's wait is resolved only once its batch has committed."""
        sent: deque[list[tuple[Sequence[DeviceReading], asyncio.Future[None]]]] = deque()
        try:
            while True:
                if not batch and not sent:
                    with self._lock:
                        if not self._queue:
                            self._draining = False
                            return
                    batch = self._take()
                if batch:
                    try:
                        process.send_batch([readings for readings, _ in batch])
                        sent.append(batch)
                    except Exception as exc:  # the child is gone: this batch is not stored
                        self._post(loop, batch, [exc] * len(batch))
                    batch = []
                    continue
                while len(sent) < self.AHEAD and not process.answer_ready(self.POLL_S):
                    with self._lock:
                        enough = len(self._queue) >= max(1, len(sent[-1]) // self.AHEAD_SHARE)
                    if enough:
                        batch = self._take()
                        break
                if batch:
                    continue
                oldest = sent.popleft()
                try:
                    results = self._counted(process.receive_batch())
                except Exception as exc:  # failed whole, or the child stopped
                    results = [exc] * len(oldest)
                self._committing = sum(len(b) for b in sent)
                self._post(loop, oldest, results)
                if not sent:
                    self._checkpoint_if_due()
        except BaseException:  # a fault of this loop itself: no wait may be left hanging
            for held in [*sent, batch]:
                self._post(loop, held, [_writer_fault()] * len(held))
            self._orphaned(loop)
            raise

    def _drain_here(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Sequence[DeviceReading], asyncio.Future[None]]],
    ) -> None:
        """The drain with the store in this process (``in_process``), on the writer thread:
        store what is queued, a batch at a time, until nothing is. Each batch's waits are
        resolved on the listener's loop as soon as it has committed, and the next batch is taken
        here at once rather than after a trip through that loop, which is busy reading and
        parsing the next messages."""
        try:
            while True:
                if not batch:
                    with self._lock:
                        if not self._queue:
                            self._draining = False
                            return
                    batch = self._take()
                try:
                    results = self._store_batch([readings for readings, _ in batch])
                except Exception as exc:  # the batch failed: no message of it is stored
                    results = [exc] * len(batch)
                finally:
                    self._committing = 0
                self._post(loop, batch, results)
                batch = []
                self._checkpoint_if_due()
        except BaseException:  # a fault of this loop itself: what is queued starts again
            self._orphaned(loop)
            raise

    @staticmethod
    def _post(
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Sequence[DeviceReading], asyncio.Future[None]]],
        results: Sequence[Changes | Exception],
    ) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits now
            loop.call_soon_threadsafe(StoreWriter._resolve, batch, results)

    def _checkpoint_if_due(self) -> None:
        """After a batch: at a pause once enough batches have gone by, or during a long flush
        once too many have."""
        with self._lock:
            more = bool(self._queue)
        if more:
            if self._since_checkpoint >= self.FORCE_CHECKPOINT_AFTER:
                self._checkpoint()
        elif self._since_checkpoint >= self.CHECKPOINT_AFTER:
            self._checkpoint()

    def _orphaned(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._draining = False
            orphaned = bool(self._queue)
        if orphaned:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._restart)

    def _restart(self) -> None:
        with self._lock:
            start = bool(self._queue) and not self._draining
            self._draining = self._draining or start
        if start:
            self._committer = asyncio.create_task(self._commit_queued())

    @staticmethod
    def _resolve(
        batch: list[tuple[Sequence[DeviceReading], asyncio.Future[None]]],
        results: Sequence[Changes | Exception],
    ) -> None:
        for (_readings, done), result in zip(batch, results, strict=True):
            if done.done():
                continue
            if isinstance(result, Exception):
                done.set_exception(result)
            else:
                done.set_result(None)

    def _store_batch(self, messages: list[Sequence[DeviceReading]]) -> list[Changes | Exception]:
        if self.process is not None:
            return self._counted(self.process.add_messages(messages))
        assert self.store is not None
        return self._counted(
            device_store.add_device_messages(self.store, self.session_id, messages)
        )

    def _counted(self, results: list[Changes | Exception]) -> list[Changes | Exception]:
        """A committed batch's results, counted and reported (``on_changes``)."""
        self.batches += 1
        self._since_checkpoint += 1
        for result in results:
            if isinstance(result, Changes):
                self.stored += len(result.device_readings)
                if self.on_changes is not None:
                    try:  # committed already: a failing report must not turn AA into AE
                        self.on_changes(result)
                    except Exception:
                        log.exception("capture: reporting a committed change failed")
        return results

    def _checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, never waiting for readers."""
        try:
            if self.process is not None:
                done = self.process.checkpoint()
            else:
                done = capture_writer.checkpoint(self.store)
        except StoreError:
            return  # the writer process is gone: the next one checkpoints later
        if not done:
            return  # busy: tried again after the next batches; the log only grows meanwhile
        self._since_checkpoint = 0
        self.checkpoints += 1

    def close(self) -> None:
        def close_store() -> None:
            if self.process is not None:
                self.process.close()  # the child checkpoints and closes its store
                return
            assert self.store is not None
            self._checkpoint()
            self.store.close()

        self.pool.submit(close_store).result()
        self.pool.shutdown()


def _writer_fault() -> StoreError:
    return StoreError("the device writer stopped while this message was in flight", "writer")


def _print_changes(changes: Changes) -> None:
    for line in report_lines(changes):
        _say(line)


async def _serve(writer: StoreWriter, args: argparse.Namespace, rule: PatientRule) -> int:
    host, port = args.mllp
    listener = MllpListener(rule, ListenerConfig(host=host, port=port))
    sources: list[Any] = [listener]
    if args.serial:
        from kapmonitor.devices.serial_source import SerialOximeterSource

        sources.append(SerialOximeterSource(args.serial))

    def stop() -> None:
        for source in sources:
            source.stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)

    def ready(address: tuple[str, int]) -> None:
        _say(f"listening {address[0]}:{address[1]}")

    tasks = [asyncio.create_task(listener.run(writer.sink, ready=ready))]
    tasks += [asyncio.create_task(s.run(writer.sink)) for s in sources[1:]]
    failed = 0
    for finished in asyncio.as_completed(tasks):
        try:
            await finished
        except (OSError, StoreError) as exc:
            print(f"kapmonitor: capture: {exc}", file=sys.stderr)
            failed = 1
        stop()  # one source ending (stopped or failed) ends the capture
    return failed


def run_capture(args: argparse.Namespace, db_path: Path) -> int:
    """Run until stopped; 0 after a clean stop, 1 when a source failed."""
    writer = StoreWriter(db_path, args.session, _print_changes)
    try:
        kind, value = args.match if args.match else ("patient_id", writer.patient_code())
        if args.match:
            writer.patient_code()  # the session must exist and take readings
        code = asyncio.run(_serve(writer, args, PatientRule(kind, value)))
    finally:
        writer.close()
    print(f"capture stopped: {writer.stored} readings stored", file=sys.stderr)
    return code
