"""The issue's faults not already proved in test_sync.py / test_sync_witness.py, against a real
PostgreSQL, each ending with the rows' ids equal on both sides:

- the connection really cut (a TCP relay drops the server's answer to COMMIT): the batch is
  committed on the server and the laptop never hears of it (an "in-doubt" commit); the next
  pass resumes, and a replay of that batch is stored once;
- a laptop clock 10 minutes ahead or behind: the rows keep the laptop's times, the server stamps
  its own, `sync status` reads sensibly, and the live view shows the session as just begun and
  its next check when it is really due (not in the future, not 10 minutes old).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.network.connection import NetworkError
from kapmonitor.network.live import laptop_clock_offset, read_sessions
from kapmonitor.network.server_schema import sent_tables
from kapmonitor.network.status import sync_status
from kapmonitor.network.sync import Hooks, sync_once
from kapmonitor.store.database import connect_readonly
from tests.factories import protocol, session_start
from tests.network.conftest import (
    Archive,
    Laptop,
    local_counts,
    make_laptop,
    record_demo_session,
    server_counts,
)

BY = "Dr Admin"


def ids_both_sides(archive: Archive, name: str, laptop: Laptop) -> tuple[dict[str, list[int]], ...]:
    """Every sent table's row ids: (on the laptop, on the server for ``name``)."""
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        tables = sent_tables(db)
        local = {
            t: [r[0] for r in db.execute(f"SELECT rowid FROM [{t}] ORDER BY rowid")] for t in tables
        }
    finally:
        db.close()
    central = {
        t: [
            int(r[0])
            for r in archive.query(
                f"SELECT local_id FROM kap.{t} WHERE laptop_id = %s ORDER BY local_id", [name]
            )
        ]
        for t in tables
    }
    return local, central


def assert_converged(archive: Archive, name: str, laptop: Laptop) -> None:
    local, central = ids_both_sides(archive, name, laptop)
    assert central == local
    assert server_counts(archive, name) == local_counts(laptop)
    assert sync_status(laptop.path, laptop.keys).total == 0


class CuttingRelay:
    """A TCP relay to the server on loopback that, when armed, drops the server's next answer
    and closes both sides: the request (COMMIT) reached the server, its answer never arrives."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.armed = threading.Event()
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_server and self.armed.is_set():
                    self.armed.clear()
                    self.cuts += 1
                    return  # the answer is dropped; finally closes both sides
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_real_cut_after_the_servers_commit_then_a_replay_stores_every_row_once(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    relay = CuttingRelay(archive.server.port)
    via_relay = url.replace(f":{archive.server.port}/", f":{relay.port}/")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=51)
    total = sum(local_counts(laptop).values())

    def cut_at_commit(batch: int) -> None:
        if batch == 2:  # the inserts are done; COMMIT goes out next and its answer is dropped
            relay.armed.set()

    def in_doubt_pass() -> None:
        with pytest.raises(NetworkError) as failed:
            sync_once(
                laptop.path,
                via_relay,
                laptop.keys,
                batch_rows=20,
                hooks=Hooks(before_commit=cut_at_commit),
            )
        assert failed.value.kind == "offline" and "Nothing is lost" in str(failed.value)

    replayed: list[Any] = []
    try:
        # a second pass reads the server's marks first, then the in-doubt pass runs: the
        # second one then sends everything again, the in-doubt batch included (the replay)
        replayed.append(
            sync_once(
                laptop.path,
                url,
                laptop.keys,
                batch_rows=20,
                hooks=Hooks(after_marks=in_doubt_pass),
            )
        )
    finally:
        relay.close()
    assert relay.cuts == 1
    (replay,) = replayed
    assert replay.sent_total == total  # every row went again, the in-doubt batch with them…
    assert replay.stored == total - 40  # …and only what the server lacked was stored
    assert_converged(archive, "room-1", laptop)


def test_an_in_doubt_commit_alone_resumes_from_the_servers_marks(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    relay = CuttingRelay(archive.server.port)
    via_relay = url.replace(f":{archive.server.port}/", f":{relay.port}/")
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=52)
    total = sum(local_counts(laptop).values())
    try:
        with pytest.raises(NetworkError, match="Nothing is lost"):
            sync_once(
                laptop.path,
                via_relay,
                laptop.keys,
                batch_rows=20,
                hooks=Hooks(before_commit=lambda b: relay.armed.set() if b == 2 else None),
            )
    finally:
        relay.close()
    # the server committed batch 2; the laptop saved its marks after batch 1 only
    assert sum(server_counts(archive, "room-1").values()) == 40
    assert sync_status(laptop.path, laptop.keys).total == total - 20  # over-counts, never under
    again = sync_once(laptop.path, url, laptop.keys, batch_rows=20)
    assert again.sent_total == total - 40  # resumed from the server's marks: nothing resent
    assert again.stored == total - 40
    assert_converged(archive, "room-1", laptop)


# --- a laptop clock 10 minutes off --------------------------------------------------------------


class SkewedClock(FakeClock):
    """The laptop's clock: real time (the server runs on this machine) plus ``skew``."""

    def __init__(self, skew: timedelta) -> None:
        self.skew = skew
        super().__init__(datetime.now(UTC) + skew)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.skew


def _record_and_sync(laptop: Laptop, url: str) -> str:
    """A session begun with its protocol, vitals, a dose: each step synced at once, as the
    window's runner does."""
    store = laptop.store()
    try:
        sid = store.start_session(
            session_start(laptop.clock, patient_code=f"KAP-{laptop.path.stem}"),
            BY,
            protocol=protocol("clinic-ketamine"),
        )
        sync_once(laptop.path, url, laptop.keys)
        store.add(sid, VitalSigns(laptop.clock.now(), hr=72, sbp=122, dbp=78, spo2=98), BY)
        sync_once(laptop.path, url, laptop.keys)
        store.add(sid, Dose("ketamine", "im", 35, laptop.clock.now()), BY)
        sync_once(laptop.path, url, laptop.keys)
        return sid
    finally:
        store.close()


@pytest.mark.parametrize("minutes", [10, -10])
def test_a_laptop_clock_ten_minutes_off_reads_sensibly_in_status_and_the_live_view(
    archive: Archive, tmp_path: Path, minutes: int
) -> None:
    skew = timedelta(minutes=minutes)
    urls = {name: archive.add_laptop(name) for name in ("skewed", "right")}
    skewed = make_laptop(tmp_path / "skewed", "skewed", SkewedClock(skew))
    right = make_laptop(tmp_path / "right", "right", SkewedClock(timedelta(0)))
    # the same steps on both laptops, at the same moments
    sessions = {"skewed": _record_and_sync(skewed, urls["skewed"])}
    sessions["right"] = _record_and_sync(right, urls["right"])
    with psycopg.connect(archive.admin_url) as conn:
        server_now = conn.execute("SELECT now()").fetchone()[0]
        live, _ended = read_sessions(conn, now=server_now)
    # the rows keep the laptop's own times; the server stamps its own
    ((recorded, received),) = archive.query(
        "SELECT recorded_at, server_received_at FROM kap.vitals WHERE laptop_id = 'skewed'"
    )
    assert abs((datetime.fromisoformat(recorded.replace("Z", "+00:00")) - received) - skew) < (
        timedelta(seconds=30)
    )
    assert abs(received - server_now) < timedelta(seconds=30)
    # sync status, all on the laptop's clock: nothing waits, no negative or 10-minute lag
    status = sync_status(skewed.path, skewed.keys)
    assert status.total == 0 and status.lag_seconds(skewed.clock.now()) == 0.0
    assert status.last_error == "" and status.last_success
    assert status.lines(skewed.clock.now())[-1].startswith("Pending: nothing")
    store = skewed.store()
    try:
        store.add(sessions["skewed"], VitalSigns(skewed.clock.now(), hr=70), BY)
    finally:
        store.close()
    waiting = sync_status(skewed.path, skewed.keys)
    lag = waiting.lag_seconds(skewed.clock.now())
    assert waiting.total > 0 and lag is not None and 0 <= lag < 60
    sync_once(skewed.path, urls["skewed"], skewed.keys)
    # the live view: the skewed laptop's session looks like the right one's
    by_laptop = {s.laptop: s for s in live}
    off, ok = by_laptop["skewed"], by_laptop["right"]
    assert ok.clock_offset_s == 0.0
    assert abs(off.clock_offset_s - skew.total_seconds()) < 30
    elapsed = (server_now - off.started_at).total_seconds()
    assert 0 <= elapsed < 60  # just begun: not in the future, not 10 minutes old
    assert abs(off.started_at - ok.started_at) < timedelta(seconds=30)
    assert off.last_dose_at is not None and ok.last_dose_at is not None
    assert abs(off.last_dose_at - ok.last_dose_at) < timedelta(seconds=30)
    assert off.next_check is not None and ok.next_check is not None
    assert off.next_check.label == ok.next_check.label
    assert abs(off.next_check.due_at - ok.next_check.due_at) < timedelta(seconds=30)
    assert off.next_check.status(server_now) == ok.next_check.status(server_now)
    assert abs(off.last_recorded_at - server_now) < timedelta(seconds=60)
    for name, laptop in (("skewed", skewed), ("right", right)):
        assert_converged(archive, name, laptop)


def _passes(*diffs_s: float) -> list[tuple[str, datetime]]:
    """Chain heads whose laptop time minus server time is each of ``diffs_s``."""
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return [
        (to_iso(base + timedelta(minutes=i, seconds=d)), base + timedelta(minutes=i))
        for i, d in enumerate(diffs_s)
    ]


def test_the_clock_offset_is_read_only_from_what_proves_it() -> None:
    # ahead: no row reaches the server before it was saved, so one pass proves it
    assert laptop_clock_offset(_passes(599.5)) == pytest.approx(599.5, abs=0.01)
    assert laptop_clock_offset(_passes(-1200, 599.5, 30)) == pytest.approx(599.5, abs=0.01)
    # a right clock: passes just after each save
    assert laptop_clock_offset(_passes(-0.3, -0.8, -0.2)) == 0.0
    # behind: every pass agrees
    assert laptop_clock_offset(_passes(-600.4, -600.9, -601.2)) == pytest.approx(-600.4, abs=0.01)
    # rows that waited (a laptop offline, synced by hand): one pass, or passes that disagree,
    # prove nothing about the clock, so the recorded times are left as they are
    assert laptop_clock_offset(_passes(-1200)) == 0.0
    assert laptop_clock_offset(_passes(-700, -1900, -300)) == 0.0
    assert laptop_clock_offset(_passes(-30, -45)) == 0.0  # within the tolerance
    # a laptop's role may write any text in its chain heads: ignored, never a crash
    assert laptop_clock_offset([("not a time", datetime.now(UTC)), ("", None)]) == 0.0
    assert laptop_clock_offset([]) == 0.0
