"""Accounts, roles and sign-in: who may record, review, sign and administer.

Passwords (or PINs) are hashed with scrypt, a memory-hard KDF from the standard library, with a
random salt per account; the plain text is never stored or logged. Repeated failures slow down:
after ``FREE_ATTEMPTS`` failed sign-ins in a row, each further attempt must wait twice as long as
the last, counted from stored times so restarting the app does not reset it. Every sign-in,
failure, refusal and account change is an audit entry. Roles are checked here, where data
changes, not only by hiding buttons; the refusal itself is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from kapmonitor.domain.clock import Clock, from_iso, to_iso
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.store import audit
from kapmonitor.store.permissions import AccessRefused, why_not_role
from kapmonitor.store.schema import ROLES

# scrypt cost: 2**14 × 8 × 128 bytes = 16 MiB of memory per guess; about 50 ms here.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
MIN_SECRET_LENGTH = 6  # a six-digit PIN is the shortest accepted
FREE_ATTEMPTS = 5  # failures allowed before the wait starts
FIRST_WAIT_SECONDS = 30  # then 30 s, 60 s, 120 s … between attempts
MAX_WAIT_SECONDS = 15 * 60
EMERGENCY_ROLE = "clinician"


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    emergency: bool = False  # signed in through emergency access


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        _scheme, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(
            secret.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed.hex(), digest)


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
        row = self.db.execute(
            "SELECT username, display_name, role FROM users WHERE username = ? AND active = 1",
            [username.strip()],
        ).fetchone()
        return User(*row) if row else None

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

    def set_secret(self, by: User, username: str, new_secret: str) -> None:
        """A user changes their own password; an administrator may reset anyone's."""
        if by.username.lower() != username.strip().lower():
            self.require(by, "administrator", action="reset another user's password")
        _check_secret_strength(new_secret)
        with self.db.atomic():
            self.db.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                [hash_secret(new_secret), username.strip()],
            )
            audit.seal(self.db, by.username, "password_changed", self.clock.now())

    def deactivate(self, by: User, username: str) -> None:
        self.require(by, "administrator", action="deactivate an account")
        with self.db.atomic():
            self.db.execute("UPDATE users SET active = 0 WHERE username = ?", [username.strip()])
            audit.seal(self.db, by.username, "account_deactivated", self.clock.now())

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
        if self.db.execute(
            "SELECT 1 FROM users WHERE username = ? OR display_name = ?", [username, display_name]
        ).fetchone():
            errors.append(FieldError("username", "That user name or printed name is taken"))
        try:
            _check_secret_strength(secret)
        except ValidationError as exc:
            errors.extend(exc.errors)
        if errors:
            raise ValidationError(errors)
        now = to_iso(self.clock.now())
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO users (username, display_name, role, password_hash, observed_at, "
                "recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [username, display_name, role, hash_secret(secret), now, now, actor],
            )
            audit.seal(self.db, actor, "account_created", self.clock.now())
        return User(username, display_name, role)

    # --- signing in and permissions ------------------------------------------------------

    def sign_in(self, username: str, secret: str, purpose: str = "sign in") -> User:
        """The user, if the password is right and they are not waiting out a lock-out."""
        username = username.strip()
        wait = self.seconds_to_wait(username)
        if wait > 0:
            self._event(username or "unknown", "sign_in_refused", {"purpose": purpose})
            raise AccessRefused(
                f"Too many failed attempts for {username}: wait {wait} s before trying again"
            )
        row = self.db.execute(
            "SELECT username, display_name, role, password_hash FROM users "
            "WHERE username = ? AND active = 1",
            [username],
        ).fetchone()
        if row is None or not check_secret(secret, row[3]):
            self._event(username or "unknown", "sign_in_failed", {"purpose": purpose})
            raise AccessRefused("Wrong user name or password")
        user = User(row[0], row[1], row[2])
        self._event(user.username, "sign_in", {"purpose": purpose})
        return user

    def seconds_to_wait(self, username: str) -> int:
        """Seconds left before another attempt is allowed (0 when allowed now)."""
        rows = self.db.execute(
            "SELECT action, at FROM audit WHERE actor = ? AND action IN "
            "('sign_in', 'sign_in_failed') ORDER BY id DESC LIMIT 50",
            [username.strip()],
        ).fetchall()
        failures = 0
        last_failure: datetime | None = None
        for action, at in rows:
            if action == "sign_in":
                break
            failures += 1
            last_failure = last_failure or from_iso(at)
        if failures < FREE_ATTEMPTS or last_failure is None:
            return 0
        wait = min(FIRST_WAIT_SECONDS * 2 ** (failures - FREE_ATTEMPTS), MAX_WAIT_SECONDS)
        left = (last_failure + timedelta(seconds=wait) - self.clock.now()).total_seconds()
        return max(0, int(left + 0.999))

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


def _check_secret_strength(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(
            FieldError(
                "password", f"Use a password or PIN of at least {MIN_SECRET_LENGTH} characters"
            )
        )
