"""The serial oximeter source over a real pseudo-terminal pair, fed by the simulator: readings,
probe off, no data, unplug and replug, noise, an exclusive port and a failing sink.

POSIX only (pseudo-terminals). Waits are for events (a state, a batch), each with a generous
guard so that a broken source fails the test instead of hanging it; nothing asserts how long
anything took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.devices.nonin_serial import NoninLine, format_line, parse_line, to_readings
from kapmonitor.devices.reading import ConnectionState, DeviceReading, ReadingFlag
from kapmonitor.devices.serial_simulator import (
    CYCLE_SECONDS,
    DESATURATION,
    PROBE_OFF,
    PtyOximeter,
    oximeter_feed,
)
from kapmonitor.devices.serial_source import SerialOximeterSource

GUARD = 20.0  # seconds before a wait gives up (never reached by a working source)


class Harness:
    """Runs a source on the test's loop and records what it delivers and reports."""

    def __init__(self, source: SerialOximeterSource) -> None:
        self.source = source
        self.batches: list[Sequence[DeviceReading]] = []
        self.states: list[ConnectionState] = []
        self.task: asyncio.Task[None] | None = None

    def sink(self, readings: Sequence[DeviceReading]) -> None:
        self.batches.append(tuple(readings))

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self.source.run(self.sink, lambda _device, state: self.states.append(state))
        )

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + GUARD
        while not condition():
            if self.task is not None and self.task.done():
                self.task.result()  # surface the source's own error
                raise AssertionError(f"the source ended before {what}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"gave up waiting for {what}; states {self.states}")
            await asyncio.sleep(0.01)

    async def open(self) -> None:
        await self.until(lambda: self.source.port_open, "the port to open")

    async def batch_count(self, count: int) -> None:
        await self.until(lambda: len(self.batches) >= count, f"{count} batches")

    async def state(self, state: ConnectionState) -> None:
        await self.until(lambda: self.source.state == state, f"state {state.value}")

    async def stop(self) -> None:
        self.source.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, GUARD)


def make_source(sim: PtyOximeter, **kwargs) -> SerialOximeterSource:
    options = {"no_data_after": 30.0, "backoff_initial": 0.02, "backoff_max": 0.1}
    options.update(kwargs)
    return SerialOximeterSource(str(sim.path), device_id="oximeter-1", **options)


def values(batches) -> list[tuple[str, float | None]]:
    return [(r.vital, r.value) for batch in batches for r in batch]


def test_lines_become_readings_and_probe_off_is_reported() -> None:
    async def scenario() -> None:
        with PtyOximeter() as sim:
            run = Harness(make_source(sim))
            run.start()
            await run.open()
            sim.send("SPO2=097 HR=072")
            await run.batch_count(1)
            assert run.source.state == ConnectionState.CONNECTED
            sim.send("SPO2=--- HR=---")
            await run.batch_count(2)
            assert run.source.state == ConnectionState.PROBE_OFF
            sim.send("SPO2=095 HR=075")
            await run.batch_count(3)
            assert run.source.state == ConnectionState.CONNECTED
            await run.stop()
            assert values(run.batches) == [
                ("spo2", 97.0), ("hr", 72.0),
                ("spo2", None), ("hr", None),
                ("spo2", 95.0), ("hr", 75.0),
            ]  # fmt: skip
            assert all(r.probe_off for r in run.batches[1])
            assert {r.device_id for b in run.batches for r in b} == {"oximeter-1"}
            assert {r.source for b in run.batches for r in b} == {"serial"}
            ids = [b[0].message_id for b in run.batches]
            assert len(set(ids)) == 3  # one message id per line: the dedup key downstream
            assert run.states == [
                ConnectionState.DISCONNECTED,
                ConnectionState.CONNECTED,
                ConnectionState.PROBE_OFF,
                ConnectionState.CONNECTED,
                ConnectionState.DISCONNECTED,
            ]
            assert run.source.port_open is False

    asyncio.run(scenario())


def test_silence_is_no_data_and_never_a_repeated_value() -> None:
    async def scenario() -> None:
        with PtyOximeter() as sim:
            run = Harness(make_source(sim, no_data_after=0.3))
            run.start()
            await run.open()
            sim.send("SPO2=096 HR=070")
            await run.batch_count(1)
            await run.state(ConnectionState.NO_DATA)
            assert len(run.batches) == 1  # the silence produced nothing: a gap
            sim.send("SPO2=094 HR=071")
            await run.state(ConnectionState.CONNECTED)
            await run.stop()
            assert values(run.batches) == [("spo2", 96), ("hr", 70), ("spo2", 94), ("hr", 71)]

    asyncio.run(scenario())


def test_noise_header_and_torn_lines_are_not_data() -> None:
    async def scenario() -> None:
        with PtyOximeter() as sim:
            run = Harness(make_source(sim, no_data_after=0.3))
            run.start()
            await run.open()
            sim.send("NONIN 2500 FORMAT 1 27-NOV-26 22:00:00")  # power-up header
            sim.send("9 HR=07")  # torn
            sim.send(bytes(range(256)) * 8, end=b"")  # a wrong baud rate: garbage, no newline
            sim.send(b"\xff\xfe garbage")
            # Noise alone does not make the link "connected": silence of data is still no data.
            await run.state(ConnectionState.NO_DATA)
            assert run.batches == []
            sim.send("SPO2=098 HR=066")
            await run.batch_count(1)
            await run.stop()
            assert values(run.batches) == [("spo2", 98), ("hr", 66)]
            assert run.source.lines_ignored >= 3

    asyncio.run(scenario())


def test_unplug_is_disconnected_and_replug_reconnects_by_itself() -> None:
    async def scenario() -> None:
        with PtyOximeter() as sim:
            run = Harness(make_source(sim))
            run.start()
            await run.open()
            sim.send("SPO2=097 HR=072")
            await run.batch_count(1)
            sim.unplug()
            await run.state(ConnectionState.DISCONNECTED)
            # The oximeter "sends" while unplugged: those lines never arrive, and the source
            # keeps trying the port (which does not exist) without failing.
            assert sim.send("SPO2=080 HR=130") is False
            attempts = run.source.open_attempts
            await run.until(lambda: run.source.open_attempts >= attempts + 2, "retries")
            assert len(run.batches) == 1
            sim.plug()
            await run.open()
            sim.send("SPO2=093 HR=088")
            await run.batch_count(2)
            assert run.source.state == ConnectionState.CONNECTED
            # Pulled again, mid-line: the half line is lost, not glued to the next one.
            sim.send(b"SPO2=09", end=b"")
            sim.unplug()
            await run.state(ConnectionState.DISCONNECTED)
            sim.plug()
            await run.open()
            sim.send("1 HR=099")  # the rest of a line from before: not a reading
            sim.send("SPO2=092 HR=090")
            await run.batch_count(3)
            await run.stop()
            assert values(run.batches) == [
                ("spo2", 97), ("hr", 72), ("spo2", 93), ("hr", 88), ("spo2", 92), ("hr", 90),
            ]  # fmt: skip
            assert run.states.count(ConnectionState.CONNECTED) == 3

    asyncio.run(scenario())


def test_a_port_missing_at_start_is_waited_for() -> None:
    async def scenario() -> None:
        with PtyOximeter() as sim:
            sim.unplug()
            run = Harness(make_source(sim))
            run.start()
            await run.until(lambda: run.source.open_attempts >= 3, "several open attempts")
            assert run.source.state == ConnectionState.DISCONNECTED
            assert "No such file" in (run.source.last_error or "")  # the dialog's plain reason
            sim.plug()
            await run.open()
            assert run.source.last_error is None
            sim.send("SPO2=099 HR=061")
            await run.batch_count(1)
            await run.stop()

    asyncio.run(scenario())


def test_the_port_is_exclusive() -> None:
    """A second reader on the same port would take half the lines: it cannot open it."""

    async def scenario() -> None:
        with PtyOximeter() as sim:
            first = Harness(make_source(sim))
            first.start()
            await first.open()
            second = Harness(make_source(sim))
            second.start()
            await second.until(lambda: second.source.open_attempts >= 3, "refused attempts")
            assert second.source.port_open is False
            for n in range(5):
                sim.send(f"SPO2=09{n} HR=07{n}")
            await first.batch_count(5)
            await second.stop()
            await first.stop()
            assert second.batches == []

    asyncio.run(scenario())


def test_a_sink_that_fails_ends_the_run_and_frees_the_port() -> None:
    def failing_sink(_readings: Sequence[DeviceReading]) -> None:
        raise OSError("disk full")

    async def scenario() -> None:
        with PtyOximeter() as sim:
            source = make_source(sim)
            states: list[ConnectionState] = []
            task = asyncio.get_running_loop().create_task(
                source.run(failing_sink, lambda _d, s: states.append(s))
            )
            while not source.port_open:
                await asyncio.sleep(0.01)
            sim.send("SPO2=097 HR=072")
            with pytest.raises(OSError, match="disk full"):
                await asyncio.wait_for(task, GUARD)
            assert states[-1] == ConnectionState.DISCONNECTED
            assert source.port_open is False
            # The exclusive lock went with the port: another reader can open it now.
            port = serial.Serial(str(sim.path), exclusive=True, timeout=0)
            port.close()

    asyncio.run(scenario())


def test_stop_from_another_thread() -> None:
    async def scenario() -> None:
        with PtyOximeter() as sim:
            sim.unplug()  # stop must also cut short a reconnect wait
            run = Harness(make_source(sim, backoff_initial=5.0, backoff_max=5.0))
            run.start()
            await run.until(lambda: run.source.open_attempts >= 1, "an attempt")
            await asyncio.get_running_loop().run_in_executor(None, run.source.stop)
            await asyncio.wait_for(run.task, GUARD)
            assert run.source.state == ConnectionState.DISCONNECTED

    asyncio.run(scenario())


def test_a_whole_simulated_cycle_over_the_terminal() -> None:
    """The simulator's five minutes (desaturation, probe off, artefact, a corrupt value, a torn
    line) through the real source: every line accounted for, nothing invented."""

    async def scenario() -> None:
        with PtyOximeter() as sim:
            run = Harness(make_source(sim))
            run.start()
            await run.open()
            feed = oximeter_feed(seed=5)
            for second in range(CYCLE_SECONDS):
                sim.send(next(feed))
                if second % 50 == 49:  # stay well inside the terminal's buffer
                    await run.until(
                        lambda s=second: run.source.lines_read + run.source.lines_ignored >= s + 1,
                        "the source to catch up",
                    )
            await run.until(
                lambda: run.source.lines_read + run.source.lines_ignored >= CYCLE_SECONDS,
                "the whole cycle",
            )
            await run.stop()
            assert sim.lines_dropped == 0
            assert run.source.lines_ignored == 1  # the torn line
            assert len(run.batches) == CYCLE_SECONDS - 1
            probe_off = [b for b in run.batches if all(r.probe_off for r in b)]
            assert len(probe_off) == PROBE_OFF[1] - PROBE_OFF[0] + 1
            spo2 = [r for b in run.batches for r in b if r.vital == "spo2"]
            flagged = [r for r in spo2 if ReadingFlag.OUT_OF_RANGE in r.flags]
            assert [r.value for r in flagged] == [130.0]
            lowest = min(
                r.value for r in spo2[DESATURATION[0] : DESATURATION[1]] if r.value is not None
            )
            assert lowest <= 86
            baseline = [r.value for r in spo2[: DESATURATION[0]]]
            assert all(95 <= v <= 98 for v in baseline)

    asyncio.run(scenario())


class ChunkedPort:
    """A port that returns a byte stream in given pieces (as a USB adapter delivers it), then
    stops the source: the line splitting is tested without timing."""

    def __init__(self, chunks: list[bytes], source_box: list[SerialOximeterSource]) -> None:
        self.chunks = list(chunks)
        self.box = source_box

    @property
    def in_waiting(self) -> int:
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, size: int = 1) -> bytes:
        if not self.chunks:
            self.box[0].stop()
            return b""
        return self.chunks.pop(0)

    def close(self) -> None:
        pass


line_texts = st.one_of(
    st.builds(
        NoninLine,
        st.one_of(st.none(), st.integers(0, 999)),
        st.one_of(st.none(), st.integers(0, 999)),
        fast=st.booleans(),
        event=st.booleans(),
    ).map(format_line),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(line_texts, max_size=12),
    newline=st.sampled_from([b"\r\n", b"\n"]),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
def test_any_chunking_gives_exactly_the_complete_lines(lines, newline, cuts) -> None:
    stream = b"".join(text.encode("ascii") + newline for text in lines)
    chunks, rest = [], stream
    for cut in cuts:
        if not rest:
            break
        chunks.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        chunks.append(rest)
    box: list[SerialOximeterSource] = []
    source = SerialOximeterSource(
        "fake", open_port=lambda *_args: ChunkedPort(chunks, box), no_data_after=30.0
    )
    box.append(source)
    batches: list[Sequence[DeviceReading]] = []
    asyncio.run(source.run(lambda readings: batches.append(tuple(readings))))
    expected = [parse_line(text) for text in lines]
    expected_values = [
        (r.vital, r.value)
        for line in expected
        if line is not None
        for r in to_readings(line, device_id="x", message_id="x", received_at=datetime.now(UTC))
    ]
    assert values(batches) == expected_values
    assert source.lines_read == sum(line is not None for line in expected)
