"""The live view: every laptop's sessions in progress, for a supervisor in another room.

A table (laptop, patient code, phase, elapsed, since the last dose, next check due, open alarms)
kept up to date by :class:`kapmonitor.network.live.LiveListener` (LISTEN/NOTIFY on the central
archive): a laptop's commit reaches it as soon as the laptop's sync pass sends it. The listener
runs on its own thread; its callbacks reach this window through Qt signals (queued onto the GUI
thread). A one-second tick keeps the times and the due/overdue state current between updates.

Sign-in: the server's own. The window connects with a **reviewer** role's URL (a member of
``kap_reviewer``; password in ``~/.pgpass`` or ``PGPASSWORD``), opened by
``kapmonitor live --server URL`` or from the review window (Review → Live view), where the
supervisor has already signed in to the local review as today. A laptop's role sees only its
own sessions (row-level security). When the server cannot be reached, the list stays as last
known and a banner says since when, in plain words.
"""

from __future__ import annotations

import os
from datetime import datetime

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QCloseEvent, QColor, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kapmonitor import APP_NAME
from kapmonitor.domain.clock import Clock, SystemClock
from kapmonitor.network.connection import redact
from kapmonitor.network.live import ListenerState, LiveListener, LiveSession, LiveUpdate
from kapmonitor.settings import NIGHT_MODE, Settings
from kapmonitor.ui.forms.form_base import resize_within_screen
from kapmonitor.ui.widgets.theme import apply_settings_theme, current_theme, view_actions

LIVE_SERVER_ENV = "KAPMONITOR_LIVE_SERVER"  # a reviewer role's URL (else $KAPMONITOR_SERVER)
COLUMNS = ("Laptop", "Patient", "Phase", "Elapsed", "Since dose", "Next check", "Open alarms")
COL_NEXT, COL_ALARMS = 5, 6


def span(seconds: float) -> str:
    """``1 h 05 min`` / ``12 min`` / ``40 s``: read at a glance across a room."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def next_check_text(session: LiveSession, now: datetime) -> tuple[str, str]:
    """(text, state) of the next check: state ``overdue``, ``due``, ``upcoming`` or ``none``.
    Words and a symbol carry the state, not the colour alone."""
    if session.problem:
        return f"? Not known: {session.problem}", "unknown"
    check = session.next_check
    if check is None:
        return "—", "none"
    state = check.status(now)
    if state == "overdue":
        late = (now - check.due_at).total_seconds()
        return f"⚠ OVERDUE {span(late)}: {check.label}", state
    if state == "due":
        return f"● Due now: {check.label}", state
    return f"{check.label} in {span((check.due_at - now).total_seconds())}", state


def alarms_text(session: LiveSession) -> tuple[str, bool]:
    """(text, critical) of the open (unacknowledged) alarms."""
    if session.open_alarms == 0:
        return "none", False
    parts = f"{session.open_alarms} open"
    if session.open_critical:
        parts = f"⚠ {parts} ({session.open_critical} critical)"
    if session.top_alarm:
        parts += f": {session.top_alarm}"
    return parts, session.open_critical > 0


class _Bridge(QObject):
    """Carries the listener's callbacks (its own thread) onto the GUI thread."""

    updated = Signal(object)
    state_changed = Signal(object)


class LiveViewWindow(QMainWindow):
    """Sessions in progress on every laptop, from the central archive at ``url``."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        clock: Clock | None = None,
        parent: QWidget | None = None,
        refresh_s: float | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.url = url
        self.settings = settings
        self.clock = clock or SystemClock()
        self.sessions: dict[tuple[str, str], LiveSession] = {}
        self.connected = False
        self.last_good: datetime | None = None
        self.updates_seen = 0
        self.setWindowTitle(f"{APP_NAME} — live view ({redact(url)})")
        resize_within_screen(self, 1200, 640)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 8)
        self.banner = QLabel(central)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.summary = QLabel("Connecting to the clinic server…", central)
        self.summary.setObjectName("LiveSummary")
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, len(COLUMNS), central)
        self.table.setObjectName("LiveTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            mode = (
                QHeaderView.ResizeMode.Stretch
                if column in (COL_NEXT, COL_ALARMS)
                else QHeaderView.ResizeMode.ResizeToContents
            )
            header.setSectionResizeMode(column, mode)
        layout.addWidget(self.table, 1)
        self.setCentralWidget(central)

        view_menu = self.menuBar().addMenu("&View")
        self.night_action, self.large_action = view_actions(
            self, settings, self.apply_view_settings
        )
        view_menu.addAction(self.night_action)
        view_menu.addAction(self.large_action)
        close = QAction("Close", self)
        close.setShortcut(QKeySequence("Ctrl+W"))
        close.triggered.connect(self.close)
        view_menu.addSeparator()
        view_menu.addAction(close)
        self.statusBar().showMessage(f"Clinic server: {redact(url)}")

        self._bridge = _Bridge(self)
        self._bridge.updated.connect(self.apply_update)
        self._bridge.state_changed.connect(self.apply_state)
        kwargs = {} if refresh_s is None else {"refresh_s": refresh_s}
        self.listener = LiveListener(
            url, self._bridge.updated.emit, self._bridge.state_changed.emit, **kwargs
        )
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self.render)
        self._tick.start()
        self.apply_view_settings()
        self.listener.start()

    # --- from the listener ---------------------------------------------------------------

    def apply_update(self, update: LiveUpdate) -> None:
        if update.full:
            self.sessions = {s.key: s for s in update.sessions}
        else:
            self.sessions.update({s.key: s for s in update.sessions})
            for key in update.ended:
                self.sessions.pop(key, None)
        self.updates_seen += 1
        self.last_good = update.at
        self.connected = True
        self.banner.hide()
        self.render()

    def apply_state(self, state: ListenerState) -> None:
        self.connected = state.connected
        if state.last_good is not None:
            self.last_good = state.last_good
        if state.connected:
            self.banner.hide()
        else:
            known = (
                f"the list shows what was known at {self._local(self.last_good)}"
                if self.last_good is not None
                else "nothing is known yet"
            )
            if not state.message or "cannot be reached" in state.message:
                self.banner.setText(f"The clinic server cannot be reached; {known}.")
            else:  # refused sign-in, a fault while reading: say which, plainly
                self.banner.setText(f"{state.message} {known[0].upper()}{known[1:]}.")
            self.banner.setToolTip(state.message)
            self.banner.show()
        self.render()

    # --- drawing -------------------------------------------------------------------------

    @staticmethod
    def _local(when: datetime) -> str:
        return when.astimezone().strftime("%H:%M")

    def ordered(self) -> list[LiveSession]:
        return sorted(self.sessions.values(), key=lambda s: (s.laptop, s.started_at))

    def render(self) -> None:
        now = self.clock.now()
        theme = current_theme(self.settings.get(NIGHT_MODE))
        rows = self.ordered()
        self.table.setRowCount(len(rows))
        alarm_fg, alarm_bg = QBrush(QColor(theme.error_text)), QBrush(QColor(theme.error_bg))
        warn_fg = QBrush(QColor(theme.warn))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row, session in enumerate(rows):
            since = (
                span((now - session.last_dose_at).total_seconds())
                if session.last_dose_at is not None
                else "no dose yet"
            )
            check, state = next_check_text(session, now)
            alarms, critical = alarms_text(session)
            cells = (
                session.laptop,
                session.patient_code,
                session.phase,
                span((now - session.started_at).total_seconds()),
                since,
                check,
                alarms,
            )
            for column, text in enumerate(cells):
                item = self.table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(row, column, item)
                item.setText(text)
                item.setData(Qt.ItemDataRole.UserRole, None)
                item.setForeground(QBrush())
                item.setBackground(QBrush())
                item.setFont(self.table.font())
            next_item, alarm_item = self.table.item(row, COL_NEXT), self.table.item(row, COL_ALARMS)
            next_item.setData(Qt.ItemDataRole.UserRole, state)
            if state == "overdue":
                next_item.setForeground(alarm_fg)
                next_item.setBackground(alarm_bg)
                next_item.setFont(bold)
            elif state == "due":
                next_item.setForeground(warn_fg)
                next_item.setFont(bold)
            alarm_item.setData(Qt.ItemDataRole.UserRole, "critical" if critical else None)
            if critical:
                alarm_item.setForeground(alarm_fg)
                alarm_item.setBackground(alarm_bg)
                alarm_item.setFont(bold)
            elif session.open_alarms:
                alarm_item.setForeground(warn_fg)
        self.table.resizeRowsToContents()
        count = len(rows)
        when = f" · updated {self._local(self.last_good)}" if self.last_good else ""
        state = "" if self.connected else " · not connected"
        if self.last_good is None and not self.connected:
            self.summary.setText("Connecting to the clinic server…")
        else:
            noun = "session" if count == 1 else "sessions"
            self.summary.setText(f"{count} {noun} in progress{when}{state}")

    def apply_view_settings(self) -> None:
        apply_settings_theme(self.settings)
        self.render()

    # --- closing -------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self._tick.stop()
        self.listener.stop()
        super().closeEvent(event)


def live_server_url(given: str | None = None) -> str | None:
    """The reviewer URL: given, else $KAPMONITOR_LIVE_SERVER, else $KAPMONITOR_SERVER."""
    return given or os.environ.get(LIVE_SERVER_ENV) or os.environ.get("KAPMONITOR_SERVER")


def open_live_view(parent: QWidget, settings: Settings) -> LiveViewWindow | None:
    """From the review window: the reviewer URL from the environment, else asked once (the
    password is not typed here: ~/.pgpass or PGPASSWORD)."""
    url = live_server_url()
    if not url:
        text, ok = QInputDialog.getText(
            parent,
            "Live view",
            "The clinic server, as a reviewer role's address\n"
            "(postgresql://ROLE@HOST:PORT/DATABASE?sslmode=verify-full):",
            QLineEdit.EchoMode.Normal,
        )
        if not ok or not text.strip():
            return None
        url = text.strip()
    return LiveViewWindow(url, settings, parent=None)
