"""The database's keys: one random key, unlocked by an account's password (a key slot).

This module is the one place keys are defined. ``DatabaseKeys`` is what an unlocked database
carries (:func:`attach`, :func:`keys_of`); every other secret (the audit chain's MAC key, the
digest key for typed user names) is derived from it with HKDF under a named purpose, so nothing
secret is stored in the file's plaintext.

A database opened without keys (a plain file from before encryption, or a unit test's) carries
``PLAIN_KEYS``: its derived keys are public, and ``verify`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlite_utils import Database

KEY_BYTES = 32
_ATTRIBUTE = "kapmonitor_keys"

# The purposes keys are derived for; a new purpose is a new name here, never a reused one.
AUDIT_MAC = "audit-mac"
NAME_DIGEST = "name-digest"


@dataclass(frozen=True)
class DatabaseKeys:
    """``master`` is the SQLCipher raw key; ``encrypted`` is False for a plain file."""

    master: bytes
    encrypted: bool = True

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256 over the master key)."""
        return HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=f"kapmonitor/{purpose}".encode(),
        ).derive(self.master)

    def __repr__(self) -> str:  # never print a key
        return f"DatabaseKeys(encrypted={self.encrypted})"


PLAIN_KEYS = DatabaseKeys(master=bytes(KEY_BYTES), encrypted=False)


def attach(db: Database, keys: DatabaseKeys) -> None:
    """Let everything that holds this connection derive its keys (the audit seal, sign-in)."""
    setattr(db, _ATTRIBUTE, keys)


def keys_of(db: Database) -> DatabaseKeys:
    """The keys the connection was opened with, or ``PLAIN_KEYS`` for a plain file."""
    keys = getattr(db, _ATTRIBUTE, None)
    return keys if isinstance(keys, DatabaseKeys) else PLAIN_KEYS
