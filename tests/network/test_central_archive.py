"""The central archive's read side against a real PostgreSQL: two laptops sync, a reviewer lists,
filters and opens their sessions, and gets what each laptop's own archive and exports give."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from kapmonitor.domain.records import AdverseEvent
from kapmonitor.network import admin
from kapmonitor.network.central_archive import CentralArchive, CentralArchiveRow
from kapmonitor.network.central_session import open_session
from kapmonitor.network.connection import NetworkError
from kapmonitor.network.local_server import free_port
from kapmonitor.network.sync import sync_once
from kapmonitor.reports.export_registry import write_export
from kapmonitor.reports.report_sections import session_sections
from kapmonitor.store import archive as local_archive
from kapmonitor.store.archive import ArchiveFilter
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.errors import StoreError
from kapmonitor.store.signoff import Review, session_quality_flags
from tests.factories import T0, session_start
from tests.network.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    Archive,
    Laptop,
    make_laptop,
    record_demo_session,
)


def add_reviewer(archive: Archive, name: str = "rev") -> str:
    """A supervisor's login role in kap_reviewer (as docs/network.md sets one up); its URL."""
    role = f"kap_{archive.name}_{name}"
    password = secrets.token_urlsafe(18)
    with psycopg.connect(archive.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE kap_reviewer").format(
                sql.Identifier(role), sql.Literal(admin.scram_verifier(password))
            )
        )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(archive.name), sql.Identifier(role)
            )
        )
    return archive.server.url(archive.name, role, password)


def _open_session(laptop: Laptop, patient: str, clinicians: tuple[str, ...], hours: int) -> str:
    """A session started (with an adverse event) but not ended, ``hours`` after T0."""
    laptop.clock.set(T0 + timedelta(hours=hours))
    store = laptop.store()
    try:
        start = session_start(laptop.clock, patient_code=patient, clinicians=clinicians)
        sid = store.start_session(start, "Admin")
        laptop.clock.advance(minutes=5)
        event = AdverseEvent(observed_at=laptop.clock.now(), term="nausea", grade=1)
        store.add(sid, event, "Admin")
        return sid
    finally:
        store.close()


def _withdraw_adverse_events(laptop: Laptop, session_id: str) -> None:
    """Withdraw the session's adverse events (a correction row with ``voided``)."""
    store = laptop.store()
    try:
        for row in store.load(session_id).current("adverse_events"):
            event = AdverseEvent(observed_at=laptop.clock.now(), term="nausea", grade=1)
            reason = "entered for the wrong session"
            store.correct(session_id, row["id"], event, reason, "Admin", void=True)
    finally:
        store.close()


def _sign(laptop: Laptop, session_id: str) -> None:
    store = laptop.store()
    try:
        review = Review(store)
        flags = session_quality_flags(store, store.load(session_id))
        review.sign(session_id, ADMIN_USER, ADMIN_PASSWORD, confirmed=[f.key for f in flags])
    finally:
        store.close()


@pytest.fixture
def two_laptops(archive: Archive, tmp_path: Path) -> tuple[Archive, dict[str, Laptop], str]:
    """Two laptops with ended, signed and open sessions, synced; the reviewer's URL."""
    laptops = {
        "room-1": make_laptop(tmp_path / "a", "room-1"),
        "room-2": make_laptop(tmp_path / "b", "room-2"),
    }
    for n, (name, laptop) in enumerate(laptops.items()):
        url = archive.add_laptop(name)
        ids = []
        for k in range(3):
            laptop.clock.set(T0 + timedelta(days=3 * k + n))
            ids.append(record_demo_session(laptop, 10 * n + k))
        _sign(laptop, ids[0])
        sid = _open_session(laptop, f"ZOE-{n}", ("Zoë Ó Briain", "Dr Lars Øvergaard"), 480 + n)
        sync_once(laptop.path, url, laptop.keys)
        if n == 1:  # withdrawn after it reached the server: the summary must follow
            _withdraw_adverse_events(laptop, sid)
            sync_once(laptop.path, url, laptop.keys)
    return archive, laptops, add_reviewer(archive)


FILTERS = [
    ArchiveFilter(),
    ArchiveFilter(status="open"),
    ArchiveFilter(status="ended"),
    ArchiveFilter(status="signed"),
    ArchiveFilter(status="unsigned"),
    ArchiveFilter(unsigned_only=True, has_adverse_effects=True),
    ArchiveFilter(has_adverse_effects=True),
    ArchiveFilter(has_alarms=True),
    ArchiveFilter(clinician="ó bri"),
    ArchiveFilter(clinician="øVERgaard"),
    ArchiveFilter(patient_code="zoe"),
    ArchiveFilter(patient_code="kap-"),
    ArchiveFilter(date_from=(T0 + timedelta(days=2)).date()),
    ArchiveFilter(date_to=(T0 + timedelta(days=4)).date()),
    ArchiveFilter(date_from=T0 + timedelta(days=1), date_to=T0 + timedelta(days=7)),
    ArchiveFilter(protocol_id="demo"),
    ArchiveFilter(protocol_id="no-such-protocol"),
]


def _comparable(row: local_archive.ArchiveRow) -> dict[str, object]:
    """Every field of the row, the clinicians as names (the packed text's order may differ)."""
    found = {
        f.name: getattr(row, f.name)
        for f in dataclasses.fields(local_archive.ArchiveRow)
        if f.name != "clinician_list"
    }
    found["clinicians"] = row.clinicians
    return found


def test_the_list_and_every_filter_agree_with_each_laptops_own_archive(two_laptops) -> None:
    _archive, laptops, reviewer = two_laptops
    with CentralArchive(reviewer) as central:
        assert central.laptops() == ["room-1", "room-2"]
        everything = central.page()
        assert everything.total == 8 and len(everything.rows) == 8
        assert {r.laptop_id for r in everything.rows} == {"room-1", "room-2"}
        starts = [r.started_at for r in everything.rows]
        assert starts == sorted(starts, reverse=True)  # newest first
        assert {r.status for r in everything.rows} == {"open", "ended", "signed"}
        for flt in FILTERS:
            central_rows: list[CentralArchiveRow] = []
            for name, laptop in laptops.items():
                local_db = connect_readonly(laptop.path, laptop.keys)
                try:
                    local = local_archive.list_sessions(local_db, flt)
                    local_counts = local_archive.counts(local_db, flt)
                finally:
                    local_db.close()
                mine = central.page(flt, laptop_id=name)
                central_rows += mine.rows
                assert [_comparable(r) for r in mine.rows] == [_comparable(r) for r in local], flt
                assert mine.total == len(local)
                assert central.counts(flt, laptop_id=name) == local_counts, flt
            both = central.page(flt)
            assert sorted(r.session_id for r in both.rows) == sorted(
                r.session_id for r in central_rows
            )
            assert both.total == len(central_rows)
    # the filters above were not all empty or all full: they tell sessions apart
    assert 0 < CentralArchive(reviewer).page(ArchiveFilter(status="signed")).total < 8


def test_paging_covers_every_session_once(two_laptops) -> None:
    _archive, _laptops, reviewer = two_laptops
    with CentralArchive(reviewer) as central:
        seen = []
        offset = 0
        while True:
            page = central.page(offset=offset, limit=3)
            assert page.total == 8
            seen += [(r.laptop_id, r.session_id) for r in page.rows]
            if not page.more:
                break
            offset += 3
        assert len(seen) == len(set(seen)) == 8
        assert seen == [(r.laptop_id, r.session_id) for r in central.list_sessions()]
        assert [(r.laptop_id, r.session_id) for r in central.page().rows] == seen


def test_an_opened_session_exports_the_same_bytes_and_report_as_on_its_laptop(
    two_laptops, tmp_path: Path
) -> None:
    _archive, laptops, reviewer = two_laptops
    laptop = laptops["room-2"]
    local_db = connect_readonly(laptop.path, laptop.keys)
    try:
        ids = [r.session_id for r in local_archive.list_sessions(local_db)]
        for sid in ids:
            for fmt in ("json", "csv", "fhir"):
                out = tmp_path / "laptop" / sid / fmt
                write_export(fmt, local_db, [sid], out, folder=True).commit()
    finally:
        local_db.close()
    with CentralArchive(reviewer) as central:
        for sid in ids:
            with central.open_session(sid) as session:
                assert session.laptop_id == "room-2"
                for fmt in ("json", "csv", "fhir"):
                    out = tmp_path / "central" / sid / fmt
                    write_export(fmt, session.db, [sid], out, folder=True).commit()
                store = session.store()
                log = store.load(sid)
                now = T0 + timedelta(days=30)
                central_sections = session_sections(
                    log, store.ref, session_quality_flags(store, log, now), now
                )
            laptop_store = laptop.store()
            try:
                local_log = laptop_store.load(sid)
                local_sections = session_sections(
                    local_log,
                    laptop_store.ref,
                    session_quality_flags(laptop_store, local_log, now),
                    now,
                )
            finally:
                laptop_store.close()
            assert central_sections == local_sections
    laptop_files = sorted(
        p.relative_to(tmp_path / "laptop") for p in (tmp_path / "laptop").rglob("*") if p.is_file()
    )
    central_files = sorted(
        p.relative_to(tmp_path / "central")
        for p in (tmp_path / "central").rglob("*")
        if p.is_file()
    )
    assert laptop_files == central_files
    assert {p.parts[1] for p in laptop_files} == {"json", "csv", "fhir"}
    for name in laptop_files:
        central_bytes = (tmp_path / "central" / name).read_bytes()
        assert central_bytes == (tmp_path / "laptop" / name).read_bytes(), name


def test_the_opened_copy_refuses_every_write_and_holds_one_session(two_laptops) -> None:
    _archive, _laptops, reviewer = two_laptops
    with CentralArchive(reviewer) as central:
        row = central.page(ArchiveFilter(status="signed"), laptop_id="room-1").rows[0]
        with central.open_session(row.session_id, "room-1") as session:
            db = session.db
            assert {r[0] for r in db.execute("SELECT id FROM sessions")} == {row.session_id}
            assert {r[0] for r in db.execute("SELECT DISTINCT session_id FROM vitals")} == {
                row.session_id
            }
            assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0  # never sent
            with pytest.raises(Exception, match=r"readonly|read-only|query_only"):
                db.execute("DELETE FROM vitals")
            with pytest.raises(Exception, match=r"readonly|read-only|query_only"):
                db.execute("INSERT INTO review_comments (session_id) VALUES ('x')")


def test_a_session_not_there_or_of_another_laptop_is_refused_in_words(two_laptops) -> None:
    _archive, _laptops, reviewer = two_laptops
    with CentralArchive(reviewer) as central:
        sid = central.page(laptop_id="room-1").rows[0].session_id
        with pytest.raises(StoreError, match=r"no session \w+ from the laptop room-2"):
            central.open_session(sid, "room-2")
        with pytest.raises(StoreError, match=r"There is no session 0+ in the central archive"):
            central.open_session("0" * 32)


def test_the_reviewer_cannot_write_the_clinical_tables(two_laptops) -> None:
    archive, _laptops, reviewer = two_laptops
    with CentralArchive(reviewer) as central:
        central.page()
        pg = central._conn()
        for statement in (
            "INSERT INTO kap.sessions (laptop_id, local_id, id) VALUES ('room-1', 999, 'x')",
            "UPDATE kap.vitals SET hr = 1",
            "DELETE FROM kap.signatures",
            "INSERT INTO kap.signatures (laptop_id, local_id) VALUES ('room-1', 999)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(statement)
        # what it may write: an export's audit entry, in its own name, never changed after
        central.record_export("someone", "json", Path("/tmp/out"), [("room-1", "abc")])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("UPDATE kap.central_exports SET actor = 'nobody'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute(
                "INSERT INTO kap.central_exports (exported_by, actor, format, "
                "destination, sessions) VALUES ('other', 'a', 'json', '/x', '{a/b}')"
            )
    entries = archive.query("SELECT exported_by, actor, sessions FROM kap.central_exports")
    assert entries == [(f"kap_{archive.name}_rev", "someone", ["room-1/abc"])]
    # the owner's own UPDATE is refused by the append-only trigger
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        archive.query("UPDATE kap.central_exports SET actor = 'x' RETURNING id")


def test_a_laptop_role_sees_only_its_own_sessions_through_the_same_list(
    archive: Archive, tmp_path: Path
) -> None:
    urls = {}
    for n, name in enumerate(("room-1", "room-2")):
        laptop = make_laptop(tmp_path / name, name)
        urls[name] = archive.add_laptop(name)
        record_demo_session(laptop, n)
        sync_once(laptop.path, urls[name], laptop.keys)
    with CentralArchive(urls["room-1"]) as central:
        page = central.page()
        assert page.total == 1 and page.rows[0].laptop_id == "room-1"


def test_an_unreachable_server_is_said_plainly() -> None:
    url = f"postgresql://rev:secret-pw@127.0.0.1:{free_port()}/kap?connect_timeout=2"
    with CentralArchive(url) as central, pytest.raises(NetworkError) as caught:
        central.page()
    text = str(caught.value)
    assert "cannot be reached" in text and "secret-pw" not in text
    with pytest.raises(NetworkError, match="cannot be reached"):
        open_session(url, "0" * 32)


def test_a_role_without_review_rights_is_refused_plainly(archive: Archive) -> None:
    role, password = f"kap_{archive.name}_nobody", secrets.token_urlsafe(12)
    with psycopg.connect(archive.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(admin.scram_verifier(password))
            )
        )
    url = archive.server.url(archive.name, role, password)
    with CentralArchive(url) as central, pytest.raises(NetworkError, match="refused"):
        central.page()


def _summary_from_rows(archive: Archive) -> list[tuple[object, ...]]:
    """Each session's summary figures counted from the mirror rows themselves."""
    from kapmonitor.network.central_archive import current

    def counted(table: str, only_current: bool = True) -> str:
        condition = f" AND {current(table, 't')}" if only_current else ""
        return (
            f"(SELECT count(*) FROM kap.{table} t WHERE t.laptop_id = s.laptop_id "
            f"AND t.session_id = s.id{condition})"
        )

    return archive.query(
        f"SELECT s.laptop_id, s.id, s.observed_at, s.patient_code, {counted('session_ends')}, "
        f"{counted('adverse_events')}, {counted('alarms')}, {counted('signatures', False)} "
        "FROM kap.sessions s ORDER BY 1, 2"
    )


def _summary(archive: Archive) -> list[tuple[object, ...]]:
    return archive.query(
        "SELECT laptop_id, session_id, started_at, patient_code, ended_rows, "
        "adverse_event_rows, alarm_rows, signature_rows FROM kap.session_summary ORDER BY 1, 2"
    )


def test_the_summary_is_what_the_rows_say_after_corrections(two_laptops) -> None:
    archive, _laptops, _reviewer = two_laptops
    found = _summary(archive)
    assert found == _summary_from_rows(archive) and len(found) == 8
    # the withdrawn adverse event (room-2's open session) no longer counts; room-1's does
    open_rows = {r[0]: r for r in found if r[4] == 0}
    assert open_rows["room-1"][5] == 1 and open_rows["room-2"][5] == 0
    assert sum(1 for r in found if r[7]) == 2  # one signed session per laptop


def test_an_archive_upgraded_with_sessions_in_it_is_summarised(pg_server, tmp_path: Path) -> None:
    from kapmonitor.network import server_schema

    name = "kap_upgrade_summary"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg_server.url(name)) as conn:
        server_schema.apply(conn, upto=2)
    older = Archive(pg_server, name)
    laptop = make_laptop(tmp_path, "room-9")
    url = older.add_laptop("room-9")
    record_demo_session(laptop, 3)
    _open_session(laptop, "KAP-0999", ("Dr A", "Nurse B"), 30)
    sync_once(laptop.path, url, laptop.keys)
    assert admin.init_server(older.admin_url)[0] == 3
    assert _summary(older) == _summary_from_rows(older) and len(_summary(older)) == 2
    with CentralArchive(add_reviewer(older)) as central:
        assert central.counts() == local_archive.counts(connect_readonly(laptop.path, laptop.keys))
