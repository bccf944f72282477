"""Who is at the laptop: attending clinicians, the idle lock, review and account windows.

Kept beside the session window (like the protocol support): the window records entries; this
part decides who may. Once accounts exist (the first start creates the administrator), a session
starts only after at least two attending clinicians sign in, "Recording as" switches between
them without retyping for the rest of the session (a correction or an idle lock does not forget
them), an idle window locks after the clinic's idle-lock time, and a resumed session opens locked
until one of its clinicians signs in. A database without any account (a demo file, a test) keeps
typed names.

The idle lock opens with the password, or with the short PIN of a clinician who signed in with
their password during this run of the session (never after a resume, never for anyone else).
Wrong PINs are limited twice: ``PIN_TRIES`` per lock on this window (any name), and per account
by the store (counted in the audit trail, so a restart does not reset it); then only the
password opens it. A PIN never signs anyone in, signs a session or unlocks the database.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QLabel, QMessageBox

from kapmonitor.domain.clock import format_duration
from kapmonitor.domain.idle_lock import IdleLock, lock_in_force
from kapmonitor.domain.validation import ValidationError
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.settings import LARGE_TYPE
from kapmonitor.store.accounts import PIN_DIGITS, PIN_TRIES, Accounts, User
from kapmonitor.store.clinic_settings import ClinicSettings
from kapmonitor.store.errors import StoreError
from kapmonitor.store.signoff import Review
from kapmonitor.ui.bedside.idle_lock import IdleWatcher, LockNumber, LockOverlay
from kapmonitor.ui.forms.account_dialogs import (
    MIN_CLINICIANS,
    AccountsDialog,
    AttestDialog,
    ClinicianSignInDialog,
    MyAccountDialog,
    SignInDialog,
)

# The big numbers the lock screen repeats: every vital sign of the registry, as the form enters
# them ("bp" is one), so a critical EtCO₂ is not hidden behind the lock; the scores stay behind it.
LOCK_NUMBERS = tuple(dict.fromkeys(v.field for v in VITAL_SIGNS))

if TYPE_CHECKING:
    from kapmonitor.ui.bedside.session_window import SessionWindow


class SessionAccess:
    def __init__(self, window: SessionWindow) -> None:
        self.window = window
        self.accounts = Accounts(window.store.db, window.clock)
        self.clinic = ClinicSettings(window.store.db, window.clock)
        self.attending: list[User] = []
        self.pin_failures = 0  # wrong PINs since the window last opened with a password
        # Over the session page only: the stack raises its current page, which would hide it.
        self.overlay = LockOverlay(window.pages.widget(1))
        self.overlay.unlock_requested.connect(self.unlock)
        self.watcher = IdleWatcher(lambda: self.idle_lock().minutes, window)
        self.watcher.idle.connect(self.lock_if_idle)

    # --- state ------------------------------------------------------------------------------

    def enabled(self) -> bool:
        """Accounts are in use once any exists (the app's first start creates one)."""
        try:
            return self.accounts.any_users()
        except StoreError:
            return False

    def setup_hint(self) -> str:
        """On a fresh install only the administrator exists; a session needs two clinicians."""
        if not self.enabled():
            return ""
        count = len(self.accounts.users())
        if count >= MIN_CLINICIANS:
            return ""
        return (
            f"A session needs at least {MIN_CLINICIANS} attending clinicians who sign in, and "
            f"this laptop has {count} account. The administrator adds the clinicians' accounts "
            "first: Session → Accounts…"
        )

    def locked(self) -> bool:
        return not self.overlay.isHidden()

    def idle_lock(self) -> IdleLock:
        """The clinic's idle lock for the open session's protocol (automatic by default)."""
        window = self.window
        try:
            setting = self.clinic.idle_lock_minutes()
        except (StoreError, sqlite3.Error):
            setting = None  # unreadable for a moment: the automatic value is the safe one
        protocol = None
        if window.log is not None:
            try:
                protocol = window.store.protocol_for(window.log.id)
            except (StoreError, sqlite3.Error):
                protocol = window.log.protocol
        return lock_in_force(setting, protocol)

    # --- starting and resuming ------------------------------------------------------------

    def sign_in_clinicians(self) -> list[str] | None:
        """Names of the clinicians who signed in for a new session; None if cancelled.

        An empty list means accounts are not in use: the start form takes typed names.
        """
        if not self.enabled():
            return []
        dialog = ClinicianSignInDialog(self.accounts, self.window)
        self.window.active_form = dialog
        try:
            if not dialog.exec():
                return None
        finally:
            self.window.active_form = None
        self.attending = list(dialog.users)
        return [u.display_name for u in self.attending]

    def session_opened(self, fresh: bool) -> None:
        """A resumed session opens locked: whoever continues signs in first."""
        if fresh:
            self.overlay.hide()
        elif self.enabled():
            self.attending = []
            self.lock("sign in to continue this session")

    def recorder_allowed(self, name: str) -> bool:
        """Whether ``name`` may record without a password: they signed in at the start of
        this session, or unlocked it since (a resume forgets them: see ``session_opened``)."""
        if not self.enabled():
            return True
        return any(u.display_name == name for u in self.attending)

    def sign_in_as(self, display_name: str) -> bool:
        """One attending clinician not yet signed in (after a resume) signs in to record."""
        by_name = {u.display_name: u.username for u in self.accounts.users()}
        username = by_name.get(display_name)
        if username is None:
            return False
        dialog = SignInDialog(self.accounts, "record", self.window, [username])
        if not dialog.exec() or dialog.user is None:
            return False
        self.attending.append(dialog.user)
        return True

    # --- locking ----------------------------------------------------------------------------

    def lock_if_idle(self) -> None:
        if self.window.log is not None and self.enabled() and not self.locked():
            self.lock(f"no input for {self.idle_lock().minutes} min")

    def lock(self, why: str = "locked by a clinician") -> None:
        window = self.window
        if window.log is None or not self.enabled():
            return
        if window.active_form is not None:
            return  # never throw away a half-typed entry; the next idle check locks
        names = self._clinician_usernames()
        self.overlay.lock(names, why)
        window.update_enabled()
        self.refresh()

    def refresh(self) -> None:
        """Keep the clock, the next check, the alarms and the big numbers current on the lock
        screen (called at every clock tick)."""
        window = self.window
        if not self.locked() or window.log is None:
            return
        log = window.log
        elapsed = format_duration((window.clock.now() - log.started_at()).total_seconds())
        patient = log.session["patient_code"]
        self.overlay.set_large_type(window.settings.get(LARGE_TYPE))
        self.overlay.show_status(
            f"{patient} · session {elapsed}",
            window.schedule_panel.text(),
            window.alarm_banner.lines(),
            self._numbers(),
            window.schedule_panel.state(),
        )

    def _numbers(self) -> list[LockNumber]:
        """The session page's big numbers as they are shown there, with their ages."""
        panel = self.window.last_values
        numbers = []
        for key in LOCK_NUMBERS:
            value = panel.values[key]
            caption = panel.captions[key].text()  # with its "▲ critical" marker, if any
            numbers.append(LockNumber(caption, value.text(), panel.ages[key].text(), _look(value)))
        return numbers

    def _pin_holder(self, username: str, secret: str) -> User | None:
        """The signed-in clinician this unlock may be a PIN for: ``secret`` looks like a PIN,
        the name is an attending clinician who signed in with a password during this run of
        the session, and they have set a PIN. None means: treat it as a password."""
        low, high = PIN_DIGITS
        if not (secret.isascii() and secret.isdigit() and low <= len(secret) <= high):
            return None
        found = self.accounts.find(username)
        if found is None or all(u.username != found.username for u in self.attending):
            return None
        return found if self.accounts.has_pin(found.username) else None

    def unlock(self, username: str, secret: str) -> None:
        window = self.window
        log = window.log
        if log is None:
            self.overlay.hide()
            return
        holder = self._pin_holder(username, secret)
        try:
            if holder is not None and self.pin_failures < PIN_TRIES:
                try:
                    user = self.accounts.unlock_with_pin(holder, secret)
                except ValidationError:
                    self.pin_failures += 1
                    raise
            else:
                user = self.accounts.sign_in(username, secret, "unlock the bedside window")
                self.pin_failures = 0
        except (ValidationError, StoreError) as exc:
            message = str(exc)
            if holder is not None and self.pin_failures >= PIN_TRIES:
                message += " — too many wrong PINs on this window: unlock with a password"
            self.overlay.refuse(message)
            return
        if user.display_name not in log.clinicians:
            self.overlay.refuse(
                f"{user.display_name} is not an attending clinician of this session"
            )
            return
        if all(u.username != user.username for u in self.attending):
            self.attending.append(user)
        self.overlay.hide()
        index = window.header.recorder.findText(user.display_name)
        if index >= 0:
            window.header.recorder.setCurrentIndex(index)
        window.update_enabled()

    def _clinician_usernames(self) -> list[str]:
        log = self.window.log
        if log is None:
            return []
        by_name = {u.display_name: u.username for u in self.accounts.users()}
        return [by_name[name] for name in log.clinicians if name in by_name]

    # --- other windows ----------------------------------------------------------------------

    def open_review(self) -> None:
        """The supervisor's archive, after signing in (clinicians may open it to amend).

        The bedside only asks for it (``review_requested``): the application opens the review
        room, so the two rooms never import each other."""
        window = self.window
        if not self.enabled():
            QMessageBox.information(
                window, "Review", "Create accounts first: reviewing needs a signed-in user."
            )
            return
        dialog = SignInDialog(self.accounts, "review sessions", window)
        if not dialog.exec() or dialog.user is None:
            return
        window.review_requested.emit(dialog.user)

    def attest_after_end(self) -> None:
        """After the session ends: each attending clinician signed in this run may attest the
        record with their password (their key); skipping it is allowed and changes nothing."""
        window = self.window
        log = window.log
        people = [u for u in self.attending if not u.emergency]
        if log is None or not self.enabled() or not people:
            return
        dialog = AttestDialog(Review(window.store), log.id, people, window)
        window.active_form = dialog
        try:
            dialog.exec()
        finally:
            window.active_form = None
        if dialog.attested:
            window.statusBar().showMessage(f"Attested by {', '.join(dialog.attested)}", 8000)

    def my_account(self) -> None:
        """A person changes their own password and/or sets the PIN for the idle lock."""
        dialog = MyAccountDialog(self.accounts, self.window)
        if dialog.exec() and dialog.done_text:
            self.window.statusBar().showMessage(f"Saved: {dialog.done_text}", 8000)

    def manage_accounts(self) -> None:
        window = self.window
        dialog = SignInDialog(
            self.accounts,
            "manage accounts",
            window,
            [u.username for u in self.accounts.users() if u.role == "administrator"],
        )
        if not dialog.exec() or dialog.user is None:
            return
        try:
            self.accounts.require(dialog.user, "administrator", action="manage accounts")
        except ValidationError as exc:
            window.report_error(exc)
            return
        protocols = list(window.protocol_support.catalogue.protocols.values())
        AccountsDialog(self.accounts, dialog.user, window, protocols=protocols).exec()
        if window.log is None:
            window.show_welcome()  # the set-up hint goes once there are enough accounts


def _look(label: QLabel) -> dict[str, object]:
    """The plain dynamic properties a style rule may key on (the critical or warning
    ``level`` of a value that stays highlighted until a calmer reading follows)."""
    look: dict[str, object] = {}
    for raw in label.dynamicPropertyNames():
        name = bytes(raw.data()).decode()
        if name.startswith("_q_"):
            continue
        try:
            value = label.property(name)
        except RuntimeError:  # Qt-internal values PySide cannot convert
            continue
        if isinstance(value, (str, bool, int, float)):
            look[name] = value
    return look
