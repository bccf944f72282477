"""Patient self-report mode, driven by keys as a patient and a clinician would drive it.

Uses the shipped questionnaires (resources/questionnaires), so the test also checks that the
PHQ-9 file renders, totals and bands as the form says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox
from pytestqt.qtbot import QtBot

from kapmonitor.domain.questionnaires import Questionnaire, load_questionnaires
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.paths import resources_dir
from kapmonitor.store.database import StoreError
from kapmonitor.ui.forms.questionnaire_window import (
    CLINICIAN,
    DISCARD_QUESTION,
    HANDOVER,
    QUESTION,
    THANKS,
    QuestionnaireWindow,
)
from kapmonitor.ui.widgets.theme import DAY, stylesheet

Shown = Callable[[Any], Any]
DIGITS = {n: getattr(Qt.Key, f"Key_{n}") for n in range(10)}


@cache
def shipped() -> dict[str, Questionnaire]:
    return load_questionnaires([resources_dir() / "questionnaires"])


@pytest.fixture(autouse=True)
def close_what_is_left() -> Iterator[None]:
    """A questionnaire left with answers refuses a plain close (it asks before discarding), so
    qtbot's clean-up could not close it: it stayed open and modal, and a later test file's
    keys never reached its window. Close what a test left as the app does on quit."""
    yield
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QuestionnaireWindow) and widget.isVisible():
            widget.force_close()


class Saved:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[dict[str, int | str], int | None, str | None]] = []
        self.error = error

    def __call__(self, answers: dict[str, int | str], total: int | None, band: str | None) -> int:
        if self.error is not None:
            raise self.error
        self.calls.append((answers, total, band))
        return 77


def press(
    qtbot: QtBot,
    window: QuestionnaireWindow,
    key: Qt.Key,
    modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """A key press where the keyboard focus is, as a person at the laptop would make it."""
    target = window.focusWidget() or window.stack.currentWidget()
    qtbot.keyClick(target, key, modifier)


def open_window(
    qtbot: QtBot, shown: Shown, questionnaire_id: str = "phq9", save: Saved | None = None
) -> tuple[QuestionnaireWindow, Saved]:
    save = save or Saved()
    window = shown(QuestionnaireWindow(shipped()[questionnaire_id], save, "Dr A"))
    return window, save


def answer_all(qtbot: QtBot, window: QuestionnaireWindow, values: list[int]) -> None:
    press(qtbot, window, Qt.Key.Key_Return)  # the clinician's Start
    for value in values:
        press(qtbot, window, DIGITS[value])


def visible_texts(window: QuestionnaireWindow) -> str:
    return "\n".join(label.text() for label in window.findChildren(QLabel) if label.isVisible())


def test_a_complete_phq9_by_number_keys(qtbot: QtBot, shown: Shown) -> None:
    window, save = open_window(qtbot, shown)
    assert window.page() == HANDOVER
    assert "Hand the laptop to the patient" in visible_texts(window)
    press(qtbot, window, Qt.Key.Key_Return)
    assert window.page() == QUESTION
    assert window.current_index == 0
    assert window.progress.text() == "Question 1 of 9"
    assert window.question_text.text() == "Little interest or pleasure in doing things"
    assert [b.text() for b in window.option_buttons] == [
        "0  Not at all",
        "1  Several days",
        "2  More than half the days",
        "3  Nearly every day",
    ]
    values = [1, 2, 0, 3, 1, 0, 2, 1, 0]
    for index, value in enumerate(values[:-1]):
        press(qtbot, window, DIGITS[value])
        assert window.current_index == index + 1
        assert window.progress.text() == f"Question {index + 2} of 9"
    press(qtbot, window, DIGITS[values[-1]])
    assert window.page() == THANKS
    assert "Thank you — please hand the laptop back" in visible_texts(window)
    press(qtbot, window, Qt.Key.Key_Return)  # a stray Enter from the patient does nothing
    assert window.page() == THANKS
    press(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.page() == CLINICIAN
    assert window.total_label.text() == "Total 10 of 27 — moderate depression"
    assert window.flags_label.isHidden()
    press(qtbot, window, Qt.Key.Key_Return)
    expected = {f"q{n}": v for n, v in enumerate(values, start=1)}
    assert save.calls == [(expected, 10, "moderate depression")]
    assert window.answers == expected
    assert window.saved_id == 77
    assert window.result() == QuestionnaireWindow.DialogCode.Accepted


def test_back_navigation_keeps_and_changes_answers(qtbot: QtBot, shown: Shown) -> None:
    window, _ = open_window(qtbot, shown)
    answer_all(qtbot, window, [2, 1])
    assert window.current_index == 2
    press(qtbot, window, Qt.Key.Key_Return)  # no answer yet: Enter does not move on
    assert window.current_index == 2
    assert not window.next_button.isEnabled()
    press(qtbot, window, Qt.Key.Key_Backspace)
    assert window.current_index == 1
    assert window.progress.text() == "Question 2 of 9"
    checked = [b.text() for b in window.option_buttons if b.isChecked()]
    assert checked == ["✔ 1  Several days"]  # the answer is marked by a symbol, not colour only
    press(qtbot, window, Qt.Key.Key_Left)
    assert window.current_index == 0
    press(qtbot, window, DIGITS[3])  # change the first answer
    assert window.answers["q1"] == 3
    assert window.current_index == 1
    press(qtbot, window, Qt.Key.Key_Return)  # already answered: Enter moves on
    assert window.current_index == 2
    assert window.answers == {"q1": 3, "q2": 1}


def test_back_from_the_thank_you_screen(qtbot: QtBot, shown: Shown) -> None:
    window, _ = open_window(qtbot, shown)
    answer_all(qtbot, window, [0] * 9)
    assert window.page() == THANKS
    press(qtbot, window, Qt.Key.Key_Backspace)
    assert window.page() == QUESTION
    assert window.current_index == 8
    press(qtbot, window, DIGITS[1])
    assert window.page() == THANKS
    assert window.answers["q9"] == 1


def test_item_9_flag_is_shown_to_the_clinician_only(qtbot: QtBot, shown: Shown) -> None:
    window, save = open_window(qtbot, shown)
    answer_all(qtbot, window, [0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert window.page() == THANKS
    assert "⚠" not in visible_texts(window)
    assert "Self-harm" not in visible_texts(window)
    assert window.results_text() == ""
    window.show_results()
    assert window.page() == CLINICIAN
    assert window.flags_label.isVisible()
    flag = window.flags_label.text()
    assert flag.startswith("⚠ ")
    assert "Thoughts that you would be better off dead" in flag
    assert "Several days" in flag
    assert "Self-harm item" in flag
    assert window.total_label.text() == "Total 1 of 27 — minimal depression"
    window.try_save()
    assert save.calls[0][1:] == (1, "minimal depression")


def test_escape_does_nothing_on_the_patient_screens(qtbot: QtBot, shown: Shown) -> None:
    window, save = open_window(qtbot, shown)
    answer_all(qtbot, window, [1, 1])
    for _ in range(3):
        press(qtbot, window, Qt.Key.Key_Escape)
    assert window.isVisible()
    assert window.page() == QUESTION
    assert window.current_index == 2
    window.close()  # a programmatic close, too
    window.reject()
    assert window.isVisible()
    for value in [1] * 7:
        press(qtbot, window, DIGITS[value])
    assert window.page() == THANKS
    press(qtbot, window, Qt.Key.Key_Escape)
    window.close()
    assert window.isVisible()
    window.show_results()
    asked: list[str] = []
    with replying(asked, "discard"):
        press(qtbot, window, Qt.Key.Key_Escape)  # the clinician may cancel here, once asked
    assert not window.isVisible() and window.discarded
    assert asked == [DISCARD_QUESTION]
    assert window.result() == QuestionnaireWindow.DialogCode.Rejected
    assert save.calls == []


def test_escape_with_answers_asks_and_keep_keeps_them(qtbot: QtBot, shown: Shown) -> None:
    discards: list[int] = []
    window = QuestionnaireWindow(shipped()["phq9"], Saved(), "Dr A", on_discard=discards.append)
    shown(window)
    answer_all(qtbot, window, [0, 1, 0, 2, 0, 1, 0, 0, 3])
    window.show_results()
    asked: list[str] = []
    with replying(asked, "keep"):
        press(qtbot, window, Qt.Key.Key_Escape)
    assert window.isVisible() and window.page() == CLINICIAN and discards == []
    with replying(asked, "discard"):
        qtbot.mouseClick(window.discard_button, Qt.MouseButton.LeftButton)
    assert not window.isVisible() and discards == [9]
    assert asked == [DISCARD_QUESTION, DISCARD_QUESTION]


@contextmanager
def replying(asked: list[str], reply: str) -> Iterator[None]:
    """Answer the "Discard these answers?" question that the next action opens."""

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or box.text() in ("", None) or box.isHidden():
            return
        if getattr(box, "_replied", False):
            return
        box._replied = True  # type: ignore[attr-defined]
        asked.append(box.text())
        if reply == "keep":
            qtbot_key = Qt.Key.Key_Escape  # Escape on the question keeps the answers
            QTest.keyClick(box, qtbot_key)
        else:
            next(b for b in box.buttons() if b.text() == "Discard").click()

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(answer)
    timer.start()
    try:
        yield
    finally:
        timer.stop()


def test_the_app_can_still_close_it(qtbot: QtBot, shown: Shown) -> None:
    window, save = open_window(qtbot, shown)
    answer_all(qtbot, window, [1])
    window.force_close()
    assert not window.isVisible()
    assert save.calls == []


def test_escape_cancels_at_hand_over(qtbot: QtBot, shown: Shown) -> None:
    window, _ = open_window(qtbot, shown)
    press(qtbot, window, Qt.Key.Key_Escape)
    assert not window.isVisible()
    assert window.result() == QuestionnaireWindow.DialogCode.Rejected


@pytest.mark.parametrize(
    "error",
    [StoreError("the database file x is in use"), ValidationError(FieldError("answers", "bad"))],
)
def test_a_refused_save_keeps_the_answers(qtbot: QtBot, shown: Shown, error: Exception) -> None:
    save = Saved(error)
    window, _ = open_window(qtbot, shown, save=save)
    answer_all(qtbot, window, [0] * 9)
    window.show_results()
    press(qtbot, window, Qt.Key.Key_Return)
    assert window.isVisible()
    assert window.page() == CLINICIAN
    assert window.errors_text().startswith("Not saved")
    assert window.saved_id is None
    save.error = None
    press(qtbot, window, Qt.Key.Key_Return)
    assert window.saved_id == 77
    assert window.errors_text() == ""


def test_scales_and_free_text_after_the_session(qtbot: QtBot, shown: Shown) -> None:
    window, save = open_window(qtbot, shown, "post_session")
    press(qtbot, window, Qt.Key.Key_Return)
    assert len(window.option_buttons) == 11  # a 0–10 rating
    press(qtbot, window, DIGITS[1])
    press(qtbot, window, DIGITS[0])  # "1" then "0" is ten, and does not move on by itself
    assert window.current_index == 0
    assert window.answers["intensity"] == 10
    press(qtbot, window, Qt.Key.Key_Return)
    assert window.current_index == 1
    for value in (3, 0, 2, 9):
        press(qtbot, window, DIGITS[value])
        press(qtbot, window, Qt.Key.Key_Return)
    assert window.current_index == 5
    assert window.text_answer.isVisible()
    assert window.focusWidget() is window.text_answer
    qtbot.keyClicks(window.text_answer, "Felt calm")
    press(qtbot, window, Qt.Key.Key_Return)  # a new line, not the next screen
    qtbot.keyClicks(window.text_answer, "a bit dizzy")
    press(qtbot, window, Qt.Key.Key_Escape)
    assert window.page() == QUESTION
    press(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.page() == THANKS
    window.show_results()
    assert window.total_label.text() == "Not scored"
    window.try_save()
    answers, total, band = save.calls[0]
    assert answers == {
        "intensity": 10,
        "distress": 3,
        "nausea": 0,
        "dizziness": 2,
        "safe": 9,
        "comments": "Felt calm\na bit dizzy",
    }
    assert (total, band) == (None, None)


def test_patient_type_is_large_whatever_the_app_setting(qtbot: QtBot, shown: Shown) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before = app.styleSheet()
    app.setStyleSheet(stylesheet(DAY, large=False))  # the app's normal 11 pt type
    try:
        window, _ = open_window(qtbot, shown)
        answer_all(qtbot, window, [])
        qtbot.waitUntil(lambda: window.option_buttons[0].isVisible())
        assert window.question_text.font().pointSize() >= 22
        assert window.progress.font().pointSize() >= 22
        assert window.instructions.font().pointSize() >= 22
        assert all(b.font().pointSize() >= 22 for b in window.option_buttons)
    finally:
        app.setStyleSheet(before)
