"""The PDF chart draws the chart picture, so a pause in device data is a gap on paper too.

The same rows, once from a device and once typed, differ only in the NaN the picture puts where
the device feed paused (tests/domain/test_device_gaps.py); the printed line must break there
and only there. The ``qapp`` fixture makes the QApplication first."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtGui import QColor, QImage

from kapmonitor.domain.chart_picture import ChartPicture, build_picture
from kapmonitor.domain.chart_style import SERIES_STYLES
from kapmonitor.domain.clock import to_iso
from kapmonitor.domain.reference import default_reference
from kapmonitor.domain.session_rows import typed_row
from kapmonitor.reports.chart_image import render_chart_with_labels

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def picture(*, device: bool) -> ChartPicture:
    """SpO₂ once every 5 s for 20 minutes, nothing for 20 minutes, then 20 minutes more."""
    seconds = [*range(0, 1200, 5), *range(2400, 3600, 5)]
    rows = [
        typed_row(
            "vitals",
            {
                "id": i + 1,
                "session_id": "s",
                "observed_at": to_iso(AT + timedelta(seconds=s)),
                "recorded_at": to_iso(AT),
                "recorded_by": "Dr A",
                "spo2": 96,
                "device_reading_id": i + 1 if device else None,
            },
        )
        for i, s in enumerate(seconds)
    ]
    return build_picture(
        {"vitals": rows},
        start=AT,
        first_dose=None,
        end=None,
        protocol=None,
        ref=default_reference(),
    )


def spo2_pixels(image: QImage) -> int:
    """Pixels close to SpO₂'s colour: its line and symbols."""
    target = QColor(SERIES_STYLES["spo2"].day)
    found = 0
    for x in range(image.width()):
        for y in range(image.height()):
            c = QColor(image.pixel(x, y))
            if (
                abs(c.red() - target.red()) < 40
                and abs(c.green() - target.green()) < 40
                and abs(c.blue() - target.blue()) < 40
            ):
                found += 1
    return found


@pytest.mark.usefixtures("qapp")
def test_the_pdf_chart_breaks_the_line_where_device_data_paused() -> None:
    device, typed = picture(device=True), picture(device=False)
    assert sum(math.isnan(y) for y in device.series["spo2"].y) == 1
    assert all(math.isfinite(y) for y in typed.series["spo2"].y)
    gap_image, _ = render_chart_with_labels(device, 700, 450)
    joined_image, _ = render_chart_with_labels(typed, 700, 450)
    differ = [
        x
        for x in range(gap_image.width())
        for y in range(gap_image.height())
        if gap_image.pixel(x, y) != joined_image.pixel(x, y)
    ]
    assert differ, "the device picture printed the same line as the typed one"
    # The difference is the twenty minutes' stretch of line missing, nothing added.
    assert spo2_pixels(gap_image) < spo2_pixels(joined_image)
