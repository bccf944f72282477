"""Signing a session: the printed name, what the signature means, and the password again.

21 CFR 11.50 asks a signature to show the signer's printed name, the date and time, and its
meaning; 11.200 asks for the password at the moment of signing (being signed in is not enough).
The dialog shows all three before anything is written, and the store checks the role again: a
clinician's attempt is refused there and audited, whatever this dialog shows.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.validation import ValidationError
from kapmonitor.store.accounts import User
from kapmonitor.store.database import StoreError
from kapmonitor.store.schema import SIGNING_ROLES
from kapmonitor.store.signoff import DEFAULT_MEANING

MEANINGS = (DEFAULT_MEANING, "reviewed with comments")

# sign(meaning, password) -> signature row id; raises AccessRefused/ValidationError/StoreError.
SignFn = Callable[[str, str], int]


class SignDialog(QDialog):
    """Asks the signer to confirm their name, choose the meaning and type the password."""

    def __init__(
        self,
        user: User,
        session_text: str,
        sign: SignFn,
        parent: QWidget | None = None,
        *,
        comments: int = 0,
    ) -> None:
        super().__init__(parent)
        self.user = user
        self._sign = sign
        self.saved_id: int | None = None
        self.setWindowTitle("Sign session")
        self.setModal(True)
        self.setMinimumWidth(560)

        layout = QVBoxLayout(self)
        self.banner = QLabel(self)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)

        intro = QLabel(
            f"You are signing the record of <b>{session_text}</b>. Once signed the session is "
            "locked: nothing can be added or corrected, only addenda.",
            self,
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        if comments:
            noun = "review comment" if comments == 1 else "review comments"
            note = QLabel(f"This session has {comments} {noun}.", self)
            note.setObjectName("Muted")
            layout.addWidget(note)

        form = QFormLayout()
        layout.addLayout(form)
        self.printed_name = QLabel(f"<b>{user.display_name}</b>, {user.role}", self)
        self.printed_name.setObjectName("PrintedName")
        form.addRow("Printed name", self.printed_name)
        self.meaning = QComboBox(self)
        self.meaning.setEditable(True)
        self.meaning.addItems(list(MEANINGS))
        self.meaning.setToolTip("What your signature means; choose or type it")
        form.addRow("Meaning", self.meaning)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(f"Password of {user.username}")
        self.password.setToolTip("Type your password again: signing is a deliberate act")
        form.addRow("Password", self.password)
        self.role_warning: QLabel | None = None
        if user.role not in SIGNING_ROLES:
            warn = self.role_warning = QLabel(
                f"{user.display_name} has a {user.role} account: only a supervisor or "
                "administrator can sign.",
                self,
            )
            warn.setObjectName("Warn")
            warn.setWordWrap(True)
            layout.addWidget(warn)

        self.buttons = QDialogButtonBox(self)
        self.sign_button = self.buttons.addButton("Sign", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_button.setDefault(True)
        self.sign_button.setToolTip("Sign (Enter)")
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Cancel (Esc)")
        self.buttons.accepted.connect(self.try_sign)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.password.setFocus()

    def chosen_meaning(self) -> str:
        return self.meaning.currentText().strip()

    def try_sign(self) -> None:
        """The save path: the store decides (role, password, ended, not yet signed)."""
        self.banner.hide()
        try:
            self.saved_id = self._sign(self.chosen_meaning(), self.password.text())
        except ValidationError as exc:
            self.show_banner("Not signed: " + "; ".join(e.message for e in exc.errors))
        except StoreError as exc:
            self.show_banner(f"Not signed. {exc}")
        else:
            self.accept()
            return
        self.saved_id = None
        self.password.clear()  # never keep a typed password around after a refusal
        self.password.setFocus()

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()
        self.adjustSize()

    def errors_text(self) -> str:
        return "" if self.banner.isHidden() else self.banner.text()


__all__ = ["MEANINGS", "SignDialog"]
