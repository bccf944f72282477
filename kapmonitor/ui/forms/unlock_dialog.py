"""Before the window opens: unlock the encrypted database, or reset a forgotten administrator
password with the recovery key, and show a new recovery key once.

The dialogs take the store's unlock functions as callables (``kapmonitor.store.encrypted_store``
in the app), so they hold no key logic: a refusal is the store's sentence in the strip, the
password is cleared, and the dialog stays open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QFont, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.ui.forms.form_base import FittingDialog

if TYPE_CHECKING:  # the dialog paints before the store loads (start-up time)
    from kapmonitor.store.encrypted_store import Opened

UnlockFn = Callable[[str, str], "Opened"]
ResetFn = Callable[[str, str, str], "Opened"]


def _secret_edit(parent: QWidget, placeholder: str = "password") -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setPlaceholderText(placeholder)
    return edit


class _Busy:
    """A wait cursor while a key is derived (deliberately slow: about half a second)."""

    def __enter__(self) -> None:
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)

    def __exit__(self, *_exc: object) -> None:
        QApplication.restoreOverrideCursor()


class UnlockDialog(FittingDialog):
    """User name and password: the account's key slot opens the database.

    For a plain database (from before encryption) the same dialog asks the administrator, whose
    sign-in encrypts it (``migrating``).
    """

    refusal_heading = ""

    def __init__(
        self,
        db_path: Path,
        unlock: UnlockFn,
        reset: ResetFn | None = None,
        *,
        migrating: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("UnlockDialog")
        self.setWindowTitle("KAP Monitor: unlock the database")
        self.setModal(True)
        self.setMinimumWidth(520)
        self._unlock = unlock
        self._reset = reset
        self.opened: Opened | None = None
        self.failures = 0  # wrong passwords before the unlock: audited once the file is open
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        if migrating:
            text = (
                f"The database {db_path.name} is not encrypted yet. The administrator signs in "
                "once to encrypt it; a recovery key is then shown to be written down."
            )
        else:
            text = (
                f"The clinic's records in {db_path.name} are encrypted. Sign in with your "
                "KAP Monitor account to open them."
            )
        intro = QLabel(text, self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        layout.addLayout(form)
        self.username = QLineEdit(self)
        self.secret = _secret_edit(self)
        form.addRow("User name", self.username)
        form.addRow("Password", self.secret)
        self.field_widgets = {"username": self.username, "password": self.secret}
        self.buttons = QDialogButtonBox(self)
        self.ok_button = self.buttons.addButton(
            "Encrypt and open" if migrating else "Unlock", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.ok_button.setDefault(True)
        self.recovery_button: QPushButton | None = None
        if reset is not None and not migrating:
            self.recovery_button = self.buttons.addButton(
                "Forgotten password…", QDialogButtonBox.ButtonRole.ActionRole
            )
            self.recovery_button.setToolTip("The administrator resets it with the recovery key")
            self.recovery_button.clicked.connect(self.use_recovery_key)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.try_unlock)
        self.buttons.rejected.connect(self.reject)
        self.foot.addWidget(self.buttons)
        self.fit()
        self.username.setFocus()

    def try_unlock(self) -> None:
        name, password = self.username.text(), self.secret.text()

        def unlock() -> None:
            with _Busy():
                self.opened = self._unlock(name, password)

        done = self.attempt(unlock)
        self.secret.clear()
        if done:
            self.accept()
        else:
            self.failures += 1
            self.secret.setFocus()

    def use_recovery_key(self) -> None:
        if self._reset is None:
            return
        dialog = RecoveryResetDialog(self._reset, self)
        if dialog.exec() and dialog.opened is not None:
            self.opened = dialog.opened
            self.accept()


class RecoveryResetDialog(FittingDialog):
    """The administrator forgot their password: the recovery key and a new password."""

    refusal_heading = ""

    def __init__(self, reset: ResetFn, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RecoveryResetDialog")
        self.setWindowTitle("KAP Monitor: reset with the recovery key")
        self.setModal(True)
        self.setMinimumWidth(560)
        self._reset = reset
        self.opened: Opened | None = None
        form = QFormLayout(self.body)
        form.setContentsMargins(0, 0, 0, 0)
        note = QLabel(
            "Type the recovery key shown when KAP Monitor was set up (groups of four letters "
            "and digits), the administrator's user name, and a new password.",
            self,
        )
        note.setWordWrap(True)
        form.addRow(note)
        self.recovery = QLineEdit(self)
        self.recovery.setPlaceholderText("ABCD-EFGH-…")
        self.username = QLineEdit(self)
        self.secret = _secret_edit(self, "new password")
        self.repeat = _secret_edit(self, "new password again")
        form.addRow("Recovery key", self.recovery)
        form.addRow("Administrator", self.username)
        form.addRow("New password", self.secret)
        form.addRow("New password again", self.repeat)
        self.field_widgets = {
            "recovery": self.recovery,
            "username": self.username,
            "password": self.secret,
            "repeat": self.repeat,
        }
        buttons = QDialogButtonBox(self)
        ok = buttons.addButton("Reset and open", QDialogButtonBox.ButtonRole.AcceptRole)
        ok.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.try_reset)
        buttons.rejected.connect(self.reject)
        self.foot.addWidget(buttons)
        self.fit()

    def try_reset(self) -> None:
        if self.secret.text() != self.repeat.text():
            self.show_banner("The two new passwords differ.")
            return
        key, name, password = self.recovery.text(), self.username.text(), self.secret.text()

        def reset() -> None:
            with _Busy():
                self.opened = self._reset(key, name, password)

        if self.attempt(reset):
            self.accept()


class RecoveryKeyDialog(FittingDialog):
    """The recovery key, shown once: it closes only after the administrator says it is written
    down (it is stored nowhere in clear, so this is the only chance to copy it)."""

    def __init__(self, recovery_key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RecoveryKeyDialog")
        self.setWindowTitle("KAP Monitor: write down the recovery key")
        self.setModal(True)
        self.setMinimumWidth(600)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            "This is the database's recovery key. If the administrator's password is ever "
            "forgotten, it is the only way to open the clinic's records again. Write it on paper "
            "and keep it locked away from the laptop. It is shown only now.",
            self,
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.key_label = QLabel(recovery_key, self)
        self.key_label.setObjectName("RecoveryKey")
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSizeF(font.pointSizeF() * 1.4 if font.pointSizeF() > 0 else 14)
        self.key_label.setFont(font)
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.key_label)
        self.written = QCheckBox("I have written the recovery key down and put it somewhere safe")
        layout.addWidget(self.written)
        self.buttons = QDialogButtonBox(self)
        self.done_button = self.buttons.addButton("Done", QDialogButtonBox.ButtonRole.AcceptRole)
        self.done_button.setEnabled(False)
        self.written.toggled.connect(self.done_button.setEnabled)
        self.buttons.accepted.connect(self.accept)
        self.foot.addWidget(self.buttons)
        self.fit()

    def reject(self) -> None:
        """Escape or the close button do nothing until the key is acknowledged."""
        if self.written.isChecked():
            self._forget()
            super().reject()

    def accept(self) -> None:
        self._forget()
        super().accept()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.written.isChecked():
            super().closeEvent(event)
        else:
            event.ignore()

    def _forget(self) -> None:
        """Leave no recovery key on the clipboard (if it was copied) or on the screen."""
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None and clipboard.text().strip() == self.key_label.text():
            clipboard.clear()
        self.key_label.clear()
