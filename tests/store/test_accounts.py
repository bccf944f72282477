"""Accounts: hashed secrets, first-run administrator, roles, slowing down repeated failures,
names compared in one form, no typed name in the audit trail, the passphrase rule, the PIN."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store import accounts as accounts_module
from kapmonitor.store.accounts import (
    FIRST_WAIT_SECONDS,
    FREE_ATTEMPTS,
    MIN_PASSWORD_LENGTH,
    PIN_TRIES,
    AccessRefused,
    Accounts,
    check_secret,
    common_passwords,
    hash_secret,
    password_problems,
)
from kapmonitor.store.signatures import KdfCost
from kapmonitor.store.verify import verify_database
from tests.conftest import TEST_PASSWORD_COST
from tests.factories import T0, open_store

ADMIN_PASSWORD = "alpine-harbour-7"
LEE_PASSWORD = "linden-river-31"


@pytest.fixture
def setup(tmp_path: Path):
    clock = FakeClock(T0)
    store = open_store(tmp_path / "a.sqlite", clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", ADMIN_PASSWORD)
    yield store, accounts, admin, clock
    store.close()


def raw_bytes(path: Path) -> bytes:
    """The database file and its WAL as they are on disk."""
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_the_clinic_cost_is_the_measured_one() -> None:
    """2**17 × 8: 0.40–0.45 s per check measured here (2**16 was 0.20 s, under 250 ms)."""
    assert KdfCost(*TEST_PASSWORD_COST) == accounts_module.PASSWORD_COST  # the tests' own
    assert KdfCost(n=2**17, r=8, p=1) == accounts_module.CLINIC_PASSWORD_COST


def test_secrets_are_hashed_with_scrypt_and_never_stored_plain(setup) -> None:
    store, accounts, admin, _clock = setup
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    stored = [r[0] for r in store.db.execute("SELECT password_hash FROM users")]
    n, r, p = TEST_PASSWORD_COST
    assert all(h.startswith(f"scrypt${n}${r}${p}$") for h in stored)
    assert not any(LEE_PASSWORD in h or ADMIN_PASSWORD in h for h in stored)
    dump = "\n".join(sqlite3.connect(store.path).iterdump())
    assert LEE_PASSWORD not in dump and ADMIN_PASSWORD not in dump
    assert len(set(stored)) == 2


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_a_hash_accepts_only_its_own_secret(secret: str, other: str) -> None:
    stored = hash_secret(secret, KdfCost(2**4, 8, 1))
    assert check_secret(secret, stored)
    assert check_secret(other, stored) == (other == secret)
    assert not check_secret(secret, "scrypt$garbage")


def test_an_old_hash_still_verifies_and_is_rehashed_at_the_current_cost(setup) -> None:
    """Hashes from before the raised cost (N=16384, no policy mark) keep working: the first
    successful sign-in rehashes them, and a short old password keeps working until changed,
    listed for the administrator to reset."""
    store, accounts, _admin, _clock = setup
    old = hash_secret("123456", KdfCost(2**14, 8, 1), meets_policy=False)
    assert old.count("$") == 5  # the format written before this change
    conn = sqlite3.connect(store.path)
    conn.execute(
        "INSERT INTO users (username, display_name, role, password_hash, observed_at, "
        "recorded_at, recorded_by) VALUES ('old', 'Old Timer', 'clinician', ?, "
        "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'admin')",
        [old],
    )
    conn.commit()
    conn.close()
    assert accounts.sign_in("old", "123456").username == "old"
    (rehashed,) = store.db.execute("SELECT password_hash FROM users WHERE username = 'old'")
    n, r, p = TEST_PASSWORD_COST
    assert rehashed[0].startswith(f"scrypt${n}${r}${p}$") and check_secret("123456", rehashed[0])
    assert accounts.weak_passwords() == ["old"]
    assert accounts.signing_key("old") is not None  # made at the first password entry
    accounts.set_secret(accounts.find("old"), "old", "quiet-orchard-lamp", "123456")
    assert accounts.weak_passwords() == []


def test_first_run_creates_the_administrator_once(setup) -> None:
    _store, accounts, admin, _clock = setup
    assert admin.role == "administrator"
    with pytest.raises(AccessRefused, match="already exists"):
        accounts.create_first_administrator("other", "Other", "another-long-secret")


def test_only_an_administrator_creates_accounts_and_the_refusal_is_audited(setup) -> None:
    store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    with pytest.raises(AccessRefused, match="needs a administrator account"):
        accounts.create_user(lee, "kim", "Nurse Kim", "clinician", "kestrel-dawn-52")
    (refused,) = store.db.query("SELECT actor, detail FROM audit WHERE action = 'refused'")
    assert refused["actor"] == "lee" and "create an account" in refused["detail"]
    assert accounts.find("kim") is None


def test_bad_account_details_are_refused_with_reasons(setup) -> None:
    _store, accounts, admin, _clock = setup
    with pytest.raises(ValidationError) as caught:
        accounts.create_user(admin, "x", "", "nurse", "123")
    fields = {e.field for e in caught.value.errors}
    assert fields == {"username", "display_name", "role", "password"}


# --- the passphrase rule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("123456", "at least 12 characters"),
        ("short-one", "at least 12 characters"),
        ("qwerty123456", "common passwords"),
        ("QWERTY123456", "common passwords"),  # compared case-insensitively
        ("LeaveMeAlone", "common passwords"),
        ("lee-and-the-river", "must not contain the user name"),
        ("my-LEE-password", "must not contain the user name"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(setup, password: str, words: str) -> None:
    _store, accounts, admin, _clock = setup
    with pytest.raises(ValidationError, match=words):
        accounts.create_user(admin, "lee", "Dr Lee", "clinician", password)
    assert accounts.find("lee") is None


def test_the_bundled_list_is_loaded_and_a_passphrase_passes() -> None:
    listed = common_passwords()
    assert len(listed) > 40_000 and "password" in listed and "qwerty123456" in listed
    assert password_problems("orchid lantern tuesday", "lee") == []
    assert len("x" * MIN_PASSWORD_LENGTH) == 12


def test_a_password_change_and_a_reset_follow_the_rule(setup) -> None:
    _store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    with pytest.raises(ValidationError, match="at least 12"):
        accounts.set_secret(lee, "lee", "new-secret", LEE_PASSWORD)
    with pytest.raises(ValidationError, match="common passwords"):
        accounts.set_secret(admin, "lee", "password1234")
    accounts.set_secret(admin, "lee", "granite-poppy-shore")
    assert accounts.sign_in("lee", "granite-poppy-shore") == lee


# --- sign-in, failures, lock-out ----------------------------------------------------------


def test_sign_in_and_failures_are_audited(setup) -> None:
    store, accounts, admin, _clock = setup
    assert accounts.sign_in("admin", ADMIN_PASSWORD) == admin
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.sign_in("admin", "wrong-secret")
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.sign_in("nobody", "whatever")
    rows = store.db.execute(
        "SELECT action, actor FROM audit WHERE action LIKE 'sign_in%' ORDER BY id"
    ).fetchall()
    assert [a for a, _ in rows] == ["sign_in", "sign_in_failed", "sign_in_failed"]
    assert rows[0][1] == "admin"
    assert all(actor.startswith("name-digest:") for _, actor in rows[1:])
    assert rows[1][1] == accounts.name_digest("admin") != rows[2][1]
    assert verify_database(store.path).ok


def test_names_are_compared_case_and_unicode_insensitively(setup) -> None:
    _store, accounts, admin, _clock = setup
    for typed in ("ADMIN", "Admin", " admin ", "ａｄｍｉｎ"):  # the last is full-width
        assert accounts.sign_in(typed, ADMIN_PASSWORD) == admin
        assert accounts.find(typed) == admin


def test_two_accounts_may_not_differ_only_by_case(setup) -> None:
    _store, accounts, admin, _clock = setup
    accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    for other in ("LEE", "Lee", "ｌｅｅ"):
        with pytest.raises(ValidationError, match="taken"):
            accounts.create_user(admin, other, f"Another {other}", "clinician", "granite-poppy")


def test_an_old_file_with_names_differing_by_case_signs_in_by_exact_spelling(setup) -> None:
    """A database from before may hold ``lee`` and ``Lee.`` … here ``kim``/``KIM`` written
    with SQL (the UNIQUE NOCASE index stops only ASCII case, so use a full-width twin)."""
    store, accounts, admin, _clock = setup
    accounts.create_user(admin, "kim", "Nurse Kim", "clinician", "kestrel-dawn-52")
    twin_hash = hash_secret("another-kestrel-9")
    conn = sqlite3.connect(store.path)
    conn.execute(
        "INSERT INTO users (username, display_name, role, password_hash, observed_at, "
        "recorded_at, recorded_by) VALUES ('ｋｉｍ', 'Kim Twin', 'clinician', ?, "
        "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'admin')",
        [twin_hash],
    )
    conn.commit()
    conn.close()
    assert accounts.sign_in("kim", "kestrel-dawn-52").display_name == "Nurse Kim"
    assert accounts.sign_in("ｋｉｍ", "another-kestrel-9").display_name == "Kim Twin"
    with pytest.raises(AccessRefused, match="Wrong"):  # ambiguous: no exact spelling
        accounts.sign_in("KIM", "kestrel-dawn-52")


def test_repeated_failures_slow_down_by_stored_time(setup) -> None:
    _store, accounts, _admin, clock = setup
    for _ in range(FREE_ATTEMPTS):
        with pytest.raises(AccessRefused, match="Wrong"):
            accounts.sign_in("admin", "wrong-secret")
    assert accounts.seconds_to_wait("admin") == FIRST_WAIT_SECONDS
    with pytest.raises(AccessRefused, match=f"wait {FIRST_WAIT_SECONDS} s"):
        accounts.sign_in("admin", ADMIN_PASSWORD)  # even the right password waits
    clock.advance(seconds=FIRST_WAIT_SECONDS)
    with pytest.raises(AccessRefused, match="Wrong"):
        accounts.sign_in("admin", "wrong-again")
    assert accounts.seconds_to_wait("admin") == 2 * FIRST_WAIT_SECONDS  # doubling
    clock.advance(seconds=2 * FIRST_WAIT_SECONDS)
    assert accounts.sign_in("admin", ADMIN_PASSWORD).username == "admin"
    assert accounts.seconds_to_wait("admin") == 0  # a success resets the count


def test_lock_out_holds_across_case_variants_and_restarts(tmp_path: Path) -> None:
    """The attack: while ``super`` was locked, guesses went through as ``SuPeR``, ``sUper``…"""
    clock = FakeClock(T0)
    path = tmp_path / "l.sqlite"
    store = open_store(path, clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", ADMIN_PASSWORD)
    accounts.create_user(admin, "super", "Dr Super", "supervisor", "copper-meadow-9")
    for typed in ("super", "SUPER", "Super", "sUPER", "super"):
        with pytest.raises(AccessRefused, match="Wrong"):
            accounts.sign_in(typed, "guess-number")
    store.close()

    store = open_store(path, clock)  # a restart
    accounts = Accounts(store.db, clock)
    for typed in ("super", "SuPeR", "sUper", "ＳＵＰＥＲ", "ｓｕｐｅｒ", " Super "):
        assert accounts.seconds_to_wait(typed) == FIRST_WAIT_SECONDS
        with pytest.raises(AccessRefused, match=f"wait {FIRST_WAIT_SECONDS} s"):
            accounts.sign_in(typed, "copper-meadow-9")  # even the right password waits
    clock.advance(seconds=FIRST_WAIT_SECONDS)
    assert accounts.sign_in("SuPeR", "copper-meadow-9").username == "super"
    assert accounts.seconds_to_wait("sUper") == 0
    store.close()


def test_a_password_typed_into_the_user_name_box_is_not_stored(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "p.sqlite"
    store = open_store(path, clock)
    accounts = Accounts(store.db, clock)
    accounts.create_first_administrator("admin", "Alex Admin", ADMIN_PASSWORD)
    typed = "Tr0ub4dor-zebra-99"  # someone's password, typed into the user-name box
    for _ in range(3):
        with pytest.raises(AccessRefused):
            accounts.sign_in(typed, "")
    for attempt in range(FREE_ATTEMPTS):  # it still locks out, on the digest
        with pytest.raises(AccessRefused):
            accounts.sign_in(typed.upper() if attempt % 2 else typed, "x")
    assert accounts.seconds_to_wait(typed) > 0
    with pytest.raises(AccessRefused, match="wait"):
        accounts.sign_in(typed, "")
    text = "\n".join(
        " ".join(str(v) for v in row) for row in store.db.execute("SELECT * FROM audit")
    )
    assert typed.lower() not in text.lower()
    store.db.execute("PRAGMA wal_checkpoint(FULL)")
    store.close()
    raw = raw_bytes(path)
    for form in (typed, typed.upper(), typed.lower()):
        assert form.encode() not in raw
        assert form.encode("utf-16-le") not in raw


def test_password_change_is_audited_and_verified(setup) -> None:
    store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    accounts.set_secret(lee, "lee", "granite-poppy-shore", LEE_PASSWORD)
    assert accounts.sign_in("lee", "granite-poppy-shore") == lee
    with pytest.raises(AccessRefused):
        accounts.set_secret(lee, "admin", "hijacked-account-now")
    assert verify_database(store.path).ok
    conn = sqlite3.connect(store.path)  # a password swapped with raw SQL is caught
    conn.execute("UPDATE users SET password_hash = ? WHERE username = 'admin'", [hash_secret("x")])
    conn.commit()
    assert any("users row" in p for p in verify_database(store.path).problems)


def test_own_password_change_keeps_the_key_and_a_reset_makes_a_new_one(setup) -> None:
    _store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    first = accounts.signing_key("lee")
    accounts.set_secret(lee, "lee", "granite-poppy-shore", LEE_PASSWORD)
    changed = accounts.signing_key("lee")
    assert changed.public_key == first.public_key and changed.reason == "password_changed"
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.set_secret(lee, "lee", "another-good-phrase", "not-my-password")
    accounts.set_secret(admin, "lee", "reset-by-the-admin-1")
    reset = accounts.signing_key("lee")
    assert reset.public_key != first.public_key and reset.reason == "password_reset"


def test_roles_change_only_through_the_administrators_audited_path(setup) -> None:
    store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    with pytest.raises(AccessRefused):
        accounts.change_role(lee, "lee", "supervisor")
    accounts.change_role(admin, "lee", "supervisor")
    assert accounts.find("lee").role == "supervisor"
    history = [
        r[0] for r in store.db.execute("SELECT role FROM account_roles WHERE username='lee'")
    ]
    assert history == ["clinician", "supervisor"]


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


# --- the idle-lock PIN ----------------------------------------------------------------------


def test_a_pin_is_4_to_8_digits_and_needs_the_password_to_set(setup) -> None:
    _store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.set_pin(lee, "not-the-password", "4821")
    for bad in ("123", "123456789", "12a4", "４８２１"):
        with pytest.raises(ValidationError, match="4 to 8 digits"):
            accounts.set_pin(lee, LEE_PASSWORD, bad)
    assert not accounts.has_pin("lee")
    accounts.set_pin(lee, LEE_PASSWORD, "4821")
    assert accounts.has_pin("lee")
    assert accounts.unlock_with_pin(lee, "4821") == lee


def test_a_pin_never_signs_in(setup) -> None:
    store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    accounts.set_pin(lee, LEE_PASSWORD, "4821")
    with pytest.raises(AccessRefused, match="Wrong user name or password"):
        accounts.sign_in("lee", "4821")
    with pytest.raises(AccessRefused):
        accounts.unlock_signing_key("lee", "4821")
    stored = store.db.execute("SELECT pin_hash FROM account_pins").fetchone()[0]
    assert "4821" not in stored and check_secret("4821", stored)


def test_wrong_pins_are_limited_then_the_password_is_required(setup) -> None:
    _store, accounts, admin, _clock = setup
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    accounts.set_pin(lee, LEE_PASSWORD, "4821")
    for _ in range(PIN_TRIES):
        with pytest.raises(AccessRefused, match="Wrong PIN"):
            accounts.unlock_with_pin(lee, "0000")
    with pytest.raises(AccessRefused, match="unlock with the password"):
        accounts.unlock_with_pin(lee, "4821")  # even the right PIN
    assert accounts.pin_tries_left("lee") == 0
    accounts.sign_in("lee", LEE_PASSWORD)  # the password resets it
    assert accounts.pin_tries_left("lee") == PIN_TRIES
    assert accounts.unlock_with_pin(lee, "4821") == lee


def test_a_missing_password_list_is_a_plain_refusal(setup, monkeypatch, tmp_path: Path) -> None:
    from kapmonitor.store.database import StoreError

    _store, accounts, admin, _clock = setup
    common_passwords.cache_clear()
    monkeypatch.setattr(accounts_module, "resources_dir", lambda: tmp_path / "nowhere")
    try:
        with pytest.raises(StoreError, match="reinstall KAP Monitor"):
            accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE_PASSWORD)
    finally:
        common_passwords.cache_clear()
    assert accounts.find("lee") is None
