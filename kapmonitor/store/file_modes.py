"""Who may read the files KAP Monitor writes: only the account that runs it.

Why: under the usual umask (022) every file a program creates is world-readable (0644) and every
folder world-listable (0755), so on a shared clinic laptop any other account could copy the
database, its WAL, the backups and every CSV, PDF, FHIR or JSON export. Here the data folder is
0700 and every file holding protected health information is 0600, whatever the umask: files are
created with ``os.open(..., 0o600)`` (the umask can only remove bits, never add them), so no byte
is ever written while the file is readable by others; a file that already exists (written by an
older version, or copied in) is narrowed when it is opened.

On Windows POSIX modes mean little: ``chmod`` only sets the read-only flag. There the protection
is the user's profile folder, whose ACL admits only that user, SYSTEM and administrators; the
database lives there by default (``platformdirs``). A database or export placed elsewhere (a
shared folder) has that folder's ACL: nothing here changes it.

What this does not cover: root (or an administrator) reads everything; a copy made by the user
(to a USB stick, by mail) keeps whatever mode the copy gets; and the modes protect the file on a
running system, not a stolen disk (that is what encryption at rest is for).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path
from typing import IO, Any

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
#: Files SQLite keeps beside the database while it is open (and the key-slot sidecar). SQLite
#: creates ``-wal``/``-shm``/``-journal`` with the database file's own mode, so a 0600 database
#: gets 0600 companions; they are narrowed on open as well, for files made by an older version.
SIDECARS = ("-wal", "-shm", "-journal", ".keys")
POSIX = os.name == "posix" and sys.platform != "cygwin"


def _narrow(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` if it is ours and wider; quiet when it cannot be (read-only
    media, someone else's file): narrowing is a protection, not a reason to refuse reading."""
    if not POSIX:
        return
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if current & ~mode:
        with contextlib.suppress(OSError):
            os.chmod(path, current & mode)


def private_folder(path: Path | str) -> Path:
    """The folder ``path``, created 0700 if missing (missing parents too). A folder that already
    exists is left as it is: one the user named (``--out ~/Desktop``) may be shared on purpose;
    see :func:`narrow_folder` for the app's own. Returns the path."""
    folder = Path(path)
    if not folder.exists():
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask (and parents=True gives parents the default):
        # narrow exactly the folders made here, never a parent that was already there.
        for made in missing:
            _narrow(made, PRIVATE_FOLDER)
    return folder


def narrow_folder(path: Path | str) -> Path:
    """Narrow an existing folder to 0700 (the app's own data folder, a staging folder)."""
    _narrow(Path(path), PRIVATE_FOLDER)
    return Path(path)


def private_file(path: Path | str) -> Path:
    """Narrow an existing file to 0600 (no-op when missing, or not narrowable). Returns it."""
    _narrow(Path(path), PRIVATE_FILE)
    return Path(path)


def create_private(path: Path | str) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist (narrowing it if it does), so a
    program that opens it later by name (SQLite, Qt's PDF writer) writes into a private file."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    os.close(fd)
    return private_file(target)


def open_private(path: Path | str, mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created 0600 before any byte is written.

    Modes ``w``, ``a`` and ``x`` (text or binary, with or without ``+``) are accepted; an
    existing file is narrowed to 0600 before it is truncated or appended to."""
    if not mode or mode[0] not in "wax":
        raise ValueError(f"open_private writes; mode {mode!r} does not")
    flags = os.O_WRONLY | os.O_CREAT
    if "+" in mode:
        flags = os.O_RDWR | os.O_CREAT
    if mode[0] == "w":
        flags |= os.O_TRUNC
    elif mode[0] == "a":
        flags |= os.O_APPEND
    else:
        flags |= os.O_EXCL
    flags |= getattr(os, "O_BINARY", 0) if "b" in mode else 0
    target = Path(path)
    if mode[0] != "x":
        private_file(target)  # before truncating an old, wider file
    fd = os.open(target, flags, PRIVATE_FILE)
    try:
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def private_database(db_path: Path | str) -> None:
    """The database file and the files beside it (WAL, shared memory, journal, key slots)
    narrowed to 0600: called when a database is opened, so a file written by an older version
    (0644) is private from the next start on."""
    path = Path(db_path)
    for candidate in (path, *(path.with_name(path.name + s) for s in SIDECARS)):
        private_file(candidate)


def prepare_database_file(db_path: Path | str) -> Path:
    """Before SQLite opens ``db_path`` for writing: a missing folder is created 0700, the app's
    own data folder is narrowed to 0700, a missing database file is created empty with mode
    0600 (SQLite then gives its ``-wal``/``-shm`` the same mode) and an existing one and its
    companions are narrowed to 0600.

    A folder the user named that already existed (``--db /tmp/x.sqlite``) is left as it is: it
    may be shared on purpose, and the files inside it are private anyway."""
    from kapmonitor.paths import user_data_dir

    path = Path(db_path)
    folder = path.parent
    if not folder.exists():
        private_folder(folder)
    elif _same(folder, user_data_dir()):
        narrow_folder(folder)
    if not path.exists():
        create_private(path)
    private_database(path)
    return path


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def private_tree(root: Path | str) -> list[Path]:
    """Narrow every file under ``root`` to 0600 and every folder to 0700; returns the files.

    For an export's staged files written by a library that creates files itself."""
    top = Path(root)
    narrow_folder(top)
    found: list[Path] = []
    for folder, dirs, files in os.walk(top):
        for name in dirs:
            narrow_folder(Path(folder) / name)
        for name in files:
            private_file(Path(folder) / name)
            found.append(Path(folder) / name)
    return found


def mode_of(path: Path | str) -> int:
    """The permission bits of ``path`` (for tests and ``verify``)."""
    return stat.S_IMODE(os.stat(path).st_mode)


__all__ = [
    "PRIVATE_FILE",
    "PRIVATE_FOLDER",
    "create_private",
    "mode_of",
    "narrow_folder",
    "open_private",
    "prepare_database_file",
    "private_database",
    "private_file",
    "private_folder",
    "private_tree",
]
