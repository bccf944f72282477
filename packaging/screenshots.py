"""Regenerate the user guide's screenshots from the real window.

Run under a real X server or Xvfb (``xvfb-run -a .venv/bin/python packaging/screenshots.py``);
it records demo sessions into a throw-away database, opens them in the real session window and
saves PNGs into ``docs/images/``. Settings go to a temporary folder, never the user's.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="kapmonitor-shots-"))
    os.environ["KAPMONITOR_CONFIG_DIR"] = str(tmp)
    from PySide6.QtCore import QTimer

    from kapmonitor.demo import record_demo
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.app import application
    from kapmonitor.ui.session_window import SessionWindow
    from kapmonitor.ui.vitals_form import VitalsForm

    app = application()
    OUT.mkdir(parents=True, exist_ok=True)
    dose_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    clock = FakeClock(dose_at)
    store = SessionStore.open(tmp / "shots.sqlite", clock)

    # A session in progress: stop the demo about 70 minutes after the dose.
    for kind, _row in record_demo(store, clock, dose_at, 0.0, random.Random(11)):
        if clock.now() > dose_at + timedelta(minutes=70) and kind == "vitals":
            break
    session_id = store.list_sessions()[0]["id"]
    clock.set(dose_at + timedelta(minutes=72, seconds=14))
    settings = Settings(tmp)

    def shoot(name: str, night: bool, large: bool, size: tuple[int, int] = (1366, 820)) -> None:
        settings.set(NIGHT_MODE, night)
        settings.set(LARGE_TYPE, large)
        window = SessionWindow(store, clock, settings)
        window.resize(*size)
        window.show()
        window.open_session(session_id)
        for _ in range(5):
            app.processEvents()
        window.grab().save(str(OUT / f"{name}.png"))
        print(f"wrote docs/images/{name}.png")
        if name == "bedside-day":

            def validate_only(entry: object) -> int:
                entry.validate(store.ref, clock.now())  # type: ignore[attr-defined]
                return 0

            form = VitalsForm(
                store.ref, validate_only, clock.now(), recorder="N. Okafor, RN", parent=window
            )
            last = store.load(session_id).last_vitals()
            form.set_last({k: v for k, (v, _t) in last.items()})
            form.bp.setText("141/88")
            form.hr.setText("88")
            form.spo2.setText("35")
            QTimer.singleShot(0, form.try_save)
            form.show()
            for _ in range(5):
                app.processEvents()
            form.try_save = lambda: None  # type: ignore[method-assign]
            form.spo2.setFocus()
            app.processEvents()
            form.grab().save(str(OUT / "vitals-form-refusal.png"))
            print("wrote docs/images/vitals-form-refusal.png")
            form.close()
        window.close()

    shoot("bedside-day", night=False, large=False)
    shoot("bedside-night", night=True, large=False)
    shoot("bedside-night-large", night=True, large=True, size=(1600, 960))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
