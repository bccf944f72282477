"""Load the store and the bedside behind the unlock dialog, while the password is typed.

The dialog paints as soon as Qt is up (docs/performance.md, "Start-up"). What the window needs
after the password (sqlite-utils, SQLCipher, cryptography, the domain, the bedside's widgets) then
loads while the person types, so the unlock is not followed by a second wait: the Qt-free modules
on a worker thread, the bedside's Qt modules on the GUI thread once the dialog has painted (Qt
classes are best defined on the thread that uses them).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

#: Qt-free modules the unlock and the bedside need, in the order they are first used.
QT_FREE_MODULES = (
    "kapmonitor.store.encrypted_store",
    "kapmonitor.store.session_store",
    "kapmonitor.store.session_model",
)
#: The bedside window's module (and with it its forms and widgets), loaded on the GUI thread.
WINDOW_MODULE = "kapmonitor.ui.bedside.session_window"
#: How long after the dialog is shown the window's module loads: after its first paint, long
#: before a password can have been typed (a 50–100 ms pause then is not felt).
WINDOW_DELAY_MS = 150


def _import_all(names: Sequence[str]) -> None:
    for name in names:
        # A module that fails to import fails again, with its message, where it is really used.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def warm_up() -> threading.Thread:
    """Start loading the Qt-free modules on a worker; returns it (tests join it).

    Started before the password is tried: the key derivation (scrypt, about 0.4 s) releases the
    interpreter's lock, so with ``KAPMONITOR_USER``/``KAPMONITOR_PASSWORD`` the loading overlaps it
    on a second core, and with the unlock dialog it happens while the password is typed."""
    worker = threading.Thread(
        target=_import_all, args=(QT_FREE_MODULES,), name="kapmonitor-warm-up", daemon=True
    )
    worker.start()
    return worker


def load_window_behind(dialog: QWidget) -> None:
    """Load the bedside's Qt modules on the GUI thread once ``dialog`` has painted."""
    QTimer.singleShot(WINDOW_DELAY_MS, dialog, load_window_now)


def load_window_now() -> None:
    """Load the bedside's Qt modules (on the GUI thread)."""
    _import_all((WINDOW_MODULE,))
