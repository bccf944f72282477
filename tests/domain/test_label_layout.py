"""The event-label layout shared by the live chart and the PDF chart (no Qt).

What a clinician relies on: labels never print over each other or off the plot, a dose always
reads in full ("700 mg IM", never "0 mg IM"), and every event is either labelled or counted in a
badge near it.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from kapmonitor.domain.label_layout import (
    EventLabel,
    LabelLayout,
    badge_text,
    label_texts,
    layout_labels,
)

CHAR_PX = 7.0  # a stand-in font: every character 7 px wide, plus 8 px of padding per box
PAD = 8.0


def width(text: str) -> float:
    return len(text) * CHAR_PX + PAD


def event(key: int, x: float, kind: str, text: str) -> EventLabel:
    texts = label_texts(kind, text)
    return EventLabel(key, x, kind, texts, tuple(width(t) for t in texts))


def badge_width(count: int) -> float:
    return width(badge_text(count))


def layout(events: list[EventLabel], *, right: float = 700.0, lanes: int = 2) -> LabelLayout:
    return layout_labels(events, left=0.0, right=right, lanes=lanes, badge_width=badge_width)


def assert_no_overlap(result: LabelLayout, left: float, right: float, lanes: int) -> None:
    boxes = result.boxes()
    for lane, lo, hi in boxes:
        assert 0 <= lane < lanes
        assert left - 1e-9 <= lo and hi <= right + 1e-9, (lo, hi)
    for i, (lane_a, lo_a, hi_a) in enumerate(boxes):
        for lane_b, lo_b, hi_b in boxes[i + 1 :]:
            if lane_a == lane_b:
                assert hi_a <= lo_b or hi_b <= lo_a, ((lane_a, lo_a, hi_a), (lo_b, hi_b))


def test_label_forms_shorten_but_a_dose_never_does() -> None:
    assert label_texts("dose", "700 mg IM") == ("700 mg IM",)
    assert label_texts("adverse", "Nausea G2") == ("Nausea G2", "AE G2", "AE")
    assert label_texts("adverse", "Feeling odd") == ("Feeling odd", "AE")
    assert label_texts("alarm", "CRITICAL: SPO2 85") == ("CRITICAL: SPO2 85", "SPO2 85", "Alarm")
    assert label_texts("note", "Ondansetron 4 mg") == ("Ondansetron 4 mg", "Note")
    assert label_texts("phase", "Recovery / aftercare") == ("Recovery / aftercare", "Phase")
    assert label_texts("something-new", "x") == ("x", "Event")
    assert label_texts("note", "Note") == ("Note",)


def test_events_far_apart_keep_their_full_text_in_the_top_lane() -> None:
    events = [
        event(1, 50, "dose", "700 mg IM"),
        event(2, 300, "adverse", "Nausea G2"),
        event(3, 550, "note", "Ondansetron 4 mg"),
    ]
    result = layout(events)
    assert [(p.key, p.text, p.lane, p.side) for p in result.labels] == [
        (1, "700 mg IM", 0, "right"),
        (2, "Nausea G2", 0, "right"),
        (3, "Ondansetron 4 mg", 0, "right"),
    ]
    assert result.badges == () and result.unshown == ()


def test_close_events_stack_then_abbreviate_then_collapse_to_a_badge() -> None:
    # A dose, two adverse effects, two alarms and a note within a few pixels.
    events = [
        event(1, 100, "adverse", "Nausea G2"),
        event(2, 102, "dose", "700 mg IM"),
        event(3, 104, "alarm", "CRITICAL: SBP 182"),
        event(4, 105, "adverse", "Dizziness G1"),
        event(5, 106, "alarm", "WARNING: HR 121"),
        event(6, 108, "note", "Ondansetron 4 mg"),
    ]
    result = layout(events, lanes=2)
    assert_no_overlap(result, 0.0, 700.0, 2)
    by_key = {p.key: p for p in result.labels}
    assert by_key[2].text == "700 mg IM" and by_key[2].lane == 0  # the dose first, in full
    shown = Counter(p.key for p in result.labels) + Counter(
        k for b in result.badges for k in b.keys
    )
    assert set(shown) == {1, 2, 3, 4, 5, 6} and max(shown.values()) == 1
    assert result.badges, "six labels cannot fit in two lanes beside one spot"
    assert any(p.abbreviated for p in result.labels) or len(result.labels) <= 4


def test_a_dose_at_the_right_edge_goes_left_of_its_line_in_full() -> None:
    # The "0 mg IM" defect: a label running past the plot edge was clipped.
    result = layout([event(1, 695, "dose", "700 mg IM")])
    (label,) = result.labels
    assert (label.text, label.side) == ("700 mg IM", "left")
    assert label.right <= 700 and label.left >= 0


def test_a_dose_takes_the_first_lane_and_a_crowded_neighbour_gives_way() -> None:
    events = [event(1, 100, "note", "Music started"), event(2, 101, "dose", "56 mg IN")]
    result = layout(events, lanes=1)
    by_key = {p.key: p for p in result.labels}
    assert (by_key[2].text, by_key[2].side) == ("56 mg IN", "right")
    # The note's full text does not fit left of its line; its short form does.
    assert (by_key[1].text, by_key[1].side) == ("Note", "left")


def test_a_label_with_no_room_beside_its_line_becomes_a_badge_next_to_it() -> None:
    events = [event(1, 5, "note", "Music started"), event(2, 6, "dose", "56 mg IN")]
    result = layout(events, lanes=1)
    assert [(p.key, p.text) for p in result.labels] == [(2, "56 mg IN")]
    (badge,) = result.badges
    assert badge.keys == (1,) and badge.text == "+1"
    assert badge.left >= result.labels[0].right  # slid just past the dose label
    assert badge.left - result.labels[0].right < 10


def test_a_badge_takes_the_place_of_lower_priority_labels_when_nothing_else_fits() -> None:
    # One lane, a narrow chart: labels fill it, the rest must still be counted.
    events = [event(i, 10 + i * 3, "alarm", f"WARNING: HR {100 + i}") for i in range(12)]
    result = layout(events, right=120, lanes=1)
    assert_no_overlap(result, 0.0, 120.0, 1)
    counted = [p.key for p in result.labels] + [k for b in result.badges for k in b.keys]
    assert sorted(counted) == list(range(12))
    assert result.unshown == ()


def test_an_alarm_badge_never_hides_an_adverse_effect_label_that_has_room() -> None:
    # One lane (large type on a small chart): the alarm fits on neither side of its line, and
    # the only gaps near it are too narrow for a badge. It joins the nearby badge instead of
    # taking the adverse effect's place.
    events = [
        event(1, 41, "dose", "56 mg IM"),
        event(2, 134, "adverse", "Nausea G2"),
        event(3, 36, "note", "Eye mask on"),
        event(4, 109, "alarm", "WARNING: SPO2 91"),
    ]
    result = layout(events, right=533, lanes=1)
    assert_no_overlap(result, 0.0, 533.0, 1)
    assert {p.key: p.text for p in result.labels} == {1: "56 mg IM", 2: "Nausea G2"}
    (badge,) = result.badges
    assert set(badge.keys) == {3, 4}


def test_no_lane_at_all_for_a_badge_leaves_markers_bare_rather_than_overlapping() -> None:
    # Two doses fill the only lane of a chart hardly wider than them; an alarm cannot go anywhere.
    events = [
        event(1, 2, "dose", "7 mg"),
        event(2, 60, "dose", "8 mg"),
        event(3, 30, "alarm", "A"),
    ]
    result = layout(events, right=100, lanes=1)
    assert_no_overlap(result, 0.0, 100.0, 1)
    assert {p.key for p in result.labels} >= {1, 2}


KINDS = st.sampled_from(["dose", "adverse", "alarm", "note", "phase", "other"])
TEXTS = st.text(alphabet="ABCDEFGHIJ mg:0123456789", min_size=1, max_size=30)


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[EventLabel], float, int]:
    right = draw(st.floats(min_value=40.0, max_value=1400.0))
    lanes = draw(st.integers(min_value=1, max_value=4))
    events = []
    for key in range(draw(st.integers(min_value=0, max_value=40))):
        kind = draw(KINDS)
        text = draw(TEXTS)
        if kind == "dose":
            text = f"{draw(st.integers(1, 999))} mg {draw(st.sampled_from(['IM', 'IN', 'IV']))}"
        x = draw(st.floats(min_value=0.0, max_value=right))
        events.append(event(key, x, kind, text))
    return events, right, lanes


@settings(max_examples=300, deadline=None)
@given(scenes())
def test_property_no_two_boxes_overlap_and_doses_read_in_full(
    scene: tuple[list[EventLabel], float, int],
) -> None:
    events, right, lanes = scene
    result = layout(events, right=right, lanes=lanes)
    assert_no_overlap(result, 0.0, right, lanes)
    for label in result.labels:
        if label.kind == "dose":
            assert label.text == label.full_text and not label.abbreviated
        assert label.width == width(label.text)
    # Every marker is accounted for exactly once: labelled, in one badge, or (never with a
    # lane free of doses) bare.
    accounted = (
        [p.key for p in result.labels]
        + [k for b in result.badges for k in b.keys]
        + list(result.unshown)
    )
    assert sorted(accounted) == sorted(e.key for e in events)
    doses = [e for e in events if e.kind == "dose"]
    if len(doses) < lanes and badge_width(len(events)) <= right:
        assert result.unshown == ()


@settings(max_examples=200, deadline=None)
@given(scenes())
def test_property_every_dose_is_shown_in_full_when_there_are_lanes_for_them(
    scene: tuple[list[EventLabel], float, int],
) -> None:
    events, right, lanes = scene
    doses = [e for e in events if e.kind == "dose"]
    if len(doses) > lanes or any(d.widths[0] > right for d in doses):
        return
    result = layout(events, right=right, lanes=lanes)
    shown = {p.key: p.text for p in result.labels}
    for dose in doses:
        assert shown.get(dose.key) == dose.texts[0]
