"""Backups from the bedside window: at every session end and every few minutes during one.

The copy runs on a worker thread with its own connection (SQLite's backup API), so a large
archive never stalls the window; the result comes back by signal and is shown in the status bar.
A failed backup is said plainly and does not interrupt recording: the live file is unaffected.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from kapmonitor.settings import BACKUP_INTERVAL_MINUTES, BACKUP_KEEP, Settings
from kapmonitor.store import backup
from kapmonitor.store.errors import StoreError


class _Signals(QObject):
    done = Signal(str)
    failed = Signal(str)


class _BackupJob(QRunnable):
    def __init__(self, db_path: Path, keep: int, signals: _Signals) -> None:
        super().__init__()
        self.db_path = db_path
        self.keep = keep
        self.signals = signals

    def run(self) -> None:
        try:
            taken = backup.take_backup(self.db_path, keep=self.keep)
        except StoreError as exc:
            self.signals.failed.emit(str(exc))
            return
        except Exception as exc:  # a worker must never die silently
            self.signals.failed.emit(f"Backup failed: {type(exc).__name__}: {exc}")
            return
        self.signals.done.emit(str(taken.path))


class BackupRunner(QObject):
    """Starts backups; ``done``/``failed`` report on the GUI thread."""

    def __init__(self, db_path: Path, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db_path = Path(db_path)
        self.settings = settings
        self.signals = _Signals(self)
        self.done = self.signals.done
        self.failed = self.signals.failed
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one copy at a time, in order
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.run)

    def run(self) -> None:
        self.pool.start(_BackupJob(self.db_path, self.settings.get(BACKUP_KEEP), self.signals))

    def session_running(self, running: bool) -> None:
        """Back up every few minutes while a session is being recorded (0 turns it off)."""
        minutes = self.settings.get(BACKUP_INTERVAL_MINUTES)
        if running and minutes > 0:
            if not self.timer.isActive():
                self.timer.start(minutes * 60 * 1000)
        else:
            self.timer.stop()

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)
