"""A database on read-only media can be listed, exported and verified, and nothing is written.

What "read-only media" is here, honestly: tests run as root, which ignores file modes, so a
chmod 0500/0400 would prove nothing. When it can, the fixture bind-mounts the folder read-only
(``mount --bind`` then ``remount,ro``): the kernel then refuses every write with EROFS, for root
too, exactly as a write-protected card or a CD would. Where mounting is not allowed, a non-root
run uses chmod 0500/0400 (real for that user); as root without mount, ``os.access`` is made to
answer "not writable" for the folder, which proves the app asks and opens read-only, not that
the kernel would stop a write. ``MEDIA_KIND`` records which one ran.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kapmonitor.cli import main
from kapmonitor.store import read_only_media
from tests.reports import new_store, record_session

MEDIA_KIND: list[str] = []


def _mount_read_only(source: Path, point: Path) -> bool:
    point.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "--bind", str(source), str(point)], capture_output=True)
    if done.returncode != 0:
        return False
    done = subprocess.run(["mount", "-o", "remount,bind,ro", str(point)], capture_output=True)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
        return False
    return True


@pytest.fixture
def media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Callable[[], Path]]]:
    """(folder to fill, the same folder as read-only media): fill the first, then use the second
    through ``media.lock()``."""
    source = tmp_path / "card"
    source.mkdir()
    point = tmp_path / "ro"
    state: dict[str, str] = {}

    def lock() -> Path:
        if _mount_read_only(source, point):
            state["kind"] = "mount"
            return point
        if os.geteuid() != 0:
            for item in source.iterdir():
                item.chmod(0o400)
            source.chmod(0o500)
            state["kind"] = "chmod"
            return source
        real_access = os.access

        def no_write(path: os.PathLike[str] | str, mode: int, **kw: object) -> bool:
            inside = Path(path).resolve().is_relative_to(source.resolve())
            return False if inside and mode & os.W_OK else real_access(path, mode, **kw)

        monkeypatch.setattr(read_only_media.os, "access", no_write)
        state["kind"] = "simulated"
        return source

    yield source, lock
    MEDIA_KIND.append(state.get("kind", "unused"))
    if state.get("kind") == "mount":
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
    if state.get("kind") == "chmod":
        source.chmod(0o700)


def _record(folder: Path) -> tuple[Path, list[str]]:
    db = folder / "clinic.sqlite"
    store, clock = new_store(db)
    ids = [record_session(store, clock, seed=1), record_session(store, clock, seed=2, day=1)]
    store.close()
    return db, ids


def _writes_refused(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


def test_list_export_and_verify_on_read_only_media(media, tmp_path: Path, capsys) -> None:
    source, lock = media
    _db, ids = _record(source)
    folder = lock()
    db = folder / "clinic.sqlite"
    before = sorted(p.name for p in folder.iterdir())
    if _kernel_refuses(folder):
        assert _writes_refused(folder)

    assert main(["sessions", "--db", str(db)]) == 0
    listed = capsys.readouterr().out
    assert all(sid in listed for sid in ids)

    assert main(["verify", "--db", str(db)]) == 0, capsys.readouterr()
    capsys.readouterr()

    for fmt in ("json", "pdf"):
        out = tmp_path / f"out-{fmt}"
        assert main(["export", "--db", str(db), "--all", "--format", fmt, "--out", str(out)]) == 0
        captured = capsys.readouterr()
        assert f"exported 2 sessions to {out}" in captured.out
        assert "read-only media" in captured.err and "audit trail" in captured.err
        assert {p.name for p in out.iterdir() if not p.name.endswith(".anchor")} == {
            f"{sid}.{fmt}" for sid in ids
        }
    assert sorted(p.name for p in folder.iterdir()) == before  # no -shm, -wal or journal made


def _kernel_refuses(folder: Path) -> bool:
    """Whether the kernel itself refuses writes in ``folder`` (a mount, or chmod for non-root)."""
    return folder.name == "ro" or os.geteuid() != 0


def test_unfinished_wal_on_read_only_media_is_read_not_ignored(media, capsys) -> None:
    """A writer killed before the card was locked: its last committed session is only in the
    WAL. Opening the file as immutable would silently miss it; it must be listed."""
    source, lock = media
    work = source.parent / "work"
    work.mkdir()
    db, ids = _record(work)
    store, clock = new_store(db)
    late = record_session(store, clock, seed=3, day=2)  # committed, in the WAL
    raw = sqlite3.connect(db)  # holds the WAL open: no checkpoint on close
    raw.execute("PRAGMA wal_autocheckpoint = 0")
    for name in ("clinic.sqlite", "clinic.sqlite-wal"):  # the card as the killed writer left it
        shutil.copyfile(work / name, source / name)
    store.close()
    raw.close()
    assert (source / "clinic.sqlite-wal").stat().st_size > 0
    folder = lock()
    assert main(["sessions", "--db", str(folder / "clinic.sqlite")]) == 0
    listed = capsys.readouterr().out
    assert all(sid in listed for sid in [*ids, late]), "a committed session was missed"
    assert main(["verify", "--db", str(folder / "clinic.sqlite")]) == 0
    capsys.readouterr()


def test_a_writable_database_is_not_taken_for_read_only_media(tmp_path: Path) -> None:
    db, _ids = _record(tmp_path)
    assert not read_only_media.on_read_only_media(db)
    assert "immutable" not in read_only_media.readonly_uri(db)


def test_an_encrypted_database_on_read_only_media(media, tmp_path: Path) -> None:
    """The same with SQLCipher: unlocking reads the key slots and writes nothing beside them."""
    source, lock = media
    db = source / "clinic.sqlite"
    password = "violet orchard lantern 42"
    init = ["init", "--db", str(db), "--admin", "admin", "--display-name", "Dr Admin"]
    _ok(_cli(*init, "--recovery-out", str(tmp_path / "recovery.txt"), KAPMONITOR_PASSWORD=password))
    creds = {"KAPMONITOR_USER": "admin", "KAPMONITOR_PASSWORD": password}
    _ok(_cli("demo", "--db", str(db), "--seed", "3", **creds))
    folder = lock()
    locked = str(folder / "clinic.sqlite")
    before = sorted(p.name for p in folder.iterdir())
    assert "KAP-" in _ok(_cli("sessions", "--db", locked, **creds))
    assert "OK: audit chain intact" in _ok(_cli("verify", "--db", locked, **creds))
    out = tmp_path / "out"
    done = _cli("export", "--db", locked, "--all", "--format", "json", "--out", str(out), **creds)
    assert "exported 1 session" in _ok(done) and "read-only media" in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KAPMONITOR_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kapmonitor", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=environ,
        stdin=subprocess.DEVNULL,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout
