"""Typed session rows: fields by name, the mapping view the dict-based rules read, and no stored
column lost (Qt-free)."""

from __future__ import annotations

import pytest

from kapmonitor.domain.session_rows import (
    MISSING_VITAL_FIELDS,
    AlarmChecklistStepRow,
    OtherRow,
    VitalsRow,
    row_reader,
    rows_as,
    typed_row,
)
from kapmonitor.domain.vitals import VITAL_KEYS

COMMON = {
    "id": 7,
    "session_id": "s1",
    "observed_at": "2026-03-02T09:00:00+00:00",
    "recorded_at": "2026-03-02T09:00:05+00:00",
    "recorded_by": "Dr A",
    "supersedes_id": None,
    "correction_reason": None,
    "voided": 0,
}


def test_every_registry_vital_is_a_field_of_the_vitals_row() -> None:
    assert MISSING_VITAL_FIELDS == ()
    row = typed_row("vitals", {**COMMON, **dict.fromkeys(VITAL_KEYS, 1), "on_oxygen": 0})
    assert isinstance(row, VitalsRow)
    assert all(row.value(key) == 1 for key in VITAL_KEYS)


def test_a_row_reads_by_attribute_and_by_key_and_converts_to_the_stored_dict() -> None:
    stored = {**COMMON, "hr": 64, "sbp": 118, "on_oxygen": 1, "note": "x"}
    row = typed_row("vitals", stored)
    assert row.hr == 64 and row["hr"] == 64 and row.get("hr") == 64
    assert row.get("nonexistent", "none") == "none"
    assert "sbp" in row and "nonexistent" not in row
    with pytest.raises(KeyError):
        row["nonexistent"]
    assert {k: dict(row)[k] for k in stored} == stored
    with pytest.raises(AttributeError):
        row.hr = 70  # type: ignore[misc]  # frozen: a stored row never changes


def test_a_column_the_value_does_not_declare_is_kept() -> None:
    row = typed_row("vitals", {**COMMON, "hr": 60, "from_a_newer_migration": "kept"})
    assert row["from_a_newer_migration"] == "kept"
    assert dict(row)["from_a_newer_migration"] == "kept"


def test_a_table_without_its_own_value_still_types_the_shared_columns() -> None:
    row = typed_row("rems_session_details", {**COMMON, "setting_name": "Clinic"})
    assert isinstance(row, OtherRow)
    assert row.id == 7 and row["setting_name"] == "Clinic"


def test_a_row_already_typed_is_kept_as_it_is() -> None:
    row = typed_row("alarm_checklist_steps", {**COMMON, "alarm_id": 3, "step": "airway"})
    assert isinstance(row, AlarmChecklistStepRow) and row.step == "airway"
    assert typed_row("alarm_checklist_steps", row) is row


def test_rows_as_hands_rows_as_their_type_and_refuses_anything_else() -> None:
    reading = typed_row("vitals", {**COMMON, "hr": 64})
    assert rows_as(VitalsRow, [reading]) == [reading]
    with pytest.raises(TypeError, match="expected VitalsRow, got dict"):
        rows_as(VitalsRow, [reading, {**COMMON, "hr": 64}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected VitalsRow, got AlarmChecklistStepRow"):
        rows_as(VitalsRow, [typed_row("alarm_checklist_steps", COMMON)])


def test_a_row_read_from_a_result_tuple_equals_the_row_typed_from_its_mapping() -> None:
    stored = {**COMMON, "hr": 64, "etco2": 38, "on_oxygen": 1, "from_a_newer_migration": "kept"}
    names = list(stored)
    made = row_reader("vitals", names)(tuple(stored.values()))
    assert made == typed_row("vitals", stored) and isinstance(made, VitalsRow)
    assert dict(made) == dict(typed_row("vitals", stored))  # the undeclared column kept too
    assert made.sbp is None  # a declared column the result lacks takes its default
    checklist = row_reader("alarm_checklist_steps", [*COMMON, "alarm_id", "step"])
    assert checklist((*COMMON.values(), 3, "airway")) == typed_row(
        "alarm_checklist_steps", {**COMMON, "alarm_id": 3, "step": "airway"}
    )
    with pytest.raises(ValueError, match="vitals rows need a recorded_by column"):
        row_reader("vitals", [n for n in names if n != "recorded_by"])
