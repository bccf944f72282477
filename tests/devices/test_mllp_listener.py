"""The MLLP listener against a real socket client: what it accepts, what it refuses and how, and
that no sender (malformed, duplicated, slow, stalled, oversized, too many) stops it serving."""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import hl7
import pytest

from kapmonitor.devices.mllp import CR, FS, VT, Frame, MllpDecoder, frame
from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.reading import DeviceReading, ReadingSource
from kapmonitor.devices.simulator import Sample, build_message

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NORMAL = Sample(0, 96, 71, (131, 79, 96), probe_off=False, artefact=False)


class Store:
    """A stand-in for the store: keeps what it was given, can be made to wait or to fail."""

    def __init__(self) -> None:
        self.batches: list[tuple[DeviceReading, ...]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False

    def __call__(self, readings) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        if self.fail:
            raise OSError("disk full")
        self.batches.append(tuple(readings))

    @property
    def readings(self) -> list[DeviceReading]:
        return [r for batch in self.batches for r in batch]


class Client:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=20)
        self.decoder = MllpDecoder()
        self.pending: list[bytes] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        self.send_raw(frame(payload))

    def answer(self) -> tuple[str, str, str] | None:
        """(MSA-1, MSA-2, MSA-3) of the next ACK, or None when the listener closed."""
        while not self.pending:
            try:
                data = self.sock.recv(65536)
            except ConnectionError:
                return None
            if not data:
                return None
            self.pending += [e.payload for e in self.decoder.feed(data) if isinstance(e, Frame)]
        msa = hl7.parse(self.pending.pop(0).decode()).segment("MSA")
        return (str(msa[1]), str(msa[2]), str(msa[3]) if len(msa) > 3 else "")

    def exchange(self, payload: bytes) -> tuple[str, str, str] | None:
        self.send(payload)
        return self.answer()

    def has_data(self, wait_s: float = 0.3) -> bool:
        return bool(select.select([self.sock], [], [], wait_s)[0])

    def closed(self) -> bool:
        try:
            return self.sock.recv(65536) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.sock.close()


def msg(profile: str = "philips", control: str = "C1", **kwargs) -> bytes:
    kwargs.setdefault("bed", "BED-1")
    return build_message(profile, NORMAL, control, WHEN, **kwargs)


@pytest.fixture
def store() -> Store:
    return Store()


BED_RULE = PatientRule("bed", "BED-1")


def start(store: Store, rule: PatientRule | None = BED_RULE, **config):
    listener = MllpListener(rule, ListenerConfig(port=0, **config))
    address = listener.start_in_thread(store)
    return listener, address


@pytest.fixture
def served(store: Store) -> Iterator[tuple[MllpListener, tuple[str, int], Store]]:
    listener, address = start(store)
    yield listener, address, store
    store.gate.set()
    listener.stop()


def still_serving(address: tuple[str, int], store: Store, control: str) -> None:
    client = Client(address)
    try:
        assert client.exchange(msg(control=control)) == ("AA", control, "")
    finally:
        client.close()
    assert any(r.message_id == control for r in store.readings)


@pytest.mark.parametrize(
    ("profile", "device", "vitals"),
    [("philips", "MX450-0001", ["spo2", "hr"]), ("mindray", "MR-BV-0001", ["spo2", "hr"])],
)
def test_both_styles_are_accepted_and_stored_with_their_device(
    served, profile, device, vitals
) -> None:
    _, address, store = served
    client = Client(address)
    assert client.exchange(msg(profile, "M-1")) == ("AA", "M-1", "")
    assert client.exchange(msg(profile, "M-2", nibp_only=True)) == ("AA", "M-2", "")
    client.close()
    assert [r.vital for r in store.batches[0]] == vitals
    assert [r.vital for r in store.batches[1]] == ["sbp", "dbp"]
    assert {r.device_id for r in store.readings} == {device}
    assert [r.value for r in store.batches[0]] == [96, 71]


NOT_ORU = b"MSH|^~\\&|GW|ICU|||20260301||ADT^A01|BAD-1|P|2.5\rPID|||BED-1\rPV1||I|KAP^^BED-1\r"
NO_OBX = b"MSH|^~\\&|GW|ICU|||20260301||ORU^R01|BAD-2|P|2.5\rPV1||I|KAP^^BED-1\r"
NOT_NUMBER = msg(control="BAD-3").replace(b"||96|", b"||ninety-six|")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (frame(b"hello, listener"), ("AR", "", "not an HL7 message (no MSH)")),
        (frame(NOT_ORU), ("AR", "BAD-1", "unsupported message type ADT A01")),
        (frame(NO_OBX), ("AR", "BAD-2", "no OBX segment")),
        (frame(NOT_NUMBER), ("AR", "BAD-3", "OBX 1: OBX-5 is not a number")),
        (VT + msg(control="CUT-1")[:120] + frame(msg(control="OK-1")),
         ("AR", "CUT-1", "message truncated")),
        (frame(b"MSH|^~\\&|A|B|||2026||ORU^R01|E|P|2.5\r\x00\x00\xff\xfe"), ("AR", "E", "")),
    ],
)  # fmt: skip
def test_each_malformed_message_gets_the_right_answer_and_serving_goes_on(
    served, wire, expected
) -> None:
    _, address, store = served
    client = Client(address)
    client.send_raw(b"\x00junk before any frame\r\n" + wire)
    answer = client.answer()
    assert answer is not None
    assert answer[:2] == expected[:2]
    assert answer[2].startswith(expected[2])
    if expected[1] == "CUT-1":  # the whole message after the cut one is still answered
        assert client.answer() == ("AA", "OK-1", "")
    client.close()
    assert all(r.message_id != expected[1] for r in store.readings)
    still_serving(address, store, "AFTER")


def test_an_oversized_message_is_refused_and_dropped_without_being_kept(served) -> None:
    listener, address, store = served
    client = Client(address)
    big = msg(control="BIG-1") + b"NTE|1||" + b"x" * (3 * 1024 * 1024) + b"\r"
    client.send(big)
    assert client.answer() == ("AR", "BIG-1", "message larger than 1024 KiB")
    assert client.exchange(msg(control="AFTER-BIG")) == ("AA", "AFTER-BIG", "")
    client.close()
    assert [r.message_id for r in store.readings] == ["AFTER-BIG", "AFTER-BIG"]
    assert listener.stats.rejected == 1


def test_a_message_of_exactly_the_limit_is_accepted(store) -> None:
    base = msg(control="EXACT")
    pad = b"NTE|1||"
    fill = 4096 - len(base) - len(pad) - 1
    payload = base + pad + b"y" * fill + b"\r"
    listener, address = start(store, max_message_bytes=4096)
    try:
        assert len(payload) == 4096
        client = Client(address)
        assert client.exchange(payload) == ("AA", "EXACT", "")
        assert client.exchange(payload.replace(b"EXACT", b"EXACT2") + b"z")[:2] == ("AR", "EXACT2")
        client.close()
    finally:
        listener.stop()


def test_duplicates_are_acknowledged_and_stored_once(served) -> None:
    _, address, store = served
    first, second = Client(address), Client(address)
    assert first.exchange(msg(control="D-1")) == ("AA", "D-1", "")
    assert first.exchange(msg(control="D-1")) == ("AA", "D-1", "")
    assert second.exchange(msg(control="D-1")) == ("AA", "D-1", "")
    # another sender may reuse the id: it is a different message
    assert second.exchange(msg("mindray", control="D-1")) == ("AA", "D-1", "")
    first.close()
    second.close()
    assert [r.message_id for r in store.batches[0]] == ["D-1", "D-1"]
    assert len(store.batches) == 2
    assert {r.device_id for r in store.readings} == {"MX450-0001", "MR-BV-0001"}


def test_a_duplicate_arriving_while_the_first_is_being_stored_is_stored_once(served) -> None:
    _, address, store = served
    store.gate.clear()
    first, second = Client(address), Client(address)
    first.send(msg(control="RACE"))
    assert store.entered.wait(10)
    second.send(msg(control="RACE"))
    assert not first.has_data() and not second.has_data()  # nobody answered before the store
    store.gate.set()
    assert first.answer() == ("AA", "RACE", "")
    assert second.answer() == ("AA", "RACE", "")
    first.close()
    second.close()
    assert len(store.batches) == 1


def test_aa_only_after_the_store_returns_and_ae_when_it_fails(served) -> None:
    listener, address, store = served
    store.gate.clear()
    store.fail = True
    client = Client(address)
    client.send(msg(control="S-1"))
    assert store.entered.wait(10)
    assert not client.has_data()
    store.gate.set()
    assert client.answer() == ("AE", "S-1", "readings could not be stored")
    store.fail = False  # the monitor resends: now it is stored, not taken as a duplicate
    assert client.exchange(msg(control="S-1")) == ("AA", "S-1", "")
    client.close()
    assert [r.message_id for r in store.readings] == ["S-1", "S-1"]
    assert listener.stats.errors == 1 and listener.stats.accepted == 1


@pytest.mark.parametrize(
    ("rule", "kwargs", "reason"),
    [
        (PatientRule("bed", "BED-1"), {"bed": "BED-2"}, "bed does not match the running session"),
        (PatientRule("patient_id", "P-9"), {"patient": "P-8"},
         "patient identifier does not match the running session"),
        (PatientRule("device", "MX450-0002"), {}, "device does not match the running session"),
        (None, {}, "no session is running"),
    ],
)  # fmt: skip
def test_another_patient_is_refused_with_a_reason_and_logged_without_identifiers(
    store, caplog, rule, kwargs, reason
) -> None:
    listener, address = start(store, rule)
    caplog.set_level(logging.INFO, logger="kapmonitor.devices")
    try:
        client = Client(address)
        kwargs = {"patient": "PAT-SECRET-77", **kwargs}
        answer = client.exchange(msg(control="WRONG-PT", **kwargs))
        assert answer == ("AR", "WRONG-PT", reason)
        client.close()
    finally:
        listener.stop()
    assert store.readings == []
    logged = caplog.text
    assert reason in logged
    for secret in ("PAT-SECRET-77", kwargs.get("bed", "BED-1"), "WRONG-PT", "96", "71"):
        assert secret not in logged


def test_the_right_patient_by_identifier_or_device_is_accepted(store) -> None:
    for rule in (PatientRule("patient_id", "p-9"), PatientRule("device", "MX450-0001")):
        listener, address = start(store, rule)
        try:
            client = Client(address)
            assert client.exchange(msg(control=rule.kind, patient="P-9"))[0] == "AA"
            client.close()
        finally:
            listener.stop()
    assert len(store.batches) == 2


def test_a_slow_sender_does_not_block_a_second_sender(served) -> None:
    _, address, store = served
    slow, fast = Client(address), Client(address)
    payload = frame(msg(control="SLOW"))
    for byte in payload[:40]:  # one byte at a time, as a dribbling sender would
        slow.send_raw(bytes([byte]))
    assert fast.exchange(msg(control="FAST")) == ("AA", "FAST", "")
    for byte in payload[40:80]:
        slow.send_raw(bytes([byte]))
    assert fast.exchange(msg(control="FAST-2")) == ("AA", "FAST-2", "")
    slow.send_raw(payload[80:])
    assert slow.answer() == ("AA", "SLOW", "")
    slow.close()
    fast.close()
    assert [b[0].message_id for b in store.batches] == ["FAST", "FAST-2", "SLOW"]


def test_a_sender_that_stalls_mid_message_is_answered_and_cut_off(store) -> None:
    listener, address = start(store, message_timeout_s=0.5)
    try:
        stalled = Client(address)
        stalled.send_raw(VT + msg(control="STALL")[:80])
        assert stalled.answer() == ("AR", "STALL", "message not completed in time")
        assert stalled.closed()
        stalled.close()
        still_serving(address, store, "AFTER-STALL")
    finally:
        listener.stop()


def test_a_byte_a_tick_sender_cannot_keep_a_message_open_forever(store) -> None:
    listener, address = start(store, message_timeout_s=0.5)
    try:
        dribbler = Client(address)
        payload = msg(control="DRIP")
        header_end = payload.index(b"\r") + 1
        dribbler.send_raw(VT + payload[:header_end])  # the MSH whole, then a byte at a time
        for byte in payload[header_end:] * 50:  # far longer than the deadline at this pace
            if dribbler.has_data(0.1):
                break
            dribbler.send_raw(bytes([byte]))
        assert dribbler.answer() == ("AR", "DRIP", "message not completed in time")
        assert dribbler.closed()
        dribbler.close()
    finally:
        listener.stop()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_idle_connections_cannot_lock_a_monitor_out(store) -> None:
    listener, address = start(store, max_connections=2)
    try:
        oldest, newer = Client(address), Client(address)
        assert oldest.exchange(msg(control="I-1"))[0] == "AA"
        assert newer.exchange(msg(control="I-2"))[0] == "AA"
        monitor = Client(address)  # the cap is reached, but both others are idle
        assert monitor.exchange(msg(control="MONITOR")) == ("AA", "MONITOR", "")
        assert oldest.closed()  # the one idle longest made room
        assert newer.exchange(msg(control="I-3"))[0] == "AA"
        for client in (oldest, newer, monitor):
            client.close()
    finally:
        listener.stop()


def test_a_newcomer_is_refused_only_while_every_connection_is_mid_message(store) -> None:
    listener, address = start(store, max_connections=2)
    try:
        busy = [Client(address), Client(address)]
        for i, client in enumerate(busy):
            client.send_raw(VT + msg(control=f"B-{i}")[:50])
        wait_until(lambda: listener.connection_counts() == (2, 2), "both connections busy")
        refused = Client(address)
        assert refused.closed()
        refused.close()
        assert listener.stats.refused_connections == 1
        busy[0].send_raw(msg(control="B-0")[50:] + FS + CR)  # finishes: now idle, evictable
        assert busy[0].answer() == ("AA", "B-0", "")
        late = Client(address)
        assert late.exchange(msg(control="LATE")) == ("AA", "LATE", "")
        busy[1].send_raw(msg(control="B-1")[50:] + FS + CR)
        assert busy[1].answer() == ("AA", "B-1", "")  # the busy one was never evicted
        for client in (*busy, late):
            client.close()
    finally:
        listener.stop()


def test_an_idle_connection_is_closed(store) -> None:
    listener, address = start(store, idle_timeout_s=0.3)
    try:
        client = Client(address)
        client.send_raw(b"junk without a frame")  # junk does not count as activity
        assert client.closed()
        client.close()
        still_serving(address, store, "AFTER-IDLE")
    finally:
        listener.stop()


def test_stop_from_another_thread_frees_the_port_and_a_busy_port_is_reported(store) -> None:
    listener, address = start(store)
    other = MllpListener(PatientRule("bed", "BED-1"), ListenerConfig(port=address[1]))
    with pytest.raises(OSError):
        other.start_in_thread(store)
    listener.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=5).recv(1)  # refused: nothing listens
    assert listener.address == address
    assert address[0] == "127.0.0.1"  # loopback by default


def test_pipelined_messages_get_one_ack_each_in_order(served) -> None:
    _, address, store = served
    client = Client(address)
    client.send_raw(b"".join(frame(msg(control=f"P-{i}")) for i in range(20)))
    answers = [client.answer() for _ in range(20)]
    client.close()
    assert answers == [("AA", f"P-{i}", "") for i in range(20)]
    assert [b[0].message_id for b in store.batches] == [f"P-{i}" for i in range(20)]


def test_a_frame_without_its_cr_is_still_answered(served) -> None:
    _, address, _ = served
    client = Client(address)
    client.send_raw(VT + msg(control="NOCR") + FS)
    assert client.answer() == ("AA", "NOCR", "")
    client.close()


def test_device_states_follow_what_the_device_sends(store) -> None:
    states: list[tuple[str, str]] = []
    listener = MllpListener(BED_RULE, ListenerConfig(port=0))
    address = listener.start_in_thread(store, lambda device, state: states.append((device, state)))
    try:
        client = Client(address)
        off = Sample(1, None, None, None, probe_off=True, artefact=False)
        assert client.exchange(msg(control="ST-1"))[0] == "AA"
        assert client.exchange(msg(control="ST-2"))[0] == "AA"
        assert client.exchange(build_message("philips", off, "ST-3", WHEN, bed="BED-1"))[0] == "AA"
        assert client.exchange(msg(control="ST-4"))[0] == "AA"
        assert client.exchange(msg("mindray", control="ST-5"))[0] == "AA"
        client.close()
        deadline = time.monotonic() + 20
        while len(states) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)  # the close is seen by the listener's thread
    finally:
        listener.stop()
    assert states == [
        ("MX450-0001", "connected"),
        ("MX450-0001", "probe_off"),
        ("MX450-0001", "connected"),
        ("MR-BV-0001", "connected"),
        ("MX450-0001", "disconnected"),
        ("MR-BV-0001", "disconnected"),
    ]


def test_the_listener_is_a_reading_source() -> None:
    assert isinstance(MllpListener(BED_RULE), ReadingSource)


def test_stop_before_the_loop_runs_means_it_never_serves(store) -> None:
    listener = MllpListener(BED_RULE, ListenerConfig(port=0))
    listener.stop()
    asyncio.run(asyncio.wait_for(listener.run(store), 10))  # returns instead of serving
    assert listener.address is None
