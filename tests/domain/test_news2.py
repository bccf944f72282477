"""NEWS2 against the full RCP NEWS2 chart (2017): every edge of every parameter, the bands,
totals and missing parameters. Each edge case varies one parameter from an all-zero baseline."""

from __future__ import annotations

from typing import Any

import pytest

from kapmonitor.domain.news2 import alert_from_observation, band, score

NORMAL: dict[str, Any] = {
    "rr": 16,
    "spo2": 98,
    "on_oxygen": False,
    "sbp": 120,
    "hr": 70,
    "alert": True,
    "temp_c": 37.0,
}


def news(**changes: Any):
    return score(**{**NORMAL, **changes})


def test_normal_set_scores_zero_routine() -> None:
    result = news()
    assert result.total == 0
    assert result.band == "routine"
    assert result.complete and result.missing == ()
    assert set(result.parts) == {"rr", "spo2", "oxygen", "sbp", "hr", "consciousness", "temp"}


@pytest.mark.parametrize(
    ("rr", "points"),
    [(4, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_respiration_edges(rr: int, points: int) -> None:
    result = news(rr=rr)
    assert result.parts["rr"] == points
    assert result.total == points


@pytest.mark.parametrize(
    ("spo2", "points"),
    [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
)
def test_spo2_scale1_edges(spo2: int, points: int) -> None:
    assert news(spo2=spo2).parts["spo2"] == points


@pytest.mark.parametrize(("on_oxygen", "points"), [(True, 2), (False, 0)])
def test_oxygen(on_oxygen: bool, points: int) -> None:
    result = news(on_oxygen=on_oxygen)
    assert result.parts["oxygen"] == points
    assert result.total == points


@pytest.mark.parametrize(
    ("sbp", "points"),
    [(40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
)
def test_systolic_edges(sbp: int, points: int) -> None:
    assert news(sbp=sbp).parts["sbp"] == points


@pytest.mark.parametrize(
    ("hr", "points"),
    [
        (20, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (300, 3),
    ],
)
def test_pulse_edges(hr: int, points: int) -> None:
    assert news(hr=hr).parts["hr"] == points


@pytest.mark.parametrize(
    ("temp", "points"),
    [
        (30.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (42.0, 2),
    ],
)
def test_temperature_edges(temp: float, points: int) -> None:
    assert news(temp_c=temp).parts["temp"] == points


def test_temperature_with_float_noise_stays_on_the_printed_side() -> None:
    assert news(temp_c=36.0000001).parts["temp"] == 1
    assert news(temp_c=35.1 - 1e-9).parts["temp"] == 1


@pytest.mark.parametrize(("alert", "points"), [(True, 0), (False, 3)])
def test_consciousness(alert: bool, points: int) -> None:
    assert news(alert=alert).parts["consciousness"] == points


def test_single_three_with_low_total_is_low_medium() -> None:
    result = news(alert=False)
    assert result.total == 3
    assert result.band == "low-medium"
    result = news(rr=8, hr=95)  # 3 + 1 = 4
    assert result.total == 4
    assert result.band == "low-medium"


def test_low_band_without_a_three() -> None:
    assert news(hr=95).band == "low"  # 1
    result = news(rr=22, on_oxygen=True)  # 2 + 2 = 4
    assert (result.total, result.band) == (4, "low")


@pytest.mark.parametrize(
    ("changes", "total", "expected"),
    [
        ({"rr": 22, "on_oxygen": True, "hr": 95}, 5, "medium"),  # 2 + 2 + 1
        ({"alert": False, "on_oxygen": True}, 5, "medium"),  # a 3 at ≥ 5 is medium, not low-medium
        ({"alert": False, "on_oxygen": True, "hr": 95}, 6, "medium"),
        ({"alert": False, "on_oxygen": True, "spo2": 92}, 7, "high"),
        (
            {"rr": 25, "spo2": 91, "on_oxygen": True, "sbp": 90, "hr": 131, "alert": False},
            17,
            "high",
        ),
    ],
)
def test_totals_and_upper_bands(changes: dict[str, Any], total: int, expected: str) -> None:
    result = news(**changes)
    assert result.total == total
    assert result.band == expected


def test_maximum_total_is_20() -> None:
    result = score(rr=4, spo2=80, on_oxygen=True, sbp=80, hr=150, alert=False, temp_c=34.0)
    assert result.total == 3 + 3 + 2 + 3 + 3 + 3 + 3
    assert result.total == 20
    assert result.band == "high"


def test_total_is_the_sum_of_parts() -> None:
    result = news(rr=10, spo2=94, sbp=105, hr=45, temp_c=38.5)
    assert result.parts == {
        "rr": 1,
        "spo2": 1,
        "oxygen": 0,
        "sbp": 1,
        "hr": 1,
        "consciousness": 0,
        "temp": 1,
    }
    assert result.total == 5 == sum(result.parts.values())


def test_missing_parameters_score_zero_and_are_listed() -> None:
    result = score(rr=None, spo2=None, on_oxygen=False, sbp=None, hr=None, alert=None, temp_c=None)
    assert result.total == 0
    assert result.missing == ("rr", "spo2", "sbp", "hr", "consciousness", "temp")
    assert not result.complete
    assert all(points == 0 for points in result.parts.values())


def test_temperature_often_missing_in_kap() -> None:
    result = news(temp_c=None, rr=8)
    assert result.missing == ("temp",)
    assert result.total == 3
    assert result.band == "low-medium"


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [
        (0, {}, "routine"),
        (1, {"hr": 1}, "low"),
        (4, {"rr": 2, "oxygen": 2}, "low"),
        (3, {"consciousness": 3}, "low-medium"),
        (4, {"consciousness": 3, "hr": 1}, "low-medium"),
        (5, {"rr": 3, "oxygen": 2}, "medium"),
        (6, {"rr": 2, "oxygen": 2, "spo2": 2}, "medium"),
        (7, {"rr": 3, "oxygen": 2, "spo2": 2}, "high"),
        (20, {}, "high"),
    ],
)
def test_band_rules(total: int, parts: dict[str, int], expected: str) -> None:
    assert band(total, parts) == expected


@pytest.mark.parametrize(
    ("moaas", "dissociation", "expected"),
    [
        (None, None, None),
        (5, 0, True),
        (5, None, True),
        (None, 0, True),
        (4, 0, False),
        (5, 1, False),
        (None, 2, False),
        (0, None, False),
    ],
)
def test_alert_from_observation(
    moaas: int | None, dissociation: int | None, expected: bool | None
) -> None:
    assert alert_from_observation(moaas, dissociation) is expected


def test_dissociation_scores_as_new_confusion() -> None:
    result = news(alert=alert_from_observation(5, 1))
    assert result.parts["consciousness"] == 3
    assert result.band == "low-medium"
