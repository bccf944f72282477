"""The window's device commits take no WAL checkpoint; the feed checkpoints after the ACKs.

Issue 13's MLLP → stored → charted p99: SQLite's automatic checkpoint ran inside whichever
device commit took the log past 1,000 pages (about one message in 33 at 1 Hz), and that message
waited for it. The feed turns the automatic checkpoint off for its own commits only, restores it
for typed saves (also when the store refuses), and copies the log back after every
``CHECKPOINT_AFTER`` device transactions, once their ACKs and chart updates are done. Driven
through the real window and a real listener on loopback; nothing here is timed.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from kapmonitor.devices.mllp import Frame, MllpDecoder, frame
from kapmonitor.devices.simulator import build_message, samples
from kapmonitor.domain.clock import FakeClock
from kapmonitor.settings import DEVICE_SOURCES, Settings
from kapmonitor.store import device_store
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside import device_feed
from kapmonitor.ui.bedside.session_window import SessionWindow
from tests.factories import T0, protocol, session_start
from tests.ui.window_driver import shown_window


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "feed.sqlite", clock)
    yield opened
    opened.close()


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    Settings(tmp_path).set(
        DEVICE_SOURCES,
        ({"kind": "mllp", "host": "127.0.0.1", "port": 0, "match": "patient_id"},),
    )
    return shown_window(qtbot, store, clock, tmp_path)


def open_session(qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock) -> str:
    chosen = dataclasses.replace(protocol("clinic-ketamine"), auto_confirm=("hr", "spo2"))
    session_id = store.start_session(session_start(clock), "Dr A", protocol=chosen)
    window.open_session(session_id, fresh=True)
    qtbot.waitUntil(lambda: bool(window.device_feed.addresses), timeout=10_000)
    return session_id


def messages(patient: str, count: int) -> list[bytes]:
    return [
        build_message("philips", s, f"CP{n:09d}", T0 + timedelta(seconds=s.t), patient=patient)
        for n, s in enumerate(samples(count), start=1)
    ][:count]


def send_each(qtbot: QtBot, port: int, payloads: list[bytes]) -> list[str]:
    """One monitor connection, each message sent after the previous ACK; the ACK codes."""
    codes: list[str] = []
    decoder = MllpDecoder()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.settimeout(0.005)
        for payload in payloads:
            conn.sendall(frame(payload))
            got: list[bytes] = []

            def answered(got: list[bytes] = got) -> bool:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    return False
                got.extend(e.payload for e in decoder.feed(data) if isinstance(e, Frame))
                return bool(got)

            qtbot.waitUntil(answered, timeout=10_000)
            codes.append(got[0].split(b"MSA|", 1)[1].split(b"|", 1)[0].decode())
    return codes


class Spy:
    """What the window's connection was asked, and what its automatic checkpoint was set to
    while each device transaction ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: SessionStore) -> None:
        self.store = store
        self.during: list[int] = []
        self.checkpoints: list[int] = []  # device transactions done when each checkpoint ran
        self.transactions = 0
        real_add = device_store.add_device_messages
        real_execute = store.db.execute

        def add(*args: Any, **kwargs: Any) -> Any:
            self.during.append(self.autocheckpoint())
            try:
                return real_add(*args, **kwargs)
            finally:
                self.transactions += 1

        def execute(sql: str, *args: Any) -> Any:
            if "wal_checkpoint(" in sql.replace(" ", "").lower():
                self.checkpoints.append(self.transactions)
            return real_execute(sql, *args)

        self.real_execute = real_execute
        monkeypatch.setattr(device_store, "add_device_messages", add)
        monkeypatch.setattr(store.db, "execute", execute)

    def autocheckpoint(self) -> int:
        return int(self.real_execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_device_commits_take_no_checkpoint_and_the_feed_checkpoints_after_the_acks(
    qtbot: QtBot,
    window: SessionWindow,
    store: SessionStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session_id = open_session(qtbot, window, store, clock)
    patient = str(store.load(session_id).session["patient_code"])
    spy = Spy(monkeypatch, store)
    before = spy.autocheckpoint()
    assert before > 0  # SQLite's default for the window's connection
    (address,) = window.device_feed.addresses.values()
    count = device_feed.CHECKPOINT_AFTER + 2
    assert send_each(qtbot, address[1], messages(patient, count)) == ["AA"] * count
    assert spy.during == [0] * spy.transactions  # never a checkpoint inside a device commit
    assert spy.transactions >= device_feed.CHECKPOINT_AFTER
    assert spy.autocheckpoint() == before  # typed saves keep SQLite's own
    # the feed's own checkpoint, on the GUI thread after the ACKs (no device commit under way)
    qtbot.waitUntil(lambda: bool(spy.checkpoints), timeout=10_000)
    assert spy.checkpoints[0] >= device_feed.CHECKPOINT_AFTER
    stored = store.db.execute(
        "SELECT count(DISTINCT message_id) FROM device_readings WHERE session_id = ?",
        [session_id],
    ).fetchone()[0]
    assert stored == count


def test_the_automatic_checkpoint_comes_back_when_the_store_refuses(
    qtbot: QtBot,
    window: SessionWindow,
    store: SessionStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session_id = open_session(qtbot, window, store, clock)
    patient = str(store.load(session_id).session["patient_code"])
    before = int(store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    def refuses(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the disk is full")

    monkeypatch.setattr(device_store, "add_device_messages", refuses)
    (address,) = window.device_feed.addresses.values()
    assert send_each(qtbot, address[1], messages(patient, 1)) == ["AE"]
    assert int(store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == before
