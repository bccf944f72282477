"""Event filters never outlive what they watch, and a refused dialog never waits for the GC.

The whole ui suite segfaulted in Qt's event-filter dispatch after the alarm acknowledgement
(SpO2 alarm, airway checklist shown) was refused by a save that raised the same exception
object each time. The exception's traceback held the dialog's frames, so the dialog sat in a
reference cycle that only Python's garbage collector frees. The collector ran later, at an
arbitrary allocation inside some event's dispatch: it first cleared the Python side of every
wrapper of the dialog (its outline and banner filters then raised "has no attribute" in every
event they saw) and then deleted the dialog's widgets while Qt was still dispatching an event
to one of them. These tests hold the two halves of the fix: a refusal leaves the dialog free
to go by reference counting alone, and each filter stops cleanly when its Python state or the
object it follows is gone.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QPoint
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.ui.bedside.idle_lock import IdleWatcher
from kapmonitor.ui.forms.alarm_ack_dialog import AlarmAckDialog
from kapmonitor.ui.forms.form_base import BannerArea, error_banner
from kapmonitor.ui.widgets.field_errors import FieldOutline, mark_refused, outline_of
from tests.ui.window_driver import type_into

SPO2_ALARM = {
    "id": 7,
    "priority": "warning",
    "message": "SpO2 91 % < 92",
    "parameter": "spo2",
    "rule_id": "ae_respiratory",  # shows the airway checklist too (matched on the rule)
    "observed_at": "2026-01-15T09:40:00.000Z",
}


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees objects while the test runs (a cycle would stay)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def flush_deletions() -> None:
    """Run the deferred deletions now (no event loop runs between these steps); twice, for
    a deletion that posts another (a field's outline goes when the field does)."""
    for _ in range(2):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def refused_dialog(qtbot: QtBot, save: Callable[..., Any]) -> AlarmAckDialog:
    dialog = AlarmAckDialog(dict(SPO2_ALARM), save, "Dr A")
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.step_checklists  # the airway checklist is shown for this alarm
    dialog.response.setCurrentIndex(1)
    type_into(qtbot, dialog.detail, "oxygen 2 l/min")
    dialog.try_save()
    assert dialog.saved_id is None and outline_of(dialog.detail) is not None
    return dialog


def test_a_refused_spo2_acknowledgement_goes_as_soon_as_it_is_dropped(
    qtbot: QtBot, no_collector: None
) -> None:
    refusal = ValidationError(FieldError("detail", "That alarm was already acknowledged"))

    def save(*_args: Any, **_kwargs: Any) -> int:
        raise refusal  # the same object every time, as the refusal tests' fake save does

    for _ in range(3):
        dialog = refused_dialog(qtbot, save)
        dialog.try_save()  # refused again, with the same exception object
        gone = weakref.ref(dialog)
        detail = weakref.ref(dialog.detail)
        dialog.close()
        del dialog
        assert gone() is None and detail() is None  # no cycle kept it for the collector
        assert refusal.__traceback__ is None  # the refusal holds none of the dialog's frames
    QApplication.sendEvent(QApplication.instance(), QEvent(QEvent.Type.User))


def test_an_outline_goes_with_its_field_and_stops_when_its_python_side_is_cleared(
    qtbot: QtBot,
) -> None:
    box = QWidget()
    qtbot.addWidget(box)
    layout = QVBoxLayout(box)
    first, second = QLineEdit(box), QLineEdit(box)
    layout.addWidget(first)
    layout.addWidget(second)
    box.show()
    qtbot.waitExposed(box)
    fields = {"first": first, "second": second}
    mark_refused(fields, [FieldError("first", "no"), FieldError("second", "no")])
    first_outline, second_outline = outline_of(first), outline_of(second)
    assert first_outline is not None and second_outline is not None

    # What the collector does to an unreachable dialog before deleting it: the Python state
    # goes while the widget still filters. Moving the field must not raise in the filter.
    second_outline.__dict__.clear()
    second.move(second.pos() + QPoint(3, 3))
    QApplication.sendEvent(second, QEvent(QEvent.Type.Resize))

    # The field goes: its outline goes with it, not left over the empty place.
    first.deleteLater()
    flush_deletions()
    assert [o for o in box.findChildren(FieldOutline) if o is first_outline] == []
    assert outline_of(second) is None  # a cleared outline no longer claims its field


def test_the_banner_strip_stops_following_a_banner_it_no_longer_knows(qtbot: QtBot) -> None:
    dialog = QWidget()
    qtbot.addWidget(dialog)
    QVBoxLayout(dialog)
    banner = error_banner(dialog)
    area = BannerArea(banner, dialog)
    dialog.layout().addWidget(area)
    dialog.show()
    qtbot.waitExposed(dialog)
    banner.setText("Not saved")
    banner.show()
    assert area.isVisibleTo(dialog)
    area.__dict__.clear()
    banner.hide()  # HideToParent reaches the filter, which must not raise
    banner.show()


def test_the_idle_watcher_leaves_the_application_with_its_window(qtbot: QtBot) -> None:
    window = QWidget()
    watcher = IdleWatcher(lambda: 0, window)
    gone = weakref.ref(watcher)
    label = QLabel("typing here", window)
    qtbot.keyClick(label, "a")  # reaches the watcher through the application
    del watcher
    window.deleteLater()
    flush_deletions()
    assert gone() is None or not _alive(gone())
    other = QLineEdit()
    qtbot.addWidget(other)
    qtbot.keyClick(other, "b")  # the next window's events meet no leftover filter


def test_an_idle_watcher_cleared_by_the_collector_stops_watching(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    watcher = IdleWatcher(lambda: 0, window)
    watcher.__dict__.clear()
    field = QLineEdit(window)
    window.show()
    qtbot.waitExposed(window)
    qtbot.keyClick(field, "a")  # must not raise in the application's filter
    qtbot.keyClick(field, "b")


def _alive(obj: object) -> bool:
    import shiboken6

    return bool(shiboken6.isValid(obj))
