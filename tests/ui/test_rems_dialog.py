"""The REMS summary: read-only, in form order, gaps named in words, copyable as text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView
from pytestqt.qtbot import QtBot

from kapmonitor.domain.rems import RemsField
from kapmonitor.ui.forms.rems_dialog import RemsDialog

Shown = Callable[[Any], Any]

FIELDS = [
    RemsField("benzodiazepines", "Benzodiazepines", "No", True),
    RemsField("clinician", "Monitoring clinician", "Dr A", True),
    RemsField("lot", "Lot number", "", False, "no lot number recorded with the dose"),
    RemsField("bp_40", "BP at ~40 min", "", False, "no BP recorded within 10 min of minute 40"),
    RemsField("total_minutes", "Total minutes of monitoring", "125", True),
]


def test_fields_in_form_order_with_gaps_in_words(qtbot: QtBot, shown: Shown) -> None:
    dialog = shown(RemsDialog(FIELDS, "KAP-0001"))
    assert dialog.count_text() == "⚠ 2 fields need completing by hand"
    assert dialog.missing_count() == 2
    table = dialog.table
    assert table.rowCount() == 5
    assert [table.item(r, 0).text() for r in range(5)] == [f.label for f in FIELDS]
    assert dialog.value_text(0) == "No"
    assert dialog.value_text(2) == "⚠ Not in the log — no lot number recorded with the dose"
    assert dialog.value_text(3) == "⚠ Not in the log — no BP recorded within 10 min of minute 40"
    assert dialog.value_text(4) == "125"
    assert table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert not table.item(0, 1).flags() & Qt.ItemFlag.ItemIsEditable
    assert "KAP-0001" in dialog.windowTitle()


def test_one_gap_and_none(qtbot: QtBot, shown: Shown) -> None:
    one = shown(RemsDialog(FIELDS[:3], "KAP-0002"))
    assert one.count_text() == "⚠ 1 field needs completing by hand"
    complete = shown(RemsDialog([FIELDS[0], FIELDS[4]], "KAP-0003"))
    assert complete.count_text() == "✔ Every field is filled from the log"


def test_copy_as_text_puts_the_form_on_the_clipboard(qtbot: QtBot, shown: Shown) -> None:
    dialog = shown(RemsDialog(FIELDS, "KAP-0001"))
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    text = QGuiApplication.clipboard().text()
    assert text == dialog.plain_text()
    lines = text.splitlines()
    assert lines[0] == "Spravato REMS Patient Monitoring Form — patient KAP-0001"
    assert lines[1] == "2 fields need completing by hand"
    assert "Benzodiazepines: No" in lines
    assert "Lot number: [NOT IN THE LOG — no lot number recorded with the dose]" in lines
    assert lines.index("Benzodiazepines: No") < lines.index("Total minutes of monitoring: 125")
    assert dialog.copied_label.text() == "Copied to the clipboard."


def test_escape_closes(qtbot: QtBot, shown: Shown) -> None:
    dialog = shown(RemsDialog(FIELDS, "KAP-0001"))
    qtbot.keyClick(dialog.table, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert dialog.result() == RemsDialog.DialogCode.Rejected
