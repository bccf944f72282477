"""The supervisor's desk: the archive of sessions, one session read in full, and sign-off.

Archive-wide work (the list, its counts, exports, the dashboard) runs on the archive worker with
its own connection; reading the one selected session is a short query on the window's store.
Every write goes through :class:`kapmonitor.store.signoff.Review`, which checks the acting
user's role again and audits refusals: a disabled button is a courtesy, not the control.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDateEdit,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressDialog,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from kapmonitor import APP_NAME
from kapmonitor.domain.clock import Clock
from kapmonitor.domain.records import Entry
from kapmonitor.domain.validation import ValidationError
from kapmonitor.reports.export_registry import (
    ExportCancelled,
    ExportTarget,
    export_format,
    export_formats,
    finish_export,
    write_export,
)
from kapmonitor.settings import NIGHT_MODE, TREATMENT_SETTING, Settings
from kapmonitor.store import permissions, rems_store
from kapmonitor.store.accounts import User
from kapmonitor.store.archive import (
    ArchiveCounts,
    ArchiveFilter,
    ArchiveRow,
    list_sessions,
    protocols_in_use,
)
from kapmonitor.store.errors import StoreError
from kapmonitor.store.schema import SIGNING_ROLES
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.signoff import AMENDING_ROLES, COMMENTING_ROLES, Review
from kapmonitor.ui.forms.form_base import EntryForm, resize_within_screen
from kapmonitor.ui.forms.rems_dialog import RemsSubmissionDialog
from kapmonitor.ui.forms.review_comment_dialog import ReviewCommentDialog
from kapmonitor.ui.review.archive_filters import ArchiveFilterControls
from kapmonitor.ui.review.archive_table import (
    ANY_DATE,
    ArchiveTable,
    ArchiveTableModel,
)
from kapmonitor.ui.review.archive_worker import ArchiveWorker
from kapmonitor.ui.review.session_review_view import SessionReviewView, local
from kapmonitor.ui.review.sign_dialog import SignDialog
from kapmonitor.ui.widgets.theme import apply_settings_theme, view_actions

Index = QModelIndex | QPersistentModelIndex


class ReviewWindow(ArchiveFilterControls, QMainWindow):
    """Archive, session review and sign-off for the signed-in ``user``."""

    def __init__(
        self,
        store: SessionStore,
        user: User,
        clock: Clock,
        settings: Settings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.user = user
        self.clock = clock
        self.settings = settings
        self.review = Review(store)
        self.worker = ArchiveWorker(store.path, self)
        self.worker.finished.connect(self._job_done)
        self.worker.failed.connect(self._job_failed)
        self.rows: list[ArchiveRow] = []
        self.shown_request = 0  # the list request whose rows are on screen
        self.active_dialog: QWidget | None = None
        self.child_windows: list[QWidget] = []
        self._exports: dict[int, _Export] = {}
        self.export_progress = _ProgressRelay(self)
        self.export_progress.moved.connect(self._export_moved)
        self.setWindowTitle(f"{APP_NAME} — review ({user.display_name}, {user.role})")
        resize_within_screen(self, 1366, 860)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        self.banner = QLabel(central)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        layout.addLayout(self._build_filters(central))
        self.counts_label = QLabel("Loading…", central)
        self.counts_label.setObjectName("CountsLine")
        layout.addWidget(self.counts_label)
        self.table = ArchiveTable(central)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self.table.activated.connect(lambda _index: self.open_selected())
        self.detail = SessionReviewView(
            store,
            clock,
            central,
            night=settings.get(NIGHT_MODE),
            treatment_setting=settings.get(TREATMENT_SETTING),
        )
        split = QSplitter(Qt.Orientation.Vertical, central)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([1000, 2000])  # in proportion: the list a third, the session the rest
        layout.addWidget(split, 1)
        self.setCentralWidget(central)
        self._build_actions()
        self.statusBar().showMessage(f"Database: {store.path} · signed in as {user.display_name}")

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.refresh)
        self.apply_view_settings()
        self._update_actions()
        self.worker.submit("protocols", lambda db: protocols_in_use(db))
        self.refresh()

    # --- layout ----------------------------------------------------------------------------

    def _build_filters(self, parent: QWidget) -> QGridLayout:
        grid = QGridLayout()
        self._make_filter_widgets(parent, protocol_chars=22)
        self.unsigned_filter = QCheckBox("Unsigned only", parent)
        # Tab goes through the boxes as they stand, then to "Clear filters".
        QWidget.setTabOrder(self.alarm_filter, self.unsigned_filter)
        QWidget.setTabOrder(self.unsigned_filter, self.clear_filters_button)
        pairs = self._filter_pairs()
        self._lay_out_filters(grid, parent, pairs)
        boxes = QHBoxLayout()
        for widget in (self.ae_filter, self.alarm_filter, self.unsigned_filter):
            boxes.addWidget(widget)
        boxes.addStretch(1)
        boxes.addWidget(self.clear_filters_button)
        grid.addLayout(boxes, 2, 0, 1, len(pairs))
        self._connect_filters(boxes=(self.unsigned_filter,))
        return grid

    def _build_actions(self) -> None:
        bar = QToolBar("Review", self)
        bar.setObjectName("ReviewToolbar")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.actions_by_name: dict[str, QAction] = {}
        review_menu = self.menuBar().addMenu("&Review")
        export_menu = self.menuBar().addMenu("E&xport")
        view_menu = self.menuBar().addMenu("&View")
        # (name, menu text, toolbar text, key, slot, menu)
        entries: list[tuple[str, str, str, str, Callable[[], Any], Any]] = [
            ("refresh", "Refresh", "Refresh", "F5", self.refresh, review_menu),
            ("sign", "Sign…", "Sign…", "Ctrl+Shift+S", self.sign_selected, review_menu),
            (
                "comment",
                "Add review comment…",
                "Comment…",
                "Ctrl+M",
                self.add_review_comment,
                review_menu,
            ),
            (
                "addendum",
                "Add addendum…",
                "Addendum…",
                "Ctrl+Shift+A",
                self.add_addendum,
                review_menu,
            ),
            ("amend", "Amend my entry…", "Amend…", "Ctrl+E", self.amend_selected, review_menu),
            (
                "rems_submitted",
                "Mark REMS form submitted…",
                "REMS sent…",
                "Ctrl+Shift+R",
                self.mark_rems_submitted,
                review_menu,
            ),
            ("dashboard", "Dashboard", "Dashboard", "Ctrl+D", self.open_dashboard, review_menu),
            (
                "series",
                "Patient series",
                "Patient series",
                "Ctrl+T",
                self.open_patient_series,
                review_menu,
            ),
            # The Export menu lists the registered formats (kapmonitor.reports.export_registry).
            *(
                (
                    f"export_{fmt.name}",
                    f"Export {fmt.name.upper()}…",
                    fmt.short,
                    fmt.shortcut,
                    lambda f=fmt.name: self.export(f),
                    export_menu,
                )
                for fmt in export_formats()
            ),
        ]
        first_export = f"export_{export_formats()[0].name}"
        for name, text, short, key, slot, menu in entries:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{text} ({key})")
            action.setIconText(short)
            action.triggered.connect(lambda _=False, s=slot: s())
            menu.addAction(action)
            if name == first_export:
                bar.addSeparator()
                bar.addWidget(QLabel(" Export: ", bar))
            elif name == "dashboard":
                bar.addSeparator()
            bar.addAction(action)
            self.actions_by_name[name] = action
        listed = QMenu("Export the listed sessions", export_menu)
        listed.setObjectName("ExportListedMenu")
        export_menu.addSeparator()
        export_menu.addMenu(listed)
        for fmt in export_formats():
            action = QAction(f"{fmt.name.upper()} into a folder…", self)
            action.setToolTip(f"Every session the list shows, as {fmt.title}, into one folder")
            action.triggered.connect(lambda _=False, f=fmt.name: self.export_listed(f))
            listed.addAction(action)
            self.actions_by_name[f"export_listed_{fmt.name}"] = action
        find = QAction("Find patient", self)
        find.setShortcut(QKeySequence("Ctrl+F"))
        find.triggered.connect(lambda: self.patient_filter.setFocus())
        self.addAction(find)
        self.night_action, self.large_action = view_actions(
            self, self.settings, self.apply_view_settings
        )
        view_menu.addAction(self.night_action)
        view_menu.addAction(self.large_action)
        live = QAction("Live view (sessions in progress)…", self)  # the central archive's
        live.setShortcut(QKeySequence("Ctrl+L"))
        live.triggered.connect(lambda: self.open_live_view())
        review_menu.addAction(live)
        self.actions_by_name["live"] = live
        clinic = QAction("Open the clinic archive…", self)  # every laptop's sessions, centrally
        clinic.setShortcut(QKeySequence("Ctrl+Shift+O"))
        clinic.triggered.connect(lambda: self.open_clinic_archive())
        review_menu.addAction(clinic)
        self.actions_by_name["clinic_archive"] = clinic
        close = QAction("Close", self)
        close.setShortcut(QKeySequence("Ctrl+W"))
        close.triggered.connect(self.close)
        review_menu.addSeparator()
        review_menu.addAction(close)

    # --- view settings -----------------------------------------------------------------------

    def apply_view_settings(self) -> None:
        night, large = apply_settings_theme(self.settings)
        self.table.source.night = night
        self.detail.apply_view(night, large)
        for window in self.child_windows:
            apply = getattr(window, "apply_view_settings", None)
            if apply is not None:
                apply()

    # --- messages ----------------------------------------------------------------------------

    def show_message(self, text: str) -> None:
        """A refusal or failure, in plain words, in the window (never a traceback)."""
        self.banner.setText(text)
        self.banner.show()

    def clear_message(self) -> None:
        self.banner.hide()
        self.banner.clear()

    def message_text(self) -> str:
        return self.banner.text() if self.banner.isVisible() else ""

    def _refused(self, exc: BaseException) -> None:
        if isinstance(exc, ValidationError):
            self.show_message("; ".join(e.message for e in exc.errors))
        else:
            self.show_message(str(exc))

    # --- the list ------------------------------------------------------------------------------

    def current_filter(self) -> ArchiveFilter:
        def day(field: QDateEdit) -> date | None:
            value = field.date()
            return None if value == ANY_DATE else date(value.year(), value.month(), value.day())

        return ArchiveFilter(
            date_from=day(self.date_from),
            date_to=day(self.date_to),
            patient_code=self.patient_filter.text(),
            clinician=self.clinician_filter.text(),
            protocol_id=self.protocol_filter.currentData() or "",
            status=self.status_filter.currentData() or "",
            has_adverse_effects=self.ae_filter.isChecked(),
            has_alarms=self.alarm_filter.isChecked(),
            unsigned_only=self.unsigned_filter.isChecked(),
        )

    def refresh(self) -> int:
        """Ask the worker for the list under the current filters; returns the request number."""
        self._debounce.stop()
        flt = self.current_filter()
        self.counts_label.setText("Loading…")
        return self.worker.submit("list", lambda db: list_sessions(db, flt))

    def clear_filters(self) -> None:
        widgets: list[QWidget] = [
            self.date_from,
            self.date_to,
            self.patient_filter,
            self.clinician_filter,
            self.protocol_filter,
            self.status_filter,
            self.ae_filter,
            self.alarm_filter,
            self.unsigned_filter,
        ]
        for widget in widgets:
            widget.blockSignals(True)
        self.date_from.setDate(ANY_DATE)
        self.date_to.setDate(ANY_DATE)
        self.patient_filter.clear()
        self.clinician_filter.clear()
        self.protocol_filter.setCurrentIndex(0)
        self.status_filter.setCurrentIndex(0)
        for box in (self.ae_filter, self.alarm_filter, self.unsigned_filter):
            box.setChecked(False)
        for widget in widgets:
            widget.blockSignals(False)
        self.refresh()

    def _show_rows(self, number: int, rows: list[ArchiveRow]) -> None:
        keep = self.detail.log.id if self.detail.log is not None else None
        self.rows = rows
        self.table.source.today = self.clock.now().astimezone().date()
        self.table.source.set_rows(rows)
        self.counts_label.setText(ArchiveCounts.of(rows).summary())
        self.shown_request = number
        if keep is not None and self.table.select_session(keep):
            return
        if keep is not None:
            self.detail.clear()
            self._update_actions()

    def _job_done(self, number: int, kind: str, result: object) -> None:
        if kind == "list":
            assert isinstance(result, list)
            self._show_rows(number, result)
        elif kind == "protocols":
            assert isinstance(result, list)
            current = self.protocol_filter.currentData()
            self.protocol_filter.blockSignals(True)
            for protocol_id, name in result:
                if self.protocol_filter.findData(protocol_id) < 0:
                    self.protocol_filter.addItem(name, protocol_id)
            self.protocol_filter.setCurrentIndex(max(0, self.protocol_filter.findData(current)))
            self.protocol_filter.blockSignals(False)
        elif kind == "export" and number in self._exports:
            assert isinstance(result, ExportTarget)
            self._export_done(number, result)

    def _job_failed(self, number: int, kind: str, message: str) -> None:
        if kind == "list":
            self.counts_label.setText("The list could not be read")
            self.shown_request = number
        if kind == "export" and number in self._exports:
            job = self._exports.pop(number)
            job.close_dialog()
            title = export_format(job.fmt).title
            if job.cancel.is_set():
                self.show_message(f"The {title} export was cancelled; nothing was written.")
            else:
                self.show_message(f"The {title} was not written to {job.target}: {message}")
            return
        self.show_message(message)

    # --- the selected session --------------------------------------------------------------

    def _selection_changed(self) -> None:
        session_id = self.table.current_session()
        if session_id is None:
            return
        if self.detail.log is None or self.detail.log.id != session_id:
            self.show_session(session_id)

    def show_session(self, session_id: str) -> bool:
        try:
            self.detail.show_session(session_id)
        except StoreError as exc:
            self.detail.clear()
            self._refused(exc)
            self._update_actions()
            return False
        self._update_actions()
        return True

    def open_selected(self) -> None:
        """Enter on a row: show it and move to its timeline."""
        session_id = self.table.current_session()
        if session_id is None:
            return
        if self.detail.log is None or self.detail.log.id != session_id:
            self.show_session(session_id)
        self.detail.show_tab("Timeline")
        self.detail.timeline.setFocus()

    def _reload_after_write(self, message: str) -> None:
        self.clear_message()
        self.detail.reload()
        self._update_actions()
        self.refresh()
        self.statusBar().showMessage(message, 8000)

    def _update_actions(self) -> None:
        log = self.detail.log
        has = log is not None
        # Each write's state and tip is the store's answer (permissions.why_not_*), in its words.
        user, db = self.user, self.store.db
        if log is None:
            why = {
                "sign": permissions.why_not_role(user, SIGNING_ROLES, "sign a session"),
                "comment": permissions.why_not_role(user, COMMENTING_ROLES, "add a review comment"),
                "addendum": None,
                "amend": permissions.why_not_role(user, AMENDING_ROLES, "amend an entry"),
            }
        else:
            why = {
                "sign": permissions.why_not_sign(db, log.id, user),
                "comment": permissions.why_not_comment(db, log.id, user),
                "addendum": permissions.why_not_addendum(db, log.id),
                "amend": permissions.why_not_amend(db, log.id, user),
            }
        allowed_tips = {
            "sign": "Sign the selected session",
            "comment": "Comment on the selected moment",
            "addendum": "Add to the signed record",
            "amend": "Correct an entry you recorded (select it in the timeline)",
        }
        states: dict[str, tuple[bool, str]] = {
            name: (has and why[name] is None, why[name] or tip)
            for name, tip in allowed_tips.items()
        }
        states["series"] = (has, "The selected patient's sessions over time")
        states["rems_submitted"] = self._rems_state()
        for fmt in export_formats():
            states[f"export_{fmt.name}"] = (has, "Export the selected session")
            states[f"export_listed_{fmt.name}"] = (bool(self.rows), "Export every listed session")
        for name, (enabled, tip) in states.items():
            action = self.actions_by_name[name]
            action.setEnabled(bool(enabled))
            key = action.shortcut().toString()
            action.setToolTip(f"{action.text()} ({key}) — {tip}")

    def _rems_state(self) -> tuple[bool, str]:
        log = self.detail.log
        if log is None:
            return False, "Select an esketamine REMS session"
        if log.protocol is None or not log.protocol.rems:
            return False, "The REMS form applies to esketamine REMS sessions only"
        status = rems_store.status(self.store.db, log.id, self.clock.now().astimezone().date())
        if status.submitted_by is not None:
            return False, status.text()
        return True, f"Record who submitted the form, when ({status.text()})"

    def rems_submission_dialog(self) -> RemsSubmissionDialog | None:
        """Mark the selected session's REMS form submitted (append-only, audited)."""
        log = self.detail.log
        if log is None:
            self.show_message("Select a session whose REMS form was submitted.")
            return None
        session_id = log.id
        today = self.clock.now().astimezone().date()

        def save(by: str, when: datetime, reference: str, note: str) -> int:
            return rems_store.mark_submitted(
                self.store.db,
                session_id,
                by,
                when,
                self.user.username,
                self.clock,
                reference=reference,
                note=note,
            )

        status = rems_store.status(self.store.db, session_id, today)
        return RemsSubmissionDialog(
            save,
            self._session_text(),
            status.text(),
            self.user.display_name,
            self.clock.now(),
            self,
        )

    def mark_rems_submitted(self) -> None:
        dialog = self.rems_submission_dialog()
        if dialog is not None and self._run(dialog) is not None:
            self._reload_after_write("REMS form marked submitted")

    def _session_text(self) -> str:
        log = self.detail.log
        assert log is not None
        return f"patient {log.session['patient_code']}, session of {local(log.started_at(), True)}"

    # --- sign-off and review writes ------------------------------------------------------

    def sign_dialog(self) -> SignDialog | None:
        """The sign dialog for the selected session (its save path asks the store)."""
        log = self.detail.log
        if log is None:
            self.show_message("Select a session to sign.")
            return None
        session_id = log.id

        def sign(meaning: str, secret: str, confirmed: list[str]) -> int:
            return self.review.sign(
                session_id, self.user.username, secret, meaning, confirmed
            ).primary_id

        comments = len(log.rows.get("review_comments", []))
        flags = self.review.quality_flags(session_id)  # the ones the store will ask for
        key = self.review.accounts.signing_key(self.user.username)
        return SignDialog(
            self.user,
            self._session_text(),
            sign,
            self,
            comments=comments,
            flags=flags,
            key_fingerprint=key.fingerprint if key else "",
        )

    def sign_selected(self) -> None:
        log = self.detail.log
        refused = (
            permissions.why_not_role(self.user, SIGNING_ROLES, "sign a session")
            if log is None
            else permissions.why_not_sign(self.store.db, log.id, self.user)
        )
        if refused is not None:  # the store's reason, before anything is typed
            self.show_message(refused)
            return
        dialog = self.sign_dialog()
        if dialog is None:
            return
        if self._run(dialog) is not None:
            self._reload_after_write(f"Signed by {self.user.display_name}")

    def comment_dialog(self) -> ReviewCommentDialog | None:
        log = self.detail.log
        if log is None:
            self.show_message("Select a session to comment on.")
            return None
        session_id = log.id
        entry = self.detail.selected_entry()
        at = entry.observed_at if entry is not None else log.first_dose_at() or log.started_at()
        about = f"#{entry.row_id} {entry.kind}: {entry.summary}" if entry is not None else ""

        def save(when: datetime, text: str) -> int:
            return self.review.add_review_comment(session_id, self.user, when, text).primary_id

        return ReviewCommentDialog(
            save, at, self.user.display_name, self, dose_at=log.first_dose_at(), about=about
        )

    def add_review_comment(self) -> None:
        log = self.detail.log
        refused = permissions.why_not_comment(self.store.db, log.id, self.user) if log else None
        if refused is not None:  # the store's reason, before anything is typed
            self.show_message(refused)
            return
        dialog = self.comment_dialog()
        if dialog is not None and self._run(dialog) is not None:
            self._reload_after_write("Review comment added")

    def addendum_dialog(self) -> ReviewCommentDialog | None:
        log = self.detail.log
        if log is None:
            self.show_message("Select a session to add an addendum to.")
            return None
        session_id = log.id

        def save(_when: datetime, text: str) -> int:
            return self.review.add_addendum(session_id, self.user, text).primary_id

        return ReviewCommentDialog(
            save, self.clock.now(), self.user.display_name, self, addendum=True
        )

    def add_addendum(self) -> None:
        log = self.detail.log
        refused = permissions.why_not_addendum(self.store.db, log.id) if log else None
        if refused is not None:
            self.show_message(refused)
            return
        dialog = self.addendum_dialog()
        if dialog is not None and self._run(dialog) is not None:
            self._reload_after_write("Addendum added")

    def amend_form(self) -> EntryForm | None:
        """The correction form for the selected timeline entry, saving through Review.amend."""
        from kapmonitor.ui.forms.correctable import CORRECTABLE
        from kapmonitor.ui.forms.dose_form import DoseForm

        log = self.detail.log
        item = self.detail.selected_entry()
        if log is None or item is None:
            self.show_message("Select the entry to amend in the Timeline tab first.")
            return None
        refused = permissions.why_not_amend(
            self.store.db, log.id, self.user, item.table, item.row_id
        )
        if refused is not None:  # the store's rule, in its words (signed, not theirs…)
            self.show_message(refused)
            return None
        form_type = CORRECTABLE.get(item.table)
        if form_type is None:  # allowed, but this window has no form for it
            self.show_message(f"{item.kind} entries have no correction form here.")
            return None
        try:
            original = self.store.row(item.table, item.row_id)
        except StoreError as exc:
            self._refused(exc)
            return None
        extra: dict[str, Any] = {}
        if form_type is DoseForm:
            extra = {
                "weight_kg": log.session["weight_kg"],
                "previous_doses": log.current("doses"),
            }
        session_id, original_id = log.id, item.row_id

        def save(entry: Entry) -> int:
            return self.review.amend(
                session_id, self.user, original_id, entry, form.reason(), void=form.is_void()
            ).primary_id

        form = form_type(
            self.store.ref,
            save,
            self.clock.now(),
            correcting=original,
            recorder=self.user.display_name,
            parent=self,
            **extra,
        )
        return form

    def amend_selected(self) -> None:
        form = self.amend_form()
        if form is not None and self._run(form) is not None:
            self._reload_after_write("Amendment saved; the original entry stays in the record")

    def _run(self, dialog: Any) -> int | None:
        self.active_dialog = dialog
        try:
            dialog.exec()
        finally:
            self.active_dialog = None
        return dialog.saved_id

    # --- exports --------------------------------------------------------------------------

    def export(self, fmt: str, target: str | None = None) -> int | None:
        """Export the selected session on the worker; returns the request number."""
        log = self.detail.log
        if log is None:
            self.show_message("Select a session to export.")
            return None
        chosen = export_format(fmt)
        if target is None:
            default = f"{log.session['patient_code']}-{log.started_at():%Y%m%d}{chosen.suffix}"
            if chosen.writes_folder:
                target = QFileDialog.getExistingDirectory(self, f"Export {chosen.title} into")
            else:
                target, _ = QFileDialog.getSaveFileName(
                    self, f"Export {chosen.title}", default, chosen.file_filter
                )
            if not target:
                return None
        return self._start_export(fmt, [log.id], target, folder=False)

    def export_listed(self, fmt: str, target: str | None = None) -> int | None:
        """Export every session the list shows into one folder, with a cancellable progress
        dialog; returns the request number."""
        ids = [row.session_id for row in self.rows]
        if not ids:
            self.show_message("The list shows no sessions to export.")
            return None
        chosen = export_format(fmt)
        if target is None:
            target = QFileDialog.getExistingDirectory(self, f"Export {chosen.title} into")
            if not target:
                return None
        return self._start_export(fmt, ids, target, folder=True)

    def _start_export(self, fmt: str, ids: list[str], target: str, folder: bool) -> int:
        """The registry's writer on the worker (read-only connection); the audit entry and the
        move into place happen back here, on the window's own connection."""
        from pathlib import Path

        job = _Export(fmt, ids, target)
        relay = self.export_progress
        cancel = job.cancel

        def progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise ExportCancelled
            relay.moved.emit(number_box[0], done, total)

        number_box = [0]

        def run(db: Any) -> ExportTarget:
            return write_export(fmt, db, ids, Path(target), folder=folder, progress=progress)

        number = self.worker.submit("export", run, keep_all=True)
        number_box[0] = number
        self._exports[number] = job
        title = export_format(fmt).title
        if len(ids) > 1:
            dialog = QProgressDialog(
                f"Writing the {title} of {len(ids)} sessions…", "Cancel", 0, len(ids), self
            )
            dialog.setObjectName("ExportProgress")
            dialog.setWindowTitle("Exporting")
            dialog.setMinimumDuration(0)
            dialog.setAutoClose(False)
            dialog.setAutoReset(False)
            dialog.canceled.connect(cancel.set)
            dialog.setValue(0)
            job.dialog = dialog
        self.statusBar().showMessage(f"Writing the {title}…")
        return number

    def _export_moved(self, number: int, done: int, total: int) -> None:
        job = self._exports.get(number)
        if job is not None and job.dialog is not None and not job.cancel.is_set():
            job.dialog.setMaximum(total)
            job.dialog.setValue(done)

    def _export_done(self, number: int, target: ExportTarget) -> None:
        job = self._exports.pop(number)
        job.close_dialog()
        title = export_format(job.fmt).title
        try:
            finish_export(
                self.store.db, target, job.fmt, job.ids, self.user.username, self.clock.now()
            )
        except Exception as exc:  # the staged files are removed: nothing leaves unaudited
            self.show_message(
                f"The {title} was not written to {job.target}: its audit entry could not be "
                f"recorded ({exc}); nothing was written."
            )
            return
        self.clear_message()
        self.statusBar().showMessage(f"Exported the {title} to {job.target}", 10000)

    @property
    def exports_pending(self) -> int:
        return len(self._exports)

    # --- other windows ------------------------------------------------------------------

    def open_dashboard(self) -> QWidget:
        from kapmonitor.ui.review.dashboard_window import DashboardWindow

        window = DashboardWindow(
            self.store.path, self.clock, self.settings, self, worker=self.worker
        )
        self._keep(window)
        return window

    def open_live_view(self) -> QWidget | None:
        from kapmonitor.ui.review.live_view import open_live_view

        window = open_live_view(self, self.settings)
        if window is not None:
            self._keep(window)
        return window

    def open_clinic_archive(self) -> QWidget | None:
        from kapmonitor.ui.review.central_review_window import open_central_review

        window = open_central_review(self, self.settings)
        if window is not None:
            self._keep(window)
        return window

    def open_patient_series(self) -> QWidget | None:
        from kapmonitor.ui.review.patient_series_view import PatientSeriesView

        log = self.detail.log
        if log is None:
            self.show_message("Select a session: the series is of its patient.")
            return None
        view = PatientSeriesView(
            self.store.path,
            log.session["patient_code"],
            self.clock,
            self.settings,
            self,
            worker=self.worker,
        )
        self._keep(view)
        return view

    def _keep(self, window: QWidget) -> None:
        self.child_windows = [w for w in self.child_windows if w.isVisible()]
        self.child_windows.append(window)
        window.show()
        window.raise_()

    # --- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        for window in self.child_windows:
            window.close()
        self.worker.shutdown()
        super().closeEvent(event)


class _ProgressRelay(QObject):
    """Carries an export's progress from the worker thread to the window (queued)."""

    moved = Signal(int, int, int)  # request number, sessions done, sessions in all


class _Export:
    """One export the window is waiting for: what, where, its dialog and its Cancel flag."""

    def __init__(self, fmt: str, ids: list[str], target: str) -> None:
        import threading

        self.fmt = fmt
        self.ids = ids
        self.target = target
        self.cancel = threading.Event()
        self.dialog: QProgressDialog | None = None

    def close_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.canceled.disconnect()
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None


__all__ = ["ArchiveTableModel", "ReviewWindow"]
