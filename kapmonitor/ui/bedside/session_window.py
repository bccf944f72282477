"""The bedside window: one session at a time, every entry a keystroke away.

It adapts the Qt-free store and domain: forms build records, the store commits them, and only
then does the window show them (timeline row, big numbers, one chart update). Durations are
derived from stored times on every tick, never counted, so a restart shows the same clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import shiboken6
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kapmonitor import APP_NAME
from kapmonitor.domain import discharge_gate
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import chart_delta
from kapmonitor.domain.clock import Clock, format_duration, from_iso
from kapmonitor.domain.phases import next_phase
from kapmonitor.domain.records import Entry, PhaseChange
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.timeline import TimelineItem, timeline, timeline_item
from kapmonitor.settings import (
    CLOCK_TICK_MS,
    DEFAULT_PROTOCOL,
    LARGE_TYPE,
    NIGHT_MODE,
    Settings,
)
from kapmonitor.store import permissions
from kapmonitor.store.errors import StoreError
from kapmonitor.store.session_model import SessionModel
from kapmonitor.store.session_store import SessionStore
from kapmonitor.ui.bedside.backup_runner import BackupRunner
from kapmonitor.ui.bedside.device_feed import DeviceFeed
from kapmonitor.ui.bedside.device_review import DEVICE_ROWS, DeviceReview
from kapmonitor.ui.bedside.protocol_support import ProtocolSupport
from kapmonitor.ui.bedside.session_access import SessionAccess
from kapmonitor.ui.bedside.sync_feed import SyncFeed
from kapmonitor.ui.forms.anchor_settings_dialog import open_record_protection
from kapmonitor.ui.forms.form_base import resize_within_screen
from kapmonitor.ui.widgets.action_bar import ActionBar
from kapmonitor.ui.widgets.alarm_banner import AlarmBanner
from kapmonitor.ui.widgets.last_values_panel import LastValuesPanel
from kapmonitor.ui.widgets.schedule_panel import SchedulePanel
from kapmonitor.ui.widgets.session_header import SessionHeader
from kapmonitor.ui.widgets.theme import apply_settings_theme, view_actions

# The entry forms and the start dialog are imported in the methods that open them, and the
# chart and timeline are built by session_page on the first session: both only so that the
# welcome page paints sooner (pyqtgraph and the forms are not needed before). Forms and
# widgets never import this window, so these are not there to hide an import cycle.
if TYPE_CHECKING:  # built on first use by session_page (see _build_chart_and_timeline)
    from kapmonitor.ui.widgets.timeline_view import TimelineView
    from kapmonitor.ui.widgets.trend_chart import TrendChart


def _notice(page: QWidget, layout: QVBoxLayout) -> QLabel:
    """A wrapped warning line on the start page, centred in a column as wide as the list.

    Added without an alignment flag, so the layout gives it a width and a wrapped label gets
    the height its lines need (an aligned one is sized for a single line and clipped).
    """
    row = QHBoxLayout()
    label = QLabel("", page)
    label.setObjectName("Warn")
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
    label.setMaximumWidth(900)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    row.addStretch(1)
    row.addWidget(label, 4)
    row.addStretch(1)
    layout.addLayout(row)
    return label


SESSION_PAGE_MINIMUM = QSize(720, 480)  # a floor for the user's own resizing, far under 1280 x 720
CORRECTION_CHOICES = 15  # entries offered when C is pressed with no row selected
CLOCK_TOLERANCE_SECONDS = 60  # NTP corrections of a few seconds are not worth a warning
COURSE_ACTIONS = ("phase", "ack", "discharge", "questionnaire", "rems", "correct", "end")


class SavingDialog(Protocol):
    """A dialog that saves through the window and says what it saved."""

    saved_id: int | None

    def exec(self) -> int: ...


class SessionWindow(QMainWindow):
    #: A signed-in user asked for the review room (the application opens it: ui/app.py).
    review_requested = Signal(object)

    def __init__(
        self,
        store: SessionStore,
        clock: Clock,
        settings: Settings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.clock = clock
        self.settings = settings
        self.ref: Reference = store.ref
        # The open session, loaded once and then kept current by each save's Changes.
        self.log: SessionModel | None = None
        # Changes committed by a form's save and not yet shown: the form returns a row id, the
        # window shows the change when the form has closed (commit first, then show).
        self._unshown: list[Changes] = []
        self.recorder = ""
        self.active_form: QWidget | None = None
        self._latest_recorded: datetime | None = None
        self.setWindowTitle(APP_NAME)
        resize_within_screen(self, 1366, 768)

        self.action_bar = ActionBar(self)
        self.header = SessionHeader(self)
        self.header.recorder_changed.connect(self._set_recorder)
        # The chart and the timeline are built when the first session opens (the chart
        # property): the welcome page does not need them, and pyqtgraph is most of start-up.
        self._chart: TrendChart | None = None
        self._timeline: TimelineView | None = None
        self.last_values = LastValuesPanel(self.ref, self)
        self.schedule_panel = SchedulePanel(self)
        self.alarm_banner = AlarmBanner(self)
        self.protocol_support = ProtocolSupport(self)
        self.alarm_banner.acknowledge_requested.connect(self.protocol_support.acknowledge)

        self.pages = QStackedWidget(self)
        self.pages.addWidget(self._build_welcome())
        self.pages.addWidget(self._build_session_page())
        self.setCentralWidget(self.pages)
        self.access = SessionAccess(self)
        self.backups = BackupRunner(store.path, settings, self)
        self.backups.done.connect(
            lambda path: self.statusBar().showMessage(f"Backed up to {path}", 8000)
        )
        self.backups.failed.connect(self._backup_failed)
        self._build_actions()
        self.statusBar().showMessage(f"Database: {store.path}")

        self.ticker = QTimer(self)
        self.ticker.setInterval(settings.get(CLOCK_TICK_MS))
        self.ticker.timeout.connect(self.tick)
        self.ticker.start()
        # Live device capture for the open session, and its status-bar indicator (issue 13).
        self.device_feed = DeviceFeed(self)
        self.ticker.timeout.connect(self.device_feed.refresh)
        # Sync to the clinic server on a worker thread, and its status-bar panel (issue 14).
        self.sync_feed = SyncFeed(self)
        self.ticker.timeout.connect(self.sync_feed.refresh)
        self.apply_view_settings()
        self.show_welcome()

    # --- layout ---------------------------------------------------------------------------

    def _build_welcome(self) -> QWidget:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        title = QLabel(f"<h1>{APP_NAME}</h1>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(title)
        self.start_button = QPushButton("Start a new session  (Ctrl+N)")
        self.start_button.setMinimumHeight(56)
        self.start_button.clicked.connect(self.start_new_session)
        layout.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignCenter)
        self.unfinished_caption = QLabel("Unfinished sessions (double-click or Enter to resume):")
        self.unfinished_caption.setObjectName("Muted")
        layout.addWidget(self.unfinished_caption, 0, Qt.AlignmentFlag.AlignCenter)
        self.unfinished = QListWidget(page)
        self.unfinished.setMaximumWidth(720)
        self.unfinished.setMinimumWidth(520)
        self.unfinished.itemActivated.connect(
            lambda item: self.open_session(item.data(Qt.ItemDataRole.UserRole))
        )
        layout.addWidget(self.unfinished, 0, Qt.AlignmentFlag.AlignCenter)
        self.accounts_hint = _notice(page, layout)
        # A clinic protocol file that could not be used is named here, with the reason, until
        # it is fixed: the session would otherwise run on a protocol nobody chose.
        self.protocol_problems = _notice(page, layout)
        self.protocol_problems.setText(self.protocol_support.problems_text())
        self.protocol_problems.setVisible(bool(self.protocol_problems.text()))
        layout.addStretch(2)
        return page

    def _build_session_page(self) -> QWidget:
        """Laid out for 1280 x 720 first: what matters at the bedside keeps its place.

        Entry buttons and the header run across the top. Below, the big numbers hold a column
        on the right from the header down; on the left, the next check and the alarms take the
        height they need and the chart and the timeline share what is left: they are the parts
        that give way (the timeline down to its latest rows).
        """
        page = QWidget(self)
        # The window never grows itself: a moment's long text (a three-line next check while
        # alarms are acknowledged in large type) used to push it past the screen for good.
        page.setMinimumSize(SESSION_PAGE_MINIMUM)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(4)
        layout.addWidget(self.action_bar)
        layout.addWidget(self.header)
        self.clock_warning = QLabel("", page)
        self.clock_warning.setObjectName("ErrorBanner")
        self.clock_warning.setWordWrap(True)
        self.clock_warning.hide()
        layout.addWidget(self.clock_warning)
        chart_and_timeline = QSplitter(Qt.Orientation.Vertical, page)
        chart_and_timeline.setObjectName("ChartTimelineSplitter")
        self.chart_and_timeline = chart_and_timeline  # filled by _build_chart_and_timeline
        left = QWidget(page)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self.schedule_panel)
        column.addWidget(self.alarm_banner)
        column.addWidget(chart_and_timeline, 1)
        body = QSplitter(Qt.Orientation.Horizontal, page)
        body.setObjectName("BodySplitter")
        body.addWidget(left)
        body.addWidget(self.last_values)
        body.setStretchFactor(0, 1)
        body.setStretchFactor(1, 0)
        body.setCollapsible(0, False)
        body.setCollapsible(1, False)
        layout.addWidget(body, 1)
        self.body = body
        self.last_values.installEventFilter(self)
        return page

    def _build_chart_and_timeline(self) -> None:
        """Build the chart and the timeline into the session page, once.

        Deferred from __init__ for start-up time only (the chart imports pyqtgraph); the
        session page module imports widgets, never this window, so there is no cycle to hide.
        """
        if self._chart is not None:
            return
        from kapmonitor.ui.bedside.session_page import build_chart_and_timeline

        self._chart, self._timeline = build_chart_and_timeline(
            self,
            self.chart_and_timeline,
            self.store,
            self.ref,
            night=self.settings.get(NIGHT_MODE),
            large=self.settings.get(LARGE_TYPE),
            on_double_click=self.correct_selected,
        )

    @property
    def chart(self) -> TrendChart:
        """The live chart, built on first use (opening a session builds it)."""
        self._build_chart_and_timeline()
        assert self._chart is not None
        return self._chart

    @property
    def timeline(self) -> TimelineView:
        """The session's timeline, built with the chart on first use."""
        self._build_chart_and_timeline()
        assert self._timeline is not None
        return self._timeline

    def session_page_built(self) -> bool:
        """Whether the chart and timeline exist yet (they wait for the first session)."""
        return self._chart is not None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.last_values and event.type() == QEvent.Type.LayoutRequest:
            # With the window as context: a fit queued while it closes is dropped with it.
            QTimer.singleShot(0, self, self._fit_numbers_column)
        return super().eventFilter(watched, event)

    def _fit_numbers_column(self, reset: bool = False) -> None:
        """Give the big numbers the width their text needs, taking it from the chart.

        A splitter keeps its sizes when a child's minimum grows (large type, "212/118" after
        "98/60"), which cut the numbers; ``reset`` (a change of type size) also gives back what
        large type took, so turning it off restores the chart.
        """
        if not shiboken6.isValid(self.body):  # queued before the window's parts were deleted
            return
        sizes = self.body.sizes()
        if len(sizes) != 2 or sum(sizes) == 0:
            return
        need = self.last_values.minimumSizeHint().width()
        want = max(need, self.last_values.sizeHint().width()) if reset else need
        if sizes[1] < need or (reset and sizes[1] != want):
            total = sum(sizes)
            self.body.setSizes([total - want, want])

    def _build_actions(self) -> None:
        self.actions_by_name: dict[str, QAction] = {}
        entries: list[tuple[str, str, str, Callable[[], Any]]] = [
            ("vitals", "Vitals", "V", self.enter_vitals),
            ("dose", "Dose", "D", self.enter_dose),
            ("observation", "Sedation / dissociation", "O", self.enter_observation),
            ("adverse", "Adverse effect", "A", self.enter_adverse_event),
            ("outcome", "AE outcome", "R", self.enter_ae_outcome),
            ("intervention", "Intervention", "I", self.enter_intervention),
            ("note", "Note", "N", self.enter_note),
            ("phase", "Next phase", "P", self.advance_phase),
            ("ack", "Acknowledge alarm", "K", lambda: self.protocol_support.acknowledge()),
            ("discharge", "Discharge check", "X", self.protocol_support.discharge_check),
            ("questionnaire", "Questionnaire", "Q", self.protocol_support.questionnaire),
            ("rems", "REMS summary", "S", self.protocol_support.show_rems),
            ("correct", "Correct entry", "C", self.correct_selected),
            ("end", "End session", "E", self.end_session),
        ]
        session_menu = self.menuBar().addMenu("&Session")
        new = QAction("New session", self)
        new.setShortcut(QKeySequence("Ctrl+N"))
        new.triggered.connect(self.start_new_session)
        session_menu.addAction(new)
        self.actions_by_name["new"] = new
        for text, key, slot in (
            ("Review sessions…", "Ctrl+R", self.access.open_review),
            ("Accounts…", "", self.access.manage_accounts),
            ("Record protection…", "", self.protect_record),
            ("Devices…", "", lambda: self.device_feed.open_dialog()),
            ("Clinic server…", "", lambda: self.sync_feed.open_dialog()),
            ("My password and PIN…", "", self.access.my_account),
            ("Lock now", "Ctrl+L", lambda: self.access.lock()),
        ):
            extra = QAction(text, self)
            if key:
                extra.setShortcut(QKeySequence(key))
            extra.triggered.connect(slot)
            session_menu.addAction(extra)
        entry_menu = self.menuBar().addMenu("&Entry")
        for name, text, key, slot in entries:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{text} ({key})")
            action.setIconText(f"{text} ({key})")
            action.triggered.connect(slot)
            entry_menu.addAction(action)
            self.action_bar.add(action, course=name in COURSE_ACTIONS)
            self.actions_by_name[name] = action
        # Device values (issue 13): Confirm (F) and Mark artefact (M), in device_review.
        self.device_review = DeviceReview(self, entry_menu)
        for index in range(4):
            pick = QAction(f"Record as clinician {index + 1}", self)
            pick.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            pick.triggered.connect(lambda _=False, i=index: self.header.recorder.setCurrentIndex(i))
            self.addAction(pick)
        view = self.menuBar().addMenu("&View")
        self.night_action, self.large_action = view_actions(
            self, self.settings, self.apply_view_settings
        )
        # The critical sound is on by default; turning it off asks a reason (audited).
        self.sound_action, self.warning_sound_action = self.protocol_support.sound_actions()
        view.addAction(self.sound_action)
        view.addAction(self.warning_sound_action)
        view.addAction(self.night_action)
        view.addAction(self.large_action)
        view.addSeparator()
        self.news2_scale_action = QAction("NEWS2 SpO₂ scale…", self)
        self.news2_scale_action.triggered.connect(self.choose_news2_scale)
        view.addAction(self.news2_scale_action)
        self.actions_by_name["news2_scale"] = self.news2_scale_action
        session_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        session_menu.addAction(quit_action)

    def protect_record(self) -> None:
        """Session ▸ Record protection…: the anchor log's folder (an administrator's)."""
        open_record_protection(self, self.store.db, self.access.accounts, self.clock.now)

    # --- view settings ----------------------------------------------------------------------

    def apply_view_settings(self) -> None:
        night, large = apply_settings_theme(self.settings)
        if self._chart is not None:  # otherwise built later in the current palette
            self._chart.apply_palette(night)
            self._chart.set_large_type(large)
        self.schedule_panel.apply_theme(night, large)
        self.alarm_banner.apply_theme(night, large)
        QTimer.singleShot(0, self, lambda: self._fit_numbers_column(reset=True))

    # --- sessions ---------------------------------------------------------------------------

    def show_welcome(self) -> None:
        self.log = None
        self.unfinished.clear()
        try:
            sessions = self.store.unfinished_sessions()
        except StoreError as exc:
            self.report_error(exc)
            sessions = []
        for row in sessions:
            started = from_iso(row["started_at"])
            age = format_duration((self.clock.now() - started).total_seconds())
            text = (
                f"{row['patient_code']} — started {started.astimezone():%Y-%m-%d %H:%M} "
                f"({age} ago) — {row['clinicians']}"
            )
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, row["id"])
            self.unfinished.addItem(item)
        self.unfinished.setVisible(bool(sessions))
        self.unfinished_caption.setVisible(bool(sessions))
        self.accounts_hint.setText(self.access.setup_hint())
        self.accounts_hint.setVisible(bool(self.accounts_hint.text()))
        self.pages.setCurrentIndex(0)
        self.update_enabled()

    def offer_resume(self) -> bool:
        """At start-up: an unfinished session is offered for resume, with its clock intact."""
        try:
            sessions = self.store.unfinished_sessions()
        except StoreError as exc:
            self.report_error(exc)
            return False
        if not sessions:
            return False
        newest = sessions[0]
        started = from_iso(newest["started_at"])
        box = QMessageBox(self)
        box.setObjectName("ResumePrompt")
        box.setWindowTitle("Resume session?")
        box.setText(
            f"An unfinished session was found: patient {newest['patient_code']}, started "
            f"{started.astimezone():%H:%M} on {started.astimezone():%Y-%m-%d} "
            f"({format_duration((self.clock.now() - started).total_seconds())} ago)."
        )
        box.setInformativeText("Resume it? Its clocks continue from the stored times.")
        resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(resume)
        box.exec()
        if box.clickedButton() is resume:
            self.open_session(newest["id"])
            return True
        return False

    def start_new_session(self) -> None:
        if self.log is not None and self.log.phase() != "ended":
            answer = QMessageBox.question(
                self,
                "Another session is open",
                "The current session has not ended. Leave it open (it can be resumed) and "
                "start a new one?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        signed_in = self.access.sign_in_clinicians()
        if signed_in is None:
            return
        catalogue = self.protocol_support.catalogue

        def start(record: Any, recorded_by: str) -> str:
            chosen = dialog.selected_protocol()
            protocol = catalogue.protocols.get(chosen) if chosen else None
            return self.store.start_session(record, recorded_by, protocol=protocol)

        from kapmonitor.ui.forms.start_session_dialog import StartSessionDialog

        dialog = StartSessionDialog(
            self.ref,
            start,
            self.clock.now(),
            self,
            protocols=self.protocol_support.protocol_choices(),
            default_protocol=self.settings.get(DEFAULT_PROTOCOL),
            signed_in=signed_in,
            rems_protocols=[pid for pid, p in catalogue.protocols.items() if p.rems],
        )
        self.active_form = dialog
        try:
            if dialog.exec() and dialog.session_id:
                self.open_session(dialog.session_id, fresh=True)
        finally:
            self.active_form = None

    def open_session(self, session_id: str, fresh: bool = False) -> None:
        """Show a session; one not just started here (a resume) opens locked when accounts
        are in use."""
        try:
            self.log = SessionModel.load(self.store, session_id)
        except StoreError as exc:
            self.report_error(exc)
            return
        self._build_chart_and_timeline()
        self.log.subscribe(self._model_changed)
        self._unshown = []
        log = self.log
        self.header.set_patient(log.session["patient_code"])
        self._latest_recorded = log.latest_recorded_at()  # kept current by after_save
        self.access.session_opened(fresh)
        self.header.set_clinicians(log.clinicians)
        # The session page is shown before the views are filled: a table view that is not
        # visible sizes its columns from every row, which read a three-hour record's 21,600
        # timeline lines from the store (seconds) instead of the dozen on screen.
        self.pages.setCurrentIndex(1)
        with log.read_once():  # the views and the alarm levels read the record once
            self._rebuild_views()
            self.protocol_support.session_opened()
        self.setWindowTitle(f"{APP_NAME} — {log.session['patient_code']}")
        self.tick()
        self.backups.session_running(log.phase() != "ended")
        self.device_feed.session_opened()  # capture follows the session shown

    def _rebuild_views(self) -> None:
        """Full redraw: only on opening a session or after a correction (rare)."""
        assert self.log is not None
        log = self.log
        first_dose = log.first_dose_at()
        self.chart.reset(
            log.started_at().timestamp(), first_dose.timestamp() if first_dose else None
        )
        self.last_values.clear()
        tables = ("vitals", "observations", "doses", "adverse_events", "interventions")
        with self.chart.bulk():
            for table in tables:
                rows = log.current(table)
                for row in rows:
                    self.chart_row(table, row)
                # The big numbers from the rows holding the newest values, not every row.
                self.last_values.show_latest(table, rows)
            score = log.latest_news2()
            if score is not None:
                self._show_row("vital_scores", score)
        # Loaded with the timeline by session_page by now (deferred for start-up only).
        from kapmonitor.ui.widgets.timeline_view import PagedTimelineModel

        model = self.timeline.timeline
        if isinstance(model, PagedTimelineModel):  # the bedside's: builds only the kept lines
            model.reset_rows(log.all_rows(), first_dose)
        else:
            model.reset(timeline(log.all_rows(), self.ref), first_dose)
        if self.timeline.isVisible():
            self.timeline.scrollToBottom()
        else:  # hidden, it would size its columns from every line: scroll once it is shown
            QTimer.singleShot(0, self.timeline, self.timeline.scrollToBottom)
        self.device_review.redraw()  # pending and artefact device readings, pending numbers
        self._update_header()

    # --- saving entries -----------------------------------------------------------------------

    def _set_recorder(self, name: str) -> None:
        if self.access.locked():
            self.recorder = name  # unlocking sets who records
            return
        # Someone not signed in since a resume signs in once, then switches freely.
        allowed = not name or self.access.recorder_allowed(name) or self.access.sign_in_as(name)
        if not allowed:
            self.header.recorder.blockSignals(True)
            self.header.recorder.setCurrentText(self.recorder)
            self.header.recorder.blockSignals(False)
            return
        self.recorder = name

    def _save(self, entry: Entry) -> int:
        assert self.log is not None
        return self.committed(self.store.add(self.log.id, entry, self.recorder))

    def committed(self, changes: Changes) -> int:
        """Keep a committed write's change to show once its form closes; the form gets the
        row id it always had (a form never shows a row, the window does)."""
        self._unshown.append(changes)
        self.sync_feed.request()  # only wakes the sync thread: no network on the save path
        return changes.primary_id or 0

    def open_form(self, form: SavingDialog) -> int | None:
        """Run a dialog that saves through the window (an entry form, the alarm, discharge or
        questionnaire dialog) as the active form, so the idle lock and a resume know one is
        open; returns the saved row's id, or None when nothing was saved."""
        self.active_form = form
        try:
            form.exec()
        finally:
            self.active_form = None
        return form.saved_id

    def _form_kwargs(self) -> dict[str, Any]:
        return {"recorder": self.recorder, "parent": self}

    def after_save(self, table: str, row_id: int | None) -> None:
        """Show what the saves since the last call committed (``row_id`` None: nothing was
        saved). Everything comes from the writes' :class:`Changes`: the store is not read."""
        pending, self._unshown = self._unshown, []
        if row_id is None or self.log is None:
            return
        for changes in pending:
            self.show_changes(changes)

    def show_changes(self, changes: Changes) -> None:
        """Show one committed write: the model applies it and tells its listeners, this
        window among them (:meth:`_model_changed`)."""
        if self.log is not None and changes.primary is not None:
            self.log.apply(changes)

    def apply_device_changes(self, changes: Changes) -> None:
        """Show a committed device write (the device feed calls this on the GUI thread after
        ``device_store.add_device_readings``; a confirmation comes back the same way): the
        model, chart and big numbers update from the change alone, in device_review."""
        self.device_review.apply(changes)
        self.sync_feed.request()

    def _model_changed(self, changes: Changes) -> None:
        """The model's listener: one timeline insert per new entry, the big numbers, one chart
        update, NEWS2 and alarms, the header; or a redraw after a correction."""
        log = self.log
        primary = changes.primary
        if log is None or primary is None:
            return
        table, row = primary
        stamp = changes.latest_recorded_at
        if stamp is not None and (self._latest_recorded is None or stamp > self._latest_recorded):
            self._latest_recorded = stamp
        if table in DEVICE_ROWS:
            return  # a device write's readings and decisions: device_review shows them
        if changes.corrects is not None:
            self._rebuild_views()  # a correction may move any reading: redraw from the model
            self.protocol_support.session_opened()
            self.tick()
            return
        first = log.first_dose_at()
        if first is not None and first in changes.dose_times:  # time zero is this dose's
            self.chart.set_origin(first.timestamp())
            self.timeline.timeline.set_origin(first)
        self._show_row(table, row)
        position = self.timeline.timeline.append(timeline_item(table, row, self.ref))
        for phase in changes.phase_changes:  # the dosing phase the first dose brings
            if phase is not row:
                self.timeline.timeline.append(timeline_item("phase_changes", phase, self.ref))
        self.timeline.show_item(position)
        self._update_header()
        self.protocol_support.after_save(changes)
        self.protocol_support.tick()  # the next check moves the moment a reading is saved
        self.statusBar().showMessage(f"Saved {table.replace('_', ' ')} #{row.id}", 5000)

    def _show_row(self, table: str, row: dict[str, Any]) -> None:
        self.chart_row(table, row)
        if table == "vitals":
            self.last_values.show_vitals(row)
        elif table == "vital_scores":
            self.last_values.show_news2(row)
        elif table == "observations":
            self.last_values.show_observation(row)

    def chart_row(self, table: str, row: dict[str, Any]) -> None:
        """Draw one committed row on the live chart: its delta of the chart picture (each
        changed series handed to its curve once, a marker per event), so the live chart is
        what the review chart and the PDF draw from the whole session."""
        self.chart.apply(chart_delta(table, row, self.ref))

    def _entry_allowed(self, table: str) -> bool:
        """Ask the store's rule before a form opens (ended, signed), and say its reason."""
        if self.log is None or self.access.locked():
            return False
        refused = permissions.why_not_add(self.store.db, self.log.id, table)
        if refused is not None:
            QMessageBox.information(self, "Entry closed", refused)
            return False
        return True

    def enter_vitals(self) -> None:
        if not self._entry_allowed("vitals"):
            return
        from kapmonitor.ui.forms.vitals_form import VitalsForm

        form = VitalsForm(self.ref, self._save, self.clock.now(), **self._form_kwargs())
        form.set_last({k: v for k, (v, _t) in self.log.last_vitals().items()})  # type: ignore[union-attr]
        self.after_save("vitals", self.open_form(form))

    def enter_dose(self) -> None:
        if not self._entry_allowed("doses") or not self.protocol_support.dose_allowed():
            return
        assert self.log is not None
        from kapmonitor.ui.forms.dose_form import DoseForm

        form = DoseForm(
            self.ref,
            self._save,
            self.clock.now(),
            weight_kg=self.log.session["weight_kg"],
            previous_doses=self.log.current("doses"),
            **self._form_kwargs(),
            **self.protocol_support.dose_form_kwargs(),
        )
        self.after_save("doses", self.open_form(form))

    def enter_observation(self) -> None:
        if self._entry_allowed("observations"):
            from kapmonitor.ui.forms.observation_form import ObservationForm

            form = ObservationForm(self.ref, self._save, self.clock.now(), **self._form_kwargs())
            self.after_save("observations", self.open_form(form))

    def enter_adverse_event(self) -> None:
        if self._entry_allowed("adverse_events"):
            from kapmonitor.ui.forms.adverse_event_form import AdverseEventForm

            form = AdverseEventForm(self.ref, self._save, self.clock.now(), **self._form_kwargs())
            self.after_save("adverse_events", self.open_form(form))

    def enter_ae_outcome(self, preselect: int | None = None) -> None:
        if self.log is None:
            return
        open_events = [
            (row.id, timeline_item("adverse_events", row, self.ref).summary)
            for row in self.log.open_adverse_events()
        ]
        from kapmonitor.ui.forms.ae_outcome_form import AdverseEventOutcomeForm

        form = AdverseEventOutcomeForm(
            self.ref,
            self._save,
            self.clock.now(),
            open_events=open_events,
            preselect=preselect,
            **self._form_kwargs(),
        )
        self.after_save("adverse_event_outcomes", self.open_form(form))

    def enter_intervention(self, category: str | None = None) -> None:
        if self.log is None:
            return
        from kapmonitor.ui.forms.intervention_form import InterventionForm

        form = InterventionForm(
            self.ref, self._save, self.clock.now(), category=category, **self._form_kwargs()
        )
        self.after_save("interventions", self.open_form(form))

    def choose_news2_scale(self) -> None:
        """A clinician chooses SpO₂ Scale 2 (or back to 1) for this patient, with the reason."""
        if not self._entry_allowed("news2_scale_choices"):
            return
        assert self.log is not None
        from kapmonitor.domain.clock import to_iso
        from kapmonitor.domain.news2 import scale_in_force
        from kapmonitor.ui.forms.news2_scale_form import News2ScaleForm

        now = self.clock.now()
        current = scale_in_force(self.log.current("news2_scale_choices"), to_iso(now))
        form = News2ScaleForm(self.ref, self._save, now, current=current, **self._form_kwargs())
        shown = len(self._unshown)
        row_id = self.open_form(form)
        saved = self._unshown[shown:]
        self.after_save("news2_scale_choices", row_id)
        if row_id is not None and saved and saved[-1].primary_row is not None:
            chosen = saved[-1].primary_row["scale"]
            if "news2" not in self.last_values.times:
                self.last_values.set_news2_scale(chosen)
            self.statusBar().showMessage(
                f"NEWS2 SpO₂ Scale {chosen} recorded: it applies from the next vital signs.", 8000
            )

    def enter_note(self) -> None:
        self.enter_intervention("note")

    def advance_phase(self) -> None:
        if not self._entry_allowed("phase_changes"):
            return
        assert self.log is not None
        target = next_phase(self.log.phase())
        if target is None or target == "ended":
            self.end_session()
            return
        label = self.ref.label("phases", target)
        answer = QMessageBox.question(self, "Next phase", f"Move the session to “{label}” now?")
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            row_id = self._save(PhaseChange(target, self.clock.now()))
        except (StoreError, ValueError) as exc:
            self.report_error(exc)
            return
        self.after_save("phase_changes", row_id)

    def end_session(self) -> None:
        if not self._entry_allowed("session_ends"):
            return
        assert self.log is not None
        protocol = self.log.protocol
        # Home goes through the discharge gate (the store refuses it otherwise): while the gate
        # has reasons now, the discharge check opens first and lists them.
        if protocol is not None and discharge_gate.home_refusals(
            protocol, self.log.current_rows(), self.clock.now()
        ):
            self.protocol_support.discharge_check()
        now = self.clock.now()
        started, dose = self.log.started_at(), self.log.first_dose_at()
        elapsed = f"Session length {format_duration((now - started).total_seconds())}"
        if dose is not None:
            elapsed += f"; {format_duration((now - dose).total_seconds())} since first dose"
        from kapmonitor.ui.forms.end_session_form import EndSessionForm

        form = EndSessionForm(
            self.ref,
            self._save,
            now,
            elapsed_text=elapsed,
            open_adverse_events=len(self.log.open_adverse_events()),
            **self._form_kwargs(),
        )
        end_id = self.open_form(form)
        self.after_save("session_ends", end_id)
        self.update_enabled()
        if end_id is not None:
            self.device_feed.session_ended()
            self.backups.session_running(False)
            self.backups.run()  # every ended session is in a checked backup
            self.access.attest_after_end()  # each clinician may sign the record with their key

    def correct_selected(self) -> None:
        if self.log is None:
            return
        item = self.timeline.selected_item() or self._pick_entry_to_correct()
        if item is None:
            return
        refused = permissions.why_not_correct(self.store.db, self.log.id, item.table, item.row_id)
        if refused is not None:  # the store's rule, in its words (signed, already corrected…)
            QMessageBox.information(self, "Correct entry", refused)
            return
        from kapmonitor.ui.forms.correctable import CORRECTABLE

        form_type = CORRECTABLE.get(item.table)
        if form_type is None:  # allowed, but this window has no form for it
            QMessageBox.information(
                self, "Correct entry", f"{item.kind} entries have no correction form here."
            )
            return
        original = self.store.row(item.table, item.row_id)
        extra: dict[str, Any] = {}
        from kapmonitor.ui.forms.dose_form import DoseForm

        if form_type is DoseForm:
            extra = {
                "weight_kg": self.log.session["weight_kg"],
                "previous_doses": self.log.current("doses"),
            }
        session_id = self.log.id

        def save(entry: Entry) -> int:
            return self.committed(
                self.store.correct(
                    session_id,
                    item.row_id,
                    entry,
                    form.reason(),
                    self.recorder,
                    void=form.is_void(),
                )
            )

        form = form_type(
            self.ref, save, self.clock.now(), correcting=original, **extra, **self._form_kwargs()
        )
        # A correction is shown from its change like any save: the model takes the corrected
        # row and the views redraw from it (not a resume: nothing locks, the recorder stays).
        self.after_save(item.table, self.open_form(form))

    def _pick_entry_to_correct(self) -> TimelineItem | None:
        """With no row selected, C asks which entry, newest first, instead of a status-bar hint.

        The hint sat off-screen on a small laptop, so "Correct entry" seemed to do nothing.
        """
        from kapmonitor.ui.forms.correctable import CORRECTABLE

        model = self.timeline.timeline
        candidates = [
            item
            for item in reversed(model.items)
            if item.table in CORRECTABLE and not model.is_superseded(item)
        ][:CORRECTION_CHOICES]
        if not candidates:
            QMessageBox.information(self, "Correct entry", "There is no entry to correct yet.")
            return None
        labels = [
            f"{item.observed_at.astimezone():%H:%M}  #{item.row_id} {item.kind}: {item.summary}"
            for item in candidates
        ]
        dialog = QInputDialog(self)
        dialog.setObjectName("CorrectWhich")
        dialog.setWindowTitle("Correct entry")
        dialog.setLabelText("Which entry? (newest first; or select a row in the timeline)")
        dialog.setComboBoxItems(labels)
        dialog.setComboBoxEditable(False)
        self.active_form = dialog
        try:
            if not dialog.exec():
                return None
        finally:
            self.active_form = None
        chosen = candidates[labels.index(dialog.textValue())]
        self.timeline.show_item(model.items.index(chosen))
        return chosen

    # --- clocks -------------------------------------------------------------------------

    def tick(self) -> None:
        if self.log is None:
            return
        now = self.clock.now()
        self._update_header(now)
        self.protocol_support.tick()
        self.last_values.update_ages(now)
        self.chart.set_now(now.timestamp())
        self.access.refresh()

    def _update_header(self, now: datetime | None = None) -> None:
        if self.log is None:
            return
        log = self.log
        now = now or self.clock.now()
        self._check_clock(now)
        self.header.phase.setText(self.ref.label("phases", log.phase()))
        self.header.update_times(
            now,
            log.started_at(),
            log.first_dose_at(),
            log.ended_at(),
            int(log.session["session_limit_minutes"]),
        )
        total = log.cumulative_dose_mg()
        weight = log.session["weight_kg"]
        self.header.dose.setText(f"{total:g} mg ({total / weight:.2f} mg/kg)" if total else "none")
        self.update_enabled()

    def _check_clock(self, now: datetime) -> None:
        """A clock that went back (a time change, a laptop that slept) is said, not hidden.

        Stored times are never rewritten and the schedule works from them; but a clinician
        must know that "now" in a new entry would be wrong until the clock is right.
        """
        latest = self._latest_recorded
        if latest is None:
            return
        behind = (latest - now).total_seconds()
        if behind > CLOCK_TOLERANCE_SECONDS:
            self.clock_warning.setText(
                f"⚠ The computer's clock ({now.astimezone():%H:%M}) is earlier than the last "
                f"saved entry ({latest.astimezone():%H:%M}): it was changed, or the laptop slept "
                "across a time change. Stored entries are unchanged; check the clock and the "
                "time of each new entry."
            )
            self.clock_warning.show()
        else:
            self.clock_warning.hide()

    def update_enabled(self) -> None:
        locked = self.access.locked()
        has = self.log is not None and not locked
        ended = has and self.log.phase() == "ended"  # type: ignore[union-attr]
        for name, action in self.actions_by_name.items():
            if name == "new":
                action.setEnabled(not locked)
                continue
            # After the end: corrections, late outcomes and notes, the post-session
            # questionnaire and the REMS form (filled once monitoring has ended) stay open.
            if name in ("correct", "outcome", "note", "intervention", "questionnaire", "rems"):
                action.setEnabled(has)
            else:
                action.setEnabled(has and not ended)
        self.device_review.update_enabled()

    # --- errors and closing ----------------------------------------------------------------

    def _backup_failed(self, message: str) -> None:
        """Said plainly, without interrupting recording: the live file is unaffected."""
        self.statusBar().showMessage(f"⚠ {message}", 0)

    def report_error(self, exc: BaseException) -> None:
        QMessageBox.warning(self, APP_NAME, str(exc))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.ticker.stop()
        self.device_feed.stop()  # no capture thread outlives the window
        self.sync_feed.stop()  # no sync thread outlives the window
        self.backups.session_running(False)
        self.backups.wait()  # a backup in flight finishes before the store closes
        super().closeEvent(event)
        if event.isAccepted():
            # The idle check reads the clinic's setting from the store: a closed window that
            # lives on (a caller still holding it) must not read a store closed after it.
            self.access.watcher.stop()
