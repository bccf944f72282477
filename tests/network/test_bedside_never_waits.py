"""The bedside never waits for the network (issue 14's must-show), without Qt: the window's sync
runner (:class:`BackgroundSync`) is asked after every save and the save path only sets an event,
so saves commit while a pass hangs on a server that never answers; a burst of requests makes
one pass; the slow-link proxy of ``kapmonitor bench`` relays a real sync whole; the bench's
side-by-side rows are produced against a real server. Also the saved connection (address
checks, the sealed password) and the failure in plain words.

No timed assertions: what was stored, what the runner reports, how many passes ran.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from kapmonitor import bench_sync_latency
from kapmonitor.bench_sync_latency import SlowProxy, save_latency_rows
from kapmonitor.domain.records import VitalSigns
from kapmonitor.network import connection
from kapmonitor.network.background import (
    BackgroundSync,
    SyncReport,
    check_url,
    load_password,
    plain_error,
    save_password,
    with_password,
)
from kapmonitor.network.connection import NetworkError
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import DatabaseKeys
from tests.factories import session_start
from tests.network.conftest import (
    Archive,
    local_counts,
    make_laptop,
    record_demo_session,
    server_counts,
)


class HangingServer:
    """Takes TCP connections and never answers (a server wedged, a firewall eating replies)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def wait_for(condition: object, what: str, limit_s: float = 60.0) -> None:
    """Poll until ``condition()`` holds (a bound for a hung test, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def test_saves_commit_while_a_pass_hangs_on_a_server_that_never_answers(
    tmp_path: Path, hanging: HangingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "CONNECT_TIMEOUT_S", 600)  # stuck until the server goes
    laptop = make_laptop(tmp_path, "room-1")
    store = laptop.store()
    sid = store.start_session(session_start(laptop.clock), "Dr A")
    reports: list[SyncReport] = []
    url = f"postgresql://kap_k_room_1:pw-never-shown@127.0.0.1:{hanging.port}/kapmonitor"
    runner = BackgroundSync(laptop.path, url, laptop.keys, interval_s=600, on_report=reports.append)
    runner.start()
    thread = runner._thread
    try:
        wait_for(lambda: hanging.held and runner.status().running, "the first pass hangs")
        for n in range(5):
            laptop.clock.advance(minutes=1)
            vitals = VitalSigns(laptop.clock.now(), hr=70 + n, sbp=120, dbp=80, spo2=97)
            store.add(sid, vitals, "Dr A")
            runner.request()  # what the window does after each commit
        # all five committed while the pass is still inside its connect
        assert runner.status().running and runner.passes == 0 and reports == []
        assert [r[0] for r in store.db.execute("SELECT hr FROM vitals ORDER BY id")] == [
            70,
            71,
            72,
            73,
            74,
        ]
    finally:
        hanging.close()
    wait_for(lambda: reports, "the stuck pass ends once the server goes away")
    assert reports[0].state == "error" and "pw-never-shown" not in reports[0].error
    assert reports[0].pending > 5  # the session, its rows and audit entries wait
    runner.stop(30)
    assert thread is not None and not thread.is_alive()
    store.close()


def test_a_burst_of_saves_makes_one_pass_and_everything_reaches_the_server(
    archive: Archive, tmp_path: Path
) -> None:
    laptop = make_laptop(tmp_path, "room-2")
    url = archive.add_laptop("room-2")
    store = laptop.store()
    sid = store.start_session(session_start(laptop.clock), "Dr A")
    reports: list[SyncReport] = []
    runner = BackgroundSync(
        laptop.path, url, laptop.keys, interval_s=600, on_report=reports.append, debounce_s=3.0
    )
    runner.start()
    try:
        wait_for(lambda: runner.passes == 1, "the first pass")
        for n in range(20):
            laptop.clock.advance(seconds=30)
            store.add(sid, VitalSigns(laptop.clock.now(), hr=60 + n, spo2=98), "Dr A")
            runner.request()
        wait_for(lambda: runner.passes == 2, "the pass the burst asked for")
        time.sleep(1.0)
        assert runner.passes == 2  # twenty requests inside the debounce: one pass
        assert reports[-1].state == "ok" and reports[-1].pending == 0
        assert server_counts(archive, "room-2") == local_counts(laptop)
    finally:
        runner.stop(30)
        store.close()


def test_the_slow_link_proxy_relays_a_real_sync_whole(archive: Archive, tmp_path: Path) -> None:
    laptop = make_laptop(tmp_path, "room-3")
    url = archive.add_laptop("room-3")
    record_demo_session(laptop, seed=3)
    parts = urlsplit(url)
    proxy = SlowProxy((str(parts.hostname), int(parts.port or 5432)), delay_s=0.05)
    try:
        via = url.replace(f":{parts.port}/", f":{proxy.port}/")
        reports: list[SyncReport] = []
        runner = BackgroundSync(laptop.path, via, laptop.keys, on_report=reports.append)
        assert runner.run_once() is not None, reports
        assert server_counts(archive, "room-3") == local_counts(laptop)
        with psycopg.connect(via) as conn:  # and an ordinary query round trip
            assert conn.execute("SELECT kap.my_laptop()").fetchone() == ("room-3",)
    finally:
        proxy.close()


def test_the_bench_rows_compare_the_four_conditions_against_a_real_server(
    archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(bench_sync_latency.SERVER_ENV, archive.admin_url)
    monkeypatch.setattr(bench_sync_latency, "SAVE_GAP_S", 0.0)
    monkeypatch.setattr(bench_sync_latency, "PROXY_DELAY_S", 0.05)
    rows = save_latency_rows(tmp_path, quick=True)
    names = [r.name for r in rows]
    assert len(rows) == 8 and names[1::2] == ["  … p99"] * 4
    for label in ("no sync runner", "server down", "server slow (+50 ms", "server up"):
        assert any(label in name for name in names[0::2]), label
    assert all(r.unit == "ms" and r.value is not None and r.value > 0 for r in rows)
    assert "passes" not in rows[0].note and "passes" in rows[2].note
    # the up and slow laptops' saves reached the server (their runners really ran; a block's
    # last saves may wait for the next round's pass, so not all of them)
    sent = dict(archive.query("SELECT laptop_id, count(*) FROM kap.vitals GROUP BY laptop_id"))
    assert sorted(k.split("-")[1] for k in sent) == ["slow", "up"]
    assert all(n > 0 for n in sent.values())


# --- the saved connection and the words ---------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "it starts postgresql://"),
        ("mysql://u@h/db", "it starts postgresql://"),
        ("postgresql://h:99999/db", "port"),
        ("postgresql://u@h:abc/db", "the port must be a number"),
        ("postgresql://h/db", "role before the @"),
        ("postgresql://u@h", "database name"),
        ("postgresql://u:secret@h/db", "Leave the password out"),
    ],
)
def test_a_bad_address_is_refused_in_words(typed: str, said: str) -> None:
    with pytest.raises(NetworkError) as refused:
        check_url(typed)
    assert said in str(refused.value) and "secret" not in str(refused.value)


def test_a_good_address_passes_and_carries_a_password_only_in_memory() -> None:
    url = check_url("  postgresql://kap_k_room_1@clinic-pc:5432/kapmonitor?sslmode=verify-full ")
    assert url == "postgresql://kap_k_room_1@clinic-pc:5432/kapmonitor?sslmode=verify-full"
    full = with_password(url, "p@ss:w/rd %")
    assert urlsplit(full).password is not None
    assert connection.redact(full) == (
        "postgresql://kap_k_room_1:***@clinic-pc:5432/kapmonitor?sslmode=verify-full"
    )
    assert with_password(url, None) == url


def test_the_password_is_sealed_under_this_databases_key(tmp_path: Path) -> None:
    db = tmp_path / "laptop.sqlite"
    keys = DatabaseKeys(master=bytes(range(32)))
    save_password(db, keys, "correct horse")
    sealed = (tmp_path / "laptop.sqlite.server-password").read_text()
    assert "correct horse" not in sealed
    assert load_password(db, keys) == "correct horse"
    assert load_password(db, DatabaseKeys(master=bytes(32))) is None  # another database
    (tmp_path / "laptop.sqlite.server-password").write_text("{not json")
    assert load_password(db, keys) is None
    assert load_password(tmp_path / "none.sqlite", keys) is None


def test_the_failures_in_plain_words() -> None:
    url = "postgresql://kap_k_room_1:hunter2@clinic-pc:5432/kapmonitor"
    offline = NetworkError("…", "offline")
    offline.__cause__ = psycopg.OperationalError(
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: Connection '
        "refused\n\tIs the server running on that host and accepting TCP/IP connections?"
    )
    assert plain_error(offline, url, 42) == (
        "The clinic server cannot be reached (connection refused at clinic-pc:5432); 42 entries "
        "wait on this laptop and will be sent when it is back."
    )
    offline.__cause__ = psycopg.OperationalError("connection timeout expired")
    assert "(no answer in time at clinic-pc:5432); 1 entry waits" in plain_error(offline, url, 1)
    auth = NetworkError("…", "auth")
    said = plain_error(auth, url, 3)
    assert said.startswith("The clinic server at clinic-pc:5432 did not accept this laptop's")
    assert "hunter2" not in said and "3 entries wait" in said
    other = StoreError("Sync refused: the file was rolled back.", "diverged")
    assert plain_error(other, url, 2).startswith("Sync refused: the file was rolled back. (2 ")
