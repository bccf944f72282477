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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
# The clinic laptop the guide shows: run under ``xvfb-run -a -s "-screen 0 1366x768x24"``.
SCREEN = (1366, 768)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="kapmonitor-shots-"))
    os.environ["KAPMONITOR_CONFIG_DIR"] = str(tmp)
    from PySide6.QtCore import QTimer

    from kapmonitor.demo import record_demo
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.records import AlarmAcknowledgement, PhaseChange, VitalSigns
    from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.app import application
    from kapmonitor.ui.bedside.session_window import SessionWindow
    from kapmonitor.ui.forms.vitals_form import VitalsForm

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

    def shoot(name: str, night: bool, large: bool, size: tuple[int, int] = SCREEN) -> None:
        settings.set(NIGHT_MODE, night)
        settings.set(LARGE_TYPE, large)
        window = SessionWindow(store, clock, settings)
        show_session(app, window, session_id, name, size)
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
            form.spo2.setText("25")  # below the plausible 30 %: refused with the reason
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
    shoot("bedside-day-large", night=False, large=True)
    shoot("bedside-night-large", night=True, large=True)

    # A critical BP alarm not yet acknowledged, and the next check overdue.
    clock.set(dose_at + timedelta(minutes=74))
    store.add(
        session_id, VitalSigns(clock.now(), hr=96, sbp=186, dbp=104, spo2=97, rr=16), "Dr Lee"
    )
    clock.set(dose_at + timedelta(minutes=91, seconds=40))
    shoot("alarm-overdue-day", night=False, large=False)
    shoot("alarm-overdue-night", night=True, large=False)
    shoot_dialogs(app, store, clock, session_id, settings)
    # Recovery / aftercare, the longest phase name, with the alarm acknowledged.
    log = store.load(session_id)
    for alarm in log.active_alarms():
        store.add(
            session_id,
            AlarmAcknowledgement(alarm["id"], "rechecked", clock.now(), "Re-measured"),
            "Dr Lee",
        )
    clock.set(dose_at + timedelta(minutes=96))
    store.add(session_id, VitalSigns(clock.now(), hr=78, sbp=134, dbp=84, spo2=98, rr=14), "Dr Lee")
    if store.load(session_id).phase() != "recovery":
        store.add(session_id, PhaseChange("recovery", clock.now()), "Dr Lee")
    shoot("bedside-recovery", night=False, large=False)
    shoot_lock(app, store, clock, session_id, settings)
    store.close()
    shoot_safety(app, tmp)
    shoot_review(app, tmp)
    return 0


def shoot_safety(app: Any, tmp: Path) -> None:
    """The safety rules at the bedside: the discharge check with its blockers, the PHQ-9 item 9
    alarm's risk assessment, and a serious adverse event's escalation checklist."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from kapmonitor.demo import record_demo
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.records import AdverseEvent, QuestionnaireResponse
    from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.bedside.session_window import SessionWindow

    dose_at = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    clock = FakeClock(dose_at)
    store = SessionStore.open(tmp / "safety.sqlite", clock)
    for kind, _row in record_demo(store, clock, dose_at, 0.0, random.Random(5)):
        if clock.now() > dose_at + timedelta(minutes=55) and kind == "vitals":
            break
    session_id = store.list_sessions()[0]["id"]
    clock.set(dose_at + timedelta(minutes=58))
    answers = {f"q{i}": 1 for i in range(1, 9)} | {"q9": 2}
    store.add(
        session_id,
        QuestionnaireResponse("phq9", "post", answers, clock.now(), total=10),
        "Dr. A. Rivera",
    )
    clock.set(dose_at + timedelta(minutes=61))
    store.add(
        session_id,
        AdverseEvent(
            "laryngospasm",
            4,
            clock.now(),
            serious=True,
            serious_criterion="life_threatening",
            action="other",
            action_detail="Jaw thrust, oxygen; resolved in 40 s",
        ),
        "Dr. A. Rivera",
    )
    clock.set(dose_at + timedelta(minutes=63))
    settings = Settings(tmp / "safety-settings")
    settings.set(NIGHT_MODE, False)
    settings.set(LARGE_TYPE, False)
    window = SessionWindow(store, clock, settings)
    show_session(app, window, session_id, "bedside-safety-alarms")

    def grab_modal(name: str) -> None:
        def take() -> None:
            dialog = QApplication.activeModalWidget()
            if dialog is None:
                QTimer.singleShot(50, take)
                return
            for _ in range(5):
                app.processEvents()
            dialog.grab().save(str(OUT / f"{name}.png"))
            print(f"wrote docs/images/{name}.png")
            dialog.close()

        QTimer.singleShot(100, take)

    support = window.protocol_support
    log = store.load(session_id)
    for alarm in log.active_alarms():
        message = str(alarm.get("message", ""))
        name = None
        if alarm.get("source_table") == "questionnaire_responses":
            name = "item9-acknowledge"
        elif "serious" in message.lower() or "escalat" in message.lower():
            name = "serious-event-checklist"
        if name:
            grab_modal(name)
            support.acknowledge(int(alarm["id"]))
    grab_modal("discharge-blockers")
    support.discharge_check()
    window.close()
    store.close()


def shoot_dialogs(app: Any, store: Any, clock: Any, session_id: str, settings: Any) -> None:
    """The discharge assessment, the alarm acknowledgement and the patient questionnaire."""
    from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE
    from kapmonitor.ui.bedside.session_window import SessionWindow
    from kapmonitor.ui.forms.alarm_ack_dialog import AlarmAckDialog
    from kapmonitor.ui.forms.discharge_dialog import DischargeDialog
    from kapmonitor.ui.forms.questionnaire_window import QuestionnaireWindow

    settings.set(NIGHT_MODE, False)
    settings.set(LARGE_TYPE, False)
    window = SessionWindow(store, clock, settings)
    window.open_session(session_id)
    support = window.protocol_support
    log = store.load(session_id)

    def save(*_args: object) -> int:
        return 0

    alarm = next(a for a in log.active_alarms() if a["priority"] == "critical")
    grab(app, AlarmAckDialog(alarm, save, "Dr Lee", window), "alarm-acknowledge")
    protocol = log.protocol
    discharge = DischargeDialog(protocol, support._facts(), save, clock.now(), "Dr Lee", window)
    for combo in discharge.inputs.values():
        combo.setCurrentIndex(1)
    for box in list(discharge.checks.values())[:3]:
        box.setChecked(True)
    grab(app, discharge, "discharge-check")
    phq9 = support.questionnaires["phq9"]
    patient = QuestionnaireWindow(phq9, save, "Dr Lee", window)
    patient.start()
    patient.type_digit(1)
    patient.type_digit(2)
    grab(app, patient, "questionnaire-patient", size=(1100, 700))
    window.close()


def shoot_lock(app: Any, store: Any, clock: Any, session_id: str, settings: Any) -> None:
    """A resumed session opens locked: the clock, the next check and the alarm stay on screen."""
    from kapmonitor.demo import CLINICIANS
    from kapmonitor.settings import NIGHT_MODE
    from kapmonitor.store.accounts import Accounts
    from kapmonitor.ui.bedside.session_window import SessionWindow

    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    for username, name in zip(("rivera", "okafor"), CLINICIANS, strict=True):
        accounts.create_user(admin, username, name, "clinician", "willow-beacon-42")
    settings.set(NIGHT_MODE, True)
    window = SessionWindow(store, clock, settings)
    show_session(app, window, session_id, "lock-screen")
    window.close()


def show_session(
    app: Any, window: Any, session_id: str, name: str, size: tuple[int, int] = SCREEN
) -> None:
    """Open a session in a bedside window on the laptop's screen and save what it shows."""
    window.resize(*size)
    window.show()
    window.open_session(session_id)
    for _ in range(5):
        app.processEvents()
    window.grab().save(str(OUT / f"{name}.png"))
    print(f"wrote docs/images/{name}.png")


def wait_for(app: Any, done: Any, seconds: float = 20.0) -> None:
    import time

    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(5):
        app.processEvents()


def shoot_review(app: Any, tmp: Path) -> None:
    """The supervisor's archive with a signed session open, and the dashboard."""
    from kapmonitor.bench_archive import build_archive
    from kapmonitor.demo import record_demo
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
    from kapmonitor.store.accounts import Accounts
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.store.signoff import Review
    from kapmonitor.ui.review.review_window import ReviewWindow

    # Forty varied sessions (doses, BP rises, adverse effects) and three demo sessions with
    # alarms, questionnaires and discharge assessments, over a few weeks.
    path = tmp / "archive.sqlite"
    build_archive(path, 40, seed=21)
    first = datetime(2024, 1, 3, 10, 0, tzinfo=UTC)
    clock = FakeClock(first)
    store = SessionStore.open(path, clock)
    rng = random.Random(4)
    for index in range(3):
        dose_at = first + timedelta(days=2 * index, hours=3)
        for _ in record_demo(store, clock, dose_at, 0.0, random.Random(rng.randrange(1000))):
            pass
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    review = Review(store)
    sessions = store.list_sessions()
    clock.set(first + timedelta(days=20))
    demo = [row["id"] for row in sessions if "Rivera" in row["clinicians"]]
    for session_id in [*demo, *[r["id"] for r in sessions if r["id"] not in demo][:25]]:
        flags = [flag.key for flag in review.quality_flags(session_id)]  # all confirmed
        review.sign(session_id, "chen", "copper-meadow-9", confirmed=flags)
    signed = demo[0]
    review.add_addendum(
        signed, accounts.find("chen"), "Patient phoned the next day: slept well, no nausea."
    )
    settings = Settings(tmp / "review-settings")
    settings.set(NIGHT_MODE, False)
    settings.set(LARGE_TYPE, False)
    window = ReviewWindow(store, accounts.find("chen"), clock, settings)
    window.resize(*SCREEN)
    window.show()
    wait_for(app, lambda: window.table.model().rowCount() > 0)
    window.show_session(signed)
    wait_for(app, lambda: window.detail.log is not None)
    window.detail.tabs.setCurrentIndex(window.detail.tab_index("Comments & addenda"))
    wait_for(app, lambda: True)
    window.grab().save(str(OUT / "review-signed.png"))
    print("wrote docs/images/review-signed.png")
    dashboard = window.open_dashboard()
    dashboard.resize(*SCREEN)
    wait_for(app, lambda: dashboard.loaded)
    dashboard.grab().save(str(OUT / "dashboard.png"))
    print("wrote docs/images/dashboard.png")
    dashboard.close()
    window.close()
    store.close()


def grab(app: Any, widget: Any, name: str, size: tuple[int, int] | None = None) -> None:
    if size:
        widget.resize(*size)
    widget.show()
    for _ in range(5):
        app.processEvents()
    widget.grab().save(str(OUT / f"{name}.png"))
    print(f"wrote docs/images/{name}.png")
    widget.close()


if __name__ == "__main__":
    sys.exit(main())
