"""Anchors: where the chain head is written outside the file, and how verify reads them back."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapmonitor.cli import main
from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.settings import ANCHOR_LOG_FOLDER, Settings
from kapmonitor.store import anchors, backup
from kapmonitor.store.database import connect_readonly
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store


@pytest.fixture
def usb(tmp_path: Path) -> Iterator[Path]:
    """The clinic's chosen second place for the anchor log."""
    folder = tmp_path / "usb"
    settings = Settings()
    settings.set(ANCHOR_LOG_FOLDER, str(folder))
    yield folder
    settings.set(ANCHOR_LOG_FOLDER, "")


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(4)):
        pass
    store.close()
    return path


def _head(path: Path) -> tuple[int, str]:
    conn = sqlite3.connect(path)
    found = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    return int(found[0]), str(found[1])


def test_each_backup_appends_a_line_to_the_anchor_log_and_leaves_a_sidecar(
    recorded: Path, usb: Path
) -> None:
    first = backup.take_backup(recorded, recorded.parent / "b1")
    second = backup.take_backup(recorded, recorded.parent / "b2")
    lines = (usb / anchors.LOG_NAME).read_text().splitlines()
    assert len(lines) == 2
    entry, mac = _head(recorded)
    record = json.loads(lines[-1])
    assert set(record) == {"at", "db", "entry", "mac", "event", "file"}
    assert (record["entry"], record["mac"], record["event"]) == (entry, mac, "backup")
    assert record["file"] == str(second.path)
    for taken in (first, second):
        sidecar = json.loads(Path(f"{taken.path}.anchor").read_text())
        assert (sidecar["entry"], sidecar["mac"]) == (entry, mac)
    assert oct((usb / anchors.LOG_NAME).stat().st_mode & 0o777) == "0o600"


def test_a_head_typed_from_a_printout_is_checked(recorded: Path) -> None:
    entry, mac = _head(recorded)
    report = verify_database(recorded, anchors=[f"#{entry}:{mac[:16]}"])
    assert report.ok and report.anchors_checked == 1
    wrong = "0" * 16
    assert verify_database(recorded, anchors=[f"#{entry}:{wrong}"]).problems == [
        f"audit entry #{entry} differs from what it recorded (anchor typed head): the history "
        "was rewritten after it was anchored"
    ]


def test_an_export_carries_the_head_beside_it(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    conn = sqlite3.connect(recorded)
    (session_id,) = conn.execute("SELECT id FROM sessions").fetchone()
    conn.close()
    assert (
        main(
            [
                "export",
                "--db",
                str(recorded),
                "--session",
                session_id,
                "--format",
                "json",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    sidecar = Path(f"{out}.anchor")
    assert json.loads(sidecar.read_text())["event"] == "export"
    report = verify_database(recorded, anchors=[out])  # the head inside it, and its sidecar
    assert report.ok and report.anchors_checked == 2


def test_an_anchor_of_another_database_or_none_at_all(recorded: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    open_store(other).close()
    taken = backup.take_backup(other, tmp_path / "other-backups")
    reader = connect_readonly(other)
    theirs = anchors.identity(reader)
    reader.conn.close()
    reader = connect_readonly(recorded)
    mine = anchors.identity(reader)
    reader.conn.close()
    (found,) = verify_database(recorded, anchors=[taken.path]).problems
    assert found.startswith(f"anchor {taken.path.name}.anchor, ")  # read from its sidecar
    assert found.endswith(
        f": belongs to another database (identity {theirs}; this file's is {mine})"
    )
    missing = tmp_path / "nowhere.jsonl"
    assert verify_database(recorded, anchors=[missing]).problems == [
        f"anchor {missing}: cannot be read ({missing} does not exist)"
    ]


def test_verify_on_the_command_line_exits_non_zero_when_an_anchor_disagrees(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry, mac = _head(recorded)
    assert main(["verify", "--db", str(recorded), "--anchors", f"#{entry}:{mac[:16]}"]) == 0
    assert "1 anchor(s) agree" in capsys.readouterr().out
    assert main(["verify", "--db", str(recorded), "--anchors", f"#{entry + 5}:{mac[:16]}"]) != 0
    out = capsys.readouterr().out
    assert out.startswith("FAILED: 1 problem(s) found")
    assert f"the trail ends at entry #{entry}, but anchor typed head recorded entry" in out


def test_an_unwritable_anchor_log_does_not_undo_a_backup(recorded: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    settings = Settings()
    settings.set(ANCHOR_LOG_FOLDER, str(blocker))
    try:
        taken = backup.take_backup(recorded, tmp_path / "b")
        reader = connect_readonly(recorded)
        said = anchors.note(reader, "backup")
        reader.conn.close()
    finally:
        settings.set(ANCHOR_LOG_FOLDER, "")
    assert taken.path.exists() and Path(f"{taken.path}.anchor").exists()
    assert len(said) == 1 and said[0].startswith("the anchor log could not be written")
