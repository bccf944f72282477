"""The listener reads pipelined messages ahead and answers them in order (issue 13, group commit).

A gateway flushing its buffer sends many frames without waiting for each ACK. The listener must
hand every one of them to an async sink as soon as it is read (so the sink can store them in one
transaction), yet write the ACKs in the order the frames arrived, each only after its own
message's sink call returned. No time is asserted: waits are for events, with generous caps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from kapmonitor.devices.mllp import frame
from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.reading import DeviceReading
from tests.devices.test_mllp_listener import Client, msg


class HeldSink:
    """An async sink that holds every message until the test lets it go, finishing them in the
    order the test chooses (so a later message can be stored before an earlier one)."""

    def __init__(self) -> None:
        self.arrived: list[str] = []
        self.stored: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.seen = threading.Condition()
        self.failing: set[str] = set()

    async def __call__(self, readings: Sequence[DeviceReading]) -> None:
        self.loop = asyncio.get_running_loop()
        control = readings[0].message_id
        event = self.release.setdefault(control, asyncio.Event())
        with self.seen:
            self.arrived.append(control)
            self.seen.notify_all()
        await event.wait()
        if control in self.failing:
            raise OSError("disk full")
        self.stored.append(control)

    def wait_arrived(self, count: int) -> None:
        with self.seen:
            assert self.seen.wait_for(lambda: len(self.arrived) >= count, timeout=20)

    def let_go(self, control: str) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.release[control].set)


def start(sink: HeldSink) -> tuple[MllpListener, tuple[str, int]]:
    listener = MllpListener(PatientRule("bed", "BED-1"), ListenerConfig(port=0))
    return listener, listener.start_in_thread(sink)


def test_pipelined_frames_reach_an_async_sink_before_any_is_answered() -> None:
    sink = HeldSink()
    listener, address = start(sink)
    client = Client(address)
    try:
        client.send_raw(b"".join(frame(msg(control=f"G-{i}")) for i in range(8)))
        sink.wait_arrived(8)  # all eight handed over at once: one transaction can take them
        assert sink.arrived == [f"G-{i}" for i in range(8)]
        assert not client.has_data()  # nothing is answered before it is stored
        for i in range(8):
            sink.let_go(f"G-{i}")
        assert [client.answer() for _ in range(8)] == [("AA", f"G-{i}", "") for i in range(8)]
    finally:
        client.close()
        listener.stop()


def test_acks_keep_the_sending_order_when_later_messages_are_stored_first() -> None:
    sink = HeldSink()
    listener, address = start(sink)
    client = Client(address)
    try:
        client.send_raw(b"".join(frame(msg(control=f"O-{i}")) for i in range(5)))
        sink.wait_arrived(5)
        for i in reversed(range(1, 5)):  # the last four stored first ...
            sink.let_go(f"O-{i}")
        assert not client.has_data()  # ... but O-0 is not: none may be answered before it
        sink.let_go("O-0")
        assert [client.answer() for _ in range(5)] == [("AA", f"O-{i}", "") for i in range(5)]
        assert set(sink.stored) == {f"O-{i}" for i in range(5)}
    finally:
        client.close()
        listener.stop()


def test_a_failed_message_among_pipelined_ones_gets_ae_in_its_place_and_serving_goes_on() -> None:
    sink = HeldSink()
    sink.failing.add("F-1")
    listener, address = start(sink)
    client = Client(address)
    try:
        wire = [frame(msg(control=f"F-{i}")) for i in range(3)]
        garbage = frame(b"MSH|^~\\&|X|Y|||20260301||ORU^R01|F-BAD|P|2.3\rOBX|no")
        client.send_raw(wire[0] + wire[1] + garbage + wire[2])
        sink.wait_arrived(3)  # the malformed one never reaches the sink
        for i in range(3):
            sink.let_go(f"F-{i}")
        answers = [client.answer() for _ in range(4)]
        assert [a[:2] if a else a for a in answers] == [
            ("AA", "F-0"),
            ("AE", "F-1"),
            ("AR", "F-BAD"),
            ("AA", "F-2"),
        ]
        sink.release.setdefault("F-3", asyncio.Event())
        client.send(msg(control="F-3"))
        sink.wait_arrived(4)
        sink.let_go("F-3")
        assert client.answer() == ("AA", "F-3", "")
    finally:
        client.close()
        listener.stop()


def test_a_sender_that_closes_after_pipelining_still_has_its_messages_answered_or_stored() -> None:
    sink = HeldSink()
    listener, address = start(sink)
    client = Client(address)
    try:
        client.send_raw(b"".join(frame(msg(control=f"H-{i}")) for i in range(4)))
        client.sock.shutdown(1)  # the gateway is done sending (half-close), still reading
        sink.wait_arrived(4)
        for i in range(4):
            sink.let_go(f"H-{i}")
        assert [client.answer() for _ in range(4)] == [("AA", f"H-{i}", "") for i in range(4)]
        assert client.answer() is None  # then the listener closes its side
    finally:
        client.close()
        listener.stop()
