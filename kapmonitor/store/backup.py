"""Online backups: taken while the app runs, checked after writing, rotated, restorable.

SQLite's backup API copies a consistent snapshot even while the bedside window keeps writing.
A copy counts only once it has passed ``PRAGMA integrity_check`` and the audit-chain ``verify``
in its final place; a copy that fails is deleted and the failure reported, so the list of backups
only ever holds good ones. Restoring never deletes the file it replaces: the damaged file is
renamed beside it for clinic IT.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kapmonitor.store.database import StoreError, explain

SUFFIX = ".sqlite"
STAMP = "%Y%m%d-%H%M%S"


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime  # local time parsed from the name

    @property
    def label(self) -> str:
        return f"{self.taken_at:%Y-%m-%d %H:%M:%S} ({self.path.name})"


def default_folder(db_path: Path) -> Path:
    """Beside the database, in its own folder: the same disk, found by whoever finds the file."""
    return db_path.parent / f"{db_path.stem}-backups"


def take_backup(db_path: Path, folder: Path | None = None, keep: int = 20) -> Backup:
    """Copy ``db_path`` into ``folder`` (default beside it), check the copy, rotate."""
    db_path = Path(db_path)
    folder = Path(folder) if folder else default_folder(db_path)
    if not db_path.exists():
        raise StoreError(f"There is no database at {db_path} to back up.", "missing")
    taken = datetime.now().replace(microsecond=0)
    final = folder / f"{db_path.stem}-{taken.strftime(STAMP)}{SUFFIX}"
    partial = final.with_suffix(".partial")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        os.replace(partial, final)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise explain(exc, final) from exc
    problem = check_backup(final)
    if problem:
        final.unlink(missing_ok=True)
        raise StoreError(
            f"The backup {final} failed its check and was removed: {problem}", "backup"
        )
    rotate(folder, db_path.stem, keep)
    return Backup(final, taken)


def check_backup(path: Path) -> str:
    """'' when the copy is sound (integrity and audit chain); otherwise what is wrong."""
    from kapmonitor.store.verify import verify_database

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    if result != "ok":
        return f"integrity check: {result}"
    try:
        report = verify_database(path)
    except StoreError as exc:
        return str(exc)
    return "" if report.ok else "; ".join(report.problems[:3])


def list_backups(folder: Path, stem: str | None = None) -> list[Backup]:
    """Backups in ``folder``, newest first."""
    found = []
    if not Path(folder).is_dir():
        return []
    for path in Path(folder).glob(f"{stem or '*'}-*{SUFFIX}"):
        parts = path.stem.rsplit("-", 2)
        try:
            taken = datetime.strptime(f"{parts[-2]}-{parts[-1]}", STAMP)
        except (ValueError, IndexError):
            continue
        found.append(Backup(path, taken))
    return sorted(found, key=lambda b: b.taken_at, reverse=True)


def newest_good_backup(db_path: Path, folder: Path | None = None) -> Backup | None:
    db_path = Path(db_path)
    for backup in list_backups(folder or default_folder(db_path), db_path.stem):
        if not check_backup(backup.path):
            return backup
    return None


def rotate(folder: Path, stem: str, keep: int) -> None:
    for old in list_backups(folder, stem)[max(keep, 1) :]:
        old.path.unlink(missing_ok=True)


def restore(backup_path: Path, db_path: Path) -> Path | None:
    """Put a checked backup in place of ``db_path``; returns where the old file was kept."""
    backup_path, db_path = Path(backup_path), Path(db_path)
    problem = check_backup(backup_path)
    if problem:
        raise StoreError(f"{backup_path} cannot be restored: {problem}", "backup")
    kept: Path | None = None
    try:
        if db_path.exists():
            stamp = datetime.now().strftime(STAMP)
            kept = db_path.with_name(f"{db_path.name}.replaced-{stamp}")
            os.replace(db_path, kept)
            for side in ("-wal", "-shm"):
                extra = Path(f"{db_path}{side}")
                if extra.exists():
                    os.replace(extra, Path(f"{kept}{side}"))
        partial = db_path.with_name(db_path.name + ".restoring")
        shutil.copyfile(backup_path, partial)
        os.replace(partial, db_path)
    except OSError as exc:
        raise explain(exc, db_path) from exc
    return kept
