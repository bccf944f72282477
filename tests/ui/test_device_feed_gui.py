"""Live capture in the real window: a real MLLP listener on loopback, the simulator over a socket.

The issue's GUI test: a simulated three-hour feed at 1 Hz with NIBP every five minutes, sent fast
(time is the window's injected clock and the messages' own OBX-14 stamps, never a sleep),
confirmations by keyboard (F), a desaturation alarm on a pending value, probe-off in the
indicator, the source disconnecting and reconnecting. Assertions are on what was stored
(device_readings rows, vitals rows pointing back to them), what the indicator says, and the ACKs
the simulator received. Plus the Devices dialog (add a source, test a port in use) and the plain
message when the configured port is taken.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.devices.code_map import default_code_map
from kapmonitor.devices.hl7_message import parse_oru
from kapmonitor.devices.mllp import Frame, MllpDecoder, frame
from kapmonitor.devices.simulator import (
    CYCLE_S,
    DESAT,
    SendResult,
    build_message,
    samples,
    send_messages,
)
from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.settings import DEVICE_SOURCES, Settings
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.session_window import SessionWindow
from kapmonitor.ui.forms.devices_dialog import DevicesDialog
from tests.factories import T0, protocol, session_start
from tests.ui.window_driver import shown_window

FEED_S = 3 * 60 * 60  # three hours at 1 Hz
PROFILE = "philips"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "feed.sqlite", clock)
    yield opened
    opened.close()


def configure(folder: Path, *sources: dict[str, object]) -> None:
    Settings(folder).set(DEVICE_SOURCES, tuple(sources))


@pytest.fixture
def window(qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path) -> SessionWindow:
    """The window with one MLLP source on loopback, any free port, matching the patient code."""
    configure(tmp_path, {"kind": "mllp", "host": "127.0.0.1", "port": 0, "match": "patient_id"})
    return shown_window(qtbot, store, clock, tmp_path)


def open_session(qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock) -> str:
    """A session on the clinic protocol, except that SpO₂ is not confirmed automatically (so the
    desaturation is a pending value) while HR is (so the trend reaches vitals by itself)."""
    chosen = dataclasses.replace(protocol("clinic-ketamine"), auto_confirm=("hr",))
    session_id = store.start_session(session_start(clock), "Dr A", protocol=chosen)
    window.open_session(session_id, fresh=True)
    window.header.recorder.setCurrentText("Dr A")
    qtbot.waitUntil(lambda: bool(window.device_feed.addresses), timeout=10_000)
    return session_id


def port_of(window: SessionWindow) -> int:
    (address,) = window.device_feed.addresses.values()
    return address[1]


def send(qtbot: QtBot, port: int, payloads: list[bytes], timeout_ms: int = 120_000) -> SendResult:
    """The simulator's client, on its own thread, while the GUI thread stores (as in the app)."""
    outcome: list[SendResult | BaseException] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(send_messages("127.0.0.1", port, iter(payloads))))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    qtbot.waitUntil(lambda: bool(outcome), timeout=timeout_ms)
    thread.join()
    result = outcome[0]
    assert isinstance(result, SendResult), result
    return result


def feed(patient: str, duration_s: int, desaturations: bool = True) -> list[tuple[int, bytes]]:
    """The simulator's stream, each message with its simulated second. ``desaturations=False``
    keeps the oxygen up through the desaturation phase of each ten-minute cycle."""
    out: list[tuple[int, bytes]] = []
    number = 0
    for sample in samples(duration_s):
        if not desaturations and DESAT[0] <= sample.t % CYCLE_S < DESAT[1] and sample.spo2:
            sample = dataclasses.replace(sample, spo2=97, hr=74)
        when = T0 + timedelta(seconds=sample.t)
        number += 1
        out.append(
            (sample.t, build_message(PROFILE, sample, f"SIM{number:09d}", when, patient=patient))
        )
        if sample.nibp is not None:
            number += 1
            payload = build_message(
                PROFILE, sample, f"SIM{number:09d}", when, patient=patient, nibp_only=True
            )
            out.append((sample.t, payload))
    return out


class Monitor:
    """A monitor on one open connection, driven from the test (the GUI thread keeps running
    while it waits for each ACK, since the window stores on that thread)."""

    def __init__(self, qtbot: QtBot, port: int) -> None:
        self.qtbot = qtbot
        self.conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn.settimeout(0.005)
        self.decoder = MllpDecoder()
        self.acks: list[bytes] = []

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _read(self) -> bool:
        try:
            data = self.conn.recv(65536)
        except TimeoutError:
            return False
        self.acks.extend(e.payload for e in self.decoder.feed(data) if isinstance(e, Frame))
        return bool(self.acks)

    def send(self, payload: bytes) -> str:
        """Send one message and wait for its ACK; the ACK code (AA, AE, AR)."""
        self.conn.sendall(frame(payload))
        self.qtbot.waitUntil(self._read, timeout=10_000)
        ack = self.acks.pop(0)
        return ack.split(b"MSA|", 1)[1].split(b"|", 1)[0].decode()


def indicator(window: SessionWindow) -> list[tuple[str, str]]:
    window.device_feed.refresh()
    return window.device_feed.indicator.lines()


def device_rows(store: SessionStore, session_id: str) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in store.db.query(
            "SELECT * FROM device_readings WHERE session_id = ? ORDER BY id", [session_id]
        )
    ]


def press(qtbot: QtBot, window: SessionWindow, key: Qt.Key) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, key)


def test_a_three_hour_feed_reaches_the_window_confirmed_by_keyboard_alarmed_and_watched(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    """Three hours at 1 Hz with NIBP every five minutes. The first 2 h 50 min are stored through
    the store's own device path (the listener's sink, without the socket: through the window the
    whole feed takes minutes, see docs/devices.md), the session is then opened with that record
    on screen, and the last ten minutes arrive live through the socket: an NIBP confirmed by F,
    a desaturation alarmed while pending, the probe off, disconnections and reconnections."""
    from kapmonitor.store import device_store

    chosen = dataclasses.replace(protocol("clinic-ketamine"), auto_confirm=("hr",))
    session_id = store.start_session(session_start(clock), "Dr A", protocol=chosen)
    patient = str(store.load(session_id).session["patient_code"])
    live_from = FEED_S - CYCLE_S
    stream = feed(patient, FEED_S, desaturations=False)
    earlier = [p for t, p in stream if t < live_from]
    live = [(t, p) for t, p in feed(patient, FEED_S) if t >= live_from]
    started = time.monotonic()
    clock.set(T0 + timedelta(seconds=live_from))
    for k in range(0, len(earlier), 600):
        received = clock.now()
        results = device_store.add_device_messages(
            store,
            session_id,
            [parse_oru(p, received, default_code_map()).readings for p in earlier[k : k + 600]],
        )
        assert not [r for r in results if isinstance(r, Exception)]
    stored_before = len(device_rows(store, session_id))
    window.open_session(session_id, fresh=True)
    window.header.recorder.setCurrentText("Dr A")
    qtbot.waitUntil(lambda: bool(window.device_feed.addresses), timeout=10_000)
    port = port_of(window)
    assert indicator(window) == [(f"listening on 127.0.0.1:{port}, no device yet", "ok")]
    device = "MX450-0001"
    acks: dict[str, int] = {}
    sent = 0

    def send_until(second: int) -> None:
        """Send every live message before ``second``, with the clock at that second."""
        nonlocal live, sent
        chunk = [payload for t, payload in live if t < second]
        live = [(t, p) for t, p in live if t >= second]
        clock.set(T0 + timedelta(seconds=second))
        result = send(qtbot, port, chunk)
        assert not result.closed_early
        sent += result.sent
        for code, count in (result.answers or {}).items():
            acks[code] = acks.get(code, 0) + count

    # The cycle's first 340 s: a BP at 0 s, the desaturation (120-200 s), the probe off at 330 s.
    send_until(live_from + 340)
    (line,) = indicator(window)
    assert line[0].startswith(f"{device}: ") and line[1] == "warning"
    # The simulator's connection closed after its burst: the indicator says so.
    qtbot.waitUntil(lambda: "disconnected" in indicator(window)[0][0], timeout=5000)

    alarms = store.load(session_id).current("alarms")
    desats = [a for a in alarms if a["parameter"] == "spo2"]
    assert desats, "the desaturation on pending SpO₂ raised no alarm"
    assert all(a["source_table"] == "device_readings" for a in desats)
    assert any("device, unconfirmed" in a["message"] for a in desats)
    assert any("device, unconfirmed" in text for text in window.alarm_banner.lines())

    # Probe off while the monitor still talks (it reconnected): shown as such, as a warning.
    clock.set(T0 + timedelta(seconds=live_from + 342))
    with Monitor(qtbot, port) as monitor:
        for _, payload in [(t, p) for t, p in live if t < live_from + 342]:
            assert monitor.send(payload) == "AA"
            acks["AA"] += 1
            sent += 1
        live = [(t, p) for t, p in live if t >= live_from + 342]
        assert indicator(window) == [(f"{device}: probe off 2 s", "warning")]
    qtbot.waitUntil(lambda: "disconnected" in indicator(window)[0][0], timeout=5000)

    # F confirms what is on screen: the newest pending BP (the cycle's second NIBP, at 300 s).
    def confirmed_bp() -> list[dict[str, object]]:
        vitals = store.load(session_id).current("vitals")
        return [dict(v) for v in vitals if v["device_reading_id"] is not None and v["sbp"]]

    assert confirmed_bp() == []
    press(qtbot, window, Qt.Key.Key_F)
    (bp,) = confirmed_bp()
    reading = store.db.execute(
        "SELECT vital, value, device_id FROM device_readings WHERE id = ?",
        [bp["device_reading_id"]],
    ).fetchone()
    assert reading[2] == device and reading[0] in ("sbp", "dbp", "map")
    assert bp["recorded_by"] == "Dr A" and bp["source"] == "mllp"
    assert bp["observed_at"] == to_iso(T0 + timedelta(seconds=live_from + 300))

    # Silence: a warning, then the protocol's alarm (120 s) in the indicator.
    clock.advance(seconds=29)
    assert indicator(window)[0][1] == "warning"
    clock.advance(seconds=120)
    text, level = indicator(window)[0]
    assert level == "alarm" and "ALARM" in text

    # The rest of the feed reconnects and returns the indicator to connected; F then confirms
    # the newest SpO₂ on screen (the protocol leaves SpO₂ to a clinician here).
    with Monitor(qtbot, port) as monitor:
        clock.set(T0 + timedelta(seconds=FEED_S))
        for _, payload in live:
            assert monitor.send(payload) == "AA"
            acks["AA"] += 1
            sent += 1
        assert indicator(window) == [(f"{device}: connected", "ok")]
    press(qtbot, window, Qt.Key.Key_F)
    assert len(confirmed_bp()) == 1  # the older NIBP, superseded on screen, stays pending
    elapsed = time.monotonic() - started

    # Every live message was acknowledged AA, and every reading of the three hours stored once.
    expected = sum(len(parse_oru(p, T0, default_code_map()).readings) for _, p in stream)
    assert sent == len(feed(patient, CYCLE_S)) and acks == {"AA": sent}, acks
    rows = device_rows(store, session_id)
    assert len(rows) == expected > stored_before
    assert {r["device_id"] for r in rows} == {device}
    assert len({(r["message_id"], r["vital"]) for r in rows}) == len(rows)
    # HR is confirmed by the protocol as it arrives (a flagged one waits), SpO₂ and BP by people.
    from_device = [v for v in store.load(session_id).current("vitals") if v["device_reading_id"]]
    assert sum(1 for v in from_device if v["hr"] is not None) > FEED_S * 0.9
    # Each F also confirmed the SpO₂ shown then: the last before the probe came off, the last.
    spo2 = [v for v in from_device if v["spo2"] is not None]
    assert [v["observed_at"] for v in spo2] == [
        to_iso(T0 + timedelta(seconds=s)) for s in (live_from + 329, FEED_S - 1)
    ]
    assert {v["recorded_by"] for v in spo2} == {"Dr A"}
    print(f"three-hour record, last ten minutes live: {elapsed:.1f} s")


def test_a_resent_message_is_acknowledged_and_stored_once(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    session_id = open_session(qtbot, window, store, clock)
    patient = str(window.log.session["patient_code"])  # type: ignore[union-attr]
    payload = feed(patient, 1)[0][1]
    clock.set(T0 + timedelta(seconds=5))
    result = send(qtbot, port_of(window), [payload, payload])
    assert result.answers == {"AA": 2}
    assert len(device_rows(store, session_id)) == 2  # SpO₂ and HR, once


def test_a_message_for_another_patient_is_refused_and_nothing_stored(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    session_id = open_session(qtbot, window, store, clock)
    payload = feed("SOMEONE-ELSE", 1)[0][1]
    clock.set(T0 + timedelta(seconds=5))
    result = send(qtbot, port_of(window), [payload])
    assert result.answers == {"AR": 1}
    assert device_rows(store, session_id) == []


def test_a_silent_open_connection_turns_no_data_and_capture_stops_with_the_window(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    open_session(qtbot, window, store, clock)
    patient = str(window.log.session["patient_code"])  # type: ignore[union-attr]
    clock.set(T0 + timedelta(seconds=5))
    with Monitor(qtbot, port_of(window)) as monitor:
        assert monitor.send(feed(patient, 1)[0][1]) == "AA"
        assert indicator(window) == [("MX450-0001: connected", "ok")]
        clock.advance(seconds=31)
        assert indicator(window) == [("MX450-0001: no data 31 s", "warning")]
        thread = window.device_feed._thread
        assert thread is not None and thread.is_alive()
        window.close()
        assert not thread.is_alive()  # stopped and joined by the window's close
        assert window.device_feed.indicator.lines() == []


def test_a_port_in_use_is_a_plain_message_not_a_traceback(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        configure(tmp_path, {"kind": "mllp", "host": "127.0.0.1", "port": port})
        window = shown_window(qtbot, store, clock, tmp_path)
        session_id = store.start_session(session_start(clock), "Dr A")
        window.open_session(session_id, fresh=True)
        qtbot.waitUntil(lambda: bool(window.device_feed.failures), timeout=10_000)
        message = f"port {port} is already in use by another program"
        assert message in window.statusBar().currentMessage()
        ((text, level),) = indicator(window)
        assert message in text and level == "warning"
        assert "Traceback" not in text and "Errno" not in text


def run_dialog(qtbot: QtBot, window: SessionWindow, action: object) -> list[str]:
    """Session ▸ Devices… through the menu action, with ``action`` run on the open dialog."""
    problems: list[str] = []

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, DevicesDialog) and dialog.isVisible():
            timer.stop()
            try:
                action(dialog)  # type: ignore[operator]
            except BaseException as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
            dialog.close()

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(poll)
    timer.start()
    (devices,) = [
        a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Devices…"
    ]
    devices.trigger()
    timer.stop()
    return problems


def test_the_devices_dialog_adds_a_source_and_refuses_a_port_in_use_plainly(
    qtbot: QtBot, store: SessionStore, clock: FakeClock, tmp_path: Path
) -> None:
    window = shown_window(qtbot, store, clock, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        def use(dialog: QWidget) -> None:
            assert isinstance(dialog, DevicesDialog)
            assert dialog.rows() == ["No device yet: add one below."]
            assert dialog.host.text() == "127.0.0.1"  # loopback by default
            dialog.port.clear()
            qtbot.keyClicks(dialog.port, "70000")
            qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
            assert "Port 70000: use 1–65535" in dialog.errors_text()
            dialog.port.clear()
            qtbot.keyClicks(dialog.port, str(port))
            qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
            refusal = dialog.errors_text()
            assert "Connection test failed" in refusal
            assert f"port {port} is already in use by another program" in refusal
            assert "Errno" not in refusal and "Traceback" not in refusal
            assert dialog.port.property("invalid") is True
            qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
            assert dialog.errors_text() == ""
            assert dialog.rows() == [
                f"HL7 monitor (MLLP) on 127.0.0.1:{port} — Patient code in PID-3\n"
                "    no message yet"
            ]
            qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)  # the same again
            assert "already in the list" in dialog.errors_text()
            # a serial port that is not there: refused in words
            dialog.kind.setCurrentIndex(dialog.kind.findData("serial"))
            qtbot.keyClicks(dialog.device, str(tmp_path / "ttyNONE"))
            qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
            assert "cannot open" in dialog.errors_text()

        assert run_dialog(qtbot, window, use) == []
    saved = Settings(tmp_path).get(DEVICE_SOURCES)
    assert [(s["kind"], s["host"], s["port"]) for s in saved] == [("mllp", "127.0.0.1", port)]


def test_the_devices_dialog_says_when_each_source_last_spoke(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    open_session(qtbot, window, store, clock)
    patient = str(window.log.session["patient_code"])  # type: ignore[union-attr]
    clock.set(T0 + timedelta(seconds=5))
    assert send(qtbot, port_of(window), [feed(patient, 1)[0][1]]).answers == {"AA": 1}
    clock.advance(seconds=42)
    seen: list[str] = []

    def look(dialog: QWidget) -> None:
        assert isinstance(dialog, DevicesDialog)
        seen.extend(dialog.rows())
        dialog.remove_button.setFocus()

    assert run_dialog(qtbot, window, look) == []
    stamp = (T0 + timedelta(seconds=5)).astimezone()
    assert seen == [
        "HL7 monitor (MLLP) on 127.0.0.1:0 — Patient code in PID-3\n"
        f"    last message {stamp:%H:%M:%S} (42 s ago)"
    ]


def test_a_message_that_cannot_be_stored_is_answered_ae_stored_nowhere_and_said(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    """The window went back to its start page (accounts were managed) while capture ran: nothing
    can be stored for the session, so the monitor gets AE (it resends) and the status line says
    why, in words."""
    session_id = open_session(qtbot, window, store, clock)
    patient = str(window.log.session["patient_code"])  # type: ignore[union-attr]
    clock.set(T0 + timedelta(seconds=5))
    window.show_welcome()
    result = send(qtbot, port_of(window), [feed(patient, 1)[0][1]])
    assert result.answers == {"AE": 1}
    assert device_rows(store, session_id) == []
    message = window.statusBar().currentMessage()
    assert message == (
        "⚠ Device reading not stored: no session is open in the window to take device readings"
    )


def test_another_session_keeps_the_listener_and_its_port_and_only_the_new_patient_is_taken(
    qtbot: QtBot, window: SessionWindow, store: SessionStore, clock: FakeClock
) -> None:
    first = open_session(qtbot, window, store, clock)
    port, thread = port_of(window), window.device_feed._thread
    second = store.start_session(session_start(clock, patient_code="KAP-0043"), "Dr A")
    window.open_session(second, fresh=True)
    assert port_of(window) == port and window.device_feed._thread is thread
    clock.set(T0 + timedelta(seconds=5))
    with Monitor(qtbot, port) as monitor:  # one connection across the switch
        assert monitor.send(feed("KAP-0042", 1)[0][1]) == "AR"  # the previous patient: refused
        assert monitor.send(feed("KAP-0043", 1)[0][1]) == "AA"
    assert device_rows(store, first) == []
    assert {r["vital"] for r in device_rows(store, second)} == {"spo2", "hr"}
