"""Session ▸ Clinic server…: where this laptop syncs, for an administrator (issue 14 item 6).

The address (``postgresql://role@host:port/database``, as ``kapmonitor server add-laptop``
prints it) is saved as a laptop setting, without a password; a password typed into the address
is refused, because the settings file is plain text. The laptop role's password goes in its own
field and is sealed beside the database under the database's key
(:mod:`kapmonitor.network.background`); the field is never filled back in.

"Test connection" signs in as the laptop on a worker thread (a server that does not answer
takes up to libpq's 5 s connect timeout, and the window keeps painting meanwhile) and says the
result in a sentence: "Connected: the archive knows this laptop as room-1.", or why not (a
wrong password, a server that cannot be reached, a database that is not an archive).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.network.background import (
    check_connection,
    check_url,
    forget_password,
    load_password,
    plain_error,
    save_password,
    where,
    with_password,
)
from kapmonitor.settings import SYNC_SERVER, Settings
from kapmonitor.store.accounts import Accounts, User
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import DatabaseKeys
from kapmonitor.ui.forms.form_base import FittingDialog

ACTION = "set the clinic server"
INTRO = (
    "This laptop sends every saved entry to the clinic's central archive whenever the server "
    "can be reached; recording never waits for it. Type the address the administrator's "
    "kapmonitor server add-laptop printed, and the laptop's password."
)


class _Answer(QObject):
    """Carries a test's result from its worker thread to the dialog (queued)."""

    done = Signal(bool, str)


class ServerDialog(FittingDialog):
    """Set, test or remove the clinic server connection."""

    refusal_heading = "Not saved"

    def __init__(
        self,
        settings: Settings,
        db_path: Path,
        keys: DatabaseKeys,
        accounts: Accounts,
        user: User,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.db_path = Path(db_path)
        self.keys = keys
        self.accounts = accounts
        self.user = user
        self.changed = ""  # what was saved, for the window's status bar ("" = nothing)
        self.testing: threading.Thread | None = None
        self.setWindowTitle("Clinic server")
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
        self.address = QLineEdit(settings.get(SYNC_SERVER), self)
        self.address.setPlaceholderText("postgresql://kap_kapmonitor_room_1@clinic-pc/kapmonitor")
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        saved = load_password(self.db_path, keys) is not None
        self.password.setPlaceholderText(
            "saved (type to replace)" if saved else "the laptop's password"
        )
        form.addRow("Server address", self.address)
        form.addRow("Password", self.password)
        layout.addLayout(form)
        self.result = QLabel("", self)
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result.hide()
        layout.addWidget(self.result)
        self.test_button = QPushButton("Test connection", self)
        self.test_button.clicked.connect(self.test)
        self.save_button = QPushButton("Save", self)
        self.save_button.clicked.connect(self.save)
        self.remove_button = QPushButton("Stop syncing", self)
        self.remove_button.clicked.connect(self.remove)
        self.remove_button.setEnabled(bool(settings.get(SYNC_SERVER)))
        self.buttons = QDialogButtonBox(self)
        self.buttons.addButton(self.test_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.foot.addWidget(self.buttons)
        self.field_widgets = {"url": self.address, "password": self.password}
        self.field_aliases = {"url": "url"}
        self._answer = _Answer(self)
        self._answer.done.connect(self._tested, Qt.ConnectionType.QueuedConnection)
        self.address.setFocus()

    # --- the connection typed -------------------------------------------------------------

    def _url(self) -> str:
        """The address checked (raises a plain NetworkError), without any password."""
        return check_url(self.address.text())

    def _typed_or_saved_password(self) -> str | None:
        return self.password.text() or load_password(self.db_path, self.keys)

    # --- actions -------------------------------------------------------------------------------

    def test(self) -> None:
        """Sign in as the laptop on a worker thread; the answer comes back as a sentence."""
        if self.testing is not None and self.testing.is_alive():
            return
        url = ""

        def check() -> None:
            nonlocal url
            url = self._url()

        if not self.attempt(check, "Not tested"):
            return
        full = with_password(url, self._typed_or_saved_password())
        answer = self._answer

        def work() -> None:
            try:
                laptop = check_connection(full)
            except StoreError as exc:
                sentence = _test_failure(exc, url)
                ok = False
            except Exception as exc:  # a worker never dies silently
                sentence, ok = f"The test failed unexpectedly ({type(exc).__name__}).", False
            else:
                sentence = f"Connected: the archive at {where(url)} knows this laptop as {laptop}."
                ok = True
            with contextlib.suppress(RuntimeError):  # the dialog was closed meanwhile
                answer.done.emit(ok, sentence)

        self._say(f"Testing the connection to {where(url)}…", "Muted")
        self.test_button.setEnabled(False)
        self.testing = threading.Thread(target=work, name="kapmonitor-server-test", daemon=True)
        self.testing.start()

    def _tested(self, ok: bool, sentence: str) -> None:
        self.test_button.setEnabled(True)
        self._say(sentence, "" if ok else "Warn")

    def save(self) -> None:
        """Keep the address (a setting) and the password (sealed); the window restarts its sync."""

        def store() -> None:
            url = self._url()
            self.accounts.require(self.user, "administrator", action=ACTION)
            if self.password.text():
                save_password(self.db_path, self.keys, self.password.text())
            self.settings.set(SYNC_SERVER, url)
            self.changed = f"Clinic server set: this laptop syncs with {where(url)}."

        if self.attempt(store):
            self.accept()

    def remove(self) -> None:
        """Stop syncing from this laptop (rows already sent stay on the server)."""

        def drop() -> None:
            self.accounts.require(self.user, "administrator", action=ACTION)
            self.settings.set(SYNC_SERVER, "")
            forget_password(self.db_path)
            self.changed = "Clinic server removed: this laptop no longer syncs."

        if self.attempt(drop, "Not removed"):
            self.accept()

    def result_text(self) -> str:
        return "" if self.result.isHidden() else self.result.text()

    def _say(self, text: str, name: str) -> None:
        self.result.setObjectName(name)
        self.result.setText(text)
        self.result.style().unpolish(self.result)
        self.result.style().polish(self.result)
        self.result.show()
        self.fit()

    def done(self, result: int) -> None:
        if self.testing is not None:
            self.testing.join(0.1)  # never waits long: the thread is a daemon and may finish later
        super().done(result)


def _test_failure(exc: StoreError, url: str) -> str:
    """A failed test in the dialog's words (the panel's sentence, without the waiting rows)."""
    if exc.kind == "auth":
        return (
            f"The clinic server at {where(url)} did not accept this password for the laptop's "
            "role. Check the password the administrator was given with kapmonitor server "
            "add-laptop."
        )
    if exc.kind == "offline":
        return plain_error(exc, url, 0).split(";")[0] + "."
    return str(exc)
