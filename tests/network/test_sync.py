"""Sync against a real PostgreSQL: two laptops, the archive converging, each row stored once."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import VitalSigns
from kapmonitor.network import state
from kapmonitor.network.connection import NetworkError
from kapmonitor.network.local_server import ADMIN_PASSWORD
from kapmonitor.network.status import sync_status
from kapmonitor.network.sync import Hooks, SyncRunner, sync_once
from kapmonitor.store import anchors
from kapmonitor.store.database import connect_readonly
from tests.factories import T0, session_start
from tests.network.conftest import (
    Archive,
    local_counts,
    make_laptop,
    record_demo_session,
    server_counts,
)


def test_two_laptops_record_and_the_archive_holds_every_row_of_each_once(
    archive: Archive, tmp_path: Path
) -> None:
    urls = {name: archive.add_laptop(name) for name in ("room-1", "room-2")}
    laptops = {name: make_laptop(tmp_path / name, name) for name in urls}
    sessions = {
        name: record_demo_session(laptop, seed=i)
        for i, (name, laptop) in enumerate(laptops.items())
    }
    for name, laptop in laptops.items():
        result = sync_once(laptop.path, urls[name], laptop.keys, batch_rows=40)
        assert result.laptop_id == name
        assert result.batches > 2  # many batches, not one
        assert server_counts(archive, name) == local_counts(laptop)
        assert result.stored == sum(local_counts(laptop).values())
    # the sessions keep their global ids, each under its laptop
    rows = archive.query("SELECT laptop_id, id, patient_code FROM kap.sessions ORDER BY laptop_id")
    assert [(r[0], r[1]) for r in rows] == [
        ("room-1", sessions["room-1"]),
        ("room-2", sessions["room-2"]),
    ]
    # values arrive unchanged: the laptop's own vitals, row for row
    db = connect_readonly(laptops["room-1"].path, laptops["room-1"].keys)
    local = db.execute(
        "SELECT id, session_id, hr, sbp, recorded_at FROM vitals ORDER BY id"
    ).fetchall()
    head = anchors.head(db)
    db.close()
    central = archive.query(
        "SELECT local_id, session_id, hr, sbp, recorded_at FROM kap.vitals "
        "WHERE laptop_id = 'room-1' ORDER BY local_id"
    )
    assert [tuple(r) for r in local] == central
    assert head is not None
    assert archive.query("SELECT entry, mac FROM kap.chain_heads WHERE laptop_id = 'room-1'") == [
        (head.entry, head.mac)
    ]
    # a second pass sends nothing and stores nothing
    again = sync_once(laptops["room-1"].path, urls["room-1"], laptops["room-1"].keys)
    assert (again.sent_total, again.stored) == (0, 0)
    assert server_counts(archive, "room-1") == local_counts(laptops["room-1"])


def test_a_batch_pushed_twice_is_stored_once(archive: Archive, tmp_path: Path) -> None:
    """Two passes at once (the window's runner and the command line): the second reads the
    marks, the first then sends everything, and the second sends it all again."""
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=1)
    inner: list[int] = []

    def other_pass_runs_now() -> None:
        inner.append(sync_once(laptop.path, url, laptop.keys).stored)

    replay = sync_once(
        laptop.path, url, laptop.keys, batch_rows=25, hooks=Hooks(after_marks=other_pass_runs_now)
    )
    total = sum(local_counts(laptop).values())
    assert inner == [total]
    assert replay.sent_total == total  # every row went a second time…
    assert replay.stored == 0  # …and none was stored twice
    assert server_counts(archive, "room-1") == local_counts(laptop)


def test_the_connection_cut_after_the_server_commit_loses_nothing_and_stores_nothing_twice(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=2)

    def cut(batch: int) -> None:
        if batch == 2:  # the server committed batch 2; the laptop never hears of it
            raise NetworkError("connection cut", "offline")

    with pytest.raises(NetworkError, match="connection cut"):
        sync_once(laptop.path, url, laptop.keys, batch_rows=20, hooks=Hooks(after_commit=cut))
    saved = state.load(laptop.path)
    assert saved.last_error == "connection cut"
    on_server = sum(server_counts(archive, "room-1").values())
    assert on_server == 40  # two whole batches committed
    assert sync_status(laptop.path, laptop.keys).total == sum(local_counts(laptop).values()) - 20
    result = sync_once(laptop.path, url, laptop.keys, batch_rows=20)
    assert result.stored == sum(local_counts(laptop).values()) - 40
    assert server_counts(archive, "room-1") == local_counts(laptop)
    assert sync_status(laptop.path, laptop.keys).total == 0
    assert state.load(laptop.path).last_error == ""


@pytest.mark.parametrize("when", ["between batches", "before a commit"])
def test_the_server_stopped_mid_sync_then_restarted_converges(
    archive: Archive, tmp_path: Path, when: str
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=3)
    server = archive.server

    def crash(batch: int) -> None:
        if batch == 2:
            server.stop("immediate")

    hooks = Hooks(after_commit=crash) if when == "between batches" else Hooks(before_commit=crash)
    try:
        with pytest.raises(NetworkError) as failed:
            sync_once(laptop.path, url, laptop.keys, batch_rows=15, hooks=hooks)
        assert "Nothing is lost" in str(failed.value)
        assert ADMIN_PASSWORD not in str(failed.value)
        with pytest.raises(NetworkError, match="cannot be reached"):
            sync_once(laptop.path, url, laptop.keys)  # still down: refused in plain words
    finally:
        server.start()
    committed = sum(server_counts(archive, "room-1").values())
    assert committed == (30 if when == "between batches" else 15)
    sync_once(laptop.path, url, laptop.keys, batch_rows=15)
    assert server_counts(archive, "room-1") == local_counts(laptop)


def test_a_laptop_offline_for_a_day_of_sessions_catches_up(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=4)
    sync_once(laptop.path, url, laptop.keys)
    offline = url.replace(f":{archive.server.port}/", ":1/")  # nothing listens there
    for session in range(6):  # a clinic day: six sessions, a sync tried after each
        laptop.clock.set(T0 + timedelta(days=1, hours=1 + 1.5 * session))
        record_demo_session(laptop, seed=10 + session)
        with pytest.raises(NetworkError, match="cannot be reached"):
            sync_once(laptop.path, offline, laptop.keys)
    status = sync_status(laptop.path, laptop.keys)
    assert status.total == sum(local_counts(laptop).values()) - sum(
        server_counts(archive, "room-1").values()
    )
    assert status.pending["sessions"] == 6
    assert "cannot be reached" in status.last_error
    lag = status.lag_seconds(laptop.clock.now())
    assert lag is not None and lag > 8 * 3600  # the first session of the day still waits
    assert any(line.startswith("Lag: ") for line in status.lines(laptop.clock.now()))
    sync_once(laptop.path, url, laptop.keys)
    assert server_counts(archive, "room-1") == local_counts(laptop)
    assert archive.query("SELECT count(*) FROM kap.sessions")[0][0] == 7
    assert sync_status(laptop.path, laptop.keys).lines()[-1].startswith("Pending: nothing")


def test_a_laptop_clock_ten_minutes_off_keeps_its_times_and_the_server_stamps_its_own(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    with psycopg.connect(archive.admin_url) as conn:
        server_now = conn.execute("SELECT now()").fetchone()[0]
    ahead = FakeClock(server_now.replace(microsecond=0) + timedelta(minutes=10))
    laptop = make_laptop(tmp_path, "room-1", ahead)
    store = laptop.store()
    sid = store.start_session(session_start(ahead), "Dr A")
    store.add(sid, VitalSigns(ahead.now(), hr=71, sbp=118, dbp=76, spo2=97), "Dr A")
    store.close()
    sync_once(laptop.path, url, laptop.keys)
    with psycopg.connect(archive.admin_url) as conn:
        after = conn.execute("SELECT now()").fetchone()[0]
    ((recorded, received),) = archive.query(
        "SELECT recorded_at, server_received_at FROM kap.vitals"
    )
    assert recorded == to_iso(ahead.now())  # the laptop's time, unchanged
    assert server_now <= received <= after  # the server's own clock
    assert received < ahead.now()  # …which is not the laptop's (ten minutes ahead)


def test_the_runner_syncs_on_its_own_thread_and_reports_failure_in_plain_words(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=5)
    runner = SyncRunner(laptop.path, url, laptop.keys, interval_s=3600)
    runner.start()
    runner.stop()  # the first pass runs, and stop() waits for it
    assert runner.status().last_error == ""
    assert runner.status().last_sent == sum(local_counts(laptop).values())
    assert server_counts(archive, "room-1") == local_counts(laptop)
    broken = SyncRunner(laptop.path, url.replace(f":{archive.server.port}/", ":1/"), laptop.keys)
    assert broken.run_once() is None
    assert "cannot be reached" in broken.status().last_error


def test_a_role_that_is_not_a_laptop_is_refused_and_the_state_file_is_private(
    archive: Archive, tmp_path: Path
) -> None:
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=6)
    with pytest.raises(NetworkError, match="not registered as a laptop"):
        sync_once(laptop.path, archive.admin_url, laptop.keys)
    saved = state.state_path(laptop.path)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert ADMIN_PASSWORD not in saved.read_text()
    assert archive.query("SELECT count(*) FROM kap.sessions") == [(0,)]


def test_a_lost_sync_state_file_loses_nothing_and_resends_nothing(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=20)
    sync_once(laptop.path, url, laptop.keys)
    state.state_path(laptop.path).unlink()
    assert sync_status(laptop.path, laptop.keys).total > 0  # it no longer knows: over-counts
    again = sync_once(laptop.path, url, laptop.keys)  # the server's own marks
    assert (again.sent_total, again.stored) == (0, 0)
    assert sync_status(laptop.path, laptop.keys).total == 0
    assert server_counts(archive, "room-1") == local_counts(laptop)


def test_two_laptops_syncing_at_once_each_twice_store_every_row_once(
    archive: Archive, tmp_path: Path
) -> None:
    import threading

    urls = {name: archive.add_laptop(name) for name in ("room-1", "room-2")}
    laptops = {name: make_laptop(tmp_path / name, name) for name in urls}
    for seed, laptop in enumerate(laptops.values()):
        record_demo_session(laptop, seed=30 + seed)
    runners = [
        SyncRunner(laptop.path, urls[name], laptop.keys, batch_rows=30)
        for name, laptop in laptops.items()
        for _twice in range(2)
    ]
    start = threading.Barrier(len(runners))

    def run(runner: SyncRunner) -> None:
        start.wait()
        runner.run_once()

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status().last_error for r in runners] == [""] * 4
    for name, laptop in laptops.items():
        assert server_counts(archive, name) == local_counts(laptop)
