"""The bedside window syncs on its own (issue 14 items 1 and 6): a runner per window, a panel.

When a clinic server is set (Session ▸ Clinic server…: the address in the settings, the laptop
role's password sealed beside the database), a
:class:`~kapmonitor.network.background.BackgroundSync` starts with the window on a worker thread
of its own. Every committed save calls :meth:`SyncFeed.request`, which only sets an event: no
network, no file, no lock a pass holds, so a server that is down, slow or hanging never holds
up a save. The runner debounces a burst of saves into one pass and otherwise runs every
``SYNC_INTERVAL_SECONDS``. Each pass reads the laptop's encrypted file through a read-only
connection of its own (never the window's), and its report reaches the GUI thread by a queued
Qt signal, where the :class:`~kapmonitor.ui.widgets.sync_panel.SyncPanel` shows it.

On close the runner is stopped and joined (a pass in progress ends first; libpq's 5 s connect
timeout bounds a server that accepts and never answers). The thread is a daemon: a pass stuck
past :data:`STOP_TIMEOUT_S` in a query on a half-dead connection cannot keep the app from
exiting, and is logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal

from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, SYNC_INTERVAL_SECONDS, SYNC_SERVER
from kapmonitor.store.key_slots import keys_of
from kapmonitor.ui.widgets.sync_panel import SyncPanel

if TYPE_CHECKING:
    from kapmonitor.network.background import BackgroundSync, SyncReport
    from kapmonitor.ui.bedside.session_window import SessionWindow

__all__ = ["SyncFeed"]

log = logging.getLogger("kapmonitor.network.feed")
STOP_TIMEOUT_S = 10.0
MIN_INTERVAL_S = 5


class SyncFeed(QObject):
    """Owns the window's sync runner and its status-bar panel."""

    # worker thread -> GUI thread (queued: the receiver lives in the GUI thread)
    reported = Signal(object)  # SyncReport

    def __init__(self, window: SessionWindow) -> None:
        super().__init__(window)
        self.window = window
        self.panel = SyncPanel(window)
        window.statusBar().addPermanentWidget(self.panel)
        self.runner: BackgroundSync | None = None
        self.last: SyncReport | None = None
        self.reported.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self.panel.clicked.connect(self.explain)
        self.start()

    # --- the runner -------------------------------------------------------------------------

    def server(self) -> str:
        """The configured address (no password), or ""."""
        return self.window.settings.get(SYNC_SERVER).strip()

    def start(self) -> None:
        """Start syncing when a server is configured (the panel stays hidden otherwise)."""
        if self.runner is not None:
            return
        url = self.server()
        if not url:
            self.panel.show_off()
            return
        # the network layer loads only on a laptop that syncs: the welcome page paints sooner
        from kapmonitor.network.background import BackgroundSync, load_password, with_password

        store = self.window.store
        keys = keys_of(store.db)
        password = load_password(store.path, keys)
        interval = max(MIN_INTERVAL_S, self.window.settings.get(SYNC_INTERVAL_SECONDS))
        self.runner = BackgroundSync(
            store.path,
            with_password(url, password),
            keys,
            interval_s=interval,
            on_report=self._from_worker,
        )
        self.panel.show_starting()
        self.runner.start()

    def _from_worker(self, report: SyncReport) -> None:
        """On the worker thread: hand the report over (emit is thread-safe, queued)."""
        self.reported.emit(report)

    def request(self) -> None:
        """A save committed: ask for a pass soon. Sets an event and returns, nothing more."""
        if self.runner is not None:
            self.runner.request()

    def stop(self) -> None:
        """Stop the runner and wait for a pass in progress (the window is closing)."""
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.stop(STOP_TIMEOUT_S)

    def restart(self) -> None:
        """The connection was changed: a new runner with the new address and password."""
        self.stop()
        self.last = None
        self.start()

    # --- the panel ----------------------------------------------------------------------------

    def _show(self, report: SyncReport) -> None:
        if self.runner is None:
            return  # a report of a runner stopped since (the old connection)
        before = self.last
        self.last = report
        self.panel.show_report(report)
        if report.error and (before is None or before.error != report.error):
            # said once in whole words; the panel keeps the short form and the tooltip
            self.window.statusBar().showMessage(f"⚠ {report.error}", 15000)

    def explain(self) -> None:
        """The panel was clicked: the whole sentence, where the status bar has no room for it."""
        from PySide6.QtWidgets import QMessageBox

        text = self.panel.error or self.panel.toolTip()
        if text:
            QMessageBox.information(self.window, "Clinic server", text)

    def refresh(self) -> None:
        """Every clock tick: the theme as set, and the age of the last success."""
        settings = self.window.settings
        self.panel.apply_theme(settings.get(NIGHT_MODE), settings.get(LARGE_TYPE))
        self.panel.update_age(datetime.now(UTC))

    # --- Session ▸ Clinic server… -----------------------------------------------------------

    def open_dialog(self) -> None:
        """An administrator signs in (as for Accounts…), then sets or tests the connection."""
        from kapmonitor.domain.validation import ValidationError
        from kapmonitor.ui.forms.account_dialogs import SignInDialog
        from kapmonitor.ui.forms.server_dialog import ACTION, ServerDialog

        window = self.window
        accounts = window.access.accounts
        admins = [u.username for u in accounts.users() if u.role == "administrator"]
        sign_in = SignInDialog(accounts, "set the clinic server", window, admins)
        if not sign_in.exec() or sign_in.user is None:
            return
        try:
            accounts.require(sign_in.user, "administrator", action=ACTION)
        except ValidationError as exc:
            window.report_error(exc)
            return
        dialog = ServerDialog(
            window.settings, window.store.path, keys_of(window.store.db), accounts, sign_in.user
        )
        dialog.setParent(window, dialog.windowFlags())
        dialog.exec()
        if dialog.changed:
            self.restart()
            window.statusBar().showMessage(dialog.changed, 8000)
