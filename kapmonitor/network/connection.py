"""Connecting to the central PostgreSQL, and saying plainly why it failed.

``psycopg`` is imported here, inside functions, never at module level of anything the command
line's parser imports. A connection URL may carry a password: it never reaches a message or a
log (:func:`redact`); the documented way is libpq's own (``~/.pgpass``, ``PGPASSWORD``).
"""

from __future__ import annotations

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


def connect(url: str, autocommit: bool = False) -> Any:
    """A psycopg connection to ``url`` (a plain :class:`NetworkError` when it fails)."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise explain(exc, url) from exc
