"""Import never accepts a signature as if made here: it arrives as "signed elsewhere, by …",
checked against the signer's key when this database knows it, and locks nothing."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.reports.session_export import build_session_document, document_text
from kapmonitor.reports.session_import import IMPORTED, import_path
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.signoff import Review
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store

CHEN = "copper-meadow-9"


def clinic_with_chen(path: Path, clock: FakeClock) -> None:
    store = open_store(path, clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", CHEN)
    store.close()


def recorded_session(path: Path, clock: FakeClock, sign: bool) -> tuple[str, dict]:
    """Record a demo session in the file (signed by chen if ``sign``); its export document."""
    store = open_store(path, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    session_id = store.list_sessions()[0]["id"]
    if sign:
        review = Review(store)
        flags = [f.key for f in review.quality_flags(session_id)]
        review.sign(session_id, "chen", CHEN, confirmed=flags)
    document = json.loads(document_text(build_session_document(store.db, session_id)))
    store.close()
    return session_id, document


def write(tmp_path: Path, name: str, document: dict) -> Path:
    target = tmp_path / name
    target.write_text(json.dumps(document), encoding="utf-8")
    return target


def import_into(path: Path, clock: FakeClock, source: Path) -> tuple[list, list, bool]:
    store = open_store(path, clock)
    try:
        report = import_path(store.db, source, "admin", clock)
        assert [o.status for o in report.outcomes] == [IMPORTED], report.outcomes
        session_id = report.outcomes[0].session_id
        review = Review(store)
        here = review.signatures(session_id)
        elsewhere = review.signed_elsewhere(session_id)
        return here, elsewhere, review.is_signed(session_id)
    finally:
        store.close()


def test_a_hand_written_supervisor_signature_is_not_a_signature_here(tmp_path: Path) -> None:
    """The issue's attack: a JSON file carrying a supervisor's signature, imported into the
    clinic's file where that supervisor has an account. Nothing is signed here."""
    clock = FakeClock(T0)
    office = tmp_path / "office.sqlite"
    clinic_with_chen(office, clock)
    _sid, document = recorded_session(tmp_path / "laptop.sqlite", clock, sign=False)
    document["tables"]["signatures"] = [
        {
            "ref": 1,
            "observed_at": "2026-03-01T12:00:00.000Z",
            "recorded_at": "2026-03-01T12:00:00.000Z",
            "recorded_by": "chen",
            "printed_name": "Dr M. Chen",
            "role": "supervisor",
            "meaning": "reviewed and approved",
        }
    ]
    here, elsewhere, signed = import_into(office, clock, write(tmp_path, "forged.json", document))
    assert here == [] and not signed  # not locked, not signed
    assert [(r["printed_name"], r["status"]) for r in elsewhere] == [("Dr M. Chen", "unsealed")]
    assert verify_database(office).ok


def test_a_forged_seal_in_the_file_is_invalid(tmp_path: Path) -> None:
    """A seal copied from a real signature of another session: it verifies with chen's key,
    but its statement names another session, so it is invalid here."""
    clock = FakeClock(T0)
    laptop = tmp_path / "laptop.sqlite"
    clinic_with_chen(laptop, clock)
    shutil.copy(laptop, tmp_path / "office.sqlite")  # the office knows chen's key
    _sid, signed_doc = recorded_session(laptop, clock, sign=True)
    _other, document = recorded_session(tmp_path / "other.sqlite", clock, sign=False)
    document["tables"]["signatures"] = signed_doc["tables"]["signatures"]
    document["tables"]["signature_seals"] = signed_doc["tables"]["signature_seals"]
    here, elsewhere, signed = import_into(
        tmp_path / "office.sqlite", clock, write(tmp_path, "lifted.json", document)
    )
    assert here == [] and not signed
    assert [r["status"] for r in elsewhere] == ["invalid"]


def test_a_real_signature_is_verified_when_the_key_is_known_here(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    laptop = tmp_path / "laptop.sqlite"
    clinic_with_chen(laptop, clock)
    shutil.copy(laptop, tmp_path / "office.sqlite")  # knows chen's key (same accounts)
    fresh = tmp_path / "fresh.sqlite"
    open_store(fresh, clock).close()  # knows no key
    _sid, document = recorded_session(laptop, clock, sign=True)
    source = write(tmp_path, "signed.json", document)

    here, elsewhere, signed = import_into(tmp_path / "office.sqlite", clock, source)
    assert here == [] and not signed
    (row,) = elsewhere
    assert (row["signer"], row["printed_name"], row["status"]) == ("chen", "Dr M. Chen", "verified")

    _here, elsewhere, _signed = import_into(fresh, clock, source)
    assert [r["status"] for r in elsewhere] == ["unknown_key"]

    document["tables"]["signature_seals"][0]["meaning"] = "approved without review"
    document["tables"]["signatures"][0]["meaning"] = "approved without review"
    (tmp_path / "again").mkdir()
    altered = write(tmp_path / "again", "altered.json", document)
    _here, elsewhere, _signed = import_into(tmp_path / "again.sqlite", clock, altered)
    assert [r["status"] for r in elsewhere] == ["invalid"]


def test_a_status_in_the_file_is_never_believed(tmp_path: Path) -> None:
    """A file that already says ``imported_signatures … status: verified`` is checked again."""
    clock = FakeClock(T0)
    office = tmp_path / "office.sqlite"
    clinic_with_chen(office, clock)
    _sid, document = recorded_session(tmp_path / "laptop.sqlite", clock, sign=False)
    document["tables"]["imported_signatures"] = [
        {
            "ref": 1,
            "signer": "chen",
            "printed_name": "Dr M. Chen",
            "role": "supervisor",
            "meaning": "reviewed and approved",
            "signed_at": "2026-03-01T12:00:00.000Z",
            "signature": "00" * 64,
            "statement": "{}",
            "status": "verified",
            "observed_at": "2026-03-01T12:00:00.000Z",
            "recorded_at": "2026-03-01T12:00:00.000Z",
            "recorded_by": "someone",
        }
    ]
    _here, elsewhere, signed = import_into(office, clock, write(tmp_path, "claim.json", document))
    assert not signed
    assert [(r["status"], r["recorded_by"]) for r in elsewhere] == [("invalid", "admin")]


def test_an_attestation_arrives_as_signed_elsewhere_too(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    laptop = tmp_path / "laptop.sqlite"
    store = open_store(laptop, clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "rivera", "Dr. A. Rivera", "clinician", "birch-valley-18")
    store.close()
    shutil.copy(laptop, tmp_path / "office.sqlite")  # knows rivera's key
    store = open_store(laptop, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(2)):
        pass
    session_id = store.list_sessions()[0]["id"]
    Review(store).attest(session_id, "rivera", "birch-valley-18")
    document = json.loads(document_text(build_session_document(store.db, session_id)))
    store.close()
    assert len(document["tables"]["attestations"]) == 1
    here, elsewhere, signed = import_into(
        tmp_path / "office.sqlite", clock, write(tmp_path, "attested.json", document)
    )
    assert here == [] and not signed
    office = open_store(tmp_path / "office.sqlite", clock)
    assert Review(office).attestations(session_id) == []  # never an attestation made here
    office.close()
    assert [(r["printed_name"], r["meaning"], r["status"]) for r in elsewhere] == [
        ("Dr. A. Rivera", "attests the record at the session's end", "verified")
    ]
