"""Starting a session: who the patient is (pseudonymously), who is attending, and the checks.

This dialog creates the session rather than adding to one, so it is not an entry form, but it
behaves like one: Enter starts, Escape cancels, a refusal keeps everything typed and says why next
to the field, and it closes only after the store has committed. At least two attending clinicians
and every eligibility and consent item are required before a session can start (the clinic's KAP
eligibility criteria and informed consent).

Under an esketamine REMS protocol the dialog also asks what the Spravato REMS Patient Monitoring
Form needs and the log cannot derive (first treatment, the monitoring clinician's phone and
e-mail, the treatment setting and its address) and the label's contraindication screen: every
item must be answered, and a "yes" refuses the session with the reason (the rule is
:meth:`kapmonitor.domain.rems.RemsStart.problems`, checked again by the store).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from itertools import pairwise

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.records import SessionStart
from kapmonitor.domain.reference import Choice, Reference
from kapmonitor.domain.rems import RemsDefaults, RemsStart, default_rems_defaults
from kapmonitor.domain.validation import FieldError, ValidationError, parse_int, parse_number
from kapmonitor.ui.forms.form_base import (
    FittingDialog,
    fill_combo,
    fit_to_screen,
    from_qdatetime,
    to_qdatetime,
)

StartFn = Callable[[SessionStart, str], str]

CHOOSE = "choose…"
CLINICIAN_LABELS = (
    "Clinician 1",
    "Clinician 2",
    "Clinician 3 (optional)",
    "Clinician 4 (optional)",
)
# Errors the store checks against its own clock; the dialog's "now" may be minutes old.
STORE_CHECKED = frozenset({"started_at"})


def _row_widget(parent: QWidget, *widgets: QWidget, stacked: bool = False) -> QWidget:
    """Several widgets as one field: highlighted and focused together (side by side or stacked)."""
    row = QWidget(parent)
    row.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
    layout = QVBoxLayout(row) if stacked else QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
    row.setFocusProxy(widgets[0])
    return row


def _line_edit(parent: QWidget, placeholder: str) -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setPlaceholderText(placeholder)
    return edit


class StartSessionDialog(FittingDialog):
    """Collects a :class:`SessionStart` and calls ``start(record, recorded_by)`` to commit it."""

    refusal_heading = "Session not started"

    def __init__(
        self,
        ref: Reference,
        start: StartFn,
        now: datetime,
        parent: QWidget | None = None,
        *,
        protocols: Sequence[tuple[str, str]] = (),
        default_protocol: str | None = None,
        signed_in: Sequence[str] = (),
        rems_protocols: Collection[str] = (),
        rems_defaults: RemsDefaults | None = None,
    ) -> None:
        super().__init__(parent)
        self.rems_protocols = frozenset(rems_protocols)
        self.rems_defaults = rems_defaults or default_rems_defaults()
        self.signed_in = list(signed_in)
        self.protocols = list(protocols)
        self.default_protocol = default_protocol
        self.ref = ref
        self._start = start
        self.now = now
        self.session_id: str | None = None
        self.field_widgets: dict[str, QWidget] = {}
        self.tab_chain: list[QWidget] = []
        self.setWindowTitle("Start session")
        self.setModal(True)

        # Two columns in a scrolling body, the buttons below it: they stay on screen whatever
        # the refusal banner above has to list.
        columns = QHBoxLayout(self.body)
        columns.setContentsMargins(0, 0, 0, 0)
        columns.addLayout(self._left_column(), 1)
        columns.addLayout(self._right_column(), 1)
        self.foot.addWidget(self._buttons())
        self._apply_tab_order()
        self.protocol.currentIndexChanged.connect(self._protocol_changed)
        self._protocol_changed()
        self.patient_code.setFocus()
        fit_to_screen(self)

    # --- building -------------------------------------------------------------------------

    def _register(self, key: str, widget: QWidget, tip: str, *focusable: QWidget) -> QWidget:
        widget.setToolTip(tip)
        self.field_widgets[key] = widget
        self.tab_chain.extend(focusable or (widget,))
        return widget

    def _left_column(self) -> QVBoxLayout:
        column = QVBoxLayout()
        column.addWidget(self._patient_group())
        column.addWidget(self._clinicians_group())
        column.addWidget(self._rems_group())
        column.addStretch(1)
        return column

    def _right_column(self) -> QVBoxLayout:
        column = QVBoxLayout()
        self.checklist = self._checkbox_group(
            "checklist",
            "Eligibility and consent (all required)",
            self.ref.choices("eligibility_checklist"),
            "Confirm each item before starting; a session cannot start without all of them",
        )
        column.addWidget(self.checklist.group)
        self.concomitant = self._checkbox_group(
            "concomitant",
            "Sedating or BP-raising medicines taken (REMS)",
            self.ref.choices("concomitant_medicines"),
            "Tick each medicine the patient currently takes (REMS monitoring form)",
        )
        column.addWidget(self.concomitant.group)
        timing = QFormLayout()
        self.started_at = QDateTimeEdit(to_qdatetime(self.now), self)
        self.started_at.setDisplayFormat("yyyy-MM-dd  HH:mm:ss")
        self.started_at.setCalendarPopup(False)
        self._register("started_at", self.started_at, "When the session started (local time)")
        timing.addRow("Started at", self.started_at)
        self.protocol = QComboBox(self)
        # A clinic's protocol may have a long name: the list shows it whole, the closed box
        # does not widen the dialog past the screen for it.
        self.protocol.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.protocol.setMinimumContentsLength(24)
        for protocol_id, name in self.protocols:
            self.protocol.addItem(name, protocol_id)
            self.protocol.setItemData(self.protocol.count() - 1, name, Qt.ItemDataRole.ToolTipRole)
        if self.default_protocol is not None:
            index = self.protocol.findData(self.default_protocol)
            self.protocol.setCurrentIndex(max(index, 0))
        self.protocol.setEnabled(bool(self.protocols))
        if self.protocols:
            self._register(
                "protocol",
                self.protocol,
                "The monitoring protocol: schedule of checks, alarm limits, discharge rules. "
                "A copy is stored with the session.",
            )
            timing.addRow("Protocol", self.protocol)
        else:
            self.protocol.hide()  # not in any layout: it would sit at the dialog's top corner
        column.addLayout(timing)
        column.addStretch(1)
        return column

    def _patient_group(self) -> QGroupBox:
        group = QGroupBox("Patient", self)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.patient_code = _line_edit(group, "clinic code, e.g. KAP-0042")
        form.addRow(
            "Patient code",
            self._register(
                "patient_code",
                self.patient_code,
                "The clinic's pseudonymous patient code, never a name",
            ),
        )
        self.birth_year = _line_edit(group, "e.g. 1980")
        self.age = _line_edit(group, "years")
        age_row = _row_widget(group, self.birth_year, QLabel("or", group), self.age)
        form.addRow(
            "Birth year or age",
            self._register(
                "age",
                age_row,
                "Give the birth year, or the age in years",
                self.birth_year,
                self.age,
            ),
        )
        self.sex = QComboBox(group)
        fill_combo(self.sex, self.ref.choices("sexes"), CHOOSE)
        form.addRow("Sex", self._register("sex", self.sex, "Sex as recorded by the clinic"))
        self.weight = _line_edit(group, "kg")
        form.addRow(
            "Weight (kg)",
            self._register(
                "weight_kg", self.weight, "Today's weight in kg: doses are shown per kg of it"
            ),
        )
        form.addRow("Indication", self._indication_row(group))
        return group

    def _indication_row(self, parent: QWidget) -> QWidget:
        self.indication = QComboBox(parent)
        fill_combo(self.indication, self.ref.choices("indications"), CHOOSE)
        self.indication_other = _line_edit(parent, "for 'Other': say what it is")
        self.indication_other.setToolTip("Required when the indication is 'Other'")
        row = _row_widget(parent, self.indication, self.indication_other, stacked=True)
        self.indication.currentIndexChanged.connect(self._indication_changed)
        self._indication_changed()
        return self._register(
            "indication",
            row,
            "What the treatment is for; for 'Other', say what in the box beside",
            self.indication,
            self.indication_other,
        )

    def _clinicians_group(self) -> QGroupBox:
        group = QGroupBox("Attending clinicians (at least two)", self)
        group.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.clinicians = [_line_edit(group, "name") for _ in CLINICIAN_LABELS]
        self.clinicians[0].setPlaceholderText("name (the one starting)")
        for label, edit in zip(CLINICIAN_LABELS, self.clinicians, strict=True):
            form.addRow(label, edit)
        group.setFocusProxy(self.clinicians[0])
        if self.signed_in:
            # They signed in with their passwords: their names are fixed, not retyped.
            group.setTitle("Attending clinicians (signed in)")
            for edit, name in zip(self.clinicians, self.signed_in, strict=False):
                edit.setText(name)
            for edit in self.clinicians:
                edit.setReadOnly(True)
                edit.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._register(
            "clinicians",
            group,
            "Everyone attending; at least two are required. The first is recorded as "
            "the clinician who started the session.",
            *self.clinicians,
        )
        return group

    def _rems_group(self) -> QGroupBox:
        """The esketamine REMS questions; shown only while a REMS protocol is chosen."""
        group = QGroupBox("Esketamine REMS (Spravato): form details and contraindications", self)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.rems_first = QComboBox(group)
        self.rems_first.addItem(CHOOSE, None)
        self.rems_first.addItem("Yes — first treatment (newly enrolled)", True)
        self.rems_first.addItem("No — treated before", False)
        form.addRow(
            "First treatment",
            self._register(
                "rems_first_treatment",
                self.rems_first,
                "REMS form: is this the patient's first esketamine treatment (newly enrolled)?",
            ),
        )
        self.rems_phone = _line_edit(group, "monitoring clinician's phone")
        form.addRow(
            "Clinician phone",
            self._register("rems_phone", self.rems_phone, "REMS form: monitoring clinician"),
        )
        self.rems_email = _line_edit(group, "name@clinic.example")
        form.addRow(
            "Clinician e-mail",
            self._register("rems_email", self.rems_email, "REMS form: monitoring clinician"),
        )
        self.rems_setting = _line_edit(group, "the treatment setting's name")
        form.addRow(
            "Setting",
            self._register("rems_setting", self.rems_setting, "REMS form: treatment setting"),
        )
        self.rems_address = _line_edit(group, "street, town, postcode")
        form.addRow(
            "Setting address",
            self._register(
                "rems_address", self.rems_address, "REMS form: the treatment setting's address"
            ),
        )
        screen = QWidget(group)
        screen.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        screen_form = QFormLayout(screen)
        screen_form.setContentsMargins(0, 0, 0, 0)
        screen_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        intro = QLabel("Contraindication screen — does the patient have (all required):", screen)
        intro.setWordWrap(True)
        screen_form.addRow(intro)
        self.rems_screen: dict[str, QComboBox] = {}
        for item in self.rems_defaults.contraindications:
            box = QComboBox(screen)
            box.addItem(CHOOSE, None)
            box.addItem("No", False)
            box.addItem("Yes — contraindicated", True)
            box.setToolTip(f"{item.label} ({item.source})")
            label = QLabel(item.label, screen)
            label.setWordWrap(True)
            label.setBuddy(box)
            screen_form.addRow(label, box)
            self.rems_screen[item.code] = box
        screen.setFocusProxy(next(iter(self.rems_screen.values())))
        form.addRow(
            self._register(
                "rems_contraindications",
                screen,
                "The esketamine label's contraindications: a 'yes' refuses the session",
                *self.rems_screen.values(),
            )
        )
        self.rems_box = group
        return group

    def is_rems(self) -> bool:
        return self.selected_protocol() in self.rems_protocols

    def _protocol_changed(self) -> None:
        self.rems_box.setVisible(self.is_rems())

    def rems_record(self) -> RemsStart | None:
        """The REMS answers as typed (None unless a REMS protocol is chosen)."""
        if not self.is_rems():
            return None
        return RemsStart(
            first_treatment=self.rems_first.currentData(),
            clinician_phone=self.rems_phone.text(),
            clinician_email=self.rems_email.text(),
            setting_name=self.rems_setting.text(),
            setting_address=self.rems_address.text(),
            contraindications={code: box.currentData() for code, box in self.rems_screen.items()},
        )

    def _checkbox_group(
        self, key: str, title: str, choices: Iterable[Choice], tip: str
    ) -> _CheckboxGroup:
        group = _CheckboxGroup(title, choices, self)
        self._register(key, group.group, tip, *group.boxes.values())
        return group

    def _buttons(self) -> QDialogButtonBox:
        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            "Start session", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setDefault(True)
        self.save_button.setToolTip("Start the session (Enter)")
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Cancel (Esc)")
        self.buttons.accepted.connect(self.try_save)
        self.buttons.rejected.connect(self.reject)
        return self.buttons

    def _apply_tab_order(self) -> None:
        chain = [*self.tab_chain, *self.buttons.buttons()]
        for first, second in pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _indication_changed(self) -> None:
        self.indication_other.setEnabled(self.indication.currentData() == "other")

    # --- reading the fields -----------------------------------------------------------------

    def _read_int(self, errors: list[FieldError], edit: QLineEdit, label: str) -> int | None:
        try:
            return parse_int(edit.text(), label)
        except ValueError as exc:
            errors.append(FieldError("age", str(exc)))
            return None

    def _read_age(self, errors: list[FieldError]) -> tuple[int | None, int | None]:
        birth_year = self._read_int(errors, self.birth_year, "Birth year")
        age = self._read_int(errors, self.age, "Age")
        if birth_year is not None and age is not None:
            year = from_qdatetime(self.started_at.dateTime()).year
            if age not in (year - birth_year, year - birth_year - 1):
                errors.append(
                    FieldError(
                        "age", f"Birth year {birth_year} and age {age} disagree: give one of them"
                    )
                )
        return birth_year, age

    def _read_weight(self, errors: list[FieldError]) -> float | None:
        try:
            weight = parse_number(self.weight.text(), "Weight")
        except ValueError as exc:
            errors.append(FieldError("weight_kg", str(exc)))
            return None
        if weight is None:
            errors.append(FieldError("weight_kg", "Weight: type the weight in kg"))
        return weight

    def clinician_names(self) -> tuple[str, ...]:
        return tuple(name for edit in self.clinicians if (name := edit.text().strip()))

    def record(self) -> SessionStart:
        """The session as typed; raises ValidationError naming every field that cannot be read."""
        errors: list[FieldError] = []
        birth_year, age = self._read_age(errors)
        weight = self._read_weight(errors)
        indication = self.indication.currentData() or ""
        record = SessionStart(
            patient_code=self.patient_code.text().strip(),
            sex=self.sex.currentData() or "",
            weight_kg=math.nan if weight is None else weight,
            indication=indication,
            clinicians=self.clinician_names(),
            started_at=from_qdatetime(self.started_at.dateTime()),
            birth_year=birth_year,
            age_years=age,
            indication_other=self.indication_other.text() if indication == "other" else "",
            checklist=self.checklist.values(),
            concomitant=self.concomitant.values(),
            rems=self.rems_record(),
        )
        if errors:
            # Show the other fields' problems too, so one round of corrections is enough.
            raise ValidationError(
                self._in_reading_order(errors + self._other_problems(record, errors))
            )
        return record

    def _in_reading_order(self, errors: list[FieldError]) -> list[FieldError]:
        order = list(self.field_widgets)
        return sorted(
            errors, key=lambda e: order.index(e.field) if e.field in order else len(order)
        )

    def _other_problems(self, record: SessionStart, known: list[FieldError]) -> list[FieldError]:
        skip = {e.field for e in known} | STORE_CHECKED
        try:
            record.validate(self.ref, self.now)
        except ValidationError as exc:
            return [e for e in exc.errors if e.field not in skip]
        return []

    def selected_protocol(self) -> str | None:
        return self.protocol.currentData() if self.protocols else None

    # --- saving ---------------------------------------------------------------------------

    def try_save(self) -> None:
        def start() -> None:
            record = self.record()
            names = record.clinicians
            self.session_id = self._start(record, names[0] if names else "")

        if self.attempt(start):
            self.accept()


class _CheckboxGroup:
    """A titled group of one checkbox per catalogue item; ``values()`` maps code → ticked."""

    def __init__(self, title: str, choices: Iterable[Choice], parent: QWidget) -> None:
        self.group = QGroupBox(title, parent)
        # A group box does not widen for its title; make sure the title is never cut.
        self.group.setMinimumWidth(self.group.fontMetrics().horizontalAdvance(title) + 40)
        layout = QVBoxLayout(self.group)
        self.boxes: dict[str, QCheckBox] = {}
        for choice in choices:
            box = QCheckBox(choice.label, self.group)
            if choice.description:
                box.setToolTip(choice.description)
            layout.addWidget(box)
            self.boxes[choice.code] = box
        if self.boxes:
            self.group.setFocusProxy(next(iter(self.boxes.values())))

    def values(self) -> dict[str, bool]:
        return {code: box.isChecked() for code, box in self.boxes.items()}
