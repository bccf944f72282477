"""Scales are data: shipped ones load, a clinic's own file adds one, a bad file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kapmonitor.domain.reference import ReferenceDataError, load_reference, parse_scale
from kapmonitor.paths import resources_dir


def test_shipped_scales() -> None:
    ref = load_reference(resources_dir())
    assert ref.scales["moaas"].values() == [5, 4, 3, 2, 1, 0]
    assert ref.scales["rass"].values() == [4, 3, 2, 1, 0, -1, -2, -3, -4, -5]
    assert ref.scales["cadss"].minimum == 0 and ref.scales["cadss"].maximum == 92
    assert "respond" in ref.scales["moaas"].level(5).description.lower()
    assert len(ref.scales["dissociation"].features) == 8


def test_clinic_scale_is_added(tmp_path: Path) -> None:
    folder = tmp_path / "scales"
    folder.mkdir()
    (folder / "anxiety.json").write_text(
        json.dumps(
            {
                "id": "anxiety_vas",
                "name": "Anxiety VAS",
                "kind": "total",
                "min": 0,
                "max": 10,
                "source": "Clinic protocol 2026",
            }
        )
    )
    ref = load_reference(resources_dir(), tmp_path)
    assert ref.scales["anxiety_vas"].values() == list(range(11))


def test_malformed_scale_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "scales"
    folder.mkdir()
    (folder / "broken.json").write_text('{\n  "id": "x",\n  oops\n}')
    with pytest.raises(ReferenceDataError, match=r"broken.json: line 3"):
        load_reference(resources_dir(), tmp_path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "x", "name": "X", "kind": "ordinal", "source": "s"}, "needs 'levels'"),
        ({"id": "x", "name": "X", "kind": "total", "min": 5, "max": 1, "source": "s"}, "above max"),
        ({"id": "x", "name": "X", "kind": "total", "min": 0, "max": 1}, "source"),
        ({"id": "x", "name": "X", "kind": "weird", "source": "s"}, "kind"),
        ({"name": "X", "kind": "total", "source": "s"}, "missing field 'id'"),
    ],
)
def test_bad_scale_definitions(data: dict, message: str) -> None:
    with pytest.raises(ReferenceDataError, match=message):
        parse_scale(data, "clinic.json")
