"""Starting the window: the application object, the theme, the database, the resume offer.

A database that cannot be opened ends here with a plain message naming the file (and a
non-zero exit), and any unexpected error later is shown as a sentence, never a traceback.

The database is encrypted (docs/encryption.md): the first run creates it with a new key once the
administrator exists and shows the recovery key once; every later start asks for an account's
password (:class:`UnlockDialog`) before the window opens; a plain database from an older version
is encrypted when its administrator signs in.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

from PySide6.QtCore import QLockFile, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from kapmonitor import APP_NAME, APP_SLUG, __version__
from kapmonitor.domain.clock import Clock, SystemClock
from kapmonitor.paths import resources_dir
from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, Settings
from kapmonitor.store import db_file
from kapmonitor.store.errors import StoreError
from kapmonitor.ui.startup_warmup import load_window_behind, load_window_now, warm_up
from kapmonitor.ui.widgets.theme import apply_theme

if TYPE_CHECKING:
    # Imported where used: the unlock dialog paints before the store and the bedside load
    # (docs/performance.md, "Start-up"); they load behind it while the password is typed.
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.accounts import User
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.bedside.session_window import SessionWindow


def application() -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_SLUG)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    icon = resources_dir() / "icons" / "kapmonitor.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def install_excepthook() -> None:
    """Unexpected errors become a plain message; saved entries are already on disk."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        # Only the error type and location go to stderr: never entry values.
        frames = traceback.extract_tb(tb)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        print(f"kapmonitor: unexpected {kind.__name__} at {where}", file=sys.stderr)
        QMessageBox.critical(
            None,
            APP_NAME,
            "Something unexpected went wrong. Every entry shown as saved is safely stored. "
            f"If this repeats, tell clinic IT: {kind.__name__}: {exc}",
        )

    sys.excepthook = hook


def recover_from_backup(db_path: Path, exc: StoreError, clock: Clock | None) -> SessionStore | None:
    """A damaged file at start-up: say so, and offer the newest backup that passes its check."""
    from kapmonitor.store.backup import newest_good_backup, restore
    from kapmonitor.store.session_store import SessionStore

    good = newest_good_backup(db_path) if exc.kind == "corrupt" else None
    if good is None:
        QMessageBox.critical(None, f"{APP_NAME}: cannot open the database", str(exc))
        return None
    box = QMessageBox(QMessageBox.Icon.Critical, f"{APP_NAME}: the database is damaged", str(exc))
    box.setObjectName("RestorePrompt")
    box.setInformativeText(
        f"The newest good backup is from {good.label}. Restore it? Entries made after it are "
        "not in it. The damaged file is kept beside it (renamed), never deleted."
    )
    restore_button = box.addButton("Restore the backup", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(restore_button)
    box.exec()
    if box.clickedButton() is not restore_button:
        return None
    try:
        kept = restore(good.path, db_path)
        store = SessionStore.open(db_path, clock)
    except StoreError as again:
        QMessageBox.critical(None, f"{APP_NAME}: the restore failed", str(again))
        return None
    print(
        f"kapmonitor: restored {good.path.name}; the damaged file is kept as {kept}",
        file=sys.stderr,
    )
    return store


def instance_lock(db_path: Path) -> tuple[QLockFile | None, str]:
    """One window per database file: a second copy could record the same session twice.

    Qt's lock file holds the process id; a lock left by a crashed copy is stale and taken over.
    Returns the held lock, or None and the sentence to show.
    """
    with contextlib.suppress(OSError):
        db_path.parent.mkdir(parents=True, exist_ok=True)
    lock = QLockFile(f"{db_path}.lock")
    lock.setStaleLockTime(0)  # stale only when its process is gone, however long it ran
    if lock.tryLock(200):
        return lock, ""
    if lock.error() == QLockFile.LockError.LockFailedError:
        info = lock.getLockInfo()  # (pid, host, app name); older bindings add a flag first
        pid, host = info[-3], info[-2]
        return None, (
            f"KAP Monitor is already open on {db_path} (process {pid} on {host}). Switch to "
            "that window: a second copy could record the same session twice."
        )
    return None, (
        f"KAP Monitor cannot create its lock file beside {db_path} (is the folder writable?)."
    )


def lock_holder(db_path: Path) -> tuple[int, str]:
    """The process id and host named in ``db_path``'s one-window lock file, or (0, "").

    ``kapmonitor restore`` takes the same lock; when it cannot, this names the window in the way.
    """
    info = QLockFile(f"{db_path}.lock").getLockInfo()  # older bindings add a flag first
    pid, host = info[-3], info[-2]
    return (int(pid), str(host)) if pid else (0, "")


def first_run(store: SessionStore, clock: Clock) -> bool:
    """With no account yet, whoever installs the app creates the administrator first."""
    from kapmonitor.store.accounts import Accounts

    accounts = Accounts(store.db, clock)
    if accounts.any_users():
        return True
    # Imported here for start-up time only (a clinic with accounts never needs it).
    from kapmonitor.ui.forms.account_dialogs import FirstRunDialog

    dialog = FirstRunDialog(accounts)
    if dialog.exec() and dialog.user is not None:
        return True
    QMessageBox.information(
        None,
        APP_NAME,
        "KAP Monitor needs an administrator account before the first session. Start it again "
        "when you are ready to create one.",
    )
    return False


def open_database(db_path: Path, clock: Clock) -> SessionStore | None:
    """Open the clinic's database encrypted, asking for what that needs; None when the person
    at the laptop cancels (nothing is left half-made)."""
    current = db_file.state(db_path)
    if current == "new":
        from kapmonitor.store import encrypted_store
        from kapmonitor.store.key_slots import KeySlots
        from kapmonitor.store.session_store import SessionStore

        keys = encrypted_store.begin_new(db_path)
        store = SessionStore.open(db_path, clock, keys=keys)
        created = first_run(store, clock) and KeySlots.load(db_path).exists
        if not created:
            store.close()
            encrypted_store.abandon_new(db_path)
            return None
        return store
    if current == "encrypted":
        from kapmonitor.store.key_slots import KeySlots  # reads the key file: no cryptography

        if not KeySlots.load(db_path).exists:
            # Not SQLite, and no key file: damaged, or not ours. Said plainly; a backup is offered.
            from kapmonitor.store.encryption import needs_unlock_message

            raise StoreError(needs_unlock_message(db_path), "corrupt")
    if current == "plain":
        from kapmonitor.store.session_store import SessionStore

        plain = SessionStore.open(db_path, clock)
        try:
            if not first_run(plain, clock):  # an old file with no account yet: make one first
                return None
        finally:
            plain.close()
    warm_up()  # the store and the bedside load while the password is typed (or derived)
    opened = _unlock_from_environment_loading_window(db_path, clock)
    if opened is not None:
        if opened.recovery_key:  # no one to show a dialog to: as the command line does
            print(
                "kapmonitor: the database is now encrypted. Recovery key (shown once; write it "
                f"down and keep it away from the laptop): {opened.recovery_key}",
                file=sys.stderr,
            )
        return _opened(db_path, clock, opened, 0)
    from kapmonitor.ui.forms.unlock_dialog import RecoveryKeyDialog, UnlockDialog

    dialog = UnlockDialog(
        db_path,
        lambda name, password: _store_module().unlock(db_path, name, password, clock),
        lambda key, name, password: _store_module().reset_with_recovery(
            db_path, key, name, password, clock
        ),
        migrating=current == "plain",
    )
    load_window_behind(dialog)
    if not dialog.exec() or dialog.opened is None:
        return None
    opened = dialog.opened
    if opened.recovery_key:
        RecoveryKeyDialog(opened.recovery_key).exec()
    return _opened(db_path, clock, opened, dialog.failures)


def _store_module() -> ModuleType:
    """The encrypted store's module, loaded when the password is first tried."""
    from kapmonitor.store import encrypted_store

    return encrypted_store


def _opened(
    db_path: Path, clock: Clock, opened: encrypted_store.Opened, failures: int
) -> SessionStore:
    """The store on the unlocked file; the unlock (and the wrong passwords typed before it in
    this dialog, which could not be recorded while the file was locked) goes into the audit."""
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.session_store import SessionStore

    try:
        store = SessionStore.open(db_path, clock, keys=opened.keys)
    except StoreError as exc:
        if exc.kind == "wrong_key":  # the key file's own check passed: the file is damaged
            raise StoreError(str(exc), "corrupt") from exc
        raise
    encrypted_store.record_unlock(store.db, opened.username, clock.now(), failures)
    return store


def _unlock_from_environment_loading_window(
    db_path: Path, clock: Clock
) -> encrypted_store.Opened | None:
    """:func:`unlock_from_environment`, with the bedside's Qt modules loading on this (the GUI)
    thread meanwhile: the key derivation on the worker releases the interpreter's lock."""
    if not os.environ.get("KAPMONITOR_USER"):
        return None
    with ThreadPoolExecutor(1, thread_name_prefix="kapmonitor-unlock") as pool:
        unlocking = pool.submit(unlock_from_environment, db_path, clock)
        load_window_now()
        return unlocking.result()


def unlock_from_environment(db_path: Path, clock: Clock) -> encrypted_store.Opened | None:
    """An automated start (a kiosk script, a test): ``KAPMONITOR_USER``/``KAPMONITOR_PASSWORD``
    unlock as on the command line. If they do not, the unlock dialog is shown as usual."""
    user, password = os.environ.get("KAPMONITOR_USER"), os.environ.get("KAPMONITOR_PASSWORD")
    if not user or password is None:
        return None
    from kapmonitor.store import encrypted_store

    try:
        return encrypted_store.unlock(db_path, user, password, clock)
    except StoreError as exc:
        if exc.kind not in ("wrong_password", "needs_administrator"):
            raise
        print(f"kapmonitor: KAPMONITOR_USER/KAPMONITOR_PASSWORD: {exc}", file=sys.stderr)
        return None


def connect_review(window: SessionWindow) -> list[QWidget]:
    """Open the review room when the bedside asks for it; the list keeps the windows alive.

    The application is the one place that knows both rooms, so neither imports the other. The
    review room is imported on first use, not at start-up: the bedside's first paint does not
    wait for it (about 50 ms)."""
    opened: list[QWidget] = []

    def open_review(user: User) -> None:
        from kapmonitor.ui.review.review_window import ReviewWindow

        review = ReviewWindow(window.store, user, window.clock, window.settings)
        opened.append(review)
        review.show()

    window.review_requested.connect(open_review)
    return opened


def run_gui(db_path: Path, clock: Clock | None = None) -> int:
    app = application()
    settings = Settings()
    apply_theme(app, settings.get(NIGHT_MODE), settings.get(LARGE_TYPE))
    lock, refusal = instance_lock(db_path)
    if lock is None:
        print(f"kapmonitor: {refusal}", file=sys.stderr)
        QMessageBox.warning(None, APP_NAME, refusal)
        return 2
    clock = clock or SystemClock()
    try:
        opened = open_database(db_path, clock)
    except StoreError as exc:
        print(f"kapmonitor: {exc}", file=sys.stderr)
        opened = recover_from_backup(db_path, exc, clock)
        if opened is None:
            lock.unlock()
            return 2
    if opened is None:
        lock.unlock()
        return 1
    store = opened
    install_excepthook()
    if not first_run(store, clock):
        store.close()
        return 1
    from kapmonitor.ui.bedside.session_window import SessionWindow

    window = SessionWindow(store, clock, settings)
    connect_review(window)
    window.show()
    QTimer.singleShot(0, window.offer_resume)
    try:
        return app.exec()
    finally:
        store.close()
        lock.unlock()
