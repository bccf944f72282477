"""The protocol engine in the bedside window: next check, alarms, discharge, REMS, questionnaires.

Kept beside the session window rather than inside it: the window records entries; this part
reads what the protocol derived from them (the schedule from stored times, alarm rows written
with each reading) and offers the clinician the actions the protocol asks for.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit, QMessageBox

from kapmonitor.domain import dose_gate, dose_guards
from kapmonitor.domain import questionnaires as questionnaire_data
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import limit_lines
from kapmonitor.domain.checklists import AlarmChecklistStep
from kapmonitor.domain.discharge_check import DischargeFacts, assessment_record, discharge_facts
from kapmonitor.domain.protocol import Protocol, ProtocolCatalogue, load_protocols
from kapmonitor.domain.records import (
    AlarmAcknowledgement,
    Dose,
    Override,
    QuestionnaireResponse,
)
from kapmonitor.domain.schedule import ScheduleState, compute_schedule
from kapmonitor.domain.vital_alerts import (
    Latest,
    VitalReading,
    current_levels,
    fold_latest,
    readings_of,
)
from kapmonitor.paths import resources_dir, user_config_dir
from kapmonitor.settings import ALARM_SOUND, TREATMENT_SETTING, WARNING_SOUND
from kapmonitor.store import audit, rems_store
from kapmonitor.store.database import StoreError, explain
from kapmonitor.ui.forms.alarm_ack_dialog import AlarmAckDialog
from kapmonitor.ui.forms.discharge_dialog import DischargeDialog
from kapmonitor.ui.forms.questionnaire_window import QuestionnaireWindow
from kapmonitor.ui.forms.rems_dialog import RemsDialog

if TYPE_CHECKING:
    from kapmonitor.ui.bedside.session_window import SessionWindow

# Saves after which the store may have written or cleared an alarm (a positive PHQ-9 item 9 is
# a critical alarm written with the questionnaire).
ALARM_SOURCES = (
    "vitals",
    "observations",
    "alarm_acknowledgements",
    "questionnaire_responses",
    "adverse_events",
)
SOUND_TEXT = "Critical alarm sound (gentle)"
WARNING_SOUND_TEXT = "Sound for warnings and overdue checks too"
SOUND_OFF_QUESTION = (
    "Why turn the critical-alarm sound off on this laptop? The reason is recorded in the audit "
    "trail with your name."
)
NO_SESSION_ACTOR = "bedside window (no session open)"


def load_catalogue() -> ProtocolCatalogue:
    return load_protocols([resources_dir() / "protocols", user_config_dir() / "protocols"])


def load_questionnaire_set() -> dict[str, questionnaire_data.Questionnaire]:
    return questionnaire_data.load_questionnaires(
        [resources_dir() / "questionnaires", user_config_dir() / "questionnaires"]
    )


class ProtocolSupport:
    def __init__(self, window: SessionWindow) -> None:
        self.window = window
        self.catalogue = load_catalogue()
        self.questionnaires = load_questionnaire_set()
        self.state: ScheduleState | None = None
        self._alarm_ids_seen: set[int] = set()
        self._was_overdue = False
        # Each measured vital of the open session with its alarm level; rebuilt after a save
        # (not every tick: a device feed may hold thousands of readings).
        self._readings: list[VitalReading] = []
        self._latest: Latest = {}
        self.sound_action: QAction | None = None
        self.warning_sound_action: QAction | None = None

    # --- state ------------------------------------------------------------------------------

    @property
    def protocol(self) -> Protocol | None:
        log = self.window.log
        return log.protocol if log is not None else None

    def protocol_choices(self) -> list[tuple[str, str]]:
        return [(p.id, p.name) for p in self.catalogue.protocols.values()]

    def problems_text(self) -> str:
        if not self.catalogue.problems:
            return ""
        return "Protocol files refused (the last good versions are used):\n" + "\n".join(
            f"• {p}" for p in self.catalogue.problems
        )

    def session_opened(self) -> None:
        """Show the stored state of a (re)opened session: thresholds, alarms, schedule."""
        window = self.window
        window.chart.set_limits(limit_lines(self.protocol))
        assert window.log is not None
        self._alarm_ids_seen = {r.id for r in window.log.current("alarms")}
        for alarm in window.log.current("alarms"):
            window.chart_row("alarms", alarm)
        self.refresh_alarms()
        self.refresh_levels()

    def refresh_levels(self, saved: tuple[str, int] | None = None) -> None:
        """Re-judge each vital by its latest reading: the big numbers keep a critical or warning
        value highlighted, and the schedule keeps a critical re-check, until a later reading of
        that vital is calmer. Acknowledging the alarm does not clear either.

        ``saved`` (table, id): only that new row is folded in; otherwise (opening a session, a
        correction) every current row is scanned."""
        log = self.window.log
        if log is None:
            self._latest = {}
            self._readings = []
        else:
            if saved is None:
                self._latest = fold_latest({}, log.live("vitals"), log.live("observations"))
            else:
                table, row_id = saved
                row = log.row(table, row_id)  # the model has the newest at hand
                fold_latest(self._latest, **{table: [row]})
            self._readings = readings_of(self._latest, log.live("alarms"))
        self.window.last_values.set_levels(current_levels(self._readings))

    def tick(self) -> None:
        window = self.window
        log = window.log
        protocol = self.protocol
        if log is None or protocol is None:
            window.schedule_panel.show_state(None, window.clock.now())
            return
        now = window.clock.now()
        self.state = compute_schedule(
            protocol,
            log.started_at(),
            log.first_dose_at(),
            log.vitals_times(),
            now,
            log.phase(),
            log.ended_at(),
            vital_readings=self._readings,
        )
        window.schedule_panel.show_state(self.state, now)
        # Escalation: the moment a check turns overdue, the sound calls once. A critical
        # re-check gone overdue is critical (sound on by default); a routine check is optional.
        overdue = self.state.status == "overdue"
        if overdue and not self._was_overdue:
            check = self.state.next_check
            critical = check is not None and check.kind == "critical_recheck"
            self._beep(critical)
        self._was_overdue = overdue

    # --- after each save ------------------------------------------------------------------

    def after_save(self, changes: Changes) -> None:
        """Show what the store derived with the saved entry (NEWS2, alarms raised or
        cleared), from the write's change: the model has applied it, nothing is read again."""
        window = self.window
        log = window.log
        table = changes.primary_table
        row = changes.primary_row
        if log is None or row is None or table not in ALARM_SOURCES:
            return
        new = [a for a in changes.alarms_raised if a.id not in self._alarm_ids_seen]
        for alarm in new:
            self._alarm_ids_seen.add(alarm.id)
            window.chart_row("alarms", alarm)
        score = next((r for r in reversed(changes.scores) if r.vitals_id == row.id), None)
        if table == "vitals" and score is not None:
            window.last_values.show_news2(score)
        if new:  # one gentle beep per saved reading, however many alarms it raised
            self._beep(any(a.priority == "critical" for a in new))
        self.refresh_alarms()
        if table in ("vitals", "observations"):
            self.refresh_levels(saved=(table, row.id))

    def refresh_alarms(self) -> None:
        log = self.window.log
        alarms = log.active_alarms() if log is not None else []
        # A device alarm that later readings continue shows their newest value (device_review).
        review = getattr(self.window, "device_review", None)  # made after this object
        self.window.alarm_banner.set_alarms(review.banner_alarms(alarms) if review else alarms)
        self.window.alarm_banner.set_sound_off(not self.window.settings.get(ALARM_SOUND))

    # --- sound ------------------------------------------------------------------------------

    def _beep(self, critical: bool) -> None:
        """The system's own short beep, once: gentle, and the screen already says what it is."""
        settings = self.window.settings
        if settings.get(ALARM_SOUND if critical else WARNING_SOUND):
            QApplication.beep()

    def sound_actions(self) -> tuple[QAction, QAction]:
        """The View menu's two sound switches, remembered on this laptop.

        The critical sound is on unless someone turned it off with a reason (audited); the
        sound for warnings and routine overdue checks is an option, off by default.
        """
        window = self.window
        self.sound_action = QAction(SOUND_TEXT, window, checkable=True)
        self.sound_action.setObjectName("CriticalSoundAction")
        self.sound_action.setChecked(window.settings.get(ALARM_SOUND))
        self.sound_action.toggled.connect(self._critical_sound_toggled)
        self.warning_sound_action = QAction(WARNING_SOUND_TEXT, window, checkable=True)
        self.warning_sound_action.setObjectName("WarningSoundAction")
        self.warning_sound_action.setChecked(window.settings.get(WARNING_SOUND))
        self.warning_sound_action.toggled.connect(lambda on: window.settings.set(WARNING_SOUND, on))
        return self.sound_action, self.warning_sound_action

    def _critical_sound_toggled(self, on: bool) -> None:
        window = self.window
        if on:
            # Turning it back on is never refused; it is recorded all the same.
            window.settings.set(ALARM_SOUND, True)
            self._audit_sound("alarm_sound_on", {"setting": ALARM_SOUND.key, "on": True})
            window.statusBar().showMessage("Critical alarm sound on", 5000)
            self.refresh_alarms()
            return
        reason = self._sound_off_reason()
        recorded = bool(reason) and self._audit_sound(
            "alarm_sound_off", {"setting": ALARM_SOUND.key, "on": False, "reason": reason}
        )
        if not recorded:
            self._keep_sound_on()
            return
        window.settings.set(ALARM_SOUND, False)
        window.statusBar().showMessage(f"Critical alarm sound off: {reason}", 8000)
        self.refresh_alarms()

    def _sound_off_reason(self) -> str:
        """Ask why; an empty answer or Cancel is no reason. Refused while the window is locked:
        the name recorded would be the last recorder's, not the person at the laptop."""
        window = self.window
        if window.access.locked():
            window.statusBar().showMessage("Unlock the window to change the alarm sound", 8000)
            return ""
        dialog = QInputDialog(window)
        dialog.setObjectName("SoundOffReason")
        dialog.setWindowTitle("Turn the critical-alarm sound off")
        dialog.setLabelText(SOUND_OFF_QUESTION)
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.setOkButtonText("Turn off")
        if not dialog.exec():
            return ""
        reason = dialog.textValue().strip()
        if not reason:
            window.statusBar().showMessage(
                "The critical-alarm sound stays on: turning it off needs a reason", 8000
            )
        return reason

    def _keep_sound_on(self) -> None:
        assert self.sound_action is not None
        self.sound_action.blockSignals(True)
        self.sound_action.setChecked(True)
        self.sound_action.blockSignals(False)

    def _audit_event(self, action: str, detail: dict[str, Any]) -> bool:
        """An audited happening in the open session that writes no clinical row."""
        window = self.window
        log = window.log
        if log is None:
            return False
        db = window.store.db
        try:
            with db.atomic():
                audit.event(db, window.recorder, action, window.clock.now(), detail, log.id)
        except (sqlite3.Error, OSError, StoreError) as exc:
            window.report_error(explain(exc, window.store.path))
            return False
        return True

    def _audit_sound(self, action: str, detail: dict[str, Any]) -> bool:
        """A sound switch is a safety setting: who changed it, when and why go into the audit
        trail, in the open session (attributed to the recorder) or, with none open, unattached."""
        window = self.window
        log = window.log
        actor = window.recorder if log is not None and window.recorder else NO_SESSION_ACTOR
        db = window.store.db
        try:
            with db.atomic():
                audit.event(db, actor, action, window.clock.now(), detail, log.id if log else None)
        except (sqlite3.Error, OSError, StoreError) as exc:
            window.report_error(explain(exc, window.store.path))
            return False
        return True

    # --- actions --------------------------------------------------------------------------

    def acknowledge(self, alarm_id: int | None = None) -> None:
        window = self.window
        log = window.log
        if log is None:
            return
        active = log.active_alarms()
        if alarm_id is None:
            alarm_id = window.alarm_banner.first_alarm_id()
        alarm = next((a for a in active if a.id == alarm_id), None)
        if alarm is None:
            window.statusBar().showMessage("No active alarm to acknowledge", 5000)
            return

        def save(
            response: str,
            detail: str,
            symptoms: list[str],
            risk_assessment: dict[str, Any] | None = None,
        ) -> int:
            entry = AlarmAcknowledgement(
                alarm.id,
                response,
                window.clock.now(),
                detail=detail,
                symptoms=tuple(symptoms),
                risk_assessment=risk_assessment,
            )
            return window.committed(window.store.add(log.id, entry, window.recorder))

        def tick(checklist: str, step: str) -> dict[str, Any]:
            """One checklist step, committed now with its time and who (append-only)."""
            entry = AlarmChecklistStep(alarm.id, checklist, step, window.clock.now())
            changes = window.store.add(log.id, entry, window.recorder)
            window.committed(changes)
            window.after_save("alarm_checklist_steps", changes.primary_id)
            assert changes.primary_row is not None
            return dict(changes.primary_row)  # the stored row, from the write itself

        dialog = AlarmAckDialog(
            alarm,
            save,
            window.recorder,
            window,
            tick=tick,
            ticked=log.current("alarm_checklist_steps"),
            protocol=self.protocol,
        )
        if window.open_form(dialog) is not None:
            window.after_save("alarm_acknowledgements", dialog.saved_id)

    def dose_allowed(self) -> bool:
        """Dosing waits for a baseline set unless a clinician overrides with a reason."""
        window = self.window
        log = window.log
        protocol = self.protocol
        if log is None:
            return True
        blocks = dose_gate.dose_blocks(protocol, log.current_rows())
        if not blocks:
            return True
        if not any(b.code == "baseline_missing" for b in blocks):
            QMessageBox.warning(window, "Dosing held", "\n".join(f"• {b.message}" for b in blocks))
            return False
        box = QMessageBox(window)
        box.setObjectName("BaselineRequired")
        box.setWindowTitle("Baseline vitals first")
        box.setText("The protocol requires a baseline vital-signs set before the first dose.")
        take = box.addButton("Take baseline now", QMessageBox.ButtonRole.AcceptRole)
        override = box.addButton("Override with a reason…", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(take)
        box.exec()
        if box.clickedButton() is take:
            window.enter_vitals()
            return False
        if box.clickedButton() is not override:
            return False
        reason, ok = QInputDialog.getText(window, "Override", "Why dose without a baseline?")
        if not ok or not reason.strip():
            return False
        try:
            row_id = window.committed(
                window.store.add(
                    log.id,
                    Override(dose_gate.BASELINE_OVERRIDE, reason, window.clock.now()),
                    window.recorder,
                )
            )
        except (StoreError, ValueError) as exc:
            window.report_error(exc)
            return False
        window.after_save("overrides", row_id)
        return True

    def dose_form_kwargs(self) -> dict[str, Any]:
        """What the dose form needs to ask the protocol's questions before it saves: the
        Qt-free review (the rules the store enforces again), how a deferral is recorded, the
        other attending clinicians, and, where accounts exist, the second clinician's sign-in."""
        window = self.window
        log = window.log
        if log is None or self.protocol is None:
            return {}
        protocol, session_id = self.protocol, log.id

        def review(dose: Dose) -> dose_guards.DoseReview:
            current = log.current_rows(("vitals", "doses"))  # the model is current
            return dose_guards.review_dose(
                protocol,
                current,
                dose.drug,
                dose.route,
                dose.dose_mg,
                dose.weight_kg,
                dose.observed_at,
            )

        def defer(finding: dose_guards.BpFinding, reason: str) -> None:
            window.store.record_dose_deferral(session_id, finding, reason, window.recorder)
            window.statusBar().showMessage(f"Dose deferred: {reason}", 8000)

        sign_in = None
        if window.access.enabled():

            def sign_in(username: str, secret: str) -> str:
                user = window.access.accounts.sign_in(
                    username, secret, "confirm a dose outside the protocol (two-person check)"
                )
                return user.display_name

        return {
            "review": review,
            "defer": defer,
            "second_clinicians": list(log.clinicians),
            "sign_in": sign_in,
        }

    def discharge_check(self) -> bool:
        """Run the protocol's discharge assessment; True when the patient may go home."""
        window = self.window
        log = window.log
        protocol = self.protocol
        if log is None or protocol is None:
            return True
        dialog = DischargeDialog(
            protocol,
            self._facts(),
            self._save_assessment,
            window.clock.now(),
            window.recorder,
            window,
            previous=next(reversed(log.current("discharge_assessments")), None),
        )
        if window.open_form(dialog) is not None:
            window.after_save("discharge_assessments", dialog.saved_id)
        return dialog.saved_id is not None and dialog.result_ready()

    def _save_assessment(
        self, score: Any, checklist: dict[str, bool], ready: Any, why: str | None
    ) -> int:
        window = self.window
        assert window.log is not None
        entry = assessment_record(score, checklist, ready, window.clock.now(), why)
        return window.committed(window.store.add(window.log.id, entry, window.recorder))

    def _facts(self) -> DischargeFacts:
        log = self.window.log
        assert log is not None
        return discharge_facts(self.protocol, log.current_rows(), self.window.clock.now())

    def show_rems(self) -> None:
        window = self.window
        log = window.log
        if log is None:
            return
        if self.protocol is None or not self.protocol.rems:
            QMessageBox.information(
                window, "REMS summary", "The REMS form applies to esketamine REMS sessions only."
            )
            return
        setting = window.settings.get(TREATMENT_SETTING)
        # Sessions started before the start dialog asked for the setting fall back to the
        # laptop's free text; a session with its own setting never asks.
        if not setting.strip() and rems_store.start_details(window.store.db, log.id) is None:
            setting, ok = QInputDialog.getText(
                window,
                "REMS form: treatment setting",
                "The treatment setting the REMS form asks for (e.g. the clinic's name and "
                "address). It is remembered on this laptop:",
            )
            if ok and setting.strip():
                window.settings.set(TREATMENT_SETTING, setting.strip())
        fields = rems_store.form_fields(
            window.store.db, log, window.settings.get(TREATMENT_SETTING)
        )
        RemsDialog(fields, log.session["patient_code"], window).exec()

    def questionnaire(self) -> None:
        window = self.window
        log = window.log
        if log is None or not self.questionnaires:
            return
        timing = "pre" if log.first_dose_at() is None else "post"
        due = (
            {q.questionnaire_id for q in self.protocol.questionnaires if q.when == timing}
            if (self.protocol)
            else set()
        )
        ordered = sorted(self.questionnaires.values(), key=lambda q: (q.id not in due, q.title))
        labels = [f"{q.title}{'  (due now)' if q.id in due else ''}" for q in ordered]
        choice, ok = QInputDialog.getItem(
            window,
            "Patient questionnaire",
            "Questionnaire to hand to the patient:",
            labels,
            0,
            False,
        )
        if not ok:
            return
        questionnaire = ordered[labels.index(choice)]

        def save(answers: dict[str, int | str], total: int | None, band: str | None) -> int:
            entry = QuestionnaireResponse(
                questionnaire.id,
                timing,
                answers,
                window.clock.now(),
                total=total,
                band=band or "",
                safety_flags=tuple(questionnaire_data.safety_flags(questionnaire, answers)),
            )
            return window.committed(window.store.add(log.id, entry, window.recorder))

        def discarded(answered: int) -> None:
            """A discard is in the audit trail: which questionnaire, how many answers, by whom;
            never the answers themselves."""
            self._audit_event(
                "questionnaire_discarded",
                {"questionnaire_id": questionnaire.id, "timing": timing, "answered": answered},
            )

        dialog = QuestionnaireWindow(
            questionnaire, save, window.recorder, window, on_discard=discarded
        )
        if window.open_form(dialog) is not None:
            window.after_save("questionnaire_responses", dialog.saved_id)
