"""Signing a session: the quality flags, the printed name, what the signature means, the password.

21 CFR 11.50 asks a signature to show the signer's printed name, the date and time, and its
meaning; 11.200 asks for the password at the moment of signing (being signed in is not enough).
The dialog shows all three before anything is written, and the store checks the role again: a
clinician's attempt is refused there and audited, whatever this dialog shows. The signature is an
Ed25519 signature of the session's content made with the signer's key, which only their password
opens; the dialog shows the key's fingerprint, as printed on the account sheet.

Before that, every quality flag of the session is listed with a checkbox: an early discharge by
override, a tenfold dose correction, a missed check… **Sign** stays disabled until each one is
ticked, so a supervisor cannot sign past a flag without having had it in front of them. The
ticked flags go to the store, which refuses a signature that does not confirm every current flag
and records those confirmed with the signature (an audit entry). The flags sit in the dialog's
scrolling body (:class:`~kapmonitor.ui.forms.form_base.FittingDialog`) and the password and
buttons in its foot, so however many flags there are, the password and the buttons stay on a
1280 × 720 screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.quality import QualityFlag
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.reports.report_sections import FLAG_NAMES, SEVERITY_MARKS
from kapmonitor.store import permissions, signatures
from kapmonitor.store.accounts import User
from kapmonitor.store.schema import SIGNING_ROLES
from kapmonitor.store.signoff import DEFAULT_MEANING
from kapmonitor.ui.forms import form_base
from kapmonitor.ui.forms.form_base import FittingDialog

MEANINGS = (DEFAULT_MEANING, "reviewed with comments")

# sign(meaning, password, keys of the confirmed flags) -> signature row id;
# raises AccessRefused/ValidationError/StoreError.
SignFn = Callable[[str, str, list[str]], int]

MIN_WIDTH = 560
WIDTH_WITH_FLAGS = 760  # room for a flag's sentence on two or three lines


class _ClickableLabel(QLabel):
    """A flag's text: clicking it ticks its checkbox, as clicking a checkbox's own text does."""

    clicked = Signal()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
            event.position().toPoint()
        ):
            self.clicked.emit()


class FlagList(QFrame):
    """One checkbox per quality flag, each with the flag's full text (reason included)."""

    def __init__(self, flags: Sequence[QualityFlag], parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("SignFlagList")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        self.boxes: list[QCheckBox] = []
        self.texts: list[QLabel] = []
        for number, flag in enumerate(flags, start=1):
            mark = SEVERITY_MARKS.get(flag.severity, flag.severity).split(" ")[0]
            name = FLAG_NAMES.get(flag.code, flag.code)
            box = QCheckBox(f"{mark} {number}. {name}", self)
            box.setObjectName("FlagConfirm")
            box.setToolTip("Tick when you have looked at this flag")
            box.setAccessibleName(f"Confirm flag {number}: {name}")
            box.setProperty("flag_key", flag.key)
            text = _ClickableLabel(flag.message, self)
            text.setWordWrap(True)
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.setContentsMargins(24, 0, 0, 0)  # under the box's text, not its square
            text.clicked.connect(box.toggle)
            layout.addWidget(box)
            layout.addWidget(text)
            self.boxes.append(box)
            self.texts.append(text)


class SignDialog(FittingDialog):
    """Asks the signer to confirm each quality flag, their name, the meaning and the password."""

    refusal_heading = "Not signed"

    def __init__(
        self,
        user: User,
        session_text: str,
        sign: SignFn,
        parent: QWidget | None = None,
        *,
        comments: int = 0,
        flags: Sequence[QualityFlag] = (),
        key_fingerprint: str = "",
    ) -> None:
        super().__init__(parent)
        self.user = user
        self._sign = sign
        self.flags = list(flags)
        self.saved_id: int | None = None
        self.setWindowTitle("Sign session")
        self.setModal(True)
        wanted = WIDTH_WITH_FLAGS if self.flags else MIN_WIDTH
        self.setMinimumWidth(min(wanted, form_base.screen_room(self).width()))

        # The body scrolls: what the signer reads (the record, the flags).
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            f"You are signing the record of <b>{session_text}</b>. Once signed the session is "
            "locked: nothing can be added or corrected, only addenda.",
            self.body,
        )
        intro.setWordWrap(True)
        body.addWidget(intro)
        if comments:
            noun = "review comment" if comments == 1 else "review comments"
            note = QLabel(f"This session has {comments} {noun}.", self.body)
            note.setObjectName("Muted")
            body.addWidget(note)
        self.flag_list: FlagList | None = None
        if self.flags:
            count = len(self.flags)
            caption = QLabel(
                f"<b>{count} quality flag{'s' if count != 1 else ''}</b>: read each one and tick "
                "it to confirm you have seen it. What you confirm is stored with the signature.",
                self.body,
            )
            caption.setWordWrap(True)
            body.addWidget(caption)
            self.flag_list = FlagList(self.flags, self.body)
            for box in self.flag_list.boxes:
                box.toggled.connect(self._update_sign_state)
            body.addWidget(self.flag_list)
        else:
            none = QLabel("✔ No quality flags: every check and alarm answered.", self.body)
            none.setObjectName("Muted")
            body.addWidget(none)
        body.addStretch(1)

        # The foot never scrolls: who signs, what it means, the password, the buttons.
        form = QFormLayout()
        self.foot.addLayout(form)
        self.printed_name = QLabel(f"<b>{user.display_name}</b>, {user.role}", self)
        self.printed_name.setObjectName("PrintedName")
        form.addRow("Printed name", self.printed_name)
        # The key the signature is made with: the password opens it (a swapped password hash
        # does not); its fingerprint is on the account sheet the administrator keeps.
        self.key_label = QLabel(
            f"{signatures.printable(key_fingerprint)} (as on the account sheet)"
            if key_fingerprint
            else "none yet: made at your next password entry",
            self,
        )
        self.key_label.setObjectName("Muted")
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Signing key", self.key_label)
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
        self.field_widgets = {"meaning": self.meaning, "password": self.password}
        if self.flags:
            self.field_widgets["flags"] = self.flag_list
        self.role_warning: QLabel | None = None
        role_refusal = permissions.why_not_role(user, SIGNING_ROLES, "sign a session")
        if role_refusal is not None:  # the store's words: it refuses the same way
            warn = self.role_warning = QLabel(role_refusal, self)
            warn.setObjectName("Warn")
            warn.setWordWrap(True)
            self.foot.addWidget(warn)
        # Next to the buttons, so it is in view whatever the list's scroll position.
        self.progress = QLabel(self)
        self.progress.setObjectName("Warn")
        self.progress.setWordWrap(True)
        self.foot.addWidget(self.progress)
        self.buttons = QDialogButtonBox(self)
        self.sign_button = self.buttons.addButton("Sign", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_button.setDefault(True)
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Cancel (Esc)")
        self.buttons.accepted.connect(self.try_sign)
        self.buttons.rejected.connect(self.reject)
        # Enter in the password field with flags unticked: say why nothing happens (the
        # disabled Sign button would otherwise swallow it silently).
        self.password.returnPressed.connect(self._enter_in_password)
        self.foot.addWidget(self.buttons)
        self._update_sign_state()
        self.password.setFocus()

    # --- the flags ---------------------------------------------------------------------------

    def flag_boxes(self) -> list[QCheckBox]:
        return self.flag_list.boxes if self.flag_list is not None else []

    def show_flag(self, widget: QWidget) -> None:
        """Scroll the body so a flag's checkbox or text is in view."""
        self.scroll.show_widget(widget)

    def confirmed_keys(self) -> list[str]:
        """The keys of the flags ticked, in the order listed."""
        return [str(box.property("flag_key")) for box in self.flag_boxes() if box.isChecked()]

    def unconfirmed(self) -> int:
        return sum(1 for box in self.flag_boxes() if not box.isChecked())

    def _update_sign_state(self) -> None:
        left = self.unconfirmed()
        self.sign_button.setEnabled(left == 0)
        if left:
            total = len(self.flags)
            self.progress.setText(
                f"{total - left} of {total} flags confirmed: tick each flag above to sign."
            )
            self.sign_button.setToolTip("Confirm every quality flag first")
        else:
            self.sign_button.setToolTip("Sign (Enter)")
        self.progress.setVisible(bool(left))

    # --- signing -----------------------------------------------------------------------------

    def _enter_in_password(self) -> None:
        if self.unconfirmed():
            self.try_sign()

    def chosen_meaning(self) -> str:
        return self.meaning.currentText().strip()

    def try_sign(self) -> None:
        """The save path: the store decides (role, password, ended, not yet signed, every
        flag confirmed). Enter in the password field while flags are unticked signs nothing."""

        def sign() -> None:
            if self.unconfirmed():
                raise ValidationError(
                    FieldError(
                        "flags",
                        f"confirm each quality flag first ({self.unconfirmed()} not ticked)",
                    )
                )
            self.saved_id = self._sign(
                self.chosen_meaning(), self.password.text(), self.confirmed_keys()
            )

        if self.attempt(sign):
            self.accept()
            return
        self.saved_id = None
        self.password.clear()  # never keep a typed password around after a refusal
        if not self.flags_refused():  # else the flags are next, and have the focus
            self.password.setFocus()

    def flags_refused(self) -> bool:
        flags = self.field_widgets.get("flags")
        return flags is not None and bool(flags.property("invalid"))


__all__ = ["MEANINGS", "FlagList", "SignDialog", "SignFn"]
