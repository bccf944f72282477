"""The window's own sync: a saved server connection, a runner that never holds up a save, and
what it reports in plain words (issue 14 items 1 and 6, the window's part). Qt-free: the window
(``kapmonitor/ui/bedside/sync_feed.py``) and ``kapmonitor bench`` use the same runner.

The saved connection has two halves, kept apart on purpose:

- the server's address *without* a password, as a laptop setting (``SYNC_SERVER`` in
  :mod:`kapmonitor.settings`): it says where, and is harmless to read;
- the laptop role's password in ``<database>.server-password`` beside the database (mode 0600),
  sealed with AES-GCM under a key derived from the database's own key
  (:data:`~kapmonitor.store.key_slots.SERVER_PASSWORD`): readable only once the database is
  unlocked, so a copied laptop folder (or a stolen laptop, switched off) does not hand out the
  role's password with it. It is never in the settings JSON, never logged, never shown.

:class:`BackgroundSync` is a :class:`~kapmonitor.network.sync.SyncRunner` with what the window
needs: ``request()`` only sets an event (the save path does no network and takes no lock a pass
holds), a short debounce so a burst of saves makes one pass, a pass every ``interval_s``
otherwise, and after each pass a :class:`SyncReport` (pending count, last success, the failure
in plain words) handed to ``on_report`` on the worker thread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from kapmonitor.network.connection import NetworkError, connect
from kapmonitor.network.status import sync_status
from kapmonitor.network.sync import BATCH_ROWS, SyncResult, SyncRunner, sync_once
from kapmonitor.store.errors import StoreError
from kapmonitor.store.key_slots import SERVER_PASSWORD, DatabaseKeys, write_private

log = logging.getLogger("kapmonitor.network.background")

PASSWORD_SUFFIX = ".server-password"
_FORMAT = "kapmonitor-server-password"
_AAD = b"kapmonitor/server-password/v1"
DEBOUNCE_S = 0.5  # saves within this of the first share one pass
SCHEMES = ("postgresql", "postgres")


# --- the saved connection ----------------------------------------------------------------------


def check_url(text: str) -> str:
    """The server address as typed, checked: a plain :class:`NetworkError` when it is not one.

    A password inside the address is refused (it would be saved in the settings file in clear):
    it goes in the password field, which is sealed (see the module's docstring).
    """
    url = text.strip()
    example = "e.g. postgresql://kap_kapmonitor_room_1@clinic-pc:5432/kapmonitor"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise NetworkError(
            f"That is not a server address: the port must be a number ({example}).", "url"
        ) from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise NetworkError(
            f"That is not a server address: it starts postgresql://, then the laptop's role, "
            f"@ and the server's name ({example}).",
            "url",
        )
    if parts.password is not None:
        raise NetworkError(
            "Leave the password out of the address: type it in the password field, where it "
            "is kept sealed (the address is saved as a plain setting).",
            "url",
        )
    if not parts.username:
        raise NetworkError(
            f"The address needs the laptop's role before the @ ({example}); "
            "kapmonitor server add-laptop prints it.",
            "url",
        )
    if not parts.path.strip("/"):
        raise NetworkError(f"The address needs the archive's database name ({example}).", "url")
    if port is not None and not 0 < port < 65536:
        raise NetworkError("The port must be between 1 and 65535.", "url")
    return url


def where(url: str) -> str:
    """``host:port`` of ``url``, for sentences (never the user or the password)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or '?'}:{parts.port or 5432}"
    except ValueError:
        return "the server"


def with_password(url: str, password: str | None) -> str:
    """``url`` carrying ``password`` (kept in memory only; :func:`connection.redact` hides it)."""
    if not password:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    user = quote(unquote(parts.username or ""), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def password_path(db_path: Path | str) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + PASSWORD_SUFFIX)


def save_password(db_path: Path | str, keys: DatabaseKeys, password: str) -> None:
    """Seal ``password`` beside the database (0600), under the database's derived key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    sealed = AESGCM(keys.subkey(SERVER_PASSWORD)).encrypt(nonce, password.encode(), _AAD)
    data = {
        "format": _FORMAT,
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }
    write_private(password_path(db_path), json.dumps(data).encode())


def forget_password(db_path: Path | str) -> None:
    password_path(db_path).unlink(missing_ok=True)


def load_password(db_path: Path | str, keys: DatabaseKeys) -> str | None:
    """The saved password; None when there is none or it was sealed for another database (then
    libpq's own ``~/.pgpass`` may still supply one)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        data = json.loads(password_path(db_path).read_text(encoding="utf-8"))
        nonce = base64.b64decode(data["nonce"])
        sealed = base64.b64decode(data["sealed"])
        plain = AESGCM(keys.subkey(SERVER_PASSWORD)).decrypt(nonce, sealed, _AAD)
    except (OSError, ValueError, KeyError, TypeError, InvalidTag):
        return None
    return plain.decode()


def check_connection(url: str) -> str:
    """Sign in as the laptop and ask the archive who it is: the laptop's name, or a plain
    :class:`NetworkError` (a wrong password, a server that cannot be reached, not an archive)."""
    import psycopg

    conn = connect(url)
    try:
        found = conn.execute("SELECT kap.my_laptop()").fetchone()
    except psycopg.errors.UndefinedFunction:
        raise NetworkError(
            f"The database at {where(url)} is not a KAP Monitor archive yet (the administrator "
            "runs kapmonitor server init there first).",
            "not-an-archive",
        ) from None
    except psycopg.Error as exc:
        raise NetworkError(
            f"The server at {where(url)} answered with an error: {_first_line(exc)}", "server"
        ) from None
    finally:
        conn.close()
    if not found or found[0] is None:
        raise NetworkError(
            f"The role in the address is not registered as a laptop on {where(url)} (kapmonitor "
            "server add-laptop makes one).",
            "not-a-laptop",
        )
    return str(found[0])


# --- what the window is told ---------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reason(cause: BaseException | None) -> str:
    """Why a connection failed, in a few words (libpq's own text is long and technical)."""
    text = str(cause or "").lower()
    if "refused" in text:
        return "connection refused"
    if "timeout" in text or "timed out" in text:
        return "no answer in time"
    if "translate host name" in text or "name or service not known" in text:
        return "the name is not known"
    if "no route" in text or "unreachable" in text:
        return "no route to it"
    if "closed the connection" in text or "terminat" in text or "shutting down" in text:
        return "the connection was cut"
    return "no connection"


def entries(count: int) -> str:
    return "1 entry waits" if count == 1 else f"{count} entries wait"


def plain_error(exc: StoreError, url: str, pending: int) -> str:
    """The failure as the person at the laptop should read it: what, where, and that nothing is
    lost. No traceback and no password (only the server's host and port are named)."""
    waiting = f"{entries(pending)} on this laptop and will be sent"
    if exc.kind == "offline":
        return (
            f"The clinic server cannot be reached ({_reason(exc.__cause__)} at {where(url)}); "
            f"{waiting} when it is back."
        )
    if exc.kind == "auth":
        return (
            f"The clinic server at {where(url)} did not accept this laptop's password; "
            f"{waiting} once an administrator sets it right (Session ▸ Clinic server…)."
        )
    return f"{exc} ({waiting} when this is resolved.)"


SHORT_ERRORS = {
    "offline": "unreachable",
    "auth": "password refused",
    "diverged": "refused",
    "not-a-laptop": "not a laptop",
    "tls": "secure connection failed",  # connection.explain: a certificate, or no TLS
}


@dataclass(frozen=True)
class SyncReport:
    """After one pass: what the panel shows."""

    pending: int  # rows on this laptop the server has not acknowledged
    last_success: str  # ISO UTC (the laptop's clock), "" = never
    error: str  # the last pass's failure in plain words, "" when it worked
    short_error: str  # the same in two or three words, for the status bar
    passes: int  # passes run by this runner (a test waits for the next one)

    @property
    def state(self) -> str:
        """ok (nothing waits), pending (rows wait, the last pass worked) or error."""
        if self.error:
            return "error"
        return "pending" if self.pending else "ok"


class BackgroundSync(SyncRunner):
    """A :class:`SyncRunner` for a recording laptop: debounced requests, a report per pass."""

    def __init__(
        self,
        db_path: Path | str,
        url: str,
        keys: DatabaseKeys | None = None,
        interval_s: float = 30.0,
        on_report: Callable[[SyncReport], None] | None = None,
        debounce_s: float = DEBOUNCE_S,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        super().__init__(db_path, url, keys, interval_s, batch_rows)
        self.on_report = on_report
        self.debounce_s = debounce_s
        self.passes = 0

    def run_once(self) -> SyncResult | None:
        """One pass, then its report; never raises (a worker must not die of a failure)."""
        failure: StoreError | None = None
        result: SyncResult | None = None
        with self._pass_lock:
            with self._lock:
                self._running = True
            try:
                result = sync_once(self.db_path, self.url, self.keys, self.batch_rows)
            except StoreError as exc:
                failure = exc
            except Exception as exc:  # psycopg or OS surprises: said, never a dead thread
                log.warning("sync pass failed: %s", type(exc).__name__)
                failure = NetworkError(
                    f"The sync stopped on an unexpected error ({type(exc).__name__}); nothing is "
                    "lost, the next pass tries again.",
                    "unexpected",
                )
            finally:
                with self._lock:
                    self._running = False
                    self.passes += 1
            with self._lock:
                if failure is None and result is not None:
                    self._last_success, self._last_error = _now_iso(), ""
                    self._last_sent = result.sent_total
                elif failure is not None:
                    self._last_error = str(failure)
        self._report(failure)
        return result

    def _report(self, failure: StoreError | None) -> None:
        if self.on_report is None:
            return
        try:
            status = sync_status(self.db_path, self.keys)
            pending, last_success = status.total, status.last_success
        except StoreError:
            pending, last_success = -1, self.status().last_success
        error = short = ""
        if failure is not None:
            error = plain_error(failure, self.url, max(pending, 0))
            short = SHORT_ERRORS.get(failure.kind, "sync failed")
        with contextlib.suppress(RuntimeError):  # the window went away while a pass ended
            self.on_report(SyncReport(pending, last_success, error, short, self.passes))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            woke = self._wake.wait(self.interval_s)
            if self._stopping.is_set():
                break
            if woke and self.debounce_s > 0:
                self._stopping.wait(self.debounce_s)  # the rest of a burst joins this pass
            self._wake.clear()

    def alive(self) -> bool:
        """Whether the worker thread still runs (after ``stop``: a pass stuck past its wait)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop and wait up to ``timeout`` for a pass in progress; the thread is a daemon, so
        one stuck on a server that never answers cannot keep the app from exiting."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("a sync pass did not end within %s s of the window closing", timeout)
            self._thread = None


def _now_iso() -> str:
    from kapmonitor.domain.clock import to_iso

    return to_iso(datetime.now(UTC))
