"""The app speaks of the project alone: no internal working document is named in what it ships.

Sources shown to clinicians (protocol files, scale and questionnaire files, on-screen checklists)
must name the published source a number comes from, so that a clinic can look it up; the name of a
document that exists only in the developers' workspace tells them nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INTERNAL_NAMES = ("CLINICAL.md", "DESIGN.md")
TEXT_SUFFIXES = {".py", ".toml", ".json", ".md", ".txt", ".csv", ".qss", ".html", ".svg"}


def _shipped_text_files() -> list[Path]:
    """Every text file the app ships: its code and its resources."""
    found = [
        path
        for folder in ("kapmonitor", "resources")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.suffix in TEXT_SUFFIXES
    ]
    assert len(found) > 20, "the scan found too few files to be looking in the right place"
    return found


def _lines_naming(paths: list[Path], name: str) -> list[str]:
    """``file:line`` of every line that names ``name``, case-insensitively."""
    return [
        f"{path.name}:{number}"
        for path in paths
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if name.lower() in line.lower()
    ]


@pytest.mark.parametrize("name", INTERNAL_NAMES)
def test_no_shipped_file_names_an_internal_document(name: str) -> None:
    assert _lines_naming(_shipped_text_files(), name) == []


def test_the_scan_would_see_an_offending_line(tmp_path: Path) -> None:
    """The check itself can fail: a line naming the document is found, in any letter case."""
    sample = tmp_path / "protocol.toml"
    sample.write_text('id = "x"\nsource = "clinical.md §3 default"\n', encoding="utf-8")
    assert _lines_naming([sample], "CLINICAL.md") == ["protocol.toml:2"]
    assert _lines_naming([sample], "DESIGN.md") == []
