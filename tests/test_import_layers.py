"""The layers hold, and the check that holds them can fail.

`lint-imports` runs the contracts in pyproject.toml (ui -> reports -> store -> domain, and no Qt
under domain, store or scenario) in the test command. Here it runs on a copy of the package as it
is, which keeps them, and on a copy where the domain imports Qt, which must break them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


def copy_project(tmp_path: Path) -> Path:
    tree = tmp_path / "copy"
    shutil.copytree(
        ROOT / "kapmonitor", tree / "kapmonitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    result = lint(copy_project(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_qt_in_the_domain_breaks_the_contract(tmp_path: Path) -> None:
    tree = copy_project(tmp_path)
    clock = tree / "kapmonitor" / "domain" / "clock.py"
    clock.write_text("import PySide6.QtCore  # a violation\n" + clock.read_text())
    result = lint(tree)
    assert result.returncode != 0
    assert "No Qt under domain, store or scenario BROKEN" in result.stdout


def test_the_store_importing_the_window_breaks_the_layers(tmp_path: Path) -> None:
    tree = copy_project(tmp_path)
    module = tree / "kapmonitor" / "store" / "backup.py"
    module.write_text(
        "import kapmonitor.ui.bedside.session_window  # a violation\n" + module.read_text()
    )
    result = lint(tree)
    assert result.returncode != 0
    assert "Layers: ui, then reports, then store, then domain BROKEN" in result.stdout
