"""Patient self-report, one question at a time, on the clinician's laptop.

The patient reads it at arm's length, possibly just after a session, so every patient-facing word
is at least 22 pt whatever the app's type setting, an answer is one number key or one touch, and
the progress is always in view. Escape does nothing on the patient's screens: a patient must not
lose their answers by brushing a key. Results, and any safety answer (PHQ-9 item 9), are shown
only after the laptop is handed back, on the clinician's screen, which is where the answers are
saved to the session.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain import questionnaires
from kapmonitor.domain.questionnaires import Item, Option, Questionnaire
from kapmonitor.domain.validation import ValidationError
from kapmonitor.store.errors import StoreError
from kapmonitor.ui.forms.form_base import (
    BannerArea,
    ScrollBody,
    error_banner,
    fit_to_screen,
    max_dialog_height,
)
from kapmonitor.ui.widgets.field_errors import show_banner
from kapmonitor.ui.widgets.theme import DAY, NIGHT, Theme

QuestionnaireSaveFn = Callable[[dict[str, int | str], int | None, str | None], int]

PATIENT_POINT_SIZE = 22  # the smallest patient-facing type, independent of "large type"
QUESTION_POINT_SIZE = 28
HANDOVER, QUESTION, THANKS, CLINICIAN = range(4)
PATIENT_PAGES = (QUESTION, THANKS)
_DIGIT_KEYS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(10)}


SCALE_MODE_MIN_OPTIONS = 7  # more options than this are laid out as a row of numbers


def option_keys(item: Item) -> dict[int, Option]:
    """Which number picks which option.

    When every option value is a whole number 0–99 the number is the value itself (PHQ-9: 0–3; a
    0–10 rating: 0–10), so the number the patient presses is the number on the form. Otherwise
    the options are numbered 1, 2, 3… in order (at most nine can have a key).
    """
    options = item.options
    if all(0 <= o.value <= 99 for o in options):
        return {o.value: o for o in options}
    return {n: o for n, o in enumerate(options[:9], start=1)}


def single_key(keys: dict[int, Option]) -> bool:
    """One key press identifies the answer (every number is a single digit): press and move on.

    Otherwise (a 0–10 scale) a typed "1" might be the start of "10", so a number only selects
    and Enter moves on.
    """
    return all(0 <= key <= 9 for key in keys)


def option_text(key: int | None, option: Option) -> str:
    """``"0  Not at all"``; a label that already starts with its number is not doubled."""
    if key is None or (key == option.value and option.label.startswith(str(option.value))):
        return option.label
    return f"{key}  {option.label}"


def patient_stylesheet(theme: Theme) -> str:
    """Fixed large type for the patient's screens, whatever the app's type setting."""
    return f"""
    QWidget#PatientPage QLabel, QWidget#PatientPage QPushButton,
    QWidget#PatientPage QPlainTextEdit {{ font-size: {PATIENT_POINT_SIZE}pt; }}
    QWidget#PatientPage QLabel#QuestionText {{
        font-size: {QUESTION_POINT_SIZE}pt; font-weight: bold;
    }}
    QWidget#PatientPage QLabel#PatientHeadline {{
        font-size: {QUESTION_POINT_SIZE + 4}pt; font-weight: bold;
    }}
    QWidget#PatientPage QLabel#Progress, QWidget#PatientPage QLabel#Instructions,
    QWidget#PatientPage QLabel#KeysHint {{ color: {theme.muted}; }}
    QWidget#PatientPage QPushButton#OptionButton {{
        text-align: left; padding: 10px 20px; border-radius: 8px;
        border: 2px solid {theme.border}; background: {theme.panel};
    }}
    QWidget#PatientPage QPushButton#OptionButton:checked {{
        background: {theme.accent}; color: {theme.window}; border: 3px solid {theme.text};
        font-weight: bold;
    }}
    QWidget#PatientPage QPushButton#ScaleButton {{
        padding: 14px 0; min-width: 56px; border-radius: 8px;
        border: 2px solid {theme.border}; background: {theme.panel};
    }}
    QWidget#PatientPage QPushButton#ScaleButton:checked {{
        background: {theme.accent}; color: {theme.window}; border: 3px solid {theme.text};
        font-weight: bold;
    }}
    QWidget#PatientPage QPushButton#NavButton {{ padding: 8px 24px; }}
    QWidget#PatientPage QPushButton#ClinicianLink {{ font-size: 11pt; padding: 4px 10px; }}
    QLabel#ResultTotal {{ font-size: 20pt; font-weight: bold; }}
    QLabel#SafetyFlag {{
        background: {theme.error_bg}; color: {theme.error_text}; font-size: 14pt;
        font-weight: bold; padding: 8px; border-left: 8px solid {theme.error_text};
    }}
    """


class PatientTextEdit(QPlainTextEdit):
    """Large free-text answer: Ctrl+Enter moves on, Alt+Left goes back."""

    def __init__(self, owner: QuestionnaireWindow, parent: QWidget) -> None:
        super().__init__(parent)
        self.owner = owner
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        alt = event.modifiers() & Qt.KeyboardModifier.AltModifier
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and ctrl:
            self.owner.go_next()
            return
        if event.key() == Qt.Key.Key_Left and alt:
            self.owner.go_back()
            return
        if event.key() == Qt.Key.Key_Escape:
            return  # never dismiss the patient's screen
        super().keyPressEvent(event)


class QuestionnaireWindow(QDialog):
    """Hand-over → questions → thank you → clinician's results and save."""

    def __init__(
        self,
        questionnaire: Questionnaire,
        save: QuestionnaireSaveFn,
        recorder: str,
        parent: QWidget | None = None,
        *,
        on_discard: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.questionnaire = questionnaire
        self._save = save
        # Told how many items were answered when answers are discarded (the caller audits it).
        self._on_discard = on_discard
        self.discarded = False
        self.recorder = recorder
        self.answers: dict[str, int | str] = {}
        self.saved_id: int | None = None
        self.current_index = 0
        self.option_buttons: list[QPushButton] = []
        self._keys: dict[int, Option] = {}
        self._option_extras: list[QWidget] = []
        self._typed = ""  # digits typed so far on a 0–10 scale item
        self.setWindowTitle(questionnaire.title)
        self.setModal(True)
        # Never taller than the screen: the question and the results scroll, the buttons stay.
        room = max_dialog_height(self)
        self.setMaximumHeight(room)
        self.setMinimumSize(900, min(640, room))
        self.resize(1100, min(780, room))  # the caller may also show it maximised
        theme = NIGHT if self.palette().window().color().lightness() < 128 else DAY
        self.setStyleSheet(patient_stylesheet(theme))

        outer = QVBoxLayout(self)
        self.stack = QStackedWidget(self)
        outer.addWidget(self.stack)
        self.stack.addWidget(self._build_handover())
        self.stack.addWidget(self._build_question())
        self.stack.addWidget(self._build_thanks())
        self.stack.addWidget(self._build_clinician())
        self._go(HANDOVER)

    # --- building ------------------------------------------------------------------------

    def _patient_page(self) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget(self)
        page.setObjectName("PatientPage")
        page.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(40, 30, 40, 30)
        layout.setSpacing(16)
        return page, layout

    def _build_handover(self) -> QWidget:
        page, layout = self._patient_page()
        layout.addStretch(1)
        headline = QLabel("Hand the laptop to the patient", page)
        headline.setObjectName("PatientHeadline")
        headline.setWordWrap(True)
        headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(headline)
        count = len(self.questionnaire.items)
        about = QLabel(
            f"{self.questionnaire.title}: {count} question{'s' if count != 1 else ''}.\n"
            "Answer with the number keys or by touching an answer.",
            page,
        )
        about.setObjectName("Instructions")
        about.setWordWrap(True)
        about.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(about)
        layout.addStretch(1)
        row = QHBoxLayout()
        self.handover_cancel = QPushButton("Cancel", page)
        self.handover_cancel.setObjectName("NavButton")
        self.handover_cancel.setToolTip("Close without asking (Esc)")
        self.handover_cancel.setAutoDefault(False)
        self.handover_cancel.clicked.connect(self.reject)
        self.start_button = QPushButton("Start", page)
        self.start_button.setObjectName("NavButton")
        self.start_button.setToolTip("Show the first question (Enter)")
        self.start_button.setAutoDefault(False)
        self.start_button.clicked.connect(self.start)
        row.addWidget(self.handover_cancel)
        row.addStretch(1)
        row.addWidget(self.start_button)
        layout.addLayout(row)
        return page

    def _build_question(self) -> QWidget:
        page, layout = self._patient_page()
        self.question_page = page
        self.progress = QLabel("", page)
        self.progress.setObjectName("Progress")
        layout.addWidget(self.progress)
        # A long question with many answers scrolls between the progress line and the
        # Back/Next row, which stay on screen.
        self.question_scroll = ScrollBody(page)
        body = self.question_scroll.body
        middle = QVBoxLayout(body)
        middle.setContentsMargins(0, 0, 0, 0)
        middle.setSpacing(16)
        self.instructions = QLabel(self.questionnaire.instructions, body)
        self.instructions.setObjectName("Instructions")
        self.instructions.setWordWrap(True)
        middle.addWidget(self.instructions)
        self.question_text = QLabel("", body)
        self.question_text.setObjectName("QuestionText")
        self.question_text.setWordWrap(True)
        middle.addWidget(self.question_text)
        self.options_box = QWidget(body)
        self.options_layout = QVBoxLayout(self.options_box)
        self.options_layout.setContentsMargins(0, 0, 0, 0)
        self.options_layout.setSpacing(10)
        middle.addWidget(self.options_box)
        self.text_answer = PatientTextEdit(self, body)
        self.text_answer.setMinimumHeight(160)
        self.text_answer.setPlaceholderText("Type your answer here (optional)")
        middle.addWidget(self.text_answer)
        middle.addStretch(1)
        layout.addWidget(self.question_scroll, 1)
        self.keys_hint = QLabel("", page)
        self.keys_hint.setObjectName("KeysHint")
        self.keys_hint.setWordWrap(True)
        layout.addWidget(self.keys_hint)
        row = QHBoxLayout()
        self.back_button = QPushButton("← Back", page)
        self.back_button.setObjectName("NavButton")
        self.back_button.setToolTip("Previous question (Backspace or ←)")
        self.next_button = QPushButton("Next →", page)
        self.next_button.setObjectName("NavButton")
        self.next_button.setToolTip("Next question (Enter)")
        for button in (self.back_button, self.next_button):
            button.setAutoDefault(False)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.back_button.clicked.connect(self.go_back)
        self.next_button.clicked.connect(self.go_next)
        row.addWidget(self.back_button)
        row.addStretch(1)
        row.addWidget(self.next_button)
        layout.addLayout(row)
        self.option_group = QButtonGroup(self)
        self.option_group.setExclusive(True)
        return page

    def _build_thanks(self) -> QWidget:
        page, layout = self._patient_page()
        layout.addStretch(1)
        headline = QLabel("Thank you — please hand the laptop back", page)
        headline.setObjectName("PatientHeadline")
        headline.setWordWrap(True)
        headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(headline)
        layout.addStretch(1)
        row = QHBoxLayout()
        self.change_button = QPushButton("← Change an answer", page)
        self.change_button.setObjectName("NavButton")
        self.change_button.setToolTip("Back to the last question (Backspace or ←)")
        self.change_button.clicked.connect(self.go_back)
        self.clinician_button = QPushButton("Clinician: show results (Ctrl+Enter)", page)
        self.clinician_button.setObjectName("ClinicianLink")
        self.clinician_button.setToolTip("For the clinician, once the laptop is back (Ctrl+Enter)")
        self.clinician_button.clicked.connect(self.show_results)
        for button in (self.change_button, self.clinician_button):
            button.setAutoDefault(False)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row.addWidget(self.change_button)
        row.addStretch(1)
        row.addWidget(self.clinician_button)
        layout.addLayout(row)
        return page

    def _build_clinician(self) -> QWidget:
        page = QWidget(self)
        page.setObjectName("ClinicianPage")
        layout = QVBoxLayout(page)
        self.banner = error_banner(page)
        layout.addWidget(BannerArea(self.banner, page))
        title = QLabel(f"Results — {self.questionnaire.title}", page)
        title.setObjectName("ClockValue")
        title.setWordWrap(True)
        layout.addWidget(title)
        self.total_label = QLabel("", page)
        self.total_label.setObjectName("ResultTotal")
        self.total_label.setWordWrap(True)
        layout.addWidget(self.total_label)
        self.flags_label = QLabel("", page)
        self.flags_label.setObjectName("SafetyFlag")
        self.flags_label.setWordWrap(True)
        self.flags_label.hide()
        layout.addWidget(self.flags_label)
        self.answers_label = QLabel("", page)
        self.answers_label.setWordWrap(True)
        self.answers_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.answers_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea(page)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.answers_label)
        layout.addWidget(scroll, 1)
        source = QLabel(f"Source: {self.questionnaire.source}", page)
        source.setObjectName("Muted")
        source.setWordWrap(True)
        layout.addWidget(source)
        who = QLabel(f"Recording as <b>{self.recorder}</b>", page)
        who.setObjectName("RecorderNote")
        layout.addWidget(who)
        row = QHBoxLayout()
        self.review_button = QPushButton("Back to the questions", page)
        self.review_button.setToolTip("Let the patient change an answer")
        self.review_button.setAutoDefault(False)
        self.review_button.clicked.connect(self._review)
        self.discard_button = QPushButton("Discard", page)
        self.discard_button.setToolTip("Close without saving the answers (Esc)")
        self.discard_button.setAutoDefault(False)
        self.discard_button.clicked.connect(self.reject)
        self.save_button = QPushButton("Save to the session", page)
        self.save_button.setToolTip("Save the answers, total and band (Enter)")
        self.save_button.setAutoDefault(False)
        self.save_button.clicked.connect(self.try_save)
        row.addWidget(self.review_button)
        row.addStretch(1)
        row.addWidget(self.discard_button)
        row.addWidget(self.save_button)
        layout.addLayout(row)
        return page

    # --- navigation ----------------------------------------------------------------------

    def page(self) -> int:
        """HANDOVER, QUESTION, THANKS or CLINICIAN."""
        return self.stack.currentIndex()

    def _go(self, page: int) -> None:
        self.stack.setCurrentIndex(page)
        self.save_button.setDefault(page == CLINICIAN)
        self.start_button.setDefault(page == HANDOVER)
        if page == QUESTION:
            self._show_item()
        elif page == CLINICIAN:
            self._fill_results()
            self.save_button.setFocus()
        elif page == HANDOVER:
            self.start_button.setFocus()
        else:
            self.stack.currentWidget().setFocus()

    def start(self) -> None:
        self.current_index = 0
        self._go(QUESTION)

    def current_item(self) -> Item | None:
        items = self.questionnaire.items
        return items[self.current_index] if 0 <= self.current_index < len(items) else None

    def _show_item(self) -> None:
        item = self.current_item()
        if item is None:
            return
        total = len(self.questionnaire.items)
        self.progress.setText(f"Question {self.current_index + 1} of {total}")
        for button in self.option_buttons:
            self.option_group.removeButton(button)
            self.options_layout.removeWidget(button)
            button.hide()
            button.deleteLater()
        self.option_buttons = []
        for widget in self._option_extras:
            self.options_layout.removeWidget(widget)
            widget.hide()
            widget.deleteLater()
        self._option_extras = []
        self._typed = ""
        self._keys = {} if item.free_text else option_keys(item)
        key_of = {id(o): k for k, o in self._keys.items()}
        self.question_text.setText(item.text)
        if item.free_text:
            self.options_box.hide()
            self.text_answer.show()
            answer = self.answers.get(item.id)
            self.text_answer.setPlainText(answer if isinstance(answer, str) else "")
            self.text_answer.setFocus()
            self.keys_hint.setText("Ctrl+Enter = next · Alt+← = back")
            self.keys_hint.show()
        else:
            self.text_answer.hide()
            self.options_box.show()
            scale = len(item.options) >= SCALE_MODE_MIN_OPTIONS
            row: QHBoxLayout | None = None
            if scale:
                holder = QWidget(self.options_box)
                row = QHBoxLayout(holder)
                row.setContentsMargins(0, 0, 0, 0)
                row.setSpacing(8)
                self.options_layout.addWidget(holder)
                self._option_extras.append(holder)
            for option in item.options:
                key = key_of.get(id(option))
                text = str(key if key is not None else option.value)
                button = QPushButton(
                    text if scale else option_text(key, option),
                    self.options_box,
                )
                button.setObjectName("ScaleButton" if scale else "OptionButton")
                button.setProperty("plain", button.text())
                button.setCheckable(True)
                button.setAutoDefault(False)
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                button.setProperty("value", option.value)
                button.setAccessibleName(option.label)
                button.setToolTip(option.label)
                button.clicked.connect(lambda _=False, o=option: self.choose(o))
                self.option_group.addButton(button)
                if row is not None:
                    row.addWidget(button)
                else:
                    self.options_layout.addWidget(button)
                self.option_buttons.append(button)
            if scale:
                anchors = QLabel(_anchors_text(item.options), self.options_box)
                anchors.setObjectName("Instructions")
                anchors.setWordWrap(True)
                self.options_layout.addWidget(anchors)
                self._option_extras.append(anchors)
            self._mark_selected(self.answers.get(item.id))
            self.question_page.setFocus()
            if single_key(self._keys):
                self.keys_hint.setText("Number key = answer · Enter = next · Backspace = back")
            else:
                self.keys_hint.setText("Type the number, then Enter · Backspace = back")
        self.back_button.setEnabled(True)
        self._update_next()
        if self.isVisible():
            fit_to_screen(self)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        fit_to_screen(self)

    def _mark_selected(self, value: int | str | None) -> None:
        """Check the chosen button and mark it with ✔ too (not by colour alone)."""
        for button in self.option_buttons:
            chosen = button.property("value") == value and isinstance(value, int)
            button.setChecked(chosen)
            plain = str(button.property("plain"))
            button.setText(f"✔ {plain}" if chosen else plain)

    def _update_next(self) -> None:
        item = self.current_item()
        self.next_button.setEnabled(
            item is not None and (item.free_text or item.id in self.answers)
        )

    def choose(self, option: Option) -> None:
        """Record the answer to the current item and move on (touch, or a one-digit key)."""
        item = self.current_item()
        if item is None or item.free_text:
            return
        self.answers[item.id] = option.value
        self._mark_selected(option.value)
        self.go_next()

    def type_digit(self, digit: int) -> None:
        """A number key on a choice item: pick that answer.

        Where every number is one digit, the answer is taken and the next item shown. On a 0–10
        scale the digits accumulate ("1" then "0" is 10) and Enter moves on.
        """
        item = self.current_item()
        if item is None or item.free_text:
            return
        if single_key(self._keys):
            if digit in self._keys:
                self.choose(self._keys[digit])
            return
        longer = f"{self._typed}{digit}"
        self._typed = longer if self._typed and int(longer) in self._keys else str(digit)
        option = self._keys.get(int(self._typed))
        if option is None:
            self._typed = ""
            return
        self.answers[item.id] = option.value
        self._mark_selected(option.value)
        self._update_next()

    def go_next(self) -> None:
        item = self.current_item()
        if self.page() != QUESTION or item is None:
            return
        if item.free_text:
            text = self.text_answer.toPlainText().strip()
            if text:
                self.answers[item.id] = text
            else:
                self.answers.pop(item.id, None)
        elif item.id not in self.answers:
            return  # a choice is needed first; Next stays disabled
        if self.current_index + 1 < len(self.questionnaire.items):
            self.current_index += 1
            self._show_item()
        else:
            self.current_index = len(self.questionnaire.items)
            self._go(THANKS)

    def go_back(self) -> None:
        if self.page() == THANKS:
            self.current_index = len(self.questionnaire.items) - 1
            self._go(QUESTION)
            return
        if self.page() != QUESTION:
            return
        item = self.current_item()
        if item is not None and item.free_text:
            text = self.text_answer.toPlainText().strip()
            if text:
                self.answers[item.id] = text
        if self.current_index == 0:
            self._go(HANDOVER)
            return
        self.current_index -= 1
        self._show_item()

    def show_results(self) -> None:
        if self.page() == THANKS:
            self._go(CLINICIAN)

    def _review(self) -> None:
        self.banner.hide()
        self.current_index = max(len(self.questionnaire.items) - 1, 0)
        self._go(QUESTION)

    # --- results and saving --------------------------------------------------------------

    def total_and_band(self) -> tuple[int | None, str | None]:
        q = self.questionnaire
        if not q.scored:
            return None, None
        try:
            total = q.total(self.answers)
            band = q.band_for(total) if total is not None else None
        except ValueError:
            return None, None
        return total, band

    def safety_flags(self) -> list[str]:
        return questionnaires.safety_flags(self.questionnaire, self.answers)

    def _fill_results(self) -> None:
        q = self.questionnaire
        total, band = self.total_and_band()
        if not q.scored:
            self.total_label.setText("Not scored")
        elif total is None:
            self.total_label.setText("No total: not every question was answered")
        else:
            maximum = sum(max(item.values()) for item in q.scored_items())
            self.total_label.setText(f"Total {total} of {maximum} — {band}")
        flags = self.safety_flags()
        self.flags_label.setText("\n".join(f"⚠ {flag}" for flag in flags))
        self.flags_label.setVisible(bool(flags))
        lines = []
        for number, item in enumerate(q.items, start=1):
            answer = self.answers.get(item.id)
            if answer is None:
                shown = "— not answered"
            elif isinstance(answer, str):
                shown = f"“{answer}”"
            else:
                label = next((o.label for o in item.options if o.value == answer), "")
                shown = label if label.startswith(str(answer)) else f"{answer} — {label}"
            answer_html = escape(shown).replace("\n", "<br>")
            lines.append(f"{number}. {escape(item.text)} → <b>{answer_html}</b>")
        self.answers_label.setText("<br>".join(lines))

    def results_text(self) -> str:
        """The clinician screen's total line and safety flags (empty before it is shown)."""
        parts = [self.total_label.text()]
        if not self.flags_label.isHidden():
            parts.append(self.flags_label.text())
        return "\n".join(p for p in parts if p)

    def try_save(self) -> None:
        if self.page() != CLINICIAN:
            return
        self.banner.hide()
        total, band = self.total_and_band()
        try:
            row_id = self._save(dict(self.answers), total, band)
        except ValidationError as exc:
            self._show_banner("Not saved:\n" + "\n".join(f"• {e.message}" for e in exc.errors))
            return
        except StoreError as exc:
            self._show_banner(f"Not saved. {exc}")
            return
        self.saved_id = row_id
        self._allow_close()
        self.accept()

    def errors_text(self) -> str:
        return self.banner.text() if not self.banner.isHidden() else ""

    def _show_banner(self, text: str) -> None:
        show_banner(self.stack.widget(CLINICIAN), self.banner, text)
        fit_to_screen(self)

    # --- keys and closing ----------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        page = self.page()
        enter = key in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if key == Qt.Key.Key_Escape:
            if page in (HANDOVER, CLINICIAN):
                self.reject()
            return  # patient screens: Escape does nothing
        if page == HANDOVER and enter:
            self.start()
        elif page == QUESTION:
            if key in _DIGIT_KEYS:
                self.type_digit(_DIGIT_KEYS[key])
            elif enter or key == Qt.Key.Key_Right:
                self.go_next()
            elif key in (Qt.Key.Key_Backspace, Qt.Key.Key_Left):
                self.go_back()
            elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
                self._step_selection(-1 if key == Qt.Key.Key_Up else 1)
        elif page == THANKS:
            if enter and ctrl:
                self.show_results()
            elif key in (Qt.Key.Key_Backspace, Qt.Key.Key_Left):
                self.go_back()
        elif page == CLINICIAN and enter:
            self.try_save()
        # Everything else (including a stray Enter on the thank-you screen) is swallowed.

    def _step_selection(self, step: int) -> None:
        """Up/Down move the selection without moving on (for options with no number key)."""
        item = self.current_item()
        if item is None or item.free_text or not item.options:
            return
        values = item.values()
        current = self.answers.get(item.id)
        if isinstance(current, int) and current in values:
            index = min(max(values.index(current) + step, 0), len(values) - 1)
        else:
            index = 0 if step > 0 else len(values) - 1
        self.answers[item.id] = values[index]
        self._mark_selected(values[index])
        self._update_next()

    _closing_allowed = False

    def _allow_close(self) -> None:
        self._closing_allowed = True

    def force_close(self) -> None:
        """Close from any screen without saving (for the app, e.g. on quit; never a key)."""
        self._allow_close()
        super().reject()

    def confirm_discard(self) -> bool:
        """Answers are never dropped silently: ask, and report a discard (count, not content).

        Keep is the default button, so a stray Enter keeps the answers."""
        if not self.answers:
            return True
        box = QMessageBox(self)
        box.setObjectName("DiscardAnswers")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Discard answers")
        box.setText(DISCARD_QUESTION)
        box.setInformativeText(
            f"{len(self.answers)} answer(s) to {self.questionnaire.title} will not be saved. "
            "The discard is recorded in the audit trail (without the answers)."
        )
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep the answers", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.exec()
        if box.clickedButton() is not discard:
            return False
        self.discarded = True
        if self._on_discard is not None:
            self._on_discard(len(self.answers))
        return True

    def reject(self) -> None:
        if self._closing_allowed:
            super().reject()
            return
        if self.page() in PATIENT_PAGES:
            return  # Escape on the patient's screens does nothing (see the module note)
        if not self.confirm_discard():
            return
        self._allow_close()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing_allowed:
            super().closeEvent(event)
            return
        if not event.spontaneous():
            # The app closing it (e.g. on quit, or a test's clean-up): never a person's key, so
            # no question; the patient's screens stay as before.
            if self.page() in PATIENT_PAGES:
                event.ignore()
                return
            self._allow_close()
            super().closeEvent(event)
            return
        # The window's close button: with answers, only after "Discard these answers?".
        if not self.answers and self.page() in PATIENT_PAGES:
            event.ignore()
            return
        if not self.confirm_discard():
            event.ignore()
            return
        self._allow_close()
        super().closeEvent(event)


DISCARD_QUESTION = "Discard these answers?"


def _anchors_text(options: tuple[Option, ...]) -> str:
    """``0 = Not at all   ·   10 = Extremely`` from the labels that say more than the number."""
    parts = []
    for option in options:
        label = option.label.removeprefix(f"{option.value} — ").strip()
        if label and label != str(option.value):
            parts.append(f"{option.value} = {label}")
    return "   ·   ".join(parts)


__all__ = ["QuestionnaireWindow", "option_keys", "option_text", "single_key"]
