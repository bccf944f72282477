"""The one storage error type, in its own module so the key slots and the encrypted opener can
raise it without importing the database module that uses them (no import circle).

``kapmonitor.store.database.StoreError`` is this same class, re-exported there.
"""

from __future__ import annotations


class StoreError(Exception):
    """A storage problem in plain language. ``kind`` lets callers react (e.g. offer a backup)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind
