"""Starting a session: pseudonymous code, two clinicians, consent, plausible weight."""

from __future__ import annotations

import pytest

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.validation import ValidationError
from tests.factories import T0, session_start

REF = default_reference()


def test_valid_start_passes() -> None:
    clock = FakeClock(T0)
    session_start(clock).validate(REF, clock.now())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"clinicians": ("Dr A",)}, "clinicians"),
        ({"clinicians": ("Dr A", "dr a")}, "clinicians"),
        ({"patient_code": "Jane Doe"}, "patient_code"),
        ({"weight_kg": 12.0}, "weight_kg"),
        ({"age_years": None}, "age"),
        ({"indication": "other"}, "indication"),
        ({"checklist": {}}, "checklist"),
        ({"sex": ""}, "sex"),
    ],
)
def test_refusals_name_the_field(overrides: dict, field: str) -> None:
    clock = FakeClock(T0)
    with pytest.raises(ValidationError) as info:
        session_start(clock, **overrides).validate(REF, clock.now())
    assert info.value.for_field(field), info.value.errors


def test_birth_year_gives_age() -> None:
    clock = FakeClock(T0)
    start = session_start(clock, age_years=None, birth_year=1980)
    start.validate(REF, clock.now())
    assert start.effective_age() == 46
