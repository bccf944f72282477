"""``kapmonitor capture``'s writer in a process of its own (issue 13's throughput): what it must
keep of the in-process writer, and the faults only a second process has.

The same program is started as ``kapmonitor _device-writer`` and spoken to over its pipes. These
tests start the real child: an answer comes only after its commit, a child that dies fails only
the batch it held (the next batch starts a new child, and the monitor's resend is stored once),
the database's keys never appear where another user could read them, and a file it cannot open
is said in plain words with no child left behind."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kapmonitor.capture_writer import WriterProcess
from kapmonitor.devices.hl7_message import parse_oru
from kapmonitor.devices.simulator import messages
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import encryption
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import new_keys
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify_database
from tests.factories import T0, protocol, session_start
from tests.test_capture_group_commit import stored

WHEN = datetime(2026, 3, 2, 9, 1, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Path, str, bytes]]:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    keys = new_keys()
    store = SessionStore.open(path, clock, keys=keys)  # encrypted: remembered by this process
    sid = store.start_session(session_start(clock), "Dr A", protocol=protocol("clinic-ketamine"))
    store.close()
    yield path, sid, keys.master


def readings(prefix: str, count: int) -> list[list]:
    wire = list(messages("mindray", count, start=WHEN, prefix=prefix, bed="BED-1"))[:count]
    return [parse_oru(m, WHEN).readings for m in wire]


def wait_dead(pid: int) -> None:
    """Until the killed child is a zombie or gone (an event, polled with a generous cap)."""
    for _ in range(1000):
        stat, tasks = Path(f"/proc/{pid}/stat"), Path(f"/proc/{pid}/task")
        try:
            # a zombie whose threads are all gone too (the leader is a zombie before them)
            if stat.read_text().split(") ")[1].startswith("Z") and len(list(tasks.iterdir())) <= 1:
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"process {pid} did not die")


def test_the_child_answers_after_its_commit_with_the_rows_it_wrote(
    db: tuple[Path, str, bytes],
) -> None:
    path, sid, _master = db
    writer = WriterProcess(path, sid)
    try:
        batch = readings("P-", 5)
        results = writer.add_messages(batch)
        assert all(isinstance(r, Changes) for r in results)
        # every row the child wrote comes back typed, and it is in the file already
        on_disk = set(stored(path))
        for result, sent in zip(results, batch, strict=True):
            assert isinstance(result, Changes)
            got = {(r["device_id"], r["message_id"], r["vital"]) for r in result.device_readings}
            assert got == {(r.device_id, r.message_id, r.vital) for r in sent}
            assert got <= on_disk
        assert any(r.of("vitals") for r in results if isinstance(r, Changes))  # SpO2/HR confirmed
        assert writer.patient_code()
        assert writer.checkpoint()
    finally:
        writer.close()
    assert verify_database(path).problems == []


def test_a_child_that_dies_fails_only_its_batch_and_the_resend_is_stored_once(
    db: tuple[Path, str, bytes],
) -> None:
    path, sid, _master = db
    writer = WriterProcess(path, sid)
    try:
        first, second = readings("K-", 6)[:3], readings("K-", 6)[3:]
        writer.add_messages(first)
        gone = writer.pid or 0
        os.kill(gone, signal.SIGKILL)  # killed between two batches ...
        wait_dead(gone)
        results = writer.add_messages(second)  # ... a new child takes the next
        assert writer.starts == 2
        assert all(isinstance(r, Changes) for r in results)
        pid = writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # ... and one killed while it holds a batch
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StoreError, match="stopped before it answered"):
            writer.add_messages(readings("L-", 2))
        # the monitor resends what was not acknowledged, and a resend of what was: once each
        again = writer.add_messages(readings("L-", 2) + second)
        assert all(isinstance(r, Changes) for r in again)
        assert writer.starts == 3
    finally:
        writer.close()
    keys = stored(path)
    assert len(keys) == len(set(keys))
    assert {k[1] for k in keys} >= {r.message_id for m in readings("L-", 2) for r in m}
    assert verify_database(path).problems == []


def test_the_keys_go_through_the_pipe_never_the_command_line_or_environment(
    db: tuple[Path, str, bytes],
) -> None:
    path, sid, master = db
    writer = WriterProcess(path, sid)
    try:
        pid = writer.pid
        assert pid is not None
        for name in ("cmdline", "environ"):
            seen = Path(f"/proc/{pid}/{name}").read_bytes()
            assert master not in seen and master.hex().encode() not in seen
    finally:
        writer.close()


def test_a_file_the_child_cannot_open_is_said_plainly_and_no_child_is_left(
    db: tuple[Path, str, bytes],
) -> None:
    path, sid, _master = db
    encryption.forget(path)  # this process no longer holds the keys: neither will the child
    with pytest.raises(StoreError) as refused:
        WriterProcess(path, sid)
    assert "Traceback" not in str(refused.value)
    assert str(refused.value)
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    alive = children.read_text().split() if children.exists() else []
    for pid in alive:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"_device-writer" not in cmdline


def test_a_session_that_takes_no_readings_is_refused_in_the_stores_own_words(
    db: tuple[Path, str, bytes],
) -> None:
    path, _sid, _master = db
    writer = WriterProcess(path, "no-such-session")
    try:
        with pytest.raises(StoreError) as refused:
            writer.patient_code()
        assert "does not exist" in str(refused.value)
        with pytest.raises(StoreError, match="does not exist"):
            writer.add_messages(readings("N-", 1))
        assert writer.starts == 1  # a refusal is an answer: the child serves on
    finally:
        writer.close()


def test_ctrl_c_reaching_the_child_does_not_cut_its_work(db: tuple[Path, str, bytes]) -> None:
    """Ctrl-C goes to the whole process group; the child leaves stopping to its parent."""
    path, sid, _master = db
    writer = WriterProcess(path, sid)
    try:
        os.kill(writer.pid or 0, signal.SIGINT)
        results = writer.add_messages(readings("I-", 2))
        assert all(isinstance(r, Changes) for r in results)
        assert writer.starts == 1
    finally:
        writer.close()


def test_a_writer_killed_mid_flush_leaves_no_aa_unstored_and_serving_goes_on(
    db: tuple[Path, str, bytes],
) -> None:
    """A gateway pipelines its buffer while the writer process is killed under it: every
    message answered AA is in the file, the others were answered AE (the gateway resends them),
    and the next messages are stored by a new writer."""
    from kapmonitor.devices.mllp import frame
    from tests.devices.test_mllp_listener import Client
    from tests.test_capture_group_commit import Served, control, feed

    path, sid, _master = db
    served = Served(path, sid, in_process=False)
    try:
        process = served.writer.process
        assert process is not None
        first = process.pid
        wire = feed("G-", 300)
        client = Client(served.address)
        client.send_raw(b"".join(frame(m) for m in wire[:20]))
        got = [client.answer() for _ in range(20)]  # a writer under way ...
        os.kill(first or 0, signal.SIGSTOP)  # ... held, while the gateway flushes
        client.send_raw(b"".join(frame(m) for m in wire[20:120]))
        for _ in range(3000):  # until a batch is in its hands (an event, polled, capped)
            if process.in_flight:
                break
            threading.Event().wait(0.01)
        assert process.in_flight
        os.kill(first or 0, signal.SIGKILL)  # ... and killed with batches in flight
        got += [client.answer() for _ in range(100)]
        client.send_raw(b"".join(frame(m) for m in wire[120:]))
        got += [client.answer() for _ in range(180)]
        assert all(a is not None for a in got)
        codes = {a[1]: a[0] for a in got if a is not None}
        assert set(codes.values()) == {"AA", "AE"}  # the held batches were refused, not lost
        on_disk = {k[1] for k in stored(path)}
        acknowledged = {c for c, code in codes.items() if code == "AA"}
        assert acknowledged <= on_disk  # AA means stored, across the writer's death
        assert all(codes[control(m)] == "AA" for m in wire[120:])  # a new writer took over
        assert process.starts >= 2 and process.pid != first
        # the gateway resends what was refused: stored once, AA
        for m in wire:
            if codes[control(m)] == "AE":
                answer = client.exchange(m)
                assert answer is not None and answer[:2] == ("AA", control(m))
        client.close()
    finally:
        served.close()
    keys = stored(path)
    assert len(keys) == len(set(keys))
    assert {k[1] for k in keys} == {control(m) for m in wire}
    assert verify_database(path).problems == []
