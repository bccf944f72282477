"""``kapmonitor --smoke-test``: prove a build works end to end in a second, without a screen.

It builds the real main window offscreen on a throw-away database and settings folder, records
a session through the same path a clinician uses, reads it back, and checks the safety
properties the bedside depends on (WAL, append-only triggers, chart fed) on an encrypted
database: SQLCipher is loaded (the frozen build must bundle it), and neither the file nor its WAL
holds the patient code in clear.
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


def run_startup_probe() -> int:
    """For the start-up benchmark: build the real window on a throw-away database and print
    ``painted`` when it first paints, then exit. Measured from outside the process."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject, QTimer

    from kapmonitor.domain.clock import SystemClock
    from kapmonitor.settings import Settings
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.app import application
    from kapmonitor.ui.bedside.session_window import SessionWindow

    app = application()
    with tempfile.TemporaryDirectory(prefix="kapmonitor-probe-") as tmp:
        os.environ[CONFIG_ENV_VAR] = tmp
        store = SessionStore.open(Path(tmp) / "probe.sqlite", SystemClock())
        window = SessionWindow(store, SystemClock(), Settings(Path(tmp)))

        class FirstPaint(QObject):
            def eventFilter(self, watched: QObject, event: QEvent) -> bool:
                if event.type() == QEvent.Type.Paint and watched is window:
                    print("painted", flush=True)
                    window.removeEventFilter(self)
                    QTimer.singleShot(0, app.quit)
                return False

        watcher = FirstPaint()
        window.installEventFilter(watcher)
        window.show()
        app.exec()
        window.close()
        store.close()
    return 0
