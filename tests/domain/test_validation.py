"""Vital-sign parsing and plausibility: the first line of defence against impossible values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.validation import ValidationError, parse_bp, parse_int, parse_number
from tests.factories import T0

REF = default_reference()
NOW = FakeClock(T0).now()
LIMITS = {
    k: (REF.limits[k].minimum, REF.limits[k].maximum) for k in ("hr", "sbp", "dbp", "spo2", "rr")
}


def test_bp_is_one_entry() -> None:
    assert parse_bp("120/80") == (120, 80)
    assert parse_bp(" 135 / 85 ") == (135, 85)
    assert parse_bp("") is None


@pytest.mark.parametrize("text", ["120", "120/", "/80", "abc", "120/80/60", "1200/80"])
def test_bp_malformed_is_refused_with_example(text: str) -> None:
    with pytest.raises(ValueError, match="120/80"):
        parse_bp(text)


@given(st.text(max_size=20))
@settings(max_examples=1000)
def test_bp_parser_never_crashes(text: str) -> None:
    try:
        result = parse_bp(text)
    except ValueError as exc:
        assert "Blood pressure" in str(exc)
    else:
        assert result is None or all(isinstance(v, int) for v in result)


@given(st.text(max_size=12))
@settings(max_examples=1000)
def test_number_parser_never_crashes(text: str) -> None:
    try:
        value = parse_number(text, "Heart rate")
    except ValueError as exc:
        assert str(exc).startswith("Heart rate")
    else:
        assert value is None or value == value  # finite, not NaN


def test_int_refuses_fractions() -> None:
    with pytest.raises(ValueError, match="whole numbers"):
        parse_int("72.5", "Heart rate")
    assert parse_int("72", "Heart rate") == 72
    assert parse_number("36,8", "Temperature") == pytest.approx(36.8)


@pytest.mark.parametrize("field", sorted(LIMITS))
def test_each_limit_edge_is_accepted_and_one_beyond_refused(field: str) -> None:
    low, high = (int(v) for v in LIMITS[field])
    base = {"hr": 70, "sbp": 120, "dbp": 60, "spo2": 97, "rr": 14}
    for value in (low, high):
        values = {**base, field: value}
        if field == "sbp":
            values["dbp"] = min(values["dbp"], value - 1)
        if field == "dbp":
            values["sbp"] = max(values["sbp"], value + 1)
        VitalSigns(NOW, **values).validate(REF, NOW)
    for value in (low - 1, high + 1):
        values = {**base, field: value}
        if field == "dbp" and value > high:
            values["sbp"] = 300
        with pytest.raises(ValidationError) as info:
            VitalSigns(NOW, **values).validate(REF, NOW)
        assert "not possible" in str(info.value)


def test_diastolic_must_be_below_systolic() -> None:
    with pytest.raises(ValidationError) as info:
        VitalSigns(NOW, sbp=90, dbp=90).validate(REF, NOW)
    assert info.value.for_field("bp") == "Diastolic 90 must be below systolic 90"


def test_temperature_range_and_empty_set_refused() -> None:
    with pytest.raises(ValidationError, match="Temperature 46"):
        VitalSigns(NOW, temp_c=46.0).validate(REF, NOW)
    with pytest.raises(ValidationError, match="at least one vital sign"):
        VitalSigns(NOW).validate(REF, NOW)


@given(
    hr=st.one_of(st.none(), st.integers(-50, 500)),
    sbp=st.one_of(st.none(), st.integers(-50, 500)),
    dbp=st.one_of(st.none(), st.integers(-50, 500)),
    spo2=st.one_of(st.none(), st.integers(-50, 200)),
    rr=st.one_of(st.none(), st.integers(-10, 100)),
)
@settings(max_examples=1000)
def test_validator_accepts_exactly_the_plausible(
    hr: int | None, sbp: int | None, dbp: int | None, spo2: int | None, rr: int | None
) -> None:
    """The validator and an independent statement of the entry ranges agree on every input."""
    values = {"hr": hr, "sbp": sbp, "dbp": dbp, "spo2": spo2, "rr": rr}
    plausible = (
        any(v is not None for v in values.values())
        and (sbp is None) == (dbp is None)
        and all(v is None or LIMITS[k][0] <= v <= LIMITS[k][1] for k, v in values.items())
        and (sbp is None or dbp < sbp)  # type: ignore[operator]
    )
    try:
        VitalSigns(NOW, **values).validate(REF, NOW)
    except ValidationError as exc:
        assert not plausible, exc
        assert exc.errors
    else:
        assert plausible


def test_future_time_refused() -> None:
    from datetime import timedelta

    with pytest.raises(ValidationError, match="future"):
        VitalSigns(NOW + timedelta(minutes=30), hr=70).validate(REF, NOW)
