"""The live view against a real PostgreSQL: two laptops record and sync, a supervisor's listener
hears each commit and shows the new phase, the new alarm, the next check, the ended session gone;
the payload holds no clinical value; the server restarted, the listener catches up."""

from __future__ import annotations

import json
import queue
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from kapmonitor.domain.records import (
    AlarmAcknowledgement,
    Dose,
    PhaseChange,
    SessionEnd,
    VitalSigns,
)
from kapmonitor.network import admin, server_schema
from kapmonitor.network.live import (
    CHANNEL,
    ListenerState,
    LiveListener,
    LiveSession,
    LiveUpdate,
    parse_payload,
    read_sessions,
)
from kapmonitor.network.sync import sync_once
from tests.factories import protocol, session_start
from tests.network.conftest import Archive, Laptop, make_laptop

BY = "Dr Admin"
WAIT_S = 30.0  # the longest we wait for something to arrive (a deadline, not a measurement)


def reviewer_url(archive: Archive, name: str = "sup") -> str:
    """A supervisor's login role, a member of kap_reviewer, as docs/network.md sets one up."""
    role = f"kap_{archive.name}_{name}"
    password = secrets.token_urlsafe(16)
    with psycopg.connect(archive.admin_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE ROLE {role} LOGIN PASSWORD '{admin.scram_verifier(password)}' "
            "IN ROLE kap_reviewer"
        )
        conn.execute(f"GRANT CONNECT ON DATABASE {archive.name} TO {role}")
    return archive.server.url(archive.name, role, password)


class Board:
    """What a window would show: the listener's updates folded into a dict, read by a test."""

    def __init__(self) -> None:
        self.updates: queue.Queue[LiveUpdate] = queue.Queue()
        self.states: list[ListenerState] = []
        self.sessions: dict[tuple[str, str], LiveSession] = {}
        self.full_count = 0

    def on_update(self, update: LiveUpdate) -> None:
        self.updates.put(update)

    def on_state(self, state: ListenerState) -> None:
        self.states.append(state)

    def wait(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"not seen within {WAIT_S} s: {self.sessions}"
            try:
                update = self.updates.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if update.full:
                self.full_count += 1
                self.sessions = {s.key: s for s in update.sessions}
            else:
                self.sessions.update({s.key: s for s in update.sessions})
                for key in update.ended:
                    self.sessions.pop(key, None)


@pytest.fixture
def board() -> Board:
    return Board()


@pytest.fixture
def listen(board: Board) -> Iterator[Callable[..., LiveListener]]:
    started: list[LiveListener] = []

    def start(url: str, **kwargs: float) -> LiveListener:
        listener = LiveListener(url, board.on_update, board.on_state, **kwargs)
        listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def start_session(laptop: Laptop, code: str) -> str:
    store = laptop.store()
    try:
        sid = store.start_session(
            session_start(laptop.clock, patient_code=code),
            BY,
            protocol=protocol("clinic-ketamine"),
        )
        laptop.clock.advance(minutes=2)
        store.add(sid, VitalSigns(laptop.clock.now(), hr=72, sbp=122, dbp=78, spo2=98), BY)
        return sid
    finally:
        store.close()


def add(laptop: Laptop, sid: str, entry_of: Callable[..., object]) -> None:
    store = laptop.store()
    try:
        store.add(sid, entry_of(store), BY)  # type: ignore[arg-type]
    finally:
        store.close()


def test_two_laptops_the_listener_sees_each_phase_alarm_and_end(
    archive: Archive, tmp_path: Path, board: Board, listen: Callable[..., LiveListener]
) -> None:
    urls = {n: archive.add_laptop(n) for n in ("room-1", "room-2")}
    laptops = {n: make_laptop(tmp_path / n, n) for n in urls}
    sids = {n: start_session(laptops[n], f"KAP-{i:04d}") for i, n in enumerate(urls, 1)}
    sync_once(laptops["room-1"].path, urls["room-1"], laptops["room-1"].keys)
    listen(reviewer_url(archive))
    board.wait(lambda: ("room-1", sids["room-1"]) in board.sessions)
    assert ("room-2", sids["room-2"]) not in board.sessions  # not synced yet: not known
    first = board.sessions[("room-1", sids["room-1"])]
    assert (first.patient_code, first.phase, first.open_alarms) == ("KAP-0001", "preparation", 0)
    assert first.next_check is None  # baseline taken, no dose yet: the schedule asks nothing

    # room-2 syncs: its session appears without any refresh (the notification)
    sync_once(laptops["room-2"].path, urls["room-2"], laptops["room-2"].keys)
    board.wait(lambda: ("room-2", sids["room-2"]) in board.sessions)
    assert board.sessions[("room-2", sids["room-2"])].patient_code == "KAP-0002"

    # a dose and a phase change on room-1: the new phase and the interval check after the dose
    one = laptops["room-1"]
    one.clock.advance(minutes=3)
    dosed = one.clock.now()
    add(one, sids["room-1"], lambda s: Dose("ketamine", "im", 50, dosed))
    add(one, sids["room-1"], lambda s: PhaseChange("monitoring", dosed))
    sync_once(one.path, urls["room-1"], one.keys)
    board.wait(lambda: board.sessions[("room-1", sids["room-1"])].phase == "monitoring")
    now = board.sessions[("room-1", sids["room-1"])]
    assert now.last_dose_at == dosed
    assert now.next_check is not None and now.next_check.due_at > dosed

    # a critical value raises an alarm: seen open and critical; acknowledged: gone
    one.clock.advance(minutes=5)
    add(one, sids["room-1"], lambda s: VitalSigns(one.clock.now(), hr=70, sbp=120, dbp=80, spo2=80))
    sync_once(one.path, urls["room-1"], one.keys)
    board.wait(lambda: board.sessions[("room-1", sids["room-1"])].open_critical >= 1)
    alarmed = board.sessions[("room-1", sids["room-1"])]
    assert "SpO" in alarmed.top_alarm
    assert alarmed.next_check is not None and alarmed.next_check.kind == "critical_recheck"
    store = one.store()
    try:
        for alarm in store.load(sids["room-1"]).active_alarms():
            store.add(
                sids["room-1"], AlarmAcknowledgement(alarm["id"], "oxygen", one.clock.now()), BY
            )
    finally:
        store.close()
    sync_once(one.path, urls["room-1"], one.keys)
    board.wait(lambda: board.sessions[("room-1", sids["room-1"])].open_alarms == 0)

    # the session ends: it leaves the list; room-2's stays
    one.clock.advance(minutes=1)
    add(
        one,
        sids["room-1"],
        lambda s: SessionEnd("stayed_for_observation", one.clock.now(), summary="ok"),
    )
    sync_once(one.path, urls["room-1"], one.keys)
    board.wait(lambda: ("room-1", sids["room-1"]) not in board.sessions)
    assert ("room-2", sids["room-2"]) in board.sessions


def test_one_notification_per_session_per_transaction_and_no_clinical_value_in_it(
    archive: Archive, tmp_path: Path
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    sid = start_session(laptop, "KAP-7777")
    for _minute in range(30):  # many rows of several tables, several batches
        laptop.clock.advance(minutes=1)
        add(laptop, sid, lambda s: VitalSigns(laptop.clock.now(), hr=61, sbp=133, dbp=87, spo2=96))
    with psycopg.connect(archive.admin_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        result = sync_once(laptop.path, url, laptop.keys, batch_rows=25)
        notes = list(listener.notifies(timeout=2.0))
    assert result.batches >= 3
    payloads = [n.payload for n in notes]
    # one per transaction that touched the session (not one per row or per statement)
    assert len(payloads) <= result.batches
    assert len(payloads) >= 1
    for text in payloads:
        assert json.loads(text) == {"laptop": "room-1", "session": sid}
        rest = text.replace(sid, "")  # the random session id may hold any digits
        for value in ("KAP-7777", "133", "87", "61", "96", "Dr Admin", "female", "ketamine"):
            assert value not in rest
    assert parse_payload(payloads[0]) == ("room-1", sid)


def test_the_payload_parser_trusts_nothing(archive: Archive) -> None:
    for bad in ("", "x", "[]", '{"laptop": 1, "session": "a"}', '{"laptop": "a"}', "null"):
        assert parse_payload(bad) is None
    assert parse_payload('{"laptop": "r", "session": "s", "more": 1}') == ("r", "s")


def test_a_laptop_role_sees_only_its_own_sessions_in_the_live_view(
    archive: Archive, tmp_path: Path
) -> None:
    urls = {n: archive.add_laptop(n) for n in ("room-1", "room-2")}
    laptops = {n: make_laptop(tmp_path / n, n) for n in urls}
    for i, n in enumerate(urls):
        start_session(laptops[n], f"KAP-{i}")
        sync_once(laptops[n].path, urls[n], laptops[n].keys)
    with psycopg.connect(urls["room-2"]) as conn:
        assert [s.laptop for s in read_sessions(conn)[0]] == ["room-2"]
    with psycopg.connect(reviewer_url(archive)) as conn:
        assert sorted(s.laptop for s in read_sessions(conn)[0]) == ["room-1", "room-2"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the reviewer only reads
            conn.execute("INSERT INTO kap.addenda (laptop_id, local_id) VALUES ('room-1', 99)")


def test_the_view_judges_corrections_as_the_laptop_does(archive: Archive, tmp_path: Path) -> None:
    """A voided phase change and a corrected dose: the view's phase and last dose are the
    laptop's own (SessionLog) judgement, not the newest row."""
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    sid = start_session(laptop, "KAP-0001")
    store = laptop.store()
    try:
        t = laptop.clock.now()
        dose = store.add(sid, Dose("ketamine", "im", 50, t), BY).primary_id
        changed = store.add(sid, PhaseChange("monitoring", t), BY).primary_id
        laptop.clock.advance(minutes=1)
        later = laptop.clock.now()
        store.correct(sid, changed, PhaseChange("monitoring", t), "wrong", BY, void=True)
        store.correct(sid, dose, Dose("ketamine", "im", 40, later), "time was wrong", BY)
        log = store.load(sid)
        expected_phase, expected_dose = log.phase(), log.first_dose_at()
    finally:
        store.close()
    sync_once(laptop.path, url, laptop.keys)
    with psycopg.connect(reviewer_url(archive)) as conn:
        (live,), _gone = read_sessions(conn)
    assert (expected_phase, expected_dose) == ("dosing", later)  # the dose set "dosing"
    assert (live.phase, live.last_dose_at) == (expected_phase, expected_dose)


def test_the_server_restarted_the_listener_reconnects_and_catches_up(
    archive: Archive, tmp_path: Path, board: Board, listen: Callable[..., LiveListener]
) -> None:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path, "room-1")
    sid = start_session(laptop, "KAP-0001")
    sync_once(laptop.path, url, laptop.keys)
    listen(reviewer_url(archive), retry_s=0.2)
    board.wait(lambda: ("room-1", sid) in board.sessions)
    server = archive.server
    server.stop("immediate")
    try:
        board.wait(lambda: bool(board.states) and not board.states[-1].connected)
        down = board.states[-1]
        assert "cannot be reached" in down.message
        assert down.last_good is not None
        # meanwhile the laptop records; it syncs as soon as the server is back
        laptop.clock.advance(minutes=3)
        add(laptop, sid, lambda s: PhaseChange("monitoring", laptop.clock.now()))
    finally:
        server.start()
    sync_once(laptop.path, url, laptop.keys)
    board.wait(lambda: board.states[-1].connected)
    board.wait(lambda: board.sessions[("room-1", sid)].phase == "monitoring")


def test_the_schema_version_2_is_part_of_the_upgrade_test() -> None:
    """The upgrade test runs from every earlier version: 0 and 1 now that 2 exists."""
    assert server_schema.latest() >= 2
    assert [v.name for v in server_schema.versions()][:2] == ["mirror", "live_view"]


def test_rows_a_laptop_role_makes_up_do_not_take_the_live_view_down(
    archive: Archive, tmp_path: Path
) -> None:
    """An insider with a laptop's password inserts a session whose times are not times and an
    alarm of an unknown priority: every other session is still shown, and this one says its
    details cannot be read (never a crash of the listener)."""
    urls = {n: archive.add_laptop(n) for n in ("room-1", "room-2")}
    laptop = make_laptop(tmp_path / "room-1", "room-1")
    good = start_session(laptop, "KAP-0001")
    sync_once(laptop.path, urls["room-1"], laptop.keys)
    with psycopg.connect(urls["room-2"]) as conn:
        conn.execute(
            "INSERT INTO kap.sessions (local_id, id, patient_code, observed_at, recorded_at) "
            "VALUES (1, 'bad', 'KAP-6666', 'yesterday-ish', 'not a time')"
        )
        conn.execute(
            "INSERT INTO kap.alarms (local_id, id, session_id, observed_at, recorded_at, "
            "priority, message) VALUES (1, 1, 'bad', 'x', 'y', 'apocalyptic', 'boom')"
        )
    with psycopg.connect(reviewer_url(archive)) as conn:
        sessions, _gone = read_sessions(conn)
    shown = {s.session_id: s for s in sessions}
    assert set(shown) == {good, "bad"}
    assert shown[good].problem == "" and shown[good].patient_code == "KAP-0001"
    assert "cannot read" in shown["bad"].problem
    assert shown["bad"].next_check is None


def test_the_live_command_without_a_server_says_so_plainly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kapmonitor.cli import main

    monkeypatch.delenv("KAPMONITOR_LIVE_SERVER", raising=False)
    monkeypatch.delenv("KAPMONITOR_SERVER", raising=False)
    assert main(["live"]) != 0
    said = capsys.readouterr()
    assert "no server given" in said.err + said.out and "Traceback" not in said.err
