"""Signing in: the first administrator, the attending clinicians, one user, emergency access;
and a person's own password and idle-lock PIN, and the administrator's account sheet.

Each dialog calls the store's :class:`~kapmonitor.store.accounts.Accounts`, which checks the
password, slows down repeated failures and audits every attempt; a refusal is shown as the
sentence the store gave, and the dialog stays open with what was typed (except the password).
A new password is a passphrase (12+ characters, not a common password, not containing the user
name): the store refuses anything else with the reason, and the dialogs say the rule up front.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain import idle_lock
from kapmonitor.domain.protocol import Protocol
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store.accounts import MIN_PASSWORD_LENGTH, PIN_DIGITS, Accounts, User
from kapmonitor.store.clinic_settings import ClinicSettings
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import KeySlots, keys_of
from kapmonitor.store.schema import ROLES
from kapmonitor.store.signoff import Review
from kapmonitor.ui.forms.form_base import FittingDialog
from kapmonitor.ui.forms.unlock_dialog import RecoveryKeyDialog

MIN_CLINICIANS = 2
MAX_CLINICIANS = 4


PASSPHRASE_RULE = (
    f"A password is a passphrase of at least {MIN_PASSWORD_LENGTH} characters — a few unrelated "
    "words, e.g. 'orchid lantern tuesday' — not a common password and not containing the user "
    "name."
)


def _password_edit(parent: QWidget, placeholder: str = "password") -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setPlaceholderText(placeholder)
    return edit


def _new_password_edit(parent: QWidget) -> QLineEdit:
    return _password_edit(parent, f"passphrase, {MIN_PASSWORD_LENGTH}+ characters")


class _Dialog(FittingDialog):
    """A small dialog with the refusal strip above its fields and OK/Cancel below.

    A refusal is the store's sentence as it is (no heading: "Wrong user name or password"
    says it all), with the field it names outlined and focused."""

    refusal_heading = ""

    def __init__(self, title: str, parent: QWidget | None, ok_text: str) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(True)
        self.setMinimumWidth(520)  # room for a printed name and the reason a sign-in failed
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(0, 0, 0, 0)
        self.form = QFormLayout()
        self.body_layout.addLayout(self.form)
        self.buttons = QDialogButtonBox(self)
        self.ok_button = self.buttons.addButton(ok_text, QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.try_accept)
        self.buttons.rejected.connect(self.reject)

    def finish_layout(self) -> None:
        self.foot.addWidget(self.buttons)
        self.fit()

    def show_error(self, text: str) -> None:
        """A refusal the dialog finds itself (two passwords differ, too few clinicians)."""
        self.show_banner(text)

    def try_accept(self) -> None:  # pragma: no cover - every subclass overrides
        self.accept()


class FirstRunDialog(_Dialog):
    """The very first start: whoever installs the app creates the administrator account."""

    def __init__(self, accounts: Accounts, parent: QWidget | None = None) -> None:
        super().__init__("KAP Monitor: create the administrator", parent, "Create administrator")
        self.accounts = accounts
        self.user: User | None = None
        intro = QLabel(
            "No accounts exist yet. Create the administrator account: it adds the clinicians "
            f"and supervisors who will use this laptop. Keep its password safe. {PASSPHRASE_RULE}"
        )
        intro.setWordWrap(True)
        self.body_layout.insertWidget(0, intro)
        self.username = QLineEdit(self)
        self.display_name = QLineEdit(self)
        self.display_name.setPlaceholderText("printed name, e.g. Dr Jane Smith")
        self.secret = _new_password_edit(self)
        self.repeat = _new_password_edit(self)
        self.form.addRow("User name", self.username)
        self.form.addRow("Printed name", self.display_name)
        self.form.addRow("Password", self.secret)
        self.form.addRow("Password again", self.repeat)
        self.field_widgets = {
            "username": self.username,
            "display_name": self.display_name,
            "password": self.secret,
            "repeat": self.repeat,
        }
        self.finish_layout()

    def try_accept(self) -> None:
        if self.secret.text() != self.repeat.text():
            self.clear_errors()
            self.show_refusal(ValidationError(FieldError("repeat", "The two passwords differ")))
            return

        def create() -> None:
            self.user = self.accounts.create_first_administrator(
                self.username.text(), self.display_name.text(), self.secret.text()
            )

        if self.attempt(create) and self.attempt(self.seal_database_key):
            self.accept()

    def seal_database_key(self) -> None:
        """An encrypted database: the administrator's key slot, then a recovery key shown once
        (:class:`RecoveryKeyDialog`); a plain one has no key to seal."""
        slots = KeySlots.of(self.accounts.db)
        if slots is None or self.user is None:
            return
        keys = keys_of(self.accounts.db)
        if not slots.has(self.user.username):  # Accounts adds it when it creates the account
            slots.add(keys, self.user.username, self.secret.text())
        RecoveryKeyDialog(slots.set_recovery(keys), self).exec()


class SignInDialog(_Dialog):
    """One person signs in (to review, to unlock, to administer)."""

    def __init__(
        self,
        accounts: Accounts,
        purpose: str,
        parent: QWidget | None = None,
        usernames: list[str] | None = None,
    ) -> None:
        super().__init__(f"Sign in to {purpose}", parent, "Sign in")
        self.accounts = accounts
        self.purpose = purpose
        self.user: User | None = None
        self.username = QComboBox(self)
        self.username.setEditable(True)
        names = usernames if usernames is not None else [u.username for u in accounts.users()]
        self.username.addItems(names)
        self.username.setCurrentIndex(-1 if len(names) != 1 else 0)
        self.secret = _password_edit(self)
        self.form.addRow("User name", self.username)
        self.form.addRow("Password", self.secret)
        self.field_widgets = {"username": self.username, "password": self.secret}
        self.finish_layout()
        (self.secret if names and len(names) == 1 else self.username).setFocus()

    def try_accept(self) -> None:
        def sign_in() -> None:
            self.user = self.accounts.sign_in(
                self.username.currentText(), self.secret.text(), self.purpose
            )

        ok = self.attempt(sign_in)
        self.secret.clear()
        if ok:
            self.accept()


class ClinicianSignInDialog(_Dialog):
    """The attending clinicians sign in before a session starts: at least two, each themselves.

    Afterwards "Recording as" switches between them without retyping. If accounts cannot be
    used (a locum, a forgotten password mid-emergency), "Emergency access…" admits a named
    person with a reason; it is audited and marked on every row they record.
    """

    def __init__(self, accounts: Accounts, parent: QWidget | None = None) -> None:
        super().__init__("Sign in the attending clinicians", parent, "Continue")
        self.accounts = accounts
        self.users: list[User] = []
        intro = QLabel(
            f"Each attending clinician signs in with their own password (at least "
            f"{MIN_CLINICIANS}). The first one starts the session."
        )
        intro.setWordWrap(True)
        self.body_layout.insertWidget(0, intro)
        names = [u.username for u in accounts.users()]
        self.rows: list[tuple[QComboBox, QLineEdit]] = []
        group = QGroupBox("Clinicians", self)
        grid = QFormLayout(group)
        for index in range(MAX_CLINICIANS):
            name = QComboBox(group)
            name.setEditable(True)
            name.addItems(names)
            name.setCurrentIndex(-1)
            name.lineEdit().setPlaceholderText("user name" + (" (optional)" if index >= 2 else ""))
            secret = _password_edit(group)
            row = QWidget(group)
            layout = QVBoxLayout(row)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(name)
            layout.addWidget(secret)
            grid.addRow(f"Clinician {index + 1}", row)
            self.rows.append((name, secret))
        self.form.addRow(group)
        self.emergency_button = QPushButton("Emergency access…", self)
        self.emergency_button.setToolTip(
            "Admit a clinician without an account, with a reason: every use is logged"
        )
        self.emergency_button.clicked.connect(self.emergency_access)
        self.buttons.addButton(self.emergency_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.finish_layout()
        self.rows[0][0].setFocus()

    def try_accept(self) -> None:
        self.clear_errors()
        signed: list[User] = [u for u in self.users if u.emergency]
        problems: list[str] = []
        for index, (name, secret) in enumerate(self.rows, start=1):
            username = name.currentText().strip()
            if not username:
                continue
            try:
                user = self.accounts.sign_in(username, secret.text(), "attend a session")
            except (ValidationError, StoreError) as exc:
                problems.append(f"Clinician {index}: {exc}")
                secret.clear()
                continue
            if any(u.username == user.username for u in signed):
                problems.append(f"Clinician {index}: {user.display_name} is already signed in")
                continue
            signed.append(user)
        if problems:
            self.show_error("\n".join(problems))
            return
        if len(signed) < MIN_CLINICIANS:
            self.show_error(
                f"At least {MIN_CLINICIANS} attending clinicians must sign in "
                f"({len(signed)} so far)"
            )
            return
        self.users = signed
        self.accept()

    def emergency_access(self) -> None:
        name, ok = QInputDialog.getText(self, "Emergency access", "Your full name:")
        if not ok:
            return
        reason, ok = QInputDialog.getText(
            self, "Emergency access", "Why can you not sign in with an account?"
        )
        if not ok:
            return

        def admit() -> None:
            self.users.append(self.accounts.emergency_access(name, reason))

        if self.attempt(admit):
            self.banner.setObjectName("Warn")
            self.show_banner(
                f"Emergency access recorded for {self.users[-1].display_name}; the "
                "administrator will see it in the audit trail."
            )


class AccountsDialog(QDialog):
    """The administrator's list of accounts (add, reset a password, deactivate) and the
    clinic's idle lock."""

    def __init__(
        self,
        accounts: Accounts,
        admin: User,
        parent: QWidget | None = None,
        protocols: Sequence[Protocol] = (),
    ) -> None:
        super().__init__(parent)
        self.accounts = accounts
        self.admin = admin
        self.setWindowTitle("Accounts")
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["User name", "Printed name", "Role"])
        # Every column as wide as its longest entry (a long printed name is not cut); the last
        # takes what is left over.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(self)
        add = buttons.addButton("Add account…", QDialogButtonBox.ButtonRole.ActionRole)
        reset = buttons.addButton("Reset password…", QDialogButtonBox.ButtonRole.ActionRole)
        deactivate = buttons.addButton("Deactivate", QDialogButtonBox.ButtonRole.ActionRole)
        self.sheet_button = buttons.addButton(
            "Account sheet…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.sheet_button.setToolTip(
            "Every account's signing-key fingerprints, to print or save and keep off the laptop"
        )
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        add.clicked.connect(self.add_account)
        reset.clicked.connect(self.reset_password)
        deactivate.clicked.connect(self.deactivate)
        self.sheet_button.clicked.connect(self.show_sheet)
        buttons.rejected.connect(self.reject)
        # Passwords set before the passphrase rule still work until changed: name them here.
        self.weak_note = QLabel(self)
        self.weak_note.setObjectName("Warn")
        self.weak_note.setWordWrap(True)
        layout.addWidget(self.weak_note)
        self.idle_lock = IdleLockBox(accounts, admin, protocols, self)
        layout.addWidget(self.idle_lock)
        layout.addWidget(buttons)
        hint = self.sizeHint()  # room for the idle-lock box and a refusal under it
        self.resize(max(640, hint.width()), max(520, hint.height()))
        self.refresh()

    def refresh(self) -> None:
        weak = self.accounts.weak_passwords()
        self.weak_note.setText(
            "Passwords set before the passphrase rule (they still work until changed; reset "
            f"them): {', '.join(weak)}"
            if weak
            else ""
        )
        self.weak_note.setVisible(bool(weak))
        users = self.accounts.users()
        self.table.setRowCount(len(users))
        for row, user in enumerate(users):
            for column, text in enumerate((user.username, user.display_name, user.role)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, user.username)
                self.table.setItem(row, column, item)
        self._fit_columns()

    def changeEvent(self, event: QEvent) -> None:
        """Large type (a new style sheet) widens the text: widen the table with it."""
        super().changeEvent(event)
        changed = event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange)
        if changed and hasattr(self, "table"):  # not while the dialog is still being built
            self._fit_columns()

    def _fit_columns(self) -> None:
        """Make the table at least as wide as its columns' contents, so none is ever clipped.

        Sizing the columns to their contents is not enough on its own: in a narrow dialog the
        stretched last column would shrink below its text. So the table's minimum width is the
        sum of the columns' content widths, and the dialog cannot be made narrower than that.
        """
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        columns = sum(
            max(self.table.sizeHintForColumn(c), header.sectionSizeHint(c))
            for c in range(self.table.columnCount())
        )
        frame = 2 * self.table.frameWidth()
        scroll = self.table.verticalScrollBar().sizeHint().width()
        self.table.setMinimumWidth(columns + self.table.verticalHeader().width() + frame + scroll)

    def selected_username(self) -> str | None:
        item = self.table.item(self.table.currentRow(), 0)
        return item.text() if item else None

    def add_account(self) -> None:
        dialog = NewAccountDialog(self.accounts, self.admin, self)
        if dialog.exec():
            self.refresh()

    def reset_password(self) -> None:
        username = self.selected_username()
        if username is None:
            return
        secret, ok = QInputDialog.getText(
            self,
            "Reset password",
            f"New password for {username} ({MIN_PASSWORD_LENGTH}+ character passphrase). "
            "A reset makes a new signing key: print the account sheet again.",
            QLineEdit.EchoMode.Password,
        )
        if ok:
            self._run(lambda: self.accounts.set_secret(self.admin, username, secret))
            self.refresh()

    def show_sheet(self) -> None:
        AccountSheetDialog(self.accounts.sheet(), self).exec()

    def deactivate(self) -> None:
        username = self.selected_username()
        if username is None or username == self.admin.username:
            return
        self._run(lambda: self.accounts.deactivate(self.admin, username))
        self.refresh()

    def _run(self, action: Callable[[], None]) -> None:
        try:
            action()
        except (ValidationError, StoreError) as exc:
            QMessageBox.warning(self, "Accounts", str(exc))


class NewAccountDialog(_Dialog):
    def __init__(self, accounts: Accounts, admin: User, parent: QWidget | None = None) -> None:
        super().__init__("Add an account", parent, "Add")
        self.accounts = accounts
        self.admin = admin
        self.user: User | None = None
        self.username = QLineEdit(self)
        self.display_name = QLineEdit(self)
        self.role = QComboBox(self)
        self.role.addItems(list(ROLES))
        self.secret = _new_password_edit(self)
        rule = QLabel(PASSPHRASE_RULE, self)
        rule.setObjectName("Muted")
        rule.setWordWrap(True)
        self.body_layout.insertWidget(0, rule)
        self.form.addRow("User name", self.username)
        self.form.addRow("Printed name", self.display_name)
        self.form.addRow("Role", self.role)
        self.form.addRow("First password", self.secret)
        self.field_widgets = {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "password": self.secret,
        }
        self.finish_layout()

    def try_accept(self) -> None:
        def create() -> None:
            self.user = self.accounts.create_user(
                self.admin,
                self.username.text(),
                self.display_name.text(),
                self.role.currentText(),
                self.secret.text(),
            )

        if self.attempt(create):
            self.accept()


class IdleLockBox(QGroupBox):
    """The clinic's idle lock, changed by an administrator: automatic, minutes, or never.

    Stored in the database (every laptop using the file follows it) and audited; a value that a
    protocol's check interval undercuts is refused here with the reason, so the window never
    asks for a password at every reading.
    """

    def __init__(
        self,
        accounts: Accounts,
        admin: User,
        protocols: Sequence[Protocol],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Idle lock (for every user of this clinic's database)", parent)
        self.clinic = ClinicSettings(accounts.db, accounts.clock)
        self.admin = admin
        self.protocols = list(protocols)
        layout = QVBoxLayout(self)
        self.automatic = QCheckBox(
            f"Automatic (shortest check interval + {idle_lock.AUTO_MARGIN_MINUTES} min)",
            self,
        )
        self.minutes = QSpinBox(self)
        self.minutes.setRange(0, idle_lock.MAX_MINUTES)
        self.minutes.setSuffix(" min")
        self.minutes.setSpecialValueText("never")
        self.minutes.setToolTip("Minutes without input before the bedside window locks; 0 = never")
        self.save_button = QPushButton("Save idle lock", self)
        self.save_button.clicked.connect(self.save)
        self.automatic.toggled.connect(lambda on: self.minutes.setEnabled(not on))
        row = QHBoxLayout()
        row.addWidget(self.automatic, 1)
        row.addWidget(self.minutes)
        row.addWidget(self.save_button)
        layout.addLayout(row)
        # Under the controls, so a refusal appearing does not move the button just clicked.
        self.banner = QLabel(self)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.note = QLabel(self)
        self.note.setObjectName("Muted")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        current = self.clinic.idle_lock_minutes()
        self.automatic.setChecked(current is None)
        self.minutes.setEnabled(current is not None)
        self.minutes.setValue(
            current if current is not None else idle_lock.automatic_minutes(self._strictest())
        )
        self._show_in_force()

    def errors_text(self) -> str:
        return self.banner.text() if not self.banner.isHidden() else ""

    def save(self) -> None:
        value = None if self.automatic.isChecked() else self.minutes.value()
        self.banner.hide()
        try:
            self.clinic.set_idle_lock_minutes(self.admin, value, self.protocols)
        except ValidationError as exc:
            self.banner.setText("\n".join(e.message for e in exc.errors))
            self.banner.show()
            return
        except StoreError as exc:
            self.banner.setText(str(exc))
            self.banner.show()
            return
        self._show_in_force("Saved. ")

    def _strictest(self) -> Protocol | None:
        """The protocol whose shortest check interval is longest (it binds every value)."""
        timed = [p for p in self.protocols if idle_lock.shortest_interval(p) is not None]
        return max(timed, key=lambda p: idle_lock.shortest_interval(p) or 0, default=None)

    def _show_in_force(self, prefix: str = "") -> None:
        setting = self.clinic.idle_lock_minutes()
        by_rule: dict[str, list[str]] = {}
        for protocol in self.protocols:
            rule = idle_lock.lock_in_force(setting, protocol).explanation
            by_rule.setdefault(rule, []).append(protocol.id)
        if len(by_rule) == 1:
            text = f"In force for every protocol: {next(iter(by_rule))}"
        elif by_rule:
            text = "In force: " + "; ".join(f"{', '.join(ids)}: {r}" for r, ids in by_rule.items())
        else:
            text = f"In force: {idle_lock.lock_in_force(setting, None).explanation}"
        self.note.setText(prefix + text)


class AccountSheetDialog(QDialog):
    """The account sheet: every account and the fingerprints of its signing keys, to print
    (or save and print) and keep away from the laptop, so a key planted later is noticed."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Account sheet")
        self.sheet_text = text
        layout = QVBoxLayout(self)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setPlainText(text)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(self)
        self.save_button = buttons.addButton("Save…", QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.save_button.clicked.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 480)

    def save(self, path: str | None = None) -> None:
        if path is None:
            path, _filter = QFileDialog.getSaveFileName(
                self, "Save the account sheet", "account-sheet.txt", "Text (*.txt)"
            )
        if not path:
            return
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(self.sheet_text)
        except OSError as exc:
            QMessageBox.warning(self, "Account sheet", f"Could not save {path}: {exc.strerror}")


class MyAccountDialog(_Dialog):
    """A person changes their own password and/or sets their idle-lock PIN.

    Both need the current password (a sign-in, with its lock-out). The PIN ({low}–{high} digits)
    only ever unlocks the idle lock of a session they signed in to on this laptop."""

    def __init__(
        self, accounts: Accounts, parent: QWidget | None = None, usernames: list[str] | None = None
    ) -> None:
        super().__init__("My password and PIN", parent, "Save")
        self.accounts = accounts
        low, high = PIN_DIGITS
        intro = QLabel(
            f"{PASSPHRASE_RULE} The PIN ({low}–{high} digits) only unlocks the idle lock of a "
            "session you signed in to on this laptop, and only 5 wrong tries; it never signs "
            "you in or signs a session. Leave a pair empty to keep it.",
            self,
        )
        intro.setWordWrap(True)
        self.body_layout.insertWidget(0, intro)
        self.username = QComboBox(self)
        self.username.setEditable(True)
        names = usernames if usernames is not None else [u.username for u in accounts.users()]
        self.username.addItems(names)
        self.username.setCurrentIndex(-1)
        self.current = _password_edit(self, "your current password")
        self.new_password = _new_password_edit(self)
        self.repeat_password = _new_password_edit(self)
        self.pin = _password_edit(self, f"{low}–{high} digits")
        self.repeat_pin = _password_edit(self, "the PIN again")
        self.form.addRow("User name", self.username)
        self.form.addRow("Current password", self.current)
        self.form.addRow("New password", self.new_password)
        self.form.addRow("New password again", self.repeat_password)
        self.form.addRow("New PIN", self.pin)
        self.form.addRow("New PIN again", self.repeat_pin)
        self.field_widgets = {
            "username": self.username,
            "password": self.new_password,
            "repeat": self.repeat_password,
            "pin": self.pin,
            "repeat_pin": self.repeat_pin,
            "current": self.current,
        }
        self.done_text = ""
        self.finish_layout()

    def try_accept(self) -> None:
        self.clear_errors()
        new, pin = self.new_password.text(), self.pin.text()
        if new != self.repeat_password.text():
            self.show_refusal(ValidationError(FieldError("repeat", "The two passwords differ")))
            return
        if pin != self.repeat_pin.text():
            self.show_refusal(ValidationError(FieldError("repeat_pin", "The two PINs differ")))
            return
        if not new and not pin:
            self.show_error("Type a new password, a new PIN, or both")
            return
        done: list[str] = []

        def save() -> None:
            user = self.accounts.find(self.username.currentText())
            if user is None:
                raise ValidationError(FieldError("username", "Wrong user name or password"))
            current = self.current.text()
            if new:
                self.accounts.set_secret(user, user.username, new, current_secret=current)
                done.append("password changed")
                current = new
            if pin:
                self.accounts.set_pin(user, current, pin)
                done.append("PIN set")

        ok = self.attempt(save)
        for edit in (self.current, self.new_password, self.repeat_password, self.pin):
            edit.clear()
        self.repeat_pin.clear()
        if ok:
            self.done_text = ", ".join(done)
            self.accept()


class AttestDialog(_Dialog):
    """At the session's end, each attending clinician may attest the record with their own
    password (it opens their signing key): the statement a supervisor's sign-off signs, over
    the rows as they are now. A clinician who leaves the password empty does not attest."""

    def __init__(
        self,
        review: Review,
        session_id: str,
        clinicians: Sequence[User],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Attest the record", parent, "Attest")
        self.review = review
        self.session_id = session_id
        self.clinicians = list(clinicians)
        self.attested: list[str] = []
        intro = QLabel(
            "The session has ended. Each attending clinician may now attest the record as it "
            "stands with their own password: it is signed with their key, and a later change "
            "to what they attested shows in verify. Corrections stay possible until sign-off.",
            self,
        )
        intro.setWordWrap(True)
        self.body_layout.insertWidget(0, intro)
        self.secrets: list[QLineEdit] = []
        for user in self.clinicians:
            edit = _password_edit(self, f"password of {user.username}")
            self.form.addRow(user.display_name, edit)
            self.secrets.append(edit)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Not now")
        self.finish_layout()
        if self.secrets:
            self.secrets[0].setFocus()

    def try_accept(self) -> None:
        self.clear_errors()
        problems: list[str] = []
        typed = 0
        for user, edit in zip(self.clinicians, self.secrets, strict=True):
            secret = edit.text()
            edit.clear()
            if not secret or user.display_name in self.attested:
                continue
            typed += 1
            try:
                self.review.attest(self.session_id, user.username, secret)
            except (ValidationError, StoreError) as exc:
                problems.append(f"{user.display_name}: {exc}")
                continue
            self.attested.append(user.display_name)
        if problems:
            self.show_error("\n".join(problems))
            return
        if not typed and not self.attested:
            self.show_error("Type your password to attest, or choose Not now")
            return
        self.accept()
