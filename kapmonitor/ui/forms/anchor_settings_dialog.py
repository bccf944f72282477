"""Record protection… (Session menu): where the anchor log is kept, for an administrator.

The anchor log (:mod:`kapmonitor.store.anchors`) is the audit chain's head written, at each backup,
export, sign-off and close, into a second place the clinic chooses: another drive, a USB stick.
Against it ``kapmonitor verify --anchors`` names a cut trail, a file rolled back to an earlier copy
and a rewritten history. It is only worth something if whoever holds the database file cannot
reach it too, so the dialog says so when the folder chosen is beside the database or on its drive.

Only an administrator changes it (the store's own refusal, audited, is shown otherwise), and each
change is an audit entry (who, from where to where); the new log starts with the head recording
that change. "Write an anchor now" appends the head at once (before taking the stick away, say).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from sqlite_utils import Database

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import anchors
from kapmonitor.store.accounts import Accounts, User
from kapmonitor.store.errors import StoreError
from kapmonitor.ui.forms.account_dialogs import SignInDialog
from kapmonitor.ui.forms.form_base import FittingDialog

ACTION = "change record protection"
INTRO = (
    "The anchor log keeps the audit trail's newest entry (its number and seal) in a second "
    "place, at each backup, export, sign-off and when the app closes. With it, "
    'the check "kapmonitor verify --anchors" shows if the database was cut short, '
    "replaced by an earlier copy or rewritten. Keep it where someone holding the database "
    "file cannot reach it: another drive, or a USB stick kept apart."
)


# What wrote an anchor, as the log records it -> how the dialog says it.
OCCASIONS = {
    "close": "when the app closed",
    "backup": "at a backup",
    "export": "at an export",
    "sign-off": "at a sign-off",
    "written by hand": "written by hand here",
    "log folder chosen": "when this folder was chosen",
}


def occasion(event: str) -> str:
    """A log entry's event in words: "at a backup", "when alex's signing key was recorded"."""
    if event.startswith("signing_key "):
        parts = event.split()
        who = parts[1] if len(parts) > 1 else "an account"
        return f"when {who}'s signing key was recorded"
    return OCCASIONS.get(event, event or "reason not recorded")


def _local(iso: str) -> str:
    """An anchor's UTC time as this laptop's local time, for reading."""
    try:
        return from_iso(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, TypeError):
        return iso or "unknown time"


class AnchorSettingsDialog(FittingDialog):
    """Choose the anchor log's folder, see the newest anchor there, write one now."""

    refusal_heading = ""  # the store's sentence says it all ("… may not change record protection")

    def __init__(
        self,
        db: Database,
        accounts: Accounts,
        user: User,
        now: Callable[[], datetime],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.db = db
        self.accounts = accounts
        self.user = user
        self.now = now
        self.setWindowTitle("Record protection")
        self.setModal(True)
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(INTRO, self)
        intro.setWordWrap(True)
        intro.setObjectName("Muted")
        layout.addWidget(intro)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.folder_label = self._value_label()
        self.log_label = self._value_label()
        self.newest_label = self._value_label()
        form.addRow("Anchor log folder", self.folder_label)
        form.addRow("Log file", self.log_label)
        form.addRow("Newest anchor", self.newest_label)
        layout.addLayout(form)
        self.warning = QLabel(self)
        self.warning.setWordWrap(True)
        self.warning.setObjectName("Warn")
        layout.addWidget(self.warning)
        self.choose_button = QPushButton("Choose folder…", self)
        self.choose_button.clicked.connect(self.choose_folder)
        self.write_button = QPushButton("Write an anchor now", self)
        self.write_button.clicked.connect(self.write_now)
        self.buttons = QDialogButtonBox(self)
        self.buttons.addButton(self.choose_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.write_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.foot.addWidget(self.buttons)
        self.field_widgets = {"role": self.choose_button}
        self.refresh()

    def _value_label(self) -> QLabel:
        label = QLabel(self)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    # --- what is shown --------------------------------------------------------------------

    def refresh(self) -> None:
        """Show the folder, the log file and this database's newest anchor in it."""
        folder = anchors.log_folder()
        if folder is None:
            self.folder_label.setText("None chosen: no anchor log is kept.")
            self.log_label.setText("—")
            self.newest_label.setText("—")
            self.warning.setText(
                "Without an anchor log, a database cut short or replaced by an earlier copy "
                "can be told only from a backup's or a report's printed head."
            )
            self.write_button.setEnabled(False)
        else:
            self.folder_label.setText(str(folder))
            log = folder / anchors.LOG_NAME
            self.log_label.setText(str(log) if log.exists() else f"{log} (not written yet)")
            try:
                newest = anchors.newest_in_log(self.db, folder)
            except OSError as exc:
                newest = None
                self.newest_label.setText(f"The log cannot be read ({exc.strerror or exc}).")
            else:
                self.newest_label.setText(
                    f"Entry #{newest.entry}, {_local(newest.at)}, {occasion(newest.event)}"
                    if newest is not None
                    else "None of this database yet."
                )
            self.warning.setText(anchors.same_place(self.db, folder))
            self.write_button.setEnabled(True)
        self.warning.setVisible(bool(self.warning.text()))
        self.fit()

    # --- what it does ---------------------------------------------------------------------

    def _require(self) -> None:
        self.accounts.require(self.user, "administrator", action=ACTION)

    def choose_folder(self) -> None:
        """Ask for the folder, then store it (administrator only, audited)."""
        current = anchors.log_folder()
        start = str(current) if current is not None else str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Keep the anchor log in", start)
        if not chosen:
            return

        def store() -> None:
            self._require()
            anchors.choose_log_folder(self.db, Path(chosen), self.user.username, self.now())

        if self.attempt(store, "The anchor log folder was not changed"):
            self.refresh()

    def write_now(self) -> None:
        """Append the chain head to the log now."""

        def write() -> None:
            self._require()
            try:
                written = anchors.append_to_log(self.db, "written by hand")
            except OSError as exc:
                raise StoreError(
                    f"The anchor log cannot be written ({exc.strerror or exc}); is the medium "
                    "plugged in?",
                    "unwritable",
                ) from exc
            if written is None:
                raise StoreError("There is nothing to anchor yet, or no folder is chosen.")

        if self.attempt(write, "No anchor was written"):
            self.refresh()


def open_record_protection(
    parent: QWidget, db: Database, accounts: Accounts, now: Callable[[], datetime]
) -> None:
    """The menu's way in: an administrator signs in (as for Accounts…), then the dialog."""
    admins = [u.username for u in accounts.users() if u.role == "administrator"]
    sign_in = SignInDialog(accounts, "protect the record", parent, admins)
    if not sign_in.exec() or sign_in.user is None:
        return
    try:
        accounts.require(sign_in.user, "administrator", action=ACTION)
    except ValidationError as exc:
        report = getattr(parent, "report_error", None)
        if callable(report):
            report(exc)
        return
    AnchorSettingsDialog(db, accounts, sign_in.user, now, parent).exec()
