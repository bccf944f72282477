"""Questionnaires are data: the shipped PHQ-9, GAD-7 and post-session files load with their
standard wording and bands, totals need every item, PHQ-9 item 9 raises a safety flag, and a
malformed file is refused naming the file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.domain.questionnaires import (
    Questionnaire,
    QuestionnaireError,
    load_questionnaires,
    safety_flags,
)
from kapmonitor.paths import resources_dir

SHIPPED = resources_dir() / "questionnaires"
ALL = load_questionnaires([SHIPPED])
PHQ9, GAD7, POST = ALL["phq9"], ALL["gad7"], ALL["post_session"]
STANDARD_OPTIONS = [
    (0, "Not at all"),
    (1, "Several days"),
    (2, "More than half the days"),
    (3, "Nearly every day"),
]


def answers(questionnaire: Questionnaire, values: list[int]) -> dict[str, int | str]:
    return {item.id: value for item, value in zip(questionnaire.items, values, strict=True)}


def test_shipped_files_load() -> None:
    assert set(ALL) == {"phq9", "gad7", "post_session"}
    for questionnaire in ALL.values():
        assert questionnaire.source.strip()
        assert questionnaire.instructions.strip()


def test_phq9_standard_content() -> None:
    assert len(PHQ9.items) == 9
    assert PHQ9.instructions == (
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
    )
    assert PHQ9.items[0].text == "Little interest or pleasure in doing things"
    assert PHQ9.items[8].text == (
        "Thoughts that you would be better off dead or of hurting yourself in some way"
    )
    for item in PHQ9.items:
        assert [(o.value, o.label) for o in item.options] == STANDARD_OPTIONS
    assert "Pfizer" in PHQ9.source and "Kroenke" in PHQ9.source
    assert [(b.minimum, b.maximum) for b in PHQ9.bands] == [
        (0, 4),
        (5, 9),
        (10, 14),
        (15, 19),
        (20, 27),
    ]


def test_gad7_standard_content() -> None:
    assert len(GAD7.items) == 7
    assert GAD7.items[0].text == "Feeling nervous, anxious or on edge"
    assert GAD7.items[6].text == "Feeling afraid as if something awful might happen"
    for item in GAD7.items:
        assert [(o.value, o.label) for o in item.options] == STANDARD_OPTIONS
    assert [(b.minimum, b.maximum, b.label) for b in GAD7.bands] == [
        (0, 4, "minimal anxiety"),
        (5, 9, "mild anxiety"),
        (10, 14, "moderate anxiety"),
        (15, 21, "severe anxiety"),
    ]


@pytest.mark.parametrize(
    ("total", "label"),
    [
        (0, "minimal depression"),
        (4, "minimal depression"),
        (5, "mild depression"),
        (9, "mild depression"),
        (10, "moderate depression"),
        (14, "moderate depression"),
        (15, "moderately severe depression"),
        (19, "moderately severe depression"),
        (20, "severe depression"),
        (27, "severe depression"),
    ],
)
def test_phq9_band_edges(total: int, label: str) -> None:
    assert PHQ9.band_for(total) == label


@pytest.mark.parametrize("total", [-1, 28])
def test_phq9_band_outside_range_refused(total: int) -> None:
    with pytest.raises(ValueError, match="no band"):
        PHQ9.band_for(total)


@pytest.mark.parametrize(
    ("values", "total"),
    [
        ([0] * 9, 0),
        ([3] * 9, 27),
        ([1, 1, 1, 1, 1, 0, 0, 0, 0], 5),
        ([2, 2, 2, 2, 2, 0, 0, 0, 0], 10),
        ([3, 2, 1, 0, 3, 2, 1, 0, 2], 14),
    ],
)
def test_phq9_totals(values: list[int], total: int) -> None:
    assert PHQ9.total(answers(PHQ9, values)) == total


def test_incomplete_answers_give_no_total() -> None:
    partial = answers(PHQ9, [1] * 9)
    del partial["q5"]
    assert PHQ9.total(partial) is None
    assert PHQ9.total({}) is None


def test_answer_outside_the_options_is_refused() -> None:
    with pytest.raises(ValueError, match="q1"):
        PHQ9.total(answers(PHQ9, [4] + [0] * 8))
    with pytest.raises(ValueError, match="q2"):
        PHQ9.total({**answers(PHQ9, [0] * 9), "q2": "2"})


def test_item9_flags_the_clinician() -> None:
    item9 = PHQ9.items[8]
    assert item9.alert_if_at_least == 1
    assert safety_flags(PHQ9, answers(PHQ9, [0] * 9)) == []
    flags = safety_flags(PHQ9, answers(PHQ9, [0] * 8 + [1]))
    assert len(flags) == 1
    assert "better off dead" in flags[0] and "Several days" in flags[0]
    assert "clinician" in flags[0]


def test_item9_flag_does_not_wait_for_a_complete_form() -> None:
    assert len(safety_flags(PHQ9, {"q9": 3})) == 1
    assert safety_flags(PHQ9, {"q1": 3}) == []


def test_only_phq9_item9_is_a_safety_item() -> None:
    flagged = [(q.id, i.id) for q in ALL.values() for i in q.items if i.alert_if_at_least]
    assert flagged == [("phq9", "q9")]


def test_post_session_is_unscored_with_anchors_and_free_text() -> None:
    assert POST.scored is False
    assert POST.bands == ()
    ids = [item.id for item in POST.items]
    assert ids == ["intensity", "distress", "nausea", "dizziness", "safe", "comments"]
    for item in POST.items[:5]:
        assert [o.value for o in item.options] == list(range(11))
        assert item.options[0].label.startswith("0 — ")
        assert item.options[10].label.startswith("10 — ")
    assert POST.items[4].options[10].label == "10 — Completely"
    comments = POST.items[5]
    assert comments.free_text and comments.options == ()
    assert comments.text == "Anything you want to tell us?"
    full = {**{i: 5 for i in ids[:5]}, "comments": "felt calm"}
    assert POST.total(full) is None


# --- malformed files -------------------------------------------------------------------------


def write(folder: Path, name: str, data: Any) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def phq9_data() -> dict[str, Any]:
    return json.loads((SHIPPED / "phq9.json").read_text(encoding="utf-8"))


def broken(change) -> dict[str, Any]:
    data = copy.deepcopy(phq9_data())
    change(data)
    return data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (broken(lambda d: d.pop("source")), "source"),
        (broken(lambda d: d.update(source="  ")), "source"),
        (broken(lambda d: d.pop("id")), "id"),
        (broken(lambda d: d.pop("instructions")), "instructions"),
        (broken(lambda d: d.update(items=[])), "items"),
        (broken(lambda d: d["items"][2].pop("text")), r"items\[2\]\.text"),
        (broken(lambda d: d["items"][8].update(alert_if_at_least="1")), r"items\[8\]\.alert_if"),
        (broken(lambda d: d["items"][8].update(alert_if_at_least=4)), r"items\[8\]\.alert_if"),
        (broken(lambda d: d["items"][1].update(id="q1")), "item ids repeat: q1"),
        (broken(lambda d: d["options"][1].update(value=0)), "options: two options share"),
        (broken(lambda d: d["options"][3].pop("label")), r"options\[3\]\.label"),
        (broken(lambda d: d.pop("options")), r"items\[0\]: needs 'options'"),
        (broken(lambda d: d["bands"].pop()), "bands: must cover every total from 0 to 27"),
        (broken(lambda d: d["bands"][1].update(min=4)), "bands: totals from 5"),
        (broken(lambda d: d["bands"][0].update(max="4")), r"bands\[0\]\.max"),
        (broken(lambda d: d.update(scored="yes")), "scored"),
        (broken(lambda d: d.update(format=2)), "format"),
        (["not", "an", "object"], "file: must be a JSON object"),
    ],
)
def test_malformed_file_refused_naming_file_and_field(
    tmp_path: Path, data: Any, field: str
) -> None:
    write(tmp_path / "questionnaires", "clinic_phq.json", data)
    with pytest.raises(QuestionnaireError, match=rf"clinic_phq\.json: .*{field}"):
        load_questionnaires([SHIPPED, tmp_path / "questionnaires"])


def test_bad_range_anchor_refused(tmp_path: Path) -> None:
    data = json.loads((SHIPPED / "post_session.json").read_text(encoding="utf-8"))
    data["items"][0]["range"]["anchors"]["11"] = "beyond"
    write(tmp_path / "q", "post.json", data)
    with pytest.raises(QuestionnaireError, match=r"post\.json: items\[0\]\.range\.anchors\.11"):
        load_questionnaires([tmp_path / "q"])


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "q", "oops.json", '{\n  "id": "x",\n  oops\n}')
    with pytest.raises(QuestionnaireError, match=r"oops\.json: line 3"):
        load_questionnaires([tmp_path / "q"])


def test_clinic_file_replaces_shipped_id_and_missing_folder_is_skipped(tmp_path: Path) -> None:
    data = phq9_data()
    data["title"] = "PHQ-9 (clinic copy)"
    write(tmp_path / "q", "mine.json", data)
    loaded = load_questionnaires([SHIPPED, tmp_path / "q", tmp_path / "absent"])
    assert loaded["phq9"].title == "PHQ-9 (clinic copy)"
    assert set(loaded) == {"phq9", "gad7", "post_session"}


# --- property: totals are sums ---------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from([PHQ9, GAD7]).flatmap(
        lambda q: st.tuples(
            st.just(q), st.lists(st.integers(0, 3), min_size=len(q.items), max_size=len(q.items))
        )
    )
)
def test_total_is_the_sum_of_any_complete_answer_set(case: tuple[Questionnaire, list[int]]) -> None:
    questionnaire, values = case
    total = questionnaire.total(answers(questionnaire, values))
    assert total == sum(values)
    assert questionnaire.band_for(total)  # every possible total has a band
