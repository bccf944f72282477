"""Adverse effect entry: the term, how severe (CTCAE grade) and, separately, whether serious.

Picking the term must be quick while something is happening at the bedside: the term box accepts
typing and offers every list entry containing what was typed. What is stored is always the list's
code; text that matches no entry is refused rather than guessed. 'Other' needs a verbatim term,
since MedDRA coding needs a licence. Severity and seriousness are separate questions (CTCAE v5.0
grades severity; 21 CFR 312.32 and ICH E2A define seriousness), so the form asks both, except
that grade 4 (life-threatening) and 5 (death) are serious by definition: choosing them ticks
"Serious" with its criterion, locks it, and says why (the record refuses them as non-serious).
A respiratory or serious event raises a critical alarm when saved (the store decides).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.records import SERIOUS_BY_DEFINITION, AdverseEvent
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.ui.forms.form_base import EntryForm, SaveFn, fill_combo, select_code
from kapmonitor.ui.widgets.field_errors import mark_refused

CHOOSE = "choose…"
SUGGESTIONS = 3


def _term_combo(parent: QWidget, labels_and_codes: list[tuple[str, str]]) -> QComboBox:
    """An editable list that completes on any part of a label, case-insensitively."""
    combo = QComboBox(parent)
    combo.setEditable(True)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    for label, code in labels_and_codes:
        combo.addItem(label, code)
    completer = QCompleter(combo.model(), combo)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
    combo.setCompleter(completer)
    combo.setCurrentIndex(-1)
    combo.lineEdit().setPlaceholderText("type to search, e.g. naus")
    return combo


class AdverseEventForm(EntryForm):
    title = "Adverse effect"
    time_label = "Onset"

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
        super().__init__(ref, save, now, recorder=recorder, parent=parent, correcting=correcting)

    # --- building -------------------------------------------------------------------------

    def build(self) -> None:
        terms = [(c.label, c.code) for c in self.ref.choices("adverse_effects")]
        self.term = _term_combo(self, terms)
        self.add_field(
            "term",
            "Adverse effect",
            self.term,
            "Type part of the term and pick it from the list; 'Other (verbatim term)' if absent",
        )
        self.verbatim = QLineEdit(self)
        self.add_field("verbatim", "Verbatim term", self.verbatim, "The effect in words as seen")
        self.code = QLineEdit(self)
        self.code.setPlaceholderText("MedDRA code if licensed")
        self.add_field("code", "Code", self.code, "Optional coded term (e.g. MedDRA), if licensed")
        self._build_grade()
        self._build_seriousness()
        self._build_action()
        self.relatedness = QComboBox(self)
        fill_combo(self.relatedness, self.ref.choices("ae_relatedness"))
        select_code(self.relatedness, "unknown")
        self.add_field(
            "relatedness", "Related to the drug", self.relatedness, "Relatedness to the drug given"
        )
        self.term.currentTextChanged.connect(self._term_changed)
        self._term_changed()

    def _build_grade(self) -> None:
        self.grade = QComboBox(self)
        fill_combo(self.grade, self.ref.choices("ctcae_grades"), CHOOSE)
        self.grade_description = QLabel(self)
        self.grade_description.setObjectName("Muted")
        self.grade_description.setWordWrap(True)
        row = QWidget(self)
        row.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QVBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.grade)
        layout.addWidget(self.grade_description)
        row.setFocusProxy(self.grade)
        self.add_field("grade", "Severity (CTCAE grade)", row, "How severe: CTCAE v5 generic grade")
        self.grade.currentIndexChanged.connect(self._grade_changed)
        self._grade_changed()

    def _build_seriousness(self) -> None:
        self.serious = QCheckBox("Serious adverse event", self)
        self.add_field(
            "serious",
            "",
            self.serious,
            "Seriousness is separate from severity: death, life-threatening, hospitalisation, "
            "disability, congenital anomaly or an important medical event",
        )
        self.criterion = QComboBox(self)
        fill_combo(self.criterion, self.ref.choices("seriousness_criteria"), CHOOSE)
        self.add_field(
            "serious_criterion",
            "Seriousness criterion",
            self.criterion,
            "Why it is serious (required when 'Serious' is ticked)",
        )
        self.serious_note = QLabel(self)
        self.serious_note.setObjectName("SeriousByDefinition")
        self.serious_note.setWordWrap(True)
        self.serious_note.hide()
        self.add_field(
            "serious_note",
            "",
            self.serious_note,
            "CTCAE grade 4 and 5 meet the ICH E2A seriousness criteria by definition",
        )
        self.serious.toggled.connect(self._serious_changed)
        self._serious_changed()

    def _build_action(self) -> None:
        self.action = QComboBox(self)
        fill_combo(self.action, self.ref.choices("ae_actions"))
        self.add_field("action", "Action taken", self.action, "What was done about it")
        self.action_detail = QLineEdit(self)
        self.add_field(
            "action_detail",
            "Action detail",
            self.action_detail,
            "What was given or done (required when the action is 'Other')",
        )
        self.action.currentIndexChanged.connect(self._action_changed)
        self._action_changed()

    # --- reacting to choices --------------------------------------------------------------

    def _term_changed(self) -> None:
        needed = self.term_code() == "other"
        self.verbatim.setPlaceholderText("required for 'Other'" if needed else "optional detail")

    def _grade_changed(self) -> None:
        self.grade_description.setText(self.grade.currentData(Qt.ItemDataRole.ToolTipRole) or "")
        if hasattr(self, "serious"):  # the grade is built before the seriousness fields
            self._apply_serious_by_definition()

    def _apply_serious_by_definition(self) -> None:
        """Grade 4–5: serious, with its criterion, and said in words; the box cannot be
        unticked while the grade stands. A lower grade gives the choice back."""
        grade = self.grade.currentData()
        criterion = SERIOUS_BY_DEFINITION.get(int(grade)) if grade is not None else None
        if criterion is None:
            self.serious.setEnabled(True)
            self.serious_note.hide()
            return
        self.serious.setChecked(True)
        self.serious.setEnabled(False)
        if self.criterion.currentData() in (None, ""):
            select_code(self.criterion, criterion)
        label = self.ref.label("seriousness_criteria", criterion).lower()
        self.serious_note.setText(
            f"Grade {grade} is serious by definition (ICH E2A: {label}): marked serious. "
            "Saving raises a critical alarm with the escalation checklist."
        )
        self.serious_note.show()

    def _serious_changed(self) -> None:
        serious = self.serious.isChecked()
        self.criterion.setEnabled(serious)
        if not serious:
            self.criterion.setCurrentIndex(0)

    def _action_changed(self) -> None:
        needed = self.action.currentData() == "other"
        self.action_detail.setPlaceholderText(
            "required for 'Other': describe it" if needed else "optional, e.g. drug and dose"
        )

    # --- record ---------------------------------------------------------------------------

    def term_code(self) -> str | None:
        """The code of the term typed (label or code, any case); "" if blank, None if unknown."""
        text = self.term.currentText().strip()
        if not text:
            return ""
        index = self.term.findText(text, Qt.MatchFlag.MatchFixedString)
        if index < 0:
            index = self.term.findData(text.casefold())
        return str(self.term.itemData(index)) if index >= 0 else None

    def _unknown_term(self) -> FieldError:
        text = self.term.currentText().strip()
        folded = text.casefold()
        close = [
            c.label for c in self.ref.choices("adverse_effects") if folded in c.label.casefold()
        ]
        hint = f" Did you mean {', '.join(close[:SUGGESTIONS])}?" if close else ""
        return FieldError(
            "term",
            f"Adverse effect “{text}” is not in the list: pick it from the list, or choose "
            f"'Other (verbatim term)' and type it as the verbatim term.{hint}",
        )

    def entry(self) -> AdverseEvent:
        errors: list[FieldError] = []
        term = self.term_code()
        if term is None:
            errors.append(self._unknown_term())
        grade = self.grade.currentData()
        if grade is None:
            errors.append(FieldError("grade", "Choose the severity (CTCAE grade 1–5)"))
        if errors or term is None or grade is None:
            raise ValidationError(errors)
        serious = self.serious.isChecked()
        return AdverseEvent(
            term=term,
            grade=int(grade),
            observed_at=self.observed_at(),
            verbatim=self.verbatim.text(),
            code=self.code.text(),
            serious=serious,
            serious_criterion=(self.criterion.currentData() or "") if serious else "",
            action=self.action.currentData() or "",
            action_detail=self.action_detail.text(),
            relatedness=self.relatedness.currentData() or "",
        )

    def show_errors(self, exc: ValidationError, heading: str | None = None) -> None:
        """The record reports a missing 'Other' text under the list; mark the text box too."""
        super().show_errors(exc, heading)
        pairs = (
            ("term", self.verbatim, self.term_code() == "other"),
            ("action", self.action_detail, self.action.currentData() == "other"),
        )
        for field, edit, is_other in pairs:
            message = exc.for_field(field)
            if message and is_other and not edit.text().strip():
                mark_refused({field: edit}, [FieldError(field, message)])
                if exc.errors[0].field == field:
                    edit.setFocus()

    def fill(self, row: dict[str, Any]) -> None:
        select_code(self.term, row.get("term"))
        self.verbatim.setText(row.get("verbatim") or "")
        self.code.setText(row.get("code") or "")
        select_code(self.grade, row.get("grade"))
        self.serious.setChecked(bool(row.get("serious")))
        select_code(self.criterion, row.get("serious_criterion"))
        select_code(self.action, row.get("action"))
        self.action_detail.setText(row.get("action_detail") or "")
        select_code(self.relatedness, row.get("relatedness"))
