"""``kapmonitor verify`` on the command line: exit 0 with a summary, 1 naming each problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapmonitor.cli import main
from tests.store.test_audit_trail import raw


def test_verify_on_the_command_line(demo_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--db", str(demo_path)]) == 0
    assert capsys.readouterr().out.startswith("OK: audit chain intact")
    conn = raw(demo_path)
    conn.execute("UPDATE observations SET moaas = 5")
    conn.commit()
    assert main(["verify", "--db", str(demo_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED:") and "observations row" in out
