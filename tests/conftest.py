"""Shared test set-up: Qt runs offscreen, and no test touches the user's real data or settings."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# The offscreen platform's screen is the clinic laptop's: 1280 x 720 logical pixels (a 1366 x 768
# panel, or 1920 x 1080 at 150 %). Its default, 800 x 800, let windows too big for the laptop pass.
SCREEN_CONFIG = Path(__file__).with_name("clinic_screen.json")
os.environ.setdefault("QT_QPA_PLATFORM", f"offscreen:configfile={SCREEN_CONFIG}")
# Settings and clinic scales are read from here; a fresh empty folder keeps tests hermetic.
os.environ["KAPMONITOR_CONFIG_DIR"] = tempfile.mkdtemp(prefix="kapmonitor-test-config-")
os.environ.pop("KAPMONITOR_DB", None)

import pytest  # noqa: E402  (after the environment above is set)

# scrypt at the clinic's cost (kapmonitor.store.accounts.PASSWORD_COST) takes about 0.4 s per
# password check or key wrap; tests use a cheap cost. The parameters are stored with every hash
# and wrapped key, so nothing else changes; tests/store/test_accounts.py pins the real cost.
TEST_PASSWORD_COST = (2**10, 8, 1)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from kapmonitor.store import accounts
    from kapmonitor.store.signatures import KdfCost

    monkeypatch.setattr(accounts, "PASSWORD_COST", KdfCost(*TEST_PASSWORD_COST))


@pytest.fixture(scope="session", autouse=True)
def _one_qapplication_first(qapp: object) -> object:
    """The widgets' QApplication exists before any test runs: a command-line test that writes a
    PDF makes a QGuiApplication when none exists (the report needs one to draw text), and every
    widget test after it in the same process then aborted ("Cannot create a QWidget without
    QApplication"), depending only on the order the tests ran in."""
    return qapp


@pytest.fixture(autouse=True)
def _collect_qt_garbage_between_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Free each test's widgets between tests, at a point where no Qt event is being dispatched.

    Why: a widget held only by a reference cycle (a lambda slot, a traceback) is freed whenever
    Python's collector happens to run; in a long suite that was sometimes inside the next test's
    ``QMainWindow.__init__`` (a segfault seen in CI in tests/ui/test_locks.py and, rarely, in other
    UI files). This autouse fixture tears down after qtbot's clean-up: pending deletions are
    delivered, cycles collected, and deletions they post delivered too.
    """
    yield
    uses_qt = {"qtbot", "qapp"} & set(request.fixturenames)
    if not uses_qt or "PySide6.QtWidgets" not in sys.modules:
        return  # a test without widgets leaves none to free (and collecting costs time)
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        return
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
