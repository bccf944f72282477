"""Online backups: taken while the app runs, checked after writing, rotated, restorable.

SQLite's backup API copies a consistent snapshot even while the bedside window keeps writing.
A copy counts only once it has passed ``PRAGMA integrity_check`` and the audit-chain ``verify``
in its final place; a copy that fails is deleted and the failure reported, so the list of backups
only ever holds good ones. Restoring never deletes the file it replaces: the damaged file is
renamed beside it for clinic IT. Nor does it run while another process has the file open: that
process would go on writing into the renamed file, and whatever it wrote (a supervisor's
signature, say) would vanish from the live one.

An encrypted database's backup is encrypted with the same key (SQLCipher's backup copies the
encrypted pages as they are), and the database's key file is copied beside the backups, so a
lost key file does not take the backups with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kapmonitor.store import encryption
from kapmonitor.store.database import StoreError, connect_readonly, explain
from kapmonitor.store.file_modes import create_private, private_folder

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
    """Copy ``db_path`` into ``folder`` (default beside it), check the copy, rotate.

    A failure names the side that failed: the database (kind as :func:`explain` says) or the
    backup folder (kind ``"backup_folder"``), so the command line can blame ``--db`` or ``--out``.
    """
    db_path = Path(db_path)
    folder = Path(folder) if folder else default_folder(db_path)
    if not db_path.exists():
        raise StoreError(f"There is no database at {db_path} to back up.", "missing")
    if db_path.is_dir():
        raise StoreError(f"{db_path} is a folder, not a database file.", "unopenable")
    taken = datetime.now().replace(microsecond=0)
    final = folder / f"{db_path.stem}-{taken.strftime(STAMP)}{SUFFIX}"
    partial = final.with_suffix(".partial")
    try:
        source = connect_readonly(db_path).conn  # keyed when the database is encrypted
    except sqlite3.Error as exc:
        raise explain(exc, db_path) from exc
    try:
        source.execute("PRAGMA schema_version").fetchone()  # a damaged source fails here
    except sqlite3.Error as exc:
        source.close()
        raise explain(exc, db_path) from exc
    try:
        try:
            private_folder(folder)  # 0700 when made here
        except OSError as exc:
            raise folder_error(folder, exc) from exc
        create_private(partial)  # 0600 before SQLite writes a byte of the copy
        target = encryption.copy_target(source, partial)  # the same key as the source
        try:
            source.backup(target)
            # The copy in rollback-journal mode: a copy keeps the source's WAL mode, and every
            # read-only open of a WAL file (the check below, a later restore's) leaves a -wal
            # and -shm beside it in the backups folder. The app turns WAL back on when it opens
            # a restored file (database.connect).
            target.execute("PRAGMA journal_mode = DELETE").fetchone()
        finally:
            target.close()
        os.replace(partial, final)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        if explain(exc, db_path).kind == "corrupt":
            raise explain(exc, db_path) from exc
        raise folder_error(folder, exc) from exc
    finally:
        source.close()
    problem = check_backup(final)
    if problem:
        final.unlink(missing_ok=True)
        raise StoreError(
            f"The backup {final} failed its check and was removed: {problem}", "backup"
        )
    _anchor(final)
    rotate(folder, db_path.stem, keep)
    encryption.copy_key_file(db_path, folder)
    return Backup(final, taken)


def _anchor(final: Path) -> None:
    """The copy's chain head beside it (``<backup>.anchor``) and in the anchor log, so a later
    file can be held against it (``kapmonitor verify --anchors``). A head that cannot be
    written does not undo a good backup."""
    from kapmonitor.store import anchors

    with leaves_nothing(final):
        try:
            copy = connect_readonly(final)
        except (sqlite3.Error, StoreError):
            return
        try:
            anchors.note(copy, "backup", final)
        finally:
            copy.conn.close()


def folder_error(folder: Path, exc: BaseException) -> StoreError:
    """The backup folder cannot take the copy: say which folder and why, in plain words."""
    if isinstance(exc, FileExistsError) or (folder.exists() and not folder.is_dir()):
        why = "it is a file, not a folder"
    elif isinstance(exc, NotADirectoryError):
        why = "part of its path is a file, not a folder"
    elif isinstance(exc, PermissionError) or "readonly" in str(exc) or "read-only" in str(exc):
        why = "permission denied"
    elif isinstance(exc, FileNotFoundError) or "unable to open" in str(exc):
        why = "it cannot be created there"
    elif "full" in str(exc).lower() or "no space" in str(exc).lower():
        why = "the disk is full"
    else:
        why = getattr(exc, "strerror", None) or str(exc)
    return StoreError(
        f"Cannot write a backup into the folder {folder} ({why}); the database is unchanged.",
        "backup_folder",
    )


#: What SQLite may create beside a database file it opens.
BESIDE = ("-wal", "-shm", "-journal")


@contextlib.contextmanager
def leaves_nothing(path: Path) -> Iterator[None]:
    """Remove what reading ``path`` made beside it: a ``-wal`` (empty: a reader writes none)
    and ``-shm`` that were not there before. Backups taken before this version are in WAL mode,
    and SQLite's read-only open of one creates both and, read-only, cannot delete them; the
    backups folder filled with them at every check. Files that were there before (a crashed
    writer's WAL) are left as they were."""
    before = {side for side in BESIDE if Path(f"{path}{side}").exists()}
    try:
        yield
    finally:
        made = [Path(f"{path}{side}") for side in BESIDE if side not in before]
        wal = Path(f"{path}-wal")
        with contextlib.suppress(OSError):
            written = "-wal" not in before and wal.exists() and wal.stat().st_size > 0
            if not written:  # a WAL with frames: someone wrote meanwhile, not ours to remove
                for extra in made:
                    extra.unlink(missing_ok=True)


def check_backup(path: Path) -> str:
    """'' when the copy is sound (integrity and audit chain); otherwise what is wrong. Checking
    leaves nothing beside the copy (:func:`leaves_nothing`) and never changes it."""
    with leaves_nothing(Path(path)):
        return _check(Path(path))


def _check(path: Path) -> str:
    from kapmonitor.store.verify import verify_database

    try:
        conn = connect_readonly(path).conn
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except (sqlite3.Error, StoreError) as exc:
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


@dataclass(frozen=True)
class Holder:
    """Another process that has the database (or its ``-wal``/``-shm``) open."""

    pid: int
    name: str  # the program's short name, e.g. "kapmonitor" or "sqlite3"


def holders(db_path: Path) -> list[Holder]:
    """Every other process with ``db_path``, its ``-wal`` or ``-shm`` open, found on Linux
    through ``/proc/<pid>/fd``; elsewhere (or where ``/proc`` is hidden) the list is empty.

    Files are compared by device and inode, so a relative path or a symlink finds the same file,
    and nothing is opened or locked: asking must not change the file it asks about (an SQLite
    probe would checkpoint a crashed writer's WAL into it).
    """
    proc = Path("/proc")
    if not sys.platform.startswith("linux") or not proc.is_dir():
        return []
    wanted = set()
    for path in (Path(db_path), Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        with contextlib.suppress(OSError):
            st = path.stat()
            wanted.add((st.st_dev, st.st_ino))
    if not wanted:
        return []
    found = []
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                st = fd.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in wanted:
                try:
                    name = (entry / "comm").read_text().strip()
                except OSError:
                    name = "?"
                found.append(Holder(int(entry.name), name))
                break
    return sorted(found, key=lambda h: h.pid)


def in_use_refusal(db_path: Path) -> str:
    """'' when no other process has ``db_path`` open; otherwise the sentence refusing a restore."""
    found = holders(db_path)
    if not found:
        return ""
    who = ", ".join(f"process {h.pid} ({h.name})" for h in found)
    return (
        f"{db_path} is open in another program ({who}). Close it first, then restore again: "
        "whatever it writes after the restore would be lost. Nothing was changed."
    )


def restore(backup_path: Path, db_path: Path) -> Path | None:
    """Put a checked backup in place of ``db_path``; returns where the old file was kept.

    Refused (:class:`StoreError` kind ``"in_use"``) while another process has ``db_path`` open.
    The caller's own connections are its business: close them first.
    """
    backup_path, db_path = Path(backup_path), Path(db_path)
    refusal = in_use_refusal(db_path)
    if refusal:
        raise StoreError(refusal, "in_use")
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
        create_private(partial)  # copyfile keeps the mode of an existing target: 0600
        shutil.copyfile(backup_path, partial)
        os.replace(partial, db_path)
    except OSError as exc:
        raise explain(exc, db_path) from exc
    return kept
