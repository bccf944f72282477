"""One session as the supervisor reads it: header, chart, the whole timeline and a tab per topic.

Read-only. The chart is the bedside ``TrendChart`` drawing the session's chart picture (the one
the PDF draws; the bedside builds the same one row by row); the timeline is the bedside timeline
with each correction placed right after what it corrects and a column saying when every entry was
typed. Review comments, addenda (marked ADDENDUM) and the signature appear on the timeline too, at
their time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.chart_picture import picture_of
from kapmonitor.domain.clock import Clock, format_duration
from kapmonitor.domain.reference import Reference
from kapmonitor.domain.session_rows import SignatureRow
from kapmonitor.domain.timeline import (
    TimelineItem,
    timeline,
    timeline_item,
)
from kapmonitor.reports.report_sections import (
    ADDENDUM,
    REVIEW_KINDS,
    RemsForm,
    review_text,
    session_sections,
    signature_text,
)
from kapmonitor.store import central_signatures, rems_store, signatures
from kapmonitor.store.session_store import SessionLog, SessionStore
from kapmonitor.ui.widgets.theme import current_theme
from kapmonitor.ui.widgets.timeline_view import COLUMNS, TimelineModel, TimelineView
from kapmonitor.ui.widgets.trend_chart import TrendChart

Index = QModelIndex | QPersistentModelIndex
REVIEW_CHART_MIN_HEIGHT = 160  # px: the chart gives way first on a 720 px screen
TABS = (
    "Timeline",
    "Doses",
    "Vitals",
    "Observations",
    "Adverse effects",
    "Interventions",
    "Alarms",
    "Discharge",
    "Questionnaires",
    "Quality flags",
    "Comments & addenda",
    "REMS",
)
MAX_COLUMN_PX = 240
#: Which report section each tab shows.
SECTION_OF_TAB = {
    "Doses": "doses",
    "Vitals": "vitals",
    "Observations": "observations",
    "Adverse effects": "adverse_events",
    "Interventions": "interventions",
    "Alarms": "alarms",
    "Discharge": "discharge",
    "Questionnaires": "questionnaires",
    "Quality flags": "quality",
    "Comments & addenda": "review",
    "REMS": "rems",
}


def local(when: datetime, with_date: bool = False) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S")


class ReviewTimelineModel(TimelineModel):
    """The bedside timeline plus when each entry was typed; corrections follow what they
    correct, whatever their own time, so the original and its correction read together."""

    COLUMNS = (*COLUMNS, "Recorded")

    def reset(self, items: list[TimelineItem], origin: datetime | None) -> None:
        self.beginResetModel()
        key = {id(i): (i.observed_at, i.recorded_at) for i in items}
        known = {(i.table, i.row_id) for i in items}
        following = {(i.table, i.supersedes_id): i for i in items if i.supersedes_id is not None}
        roots = [
            i for i in items if i.supersedes_id is None or (i.table, i.supersedes_id) not in known
        ]
        ordered: list[TimelineItem] = []
        for root in sorted(roots, key=lambda i: key[id(i)]):
            item: TimelineItem | None = root
            while item is not None:
                ordered.append(item)
                item = following.get((item.table, item.row_id))
        self.items = ordered
        self.origin = origin
        self.superseded = {
            (i.table, i.supersedes_id): i.row_id for i in self.items if i.supersedes_id is not None
        }
        self.endResetModel()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole and index.column() == len(COLUMNS):
            return local(item.recorded_at, with_date=True)
        if role == Qt.ItemDataRole.FontRole and item.kind == ADDENDUM:
            font = QFont()
            font.setBold(True)
            return font
        return super().data(index, role)

    def row_texts(self) -> list[list[str]]:
        return [
            [str(self.data(self.index(r, c))) for c in range(len(self.COLUMNS))]
            for r in range(len(self.items))
        ]


class ReadOnlyTable(QTableWidget):
    """A plain read-only table; ``warn`` rows are bold and coloured (the text says it too)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(True)
        self.verticalHeader().hide()
        self.warn_colour = current_theme(False).warn
        self.rows: list[list[str]] = []
        # Wrapped rows are sized for the real column widths, known only once laid out.
        self.horizontalHeader().sectionResized.connect(lambda *_: self.resizeRowsToContents())

    def headers(self) -> list[str]:
        """The column titles as shown."""
        return [self.horizontalHeaderItem(c).text() for c in range(self.columnCount())]

    def records(self) -> list[dict[str, str]]:
        """The rows keyed by column title, so a reader (a test) names the column it means
        instead of counting to it."""
        headers = self.headers()
        return [dict(zip(headers, row, strict=True)) for row in self.rows]

    def fill(self, headers: list[str], rows: list[list[str]], warn: set[int] | None = None) -> None:
        warn = warn or set()
        self.clear()
        self.rows = [list(r) for r in rows]
        self.setColumnCount(len(headers))
        self.setRowCount(len(rows))
        self.setHorizontalHeaderLabels(headers)
        bold = QFont(self.font())
        bold.setBold(True)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if r in warn:
                    item.setFont(bold)
                    item.setForeground(QBrush(QColor(self.warn_colour)))
                self.setItem(r, c, item)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.resizeColumnsToContents()
        for column in range(len(headers) - 1):  # leave the last (the words) room to read
            if self.columnWidth(column) > MAX_COLUMN_PX:
                self.setColumnWidth(column, MAX_COLUMN_PX)
        self.resizeRowsToContents()


class SessionReviewView(QWidget):
    """The detail pane of the review window: one session, read-only."""

    def __init__(
        self,
        store: SessionStore,
        clock: Clock,
        parent: QWidget | None = None,
        *,
        night: bool = False,
        treatment_setting: str = "",
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.clock = clock
        self.treatment_setting = treatment_setting
        self.ref: Reference = store.ref
        self.log: SessionLog | None = None
        self.night = night

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.patient_label = QLabel("Select a session", self)
        self.patient_label.setObjectName("PatientCode")
        self.details_label = QLabel("", self)
        self.people_label = QLabel("", self)
        self.times_label = QLabel("", self)
        self.signature_label = QLabel("", self)
        self.signature_label.setObjectName("SignatureLine")
        for label in (
            self.details_label,
            self.people_label,
            self.times_label,
            self.signature_label,
        ):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(self.patient_label)
        top.addWidget(self.details_label, 1)
        layout.addLayout(top)
        for widget in (self.people_label, self.times_label, self.signature_label):
            layout.addWidget(widget)

        self.chart = TrendChart(night=night)
        self.chart.setMinimumHeight(REVIEW_CHART_MIN_HEIGHT)
        self.tabs = QTabWidget(self)
        self.timeline = TimelineView(self)
        self.timeline.timeline = ReviewTimelineModel(self.timeline)
        self.timeline.setModel(self.timeline.timeline)
        self.timeline.setToolTip("Every entry in clinical order; corrections follow what they fix")
        header = self.timeline.horizontalHeader()
        header.setSectionResizeMode(len(COLUMNS), QHeaderView.ResizeMode.ResizeToContents)
        self.tables: dict[str, ReadOnlyTable] = {}
        self.tabs.addTab(self.timeline, "Timeline")
        for name in TABS[1:]:
            table = ReadOnlyTable(self)
            table.setObjectName(name.replace(" ", "").replace("&", "And") + "Table")
            self.tables[name] = table
            self.tabs.addTab(table, name.replace("&", "&&"))
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.chart)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([560, 800])
        layout.addWidget(split, 1)
        self.setEnabled(False)

    # --- showing a session -------------------------------------------------------------------

    def clear(self) -> None:
        self.log = None
        self.patient_label.setText("Select a session")
        for label in (
            self.details_label,
            self.people_label,
            self.times_label,
            self.signature_label,
        ):
            label.setText("")
        self.chart.reset(self.clock.now().timestamp())
        self.timeline.timeline.reset([], None)
        for table in self.tables.values():
            table.fill([], [])
        self.setEnabled(False)

    def show_session(self, session_id: str) -> SessionLog:
        """Load and show one session (raises StoreError if it cannot be read)."""
        self.log = self.store.load(session_id)
        self.setEnabled(True)
        self._show_header()
        self._replay_chart()
        self._show_timeline()
        self._fill_tabs()
        return self.log

    def reload(self) -> SessionLog | None:
        return self.show_session(self.log.id) if self.log is not None else None

    def signature(self) -> SignatureRow | None:
        rows = self.log.current_of(SignatureRow) if self.log else []
        return rows[-1] if rows else None

    @property
    def signed(self) -> bool:
        return self.signature() is not None

    def _show_header(self) -> None:
        assert self.log is not None
        log, ref = self.log, self.ref
        session = log.session
        self.patient_label.setText(session["patient_code"])
        indication = session["indication_other"] or ref.label("indications", session["indication"])
        age = f"{session['age_years']} y" if session["age_years"] is not None else "age not given"
        self.details_label.setText(
            f"{age} · {ref.label('sexes', session['sex'])} · {session['weight_kg']:g} kg · "
            f"{indication}"
        )
        protocol = log.protocol
        protocol_text = f"{protocol.name} (version {protocol.version})" if protocol else "none"
        self.people_label.setText(
            f"Clinicians: {', '.join(log.clinicians)} · Protocol: {protocol_text}"
        )
        started, ended = log.started_at(), log.ended_at()
        times = f"Started {local(started, with_date=True)}"
        if ended is not None:
            times += (
                f" · ended {_end_text(started, ended)} · "
                f"duration {format_duration((ended - started).total_seconds())}"
            )
        else:
            times += " · not ended (still open)"
        total = log.cumulative_dose_mg()
        if total:
            times += f" · dose {total:g} mg ({total / session['weight_kg']:.2f} mg/kg)"
        self.times_label.setText(times)
        centrally = central_signatures.is_closed_centrally(self.store.db, log.id)
        status = (
            "Signed"
            if self.signed
            else "Signed at the centre"
            if centrally
            else "Ended — not signed"
            if ended
            else "Open"
        )
        elsewhere = signatures.elsewhere_text(self.store.db, log.id)  # imported: never ours
        attested = signatures.attested_text(self.store.db, log.id)
        central = central_signatures.central_text(self.store.db, log.id)  # from the archive
        self.signature_label.setText(
            f"Status: {status} · "
            + (signature_text(self.signature()) if not centrally else "none made on this laptop")
            + "".join(f" · {text}" for text in (attested, elsewhere, central) if text)
        )

    def _replay_chart(self) -> None:
        """Draw the session's chart picture: the one the PDF draws, and the live chart was fed
        row by row."""
        assert self.log is not None
        self.chart.show_picture(picture_of(self.log, self.ref), self.clock.now().timestamp())

    def _show_timeline(self) -> None:
        assert self.log is not None
        log = self.log
        clinical = {t: rows for t, rows in log.rows.items() if t not in REVIEW_KINDS}
        items = timeline(clinical, self.ref)
        for table, kind in REVIEW_KINDS.items():
            for row in log.rows.get(table, []):
                summary = signature_text(row) if isinstance(row, SignatureRow) else review_text(row)
                items.append(
                    replace(timeline_item(table, row, self.ref), kind=kind, summary=summary)
                )
        self.timeline.timeline.reset(items, log.first_dose_at())

    # --- tabs ------------------------------------------------------------------------------

    def _fill_tabs(self) -> None:
        """Fill the tabs from the report's sections: the same tables the PDF prints, here with
        the current entries only (the timeline shows what each correction replaced)."""
        assert self.log is not None
        now = self.clock.now()
        sections = {
            s.key: s
            for s in session_sections(
                self.log, self.ref, self.quality_flags(), now, rems=self.rems_form()
            )
        }
        for index, name in enumerate(TABS):
            if name == "Timeline":
                continue
            section = sections[SECTION_OF_TAB[name]]
            shown = section.shown()
            rows = [list(r.cells) for r in shown]
            warn = {i for i, r in enumerate(shown) if r.warn}
            self.tables[name].fill(list(section.headers), rows, warn)
            self.tables[name].setToolTip("\n".join(section.notes))
            self.tabs.setTabText(index, section.label.replace("&", "&&"))  # not a mnemonic

    def quality_flags(self) -> list[Any]:
        """The session's quality flags."""
        if self.log is None:
            return []
        from kapmonitor.store.signoff import session_quality_flags

        # The same flags the sign dialog lists and the store asks to be confirmed.
        return list(session_quality_flags(self.store, self.log, self.clock.now()))

    def rems_form(self) -> RemsForm | None:
        """The REMS form as the log fills it and its submission status; None unless the
        session's protocol is a REMS protocol."""
        assert self.log is not None
        protocol = self.log.protocol
        if protocol is None or not protocol.rems:
            return None
        fields = rems_store.form_fields(self.store.db, self.log, self.treatment_setting)
        today = self.clock.now().astimezone().date()
        return fields, rems_store.status(self.store.db, self.log.id, today)

    # --- for the window and tests -----------------------------------------------------------

    def tab_index(self, name: str) -> int:
        return TABS.index(name)

    def show_tab(self, name: str) -> None:
        self.tabs.setCurrentIndex(self.tab_index(name))

    def tab_rows(self, name: str) -> list[list[str]]:
        if name == "Timeline":
            model = self.timeline.timeline
            assert isinstance(model, ReviewTimelineModel)
            return model.row_texts()
        return self.tables[name].rows

    def tab_records(self, name: str) -> list[dict[str, str]]:
        """:meth:`tab_rows` keyed by the tab's column titles ("BP", "Status"): a reader names
        the column it means instead of counting to it."""
        if name != "Timeline":
            return self.tables[name].records()
        headers = [
            str(self.timeline.model().headerData(c, Qt.Orientation.Horizontal))
            for c in range(self.timeline.model().columnCount())
        ]
        return [dict(zip(headers, row, strict=True)) for row in self.tab_rows(name)]

    def tab_title(self, name: str) -> str:
        return self.tabs.tabText(self.tab_index(name)).replace("&&", "&")

    def selected_entry(self) -> TimelineItem | None:
        return self.timeline.selected_item()

    def select_entry(self, table: str, row_id: int) -> bool:
        model = self.timeline.timeline
        for position, item in enumerate(model.items):
            if item.table == table and item.row_id == row_id:
                self.timeline.selectRow(position)
                self.timeline.scrollTo(model.index(position, 0))
                return True
        return False

    def apply_view(self, night: bool, large: bool) -> None:
        self.night = night
        self.chart.apply_palette(night)
        self.chart.set_large_type(large)
        for table in self.tables.values():
            table.warn_colour = current_theme(night).warn
        if self.log is not None:
            self._fill_tabs()


def _end_text(started: datetime, ended: datetime) -> str:
    same_day = started.astimezone().date() == ended.astimezone().date()
    return ended.astimezone().strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")


__all__ = ["ADDENDUM", "TABS", "ReviewTimelineModel", "SessionReviewView", "signature_text"]
