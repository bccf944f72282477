"""Files holding PHI are readable by their owner only (0600, folders 0700) whatever the umask.

Run under umask 022, the usual one, under which a plainly created file is 0644: every test here
would fail if the app left the mode to the umask. (Root ignores modes when reading, so these
tests assert the bits, which is what protects the file from another, unprivileged account.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapmonitor.cli import main
from kapmonitor.store import file_modes
from kapmonitor.store.backup import take_backup
from kapmonitor.store.file_modes import (
    create_private,
    mode_of,
    open_private,
    private_file,
    private_folder,
    private_tree,
)
from tests.reports import new_store, record_session


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_umask_alone_would_leave_files_world_readable(tmp_path: Path) -> None:
    """The premise: without the helpers, this umask gives 0644 and 0755."""
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    assert mode_of(tmp_path / "plain.txt") == 0o644
    assert mode_of(tmp_path / "plain") == 0o755


def test_helpers_create_private_files_and_folders(tmp_path: Path) -> None:
    with open_private(tmp_path / "a.bin", "wb") as fh:
        fh.write(b"phi")
    assert mode_of(tmp_path / "a.bin") == 0o600
    with open_private(tmp_path / "t.txt", "w", encoding="utf-8") as fh:
        fh.write("phi")
    assert mode_of(tmp_path / "t.txt") == 0o600
    create_private(tmp_path / "empty")
    assert mode_of(tmp_path / "empty") == 0o600
    made = private_folder(tmp_path / "new" / "deeper")
    assert mode_of(made) == 0o700 and mode_of(tmp_path / "new") == 0o700
    (tmp_path / "wide.txt").write_text("old")
    os.chmod(tmp_path / "wide.txt", 0o664)
    private_file(tmp_path / "wide.txt")
    assert mode_of(tmp_path / "wide.txt") == 0o600
    with open_private(tmp_path / "wide.txt", "a") as fh:  # an existing wide file is narrowed
        fh.write("more")
    assert (tmp_path / "wide.txt").read_text() == "oldmore"


def test_an_existing_named_folder_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    private_folder(shared)
    assert mode_of(shared) == 0o755


def test_open_private_refuses_a_read_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        open_private(tmp_path / "x", "rb")


def test_database_wal_shm_and_new_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "clinic.sqlite"
    store, clock = new_store(path)
    record_session(store, clock)
    assert Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert mode_of(name) == 0o600, name
    assert mode_of(path.parent) == 0o700
    store.close()


def test_a_file_left_world_readable_by_an_older_version_is_narrowed_on_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    store, _clock = new_store(path)
    store.close()
    os.chmod(path, 0o644)
    keys = Path(f"{path}.keys")  # the key-slot sidecar, as an older build might have left it
    keys.write_text("{}")
    os.chmod(keys, 0o644)
    store, _clock = new_store(path)
    try:
        assert mode_of(path) == 0o600
        assert mode_of(f"{path}-wal") == 0o600
        assert mode_of(keys) == 0o600
    finally:
        store.close()


def test_the_apps_own_data_folder_is_narrowed(tmp_path: Path, monkeypatch) -> None:
    own = tmp_path / "own"
    own.mkdir(mode=0o755)
    monkeypatch.setattr("kapmonitor.paths.user_data_dir", lambda: own)
    store, _clock = new_store(own / "kapmonitor.sqlite")
    store.close()
    assert mode_of(own) == 0o700
    named = tmp_path / "named"  # a folder the user named with --db keeps its mode
    named.mkdir(mode=0o755)
    store, _clock = new_store(named / "x.sqlite")
    store.close()
    assert mode_of(named) == 0o755 and mode_of(named / "x.sqlite") == 0o600


def test_backups_are_private(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite"
    store, clock = new_store(path)
    record_session(store, clock)
    store.close()
    taken = take_backup(path)
    assert mode_of(taken.path) == 0o600
    assert mode_of(taken.path.parent) == 0o700


@pytest.mark.parametrize("fmt", ["json", "csv", "fhir", "pdf"])
def test_every_export_format_is_private(tmp_path: Path, fmt: str, capsys) -> None:
    path = tmp_path / "clinic.sqlite"
    store, clock = new_store(path)
    session_id = record_session(store, clock)
    store.close()
    out = tmp_path / "all"
    assert main(["export", "--db", str(path), "--all", "--format", fmt, "--out", str(out)]) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    assert all(mode_of(p) == 0o600 for p in files), {p.name: oct(mode_of(p)) for p in files}
    assert mode_of(out) == 0o700  # the export made the folder
    if fmt != "csv":  # one session's file, named by --out
        one = tmp_path / f"one.{fmt}"
        argv = ["export", "--db", str(path), "--session", session_id, "--format", fmt]
        assert main([*argv, "--out", str(one)]) == 0
        assert mode_of(one) == 0o600
        assert not [p for p in tmp_path.iterdir() if p.name.endswith((".part", ".partial"))]
    capsys.readouterr()


def test_private_tree_narrows_files_a_library_wrote(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "inner").mkdir()
    (staged / "inner" / "r.pdf").write_bytes(b"%PDF")
    found = private_tree(staged)
    assert found == [staged / "inner" / "r.pdf"]
    assert mode_of(staged / "inner" / "r.pdf") == 0o600 and mode_of(staged / "inner") == 0o700


def test_sidecar_names_cover_the_key_slots_and_sqlite_companions() -> None:
    assert {"-wal", "-shm", "-journal", ".keys"} <= set(file_modes.SIDECARS)
