"""Accounts on an encrypted database: each account's password opens the database (its key
slot follows the account), the idle-lock PIN never does, and the name digest is keyed with a
secret only the key slots hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store import encrypted_store, encryption, key_slots
from kapmonitor.store.accounts import AccessRefused, Accounts
from kapmonitor.store.database import StoreError
from kapmonitor.store.key_slots import PLAIN_KEYS, KdfCost
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0

LEE = "linden-river-31"


@pytest.fixture(autouse=True)
def cheap_slots(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(key_slots, "PASSWORD_COST", KdfCost(n=2**10))
    monkeypatch.setattr(key_slots, "RECOVERY_COST", KdfCost(n=2**10))
    encryption.forget_all()
    yield
    encryption.forget_all()


def test_the_pin_never_unlocks_the_database_and_the_password_does(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    opened = encrypted_store.create(path, clock, "admin", "Alex Admin", "alpine-harbour-7")
    store = SessionStore.open(path, clock, keys=opened.keys)
    accounts = Accounts(store.db, clock)
    admin = accounts.find("admin")
    lee = accounts.create_user(admin, "lee", "Dr Lee", "clinician", LEE)
    accounts.set_pin(lee, LEE, "4821")
    digest = accounts.name_digest("lee")
    store.close()
    encryption.forget_all()

    with pytest.raises(StoreError):
        encrypted_store.unlock(path, "lee", "4821", clock)
    assert encrypted_store.unlock(path, "LEE", LEE, clock).keys == opened.keys
    store = SessionStore.open(path, clock, keys=opened.keys)
    accounts = Accounts(store.db, clock)
    with pytest.raises(AccessRefused):
        accounts.sign_in("lee", "4821")
    # The digest of a typed name is keyed by the database key, not the public plain key.
    plain = Accounts(store.db, clock)
    key_slots.attach(plain.db, PLAIN_KEYS)
    assert plain.name_digest("lee") != digest
    store.close()
