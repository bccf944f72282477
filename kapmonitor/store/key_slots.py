"""The database's keys: one random key, unlocked by an account's password (a key slot).

This module is the one place keys are defined. ``DatabaseKeys`` is what an unlocked database
carries (:func:`attach`, :func:`keys_of`); every other secret (the audit chain's MAC key, the
digest key for typed user names) is derived from it with HKDF under a named purpose, so nothing
secret is stored in the file's plaintext.

A database opened without keys (a plain file from before encryption, or a unit test's) carries
``PLAIN_KEYS``: its derived keys are public, and ``verify`` says so.

:class:`KeySlots` is the key file beside the database (``clinic.sqlite.keys``): the database key
wrapped once per account (AES-256-GCM under a scrypt key from the account's password, the cost
recorded per slot) plus a recovery slot, so the key can be unwrapped before the file is opened
and is never stored in clear. docs/encryption.md explains the whole scheme.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kapmonitor.domain.usernames import normalize_username
from kapmonitor.store.db_file import slots_path
from kapmonitor.store.errors import StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

# cryptography is imported where a key is derived or unwrapped, not here: reading the key file
# (which accounts can unlock, before the unlock dialog paints) must not wait for it.

KEY_BYTES = 32
_ATTRIBUTE = "kapmonitor_keys"
_PATH_ATTRIBUTE = "kapmonitor_path"

# The purposes keys are derived for; a new purpose is a new name here, never a reused one.
AUDIT_MAC = "audit-mac"
NAME_DIGEST = "name-digest"
SERVER_PASSWORD = "server-password"  # seals the laptop role's password (network.background)


@dataclass(frozen=True)
class DatabaseKeys:
    """``master`` is the SQLCipher raw key; ``encrypted`` is False for a plain file.

    ``root`` (empty until the first ``rekey``) is what purpose keys are derived from when set:
    a rekey gives the file a new ``master`` but keeps the derivation root, so the audit chain
    sealed before the rekey, and the backups, still verify (docs/encryption.md says what this
    does not protect against).
    """

    master: bytes
    encrypted: bool = True
    root: bytes = b""

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256 over the root, else the master key)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=f"kapmonitor/{purpose}".encode(),
        ).derive(self.root or self.master)

    def payload(self) -> bytes:
        """What a key slot wraps: the master key, and the root when it differs."""
        return self.master + self.root

    @staticmethod
    def from_payload(payload: bytes) -> DatabaseKeys:
        return DatabaseKeys(payload[:KEY_BYTES], True, payload[KEY_BYTES:])

    def __repr__(self) -> str:  # never print a key
        return f"DatabaseKeys(encrypted={self.encrypted})"


PLAIN_KEYS = DatabaseKeys(master=bytes(KEY_BYTES), encrypted=False)


def attach(db: Database, keys: DatabaseKeys, path: Path | str | None = None) -> None:
    """Let everything that holds this connection derive its keys (the audit seal, sign-in);
    ``path`` (the database file) lets :meth:`KeySlots.of` find its key file."""
    setattr(db, _ATTRIBUTE, keys)
    if path is not None:
        setattr(db, _PATH_ATTRIBUTE, Path(path))


def keys_of(db: Database) -> DatabaseKeys:
    """The keys the connection was opened with, or ``PLAIN_KEYS`` for a plain file."""
    keys = getattr(db, _ATTRIBUTE, None)
    return keys if isinstance(keys, DatabaseKeys) else PLAIN_KEYS


# --- key slots: the database key wrapped once per account, readable before the file opens ------

_FORMAT = "kapmonitor-key-slots"
_FORMAT_VERSION = 1
_RECOVERY_BYTES = 20  # 160 random bits: 32 base32 letters, written down as 8 groups of 4
_KEY_CHECK = "key-check"


@dataclass(frozen=True)
class KdfCost:
    """scrypt parameters, recorded in each slot so the cost can be raised later.

    The default takes about 0.25-0.5 s and 128 MiB per derivation on the clinic laptop class this
    was measured on (two cores): every guess at a copied key file costs the same.
    """

    n: int
    r: int = 8
    p: int = 1

    def derive(self, secret: bytes, salt: bytes) -> bytes:
        memory = 128 * self.n * self.r * self.p + 2 * 1024 * 1024
        return hashlib.scrypt(
            secret, salt=salt, n=self.n, r=self.r, p=self.p, maxmem=memory, dklen=KEY_BYTES
        )

    def weaker_than(self, other: KdfCost) -> bool:
        return self.n * self.r * self.p < other.n * other.r * other.p


SHIPPED_PASSWORD_COST = KdfCost(n=2**17)
PASSWORD_COST = SHIPPED_PASSWORD_COST  # the cost new slots get (tests lower it)
# The recovery key is 160 random bits, not a password: no guessing to slow down, so a cheap
# derivation is enough (it still binds the slot to the exact key typed).
RECOVERY_COST = KdfCost(n=2**14)
RECOVERY_SLOT = "(recovery)"


@dataclass(frozen=True)
class Slot:
    """One wrapped copy of the database key: AES-256-GCM under a key derived from a secret."""

    cost: KdfCost
    salt: bytes
    nonce: bytes
    wrapped: bytes

    @staticmethod
    def seal(payload: bytes, secret: bytes, name: str, cost: KdfCost) -> Slot:
        """Wrap ``payload`` (:meth:`DatabaseKeys.payload`) under a key derived from ``secret``."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, nonce = os.urandom(16), os.urandom(12)
        wrapping = AESGCM(cost.derive(secret, salt))
        return Slot(cost, salt, nonce, wrapping.encrypt(nonce, payload, _aad(name)))

    def open(self, secret: bytes, name: str) -> bytes | None:
        """The wrapped payload, or None if ``secret`` is not the one this slot was sealed with."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(self.cost.derive(secret, self.salt)).decrypt(
                self.nonce, self.wrapped, _aad(name)
            )
        except InvalidTag:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "kdf": "scrypt",
            "n": self.cost.n,
            "r": self.cost.r,
            "p": self.cost.p,
            "salt": self.salt.hex(),
            "nonce": self.nonce.hex(),
            "wrapped": self.wrapped.hex(),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Slot:
        if data.get("kdf") != "scrypt":
            raise ValueError("unknown key derivation")
        return Slot(
            KdfCost(int(data["n"]), int(data["r"]), int(data["p"])),
            bytes.fromhex(data["salt"]),
            bytes.fromhex(data["nonce"]),
            bytes.fromhex(data["wrapped"]),
        )


def _aad(name: str) -> bytes:
    """Bind a slot to its name: a slot copied under another user's name does not open."""
    return f"kapmonitor key slot v{_FORMAT_VERSION}|{name}".encode()


def new_keys() -> DatabaseKeys:
    """A fresh random database key (the SQLCipher raw key)."""
    return DatabaseKeys(master=secrets.token_bytes(KEY_BYTES), encrypted=True)


def new_recovery_key() -> str:
    """A random recovery key, in groups of four so it can be written down: ``ABCD-EFGH-…``."""
    text = base64.b32encode(secrets.token_bytes(_RECOVERY_BYTES)).decode().rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def _recovery_secret(typed: str) -> bytes:
    """The recovery key as typed, made canonical: case, spaces and dashes do not matter, and the
    digits 0, 1 and 8 (not in the alphabet) are read as the letters O, I and B."""
    text = "".join(ch for ch in typed.upper() if ch.isalnum())
    return text.translate(str.maketrans("018", "OIB")).encode()


def key_check(keys: DatabaseKeys) -> str:
    """A one-way fingerprint of the SQLCipher key, stored in the key file: it tells a key file
    that belongs to another database apart from a wrong password, and stops a slot being added
    for the wrong key. (HKDF output: it reveals nothing of a 256-bit random key.)"""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return (
        HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=_KEY_CHECK.encode())
        .derive(keys.master)
        .hex()
    )


def _refuse(message: str, kind: str) -> StoreError:
    return StoreError(message, kind)


WRONG_PASSWORD = (
    "Wrong user name or password for this database. (An account whose password was reset by "
    "`kapmonitor rekey` must have it set again by the administrator.)"
)


class KeySlots:
    """The key file of one database: a wrapped copy of its key per account, and the recovery slot.

    The file is JSON (wrapped keys, salts and costs only: nothing that opens the database without
    a password), mode 0600, rewritten atomically (a temporary file, fsync, rename), and re-read
    before every change so two programs adding accounts do not undo each other's slot.
    """

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.check = ""
        self.slots: dict[str, Slot] = {}
        self.recovery: Slot | None = None
        if data:
            self._read(data)

    # --- reading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, db_path: Path | str) -> KeySlots:
        """The key file of the database at ``db_path`` (empty if there is none yet)."""
        slots = cls(slots_path(db_path))
        slots.reload()
        return slots

    @classmethod
    def of(cls, db: Database) -> KeySlots | None:
        """The key file of an open, encrypted database; None for a plain one (nothing to wrap)."""
        keys = keys_of(db)
        path = getattr(db, _PATH_ATTRIBUTE, None)
        if not keys.encrypted or path is None:
            return None
        return cls.load(path)

    def reload(self) -> None:
        """Read the file again (another program may have added a slot)."""
        self.check, self.slots, self.recovery = "", {}, None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            why = exc.strerror or exc
            raise _refuse(f"The key file {self.path} cannot be read ({why}).", "keys") from exc
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT or data.get("version") != _FORMAT_VERSION:
                raise ValueError("not a key file")
            self._read(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _refuse(
                f"The key file {self.path} is damaged or is not a KAP Monitor key file. Do not "
                "delete it: restore it from a copy (kapmonitor backup keeps one beside the "
                "backups).",
                "keys",
            ) from exc

    def _read(self, data: dict[str, Any]) -> None:
        self.check = str(data["key_check"])
        self.slots = {name: Slot.from_json(slot) for name, slot in data["slots"].items()}
        recovery = data.get("recovery")
        self.recovery = Slot.from_json(recovery) if recovery else None

    @property
    def exists(self) -> bool:
        return bool(self.check)

    def names(self) -> list[str]:
        """The (normalised) user names that can unlock the database."""
        return sorted(self.slots)

    def has(self, username: str) -> bool:
        return normalize_username(username) in self.slots

    # --- unlocking ---------------------------------------------------------------------------

    def unlock(self, username: str, password: str) -> DatabaseKeys:
        """The database key, unwrapped with this account's password; a plain StoreError if not.

        An unknown name costs the same derivation as a known one, so timing does not say which
        accounts exist.
        """
        self._require_file()
        name = normalize_username(username)
        slot = self.slots.get(name)
        if slot is None:
            Slot.seal(bytes(KEY_BYTES), password.encode(), name, PASSWORD_COST)  # same cost
            raise _refuse(WRONG_PASSWORD, "wrong_password")
        master = slot.open(password.encode(), name)
        if master is None:
            raise _refuse(WRONG_PASSWORD, "wrong_password")
        keys = self._checked(master)
        if slot.cost.weaker_than(PASSWORD_COST):  # raise an old slot's cost while we can
            self.rewrap(keys, username, password)
        return keys

    def unlock_with_recovery(self, recovery_key: str) -> DatabaseKeys:
        """The database key from the recovery key shown once at first run."""
        self._require_file()
        master = (
            self.recovery.open(_recovery_secret(recovery_key), RECOVERY_SLOT)
            if self.recovery is not None
            else None
        )
        if master is None:
            raise _refuse(
                "That recovery key does not unlock this database (check each group of four; "
                "a newer key replaces it after `kapmonitor rekey`).",
                "wrong_password",
            )
        return self._checked(master)

    def _require_file(self) -> None:
        if not self.exists:
            raise _refuse(
                f"The key file {self.path} is missing, so the encrypted database beside it cannot "
                "be unlocked. Put the key file back (kapmonitor backup keeps a copy beside the "
                "backups); nothing was changed.",
                "keys",
            )

    def _checked(self, payload: bytes) -> DatabaseKeys:
        keys = DatabaseKeys.from_payload(payload)
        if key_check(keys) != self.check:
            raise _refuse(
                f"The key file {self.path} does not belong to this database.", "wrong_password"
            )
        return keys

    # --- changing ----------------------------------------------------------------------------

    def add(self, keys: DatabaseKeys, username: str, password: str) -> None:
        """Let ``username`` unlock the database with ``password`` (replaces an older slot).

        Nothing happens for a plain database: there is no key to wrap.
        """
        if not keys.encrypted:
            return
        name = normalize_username(username)
        slot = Slot.seal(keys.payload(), password.encode(), name, PASSWORD_COST)
        self._change(keys, lambda: self.slots.__setitem__(name, slot))

    def rewrap(self, keys: DatabaseKeys, username: str, new_password: str) -> None:
        """After a password change or reset: the slot opens with the new password only."""
        self.add(keys, username, new_password)

    def remove(self, username: str) -> None:
        """Revoke an account's slot (deactivated, or left out of a rekey)."""
        name = normalize_username(username)
        self.reload()
        if name in self.slots:
            del self.slots[name]
            self.save()

    def set_recovery(self, keys: DatabaseKeys) -> str:
        """A new recovery key for ``keys``; returned once to be shown, never stored in clear."""
        recovery = new_recovery_key()
        slot = Slot.seal(keys.payload(), _recovery_secret(recovery), RECOVERY_SLOT, RECOVERY_COST)
        self._change(keys, lambda: setattr(self, "recovery", slot))
        return recovery

    def _change(self, keys: DatabaseKeys, apply: Callable[[], None]) -> None:
        self.reload()
        if self.exists and self.check != key_check(keys):
            raise _refuse(f"The key file {self.path} belongs to another database key.", "keys")
        self.check = key_check(keys)
        apply()
        self.save()

    def replace_all(
        self, keys: DatabaseKeys, slots: dict[str, Slot], recovery: Slot | None
    ) -> None:
        """Rekey: every slot at once, for a new key (the old key's slots all go)."""
        self.check, self.slots, self.recovery = key_check(keys), dict(slots), recovery
        self.save()

    def save(self) -> None:
        """Write the file atomically with mode 0600: a crash leaves the old file or the new one."""
        data = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "key_check": self.check,
            "slots": {name: slot.to_json() for name, slot in sorted(self.slots.items())},
            "recovery": self.recovery.to_json() if self.recovery else None,
        }
        write_private(self.path, (json.dumps(data, indent=1) + "\n").encode())


def write_private(path: Path, content: bytes) -> None:
    """``content`` into ``path`` readable by its owner only, atomically and durably."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # Windows
        fd = os.open(partial, flags, 0o600)
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise _refuse(
            f"Cannot write the key file {path} ({exc.strerror or exc}); nothing was changed.",
            "keys",
        ) from exc


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); Windows has no directory handles to sync."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
