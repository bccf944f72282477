"""Reading a database on read-only media: a write-protected card, a read-only mount, a CD.

Why: a WAL database opened with ``mode=ro`` still needs its ``-shm`` file (SQLite creates it
beside the database to coordinate readers), so on media where nothing can be created even
``kapmonitor verify`` failed with "unable to open". When neither the file nor its folder can be
written, nothing can change the file while we read it, so SQLite is told so (``immutable=1``):
no locks, no ``-shm``, no WAL. That is only true when no WAL beside it holds committed pages
the main file lacks (a writer killed before the medium was locked): then the pages are read
through ``mode=ro`` if SQLite can use the existing ``-shm``, and otherwise from a private
temporary copy of the database and its WAL (0700 folder, removed when the connection goes),
so the last entries are not silently missing.

"Read-only" is asked of the operating system (``os.access``), which answers for a read-only
mount even for root, and for file modes for everyone else. Root ignores file modes, so a file
made 0400 in a 0500 folder counts as writable for root; it is then opened as usual (for reading
by the commands that only read) and SQLite's own errors say what it cannot do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from kapmonitor.store.file_modes import PRIVATE_FOLDER


def on_read_only_media(path: Path | str) -> bool:
    """Whether the database at ``path`` or its folder cannot be written (so it cannot change)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    return not os.access(target, os.W_OK) or not os.access(folder, os.W_OK)


def unfinished_wal(path: Path | str) -> bool:
    """Whether a ``-wal`` beside the database may hold committed pages the file lacks."""
    wal = Path(f"{path}-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False


def readonly_uri(path: Path | str) -> str:
    """The URI to open ``path`` for reading only: immutable on read-only media with nothing
    unfinished beside it, plain ``mode=ro`` otherwise."""
    base = f"{Path(path).resolve().as_uri()}?mode=ro"
    if on_read_only_media(path) and not unfinished_wal(path):
        return base + "&immutable=1"
    return base


def needs_copy(path: Path | str) -> bool:
    """On read-only media with a WAL to replay but no ``-shm`` SQLite could read: only a copy
    can show the committed pages (recovery must write the ``-shm``)."""
    return (
        on_read_only_media(path) and unfinished_wal(path) and not os.access(f"{path}-shm", os.R_OK)
    )


def private_copy(path: Path | str) -> Path:
    """Copy the database and its WAL into a new private temporary folder; returns the copy.

    Call :func:`remove_with` with the connection opened on it, so the copy goes with it."""
    source = Path(path)
    folder = Path(tempfile.mkdtemp(prefix="kapmonitor-readonly-"))
    os.chmod(folder, PRIVATE_FOLDER)
    copy = folder / source.name
    shutil.copyfile(source, copy)
    with contextlib.suppress(FileNotFoundError):
        shutil.copyfile(f"{source}-wal", f"{copy}-wal")
    return copy


def remove_with(owner: Any, copy: Path) -> None:
    """Delete the private copy's folder when ``owner`` (the connection) is collected or at exit."""
    weakref.finalize(owner, shutil.rmtree, copy.parent, True)


__all__ = [
    "needs_copy",
    "on_read_only_media",
    "private_copy",
    "readonly_uri",
    "remove_with",
    "unfinished_wal",
]
