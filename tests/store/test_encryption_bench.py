"""``kapmonitor bench`` shows what encryption costs: the same save and the same verify, with
SQLCipher and plain, measured in one run (no time is asserted: the figures are reported)."""

from __future__ import annotations

import re
from pathlib import Path

from kapmonitor.bench_crypto import crypto_rows
from kapmonitor.bench_table import print_table


def test_the_encryption_figures_are_each_measured_beside_their_plain_floor(
    tmp_path: Path,
) -> None:
    rows = crypto_rows(tmp_path, readings=120, saves=5)
    lines: list[str] = []
    print_table(rows, lines.append)
    table = "\n".join(lines)
    for figure, floor in (
        ("save vitals, SQLCipher", "the same save, plain SQLite"),
        ("… p99", "plain p99"),
        ("verify, SQLCipher", "verify, plain"),
    ):
        line = next(ln for ln in table.splitlines() if figure in ln)
        assert floor in line and re.search(r"\d+(\.\d+)? ms|rows/s", line)
        row = next(r for r in rows if figure in r.name)
        assert row.value is not None and row.floor is not None and row.value > 0
    assert "intact" in table
    assert any("unlock" in r.name and r.value for r in rows)
    encrypted = tmp_path / "crypt-encrypted.sqlite"
    assert not encrypted.read_bytes().startswith(b"SQLite format 3")
    assert (tmp_path / "crypt-plain.sqlite").read_bytes().startswith(b"SQLite format 3")
