"""TLS with ``sslmode=verify-full`` against a real PostgreSQL, set up by docs/network.md's own
commands ("Certificates"): the OpenSSL blocks and the postgresql.conf / pg_hba.conf lines are
read from the page and run here, so the page is what is proved.

The server is a cluster of its own (the shared one stays plain for the other tests): `hostssl`
lines only, so every TCP connection, the administrator's included, must be encrypted.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from kapmonitor.network import admin, background, state
from kapmonitor.network.connection import NetworkError, redact
from kapmonitor.network.local_server import ADMIN, ADMIN_PASSWORD, PgServer
from kapmonitor.network.sync import sync_once
from tests.network.conftest import (
    Archive,
    local_counts,
    make_laptop,
    record_demo_session,
    server_counts,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "network.md"
DATABASE = "kapmonitor"  # the docs' pg_hba lines name it
NAMES = "DNS:localhost,IP:127.0.0.1"  # what the tests' URLs use (the docs: clinic-pc)


def docs_block(tag: str) -> str:
    """The fenced block that follows ``<!-- tls:TAG …-->`` in docs/network.md."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- tls:{re.escape(tag)}\b[^>]*-->\s*```[a-z]*\n(.*?)```", text, re.S)
    assert found, f"docs/network.md has no block marked tls:{tag}"
    return found.group(1)


def run_docs_block(tag: str, folder: Path, server: str = "", names: str = "") -> None:
    """Run a shell block of the docs in ``folder`` with bash (the page says bash), the server's
    name and its certificate's names put in for the docs' ``clinic-pc`` ones."""
    script = docs_block(tag)
    if server:
        script, n = re.subn(r"(?m)^SERVER=.*$", f"SERVER={server}", script)
        assert n == 1
        script, n = re.subn(r"(?m)^SERVER_NAMES=.*$", f'SERVER_NAMES="{names}"', script)
        assert n == 1
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=folder, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def make_server_cert(ca_folder: Path, server: str, names: str) -> tuple[bytes, bytes]:
    """docs step 2 in the CA's folder; the new (server.crt, server.key)."""
    run_docs_block("server-cert", ca_folder, server, names)
    return (ca_folder / "server.crt").read_bytes(), (ca_folder / "server.key").read_bytes()


def reload_and_wait(server: PgServer) -> None:
    """`pg_ctl reload` (as `systemctl reload` does), then wait until the server has re-read its
    configuration (SIGHUP is handled asynchronously), asked over the local socket."""
    socket_url = f"host={server.data} port={server.port} user={ADMIN} dbname=postgres"
    with psycopg.connect(socket_url) as conn:
        before = conn.execute("SELECT pg_conf_load_time()").fetchone()[0]
        server.reload()
        while conn.execute("SELECT pg_conf_load_time()").fetchone()[0] == before:
            conn.execute("SELECT pg_sleep(0.05)")


@dataclass
class TlsArchive(Archive):
    """The archive on the TLS-only server, every URL with ``sslmode=verify-full``."""

    ca_file: Path = Path()
    host: str = "localhost"

    def tls_url(self, user: str, password: str | None, **options: str) -> str:
        params = {"sslmode": "verify-full", "sslrootcert": str(self.ca_file), **options}
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in params.items())
        secret = f":{quote(password, safe='')}" if password else ""
        return f"postgresql://{user}{secret}@{self.host}:{self.server.port}/{self.name}?{query}"

    @property
    def admin_url(self) -> str:
        return self.tls_url(ADMIN, ADMIN_PASSWORD)

    def laptop_url(self, laptop: str, password: str) -> str:
        return self.tls_url(admin.role_name(self.name, laptop), password)


@dataclass
class TlsServer:
    server: PgServer
    ca_folder: Path
    archive: TlsArchive


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """A PostgreSQL set up by the docs' steps 1 to 3, with 127.0.0.1 for the clinic's subnet."""
    certs = tmp_path_factory.mktemp("clinic-ca")
    run_docs_block("ca", certs)
    crt, key = make_server_cert(certs, "localhost", NAMES)
    server = PgServer()
    try:
        server.install("server.crt", crt, 0o644)
        server.install("server.key", key, 0o600)
        conf = server.data / "postgresql.conf"
        conf.write_text(conf.read_text() + "\n" + docs_block("postgresql.conf"))
        hba = docs_block("pg_hba.conf").replace("192.168.10.0/24", "127.0.0.1/32")
        assert "host " not in hba and hba.count("hostssl") == 3
        # the local socket stays trusted (Debian's `local` lines; pg_ctl and the tests' waits)
        (server.data / "pg_hba.conf").write_text("local all all trust\n" + hba)
        server.start()
        with psycopg.connect(
            f"host={server.data} port={server.port} user={ADMIN} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        archive = TlsArchive(server, DATABASE, ca_file=certs / "ca.crt")
        admin.init_server(archive.admin_url)
        yield TlsServer(server, certs, archive)
    finally:
        server.close()


def test_a_laptop_syncs_over_verify_full_and_keeps_its_ca_in_the_saved_address(
    tls_server: TlsServer, tmp_path: Path
) -> None:
    archive = tls_server.archive
    added = admin.add_laptop(archive.admin_url, "room-1")
    url = archive.laptop_url("room-1", added.password)
    laptop = make_laptop(tmp_path, "room-1")
    record_demo_session(laptop, seed=41)
    result = sync_once(laptop.path, url, laptop.keys, batch_rows=60)
    assert result.laptop_id == "room-1" and result.batches > 1
    assert server_counts(archive, "room-1") == local_counts(laptop)
    # the connection really was encrypted, and with the server's name checked
    with psycopg.connect(url) as conn:
        ((ssl, version),) = conn.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchall()
    assert ssl is True and version in ("TLSv1.2", "TLSv1.3")
    # the laptop keeps sslmode and sslrootcert, never the password
    saved = state.load(laptop.path).server
    assert "sslmode=verify-full" in saved and f"sslrootcert={tls_server.ca_folder}" in saved
    assert (
        added.password not in saved
        and added.password not in state.state_path(laptop.path).read_text()
    )
    # …and a later pass with only the saved address (the password from ~/.pgpass's stand-in,
    # PGPASSWORD) goes over TLS again
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PGPASSWORD", added.password)
        record_demo_session(laptop, seed=42)
        again = sync_once(laptop.path, saved, laptop.keys)
    assert again.stored > 0
    assert server_counts(archive, "room-1") == local_counts(laptop)
    # the window's Clinic server setting: the address as typed is accepted with its TLS
    # options, and the password sealed apart is put back without losing them
    typed = archive.laptop_url("room-1", "").replace(":@", "@")
    assert background.check_url(typed) == typed
    combined = background.with_password(typed, added.password)
    assert combined.endswith(typed.split("?", 1)[1])
    assert background.check_connection(combined) == "room-1"
    assert added.password not in redact(combined)


def test_a_certificate_for_another_name_is_refused_in_words_and_a_renewal_needs_no_laptop_change(
    tls_server: TlsServer, tmp_path: Path
) -> None:
    archive, server = tls_server.archive, tls_server.server
    added = admin.add_laptop(archive.admin_url, "room-2")
    url = archive.laptop_url("room-2", added.password)
    laptop = make_laptop(tmp_path, "room-2")
    record_demo_session(laptop, seed=43)
    crt, key = make_server_cert(tls_server.ca_folder, "otherhost", "DNS:otherhost")
    server.install("server.crt", crt, 0o644)
    server.install("server.key", key, 0o600)
    reload_and_wait(server)
    try:
        with pytest.raises(NetworkError) as refused:
            sync_once(laptop.path, url, laptop.keys)
        text = str(refused.value)
        assert "certificate is for otherhost, not localhost" in text
        assert "Nothing was sent" in text
        assert added.password not in text and "Traceback" not in text
        assert refused.value.kind == "tls"
        assert state.load(laptop.path).last_error == text
        # the window's runner: the Sync panel's short form and its sentence
        reports: list[background.SyncReport] = []
        runner = background.BackgroundSync(laptop.path, url, laptop.keys, on_report=reports.append)
        assert runner.run_once() is None
        (report,) = reports
        assert report.short_error == "secure connection failed"
        assert "certificate is for otherhost, not localhost" in report.error
        assert report.pending == sum(local_counts(laptop).values())
        assert added.password not in report.error
    finally:
        # the renewal of docs step 5: a new certificate by the same CA, copied, a reload
        crt, key = make_server_cert(tls_server.ca_folder, "localhost", NAMES)
        server.install("server.crt", crt, 0o644)
        server.install("server.key", key, 0o600)
        reload_and_wait(server)
    assert sum(server_counts(archive, "room-2").values()) == 0  # nothing went to the impostor
    sync_once(laptop.path, url, laptop.keys)  # the same URL, the same ca.crt
    assert server_counts(archive, "room-2") == local_counts(laptop)


def test_a_server_signed_by_an_unknown_ca_is_refused(tls_server: TlsServer, tmp_path: Path) -> None:
    archive = tls_server.archive
    added = admin.add_laptop(archive.admin_url, "room-3")
    other_ca = tmp_path / "another-ca"
    run_docs_block("ca", other_ca)  # a CA the server's certificate does not come from
    laptop = make_laptop(tmp_path, "room-3")
    record_demo_session(laptop, seed=44)
    role = admin.role_name(archive.name, "room-3")
    url = archive.tls_url(role, added.password, sslrootcert=str(other_ca / "ca.crt"))
    with pytest.raises(NetworkError) as refused:
        sync_once(laptop.path, url, laptop.keys)
    assert "not signed by the certificate authority this laptop trusts" in str(refused.value)
    assert refused.value.kind == "tls"
    missing = archive.tls_url(role, added.password, sslrootcert=str(tmp_path / "none.crt"))
    with pytest.raises(NetworkError, match=r"certificate authority file .* does not exist"):
        sync_once(laptop.path, missing, laptop.keys)
    assert sum(server_counts(archive, "room-3").values()) == 0
    sync_once(laptop.path, archive.laptop_url("room-3", added.password), laptop.keys)
    assert server_counts(archive, "room-3") == local_counts(laptop)


@pytest.mark.parametrize("mode", ["disable", "allow"])
def test_hostssl_only_refuses_a_plain_connection_in_words(
    tls_server: TlsServer, tmp_path: Path, mode: str
) -> None:
    archive = tls_server.archive
    laptop_name = f"plain-{mode}"
    added = admin.add_laptop(archive.admin_url, laptop_name)
    laptop = make_laptop(tmp_path, laptop_name)
    record_demo_session(laptop, seed=45)
    role = admin.role_name(archive.name, laptop_name)
    plain = archive.tls_url(role, added.password, sslmode=mode)
    if mode == "disable":
        with pytest.raises(NetworkError) as refused:
            sync_once(laptop.path, plain, laptop.keys)
        assert "accepts only encrypted connections" in str(refused.value)
        assert "sslmode=verify-full" in str(refused.value)
        assert refused.value.kind == "tls"
        assert sum(server_counts(archive, laptop_name).values()) == 0
    else:  # libpq tries plain first, is refused, and falls back to TLS: encrypted anyway
        sync_once(laptop.path, plain, laptop.keys)
        assert server_counts(archive, laptop_name) == local_counts(laptop)
