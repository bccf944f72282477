"""``kapmonitor server init`` and ``server add-laptop``: the central schema and the laptops' roles.

Run by the clinic's database administrator with a role that owns the database and may create
roles. ``init`` applies the server schema's versions (:mod:`server_schema`); ``add-laptop`` makes
a login role for one laptop, a member of ``kap_laptop`` (INSERT, and SELECT of its own rows, on
the mirrored tables: nothing else), with a random password that is handed over once and never
logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kapmonitor.network import server_schema
from kapmonitor.network.connection import NetworkError, connect, explain

LAPTOP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


@dataclass(frozen=True)
class AddedLaptop:
    laptop_id: str
    role: str
    password: str
    url: str  # the laptop's connection URL, without the password

    def __repr__(self) -> str:  # the password never reaches a log line by accident
        return f"AddedLaptop(laptop_id={self.laptop_id!r}, role={self.role!r}, url={self.url!r})"


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def role_name(database: str, laptop: str) -> str:
    """The laptop's login role: database and laptop name, so two archives on one server (two
    clinics) never share a laptop role."""
    return f"kap_{database}_{laptop}".replace("-", "_")[:63]


SCRAM_ITERATIONS = 4096  # PostgreSQL's default for scram-sha-256


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), made here so
    the plain password never travels to the server, where a ``log_statement`` setting would
    write a ``CREATE ROLE … PASSWORD '…'`` into its log. ``password`` is ASCII (ours are)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def _create_login_role(
    conn: Any, role: str, password: str, database: str, group: str, who: str
) -> None:
    """A login role in ``group`` that may connect to ``database``, with a SCRAM verifier made
    here (the password never reaches the server); refused if ``role`` exists already."""
    from psycopg import sql

    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
        raise NetworkError(f"The {who} already has a role ({role}).", "exists")
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(role), sql.Literal(scram_verifier(password)), sql.Identifier(group)
        )
    )
    conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(database), sql.Identifier(role)
        )
    )


def role_url(url: str, role: str) -> str:
    """``url`` with ``role`` as its user and no password: what the laptop or reviewer uses."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def init_server(url: str) -> list[int]:
    """Create (or bring up to date) the central schema at ``url``; returns versions applied."""
    import psycopg

    conn = connect(url)
    try:
        return server_schema.apply(conn)
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        conn.close()


def add_laptop(url: str, laptop: str) -> AddedLaptop:
    """Register ``laptop`` and create its login role with a new random password."""
    import psycopg

    if not LAPTOP_NAME.match(laptop):
        raise NetworkError(
            f"{laptop!r} is not a laptop name: use 1 to 31 lower-case letters, digits and "
            "hyphens, starting with a letter or digit (e.g. room-2).",
            "name",
        )
    database = database_name(url)
    role = role_name(database, laptop)
    password = secrets.token_urlsafe(24)
    conn = connect(url)
    try:
        with conn.transaction():
            _create_login_role(conn, role, password, database, "kap_laptop", f"laptop {laptop}")
            conn.execute(
                "INSERT INTO kap.laptops (laptop_id, role_name) VALUES (%s, %s)", [laptop, role]
            )
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        conn.close()
    return AddedLaptop(laptop, role, password, role_url(url, role))


@dataclass(frozen=True)
class AddedReviewer:
    role: str
    printed_name: str
    role_title: str
    fingerprint: str
    password: str
    url: str  # the reviewer's connection URL, without the password

    def __repr__(self) -> str:  # the password never reaches a log line by accident
        return (
            f"AddedReviewer(role={self.role!r}, printed_name={self.printed_name!r}, "
            f"fingerprint={self.fingerprint[:16]!r}…, url={self.url!r})"
        )


REVIEWER_TITLES = ("supervisor", "administrator")


def reviewer_role_name(database: str, name: str) -> str:
    """A reviewer's login role: ``kap_<database>_rv_<name>`` (never a laptop's name)."""
    return f"kap_{database}_rv_{name}".replace("-", "_")[:63]


def add_reviewer(url: str, name: str, printed_name: str, role_title: str) -> AddedReviewer:
    """Register a supervisor for review at the centre: a login role in ``kap_reviewer`` (its
    SCRAM verifier made here, so the password never reaches the server), and a ``kap.reviewers``
    row with a new Ed25519 key pair made here. The private key leaves this machine only wrapped
    under the same random password (scrypt + AES-256-GCM, as a laptop account's key), so the
    server holds no key it can sign with; the password is handed over once."""
    import psycopg
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kapmonitor.store import accounts, signatures

    if not LAPTOP_NAME.match(name):
        raise NetworkError(
            f"{name!r} is not a reviewer name: use 1 to 31 lower-case letters, digits and "
            "hyphens, starting with a letter or digit (e.g. dr-chen).",
            "name",
        )
    if not printed_name.strip():
        raise NetworkError("Give the reviewer's printed name (--printed-name).", "printed-name")
    if role_title not in REVIEWER_TITLES:
        raise NetworkError(
            f"{role_title!r} cannot sign: a reviewer is a supervisor or an administrator.", "role"
        )
    database = database_name(url)
    role = reviewer_role_name(database, name)
    password = secrets.token_urlsafe(24)
    private = Ed25519PrivateKey.generate()
    public = signatures.public_hex(private)
    fingerprint = signatures.fingerprint(public)
    wrapped = signatures.wrap(private, password, accounts.PASSWORD_COST)
    conn = connect(url)
    try:
        with conn.transaction():
            _create_login_role(conn, role, password, database, "kap_reviewer", f"reviewer {name}")
            conn.execute(
                "INSERT INTO kap.reviewers (role_name, printed_name, role_title, public_key, "
                "fingerprint, wrapped_key) VALUES (%s, %s, %s, %s, %s, %s)",
                [role, printed_name.strip(), role_title, public, fingerprint, wrapped],
            )
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
    finally:
        conn.close()
    name_shown = printed_name.strip()
    return AddedReviewer(role, name_shown, role_title, fingerprint, password, role_url(url, role))
