"""A throwaway PostgreSQL server in a temporary folder: initdb and pg_ctl, for the tests and the
sync benchmark (``kapmonitor bench``), never for a clinic (docs/network.md sets up a real one).

Why our own (not pytest-postgresql): it is a few lines, and it must run as root in CI, where
initdb refuses to run: then the server runs as ``nobody`` (``runuser``) in a folder that user
owns. It listens on 127.0.0.1 only, on a free port, with password (SCRAM) authentication over
TCP, so the laptops' roles and passwords are exercised for real.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ADMIN = "kapadmin"
ADMIN_PASSWORD = secrets.token_urlsafe(16)  # new for every run


def find_bindir() -> Path:
    """Where initdb and pg_ctl are: $KAPMONITOR_PG_BINDIR, else pg_config --bindir, else the
    newest /usr/lib/postgresql/*/bin (Debian puts them off PATH)."""
    candidates: list[str] = []
    if os.environ.get("KAPMONITOR_PG_BINDIR"):
        candidates.append(os.environ["KAPMONITOR_PG_BINDIR"])
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(found.stdout.strip())
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise RuntimeError(
        "PostgreSQL is not installed (no initdb/pg_ctl): install Debian's `postgresql` package "
        "(packaging/debian-packages.txt) or set KAPMONITOR_PG_BINDIR"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster for a test session; stop() and start() simulate an outage."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.as_root = os.geteuid() == 0
        # under root the folder's parents must let `nobody` through: /tmp, not a private $TMPDIR
        where = "/tmp" if self.as_root and Path("/tmp").is_dir() else None
        self.root = Path(tempfile.mkdtemp(prefix="kap-pg-", dir=where))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        if self.as_root:  # initdb refuses root: the cluster belongs to nobody
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "nobody")
        pwfile = self.root / "pw"
        pwfile.write_text(ADMIN_PASSWORD + "\n")
        if self.as_root:
            shutil.chown(pwfile, "nobody")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            ADMIN,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "nobody", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}\n{log[-2000:]}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.data} -c fsync=off -c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def reload(self) -> None:
        """Re-read the configuration and the TLS certificate (what ``systemctl reload`` does)."""
        self._run("pg_ctl", "-D", str(self.data), "reload")

    def install(self, name: str, data: bytes, mode: int = 0o600) -> None:
        """Put a file the server reads (a certificate, its key) in the data folder, owned by the
        server's user with ``mode`` (PostgreSQL refuses a key others can read)."""
        path = self.data / name
        path.write_bytes(data)
        os.chmod(path, mode)
        if self.as_root:
            shutil.chown(path, "nobody")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(
        self, dbname: str = "postgres", user: str = ADMIN, password: str = ADMIN_PASSWORD
    ) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}?connect_timeout=5"

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
