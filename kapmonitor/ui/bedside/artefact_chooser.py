"""M asks which pending device values are artefact, and why (issue 13, window part 1).

Marking every pending value at once was wrong at the bedside: a SpO₂ read through a moving
finger took the good heart rate with it. The chooser lists the pending values on screen, each a
checkbox with its key 1–9, and a short reason from a list. Keyboard only: **M**, digits toggle,
**Enter** marks the checked ones artefact; **Esc** changes nothing. The values not chosen stay
pending.

Checked at first: the values whose alarm is active and the values the device itself flagged
(the ones a clinician is looking at when M is pressed); when there is none of either, all of
them. A compact :class:`~kapmonitor.ui.forms.form_base.FittingDialog` (fits 1280x720) in large
type, since it is read at arm's length in a dimmed room.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.ui.forms.form_base import FittingDialog

__all__ = ["OTHER", "REASONS", "ArtefactChoice", "ArtefactChooser", "initially_checked"]

#: The reasons offered, in the order a bedside clinician meets them; "Other" asks for words.
REASONS: tuple[str, ...] = ("Motion", "Probe off", "Cuff moved", "Other")
OTHER = "Other"
#: One letter picks each reason from anywhere in the chooser (its initial, as the list's own
#: type-to-find does when it has the focus).
REASON_KEYS: dict[Qt.Key, str] = {
    Qt.Key.Key_M: "Motion",
    Qt.Key.Key_P: "Probe off",
    Qt.Key.Key_C: "Cuff moved",
    Qt.Key.Key_O: OTHER,
}
_MIN_POINT_SIZE = 15  # large type: read at arm's length


@dataclass(frozen=True)
class ArtefactChoice:
    """One pending value offered: its words ("SpO₂ 62"), the readings behind it, and why it
    stands out ("alarm", "device: artefact"; empty when nothing does)."""

    label: str
    ids: tuple[int, ...]
    alarmed: bool = False
    flag: str = ""


def initially_checked(choices: Sequence[ArtefactChoice]) -> list[bool]:
    """Checked at first: the alarmed and device-flagged values, else (none of them) all."""
    marked = [c.alarmed or bool(c.flag) for c in choices]
    return marked if any(marked) else [True] * len(choices)


#: save(reading ids, reason) -> how many readings were marked; raises the store's refusals.
SaveFn = Callable[[tuple[int, ...], str], int]


class ArtefactChooser(FittingDialog):
    """The chooser (module docstring). ``saved_id`` is the number of readings marked, None
    when nothing was (the window's ``open_form`` contract)."""

    refusal_heading = "Nothing marked"

    def __init__(
        self, choices: Sequence[ArtefactChoice], save: SaveFn, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.choices = list(choices)[:9]  # one digit each; the panel shows at most nine cells
        self._save = save
        self.saved_id: int | None = None
        self.setWindowTitle("Mark device values artefact")
        self.setModal(True)
        # Wide enough that the hint wraps to two lines and the list never scrolls at 1280x720
        # (at its natural 430 px the body scrolled and cut the "Other" box; screenshot).
        self.setMinimumWidth(600)
        # The theme's style sheet sets the app's type; this dialog's own sheet sets it larger.
        self.setStyleSheet(
            f"QCheckBox, QLabel, QComboBox, QLineEdit, QPushButton "
            f"{{ font-size: {_MIN_POINT_SIZE}pt; }}"
        )

        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            "Which values are artefact? 1–9 tick or untick; the reason: M motion, P probe off, "
            "C cuff moved, O other. Enter marks the ticked ones; Esc changes nothing."
        )
        intro.setWordWrap(True)
        intro.setObjectName("Muted")
        layout.addWidget(intro)
        self.boxes: list[QCheckBox] = []
        for number, (choice, checked) in enumerate(
            zip(self.choices, initially_checked(self.choices), strict=True), start=1
        ):
            notes = [n for n in ("alarm" if choice.alarmed else "", choice.flag) if n]
            text = f"{number}   {choice.label}" + (f"   ({', '.join(notes)})" if notes else "")
            box = QCheckBox(text, self)
            box.setChecked(checked)
            layout.addWidget(box)
            self.boxes.append(box)
        self.field_widgets["ids"] = self.boxes[0] if self.boxes else self

        form = QFormLayout()
        layout.addLayout(form)
        self.reason = QComboBox(self)
        self.reason.addItems(list(REASONS))
        self.reason.setToolTip("Why the values are artefact (stored with each one)")
        form.addRow("&Reason", self.reason)  # Alt+R: the list from the keyboard
        self.other = QLineEdit(self)
        self.other.setPlaceholderText("Say what happened")
        self.other.setEnabled(False)
        form.addRow("", self.other)
        self.reason.currentTextChanged.connect(self._reason_changed)
        self.field_widgets["reason"] = self.other

        self.buttons = QDialogButtonBox(self)
        self.mark_button = self.buttons.addButton(
            "Mark artefact", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.mark_button.setDefault(True)
        self.buttons.accepted.connect(self.try_save)
        self.buttons.rejected.connect(self.reject)
        self.foot.addWidget(self.buttons)
        if self.boxes:
            self.boxes[0].setFocus()

    def _reason_changed(self, text: str) -> None:
        self.other.setEnabled(text == OTHER)
        if text == OTHER:
            self.other.setFocus()

    # --- what was chosen ----------------------------------------------------------------

    def chosen_ids(self) -> tuple[int, ...]:
        """The readings of the ticked values, in the list's order."""
        return tuple(
            i
            for box, c in zip(self.boxes, self.choices, strict=True)
            if box.isChecked()
            for i in c.ids
        )

    def chosen_labels(self) -> list[str]:
        return [c.label for box, c in zip(self.boxes, self.choices, strict=True) if box.isChecked()]

    def reason_text(self) -> str:
        """The reason as stored: the list's word, or the words typed for "Other"."""
        if self.reason.currentText() == OTHER:
            return self.other.text().strip()
        return self.reason.currentText()

    # --- keys -----------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """1–9 tick or untick a value, a reason's letter picks it, Enter marks (digits and
        letters are words while "Other" is being typed)."""
        key = event.key()
        typing = self.focusWidget() is self.other
        if not typing and Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            index = key - Qt.Key.Key_1
            if index < len(self.boxes):
                self.boxes[index].toggle()
            event.accept()
            return
        if not typing and key in REASON_KEYS and not event.modifiers():
            self.reason.setCurrentText(REASON_KEYS[Qt.Key(key)])
            event.accept()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.try_save()
            event.accept()
            return
        super().keyPressEvent(event)

    def try_save(self) -> None:
        """Mark the ticked values artefact with the reason; a refusal stays in the strip."""
        ids, reason = self.chosen_ids(), self.reason_text()

        def save() -> None:
            if not ids:
                raise ValidationError(FieldError("ids", "Tick at least one value (keys 1–9)"))
            if not reason:
                raise ValidationError(FieldError("reason", "Say why, or choose a reason"))
            self.saved_id = self._save(ids, reason)

        if self.attempt(save):
            self.accept()
