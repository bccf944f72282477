"""Event labels on the PDF trend chart: laid out like the live chart's, never over each other.

Before, a fourth label close to three others was printed over the one that ended first, and
more than 24 markers of a kind lost their labels altogether. The ``qapp`` fixture makes the
QApplication first, so the chart's own offscreen fallback never stands in for it.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage

from kapmonitor.domain.chart_picture import (
    CHART_SERIES,
    ChartMarker,
    ChartPicture,
    ChartSeries,
    LimitLine,
)
from kapmonitor.reports.chart_image import render_chart_with_labels

DOSE_AT = 1_700_000_000.0


def marker(minutes: float, kind: str, label: str) -> ChartMarker:
    """A marker ``minutes`` after the dose."""
    return ChartMarker(DOSE_AT + minutes * 60, kind, label)


CROWD = [
    marker(0.0, "dose", "700 mg IM"),
    marker(1.0, "adverse", "Nausea G2"),
    marker(1.5, "alarm", "SBP 182"),
    marker(2.0, "adverse", "Dizziness G1"),
    marker(2.5, "alarm", "HR 121"),
    marker(3.0, "adverse", "Anxiety G1"),
    marker(4.0, "alarm", "SPO2 91"),
    marker(40.0, "dose", "50 mg IM"),
    marker(118.0, "adverse", "Headache G1"),
]


def data(markers: list[ChartMarker]) -> ChartPicture:
    series = {s.key: ChartSeries(s.key, s.lane) for s in CHART_SERIES}
    for name in ("sbp", "spo2"):
        series[name].t = [DOSE_AT + m * 60 for m in range(-10, 120)]
        series[name].y = [97.0] * 130
    return ChartPicture(
        start=DOSE_AT - 900,
        origin=DOSE_AT,
        since_dose=True,
        series=series,
        markers=markers,
        limits=[LimitLine("sbp", "haemodynamics", 160.0, "SBP ≥ 160")],
        end=DOSE_AT + 120 * 60,
    )


def ink_in(image: QImage, rect: QRectF) -> int:
    """Dark pixels (text) inside ``rect``."""
    dark = 0
    for x in range(int(rect.left()) + 1, int(rect.right())):
        for y in range(int(rect.top()) + 1, int(rect.bottom())):
            if QColor(image.pixel(x, y)).lightness() < 110:
                dark += 1
    return dark


def assert_apart(boxes: list[tuple[int, float, float]]) -> None:
    for i, (lane_a, lo_a, hi_a) in enumerate(boxes):
        for lane_b, lo_b, hi_b in boxes[i + 1 :]:
            assert lane_a != lane_b or hi_a <= lo_b or hi_b <= lo_a


@pytest.mark.usefixtures("qapp")
def test_crowded_labels_do_not_overlap_and_doses_read_in_full() -> None:
    image, layout = render_chart_with_labels(data(CROWD), 1400, 900)
    assert_apart(layout.boxes())
    texts = {CROWD[p.key].label: p.text for p in layout.labels}  # type: ignore[index]
    assert texts["700 mg IM"] == "700 mg IM" and texts["50 mg IM"] == "50 mg IM"
    assert texts["Headache G1"] == "Headache G1"  # near the right edge: written left of its line
    counted = [p.key for p in layout.labels] + [k for b in layout.badges for k in b.keys]
    assert sorted(counted) == list(range(len(CROWD)))  # labelled or counted, each once
    assert layout.badges, "seven events in four minutes cannot all be written out"
    for box in [*layout.labels, *layout.badges]:
        assert box.left >= 0 and box.right <= image.width()


@pytest.mark.usefixtures("qapp")
def test_a_hundred_alarms_are_counted_not_piled_up() -> None:
    alarms = [marker(i * 1.1, "alarm", f"SPO2 {88 + i % 4}") for i in range(100)]
    _image, layout = render_chart_with_labels(
        data([marker(0.0, "dose", "56 mg IN"), *alarms]), 1400, 900
    )
    assert_apart(layout.boxes())
    assert [p.text for p in layout.labels if p.kind == "dose"] == ["56 mg IN"]
    counted = len(layout.labels) + sum(len(b.keys) for b in layout.badges)
    assert counted == 101 and not layout.unshown


@pytest.mark.usefixtures("qapp")
def test_the_dose_label_is_drawn_where_the_layout_put_it() -> None:
    image, layout = render_chart_with_labels(data(CROWD), 1400, 900)
    clean, _ = render_chart_with_labels(data([]), 1400, 900)
    (dose,) = [p for p in layout.labels if p.text == "700 mg IM"]
    # The band's lanes start below the legend; find the dose's row by comparing with no markers.
    column = QRectF(dose.left, 0, dose.width, image.height() * 0.2)
    assert ink_in(image, column) > ink_in(clean, column) + 40


def dense_spo2(dip_at: int | None) -> ChartPicture:
    """Three hours of SpO2 at one reading per second, all 97 % but for one 80 % reading."""
    picture = data([])
    seconds = 3 * 60 * 60
    picture.series["spo2"].t = [DOSE_AT + s for s in range(seconds)]
    picture.series["spo2"].y = [80.0 if s == dip_at else 97.0 for s in range(seconds)]
    return picture


@pytest.mark.usefixtures("qapp")
def test_a_one_second_dip_among_ten_thousand_readings_is_printed() -> None:
    """The PDF chart reduces a dense line to each column's lowest and highest reading: a single
    desaturation in three hours at 1 Hz must still reach down the SpO2 lane, not be averaged
    or skipped away."""
    with_dip, _ = render_chart_with_labels(dense_spo2(5003), 1400, 900)
    without, _ = render_chart_with_labels(dense_spo2(None), 1400, 900)
    rows = {
        y
        for x in range(with_dip.width())
        for y in range(with_dip.height())
        if with_dip.pixel(x, y) != without.pixel(x, y)
    }
    # 97 -> 80 % is more than half of the lane's 70-101 range: a stroke tens of pixels long.
    assert rows and max(rows) - min(rows) >= 40
