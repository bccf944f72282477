"""Accounts, roles and sign-in: who may record, review, sign and administer.

Passwords are hashed with scrypt (a memory-hard KDF from the standard library) with a random salt
per account, at a cost that makes one guess take about 0.4 s on a clinic laptop (``PASSWORD_COST``;
the parameters are stored with each hash, so a raised cost never strands an old hash, and a
successful sign-in rehashes at the current cost). The plain text is never stored or logged.

User names are compared in one form, :func:`normalize_username` (NFKC, case-folded): ``SuPeR``,
``super`` and a full-width ``ｓｕｐｅｒ`` are one account, for sign-in, lock-out and uniqueness.
Repeated failures slow down: after ``FREE_ATTEMPTS`` failed sign-ins in a row for one name (in
that form), each further attempt must wait twice as long as the last, counted from stored times
so restarting the app does not reset it. A failed sign-in is audited under a keyed digest of the
typed name (``name-digest:…``), never the text, so a password typed into the user-name box is not
written to the append-only trail.

A new password is a passphrase: at least ``MIN_PASSWORD_LENGTH`` characters, not in the bundled
list of common passwords, not containing the user name. Passwords set before this rule keep
working until changed (:meth:`Accounts.weak_passwords` lists the accounts whose password does
not meet it, for the administrator to reset). A short PIN (4–8 digits) may be set for one thing
only: unlocking the idle lock of a session the person already signed in to on this laptop
(:meth:`Accounts.unlock_with_pin`); it is never accepted for sign-in or signing.

Every account has an Ed25519 signing key wrapped by its password (:mod:`.signatures`). Every
sign-in, failure, refusal and account change is an audit entry. Roles are checked here, where
data changes, not only by hiding buttons; the refusal itself is audited.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlite_utils import Database

from kapmonitor.domain.clock import Clock, from_iso, to_iso
from kapmonitor.domain.usernames import normalize_username
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.paths import resources_dir
from kapmonitor.store import anchors, audit, signatures
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import NAME_DIGEST, KeySlots, keys_of
from kapmonitor.store.permissions import AccessRefused, why_not_role
from kapmonitor.store.schema import ROLES
from kapmonitor.store.signatures import KdfCost, KeyRecord

# scrypt cost: 2**17 × 8 × 128 bytes = 128 MiB of memory per guess; 0.40–0.45 s measured on the
# two-core test machine (2**16 took 0.20 s, under the 250 ms the clinic asked for). Tests lower
# it (tests/conftest.py); the stored parameters make every hash verify whatever the current cost.
CLINIC_PASSWORD_COST = KdfCost(n=2**17, r=8, p=1)
PASSWORD_COST = CLINIC_PASSWORD_COST  # the cost new hashes and wrapped keys use
SCRYPT_MAXMEM = 512 * 1024 * 1024
MIN_PASSWORD_LENGTH = 12
PIN_DIGITS = (4, 8)
PIN_TRIES = 5  # wrong PINs before the full password is required again
FREE_ATTEMPTS = 5  # failures allowed before the wait starts
FIRST_WAIT_SECONDS = 30  # then 30 s, 60 s, 120 s … between attempts
MAX_WAIT_SECONDS = 15 * 60
EMERGENCY_ROLE = "clinician"
NAME_DIGEST_PREFIX = "name-digest:"
COMMON_PASSWORDS_FILE = "common-passwords.txt"
# A hash ends "$1" when its password met the passphrase rule at the time it was set or last
# checked; hashes from before the rule end in the digest itself.
POLICY_MARK = "1"


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    emergency: bool = False  # signed in through emergency access


# --- hashing ---------------------------------------------------------------------------------


def hash_secret(secret: str, cost: KdfCost | None = None, meets_policy: bool = True) -> str:
    cost = cost or PASSWORD_COST
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=SCRYPT_MAXMEM
    )
    text = f"scrypt${cost.n}${cost.r}${cost.p}${salt.hex()}${digest.hex()}"
    return text + f"${POLICY_MARK}" if meets_policy else text


def _parts(stored: str) -> tuple[KdfCost, bytes, str, bool]:
    fields = stored.split("$")
    if len(fields) not in (6, 7) or fields[0] != "scrypt":
        raise ValueError("not an scrypt hash")
    cost = KdfCost(int(fields[1]), int(fields[2]), int(fields[3]))
    return cost, bytes.fromhex(fields[4]), fields[5], len(fields) == 7 and fields[6] == POLICY_MARK


def check_secret(secret: str, stored: str) -> bool:
    try:
        cost, salt, digest, _marked = _parts(stored)
        computed = hashlib.scrypt(
            secret.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=SCRYPT_MAXMEM
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed.hex(), digest)


def needs_rehash(stored: str, meets_policy: bool) -> bool:
    """Whether a hash should be replaced after a successful check: older cost, or its policy
    mark no longer says what the password is."""
    try:
        cost, _salt, _digest, marked = _parts(stored)
    except ValueError:
        return False
    return cost != PASSWORD_COST or marked != meets_policy


# --- the passphrase rule ---------------------------------------------------------------------


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list (resources/common-passwords.txt), lower-cased; see its README."""
    path = resources_dir() / COMMON_PASSWORDS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:  # a damaged installation: say so rather than accept any password
        raise StoreError(
            f"The list of common passwords ({path}) is missing or unreadable, so no password "
            "can be checked: reinstall KAP Monitor. Nothing was changed.",
            "installation",
        ) from exc
    return frozenset(line.strip().lower() for line in lines if line and not line.startswith("# "))


def password_problems(password: str, username: str) -> list[str]:
    """Why ``password`` may not be set for ``username`` (empty when it may), in plain words."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(
            f"Use a passphrase of at least {MIN_PASSWORD_LENGTH} characters (a few unrelated "
            f"words, e.g. 'orchid lantern tuesday'); this one has {len(password)}"
        )
    folded = normalize_username(password)
    if password.strip().lower() in common_passwords() or folded in common_passwords():
        problems.append("That password is on the list of common passwords: choose another")
    name = normalize_username(username)
    if name and name in folded:
        problems.append("The password must not contain the user name")
    return problems


def _check_password(password: str, username: str) -> None:
    problems = password_problems(password, username)
    if problems:
        raise ValidationError([FieldError("password", p) for p in problems])


def _check_pin(pin: str) -> None:
    low, high = PIN_DIGITS
    if not (pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
        raise ValidationError(FieldError("pin", f"A PIN is {low} to {high} digits"))


class Accounts:
    """Account operations on one open database; ``clock`` gives audit and lock-out times."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # --- reading -------------------------------------------------------------------------

    def any_users(self) -> bool:
        return self.db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def users(self, active_only: bool = True) -> list[User]:
        where = "WHERE active = 1" if active_only else ""
        rows = self.db.execute(
            f"SELECT username, display_name, role FROM users {where} ORDER BY display_name"
        ).fetchall()
        return [User(*row) for row in rows]

    def find(self, username: str) -> User | None:
        """The active account with this name (compared normalized; see :meth:`_match`)."""
        row = self._match(username)
        return User(row[0], row[1], row[2]) if row else None

    def _candidates(self, username: str, active_only: bool = True) -> list[tuple]:
        """Every account whose name normalizes like ``username``."""
        wanted = normalize_username(username)
        where = "WHERE active = 1" if active_only else ""
        rows = self.db.execute(
            f"SELECT username, display_name, role, password_hash FROM users {where} ORDER BY id"
        ).fetchall()
        return [row for row in rows if normalize_username(row[0]) == wanted]

    def _match(self, username: str) -> tuple | None:
        """One active account for a typed name. A database from before names were compared
        this way may hold two that differ only by case: then only the exact spelling matches
        (the two share one lock-out, and the administrator should deactivate one)."""
        found = self._candidates(username)
        if len(found) == 1:
            return found[0]
        exact = [row for row in found if row[0] == username.strip()]
        return exact[0] if len(exact) == 1 else None

    def name_digest(self, typed: str) -> str:
        """The audit trail's name for a typed user name: a keyed digest, never the text
        (HMAC-SHA256 under the database's name-digest key, first 32 hex digits)."""
        key = keys_of(self.db).subkey(NAME_DIGEST)
        mac = hmac.new(key, normalize_username(typed).encode(), hashlib.sha256).hexdigest()
        return NAME_DIGEST_PREFIX + mac[:32]

    def signing_key(self, username: str) -> KeyRecord | None:
        return signatures.current_key(self.db, username)

    def weak_passwords(self) -> list[str]:
        """Active accounts whose password was set before the passphrase rule and does not
        meet it (known from its hash's mark): the administrator resets these."""
        rows = self.db.execute(
            "SELECT username, password_hash FROM users WHERE active = 1 ORDER BY username"
        ).fetchall()
        weak = []
        for username, stored in rows:
            try:
                marked = _parts(stored)[3]
            except ValueError:
                marked = False
            if not marked:
                weak.append(username)
        return weak

    def sheet(self) -> str:
        """The account sheet the administrator prints or saves and keeps outside the laptop:
        every account with its role and the fingerprint of every signing key it has had, so a
        key planted later (with SQL, or after a password hash was swapped) is not on it."""
        lines = [
            "KAP Monitor account sheet",
            f"Printed {to_iso(self.clock.now())} (UTC). Keep it outside the laptop; compare the",
            "fingerprints with the sign dialog and with `kapmonitor accounts --sheet` later.",
            "",
        ]
        keys: dict[str, list[KeyRecord]] = {}
        for key in signatures.all_keys(self.db):
            keys.setdefault(key.username, []).append(key)
        rows = self.db.execute(
            "SELECT username, display_name, role, active FROM users ORDER BY username"
        ).fetchall()
        for username, display_name, role, active in rows:
            state = "" if active else " (deactivated)"
            lines.append(f"{username} — {display_name} — {role}{state}")
            seen: set[str] = set()
            for key in keys.get(username, []):
                if key.fingerprint in seen:  # the same key wrapped again (own password change)
                    continue
                seen.add(key.fingerprint)
                lines.append(
                    f"    key {signatures.printable(key.fingerprint)}  "
                    f"({key.reason.replace('_', ' ')}, {key.recorded_at})"
                )
            if not keys.get(username):
                lines.append("    no signing key yet (made at the next password entry)")
        return "\n".join(lines) + "\n"

    # --- changing ------------------------------------------------------------------------

    def create_first_administrator(self, username: str, display_name: str, secret: str) -> User:
        """First run only: with no account yet, anyone at the laptop creates the administrator."""
        if self.any_users():
            raise AccessRefused("An administrator already exists: sign in as them to add users")
        return self._create(username, display_name, "administrator", secret, actor=username)

    def create_user(
        self, by: User, username: str, display_name: str, role: str, secret: str
    ) -> User:
        self.require(by, "administrator", action="create an account")
        return self._create(username, display_name, role, secret, actor=by.username)

    def set_secret(
        self, by: User, username: str, new_secret: str, current_secret: str | None = None
    ) -> None:
        """A user changes their own password; an administrator may reset anyone's.

        The signing key follows the password: given the current password (a person changing
        their own), the same key is wrapped again under the new one; otherwise (a reset) the
        old key cannot be opened, so a new key pair is made and recorded — the account sheet
        must be printed again."""
        row = self._match(username)
        if row is None:
            raise ValidationError(FieldError("username", "No active account has that name"))
        target, role = row[0], row[2]
        own = normalize_username(by.username) == normalize_username(target)
        if not own:
            self.require(by, "administrator", action="reset another user's password")
        _check_password(new_secret, target)
        private: Ed25519PrivateKey | None = None
        key = self.signing_key(target)
        if current_secret is not None:
            # The current password is a sign-in: lock-out, audit and key creation as ever.
            self.sign_in(target, current_secret, purpose="change password")
            key = self.signing_key(target)
            if key is not None:
                private = signatures.unwrap(key.wrapped_key, current_secret)
        reason = "password_changed" if private is not None else "password_reset"
        with self.db.atomic():
            self.db.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                [hash_secret(new_secret), target],
            )
            new_key = signatures.store_key(
                self.db,
                target,
                role,
                private or Ed25519PrivateKey.generate(),
                new_secret,
                PASSWORD_COST,
                reason,
                by.username,
                self.clock.now(),
            )
            audit.seal(self.db, by.username, "password_changed", self.clock.now())
        self._anchor_key(new_key)
        slots = KeySlots.of(self.db)  # the database key follows the password (after commit)
        if slots is not None:
            slots.rewrap(keys_of(self.db), target, new_secret)

    def change_role(self, by: User, username: str, role: str) -> None:
        """The one audited path for a role change: administrators only, written to the role
        history every signature is checked against, then to the account."""
        self.require(by, "administrator", action="change a role")
        if role not in ROLES:
            raise ValidationError(FieldError("role", f"Role must be one of {', '.join(ROLES)}"))
        row = self._match(username)
        if row is None:
            raise ValidationError(FieldError("username", "No active account has that name"))
        now = self.clock.now()
        (user_id,) = self.db.execute("SELECT id FROM users WHERE username = ?", [row[0]]).fetchone()
        with self.db.atomic(), audit.authorise(self.db, "role", user_id):
            self._record_role(row[0], role, by.username, now)
            self.db.execute("UPDATE users SET role = ? WHERE username = ?", [role, row[0]])
            audit.seal(self.db, by.username, "role_changed", now)

    def set_pin(self, by: User, secret: str, pin: str) -> None:
        """Set (or replace) the person's own idle-lock PIN; their password confirms it."""
        _check_pin(pin)
        self.sign_in(by.username, secret, purpose="set PIN")  # lock-out and audit as ever
        row = self._match(by.username)
        assert row is not None
        now = self.clock.now()
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO account_pins (username, pin_hash, observed_at, recorded_at, "
                "recorded_by) VALUES (?, ?, ?, ?, ?)",
                [row[0], hash_secret(pin, meets_policy=False), to_iso(now), to_iso(now), row[0]],
            )
            audit.seal(self.db, row[0], "pin_set", now)

    def has_pin(self, username: str) -> bool:
        return self._pin_hash(username) is not None

    def deactivate(self, by: User, username: str) -> None:
        self.require(by, "administrator", action="deactivate an account")
        with self.db.atomic():
            self.db.execute("UPDATE users SET active = 0 WHERE username = ?", [username.strip()])
            audit.seal(self.db, by.username, "account_deactivated", self.clock.now())
        slots = KeySlots.of(self.db)  # a deactivated account no longer opens the database
        if slots is not None:
            slots.remove(username.strip())

    def _create(self, username: str, display_name: str, role: str, secret: str, actor: str) -> User:
        username, display_name = username.strip(), display_name.strip()
        errors = []
        if not 2 <= len(username) <= 40 or not username.replace(".", "").replace("_", "").isalnum():
            errors.append(
                FieldError("username", "User name: 2–40 letters or digits (. and _ allowed)")
            )
        if not display_name:
            errors.append(FieldError("display_name", "Give the printed name (used in signatures)"))
        if role not in ROLES:
            errors.append(FieldError("role", f"Role must be one of {', '.join(ROLES)}"))
        if (
            self._candidates(username, active_only=False)
            or self.db.execute(
                "SELECT 1 FROM users WHERE display_name = ?", [display_name]
            ).fetchone()
        ):
            errors.append(
                FieldError(
                    "username",
                    "That user name or printed name is taken (names differing only in case "
                    "count as the same)",
                )
            )
        errors.extend(FieldError("password", p) for p in password_problems(secret, username))
        if errors:
            raise ValidationError(errors)
        at = self.clock.now()
        now = to_iso(at)
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO users (username, display_name, role, password_hash, observed_at, "
                "recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [username, display_name, role, hash_secret(secret), now, now, actor],
            )
            self._record_role(username, role, actor, at)
            new_key = signatures.store_key(
                self.db,
                username,
                role,
                Ed25519PrivateKey.generate(),
                secret,
                PASSWORD_COST,
                "created",
                actor,
                at,
            )
            audit.seal(self.db, actor, "account_created", at)
        self._anchor_key(new_key)
        slots = KeySlots.of(self.db)  # the new account opens the database with its password
        if slots is not None:
            slots.add(keys_of(self.db), username, secret)
        return User(username, display_name, role)

    def _anchor_key(self, key: KeyRecord) -> None:
        """Append the new key's fingerprint, with the chain head that now covers it, to the
        clinic's anchor log (when one is set): a key planted later is in neither. Never fails
        the account change it follows (the key is already stored and audited)."""
        event = f"signing_key {key.username} {key.fingerprint} {key.reason}"
        with contextlib.suppress(OSError, sqlite3.Error):
            anchors.append_to_log(self.db, event)

    def _record_role(self, username: str, role: str, actor: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO account_roles (username, role, observed_at, recorded_at, recorded_by) "
            "VALUES (?, ?, ?, ?, ?)",
            [username, role, to_iso(at), to_iso(at), actor],
        )

    # --- signing in and permissions ------------------------------------------------------

    def sign_in(self, username: str, secret: str, purpose: str = "sign in") -> User:
        """The user, if the password is right and they are not waiting out a lock-out."""
        user, _key = self._sign_in(username, secret, purpose)
        return user

    def unlock_signing_key(
        self, username: str, secret: str, purpose: str = "signature"
    ) -> tuple[User, KeyRecord, Ed25519PrivateKey]:
        """Sign in and open the account's signing key with the same password.

        A password hash swapped for a known one signs in, but does not open the key, which is
        wrapped by the real password: the signature is refused (and audited)."""
        user, key = self._sign_in(username, secret, purpose)
        if key is None:
            raise signatures.KeyUnavailable("This account has no signing key")
        try:
            private = signatures.unwrap(key.wrapped_key, secret)
        except signatures.KeyUnavailable:
            self._event(user.username, "signing_key_refused", {"purpose": purpose})
            raise
        return user, key, private

    def _sign_in(self, username: str, secret: str, purpose: str) -> tuple[User, KeyRecord | None]:
        digest = self.name_digest(username)
        wait = self.seconds_to_wait(username)
        if wait > 0:
            self._event(digest, "sign_in_refused", {"purpose": purpose})
            raise AccessRefused(
                f"Too many failed attempts for this user name: wait {wait} s before trying again"
            )
        row = self._match(username)
        if row is None or not check_secret(secret, row[3]):
            self._event(digest, "sign_in_failed", {"purpose": purpose})
            raise AccessRefused("Wrong user name or password")
        user = User(row[0], row[1], row[2])
        at = self.clock.now()
        meets = not password_problems(secret, user.username)
        key = self.signing_key(user.username)
        made = key is None
        with self.db.atomic():
            if needs_rehash(row[3], meets):
                self.db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    [hash_secret(secret, meets_policy=meets), user.username],
                )
                audit.seal(self.db, user.username, "password_rehashed", at)
            if key is None:  # an account older than signing keys: its key is made now
                key = signatures.store_key(
                    self.db,
                    user.username,
                    user.role,
                    Ed25519PrivateKey.generate(),
                    secret,
                    PASSWORD_COST,
                    "first_password_entry",
                    user.username,
                    at,
                )
                audit.seal(self.db, user.username, "signing_key_created", at)
            audit.event(self.db, user.username, "sign_in", at, {"purpose": purpose})
        if made and key is not None:
            self._anchor_key(key)
        slots = KeySlots.of(self.db)  # no key slot yet (after a migration or a rekey): one now
        if slots is not None and not slots.has(user.username):
            slots.add(keys_of(self.db), user.username, secret)
        return user, key

    def seconds_to_wait(self, username: str) -> int:
        """Seconds left before another attempt is allowed (0 when allowed now).

        Failures are counted per user name in its compared form: under the name's digest, and
        (for entries from before digests) under the spelling of every account it matches."""
        digest = self.name_digest(username)
        names = [row[0] for row in self._candidates(username, active_only=False)]
        marks = ", ".join("?" * len(names))
        last_success = 0
        if names:
            (last_success,) = self.db.execute(
                f"SELECT coalesce(max(id), 0) FROM audit WHERE actor IN ({marks}) "
                "AND action = 'sign_in'",
                names,
            ).fetchone()
        actors = [digest, *names]
        rows = self.db.execute(
            f"SELECT at FROM audit WHERE actor IN ({', '.join('?' * len(actors))}) "
            "AND action = 'sign_in_failed' AND id > ? ORDER BY id DESC LIMIT 50",
            [*actors, last_success],
        ).fetchall()
        failures = len(rows)
        if failures < FREE_ATTEMPTS:
            return 0
        last_failure = from_iso(rows[0][0])
        wait = min(FIRST_WAIT_SECONDS * 2 ** (failures - FREE_ATTEMPTS), MAX_WAIT_SECONDS)
        left = (last_failure + timedelta(seconds=wait) - self.clock.now()).total_seconds()
        return max(0, int(left + 0.999))

    # --- the idle-lock PIN -----------------------------------------------------------------

    def _pin_hash(self, username: str) -> str | None:
        found = self.db.execute(
            "SELECT pin_hash FROM account_pins WHERE username = ? ORDER BY id DESC LIMIT 1",
            [username],
        ).fetchone()
        return found[0] if found else None

    def pin_tries_left(self, username: str) -> int:
        """Wrong PINs allowed before the password is required (counted since the account's
        last password sign-in, from the audit trail, so a restart does not reset it)."""
        (last_success,) = self.db.execute(
            "SELECT coalesce(max(id), 0) FROM audit WHERE actor = ? AND action = 'sign_in'",
            [username],
        ).fetchone()
        (failed,) = self.db.execute(
            "SELECT count(*) FROM audit WHERE actor = ? AND action = 'pin_failed' AND id > ?",
            [username, last_success],
        ).fetchone()
        return max(0, PIN_TRIES - int(failed))

    def unlock_with_pin(self, user: User, pin: str) -> User:
        """Only for the idle lock of a session ``user`` already signed in to on this laptop
        (the caller checks that): the PIN confirms it is still them. After ``PIN_TRIES`` wrong
        PINs the password is required. Never a sign-in: no ``sign_in`` entry is written."""
        stored = self._pin_hash(user.username)
        if stored is None:
            raise AccessRefused(f"{user.display_name} has no PIN: use the password")
        if self.pin_tries_left(user.username) <= 0:
            raise AccessRefused(
                f"Too many wrong PINs for {user.display_name}: unlock with the password"
            )
        if not check_secret(pin, stored):
            self._event(user.username, "pin_failed", {"purpose": "unlock"})
            left = self.pin_tries_left(user.username)
            more = f"{left} more tries" if left else "now the password is required"
            raise AccessRefused(f"Wrong PIN ({more})")
        self._event(user.username, "pin_unlock", {"purpose": "unlock the bedside window"})
        return user

    # --- other -----------------------------------------------------------------------------

    def emergency_access(self, name: str, reason: str) -> User:
        """Break-glass: record without an account when none can sign in, always audited.

        The person gives their name and the reason; they record as a clinician, marked
        "(emergency access)" on every row, and cannot review, sign or administer.
        """
        name, reason = name.strip(), reason.strip()
        errors = []
        if not name:
            errors.append(FieldError("name", "Give your full name"))
        if len(reason) < 5:
            errors.append(FieldError("reason", "Give the reason for emergency access"))
        if errors:
            raise ValidationError(errors)
        display = f"{name} (emergency access)"
        self._event(display, "emergency_access", {"reason": reason})
        return User(display, display, EMERGENCY_ROLE, emergency=True)

    def require(self, user: User, *roles: str, action: str, session_id: str | None = None) -> None:
        """Refuse (and audit the refusal) unless ``user`` holds one of ``roles``."""
        refused = why_not_role(user, roles, action)
        if refused is None:
            return
        self._event(
            user.username,
            "refused",
            {"attempted": action, "role": user.role, "needs": list(roles)},
            session_id,
        )
        raise refused.error()

    def _event(self, actor: str, action: str, detail: dict, session_id: str | None = None) -> None:
        with self.db.atomic():
            audit.event(self.db, actor, action, self.clock.now(), detail, session_id)
