"""What a database path holds, from its first bytes alone: no SQLite, no key, no sqlite-utils.

The window's start asks this before anything heavy is imported, so the unlock dialog (or the
first-run dialog) paints as soon as Qt is up; the store and the bedside load behind it.
"""

from __future__ import annotations

from pathlib import Path

SQLITE_HEADER = b"SQLite format 3\x00"
SLOTS_SUFFIX = ".keys"


def file_header(path: Path) -> bytes:
    """The first 16 bytes of ``path`` (b"" for a missing or empty file)."""
    try:
        with Path(path).open("rb") as fh:
            return fh.read(len(SQLITE_HEADER))
    except (FileNotFoundError, IsADirectoryError):
        return b""


def is_plain(path: Path) -> bool:
    """A plain SQLite file (from before encryption, or a test's): its header is readable."""
    return file_header(path) == SQLITE_HEADER


def looks_encrypted(path: Path) -> bool:
    """A non-empty file whose header is not SQLite's: encrypted (or not a database at all)."""
    head = file_header(path)
    return bool(head) and head != SQLITE_HEADER


def state(db_path: Path) -> str:
    """``"new"`` (no database yet), ``"plain"`` (unencrypted SQLite) or ``"encrypted"``."""
    path = Path(db_path)
    if not path.exists() or path.stat().st_size == 0:
        return "new"
    return "plain" if is_plain(path) else "encrypted"


def slots_path(db_path: Path | str) -> Path:
    """The key file beside the database: ``clinic.sqlite`` -> ``clinic.sqlite.keys``."""
    return Path(f"{db_path}{SLOTS_SUFFIX}")
