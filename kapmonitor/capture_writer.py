"""The device writer in a process of its own: ``kapmonitor capture``'s store, beside its listener.

Issue 13's throughput into the real store. On the clinic's two-core laptops the listener (framing,
parsing, matching, ACKs) and the writer (the rows, the protocol's confirmations and alarms, the
audit seal) shared one interpreter lock, and each waited for the other: about 1,300 messages/s
however the writer was tuned. With the writer in its own process the two run on their own cores,
and the listener still answers ``AA`` only after the writer says the transaction committed.

The parent (:class:`WriterProcess`, used from :class:`~kapmonitor.capture.StoreWriter`'s one
writer thread) starts this same program (``kapmonitor _device-writer``, the frozen executable
itself or ``python -m kapmonitor``) and talks to it over its standard input and output, one
request and one answer at a time, each a length-prefixed pickle:

- first the database's path, the session and the keys this process unlocked it with (through
  the pipe, never the command line or the environment, where other users could read them);
  the child opens the store and answers ``ok`` or the reason it could not;
- then ``batch``: messages stored with :func:`~kapmonitor.store.device_store.add_device_messages`
  in one transaction; the answer comes after the commit, one result per message (the rows it
  wrote, or why it was refused); ``checkpoint``; ``patient_code``; ``close``.

What it does not cover: the pickles are trusted, because only the parent that started the child
holds the other end of its pipes. A child that dies (killed, out of memory) fails the batch it
held: none of its messages is answered ``AA``, the monitor resends them, and the next batch
starts a new child. A parent that dies closes the child's input, and the child exits after the
transaction it is in (committed or not; nothing committed without an ``AA`` is lost, since a
resend is stored once).
"""

from __future__ import annotations

import contextlib
import operator
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from kapmonitor.devices.reading import DeviceReading
from kapmonitor.domain.changes import Changes
from kapmonitor.store.errors import StoreError

__all__ = [
    "WRITER_COMMAND",
    "WriterProcess",
    "checkpoint",
    "open_store",
    "patient_code",
    "run_writer_child",
]

WRITER_COMMAND = "_device-writer"  # the hidden sub-command the child runs as
_LENGTH = struct.Struct(">I")
_MAX_FRAME = 256 * 1024 * 1024  # a batch of 512 messages is well under a megabyte

# A row as it crosses the pipe: its table, its column names and its values.
WireRow = tuple[str, tuple[str, ...], tuple[Any, ...]]


def _write_frame(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:  # an unbuffered pipe may take part of it
        written = stream.write(view)
        view = view[written if written is not None else 0 :]
    stream.flush()


def _read_frame(stream: IO[bytes]) -> Any:
    """The next value, or raise EOFError when the other end has gone."""
    head = _read_exactly(stream, _LENGTH.size)
    (length,) = _LENGTH.unpack(head)
    if length > _MAX_FRAME:
        raise EOFError(f"a frame of {length} bytes: the channel is out of step")
    return pickle.loads(_read_exactly(stream, length))


def _read_exactly(stream: IO[bytes], count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            raise EOFError("the other end closed the channel")
        data += chunk
    return bytes(data)


def child_command() -> list[str]:
    """How to start this program as the writer: the frozen executable runs its own CLI."""
    if getattr(sys, "frozen", False):
        return [sys.executable, WRITER_COMMAND]
    return [sys.executable, "-m", "kapmonitor", WRITER_COMMAND]


class WriterProcess:
    """The parent's end: start the child, send it requests, hand back its answers.

    Not thread-safe: one thread talks to it (``StoreWriter``'s writer thread). A child that
    has gone is said as a :class:`StoreError` for the request it held, and started anew for
    the next one."""

    def __init__(self, db_path: Path, session_id: str) -> None:
        self.db_path = Path(db_path)
        self.session_id = session_id
        self.starts = 0  # children started (tests: a dead child is replaced)
        self._child: subprocess.Popen[bytes] | None = None
        self._in_flight = 0  # batches sent and not yet answered
        self._start()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def _start(self) -> None:
        from kapmonitor.store import encryption

        keys = encryption.unlocked_keys(self.db_path)
        child = subprocess.Popen(
            child_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: ``answer_ready`` asks the pipe itself
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._child = child
        self._in_flight = 0
        self.starts += 1
        opening = {
            "path": str(self.db_path),
            "session_id": self.session_id,
            "keys": keys.payload() if keys is not None else None,
            "encrypted": keys.encrypted if keys is not None else False,
        }
        try:
            self._answer(("open", opening))
        except StoreError:
            self._stop_child()
            raise

    def _answer(self, request: tuple[Any, ...]) -> Any:
        """Send one request and wait for its answer (nothing else may be in flight)."""
        if self._in_flight:
            raise RuntimeError("a batch is still in flight: receive its answer first")
        self._send(request)
        return self._receive()

    def _send(self, request: tuple[Any, ...]) -> None:
        child = self._child
        if child is None or (self._in_flight == 0 and child.poll() is not None):
            if self._in_flight:
                raise _stopped()  # the child that held the earlier batches is gone
            self._child = None
            self._start()
            child = self._child
        assert child is not None and child.stdin is not None
        try:
            _write_frame(child.stdin, request)
        except OSError as exc:
            self._stop_child()
            raise _stopped() from exc
        self._in_flight += 1

    def _receive(self) -> Any:
        """The answer to the oldest request in flight."""
        child = self._child
        self._in_flight -= 1
        if child is None or child.stdout is None:
            raise _stopped()
        try:
            answer = _read_frame(child.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._stop_child()
            raise _stopped() from exc
        if answer[0] == "error":
            raise StoreError(answer[1], answer[2])
        return answer[1]

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def send_batch(self, messages: Sequence[Sequence[DeviceReading]]) -> None:
        """Hand ``messages`` to the child for one transaction, without waiting: the child takes
        the next batch the moment it has committed this one (its input is read as it comes).
        Answers come back in the order the batches were sent (:meth:`receive_batch`)."""
        self._send(("batch", [list(m) for m in messages]))

    def answer_ready(self, timeout: float) -> bool:
        """Whether the oldest batch's answer can be read now (or the child has gone)."""
        child = self._child
        if child is None or child.stdout is None:
            return True
        readable, _, _ = select.select([child.stdout], [], [], timeout)
        return bool(readable)

    def add_messages(
        self, messages: Sequence[Sequence[DeviceReading]]
    ) -> list[Changes | Exception]:
        """Store ``messages`` in one transaction in the child; after its commit, one result per
        message: the rows it wrote as a :class:`Changes`, or the error that refused it alone."""
        self.send_batch(messages)
        return self.receive_batch()

    def receive_batch(self) -> list[Changes | Exception]:
        """The oldest batch's results, once the child has committed it (raise if it failed
        whole, or the child stopped: none of its messages is stored or to be acknowledged)."""
        from kapmonitor.store.inserts import reader

        answers = self._receive()
        results: list[Changes | Exception] = []
        for answer in answers:
            if answer[0] == "refused":
                results.append(StoreError(answer[1], "refused"))
                continue
            _kind, action, rows = answer
            typed = tuple((table, reader(table, names)(values)) for table, names, values in rows)
            results.append(Changes(self.session_id, action, typed))
        return results

    def checkpoint(self) -> bool:
        return bool(self._answer(("checkpoint",)))

    def patient_code(self) -> str:
        return str(self._answer(("patient_code",)))

    def close(self) -> None:
        """Collect what is still in flight (committed or not, nobody waits for it now), then
        let the child checkpoint, close its store and exit."""
        child = self._child
        if child is None:
            return
        while self._in_flight:
            with contextlib.suppress(StoreError):
                self._receive()
        if self._child is not None and child.poll() is None:
            with contextlib.suppress(StoreError):
                self._answer(("close",))
        self._stop_child()

    def _stop_child(self) -> None:
        """Close the child's pipes and wait for it; batches still in flight are lost with it
        (each :meth:`receive_batch` for them says so)."""
        child, self._child = self._child, None
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _stopped() -> StoreError:
    return StoreError(
        "The device writer process stopped before it answered; nothing it was writing is "
        "acknowledged, and the monitor resends it.",
        "writer",
    )


# --- the child -----------------------------------------------------------------------------


def run_writer_child() -> int:
    """``kapmonitor _device-writer``: serve the parent on standard input and output until it
    closes them. Anything printed by mistake goes to standard error, never into the channel."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which closes us
    channel_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    channel_in = sys.stdin.buffer
    return _serve(channel_in, channel_out)


def _reading_ahead(channel_in: IO[bytes]) -> queue.SimpleQueue[Any]:
    """Requests read on a thread of their own as they come, so the parent's next batch never
    waits on a full pipe while this process writes an answer (a deadlock with large batches
    otherwise) and is here the moment the transaction before it commits. EOF is queued."""
    requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                requests.put(_read_frame(channel_in))
            except (EOFError, OSError, pickle.UnpicklingError):
                requests.put(EOFError)
                return

    threading.Thread(target=read, name="kapmonitor-writer-input", daemon=True).start()
    return requests


def _serve(channel_in: IO[bytes], channel_out: IO[bytes]) -> int:
    from kapmonitor.domain.validation import ValidationError

    store = None
    session_id = ""
    requests = _reading_ahead(channel_in)
    try:
        while True:
            request = requests.get()
            if request is EOFError:
                return 0  # the parent has gone (or closed us): nothing more to do
            try:
                if request[0] == "open":
                    store, session_id = _open(request[1])
                    answer: Any = None
                elif store is None:
                    raise StoreError("the device writer has no database open", "writer")
                elif request[0] == "batch":
                    answer = _store_batch(store, session_id, request[1])
                elif request[0] == "checkpoint":
                    answer = checkpoint(store)
                elif request[0] == "patient_code":
                    answer = patient_code(store, session_id)
                elif request[0] == "close":
                    _write_frame(channel_out, ("ok", None))
                    return 0
                else:
                    raise StoreError(f"unknown request {request[0]!r}", "writer")
            except StoreError as exc:
                _write_frame(channel_out, ("error", str(exc), exc.kind))
                continue
            except ValidationError as exc:  # a refusal in the store's own words
                _write_frame(channel_out, ("error", str(exc), "refused"))
                continue
            except Exception as exc:  # said in plain words to the parent, never a traceback
                _write_frame(channel_out, ("error", _plain(exc), "writer"))
                continue
            _write_frame(channel_out, ("ok", answer))
    finally:
        if store is not None:
            _close(store)


def _plain(exc: BaseException) -> str:
    return f"The device writer could not do that ({type(exc).__name__})."


def _open(opening: dict[str, Any]) -> tuple[Any, str]:
    from kapmonitor.store import encryption
    from kapmonitor.store.key_slots import DatabaseKeys

    path = Path(opening["path"])
    keys = None
    if opening["keys"] is not None:
        keys = DatabaseKeys.from_payload(opening["keys"])
        if not opening["encrypted"]:
            keys = DatabaseKeys(keys.master, False, keys.root)
        encryption.remember(path, keys)
    return open_store(path, keys), str(opening["session_id"])


def open_store(path: Path, keys: Any = None) -> Any:
    """The store as capture writes it (here or in the child): no automatic WAL checkpoint, so
    none runs inside a message's commit; the writer asks for one after the ACKs instead."""
    from kapmonitor.store.session_store import SessionStore

    store = SessionStore.open(path, keys=keys)
    store.db.execute("PRAGMA wal_autocheckpoint = 0")
    return store


def _store_batch(
    store: Any, session_id: str, messages: list[list[DeviceReading]]
) -> list[tuple[Any, ...]]:
    from kapmonitor.domain.validation import ValidationError
    from kapmonitor.store import device_store

    answers: list[tuple[Any, ...]] = []
    for result in device_store.add_device_messages(store, session_id, messages):
        if isinstance(result, Exception):
            plain = isinstance(result, StoreError | ValidationError)
            text = str(result) if plain else type(result).__name__
            answers.append(("refused", text))
            continue
        rows = [_wire(table, row) for table, row in result.rows]
        answers.append(("changes", result.action, rows))
    return answers


def _wire(table: str, row: Any) -> WireRow:
    """A stored row as plain values (its declared columns, then any a newer schema added): the
    typed row is rebuilt on the other side with the same maker (``inserts.reader``)."""
    names, values_of = _declared(type(row))
    values = values_of(row)
    if row.extra:
        return table, (*names, *row.extra), (*values, *row.extra.values())
    return table, names, values


_DECLARED: dict[type, tuple[tuple[str, ...], Any]] = {}


def _declared(row_type: type) -> tuple[tuple[str, ...], Any]:
    """A row type's declared columns, and a reader of their values as one tuple."""
    found = _DECLARED.get(row_type)
    if found is None:
        names = tuple(row_type._columns())  # type: ignore[attr-defined]
        getter = operator.attrgetter(*names)
        found = _DECLARED[row_type] = (names, getter if len(names) > 1 else _one(getter))
    return found


def _one(getter: Any) -> Any:
    return lambda row: (getter(row),)


def checkpoint(store: Any) -> bool:
    """Copy committed WAL pages into the database file, never waiting for readers; False when
    it could not (busy, or the store closed): tried again after the next batches."""
    import sqlite3

    try:
        store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        return False
    return True


def patient_code(store: Any, session_id: str) -> str:
    """The session's patient code, once it is sure the session takes device readings (else
    the store's own refusal)."""
    from kapmonitor.store import permissions

    refused = permissions.why_not_add(store.db, session_id, "device_readings")
    if refused is not None:
        raise refused.error()
    row = store.db.execute("SELECT patient_code FROM sessions WHERE id = ?", [session_id])
    return str(row.fetchone()[0])


def _close(store: Any) -> None:
    checkpoint(store)
    with contextlib.suppress(Exception):  # the parent may have gone: nobody to tell
        store.close()
