"""``export --all`` while a session is being recorded waits its turn and never ends in a traceback.

Before: 3 runs in 25 ended in ``sqlite3.OperationalError: database is locked`` (the export's audit
transaction read the chain head, then asked for the write lock after the bedside had committed:
SQLite answers at once, busy timeout or not) and left PHI written without its audit entry; others
refused with "points to a row outside this session" (a vitals set saved between reading the
vitals and reading their scores). Now the audit entry is written under ``BEGIN IMMEDIATE`` and the
sessions are read in one snapshot. Each trial runs the real command beside a thread that saves
vital signs in a loop on its own connection, as the bedside window does.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from kapmonitor.cli import main
from kapmonitor.domain.records import VitalSigns
from kapmonitor.reports import session_export as staged
from kapmonitor.store import session_transfer
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore
from tests.factories import session_start
from tests.reports import new_store, record_session

TRIALS = 6


@pytest.fixture
def clinic(tmp_path: Path) -> tuple[Path, str]:
    """Three recorded sessions and one open session the writer keeps adding to."""
    db = tmp_path / "clinic.sqlite"
    store, clock = new_store(db)
    for seed in range(3):
        record_session(store, clock, seed=seed, day=seed)
    open_session = store.start_session(session_start(clock), "Dr A")
    store.close()
    return db, open_session


class Recorder(threading.Thread):
    """Saves vital signs in a loop until stopped; keeps every error it met."""

    def __init__(self, db: Path, session_id: str) -> None:
        super().__init__(daemon=True)
        self.db, self.session_id = db, session_id
        self.stop = threading.Event()
        self.started_saving = threading.Event()
        self.saved = 0
        self.errors: list[str] = []

    def run(self) -> None:
        store = SessionStore.open(self.db)
        try:
            while not self.stop.is_set():
                vitals = VitalSigns(
                    observed_at=store.clock.now(), hr=80, sbp=120, dbp=80, spo2=97, rr=14
                )
                try:
                    store.add(self.session_id, vitals, "Dr A")
                    self.saved += 1
                except Exception as exc:  # the test fails on any, named
                    self.errors.append(repr(exc))
                self.started_saving.set()
        finally:
            store.close()


def _exports_audited(db: Path, out: Path) -> set[str]:
    raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = raw.execute(
            "SELECT session_id, detail FROM audit WHERE action = 'export'"
        ).fetchall()
    finally:
        raw.close()
    return {sid for sid, detail in rows if json.loads(detail).get("file") == str(out)}


@pytest.mark.parametrize("fmt", ["json", "csv", "fhir"])
def test_export_all_during_recording_waits_and_is_audited(
    clinic: tuple[Path, str], tmp_path: Path, fmt: str, capsys
) -> None:
    db, open_session = clinic
    for trial in range(TRIALS):
        recorder = Recorder(db, open_session)
        recorder.start()
        recorder.started_saving.wait()
        out = tmp_path / f"{fmt}-{trial}"
        try:
            code = main(["export", "--db", str(db), "--all", "--format", fmt, "--out", str(out)])
        finally:
            recorder.stop.set()
            recorder.join()
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "Traceback" not in captured.err and "locked" not in captured.err
        assert recorder.errors == [] and recorder.saved > 0
        assert len(_exports_audited(db, out)) == 4, f"trial {trial}: an export without its entry"
        assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left


def test_the_audit_entry_is_committed_before_any_file_is_published(
    clinic: tuple[Path, str], tmp_path: Path, monkeypatch, capsys
) -> None:
    db, _open = clinic
    out = tmp_path / "out"
    seen: list[int] = []
    real_replace = os.replace

    def publishing(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        if Path(dst).parent == out:  # a file being published into --out
            seen.append(len(_exports_audited(db, out)))  # read on another connection
        real_replace(src, dst)

    monkeypatch.setattr(staged.os, "replace", publishing)
    assert main(["export", "--db", str(db), "--all", "--format", "json", "--out", str(out)]) == 0
    capsys.readouterr()
    assert seen and all(n == 4 for n in seen)


def test_a_failed_audit_entry_publishes_nothing(
    clinic: tuple[Path, str], tmp_path: Path, monkeypatch, capsys
) -> None:
    db, _open = clinic
    out = tmp_path / "out"

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise StoreError("The disk holding the database is full or failing.", "full")

    monkeypatch.setattr(session_transfer, "record_export", refuse)
    code = main(["export", "--db", str(db), "--all", "--format", "json", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "full or failing" in err and "Traceback" not in err
    assert not out.exists()  # the folder it made, the staged files: all gone
