"""The clinic's settings live in the database: administrators only, append-only, audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store.accounts import AccessRefused, Accounts
from kapmonitor.store.clinic_settings import ClinicSettings
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store, protocols


@pytest.fixture
def setup(tmp_path: Path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "c.sqlite", clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", "linden-river-31")
    yield store, ClinicSettings(store.db, clock), admin, lee
    store.close()


def audit_rows(store, action: str) -> list[dict]:
    """The audit entries of ``action``, by column name."""
    return list(
        store.db.query("SELECT actor, table_name, detail FROM audit WHERE action = ?", [action])
    )


def test_automatic_until_an_administrator_chooses(setup) -> None:
    store, clinic, admin, _lee = setup
    assert clinic.idle_lock_minutes() is None
    clinic.set_idle_lock_minutes(admin, 25, protocols().values())
    assert clinic.idle_lock_minutes() == 25
    clinic.set_idle_lock_minutes(admin, None, protocols().values())
    assert clinic.idle_lock_minutes() is None
    values = [r[0] for r in store.db.execute("SELECT value FROM clinic_settings ORDER BY id")]
    assert values == ["25", "null"]  # the history stays
    assert [(r["actor"], r["table_name"]) for r in audit_rows(store, "clinic_setting_changed")] == [
        ("admin", "clinic_settings"),
        ("admin", "clinic_settings"),
    ]
    assert verify_database(store.path).ok


def test_a_clinician_is_refused_and_the_refusal_audited(setup) -> None:
    store, clinic, _admin, lee = setup
    with pytest.raises(AccessRefused, match="may not change the clinic's idle lock"):
        clinic.set_idle_lock_minutes(lee, 30, protocols().values())
    assert clinic.idle_lock_minutes() is None
    assert [r["actor"] for r in audit_rows(store, "refused")] == ["lee"]


def test_a_value_the_protocols_undercut_is_refused(setup) -> None:
    store, clinic, admin, _lee = setup
    with pytest.raises(ValidationError, match="not longer than the shortest check interval"):
        clinic.set_idle_lock_minutes(admin, 10, protocols().values())
    assert clinic.idle_lock_minutes() is None
    assert audit_rows(store, "clinic_setting_changed") == []


def test_history_cannot_be_rewritten(setup) -> None:
    store, clinic, admin, _lee = setup
    clinic.set_idle_lock_minutes(admin, 0, protocols().values())
    assert clinic.idle_lock_minutes() == 0
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("UPDATE clinic_settings SET value = '30'")
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("DELETE FROM clinic_settings")
