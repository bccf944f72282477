"""Sign-off at the centre and the flow back, against a real PostgreSQL.

Two laptops record at once and sync; a supervisor signs and comments one session at the
centre; the next sync brings the signature back to the originating laptop only, checked there
against the laptop's own rows; replays store once; forgeries are stored as invalid; the roles
cannot step outside their rights; ``verify`` still passes on the laptop."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from kapmonitor.network import admin
from kapmonitor.network.central_review import (
    addendum_centrally,
    central_reviews,
    comment_centrally,
    sign_centrally,
)
from kapmonitor.network.connection import NetworkError
from kapmonitor.network.sync import sync_once
from kapmonitor.store import central_signatures
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.errors import StoreError
from kapmonitor.store.signoff import Review
from kapmonitor.store.verify import verify_database
from tests.network.conftest import ADMIN_USER, Archive, Laptop, make_laptop, record_demo_session


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
