"""Sign-off at the centre and the flow back, against a real PostgreSQL.

Two laptops record at once and sync; a supervisor signs and comments one session at the
centre; the next sync brings the signature back to the originating laptop only, checked there
against the laptop's own rows; replays store once; forgeries are stored as invalid; the roles
cannot step outside their rights; ``verify`` still passes on the laptop."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from kapmonitor.network import admin, review_return
from kapmonitor.network.central_review import (
    addendum_centrally,
    central_reviews,
    comment_centrally,
    sign_centrally,
)
from kapmonitor.network.connection import NetworkError
from kapmonitor.network.local_server import PgServer
from kapmonitor.network.sync import sync_once
from kapmonitor.reports.report_sections import session_sections
from kapmonitor.store import central_signatures
from kapmonitor.store.database import connect as connect_laptop
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.errors import StoreError
from kapmonitor.store.signoff import Review
from kapmonitor.store.verify import verify_database
from tests.factories import session_start
from tests.network.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    Archive,
    Laptop,
    make_laptop,
    record_demo_session,
)


def _reviewer(archive: Archive, name: str = "dr-chen") -> tuple[str, str]:
    added = admin.add_reviewer(archive.admin_url, name, "Dr M. Chen", "supervisor")
    return archive.server.url(archive.name, added.role, added.password), added.password


def _dump(laptop: Laptop) -> dict[str, list[tuple[object, ...]]]:
    """Every table of the laptop, row for row (to show that nothing changed)."""
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            n: db.execute(f"SELECT rowid, * FROM [{n}] ORDER BY rowid").fetchall() for n in names
        }
    finally:
        db.close()


def _central_text(laptop: Laptop, session_id: str) -> str:
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        return central_signatures.central_text(db, session_id)
    finally:
        db.close()


def _two_laptops_recording_at_once(
    archive: Archive, tmp_path: Path
) -> tuple[dict[str, str], dict[str, Laptop], dict[str, str]]:
    urls = {name: archive.add_laptop(name) for name in ("room-1", "room-2")}
    laptops = {name: make_laptop(tmp_path / name, name) for name in urls}
    sessions: dict[str, str] = {}

    def record(name: str, seed: int) -> None:
        sessions[name] = record_demo_session(laptops[name], seed)

    threads = [threading.Thread(target=record, args=(n, i)) for i, n in enumerate(laptops, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, laptop in laptops.items():
        sync_once(laptop.path, urls[name], laptop.keys)
    return urls, laptops, sessions


def test_a_central_sign_off_and_comment_flow_back_to_the_originating_laptop_only(
    archive: Archive, tmp_path: Path
) -> None:
    urls, laptops, sessions = _two_laptops_recording_at_once(archive, tmp_path)
    reviewer_url, password = _reviewer(archive)
    comment_id = comment_centrally(
        reviewer_url, "room-1", sessions["room-1"], "BP rise well handled; note the escort."
    )
    signed = sign_centrally(reviewer_url, "room-1", sessions["room-1"], password)
    assert signed.central_id > comment_id and signed.printed_name == "Dr M. Chen"
    assert [r["kind"] for r in central_reviews(reviewer_url, "room-1", sessions["room-1"])] == [
        "comment",
        "signature",
    ]

    other_before = _dump(laptops["room-2"])
    first = sync_once(laptops["room-1"].path, urls["room-1"], laptops["room-1"].keys)
    assert first.reviews_received == 2
    other = sync_once(laptops["room-2"].path, urls["room-2"], laptops["room-2"].keys)
    assert other.reviews_received == 0
    assert _dump(laptops["room-2"]) == other_before  # the other laptop: not a row changed

    text = _central_text(laptops["room-1"], sessions["room-1"])
    assert "Signed at the centre by Dr M. Chen, supervisor" in text
    assert "(verified: matches this laptop's record)" in text
    assert "Comment at the centre by Dr M. Chen" in text and "note the escort" in text
    db = connect_readonly(laptops["room-1"].path, laptops["room-1"].keys)
    try:
        actors = db.execute(
            "SELECT actor, table_name FROM audit WHERE action = 'central_review' ORDER BY id"
        ).fetchall()
        assert actors == [("central:" + signed_role(archive), "central_reviews")] * 2
        assert central_signatures.is_closed_centrally(db, sessions["room-1"])
    finally:
        db.close()
    report = verify_database(laptops["room-1"].path, laptops["room-1"].keys)
    assert report.ok, report
    # the session is closed on the laptop: a new row is refused in words, an addendum is not
    store = laptops["room-1"].store()
    try:
        review = Review(store)
        admin_user = review.accounts.find(ADMIN_USER)
        assert admin_user is not None
        with pytest.raises(StoreError, match=r"signed by Dr M. Chen \(at the centre\) and is"):
            review.add_review_comment(sessions["room-1"], admin_user, store.clock.now(), "late")
        with pytest.raises(sqlite3.IntegrityError, match="signed at the centre and closed"):
            store.db.execute(  # behind the store's back: the database's own trigger refuses
                "INSERT INTO review_comments (session_id, observed_at, recorded_at, recorded_by, "
                "text) VALUES (?, ?, ?, 'x', 'late')",
                [sessions["room-1"], "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"],
            )
        review.add_addendum(sessions["room-1"], admin_user, "Addendum written on the laptop.")
    finally:
        store.close()
    # an addendum at the centre after the sign-off flows back too; a comment is now refused
    addendum_centrally(reviewer_url, "room-1", sessions["room-1"], "Follow-up call done.")
    with pytest.raises(NetworkError, match="add an addendum instead"):
        comment_centrally(reviewer_url, "room-1", sessions["room-1"], "late")
    again = sync_once(laptops["room-1"].path, urls["room-1"], laptops["room-1"].keys)
    assert again.reviews_received == 1
    assert "Addendum at the centre by Dr M. Chen" in _central_text(
        laptops["room-1"], sessions["room-1"]
    )
    assert verify_database(laptops["room-1"].path, laptops["room-1"].keys).ok


def signed_role(archive: Archive) -> str:
    return admin.reviewer_role_name(archive.name, "dr-chen")


def _one_laptop(archive: Archive, tmp_path: Path, seed: int = 3) -> tuple[str, Laptop, str]:
    url = archive.add_laptop("room-1")
    laptop = make_laptop(tmp_path / "room-1", "room-1")
    session_id = record_demo_session(laptop, seed)
    sync_once(laptop.path, url, laptop.keys)
    return url, laptop, session_id


def _statuses(laptop: Laptop, session_id: str) -> list[tuple[str, str, int]]:
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        return [
            (r["kind"], r["status"], r["rows_added"])
            for r in central_signatures.rows_for(db, session_id)
        ]
    finally:
        db.close()


def test_the_refusals_are_said_in_plain_words(archive: Archive, tmp_path: Path) -> None:
    url, laptop, ended = _one_laptop(archive, tmp_path)
    store = laptop.store()
    try:
        open_one = store.start_session(session_start(laptop.clock), "Dr A")
    finally:
        store.close()
    sync_once(laptop.path, url, laptop.keys)
    reviewer_url, password = _reviewer(archive)
    with pytest.raises(NetworkError, match="has not ended on its laptop"):
        sign_centrally(reviewer_url, "room-1", open_one, password)
    with pytest.raises(NetworkError, match=r"The password is not right for Dr M\. Chen's"):
        sign_centrally(reviewer_url, "room-1", ended, password + "x")
    with pytest.raises(NetworkError, match="holds no session nope from laptop room-1"):
        sign_centrally(reviewer_url, "room-1", "nope", password)
    with pytest.raises(NetworkError, match="not a registered reviewer"):
        sign_centrally(url, "room-1", ended, password)  # a laptop's role
    with pytest.raises(NetworkError, match="An addendum is for a signed session"):
        addendum_centrally(reviewer_url, "room-1", ended, "too early")
    sign_centrally(reviewer_url, "room-1", ended, password)
    with pytest.raises(NetworkError, match=r"already signed \(at the centre by Dr M. Chen"):
        sign_centrally(reviewer_url, "room-1", ended, password)
    assert archive.query("SELECT count(*) FROM kap.central_reviews") == [(1,)]


def test_a_session_signed_on_its_laptop_is_not_signed_again_at_the_centre(
    archive: Archive, tmp_path: Path
) -> None:
    url, laptop, session_id = _one_laptop(archive, tmp_path)
    store = laptop.store()
    try:
        Review(store).sign(session_id, ADMIN_USER, ADMIN_PASSWORD)
    finally:
        store.close()
    sync_once(laptop.path, url, laptop.keys)
    reviewer_url, password = _reviewer(archive)
    with pytest.raises(NetworkError, match=r"already signed \(on its laptop by Dr Admin"):
        sign_centrally(reviewer_url, "room-1", session_id, password)


def test_a_sign_off_of_an_earlier_state_says_so_and_closes_nothing(
    archive: Archive, tmp_path: Path
) -> None:
    url, laptop, session_id = _one_laptop(archive, tmp_path)
    reviewer_url, password = _reviewer(archive)
    store = laptop.store()  # a comment written on the laptop after its last sync
    try:
        review = Review(store)
        user = review.accounts.find(ADMIN_USER)
        assert user is not None
        review.add_review_comment(session_id, user, store.clock.now(), "seen on the laptop")
    finally:
        store.close()
    sign_centrally(reviewer_url, "room-1", session_id, password)  # the server's older state
    assert sync_once(laptop.path, url, laptop.keys).reviews_received == 1
    assert _statuses(laptop, session_id) == [("signature", "earlier_state", 1)]
    text = _central_text(laptop, session_id)
    assert "Signed at the centre by Dr M. Chen" in text
    assert "signed an earlier state: 1 row(s) added on this laptop since" in text
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        assert not central_signatures.is_closed_centrally(db, session_id)
    finally:
        db.close()
    assert verify_database(laptop.path, laptop.keys).ok


def _forge(archive: Archive, **changes: object) -> None:
    """An insider at the server (the database owner, triggers switched off) copies the real
    central sign-off with ``changes``: the kind of row the laptop must not believe."""
    columns = (
        "laptop_id, session_id, kind, reviewer, printed_name, role_title, written_at, meaning, "
        "content_hash, covered, audit_head_id, audit_head_hash, key_fingerprint, public_key, "
        "signature"
    )
    with psycopg.connect(archive.admin_url) as conn:
        (row,) = conn.execute(
            f"SELECT {columns} FROM kap.central_reviews ORDER BY id LIMIT 1"
        ).fetchall()
        values = dict(zip([c.strip() for c in columns.split(",")], row, strict=True))
        values.update(changes)
        conn.execute("SET session_replication_role = replica")  # the checks' trigger is off
        conn.execute("DROP INDEX IF EXISTS kap.central_reviews_one_signature")
        conn.execute(
            f"INSERT INTO kap.central_reviews ({columns}) VALUES "
            f"({', '.join(['%s'] * len(values))})",
            list(values.values()),
        )


def test_a_forged_or_altered_central_signature_is_stored_as_invalid_never_verified(
    archive: Archive, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kapmonitor.store import signatures

    url, laptop, session_id = _one_laptop(archive, tmp_path)
    reviewer_url, password = _reviewer(archive)
    sign_centrally(reviewer_url, "room-1", session_id, password)
    # 1. the statement altered after signing (the meaning changed, the signature kept)
    _forge(archive, meaning="approved for discharge without escort")
    # 2. signed with another key, which the row carries with its own fingerprint
    other = Ed25519PrivateKey.generate()
    public = signatures.public_hex(other)
    with psycopg.connect(archive.admin_url) as conn:
        (row,) = conn.execute(
            "SELECT session_id, reviewer, printed_name, role_title, meaning, written_at, "
            "content_hash, audit_head_id, audit_head_hash FROM kap.central_reviews "
            "ORDER BY id LIMIT 1"
        ).fetchall()
    fields = dict(
        zip(
            (
                "session_id",
                "signer",
                "printed_name",
                "role",
                "meaning",
                "signed_at",
                "content_hash",
                "audit_head_id",
                "audit_head_hash",
            ),
            row,
            strict=True,
        )
    )
    fields["key_fingerprint"] = signatures.fingerprint(public)
    forged = other.sign(signatures.statement(fields)).hex()
    _forge(archive, public_key=public, key_fingerprint=fields["key_fingerprint"], signature=forged)
    # 3. another key passed off under the registered fingerprint
    _forge(archive, public_key=public, signature=forged)
    assert sync_once(laptop.path, url, laptop.keys).reviews_received == 4
    statuses = _statuses(laptop, session_id)
    assert statuses[0] == ("signature", "verified", 0)
    assert [s[1] for s in statuses[1:]] == ["invalid", "invalid", "invalid"]
    text = _central_text(laptop, session_id)
    assert text.count("is NOT valid") == 3 and text.count("Signed at the centre") == 1
    assert text.count("the signature does not verify") == 1
    assert text.count("not made with the reviewer's registered key") == 2
    assert verify_database(laptop.path, laptop.keys).ok


def test_a_signature_over_other_content_is_invalid(archive: Archive, tmp_path: Path) -> None:
    """The server's copy differed from the laptop's (an insider changed a mirrored row before the
    supervisor signed it): the hash recomputed on the laptop differs, so it is invalid, and the
    session stays open."""
    url, laptop, session_id = _one_laptop(archive, tmp_path)
    reviewer_url, password = _reviewer(archive)
    with psycopg.connect(archive.admin_url) as conn:
        conn.execute("SET session_replication_role = replica")  # append-only triggers off
        conn.execute(
            "UPDATE kap.vitals SET hr = 61 WHERE laptop_id = 'room-1' AND local_id = "
            "(SELECT min(local_id) FROM kap.vitals WHERE laptop_id = 'room-1')"
        )
    sign_centrally(reviewer_url, "room-1", session_id, password)
    sync_once(laptop.path, url, laptop.keys)
    assert _statuses(laptop, session_id) == [("signature", "invalid", 0)]
    assert "differs from the one signed at the centre" in _central_text(laptop, session_id)
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        assert not central_signatures.is_closed_centrally(db, session_id)
    finally:
        db.close()


def test_a_replayed_or_interrupted_pull_stores_each_row_once(
    archive: Archive, tmp_path: Path
) -> None:
    url, laptop, session_id = _one_laptop(archive, tmp_path)
    reviewer_url, password = _reviewer(archive)
    for n in range(3):
        comment_centrally(reviewer_url, "room-1", session_id, f"comment {n}")
    sign_centrally(reviewer_url, "room-1", session_id, password)

    class Cut(Exception):
        pass

    def cut(_mark: int) -> None:
        raise Cut  # the laptop killed after its first batch committed

    with pytest.raises(Cut):
        review_return.pull(laptop.path, url, laptop.keys, batch=2, after_batch=cut)
    assert [s[0] for s in _statuses(laptop, session_id)] == ["comment", "comment"]
    resumed = review_return.pull(laptop.path, url, laptop.keys, batch=2)
    assert (resumed.read, resumed.stored) == (2, 2)
    assert review_return.pull(laptop.path, url, laptop.keys).stored == 0
    # the same rows handed to the store again (a replay behind a lost mark): stored once
    with psycopg.connect(url) as pg:
        rows = review_return.fetch(pg, 0)
    db = connect_laptop(laptop.path, laptop.keys)
    try:
        registered = {str(r["reviewer"]): str(r["registered_fingerprint"]) for r in rows}
        assert central_signatures.receive(db, rows, registered, laptop.clock.now()) == 0
    finally:
        db.close()
    assert [s[:2] for s in _statuses(laptop, session_id)] == [
        ("comment", "note"),
        ("comment", "note"),
        ("comment", "note"),
        ("signature", "verified"),
    ]
    assert verify_database(laptop.path, laptop.keys).ok


Refused = psycopg.errors.InsufficientPrivilege


def test_the_roles_stay_inside_their_rights(archive: Archive, tmp_path: Path) -> None:
    url, _laptop, session_id = _one_laptop(archive, tmp_path)
    url_2 = archive.add_laptop("room-2")
    reviewer_url, password = _reviewer(archive)
    _other_url, _ = _reviewer(archive, "dr-lee")
    sign_centrally(reviewer_url, "room-1", session_id, password)
    with (
        psycopg.connect(reviewer_url) as pg,
        pytest.raises(Refused),
    ):  # a reviewer writes no clinical row
        pg.execute(
            "INSERT INTO kap.vitals (laptop_id, local_id, session_id) "
            "VALUES ('room-1', 999999, %s)",
            [session_id],
        )
    with psycopg.connect(reviewer_url) as pg, pytest.raises(Refused):  # nor changes a central row
        pg.execute("UPDATE kap.central_reviews SET meaning = 'x'")
    with (
        psycopg.connect(reviewer_url) as pg,
        pytest.raises(Refused),
    ):  # nor reads another reviewer's wrapped key
        pg.execute("SELECT wrapped_key FROM kap.reviewers")
    with psycopg.connect(reviewer_url) as pg:  # its own, through the function
        assert pg.execute("SELECT kap.my_signing_key()").fetchone()[0].startswith("{")
    with psycopg.connect(url) as pg, pytest.raises(Refused):  # a laptop writes no central row
        pg.execute(
            "INSERT INTO kap.central_reviews (laptop_id, session_id, kind, printed_name, "
            "role_title, written_at, text) VALUES ('room-1', %s, 'comment', 'x', 'x', "
            "'2026-01-01T00:00:00.000Z', 'made up')",
            [session_id],
        )
    with psycopg.connect(url) as pg:  # and reads its own sessions' rows only
        assert pg.execute("SELECT count(*) FROM kap.central_reviews").fetchone()[0] == 1
    with psycopg.connect(url) as pg, pytest.raises(Refused):  # and no wrapped key at all
        pg.execute("SELECT kap.my_signing_key()")
    with psycopg.connect(url_2) as pg:
        assert pg.execute("SELECT count(*) FROM kap.central_reviews").fetchone()[0] == 0
    with (
        psycopg.connect(archive.admin_url) as pg,
        pytest.raises(Refused),
    ):  # append-only for the owner too
        pg.execute("DELETE FROM kap.central_reviews")
    with psycopg.connect(archive.admin_url) as pg, pytest.raises(Refused):
        pg.execute("UPDATE kap.reviewers SET public_key = repeat('0', 64)")


def test_add_reviewer_end_to_end_from_the_command_line(
    archive: Archive,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kapmonitor import cli
    from kapmonitor.store import signatures

    url, laptop, session_id = _one_laptop(archive, tmp_path)
    secret = tmp_path / "dr-chen.password"
    base = ["server", "add-reviewer", "dr-chen", "--printed-name", "Dr M. Chen"]
    assert cli.main([*base, "--server", archive.admin_url]) == cli.EXIT_STORE
    assert "say where the new role's password goes" in capsys.readouterr().err
    assert cli.main([*base, "--server", archive.admin_url, "--password-out", str(secret)]) == 0
    out = capsys.readouterr().out
    password = secret.read_text().strip()
    assert password not in out and oct(secret.stat().st_mode & 0o777) == "0o600"
    role = admin.reviewer_role_name(archive.name, "dr-chen")
    ((fingerprint, public, wrapped, title),) = archive.query(
        "SELECT fingerprint, public_key, wrapped_key, role_title FROM kap.reviewers"
    )
    assert signatures.printable(str(fingerprint)) in out and title == "supervisor"
    assert password not in str(wrapped)
    assert signatures.public_hex(signatures.unwrap(str(wrapped), password)) == public
    assert archive.query(
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        "JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = 'kap_reviewer' AND r.rolname = %s",
        [role],
    ) == [(role,)]  # roles are cluster-wide: other tests' archives have theirs
    assert str(
        archive.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])[0][0]
    ).startswith("SCRAM-SHA-256$")
    assert cli.main([*base, "--server", archive.admin_url, "--show-password"]) == cli.EXIT_STORE
    assert "already has a role" in capsys.readouterr().err
    # the new reviewer signs in with the password and signs; the laptop gets it back verified
    monkeypatch.setenv("PGPASSWORD", password)
    reviewer_url = archive.server.url(archive.name, role, password).replace(f":{password}@", "@")
    sign_centrally(reviewer_url, "room-1", session_id, password)
    sync_once(laptop.path, url, laptop.keys)
    assert _statuses(laptop, session_id) == [("signature", "verified", 0)]


def test_a_server_not_yet_at_schema_4_still_takes_the_sync(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """Laptops may be updated before the clinic's server: the push goes through and nothing
    comes back (there is nothing to come back from)."""
    from kapmonitor.network import server_schema

    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE kap_before_review")
    with psycopg.connect(pg_server.url("kap_before_review")) as conn:
        assert server_schema.apply(conn, upto=3) == [1, 2, 3]
    old = Archive(pg_server, "kap_before_review")
    url = old.add_laptop("room-1")
    laptop = make_laptop(tmp_path / "room-1", "room-1")
    record_demo_session(laptop, seed=5)
    result = sync_once(laptop.path, url, laptop.keys)
    assert result.stored > 0 and result.reviews_received == 0


def test_a_session_signed_at_the_centre_is_listed_as_signed(
    archive: Archive, tmp_path: Path
) -> None:
    """The archive's list and its counts read the summary: a sign-off at the centre moves the
    session from the unsigned to the signed, with the supervisor's name, like one on its laptop."""
    from kapmonitor.network.central_archive import CentralArchive
    from kapmonitor.store.archive import ArchiveFilter

    _url, _laptop, session_id = _one_laptop(archive, tmp_path)
    reviewer_url, password = _reviewer(archive)
    with CentralArchive(reviewer_url) as central:
        (before,) = central.page().rows
        assert before.status == "ended" and before.signed_by == ""
        assert central.counts().unsigned == 1
        sign_centrally(reviewer_url, "room-1", session_id, password)
        (after,) = central.page().rows
        assert after.status == "signed"
        assert (after.signed_by, after.signed_role) == ("Dr M. Chen", "supervisor")
        assert after.meaning == "reviewed and approved" and after.signed_at is not None
        assert central.counts().unsigned == 0
        assert central.page(ArchiveFilter(status="unsigned")).rows == []
        assert [r.session_id for r in central.page(ArchiveFilter(status="signed")).rows] == [
            session_id
        ]


def test_the_laptops_own_list_shows_a_verified_central_sign_off_as_signed(
    archive: Archive, tmp_path: Path
) -> None:
    """Back on the laptop the review list, its "signed"/"unsigned" filters, its counts and the
    patient's series treat a verified central sign-off as they treat a local one; a sign-off of
    an earlier state signs nothing there."""
    from kapmonitor.store import archive as local_archive

    url, laptop, session_id = _one_laptop(archive, tmp_path)
    reviewer_url, password = _reviewer(archive)
    sign_centrally(reviewer_url, "room-1", session_id, password)
    sync_once(laptop.path, url, laptop.keys)
    assert _statuses(laptop, session_id) == [("signature", "verified", 0)]
    db = connect_readonly(laptop.path, laptop.keys)
    try:
        (row,) = local_archive.list_sessions(db)
        assert row.status == "signed" and row.signed_by == "Dr M. Chen"
        assert row.signed_role == "supervisor" and row.signed_at is not None
        assert local_archive.counts(db).unsigned == 0
        unsigned = local_archive.ArchiveFilter(status="unsigned")
        assert local_archive.list_sessions(db, unsigned) == []
        signed = local_archive.ArchiveFilter(status="signed")
        assert [r.session_id for r in local_archive.list_sessions(db, signed)] == [session_id]
        (point,) = local_archive.patient_series(db, row.patient_code)
        assert point.status == "signed"
    finally:
        db.close()
    store = laptop.store()
    try:
        log = store.load(session_id)
        sections = {s.key: s for s in session_sections(log, store.ref, (), laptop.clock.now())}
    finally:
        store.close()
    review = sections["review"]
    (central_row,) = [r for r in review.rows if r.cells[0] == "Signature at the centre"]
    assert central_row.cells[3] == "Dr M. Chen, supervisor" and not central_row.warn
    assert "reviewed and approved" in central_row.cells[5]
    assert review.notes[0].startswith("A signed session is locked")
