"""The last value of each vital sign and score in large type, with how old it is.

Readable from two metres: a therapist glancing over from the patient sees the latest numbers and
whether they are fresh without reading the chart.

A device value awaiting a clinician (issue 13) is shown in its vital's cell when it is newer than
the last confirmed value: lighter and in italics, captioned "unconfirmed · 5 min", the tooltip
saying "Device value, unconfirmed" with the device and the time. It is not part of the record:
the bedside's confirm key (F) stores exactly the readings shown here
(:meth:`LastValuesPanel.pending_ids`), and once confirmed the value looks as any other. An
older confirmed value is kept and comes back if the pending one is marked artefact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsOpacityEffect,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QWidget,
)

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.device_flags import BLOCKING_FLAGS, blocking_flags, flag_caption
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import StoredRow
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.ui.widgets.steady_label import SteadyLabel

# Captions are the short names every clinician reads at a glance; the units are in each
# value's tooltip. "BP mmHg  ▲ critical  just now" made each column wider than a 1280 px
# screen in large type can give.
# The vitals come from the registry (kapmonitor.domain.vitals), in its order: systolic and
# diastolic share one "BP" cell, every other vital has its own under its short name. Then the
# scores: the two shown as words (dissociation, NEWS2) share a row, lower than a row of figures,
# and MOAA/S comes last, so the NEWS2 caveat takes the cell beside it, right under NEWS2: with
# EtCO₂ the nine cells then fit a 660 px window in large type.
_SINGLE = tuple(v for v in VITAL_SIGNS if v.field == v.key)
ROWS = (
    ("bp", "BP"),
    *((v.key, v.short) for v in _SINGLE),
    ("dissociation", "Dissociation"),
    ("news2", "NEWS2 (info)"),
    ("moaas", "MOAA/S"),
)
# Short enough to fit under the big numbers; the full KAP caveat is the tooltip.
NEWS2_NOTE = "NEWS2 is information only: act on the alarms."
COLUMNS = 2
CAPTIONS = dict(ROWS)
# The alarm banner's symbols, in words small enough to sit beside a caption.
LEVEL_MARKERS = {"critical": "▲ critical", "warning": "● warning"}
_SPOKEN_UNIT = {"hr": "beats per minute", "rr": "breaths per minute"}
UNITS = {
    "bp": "Blood pressure, mmHg (systolic/diastolic)",
    **{v.key: f"{v.label}, {_SPOKEN_UNIT.get(v.key, v.unit)}" for v in _SINGLE},
}
WORD_VALUES = ("dissociation", "news2")  # words ("Moderate", "9 incomplete"): set smaller
# Short beside the caption: "device, unconfirmed · 5 min ago" made the numbers' column so wide
# in large type at 1280 px that the chart shrank to a stamp. The device is in the tooltip.
PENDING_CAPTION = "unconfirmed"
PENDING_OPACITY = 0.55  # lighter on either palette: the theme's own colour, more transparent
PENDING_SHEET = "font-style: italic;"


@dataclass(frozen=True)
class PendingShown:
    """A device value shown in a cell while it awaits a clinician: the text, when it was
    observed, the reading ids behind it (both of a blood pressure) and the device."""

    text: str
    observed_at: str
    ids: tuple[int, ...]
    device: str
    flags: tuple[str, ...] = ()  # the device's own doubts (device_flags): F leaves it out

    @property
    def caption(self) -> str:
        """ "device: artefact" for a value the device flagged, else "unconfirmed"."""
        return flag_caption(self.flags) or PENDING_CAPTION


def pending_cells(rows: Mapping[str, StoredRow]) -> dict[str, PendingShown]:
    """The cells a set of newest pending readings (vital -> reading) fill. A blood pressure is
    shown only as a pair from one message (a systolic alone cannot be confirmed)."""
    cells: dict[str, PendingShown] = {}
    sbp, dbp = rows.get("sbp"), rows.get("dbp")
    same = ("device_id", "message_id")
    if (
        sbp is not None
        and dbp is not None
        and all(sbp[k] == dbp[k] for k in same)
        and sbp.observed_at == dbp.observed_at
    ):
        cells["bp"] = PendingShown(
            f"{round(sbp['value'])}/{round(dbp['value'])}",
            sbp.observed_at,
            (sbp.id, dbp.id),
            str(sbp["device_id"]),
            tuple(dict.fromkeys((*blocking_flags(sbp["flags"]), *blocking_flags(dbp["flags"])))),
        )
    for sign in _SINGLE:
        row = rows.get(sign.key)
        if row is not None and row["value"] is not None:
            cells[sign.key] = PendingShown(
                sign.format(row["value"]),
                row.observed_at,
                (row.id,),
                str(row["device_id"]),
                blocking_flags(row["flags"]),
            )
    return cells


def key_newer(times: Mapping[str, str], key: str, observed_at: str) -> bool:
    """A reading newer than ``observed_at`` is already shown under ``key``."""
    return key in times and times[key] > observed_at


class LastValuesPanel(QFrame):
    def __init__(self, ref: Reference, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ref = ref
        self.setObjectName("Panel")
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(0)
        self.values: dict[str, QLabel] = {}
        self.ages: dict[str, QLabel] = {}
        self.times: dict[str, str] = {}
        self.captions: dict[str, QLabel] = {}
        self.levels: dict[str, str] = {}  # key -> "critical" / "warning" while highlighted
        self.caption_texts = dict(CAPTIONS)  # NEWS2's names its SpO₂ scale when it is 2
        # Device values shown while they await a clinician, by cell; the confirmed text each
        # such cell shows again when its pending value is decided.
        self.pending: dict[str, PendingShown] = {}
        self.confirmed_texts: dict[str, str] = {}
        # Cells whose device said "probe off" (a reading without a value) after the value shown
        # there: the caption says so until a newer value comes in. Cell -> when.
        self.probe_off: dict[str, str] = {}
        self.news2_scale = 1
        # Two columns of cells, each a caption with the reading's age beside it and the value
        # below: eight stacked rows were taller than a 720 px screen leaves for them.
        for index, (key, caption) in enumerate(ROWS):
            row, column = divmod(index, COLUMNS)
            label = QLabel(caption)
            label.setObjectName("BigLabel")
            value = SteadyLabel("—")  # new at every save: see steady_label
            value.setObjectName("BigWord" if key in WORD_VALUES else "BigValue")
            value.setAccessibleName(caption)
            if key in UNITS:
                value.setToolTip(UNITS[key])
                label.setToolTip(UNITS[key])
            age = SteadyLabel("")
            age.setObjectName("BigAge")
            age.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            caption_row = QHBoxLayout()
            caption_row.setSpacing(6)
            caption_row.addWidget(label)
            caption_row.addStretch(1)
            caption_row.addWidget(age)
            grid.addLayout(caption_row, row * 2, column)
            grid.addWidget(value, row * 2 + 1, column, Qt.AlignmentFlag.AlignTop)
            self.values[key] = value
            self.ages[key] = age
            self.captions[key] = label
        # Always on screen once a score shows: a tooltip alone would hide the caveat at the bedside.
        self.news2_note = QLabel(NEWS2_NOTE)
        self.news2_note.setObjectName("Muted")
        self.news2_note.setWordWrap(True)
        # It wraps to whatever width the numbers leave it; it never widens a column.
        self.news2_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.news2_note.hide()
        # The caveat takes the free cell beside the last number when there is one (nine cells
        # in two columns): a row of its own under five rows of big numbers made the column
        # taller than a 660 px window leaves for it in large type.
        row, column = divmod(len(ROWS), COLUMNS)
        if column:
            grid.addWidget(self.news2_note, row * 2, column, 2, COLUMNS - column)
            last = row * 2 + 1
        else:
            grid.addWidget(self.news2_note, row * 2, 0, 1, COLUMNS)
            last = row * 2
        grid.setRowStretch(last + 1, 1)
        for column in range(COLUMNS):
            grid.setColumnStretch(column, 1)

    def clear(self) -> None:
        for key in self.values:
            self.values[key].setText("—")
            self.ages[key].setText("")
        self.times.clear()
        self.confirmed_texts.clear()
        self.probe_off.clear()
        for key in list(self.pending):
            self._pending_look(key, None)
        self.pending.clear()
        self.news2_note.hide()

    # --- device values awaiting a clinician -------------------------------------------------

    def set_pending(self, rows: Mapping[str, StoredRow], now: datetime | None = None) -> None:
        """Show the newest pending device reading of each vital (``rows``, vital -> reading)
        in its cell when it is newer than the confirmed value there; any other cell shows its
        confirmed value as before."""
        wanted = {
            key: cell
            for key, cell in pending_cells(rows).items()
            if not key_newer(self.times, key, cell.observed_at)
            and self.times.get(key) != cell.observed_at
        }
        for key in list(self.pending):
            if key not in wanted:
                del self.pending[key]
                self.values[key].setText(self.confirmed_texts.get(key, "—"))
                self._pending_look(key, None)
        for key, cell in wanted.items():
            if self.probe_off.get(key, "") <= cell.observed_at:
                self.probe_off.pop(key, None)  # a newer value: the probe is back
            if self.pending.get(key) != cell:
                self.pending[key] = cell
                self.values[key].setText(cell.text)
                self._pending_look(key, cell)
        if now is not None:
            self.update_ages(now)
        else:
            for key in self.pending:
                self.ages[key].setText(self.pending[key].caption)

    def set_probe_off(self, key: str, observed_at: str, now: datetime | None = None) -> None:
        """The device said "probe off" for the vital of cell ``key`` at ``observed_at`` (a
        reading without a value): its caption says "probe off" until a newer value arrives."""
        shown = max(self.times.get(key, ""), getattr(self.pending.get(key), "observed_at", ""))
        if observed_at <= shown or observed_at <= self.probe_off.get(key, ""):
            return
        self.probe_off[key] = observed_at
        if now is not None:
            self.update_ages(now)
        else:
            self.ages[key].setText(BLOCKING_FLAGS["probe_off"])

    def pending_ids(self) -> tuple[int, ...]:
        """The device readings shown as pending that the confirm key (F) may confirm, in the
        cells' order (a reading that arrives later is not in it until shown; one the device
        flagged never is: :meth:`flagged_ids`)."""
        return tuple(
            i
            for key, _c in ROWS
            if key in self.pending and not self.pending[key].flags
            for i in self.pending[key].ids
        )

    def flagged_ids(self) -> tuple[int, ...]:
        """The device readings shown pending that the device itself flagged: never confirmed
        by F, shown in their own caption, and markable artefact by M."""
        return tuple(
            i
            for key, _c in ROWS
            if key in self.pending and self.pending[key].flags
            for i in self.pending[key].ids
        )

    def shown_ids(self) -> tuple[int, ...]:
        """Every pending reading shown, flagged or not (what M may choose from)."""
        return tuple(i for key, _c in ROWS if key in self.pending for i in self.pending[key].ids)

    def pending_texts(self) -> dict[str, str]:
        """Cell -> the pending value shown there (for the status line and tests)."""
        return {key: self.pending[key].text for key, _c in ROWS if key in self.pending}

    def _pending_look(self, key: str, cell: PendingShown | None) -> None:
        """Lighter and in italics while pending, with the device in the tooltip; back to the
        cell's usual look once decided."""
        value = self.values[key]
        if cell is None:
            value.setGraphicsEffect(None)  # type: ignore[arg-type]  # Qt accepts None
            value.setStyleSheet("")
            value.setProperty("pending", False)
            value.setToolTip(UNITS.get(key, ""))
            self.ages[key].setToolTip("")
            return
        effect = QGraphicsOpacityEffect(value)
        effect.setOpacity(PENDING_OPACITY)
        value.setGraphicsEffect(effect)
        value.setStyleSheet(PENDING_SHEET)
        value.setProperty("pending", True)
        at = from_iso(cell.observed_at).astimezone()
        tip = (
            f"Device value, unconfirmed: {cell.device} at {at:%H:%M:%S}. Not part of the record "
            "until confirmed: F confirms it, M marks it artefact."
        )
        if cell.flags:
            tip = (
                f"Device value flagged by the device ({cell.caption}): {cell.device} at "
                f"{at:%H:%M:%S}. F does not confirm it; M marks it artefact."
            )
        value.setToolTip(f"{UNITS[key]}\n{tip}" if key in UNITS else tip)
        self.ages[key].setToolTip(tip)

    def show_vitals(self, row: dict) -> None:
        if row.get("sbp") is not None:
            self._set("bp", f"{row['sbp']}/{row['dbp']}", row["observed_at"])
        for sign in _SINGLE:
            if row.get(sign.key) is not None:
                self._set(sign.key, sign.format(row[sign.key]), row["observed_at"])

    def show_latest(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Show the newest value of each number from ``rows`` (clinical-time order), as
        showing every row in turn would (``show_vitals`` / ``show_observation``), but only from
        the few rows that hold a newest value: opening a three-hour 1 Hz record set every big
        number 10,800 times."""
        if table == "vitals":
            keys: tuple[str, ...] = ("sbp", *(sign.key for sign in _SINGLE))
            show = self.show_vitals
        elif table == "observations":
            keys, show = ("moaas", "dissociation"), self.show_observation
        else:
            return
        wanted, newest = set(keys), []
        for row in reversed(rows):
            found = {key for key in wanted if row.get(key) is not None}
            if found:
                newest.append(row)
                wanted -= found
                if not wanted:
                    break
        for row in reversed(newest):
            show(row)

    def show_observation(self, row: dict) -> None:
        if row.get("moaas") is not None:
            self._set("moaas", str(row["moaas"]), row["observed_at"])
        if row.get("dissociation") is not None:
            level = self.ref.scales["dissociation"].describe(row["dissociation"])
            self._set("dissociation", level, row["observed_at"])

    def show_news2(self, score: dict) -> None:
        """NEWS2 is information, not the KAP alarm: the caveat rides along as a tooltip. A set
        with a parameter missing has no band: its partial total is shown with "incomplete"."""
        from kapmonitor.domain.news2 import INCOMPLETE, KAP_CAVEAT

        if key_newer(self.times, "news2", score["observed_at"]):
            return  # a back-timed entry does not replace a newer score
        missing = ", ".join(json.loads(score["news2_missing"] or "[]"))
        band = score["news2_band"]
        incomplete = band == INCOMPLETE or bool(missing)
        total = score["news2_total"]
        self._set(
            "news2", f"{total} {INCOMPLETE}" if incomplete else str(total), score["observed_at"]
        )
        # The word must fit the column: the big figure's type is too wide for it.
        self._restyle(self.values["news2"], "BigWord" if incomplete else "BigValue")
        scale = json.loads(score.get("news2_parts") or "{}").get("spo2_scale", 1)
        self.set_news2_scale(scale)
        verdict = (
            f"Incomplete: no band (partial total {total}; not measured: {missing})."
            if incomplete
            else f"Band: {band}."
        )
        self.ages["news2"].setToolTip(f"{verdict} {KAP_CAVEAT}")
        note = f"{NEWS2_NOTE} Incomplete set: no band." if incomplete else NEWS2_NOTE
        self.news2_note.setText(note)
        self.news2_note.setToolTip(
            f"{KAP_CAVEAT}\nNot measured: {missing}." if missing else KAP_CAVEAT
        )
        self.news2_note.show()
        self.values["news2"].setToolTip(f"{verdict} {KAP_CAVEAT}")

    def set_news2_scale(self, scale: int) -> None:
        """ "NEWS2 (Scale 2)" beside a score on the hypercapnic SpO₂ scale, so nobody reads a
        saturation of 88 % scoring 0 as a mistake."""
        from kapmonitor.domain.news2 import scale_label

        caption = f"{scale_label(scale)} (info)" if scale != 2 else scale_label(scale)
        self.caption_texts["news2"] = caption
        marker = LEVEL_MARKERS.get(self.levels.get("news2", ""), "")
        self.captions["news2"].setText(f"{caption}  {marker}" if marker else caption)
        self.news2_scale = scale

    @staticmethod
    def _restyle(widget: QLabel, name: str) -> None:
        if widget.objectName() != name:
            widget.setObjectName(name)
            widget.style().unpolish(widget)
            widget.style().polish(widget)

    def _set(self, key: str, text: str, observed_at: str) -> None:
        if key in self.times and self.times[key] > observed_at:
            return  # a back-timed entry does not replace a newer reading
        self.times[key] = observed_at
        self.confirmed_texts[key] = text
        if self.probe_off.get(key, "") < observed_at:
            self.probe_off.pop(key, None)
        pending = self.pending.get(key)
        if pending is not None and pending.observed_at > observed_at:
            return  # a newer device value still awaits a clinician: it stays shown
        if pending is not None:  # confirmed, or an as-new confirmed value came in
            del self.pending[key]
            self._pending_look(key, None)
        self.values[key].setText(text)

    def update_ages(self, now: datetime) -> None:
        for key, observed in self.times.items():
            if key not in self.pending:
                self.ages[key].setText(_age(now, observed))
        for key, cell in self.pending.items():
            if cell.flags:  # the device's doubt in words; short, the column is narrow
                self.ages[key].setText(cell.caption)
                continue
            minutes = int((now - from_iso(cell.observed_at)).total_seconds() // 60)
            age = "now" if minutes < 1 else f"{minutes} min"
            self.ages[key].setText(f"{PENDING_CAPTION} · {age}")
        for key in self.probe_off:
            self.ages[key].setText(BLOCKING_FLAGS["probe_off"])

    def set_levels(self, levels: Mapping[str, str]) -> None:
        """Highlight each vital at the level of its latest reading: critical or warning style
        on the number and a marker word on its caption, since colour never carries meaning
        alone. The caller decides the level from the readings, so a highlight stays through an
        acknowledgement and goes only when a calmer reading of that vital follows."""
        for key, caption in self.captions.items():
            level = levels.get(key, "normal")
            level = level if level in LEVEL_MARKERS else "normal"
            if self.levels.get(key, "normal") == level:
                continue
            marker = LEVEL_MARKERS.get(level, "")
            text = self.caption_texts[key]
            caption.setText(f"{text}  {marker}" if marker else text)
            self.values[key].setAccessibleDescription(marker)
            for widget in (caption, self.values[key]):
                widget.setProperty("level", level)  # styled by the theme's [level=…] rules
                widget.style().unpolish(widget)
                widget.style().polish(widget)
            if level == "normal":
                self.levels.pop(key, None)
            else:
                self.levels[key] = level

    def level(self, key: str) -> str:
        """``"critical"``, ``"warning"`` or ``"normal"``, as shown for that vital."""
        return self.levels.get(key, "normal")


def _age(now: datetime, observed_at: str) -> str:
    minutes = int((now - from_iso(observed_at)).total_seconds() // 60)
    return "just now" if minutes < 1 else f"{minutes} min ago"
