"""Start-up: the first window paints before the store and the bedside load (issue 11's target).

The unlock dialog is the first thing a clinician sees on every start but the very first; what it
needs is kept light, and these tests fail when a heavy module creeps back in front of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# What the unlock dialog must not wait for: each costs tens of milliseconds at start-up.
HEAVY = (
    "sqlite_utils",
    "numpy",
    "pandas",
    "cryptography",
    "sqlcipher3",
    "pyqtgraph",
    "kapmonitor.store.database",
    "kapmonitor.store.session_store",
    "kapmonitor.ui.bedside.session_window",
    "kapmonitor.reports.session_export",
)


def _run(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})},
        timeout=120,
    )
    return done.stdout.strip()


def test_the_unlock_dialog_path_loads_nothing_heavy(tmp_path: Path) -> None:
    """Everything the window's start runs before the unlock dialog paints: the parser, the app
    module, the database file's state, the key file, the dialog itself."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kapmonitor.cli import build_parser\n"
        "build_parser().parse_args([])\n"
        "from kapmonitor.ui import app\n"
        "from kapmonitor.store import db_file\n"
        "from kapmonitor.store.key_slots import KeySlots\n"
        "from kapmonitor.ui.forms.unlock_dialog import UnlockDialog\n"
        f"db_file.state(Path({str(tmp_path / 'x.sqlite')!r}))\n"
        f"KeySlots.load(Path({str(tmp_path / 'x.sqlite')!r}))\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert _run(code) == "[]"


def test_sqlite_utils_loads_without_numpy_and_numpy_still_works() -> None:
    code = (
        "import sys\n"
        "import kapmonitor.store.database\n"
        "import sqlite_utils\n"
        "print('numpy' in sys.modules, sqlite_utils.Database(memory=True).execute('select 2')"
        ".fetchone()[0])\n"
        "import numpy\n"
        "print(int(numpy.arange(3).sum()))\n"
    )
    assert _run(code).splitlines() == ["False 2", "3"]


def test_numpy_loaded_first_is_left_alone() -> None:
    """Hiding numpy is only for sqlite-utils' own import, and only when nothing loaded it."""
    code = (
        "import numpy, sys\n"
        "import kapmonitor.store.database\n"
        "import sqlite_utils.db as d\n"
        "print(d.np is numpy)\n"
    )
    assert _run(code) == "True"


def _encrypted_database(folder: Path, env: dict[str, str]) -> Path:
    db = folder / "clinic.sqlite"
    init = ["init", "--db", str(db), "--admin", "probe.admin", "--display-name", "Probe"]
    subprocess.run(
        [sys.executable, "-m", "kapmonitor", *init, "--recovery-out", str(folder / "recovery.txt")],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return db


@pytest.fixture
def probe_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAPMONITOR_")}
    return {
        **env,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "XDG_DATA_HOME": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "KAPMONITOR_USER": "probe.admin",
        "KAPMONITOR_PASSWORD": "probe start-up passphrase 7",
    }


def test_the_start_up_probe_paints_the_unlock_dialog_then_the_bedside(
    tmp_path: Path, probe_env: dict[str, str]
) -> None:
    """The bench's two start-up figures come from the real start: the first window on an
    existing encrypted database is the unlock dialog; with credentials in the environment the
    bedside window paints after the unlock (the dialog never shows)."""
    db = _encrypted_database(tmp_path, probe_env)
    no_credentials = {
        k: v for k, v in probe_env.items() if k not in ("KAPMONITOR_USER", "KAPMONITOR_PASSWORD")
    }
    for mode, env in (("first", no_credentials), ("bedside", probe_env)):
        done = subprocess.run(
            [sys.executable, "-m", "kapmonitor", "--startup-probe", mode, "--db", str(db)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.stdout.strip() == "painted", (mode, done.stdout, done.stderr[-500:])


def test_warm_up_loads_the_store_behind_the_dialog() -> None:
    code = (
        "import sys\n"
        "from kapmonitor.ui.startup_warmup import QT_FREE_MODULES, warm_up\n"
        "warm_up().join(60)\n"
        "print(all(m in sys.modules for m in QT_FREE_MODULES))\n"
    )
    assert _run(code) == "True"
