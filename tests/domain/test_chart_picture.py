"""The chart picture, without Qt: what every chart renderer draws, built once from the rows.

The live chart applies one row's delta at a time, the review chart and the PDF draw the whole
picture; these tests prove the picture itself: its series (EtCO₂ included, on the ventilation
lane with RR), markers and labels, limit lines (deduplicated, advisory and pre-dose ones left
out), axes from the registry, and that the incremental form adds up to the whole.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kapmonitor.domain.chart_picture import (
    CHART_SERIES,
    SERIES_KEYS,
    ChartDelta,
    ChartMarker,
    ChartPicture,
    ChartSeries,
    build_picture,
    chart_delta,
    labelled_ticks,
    limit_lines,
)
from kapmonitor.domain.chart_style import MARKER_STYLES, SERIES_STYLES
from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.protocol import AlarmRule, load_protocols
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.session_rows import StoredRow, typed_row
from kapmonitor.domain.vitals import CHART_LANES, charted_vitals, lane
from kapmonitor.paths import resources_dir

REF = default_reference()
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROTOCOL = next(iter(load_protocols([resources_dir() / "protocols"]).protocols.values()))


def at(minutes: float) -> str:
    return to_iso(START + timedelta(minutes=minutes))


def stored(table: str, minutes: float, **values: Any) -> StoredRow:
    """A stored row of ``table`` observed ``minutes`` after the start, as the store reads it."""
    when = at(minutes)
    shared = {"id": 1, "session_id": "s1", "recorded_at": when, "recorded_by": "Dr A"}
    return typed_row(table, {**shared, "observed_at": when, **values})


def vitals(minutes: float, **values: float | None) -> StoredRow:
    return stored("vitals", minutes, **values)


def rule(rule_id: str, parameter: str, priority: str = "warning", **kw: Any) -> AlarmRule:
    return AlarmRule(rule_id, parameter, priority, "test", f"{parameter} {rule_id}", **kw)  # type: ignore[arg-type]


ROWS: dict[str, list[StoredRow]] = {
    "vitals": [
        vitals(0, sbp=120, dbp=80, hr=70, spo2=98, rr=14, etco2=38),
        vitals(20, sbp=150, dbp=90, hr=88, spo2=95, rr=10, etco2=46),
        vitals(25, hr=92),  # a partial set: only HR
    ],
    "observations": [stored("observations", 22, moaas=4, dissociation=2)],
    "doses": [stored("doses", 10, dose_mg=56, route="im")],
    "adverse_events": [
        stored("adverse_events", 30, term="nausea", verbatim=None, grade=2),
        stored("adverse_events", 31, term="other", verbatim="Hiccups", grade=1),
    ],
    "interventions": [stored("interventions", 32, medication="", detail="", category="support")],
    "alarms": [stored("alarms", 20, priority="warning", parameter="etco2", value=46)],
}


def picture(**kw: Any) -> ChartPicture:
    args: dict[str, Any] = {
        "start": START,
        "first_dose": START + timedelta(minutes=10),
        "end": None,
        "protocol": PROTOCOL,
        "ref": REF,
    }
    args.update(kw)
    return build_picture(ROWS, **args)


def test_every_charted_vital_and_both_scores_are_series_on_their_lanes() -> None:
    assert [s.key for s in CHART_SERIES] == [
        *(v.key for v in charted_vitals()),
        "moaas",
        "dissociation",
    ]
    assert {s.key: s.lane for s in CHART_SERIES}["etco2"] == "ventilation"
    assert {s.key: s.lane for s in CHART_SERIES}["rr"] == "ventilation"
    assert {s.lane for s in CHART_SERIES} == {lane.key for lane in CHART_LANES}
    assert "temp_c" not in SERIES_KEYS  # a flat trend, shown as a number


def test_every_series_and_marker_kind_has_one_style_told_apart_without_colour() -> None:
    assert set(SERIES_STYLES) == set(SERIES_KEYS)
    for lane_key in {s.lane for s in CHART_SERIES}:
        styles = [SERIES_STYLES[s.key] for s in CHART_SERIES if s.lane == lane_key]
        assert len({(s.symbol, s.dash) for s in styles}) == len(styles)
    assert len({s.symbol for s in SERIES_STYLES.values()}) == len(SERIES_STYLES)
    assert len({m.dash for m in MARKER_STYLES.values()}) == len(MARKER_STYLES)
    for style in (*SERIES_STYLES.values(), *MARKER_STYLES.values()):
        assert style.night != style.day and style.night.upper() != "#FFFFFF"


def test_series_are_minutes_since_the_first_dose_and_skip_missing_values() -> None:
    pic = picture()
    assert pic.since_dose and pic.x_title == "Minutes since first dose"
    assert pic.xy("etco2") == ([-10.0, 10.0], [38.0, 46.0])
    assert pic.xy("hr") == ([-10.0, 10.0, 15.0], [70.0, 88.0, 92.0])
    assert pic.xy("sbp") == ([-10.0, 10.0], [120.0, 150.0])  # the HR-only set adds no SBP
    assert pic.xy("moaas") == ([12.0], [4.0])
    assert pic.lane_series("ventilation") == ["rr", "etco2"]


def test_before_any_dose_x_counts_from_the_session_start() -> None:
    pic = build_picture(
        {"vitals": ROWS["vitals"][:1]},
        start=START,
        first_dose=None,
        end=None,
        protocol=None,
        ref=REF,
    )
    assert not pic.since_dose and pic.x_title == "Minutes since session start"
    assert pic.xy("etco2") == ([0.0], [38.0])
    assert pic.limits == [] and pic.markers == []
    assert pic.x_range() == (0.0, 60.0)


def test_markers_carry_kind_and_full_label_for_every_event_table() -> None:
    pic = picture()
    labels = [(m.kind, m.label) for m in pic.markers]
    assert labels == [
        ("dose", "56 mg IM"),
        ("adverse", "Nausea G2"),
        ("adverse", "Hiccups G1"),
        ("note", REF.label("intervention_kinds", "support")),
        ("alarm", "WARNING: ETCO2 46"),
    ]


def test_limit_lines_drop_duplicates_advisory_pre_dose_and_uncharted_rules() -> None:
    protocol = replace(
        PROTOCOL,
        alarms=(
            rule("a", "sbp", at_or_above=160),
            rule("b", "sbp", "critical", at_or_above=160),  # same line again
            rule("c", "sbp", "advisory", at_or_above=140),
            rule("d", "dbp", at_or_above=100, phase="pre_dose"),
            rule("e", "hr", at_or_below=50, phase="post_dose"),
            rule("f", "temp_c", at_or_above=38),  # not charted
            rule("g", "sbp", rise_at_least=40),  # relative: no fixed line
            rule("h", "etco2", at_or_above=50),
            rule("i", "etco2", "critical", at_or_below=20),
        ),
    )
    assert [(line.series, line.lane, line.value, line.label) for line in limit_lines(protocol)] == [
        ("sbp", "haemodynamics", 160.0, "sbp a"),
        ("hr", "haemodynamics", 50.0, "hr e"),
        ("etco2", "ventilation", 50.0, "etco2 h"),
        ("etco2", "ventilation", 20.0, "etco2 i"),
    ]
    assert limit_lines(None) == []


def test_the_shipped_protocols_draw_etco2_limits_on_the_ventilation_lane() -> None:
    lines = limit_lines(PROTOCOL)
    assert len({(line.series, line.value) for line in lines}) == len(lines)
    assert any(line.series == "etco2" and line.lane == "ventilation" for line in lines)


def test_axes_are_the_registry_lanes_with_their_fixed_ranges() -> None:
    pic = picture()
    assert pic.lanes == CHART_LANES
    assert [(x.y_min, x.y_max) for x in pic.lanes] == [
        (20.0, 220.0),
        (70.0, 100.0),
        (0.0, 60.0),
        (-0.4, 5.4),
    ]
    assert lane("ventilation").title == "RR /min · EtCO₂ mmHg"


def test_a_lane_edge_labelled_by_the_lane_below_is_left_unlabelled() -> None:
    """SpO₂ 70 would print over RR/EtCO₂ 60 where the lanes meet; its grid line stays."""
    assert labelled_ticks() == (
        (40.0, 80.0, 120.0, 160.0, 200.0),
        (80.0, 90.0, 100.0),
        (0.0, 20.0, 40.0, 60.0),
        (0.0, 1.0, 2.0, 3.0, 4.0, 5.0),
    )
    assert lane("oxygenation").ticks[0] == 70.0


def test_x_range_is_whole_quarter_hours_around_the_data() -> None:
    pic = picture(end=START + timedelta(minutes=100))
    assert pic.x_range() == (-15.0, 90.0)


def test_the_deltas_row_by_row_add_up_to_the_whole_picture() -> None:
    whole = picture()
    live = ChartPicture(
        start=whole.start,
        origin=whole.origin,
        since_dose=True,
        series={s.key: ChartSeries(s.key, s.lane) for s in CHART_SERIES},
    )
    # The bedside order: as saved, not sorted by table.
    for table in ("vitals", "doses", "observations", "alarms", "adverse_events", "interventions"):
        for row in ROWS[table]:
            live.apply(chart_delta(table, row, REF))
    for key in SERIES_KEYS:
        assert live.xy(key) == whole.xy(key)
    assert sorted(live.markers, key=lambda m: m.t) == sorted(whole.markers, key=lambda m: m.t)


def test_a_delta_holds_only_what_the_row_has() -> None:
    delta = chart_delta("vitals", vitals(5, hr=80, spo2=math.nan), REF)
    assert delta.points == (("hr", (START + timedelta(minutes=5)).timestamp(), 80.0),)
    assert not chart_delta("vital_scores", stored("vital_scores", 5), REF)
    assert not ChartDelta()
    assert chart_delta("doses", ROWS["doses"][0], REF).markers == (
        ChartMarker((START + timedelta(minutes=10)).timestamp(), "dose", "56 mg IM"),
    )


def test_a_back_dated_point_is_kept_in_time_order() -> None:
    pic = picture()
    pic.apply(chart_delta("vitals", vitals(5, etco2=40), REF))
    assert pic.xy("etco2") == ([-10.0, -5.0, 10.0], [38.0, 40.0, 46.0])
