"""Group commit through the real (encrypted) store (issue 13): what arrives while a transaction
commits is stored in the next ONE transaction, and each message is answered ``AA`` only after
that transaction committed; a failing batch answers none of its messages ``AA``; a message
refused for itself does not sink the others; duplicates inside a batch are stored once.

The writer thread is held on purpose (a job queued on it waits for an Event) so that messages
really arrive while a commit is "in progress": deterministic, and no time is asserted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kapmonitor.capture import StoreWriter
from kapmonitor.devices.hl7_message import parse_oru
from kapmonitor.devices.mllp import frame
from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.simulator import messages
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import device_store
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import new_keys
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify_database
from tests.devices.test_mllp_listener import Client
from tests.factories import T0, protocol, session_start

WHEN = datetime(2026, 3, 2, 9, 1, tzinfo=UTC)


def feed(prefix: str, count: int, bed: str = "BED-1") -> list[bytes]:
    return list(messages("mindray", count, start=WHEN, prefix=prefix, bed=bed))[:count]


def control(payload: bytes) -> str:
    return parse_oru(payload, WHEN).control_id


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    store = SessionStore.open(path, clock, keys=new_keys())  # encrypted, as a clinic's file
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    store.close()
    yield path, sid


class Served:
    def __init__(self, path: Path, sid: str, in_process: bool = True) -> None:
        self.writer = StoreWriter(path, sid, in_process=in_process)
        self.listener = MllpListener(PatientRule("bed", "BED-1"), ListenerConfig(port=0))
        self.address = self.listener.start_in_thread(self.writer.sink)
        self.gate = threading.Event()

    def hold_writer(self) -> None:
        """Occupy the writer thread, as a long commit would, until :meth:`release`."""
        self.gate.clear()
        self.writer.pool.submit(self.gate.wait, 60)

    def wait_queued(self, count: int, committing: int = 1) -> None:
        """Until ``committing`` messages are in the (held) transaction and ``count`` wait for
        the next one: an event, polled with a generous cap, not a timed assertion."""
        for _ in range(3000):
            if self.writer.committing >= committing and self.writer.queued >= count:
                return
            threading.Event().wait(0.01)
        raise AssertionError(
            f"{self.writer.committing} committing, {self.writer.queued} queued; "
            f"expected {committing} and {count}"
        )

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.listener.stop()
        self.writer.close()


@pytest.fixture
def served(db: tuple[Path, str]) -> Iterator[Served]:
    """The writer in this process: the tests that put a fault into the store's functions."""
    s = Served(*db)
    yield s
    s.close()


@pytest.fixture(params=["in this process", "in its own process"])
def either(request: pytest.FixtureRequest, db: tuple[Path, str]) -> Iterator[Served]:
    """The writer both ways: here, and as ``kapmonitor capture`` runs it (its own process)."""
    s = Served(*db, in_process=request.param == "in this process")
    yield s
    s.close()


def message_by_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every batch down the path that writes a message at a time (the one a message's
    own failure takes, and the one these faults are put into)."""
    monkeypatch.setattr(device_store, "_together_allowed", lambda *_args: False)


def stored(path: Path) -> list[tuple[str, str, str]]:
    conn = connect_readonly(path)
    try:
        return [
            tuple(r)
            for r in conn.execute("SELECT device_id, message_id, vital FROM device_readings")
        ]
    finally:
        conn.close()


def answers(client: Client, count: int) -> list[tuple[str, str]]:
    got = []
    for _ in range(count):
        answer = client.answer()
        assert answer is not None, "the listener closed the connection"
        got.append(answer[:2])
    return got


def test_many_senders_at_once_are_stored_exactly_once_in_one_transaction(
    either: Served, db: tuple[Path, str]
) -> None:
    path, _sid = db
    served = either
    feeds = {c: feed(f"C{c}-", 6) for c in range(10)}
    clients = {c: Client(served.address) for c in feeds}
    served.hold_writer()
    before = served.writer.batches
    clients[0].send_raw(frame(feeds[0][0]))
    served.wait_queued(0)  # a transaction is under way (held) ...
    # ... while every connection pipelines (the rest of) its feed
    for c, client in clients.items():
        client.send_raw(b"".join(frame(m) for m in feeds[c][1 if c == 0 else 0 :]))
    total = sum(len(f) for f in feeds.values())
    served.wait_queued(total - 1)  # they all wait, together, for the next transaction
    for client in clients.values():
        assert not client.has_data(0.05)  # nothing answered before its transaction committed
    served.release()
    with ThreadPoolExecutor(len(clients)) as pool:
        replies = pool.map(lambda c: answers(clients[c], len(feeds[c])), clients)
        got = dict(zip(clients, replies, strict=True))
    for c, client in clients.items():
        client.close()
        # one ACK per message, AA, in the order this connection sent them
        assert got[c] == [("AA", control(m)) for m in feeds[c]]
    assert served.writer.batches - before == 2  # the held one, then ALL the others together
    keys = stored(path)
    assert len(keys) == len(set(keys))
    expected = {
        (r.device_id, r.message_id, r.vital)
        for f in feeds.values()
        for m in f
        for r in parse_oru(m, WHEN).readings
    }
    assert expected <= set(keys)
    assert verify_database(path).problems == []


def test_a_failing_batch_answers_none_of_its_messages_aa_and_serving_goes_on(
    served: Served, db: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _sid = db
    real = device_store._store_message
    calls = {"n": 0}

    def fails_on_the_third(store, session_id, readings, protocol, *rest):
        calls["n"] += 1
        written = real(store, session_id, readings, protocol, *rest)
        if calls["n"] == 3:  # the first two messages are already written in this transaction
            raise sqlite3.OperationalError("disk I/O error")
        return written

    monkeypatch.setattr(device_store, "_store_message", fails_on_the_third)
    message_by_message(monkeypatch)
    wire = feed("X-", 5)
    client = Client(served.address)
    served.hold_writer()
    client.send_raw(frame(wire[0]))
    served.wait_queued(0)
    client.send_raw(b"".join(frame(m) for m in wire[1:]))
    served.wait_queued(len(wire) - 1)
    served.release()
    got = answers(client, len(wire))
    # the first message was its own (held) batch and committed; the other four shared the
    # failing one: none of them is AA, and none of their readings is in the file
    assert got[0] == ("AA", control(wire[0]))
    assert got[1:] == [("AE", control(m)) for m in wire[1:]]
    messages_stored = {k[1] for k in stored(path)}
    assert messages_stored == {control(wire[0])}
    # the monitor resends the refused ones: now stored, once, and answered AA
    monkeypatch.setattr(device_store, "_store_message", real)
    for m in wire[1:]:
        assert client.exchange(m)[:2] == ("AA", control(m))
    client.close()
    keys = stored(path)
    assert {k[1] for k in keys} == {control(m) for m in wire}
    assert len(keys) == len(set(keys))
    assert verify_database(path).problems == []


def test_a_message_refused_for_itself_does_not_sink_the_others_of_its_batch(
    served: Served, db: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _sid = db
    real = device_store._store_message
    wire = feed("Y-", 5)
    bad = control(wire[2])

    def refuses_one(store, session_id, readings, protocol, *rest):
        written = real(store, session_id, readings, protocol, *rest)  # written, then refused:
        if readings[0].message_id == bad:  # its savepoint must take its rows back out
            raise sqlite3.IntegrityError("CHECK constraint failed: value")
        return written

    monkeypatch.setattr(device_store, "_store_message", refuses_one)
    message_by_message(monkeypatch)
    client = Client(served.address)
    served.hold_writer()
    client.send_raw(frame(wire[0]))
    served.wait_queued(0)
    client.send_raw(b"".join(frame(m) for m in wire[1:]))
    served.wait_queued(len(wire) - 1)  # the bad one and three good ones: one transaction
    served.release()
    got = answers(client, len(wire))
    client.close()
    assert got == [("AE" if control(m) == bad else "AA", control(m)) for m in wire]
    messages_stored = {k[1] for k in stored(path)}
    assert messages_stored == {control(m) for m in wire} - {bad}
    assert verify_database(path).problems == []


def test_the_same_message_twice_in_one_batch_is_answered_twice_and_stored_once(
    either: Served, db: tuple[Path, str]
) -> None:
    path, _sid = db
    served = either
    first, again = feed("D-", 2)
    one, two = Client(served.address), Client(served.address)
    served.hold_writer()
    one.send_raw(frame(first))
    served.wait_queued(0)  # held in its transaction while the copies arrive
    one.send_raw(frame(again) + frame(again))  # pipelined twice on one connection ...
    two.send_raw(frame(again))  # ... and once more from another
    served.release()
    assert answers(one, 3) == [("AA", control(first))] + [("AA", control(again))] * 2
    assert answers(two, 1) == [("AA", control(again))]
    one.close()
    two.close()
    keys = stored(path)
    assert len(keys) == len(set(keys))
    assert sum(1 for k in keys if k[1] == control(again)) == len(parse_oru(again, WHEN).readings)


def test_the_batch_store_isolates_messages_and_is_all_or_nothing_on_a_fault(
    db: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's batch entry point by itself: one result per message, in order."""
    path, sid = db
    store = SessionStore.open(path)
    try:
        batch = [parse_oru(m, WHEN).readings for m in feed("B-", 4)]
        batch.insert(2, batch[1])  # a repeat inside the batch: stored once, empty change
        results = device_store.add_device_messages(store, sid, batch)
        assert [type(r).__name__ for r in results] == ["Changes"] * 5
        assert results[2].device_readings == ()
        assert all(r.device_readings for i, r in enumerate(results) if i != 2)

        def broken(*_args: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(device_store, "_store_message", broken)
        monkeypatch.setattr(device_store, "_run_together", broken)  # both ways of writing
        count = len(stored(path))
        with pytest.raises(StoreError):
            device_store.add_device_messages(store, sid, [batch[0]])
        assert len(stored(path)) == count
    finally:
        store.close()
