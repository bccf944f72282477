"""The MLLP listener: bedside monitors and gateways connect here and send ORU^R01 messages.

What it promises (each one a test in tests/devices/test_mllp_listener.py):

- one ACK per complete message, MSA-2 echoing MSH-10; ``AA`` is sent only after the sink has
  returned, i.e. after the readings are durably stored; a sink that raises gets ``AE``;
- pipelined messages (a gateway flushing its buffer without waiting for each ACK) are read ahead:
  each is handed to an async sink as soon as it is complete, so the sink can store many in one
  transaction (group commit, ``kapmonitor.capture.StoreWriter``), while the ACKs are written
  strictly in arrival order per connection (tests/devices/test_mllp_pipelining.py); at most
  ``max_pipelined`` wait unanswered, then reading that connection pauses; a plain sink still
  gets one connection's messages one at a time, in order;
- a message the listener has already stored (same MSH-10 from the same sender, also when it
  arrives again while the first copy is still being stored) is answered ``AA`` and not delivered
  again (the lead's store keeps the same key unique across restarts: this table is in memory);
- readings are accepted only for the running session's patient, by the configured rule (bed,
  device or patient identifier); anything else is refused ``AR`` with the reason, and logged
  without clinical values or identifiers (the log names the sender application, a short hash of
  MSH-10 and the reason);
- malformed, unknown-type, truncated and oversized (> 1 MiB) input is answered ``AR`` when its
  MSH-10 can be read (an oversized message as soon as it passes the limit; the rest of it is read
  and dropped, never kept); a sender that stalls mid-message is answered and its connection
  closed; the listener keeps serving everyone else;
- no sender can hold it: reads are per connection on one asyncio loop, a message must complete
  within ``message_timeout_s`` (a one-byte-a-second sender is cut off, not waited for), an idle
  connection is closed after ``idle_timeout_s``, and at most ``max_connections`` are open at once:
  when all are taken, the one idle longest is closed to make room (a monitor reconnects), and a
  newcomer is refused only while every connection is in the middle of a message.

What it does not do: authenticate senders (MLLP has no authentication; the default is loopback, and
a clinic exposing the port must firewall it to the monitor's address), encrypt (plain TCP, as
every monitor speaks it), or remember duplicates across a restart (the store must).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kapmonitor.devices.code_map import CodeMap, default_code_map
from kapmonitor.devices.hl7_message import (
    ERR_INTERNAL,
    ERR_UNKNOWN_KEY,
    AckCode,
    Header,
    MessageRejected,
    ParsedMessage,
    build_ack,
    parse_oru,
    peek_header,
)
from kapmonitor.devices.mllp import MAX_MESSAGE_BYTES, Frame, MllpDecoder, frame
from kapmonitor.devices.reading import ConnectionState, ReadingSink, StateSink, deliver

__all__ = ["ListenerConfig", "MllpListener", "PatientRule"]


Answer = tuple[bytes | None, ParsedMessage | None]  # the ACK to write, the message if accepted


def _done(loop: asyncio.AbstractEventLoop, ack: bytes | None) -> asyncio.Task[Answer]:
    """An answer already known (a refusal), queued behind the messages read before it."""

    async def known() -> Answer:
        return ack, None

    return loop.create_task(known())


def _is_async(sink: object) -> bool:
    """An async sink (a coroutine function, or an object whose ``__call__`` is one)."""
    call = next(
        (k.__dict__["__call__"] for k in type(sink).__mro__ if "__call__" in k.__dict__), None
    )
    return inspect.iscoroutinefunction(sink) or inspect.iscoroutinefunction(call)


async def _enqueue(
    answers: asyncio.Queue[asyncio.Task[Answer] | None],
    item: asyncio.Task[Answer] | None,
    answering: asyncio.Task[None],
) -> bool:
    """Queue ``item`` for the answering task, waiting while ``max_pipelined`` are unanswered;
    False (and ``item`` cancelled) when the answering task ended first (the connection is
    going): a full queue must never hold the reading side forever."""
    if not answers.full():
        answers.put_nowait(item)
        return True
    put = asyncio.ensure_future(answers.put(item))
    await asyncio.wait({put, answering}, return_when=asyncio.FIRST_COMPLETED)
    if put.done():
        return True
    put.cancel()
    if item is not None:
        item.cancel()
    return False


log = logging.getLogger("kapmonitor.devices.mllp")

MATCH_KINDS = ("bed", "device", "patient_id")


@dataclass(frozen=True)
class PatientRule:
    """How a message is matched to the running session: ``kind`` and the session's ``value``.

    ``bed``: PV1-3 bed (or point of care); ``device``: every reading's device id (OBX-18, else
    MSH-3/4); ``patient_id``: any identifier in PID-3 (or PID-2). Compared trimmed and
    case-insensitively; an empty value never matches.
    """

    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in MATCH_KINDS:
            raise ValueError(f"patient rule kind must be one of {', '.join(MATCH_KINDS)}")

    def refusal(self, message: ParsedMessage) -> str | None:
        """None when ``message`` belongs to the session; otherwise the reason (no identifiers)."""
        want = self.value.strip().casefold()
        if not want:
            return "no session identity is configured for matching"
        if self.kind == "bed":
            if not message.bed:
                return "no bed in PV1-3 to match the running session"
            ok = message.bed.casefold() == want
        elif self.kind == "device":
            devices = {r.device_id.casefold() for r in message.readings} or {
                message.device_id.casefold()
            }
            ok = devices == {want}
        else:
            if not message.patient_ids:
                return "no patient identifier in PID-3 to match the running session"
            ok = want in {p.casefold() for p in message.patient_ids}
        return None if ok else f"{_KIND_TEXT[self.kind]} does not match the running session"


_KIND_TEXT = {"bed": "bed", "device": "device", "patient_id": "patient identifier"}


@dataclass(frozen=True)
class ListenerConfig:
    """Where and how hard the listener listens (defaults are the clinic's: loopback only)."""

    host: str = "127.0.0.1"
    port: int = 2575  # 0: any free port (tests)
    max_connections: int = 16
    idle_timeout_s: float = 300.0  # a connection with nothing to say is closed
    message_timeout_s: float = 30.0  # a started message must be complete within this
    max_message_bytes: int = MAX_MESSAGE_BYTES
    duplicate_memory: int = 20_000  # MSH-10s remembered (5.5 h of one 1 Hz monitor), bounded
    max_pipelined: int = 256  # messages read ahead of their ACK on one connection, bounded


class _Conn:
    """What the connection cap needs to know about one open connection."""

    def __init__(self, last_message: float) -> None:
        self.last_message = last_message
        self.busy = False  # a message is under way or being answered
        self.unanswered = 0  # messages read whose ACK is not written yet


@dataclass
class ListenerStats:
    """Counts for the connection indicator and the benchmark (never clinical content)."""

    connections: int = 0
    refused_connections: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0
    last_message_at: float | None = None  # time.monotonic() of the last complete message


def _digest(text: str) -> str:
    """A short, stable hash for logs: lets two log lines be matched without showing the value."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:10]


class MllpListener:
    """An asyncio MLLP server delivering each accepted message's readings to a sink.

    ``rule`` is the running session's matching rule, or None when no session runs (every message
    is then refused); :meth:`set_rule` changes it while serving. Usable as a
    :class:`~kapmonitor.devices.reading.ReadingSource` (``await run(sink)``) or from a worker
    thread (:meth:`start_in_thread` / :meth:`stop`).
    """

    def __init__(
        self,
        rule: PatientRule | None,
        config: ListenerConfig | None = None,
        code_map: CodeMap | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config or ListenerConfig()
        self.rule = rule
        self.code_map = code_map or default_code_map()
        self.clock = clock
        self.stats = ListenerStats()
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._in_flight: dict[tuple[str, str, str], asyncio.Future[bool]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task, _Conn] = {}
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None
        self._sink: ReadingSink | None = None
        self._on_state: StateSink | None = None
        self._stop_requested = False

    def set_rule(self, rule: PatientRule | None) -> None:
        """The session changed (or ended: None); takes effect for the next message."""
        self.rule = rule

    # -- running ---------------------------------------------------------------------------

    async def run(
        self,
        sink: ReadingSink,
        on_state: StateSink | None = None,
        ready: Callable[[tuple[str, int]], None] | None = None,
    ) -> None:
        """Serve until :meth:`stop`; ``ready`` is told the bound address once listening."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested:  # stop() came before the loop: do not serve at all
            return
        self._sink = sink
        self._on_state = on_state
        self._server = await asyncio.start_server(
            self._handle, self.config.host, self.config.port, limit=65536
        )
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        log.info("MLLP listener on %s:%s", *self.address)
        if ready is not None:
            ready(self.address)
        try:
            await self._stopping.wait()
        finally:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            log.info("MLLP listener stopped")

    def stop(self) -> None:
        """Stop serving; safe from any thread, and before or after the loop ends.

        A message whose readings are being stored at that moment gets no ACK: the monitor resends
        it, and the store's duplicate key keeps it once."""
        self._stop_requested = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(stopping.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def start_in_thread(
        self, sink: ReadingSink, on_state: StateSink | None = None, timeout_s: float = 10.0
    ) -> tuple[str, int]:
        """Run on a new daemon thread with its own loop; returns the bound address.

        A bind failure (port in use, no permission) is raised here as OSError, in this thread.
        """
        bound: list[tuple[str, int]] = []
        failure: list[BaseException] = []
        ready = threading.Event()

        def on_ready(address: tuple[str, int]) -> None:
            bound.append(address)
            ready.set()

        def main() -> None:
            try:
                asyncio.run(self.run(sink, on_state, on_ready))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=main, name="kapmonitor-mllp", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s):
            raise TimeoutError("the MLLP listener did not start in time")
        if failure:
            raise failure[0]
        return bound[0]

    # -- one connection --------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._handlers) >= self.config.max_connections and not self._evict_idle():
            self.stats.refused_connections += 1
            log.warning("MLLP connection refused: %d connections busy", len(self._handlers))
            writer.close()
            return
        conn = _Conn(last_message=time.monotonic())
        self._handlers[task] = conn
        self.stats.connections += 1
        number = self.stats.connections
        devices: dict[str, ConnectionState] = {}  # the devices heard on this connection
        try:
            await self._converse(reader, writer, number, devices, conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("MLLP connection %d: reset by the sender", number)
        except asyncio.CancelledError:
            pass
        except Exception:  # never let one connection's fault reach the server
            log.exception("MLLP connection %d: unexpected fault, connection closed", number)
        finally:
            self._handlers.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)
            for device in devices:
                self._state(device, ConnectionState.DISCONNECTED)

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        number: int,
        devices: dict[str, ConnectionState],
        conn: _Conn,
    ) -> None:
        """Read ahead, answer in order: each complete message starts being processed as soon as
        it is read (so pipelined messages can share one store transaction), while one answering
        task writes the ACKs strictly in the order the messages arrived."""
        config = self.config
        decoder = MllpDecoder(config.max_message_bytes)
        answers: asyncio.Queue[asyncio.Task[Answer] | None] = asyncio.Queue(
            maxsize=config.max_pipelined
        )
        in_order = asyncio.Lock()  # a plain sink takes one connection's messages in order
        answering = asyncio.create_task(self._answer(writer, answers, devices, conn, decoder))
        try:
            await self._read(reader, number, conn, decoder, answers, in_order, answering)
            # the sender is done or cut off: answer what was read
            await _enqueue(answers, None, answering)
            try:
                async with asyncio.timeout(config.message_timeout_s):
                    await asyncio.shield(answering)
            except TimeoutError:
                log.info("MLLP connection %d: messages not stored in time, closed", number)
        finally:
            if not answering.done():
                answering.cancel()
            while not answers.empty():  # not answered (stop or timeout): no task left behind
                task = answers.get_nowait()
                if task is not None and not task.done():
                    task.cancel()
            with contextlib.suppress(BaseException):
                await answering

    async def _read(
        self,
        reader: asyncio.StreamReader,
        number: int,
        conn: _Conn,
        decoder: MllpDecoder,
        answers: asyncio.Queue[asyncio.Task[Answer] | None],
        in_order: asyncio.Lock,
        answering: asyncio.Task[None],
    ) -> None:
        config = self.config
        frame_started: float | None = None  # when the unfinished message began
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            conn.busy = decoder.in_frame or conn.unanswered > 0
            if decoder.in_frame:
                frame_started = frame_started if frame_started is not None else now
                timeout = frame_started + config.message_timeout_s - now
            elif conn.unanswered:  # still storing what was read: not idle
                timeout = config.idle_timeout_s
            else:  # idle counts from the last whole message answered, not from any byte
                timeout = conn.last_message + config.idle_timeout_s - now
            try:
                async with asyncio.timeout(max(timeout, 0.0)):  # no task per read, unlike wait_for
                    data = await reader.read(65536)
                conn.busy = True  # from here until the next read, never evicted
            except TimeoutError:
                if not decoder.in_frame and conn.unanswered:
                    continue  # still answering what was read: not idle
                if decoder.in_frame:
                    conn.unanswered += 1
                    refusal = self._refusal(decoder.head(), "message not completed in time", number)
                    await _enqueue(answers, _done(loop, refusal), answering)
                    log.info("MLLP connection %d: message not completed in time, closed", number)
                else:
                    log.info("MLLP connection %d: idle, closed", number)
                return
            if not data:
                if decoder.in_frame:
                    log.info("MLLP connection %d: closed in the middle of a message", number)
                return
            was_in_frame = decoder.in_frame
            events = decoder.feed(data)
            for event in events:
                if answering.done():
                    return  # the answering side failed (sender not reading): stop reading
                if isinstance(event, Frame):
                    self.stats.last_message_at = time.monotonic()
                    conn.unanswered += 1
                    task = asyncio.create_task(self._process(event.payload, number, in_order))
                    if not await _enqueue(answers, task, answering):
                        return
                    continue
                if event.reason == "truncated":
                    reason = "message truncated"
                else:  # oversized: refused now; the decoder drops the rest up to its end,
                    # keeping nothing, and the message deadline still bounds how long that takes
                    reason = f"message larger than {config.max_message_bytes // 1024} KiB"
                conn.unanswered += 1
                if not await _enqueue(
                    answers, _done(loop, self._refusal(event.head, reason, number)), answering
                ):
                    return
            if not decoder.in_frame:
                frame_started = None
            elif events or not was_in_frame:
                frame_started = time.monotonic()  # a new message began in this chunk

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        answers: asyncio.Queue[asyncio.Task[Answer] | None],
        devices: dict[str, ConnectionState],
        conn: _Conn,
        decoder: MllpDecoder,
    ) -> None:
        """Write each message's ACK once its processing finished, in arrival order.

        A fault here (a sender not reading its ACKs, an unexpected error) aborts the connection,
        so the reading side stops too; messages not yet answered are resent by the monitor."""
        try:
            while True:
                task = await answers.get()
                if task is None:
                    return
                ack, accepted = await task
                if ack is not None:
                    writer.write(frame(ack))
                    if writer.transport.get_write_buffer_size() > 65536:
                        async with asyncio.timeout(self.config.message_timeout_s):
                            await writer.drain()  # a sender not reading its ACKs
                conn.unanswered -= 1
                conn.last_message = time.monotonic()
                if accepted is not None:
                    self._track(accepted, devices)
                if not conn.unanswered:
                    conn.busy = decoder.in_frame
        except BaseException:
            writer.transport.abort()
            raise

    def _refusal(self, head: bytes, reason: str, number: int) -> bytes | None:
        """The AR for a frame that will never be whole, when its MSH-10 can be read."""
        self.stats.rejected += 1
        header = peek_header(head)
        log.warning(
            "MLLP connection %d: refused (AR) message %s: %s",
            number,
            _digest(header.control_id) if header.control_id else "-",
            reason,
        )
        if not header.control_id:
            return None
        return build_ack(AckCode.REJECT, header, reason, "100")

    async def _process(self, payload: bytes, number: int, in_order: asyncio.Lock) -> Answer:
        """The ACK for one complete message (after storing its readings if accepted), and the
        message when accepted (for the device states)."""
        header: Header = Header()
        try:
            message = parse_oru(payload, self.clock(), self.code_map)
            header = message.header
            rule = self.rule
            if rule is None:
                raise MessageRejected(
                    AckCode.REJECT, ERR_UNKNOWN_KEY, "no session is running", header
                )
            refusal = rule.refusal(message)
            if refusal is not None:
                raise MessageRejected(AckCode.REJECT, ERR_UNKNOWN_KEY, refusal, header)
            await self._store_once(message, in_order)
        except MessageRejected as exc:
            header = exc.header if exc.header.control_id else header
            if exc.ack == AckCode.ERROR:
                self.stats.errors += 1
            else:
                self.stats.rejected += 1
            log.warning(
                "MLLP connection %d: %s message %s from %s: %s",
                number,
                exc.ack,
                _digest(header.control_id) if header.control_id else "-",
                header.sending_app or "?",
                exc.reason,
            )
            return build_ack(exc.ack, header, exc.reason, exc.error), None
        return build_ack(AckCode.ACCEPT, header), message

    async def _store_once(self, message: ParsedMessage, in_order: asyncio.Lock) -> None:
        """Deliver ``message``'s readings unless already stored; AE when the sink fails.

        An async sink is handed each message as soon as it is read (it may store several in one
        transaction: group commit); a plain sink runs in the executor, one message of a
        connection at a time, so it sees them in the order they were sent."""
        key = (message.header.sending_app, message.header.sending_facility, message.control_id)
        while True:
            if key in self._seen:
                self._seen.move_to_end(key)
                self.stats.duplicates += 1
                return
            pending = self._in_flight.get(key)
            if pending is None:
                break
            await asyncio.shield(pending)  # the same message on another connection: wait for it
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = done
        stored = False
        try:
            if message.readings:
                if _is_async(self._sink):
                    await self._sink(message.readings)  # type: ignore[misc]
                else:
                    async with in_order:
                        await deliver(self._sink, message.readings)
            stored = True
        except Exception as exc:
            log.error(
                "MLLP: readings of message %s could not be stored (%s)",
                _digest(message.control_id),
                type(exc).__name__,
            )
            raise MessageRejected(
                AckCode.ERROR, ERR_INTERNAL, "readings could not be stored", message.header
            ) from None
        finally:
            del self._in_flight[key]
            if stored:
                self._seen[key] = None
                if len(self._seen) > self.config.duplicate_memory:
                    self._seen.popitem(last=False)
                self.stats.accepted += 1
            done.set_result(stored)

    def connection_counts(self) -> tuple[int, int]:
        """(open, busy) connections: for the Devices dialog; safe to call from another thread."""
        for _ in range(10):
            try:
                conns = list(self._handlers.values())
            except RuntimeError:  # changed while copied on the listener's thread: try again
                continue
            return len(conns), sum(c.busy for c in conns)
        return 0, 0

    def _evict_idle(self) -> bool:
        """Make room by closing the connection idle longest (no message under way), if any.

        Why: otherwise a handful of connections that say nothing would lock out a monitor until
        the idle timeout. A real monitor evicted this way reconnects (they all do); connections
        in the middle of a message are never evicted (their own deadline bounds them)."""
        idle = [(c.last_message, id(t), t) for t, c in self._handlers.items() if not c.busy]
        if not idle:
            return False
        victim = min(idle)[2]
        self._handlers.pop(victim, None)
        victim.cancel()
        log.info("MLLP: closed the longest-idle connection to make room for a new one")
        return True

    def _track(self, message: ParsedMessage, devices: dict[str, ConnectionState]) -> None:
        """Tell the state sink when a device is first heard, loses or regains its probe.

        "No data for N seconds" is the consumer's timer: it knows the protocol's limits."""
        by_device: dict[str, list[bool]] = {}
        for reading in message.readings:
            by_device.setdefault(reading.device_id, []).append(reading.probe_off)
        for device, probe_off in by_device.items():
            state = ConnectionState.PROBE_OFF if all(probe_off) else ConnectionState.CONNECTED
            if devices.get(device) != state:
                devices[device] = state
                self._state(device, state)

    def _state(self, who: str, state: ConnectionState) -> None:
        if self._on_state is not None:
            try:
                self._on_state(who, state)
            except Exception:
                log.exception("MLLP: connection-state callback failed")
