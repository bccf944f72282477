"""``kapmonitor --smoke-test``: prove a build works end to end in a second, without a screen.

It builds the real main window offscreen on a throw-away database and settings folder, records
a session through the same path a clinician uses, reads it back, and checks the safety
properties the bedside depends on (WAL, append-only triggers, chart fed) on an encrypted
database: SQLCipher is loaded (the frozen build must bundle it), and neither the file nor its WAL
holds the patient code in clear. Then the device layer (issue 13): the modules it uses (hl7,
pyserial, bleak and bleak's backend for this platform) import, and an MLLP listener on loopback
answers one ORU^R01 sent from a socket with ``AA`` after its readings reached the sink, and
``capture``'s writer process (this executable, started again) stores a reading. Then the
clinic network's driver (issue 14): psycopg and its bundled libpq load, so a build that dropped
them fails here rather than on the first sync.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kapmonitor.paths import CONFIG_ENV_VAR


def run_smoke_test() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        with tempfile.TemporaryDirectory(prefix="kapmonitor-smoke-") as tmp:
            os.environ[CONFIG_ENV_VAR] = tmp
            _exercise(Path(tmp))
            _device_layer()
            _network_layer()
    except Exception as exc:  # the point of a smoke test is to report, not to raise
        print(f"SMOKE FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("SMOKE OK")
    return 0


def _exercise(folder: Path) -> None:
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.records import Dose, SessionStart, VitalSigns
    from kapmonitor.settings import Settings
    from kapmonitor.store.key_slots import new_keys
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.app import application
    from kapmonitor.ui.bedside.session_window import SessionWindow

    app = application()
    clock = FakeClock(datetime.now(UTC) - timedelta(minutes=30))
    path = folder / "smoke.sqlite"
    store = SessionStore.open(path, clock, keys=new_keys())
    window = SessionWindow(store, clock, Settings(folder))
    window.show()
    app.processEvents()
    start = SessionStart(
        patient_code="SMOKE-001",
        sex="unknown",
        weight_kg=70,
        indication="trd",
        clinicians=("Smoke A", "Smoke B"),
        started_at=clock.now(),
        age_years=40,
        checklist={c.code: True for c in store.ref.choices("eligibility_checklist")},
    )
    session_id = store.start_session(start, "Smoke A")
    window.open_session(session_id)
    clock.advance(minutes=5)
    window.after_save("vitals", window._save(VitalSigns(clock.now(), hr=72, sbp=120, dbp=80)))
    clock.advance(minutes=5)
    window.after_save("doses", window._save(Dose("ketamine", "im", 50, clock.now())))
    app.processEvents()
    log = store.load(session_id)
    assert log.current("vitals")[0]["hr"] == 72, "vitals not stored"
    assert window.chart.point_count("hr") == 1, "chart not fed"
    assert store.db.journal_mode == "wal", "database not in WAL mode"
    try:
        store.db.execute("UPDATE vitals SET hr = 1")
    except sqlite3.DatabaseError:
        pass
    else:
        raise AssertionError("append-only trigger missing")
    for part in (path, Path(f"{path}-wal")):
        data = part.read_bytes() if part.exists() else b""
        assert not data.startswith(b"SQLite format 3"), f"{part.name} is not encrypted"
        assert b"SMOKE-001" not in data, f"{part.name} holds the patient code in clear"
    window.close()
    store.close()
    app.processEvents()
    _device_writer(path, session_id)


def _device_writer(path: Path, session_id: str) -> None:
    """``capture``'s writer is this same executable started again (``_device-writer``): a
    frozen build must find itself and serve over its pipes, the encrypted file's keys handed
    over by this process."""
    from kapmonitor.capture_writer import WriterProcess
    from kapmonitor.devices.reading import DeviceReading
    from kapmonitor.domain.changes import Changes

    reading = DeviceReading(
        device_id="SMOKE-MONITOR",
        source="mllp",
        message_id="SMOKE-W1",
        received_at=datetime.now(UTC),
        observed_at=None,
        vital="spo2",
        value=97.0,
        unit="%",
    )
    writer = WriterProcess(path, session_id)
    try:
        (result,) = writer.add_messages([[reading]])
    finally:
        writer.close()
    assert isinstance(result, Changes), f"the device writer process refused: {result}"
    assert len(result.device_readings) == 1, "the device writer process stored nothing"


def _network_layer() -> None:
    """psycopg is imported only when a clinic server is set (the sync runner, `kapmonitor sync`):
    a bundle without it, or without its libpq, would fail only at the first sync."""
    import psycopg
    import psycopg.pq

    from kapmonitor.network import sync

    assert psycopg.pq.version() >= 100000, "libpq missing from the bundle"
    assert sync.sync_once, "the sync module is incomplete"


def _device_layer() -> None:
    """What a frozen build could silently lack: the device modules are imported lazily (serial
    and bleak only when such a device is configured), so import them here, bleak's platform
    backend too, and serve one message on loopback."""
    import socket

    import bleak.exc
    import hl7
    import serial
    from bleak.backends.client import get_platform_client_backend_type
    from bleak.backends.scanner import get_platform_scanner_backend_type

    from kapmonitor.devices.mllp import Frame, MllpDecoder, frame
    from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
    from kapmonitor.devices.reading import DeviceReading
    from kapmonitor.devices.simulator import Sample, build_message

    assert hl7.parse and serial.Serial and bleak.exc.BleakError, "device modules incomplete"
    get_platform_client_backend_type()  # imports the Bluetooth backend; needs no adapter
    get_platform_scanner_backend_type()
    received: list[DeviceReading] = []
    listener = MllpListener(PatientRule("bed", "SMOKE-BED"), ListenerConfig(port=0))
    address = listener.start_in_thread(received.extend)
    try:
        sample = Sample(0, 97, 72, None, probe_off=False, artefact=False)
        message = build_message("mindray", sample, "SMOKE-1", datetime.now(UTC), bed="SMOKE-BED")
        decoder, answer = MllpDecoder(), b""
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(frame(message))
            while not answer:
                data = sock.recv(65536)
                assert data, "the MLLP listener closed without an ACK"
                answer = next((e.payload for e in decoder.feed(data) if isinstance(e, Frame)), b"")
    finally:
        listener.stop()
    assert b"MSA|AA|SMOKE-1" in answer, "the MLLP listener did not accept the message"
    assert {r.vital for r in received} >= {"spo2", "hr"}, "readings did not reach the sink"


def run_startup_probe(db_path: Path, mode: str = "first") -> int:
    """For the start-up benchmark: start the window exactly as a clinician does (``run_gui`` on
    ``db_path``), print ``painted`` when the first window paints, and exit.

    ``first``: the first window of any kind; on the clinic's existing encrypted database that is
    the unlock dialog. ``bedside``: the bedside window, unlocked with ``KAPMONITOR_USER`` /
    ``KAPMONITOR_PASSWORD`` (so it includes the password's key derivation). Measured from outside
    the process (``kapmonitor.bench.frozen_startup``); prints nothing else.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QWidget

    from kapmonitor.ui.app import application, run_gui

    app = application()

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if (
                event.type() == QEvent.Type.Paint
                and isinstance(watched, QWidget)
                and watched.isWindow()
                and (mode == "first" or type(watched).__name__ == "SessionWindow")
            ):
                print("painted", flush=True)
                app.removeEventFilter(self)
                app.exit(0)  # ends the dialog's loop and the window's alike
            return False

    watcher = FirstPaint()
    app.installEventFilter(watcher)
    run_gui(db_path)
    return 0
