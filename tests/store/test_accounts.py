"""Accounts: hashed secrets, first-run administrator, roles, slowing down repeated failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store.accounts import (
    FIRST_WAIT_SECONDS,
    FREE_ATTEMPTS,
    AccessRefused,
    Accounts,
    check_secret,
    hash_secret,
)
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store


@pytest.fixture
def setup(tmp_path: Path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "a.sqlite", clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "admin-secret")
    yield store, accounts, admin, clock
    store.close()


def test_secrets_are_hashed_with_scrypt_and_never_stored_plain(setup) -> None:
    store, accounts, admin, _clock = setup
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", "123456")
    stored = [r[0] for r in store.db.execute("SELECT password_hash FROM users")]
    assert all(h.startswith("scrypt$16384$8$1$") for h in stored)
    assert not any("123456" in h or "admin-secret" in h for h in stored)
    dump = "\n".join(sqlite3.connect(store.path).iterdump())
    assert "123456" not in dump and "admin-secret" not in dump
    assert len(set(stored)) == 2


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_a_hash_accepts_only_its_own_secret(secret: str, other: str) -> None:
    stored = hash_secret(secret)
    assert check_secret(secret, stored)
    assert check_secret(other, stored) == (other == secret)
    assert not check_secret(secret, "scrypt$garbage")


def test_first_run_creates_the_administrator_once(setup) -> None:
    _store, accounts, admin, _clock = setup
    assert admin.role == "administrator"
    with pytest.raises(AccessRefused, match="already exists"):
        accounts.create_first_administrator("other", "Other", "another-secret")


def test_only_an_administrator_creates_accounts_and_the_refusal_is_audited(setup) -> None:
    store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", "123456")
    with pytest.raises(AccessRefused, match="needs a administrator account"):
        accounts.create_user(lee, "kim", "Nurse Kim", "clinician", "654321")
    (refused,) = store.db.query("SELECT actor, detail FROM audit WHERE action = 'refused'")
    assert refused["actor"] == "lee" and "create an account" in refused["detail"]
    assert accounts.find("kim") is None


def test_bad_account_details_are_refused_with_reasons(setup) -> None:
    _store, accounts, admin, _clock = setup
    with pytest.raises(ValidationError) as caught:
        accounts.create_user(admin, "x", "", "nurse", "123")
    fields = {e.field for e in caught.value.errors}
    assert fields == {"username", "display_name", "role", "password"}


def test_sign_in_and_failures_are_audited(setup) -> None:
    store, accounts, admin, _clock = setup
    assert accounts.sign_in("admin", "admin-secret") == admin
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.sign_in("admin", "wrong-secret")
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.sign_in("nobody", "whatever")
    actions = [r[0] for r in store.db.execute("SELECT action FROM audit WHERE table_name IS NULL")]
    assert actions == ["sign_in", "sign_in_failed", "sign_in_failed"]
    assert verify_database(store.path).ok


def test_repeated_failures_slow_down_by_stored_time(setup) -> None:
    _store, accounts, _admin, clock = setup
    for _ in range(FREE_ATTEMPTS):
        with pytest.raises(AccessRefused, match="Wrong"):
            accounts.sign_in("admin", "wrong-secret")
    assert accounts.seconds_to_wait("admin") == FIRST_WAIT_SECONDS
    with pytest.raises(AccessRefused, match=f"wait {FIRST_WAIT_SECONDS} s"):
        accounts.sign_in("admin", "admin-secret")  # even the right password waits
    clock.advance(seconds=FIRST_WAIT_SECONDS)
    with pytest.raises(AccessRefused, match="Wrong"):
        accounts.sign_in("admin", "wrong-again")
    assert accounts.seconds_to_wait("admin") == 2 * FIRST_WAIT_SECONDS  # doubling
    clock.advance(seconds=2 * FIRST_WAIT_SECONDS)
    assert accounts.sign_in("admin", "admin-secret").username == "admin"
    assert accounts.seconds_to_wait("admin") == 0  # a success resets the count


def test_password_change_is_audited_and_verified(setup) -> None:
    store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", "123456")
    accounts.set_secret(lee, "lee", "new-secret")
    assert accounts.sign_in("lee", "new-secret") == lee
    with pytest.raises(AccessRefused):
        accounts.set_secret(lee, "admin", "hijacked!")
    assert verify_database(store.path).ok
    conn = sqlite3.connect(store.path)  # a password swapped with raw SQL is caught
    conn.execute("UPDATE users SET password_hash = ? WHERE username = 'admin'", [hash_secret("x")])
    conn.commit()
    assert any("users row" in p for p in verify_database(store.path).problems)


def test_users_cannot_be_deleted_or_renamed(setup) -> None:
    store, _accounts, _admin, _clock = setup
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="cannot be deleted"):
        conn.execute("DELETE FROM users")
    with pytest.raises(sqlite3.IntegrityError, match="keeps its user name"):
        conn.execute("UPDATE users SET username = 'root'")


def test_emergency_access_is_logged_and_cannot_review(setup) -> None:
    store, accounts, _admin, _clock = setup
    with pytest.raises(ValidationError):
        accounts.emergency_access("", "no")
    user = accounts.emergency_access("Sam Locum", "laptop accounts unavailable, patient dosed")
    assert user.display_name == "Sam Locum (emergency access)" and user.role == "clinician"
    (detail,) = store.db.execute(
        "SELECT detail FROM audit WHERE action = 'emergency_access'"
    ).fetchone()
    assert "patient dosed" in detail
    with pytest.raises(AccessRefused):
        accounts.require(user, "supervisor", action="sign a session")
