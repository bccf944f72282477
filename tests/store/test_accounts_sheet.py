"""``kapmonitor accounts --sheet``: every account's signing-key fingerprints on stdout, and
nothing secret (no password, no wrapped key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor import cli
from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.signatures import printable
from tests.factories import T0, open_store


def test_the_account_sheet_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    accounts = Accounts(store.db, clock)
    admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
    accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
    chen = accounts.signing_key("chen")
    store.close()
    assert cli.main(["accounts", "--sheet", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "chen — Dr M. Chen — supervisor" in out
    assert printable(chen.fingerprint) in out
    assert "copper-meadow-9" not in out and chen.wrapped_key[:40] not in out
    assert "sealed" not in out
