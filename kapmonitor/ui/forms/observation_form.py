"""Sedation and dissociation check: MOAA/S, RASS, dissociation and any scale the clinic added.

Every level shows its anchor wording as it is picked, so the score means the same whoever rates
it. The form is built from the scale files: a clinic that drops a scale JSON into its config
folder gets a field for it here (stored under ``other_scores``) without a new build.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from PySide6.QtCore import QElapsedTimer, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QLabel, QLineEdit, QWidget

from kapmonitor.domain.records import Observation
from kapmonitor.domain.reference import Reference, Scale
from kapmonitor.domain.typed_level import is_sign_or_digit, level_for_typed
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.ui.forms.form_base import EntryForm, NoteEdit, SaveFn, select_code
from kapmonitor.ui.widgets.wrap_grid import WrapGridLayout

NOT_ASSESSED = "not assessed"
CORE_SCALES = ("moaas", "rass", "dissociation", "cadss")
FEATURE_COLUMNS = 2  # at most; fewer when the dialog is narrow (large type)


# Keys held with these are commands, not typing ("+" itself may need Shift).
_COMMAND_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.AltModifier
    | Qt.KeyboardModifier.MetaModifier
)


class ScaleCombo(QComboBox):
    """A scale's levels, where typing a level's number picks it, whatever minus was typed.

    The labels show a typographic minus ("−1 — drowsy"); a keyboard types "-". Qt's own
    type-to-select compares letters, so "-1" found nothing. Here signs and digits typed in quick
    succession (Qt's keyboard input interval, as for its own search) are read as one number and
    the level with that value is selected; anything else (letters) goes to Qt's search as before.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._typed = ""
        self._since_last_key = QElapsedTimer()

    def level_values(self) -> list[int]:
        return [int(v) for i in range(self.count()) if (v := self.itemData(i)) is not None]

    def select_typed(self, text: str) -> bool:
        """Select the level ``text`` names; ``False`` (nothing changed) when it names none."""
        value = level_for_typed(text, self.level_values())
        if value is None:
            return False
        self.setCurrentIndex(self.findData(value))
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:
        text = event.text()
        if not is_sign_or_digit(text) or event.modifiers() & _COMMAND_MODIFIERS:
            self._typed = ""
            super().keyPressEvent(event)
            return
        interval = QApplication.keyboardInputInterval()
        if not self._since_last_key.isValid() or self._since_last_key.elapsed() > interval:
            self._typed = ""
        self._since_last_key.start()
        self._typed += text
        # "1" after "-2" is a new number, not "-21": start again from the key just typed.
        if not self.select_typed(self._typed) and self.select_typed(text):
            self._typed = text
        event.accept()


def _scale_tip(scale: Scale) -> str:
    return f"{scale.title}. Source: {scale.source}"


def _range_hint(scale: Scale) -> str:
    return f"{scale.minimum}–{scale.maximum}, optional"


class ObservationForm(EntryForm):
    title = "Sedation and dissociation"

    def __init__(
        self,
        ref: Reference,
        save: SaveFn,
        now: datetime,
        *,
        recorder: str = "",
        parent: QWidget | None = None,
        correcting: dict[str, Any] | None = None,
    ) -> None:
        self.scale_combos: dict[str, QComboBox] = {}
        self.descriptions: dict[str, QLabel] = {}
        self.extra_fields: dict[str, QComboBox | QLineEdit] = {}
        self.feature_boxes: dict[str, QCheckBox] = {}
        self.carried_scores: dict[str, int] = {}
        super().__init__(ref, save, now, recorder=recorder, parent=parent, correcting=correcting)

    # --- building -------------------------------------------------------------------------

    def build(self) -> None:
        for scale_id in ("moaas", "rass", "dissociation"):
            self._add_ordinal(self.ref.scales[scale_id])
        self._add_features()
        cadss = self.ref.scales["cadss"]
        self.cadss = self._add_total(cadss, "cadss", f"{cadss.name} total")
        for scale in self.extra_scales():
            if scale.kind == "ordinal":
                self.extra_fields[scale.id] = self._add_ordinal(scale)
            else:
                self.extra_fields[scale.id] = self._add_total(scale, scale.id, scale.name)
        self.note = NoteEdit(self, lines=2)
        self.note.setPlaceholderText("optional (Shift+Enter for a new line)")
        self.add_field("note", "Note", self.note, "What was seen or said; Enter saves")

    def extra_scales(self) -> list[Scale]:
        """Scales a clinic added: every loaded scale the form has no dedicated field for."""
        return [s for s in self.ref.scales.values() if s.id not in CORE_SCALES]

    def _add_ordinal(self, scale: Scale) -> QComboBox:
        combo = ScaleCombo(self)
        combo.addItem(NOT_ASSESSED, None)
        for level in scale.levels:
            combo.addItem(level.label, level.value)
            if level.description:
                combo.setItemData(combo.count() - 1, level.description, Qt.ItemDataRole.ToolTipRole)
        self.add_field(scale.id, scale.name, combo, _scale_tip(scale))
        description = QLabel(self)
        description.setObjectName("Muted")
        description.setWordWrap(True)
        self.form.addRow("", description)
        self.scale_combos[scale.id] = combo
        self.descriptions[scale.id] = description
        combo.currentIndexChanged.connect(lambda _i, sid=scale.id: self._describe(sid))
        self._describe(scale.id)
        return combo

    def _describe(self, scale_id: str) -> None:
        scale = self.ref.scales[scale_id]
        value = self.scale_combos[scale_id].currentData()
        level = scale.level(int(value)) if value is not None else None
        text = (level.description or level.label) if level else scale.title
        self.descriptions[scale_id].setText(text)

    def _add_features(self) -> None:
        container = QWidget(self)
        container.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        # Columns follow the width the dialog can give, so large type wraps rather than cuts.
        self.feature_grid = WrapGridLayout(container, columns=FEATURE_COLUMNS)
        for feature in self.ref.scales["dissociation"].features:
            box = QCheckBox(feature.label, container)
            self.feature_grid.addWidget(box)
            self.feature_boxes[feature.code] = box
        if self.feature_boxes:
            container.setFocusProxy(next(iter(self.feature_boxes.values())))
        self.add_field(
            "features",
            "Features",
            container,
            "Dissociative features observed (tick all that apply)",
        )

    def _add_total(self, scale: Scale, key: str, label: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setPlaceholderText(_range_hint(scale))
        self.add_field(key, label, edit, f"{_scale_tip(scale)}. Whole number {_range_hint(scale)}")
        return edit

    # --- record ---------------------------------------------------------------------------

    def _score(self, scale_id: str) -> int | None:
        value = self.scale_combos[scale_id].currentData()
        return None if value is None else int(value)

    def _other_scores(self, errors: list[FieldError]) -> dict[str, int]:
        scores = dict(self.carried_scores)
        for scale_id, widget in self.extra_fields.items():
            if isinstance(widget, QComboBox):
                value = self._score(scale_id)
            else:
                value = self.read_int(errors, scale_id, self.ref.scales[scale_id].name)
            if value is not None:
                scores[scale_id] = value
        return scores

    def entry(self) -> Observation:
        errors: list[FieldError] = []
        cadss = self.read_int(errors, "cadss", "CADSS total")
        other = self._other_scores(errors)
        if errors:
            raise ValidationError(errors)
        return Observation(
            observed_at=self.observed_at(),
            moaas=self._score("moaas"),
            rass=self._score("rass"),
            dissociation=self._score("dissociation"),
            features=tuple(code for code, box in self.feature_boxes.items() if box.isChecked()),
            cadss_total=cadss,
            other_scores=other,
            note=self.note.text(),
        )

    def fill(self, row: dict[str, Any]) -> None:
        for scale_id in ("moaas", "rass", "dissociation"):
            select_code(self.scale_combos[scale_id], row.get(scale_id))
        features = set(json.loads(row.get("features") or "[]"))
        for code, box in self.feature_boxes.items():
            box.setChecked(code in features)
        if row.get("cadss_total") is not None:
            self.cadss.setText(str(row["cadss_total"]))
        for scale_id, value in json.loads(row.get("other_scores") or "{}").items():
            widget = self.extra_fields.get(scale_id)
            if widget is None:
                # A scale no longer loaded: keep its score rather than drop it silently.
                self.carried_scores[scale_id] = int(value)
            elif isinstance(widget, QComboBox):
                select_code(widget, value)
            else:
                widget.setText(str(value))
        self.note.setText(row.get("note") or "")
