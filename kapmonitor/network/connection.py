"""Connecting to the central PostgreSQL, and saying plainly why it failed.

``psycopg`` is imported here, inside functions, never at module level of anything the command
line's parser imports. A connection URL may carry a password: it never reaches a message or a
log (:func:`redact`); the documented way is libpq's own (``~/.pgpass``, ``PGPASSWORD``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kapmonitor.store.errors import StoreError

SERVER_ENV = "KAPMONITOR_SERVER"
CONNECT_TIMEOUT_S = 5


class NetworkError(StoreError):
    """The server could not be reached or refused: a plain sentence, never a traceback."""


def redact(url: str) -> str:
    """``url`` without its password (for messages, the saved state and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable server address)"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if user else host))


def explain(exc: BaseException, url: str) -> NetworkError:
    """A psycopg error as what the person at the laptop should know (the server's address
    without its password)."""
    import psycopg

    where = redact(url)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    tls = _tls_problem(str(exc), url)
    if tls is not None:
        return NetworkError(
            f"{tls} Nothing was sent: the rows wait on the laptop (server {where}).", "tls"
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return NetworkError(f"The server {where} refused: {text}.", "refused")
    if isinstance(exc, psycopg.OperationalError):
        if "password" in text.lower() or "authentication" in text.lower():
            return NetworkError(
                f"The server {where} did not accept this laptop's sign-in ({text}). Check the "
                "role and its password (~/.pgpass); nothing was lost: the rows wait on the laptop.",
                "auth",
            )
        return NetworkError(
            f"The server {where} cannot be reached ({text}). Nothing is lost: the rows wait on "
            "the laptop and go at the next sync.",
            "offline",
        )
    return NetworkError(f"The server {where} failed: {text}", "server")


_WRONG_NAME = re.compile(
    r'server certificate for "([^"]+)"(?: \(and \d+ other names?\))? '
    r'does not match host name "([^"]+)"'
)
_NO_ROOT = re.compile(r'root certificate file "([^"]+)" does not exist')


def _tls_problem(text: str, url: str) -> str | None:
    """What is wrong with the encrypted connection, and what to do, in a sentence; None when
    the failure is not about TLS. libpq's text may hold one attempt per address of the host
    (``localhost`` is ::1 and 127.0.0.1): every line is read, not only the first."""
    wrong = _WRONG_NAME.search(text)
    if wrong:
        cert_name, host = wrong.groups()
        return (
            f"The server's certificate is for {cert_name}, not {host}: either the address "
            f"names the server by a name its certificate does not list (use {cert_name} in the "
            f"address), or the machine answering is not the clinic's server. Ask the clinic's "
            f"administrator before changing anything (docs/network.md, Certificates)."
        )
    missing = _NO_ROOT.search(text)
    if missing:
        return (
            f"The certificate authority file {missing.group(1)} does not exist on this laptop: "
            "copy the clinic's ca.crt there (or correct sslrootcert= in the address)."
        )
    if "certificate verify failed" in text:
        return (
            "The server's certificate is not signed by the certificate authority this laptop "
            "trusts (sslrootcert= in the address, else ~/.postgresql/root.crt): either this "
            "laptop has the wrong ca.crt, or the machine answering is not the clinic's server. "
            "Ask the clinic's administrator."
        )
    if "no pg_hba.conf entry" in text and "no encryption" in text:
        return (
            "The server accepts only encrypted connections, and this address asks for a plain "
            "one: add ?sslmode=verify-full (and sslrootcert=/path/to/ca.crt) to the address."
        )
    if "server does not support SSL" in text:
        return (
            "The server does not offer encryption, and this address requires it: the server's "
            "administrator turns TLS on (docs/network.md, Certificates). Do not switch the "
            "laptop to a plain connection."
        )
    return None


def connect(url: str, autocommit: bool = False) -> Any:
    """A psycopg connection to ``url`` (a plain :class:`NetworkError` when it fails)."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
