"""The clinic archive in a window: every laptop's sessions, one opened read-only, signed centrally.

A supervisor in any room reads the central PostgreSQL archive as the local review window reads
one laptop's file: the same filters (plus a laptop), the same columns (plus the laptop), the same
session view, the same export formats, and sign-off, comments and addenda written at the centre.

Why it is its own window and not a mode of :class:`ReviewWindow`: the local window's writes go
through the laptop's store (:class:`~kapmonitor.store.signoff.Review`) and its permission
checks; here nothing is written to any laptop. The list and the opened session come from
:class:`~kapmonitor.network.central_archive.CentralArchive` (a throw-away, read-only in-memory
copy per session), the writes are :mod:`kapmonitor.network.central_review`'s, which the server
polices (its triggers, its roles) and the originating laptop brings back at its next sync.

Everything that talks to the server runs on the archive worker's pool, each job with a
connection of its own, so a slow or absent server never freezes the window; when the server
cannot be reached the list keeps what it last showed and a line says since when. Signing,
commenting and adding an addendum are the exception: they are deliberate acts taken in a modal
dialog, which waits (a second or so) for the server's answer, so its refusal lands in that dialog
with what was typed kept.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QProgressDialog,
    QPushButton,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from kapmonitor import APP_NAME
from kapmonitor.domain.clock import Clock, SystemClock
from kapmonitor.domain.timeline import TimelineItem
from kapmonitor.reports.export_registry import check_session_ids, export_format, export_formats
from kapmonitor.reports.report_sections import ADDENDUM
from kapmonitor.settings import NIGHT_MODE, TREATMENT_SETTING, Settings
from kapmonitor.store.accounts import User
from kapmonitor.store.archive import ArchiveCounts, ArchiveFilter
from kapmonitor.store.errors import StoreError
from kapmonitor.ui.forms.form_base import resize_within_screen
from kapmonitor.ui.forms.review_comment_dialog import ReviewCommentDialog
from kapmonitor.ui.review.archive_filters import ArchiveFilterControls
from kapmonitor.ui.review.archive_table import (
    ANY_DATE,
    SESSION_ROLE,
    SORT_ROLE,
    ArchiveTable,
    ArchiveTableModel,
)
from kapmonitor.ui.review.archive_worker import ArchiveWorker
from kapmonitor.ui.review.session_review_view import SessionReviewView, local
from kapmonitor.ui.review.sign_dialog import SignDialog
from kapmonitor.ui.widgets.theme import apply_settings_theme, view_actions

Index = QModelIndex | QPersistentModelIndex
Key = tuple[str, str]  # (laptop, session id): a session id alone may come from two laptops
PAGE_ROWS = 200  # as CentralArchive.page: a page of a large archive, not all of it
SERVER_ENV = "KAPMONITOR_SERVER"  # the saved connection (kapmonitor.network.connection)
ALL_LAPTOPS = "All laptops"
NOTHING_OPEN = "Select a session to open it from the clinic archive"

# The centre's own rows for the sessions of a page (kap.central_reviews, server schema 0004):
# the archive's list says who signed but not where (and before schema 5 it read only the
# laptops' own signatures); the window says "at the centre", and shows comments and addenda.
_CENTRE_SQL = (
    "SELECT laptop_id, session_id, kind, printed_name, role_title, written_at, observed_at, "
    "text, meaning, id FROM kap.central_reviews "
    "WHERE (laptop_id || chr(31) || session_id) = ANY(%s) ORDER BY id"
)


@dataclass
class CentreRow:
    """One row the centre holds for a session: a sign-off, a comment or an addendum."""

    kind: str
    printed_name: str
    role_title: str
    written_at: str
    text: str
    meaning: str
    central_id: int = 0
    moment: str = ""  # the moment of the session a comment is about

    def timeline_item(self) -> TimelineItem:
        """The row on the session's timeline, at its time, as the local review places its own
        comments, addenda and signature (marked "at the centre")."""
        written = _instant(self.written_at)
        kind = {"signature": "Signature", "addendum": ADDENDUM}.get(self.kind, "Review comment")
        summary = self.words() if self.kind == "signature" else f"at the centre: {self.text}"
        return TimelineItem(
            "central_reviews",
            self.central_id,
            _instant(self.moment) if self.moment else written,
            written,
            self.printed_name,
            kind,
            summary,
            None,
            None,
            False,
        )

    def words(self) -> str:
        when = _local_iso(self.written_at)
        if self.kind == "signature":
            return (
                f"Signed at the centre by {self.printed_name}, {self.role_title}, {when} — "
                f"{self.meaning}"
            )
        noun = "Addendum" if self.kind == "addendum" else "Comment"
        return f"{noun} at the centre by {self.printed_name}, {when}: {self.text}"


@dataclass
class ListResult:
    """One page of the archive and what goes with it, read by one job on one connection."""

    rows: list[Any]
    total: int
    offset: int
    more: bool
    counts: ArchiveCounts
    centre: dict[Key, list[CentreRow]] = field(default_factory=dict)


@dataclass
class Opened:
    """A session materialised from the archive, with what the centre holds for it."""

    key: Key
    session: Any  # CentralSession
    centre: list[CentreRow]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _local_iso(text: str) -> str:
    try:
        return local(datetime.fromisoformat(str(text).replace("Z", "+00:00")), with_date=True)
    except ValueError:
        return str(text)


def server_url(given: str | None = None) -> str | None:
    """The archive's address: given, else ``$KAPMONITOR_SERVER`` (the saved connection)."""
    import os

    return given or os.environ.get(SERVER_ENV) or None


def _archive(url: str) -> Any:
    from kapmonitor.network.central_archive import CentralArchive

    return CentralArchive(url)


def _plain(exc: BaseException) -> StoreError:
    """A server failure in the review's words: an unreachable server is said so, without the
    laptop-sync sentence ("the rows wait on the laptop") that does not apply here."""
    text = str(exc)
    if getattr(exc, "kind", "") == "offline":
        said = re.match(r"The server (.*?) cannot be reached \((.*)\)\.", text)
        detail = (
            f"{said.group(1)} ({said.group(2)})." if said else text.split(" Nothing is lost")[0]
        )
        return StoreError(f"The clinic server cannot be reached: {detail}", "offline")
    return exc if isinstance(exc, StoreError) else StoreError(text)


def _centre_rows(archive: Any, keys: Sequence[Key]) -> dict[Key, list[CentreRow]]:
    if not keys:
        return {}
    found: dict[Key, list[CentreRow]] = {}
    rows = archive.query(_CENTRE_SQL, [[f"{lap}\x1f{sid}" for lap, sid in keys]])
    for lap, sid, kind, name, role, written, moment, text, meaning, central_id in rows:
        found.setdefault((str(lap), str(sid)), []).append(
            CentreRow(
                str(kind),
                str(name),
                str(role),
                str(written),
                text or "",
                meaning or "",
                int(central_id),
                str(moment or ""),
            )
        )
    return found


def read_page(
    url: str, flt: ArchiveFilter, laptop: str, offset: int, limit: int = PAGE_ROWS
) -> ListResult:
    """A page of the archive, its counts and the centre's rows for it (a worker job)."""
    try:
        with _archive(url) as archive:
            page = archive.page(flt, laptop_id=laptop, offset=offset, limit=limit)
            counts = archive.counts(flt, laptop_id=laptop)
            centre = _centre_rows(archive, [(r.laptop_id, r.session_id) for r in page.rows])
    except StoreError as exc:
        raise _plain(exc) from None
    for row in page.rows:
        signed = [
            c for c in centre.get((row.laptop_id, row.session_id), []) if c.kind == "signature"
        ]
        if not signed:
            continue
        when = datetime.fromisoformat(signed[0].written_at.replace("Z", "+00:00"))
        # The list may or may not count a centre's sign-off already (server schema 5 does);
        # a laptop's own sign-off, if any, comes first and is left as it is.
        if not row.signed_by or (row.signed_by == signed[0].printed_name and row.signed_at == when):
            row.status = "signed"
            row.signed_by = f"{signed[0].printed_name} (at the centre)"
            row.signed_role = signed[0].role_title
            row.meaning = signed[0].meaning
            row.signed_at = when
    return ListResult(page.rows, page.total, page.offset, page.more, counts, centre)


def open_from_archive(url: str, key: Key) -> Opened:
    """Materialise one session and read the centre's rows for it (a worker job)."""
    try:
        with _archive(url) as archive:
            session = archive.open_session(key[1], key[0])
            try:
                centre = _centre_rows(archive, [key]).get(key, [])
            except BaseException:
                session.close()
                raise
    except StoreError as exc:
        raise _plain(exc) from None
    return Opened(key, session, centre)


def export_from_archive(
    url: str, key: Key, fmt_name: str, out: Path, actor: str, now: datetime
) -> Path:
    """Write one session's export from a fresh copy of it, record it at the archive
    (``kap.central_exports``), and only then move it into place: nothing leaves unaudited."""
    from kapmonitor.central_commands import write_export
    from kapmonitor.reports.export_registry import export_target
    from kapmonitor.reports.session_export import ExportTarget

    fmt = export_format(fmt_name)
    laptop, session_id = key
    check_session_ids([session_id])
    destination = export_target(fmt, [session_id], out, folder=False)
    target = ExportTarget(destination, single=not fmt.writes_folder)
    try:
        with _archive(url) as archive:
            with archive.open_session(session_id, laptop) as session:
                write_export(fmt, session, target, now)
            archive.record_export(actor, fmt.name, destination, [key])
    except BaseException as exc:
        target.discard()
        if isinstance(exc, StoreError):
            raise _plain(exc) from None
        raise
    target.commit()
    return destination


def export_listed_from_archive(
    url: str,
    keys: Sequence[Key],
    fmt_name: str,
    out: Path,
    actor: str,
    now: datetime,
    progress: Callable[[int, int], None],
) -> Path:
    """Every listed session into the folder ``out`` as ``kapmonitor export --server --all``
    lays them out (``OUT/<laptop>/``, CSV ``OUT/<laptop>/<session>/``): each session is
    materialised, written to a staged file and dropped before the next; the export is recorded
    at the archive once, and only then is anything moved into place. ``progress`` may raise
    ``ExportCancelled``: then nothing is left written."""
    from kapmonitor.central_commands import write_export
    from kapmonitor.reports.session_export import ExportTarget

    fmt = export_format(fmt_name)
    if not keys:
        raise StoreError("The list shows no sessions to export.", "empty")
    check_session_ids([sid for _laptop, sid in keys])
    targets: list[Any] = []
    try:
        with _archive(url) as archive:
            for done, (laptop, session_id) in enumerate(keys, 1):
                destination = out / laptop
                if fmt.writes_folder:
                    destination = destination / session_id
                target = ExportTarget(destination, single=False)
                targets.append(target)
                with archive.open_session(session_id, laptop) as session:
                    write_export(fmt, session, target, now)
                progress(done, len(keys))
            archive.record_export(actor, fmt.name, out, list(keys))
    except BaseException as exc:
        for target in targets:
            target.discard()
        if isinstance(exc, StoreError):
            raise _plain(exc) from None
        raise
    for target in targets:
        target.commit()
    return out


def whoami(url: str) -> Any:
    """The signed-in role as the server registered it as a reviewer, or None (not one)."""
    from kapmonitor.network.central_review import reviewer
    from kapmonitor.network.connection import NetworkError, connect

    try:
        pg = connect(url)
    except StoreError as exc:
        raise _plain(exc) from None
    try:
        return reviewer(pg)
    except NetworkError:
        return None
    finally:
        pg.close()


class CentralTableModel(ArchiveTableModel):
    """The local archive's columns with the laptop first; a row's key is (laptop, session)."""

    COLUMNS = ("Laptop", *ArchiveTableModel.COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == SESSION_ROLE:
            return (row.laptop_id, row.session_id)
        if index.column() == 0:
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                return row.laptop_id
            if role == SORT_ROLE:
                return row.laptop_id.casefold()
            return None
        return super().data(self.index(index.row(), index.column() - 1), role)


class CentralTable(ArchiveTable):
    """The local session list's behaviour (sort, keyboard, Enter) on the central model."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = CentralTableModel(self)
        self.proxy.setSourceModel(self.source)
        self.sortByColumn(2, Qt.SortOrder.DescendingOrder)
        header = self.horizontalHeader()
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(4, 220)


class CentralReviewWindow(ArchiveFilterControls, QMainWindow):
    """The clinic's archive for a supervisor signed in to the server with a reviewer role."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        clock: Clock | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.url = url
        self.settings = settings
        self.clock = clock or SystemClock()
        self.worker = ArchiveWorker(Path("."), self)  # jobs open their own server connection
        self.worker.finished.connect(self._job_done)
        self.worker.failed.connect(self._job_failed)
        self.rows: list[Any] = []
        self.total = 0
        self.centre: dict[Key, list[CentreRow]] = {}
        self.known_at: datetime | None = None  # when the list last came from the server
        self.counts_text = ""  # the counts line of the list on screen
        self.page_rows = PAGE_ROWS  # sessions per page ("Load more" adds the next)
        self.shown_request = 0
        self.opened: Opened | None = None
        self.reviewer: Any = None  # central_review.Reviewer, once the server said who we are
        self.active_dialog: QWidget | None = None
        self.exports_done: list[Path] = []
        self._listed: dict[int, tuple[QProgressDialog, Any]] = {}  # request -> dialog, cancel
        self.export_progress = _ProgressRelay(self)
        self.export_progress.moved.connect(self._export_moved)
        self._exporting = 0
        from kapmonitor.network.connection import redact

        self.where = redact(url)
        self.setWindowTitle(f"{APP_NAME} — clinic archive ({self.where})")
        resize_within_screen(self, 1366, 860)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        self.banner = QLabel(central)
        self.banner.setObjectName("ErrorBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        layout.addLayout(self._build_filters(central))
        counts_row = QHBoxLayout()
        self.counts_label = QLabel("Loading…", central)
        self.counts_label.setObjectName("CountsLine")
        self.more_button = QPushButton("Load more", central)
        self.more_button.setToolTip("The next page of the archive, newest first")
        self.more_button.clicked.connect(self.load_more)
        self.more_button.hide()
        self.counts_label.setWordWrap(True)
        counts_row.addWidget(self.counts_label, 1)
        counts_row.addWidget(self.more_button)
        # The filters' check boxes share the counts' row: on a 720 px screen in large type
        # a row of its own took the height the session list needs.
        for widget in (self.ae_filter, self.alarm_filter, self.clear_filters_button):
            counts_row.addWidget(widget)
        layout.addLayout(counts_row)
        self.table = CentralTable(central)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self.table.activated.connect(lambda _index: self.open_selected())

        self.pane = QWidget(central)
        pane = QVBoxLayout(self.pane)
        pane.setContentsMargins(0, 0, 0, 0)
        self.opened_title = NOTHING_OPEN  # the heading of the session shown
        self.title_label = QLabel(NOTHING_OPEN, central)
        self.title_label.setObjectName("CentralTitle")
        bold = self.title_label.font()
        bold.setBold(True)
        self.title_label.setFont(bold)  # a heading, not the patient's big code (shown below)
        self.title_label.setWordWrap(True)  # large type on 1280 px: wraps, never widens
        self.centre_label = QLabel("", central)
        self.centre_label.setObjectName("SignatureLine")
        self.centre_label.setWordWrap(True)
        self.centre_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        pane.addWidget(self.title_label)
        pane.addWidget(self.centre_label)
        self.detail: SessionReviewView | None = None  # made at the first session opened
        split = QSplitter(Qt.Orientation.Vertical, central)
        split.addWidget(self.table)
        split.addWidget(self.pane)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([1000, 2000])
        self.split = split
        layout.addWidget(split, 1)
        self.setCentralWidget(central)
        self._build_actions()
        self.statusBar().showMessage(f"Clinic archive: {self.where} · read-only copies")

        self._scroll_to_opened = QTimer(self)  # owned: never fires into a closed window
        self._scroll_to_opened.setSingleShot(True)
        self._scroll_to_opened.setInterval(100)
        self._scroll_to_opened.timeout.connect(
            lambda: self.table.scrollTo(self.table.currentIndex())
        )
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.refresh)
        self.apply_view_settings()
        self._update_actions()
        self.server_known = False  # who we are, the laptops, the protocols: asked once
        self._ask_server()
        self.refresh()

    def _ask_server(self) -> None:
        """Who the signed-in role is, the laptops and the protocols in use (the choosers);
        asked again after a list that arrived while they were still unknown (the server was
        away when the window opened)."""
        url = self.url
        self.worker.submit("protocols", lambda _db: _archive_call(url, "protocols"), needs_db=False)
        self.worker.submit("laptops", lambda _db: _archive_call(url, "laptops"), needs_db=False)
        self.worker.submit("whoami", lambda _db: whoami(url), needs_db=False)

    # --- layout ----------------------------------------------------------------------------

    def _build_filters(self, parent: QWidget) -> QGridLayout:
        grid = QGridLayout()
        self.laptop_filter = QComboBox(parent)  # made first: first in the bar and in Tab order
        self.laptop_filter.addItem(ALL_LAPTOPS, "")
        self.laptop_filter.setToolTip("One laptop's sessions, or every laptop's")
        self._make_filter_widgets(parent, protocol_chars=14)
        self._lay_out_filters(grid, parent, [("Laptop", self.laptop_filter), *self._filter_pairs()])
        self._connect_filters(combos=(self.laptop_filter,))
        return grid

    def _build_actions(self) -> None:
        bar = QToolBar("Clinic archive", self)
        bar.setObjectName("CentralReviewToolbar")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.actions_by_name: dict[str, QAction] = {}
        review_menu = self.menuBar().addMenu("&Review")
        export_menu = self.menuBar().addMenu("E&xport")
        view_menu = self.menuBar().addMenu("&View")
        entries: list[tuple[str, str, str, str, Callable[[], Any], Any]] = [
            ("refresh", "Refresh", "Refresh", "F5", self.refresh, review_menu),
            (
                "sign",
                "Sign at the centre…",
                "Sign…",
                "Ctrl+Shift+S",
                self.sign_selected,
                review_menu,
            ),
            ("comment", "Add review comment…", "Comment…", "Ctrl+M", self.add_comment, review_menu),
            (
                "addendum",
                "Add addendum…",
                "Addendum…",
                "Ctrl+Shift+A",
                self.add_addendum,
                review_menu,
            ),
            *(
                (
                    f"export_{fmt.name}",
                    f"Export {fmt.name.upper()}…",
                    fmt.short,
                    fmt.shortcut,
                    lambda f=fmt.name: self.export(f),
                    export_menu,
                )
                for fmt in export_formats()
            ),
        ]
        first_export = f"export_{export_formats()[0].name}"
        for name, text, short, key, slot, menu in entries:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{text} ({key})")
            action.setIconText(short)
            action.triggered.connect(lambda _=False, s=slot: s())
            menu.addAction(action)
            if name == first_export:
                bar.addSeparator()
                bar.addWidget(QLabel(" Export: ", bar))
            bar.addAction(action)
            self.actions_by_name[name] = action
        listed = QMenu("Export the listed sessions", export_menu)
        listed.setObjectName("ExportListedMenu")
        export_menu.addSeparator()
        export_menu.addMenu(listed)
        for fmt in export_formats():
            action = QAction(f"{fmt.name.upper()} into a folder…", self)
            action.setToolTip(
                f"Every session the list shows, as {fmt.title}, into one folder (a folder per "
                "laptop)"
            )
            action.triggered.connect(lambda _=False, f=fmt.name: self.export_listed(f))
            listed.addAction(action)
            self.actions_by_name[f"export_listed_{fmt.name}"] = action
        find = QAction("Find patient", self)
        find.setShortcut(QKeySequence("Ctrl+F"))
        find.triggered.connect(lambda: self.patient_filter.setFocus())
        self.addAction(find)
        self.night_action, self.large_action = view_actions(
            self, self.settings, self.apply_view_settings
        )
        view_menu.addAction(self.night_action)
        view_menu.addAction(self.large_action)
        for name, text, key, slot in (
            ("dashboard", "Dashboard (every laptop)…", "Ctrl+D", self.open_dashboard),
            ("series", "Patient series (every laptop)…", "Ctrl+T", self.open_patient_series),
        ):
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(lambda _=False, s=slot: s())
            review_menu.addAction(action)
            self.actions_by_name[name] = action
        close = QAction("Close", self)
        close.setShortcut(QKeySequence("Ctrl+W"))
        close.triggered.connect(self.close)
        review_menu.addSeparator()
        review_menu.addAction(close)

    def apply_view_settings(self) -> None:
        night, large = apply_settings_theme(self.settings)
        self.table.source.night = night
        if self.detail is not None:
            self.detail.apply_view(night, large)

    # --- messages ----------------------------------------------------------------------------

    def show_message(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def clear_message(self) -> None:
        self.banner.hide()
        self.banner.clear()

    def message_text(self) -> str:
        return self.banner.text() if self.banner.isVisible() else ""

    # --- the list ------------------------------------------------------------------------------

    def current_filter(self) -> ArchiveFilter:
        def day(widget: Any) -> date | None:
            value = widget.date()
            return None if value == ANY_DATE else date(value.year(), value.month(), value.day())

        return ArchiveFilter(
            date_from=day(self.date_from),
            date_to=day(self.date_to),
            patient_code=self.patient_filter.text(),
            clinician=self.clinician_filter.text(),
            protocol_id=self.protocol_filter.currentData() or "",
            status=self.status_filter.currentData() or "",
            has_adverse_effects=self.ae_filter.isChecked(),
            has_alarms=self.alarm_filter.isChecked(),
        )

    def current_laptop(self) -> str:
        return str(self.laptop_filter.currentData() or "")

    def refresh(self, offset: int = 0) -> int:
        """Ask for the first page (or the page at ``offset``) under the current filters."""
        self._debounce.stop()
        flt, laptop, url = self.current_filter(), self.current_laptop(), self.url
        rows = self.page_rows
        if not offset:
            self.counts_label.setText("Loading…")
        return self.worker.submit(
            "list", lambda _db: read_page(url, flt, laptop, offset, rows), needs_db=False
        )

    def load_more(self) -> int:
        """The next page, added below the rows already listed."""
        return self.refresh(offset=len(self.rows))

    def clear_filters(self) -> None:
        widgets: list[QWidget] = [
            self.laptop_filter,
            self.date_from,
            self.date_to,
            self.patient_filter,
            self.clinician_filter,
            self.protocol_filter,
            self.status_filter,
            self.ae_filter,
            self.alarm_filter,
        ]
        for widget in widgets:
            widget.blockSignals(True)
        self.laptop_filter.setCurrentIndex(0)
        self.date_from.setDate(ANY_DATE)
        self.date_to.setDate(ANY_DATE)
        self.patient_filter.clear()
        self.clinician_filter.clear()
        self.protocol_filter.setCurrentIndex(0)
        self.status_filter.setCurrentIndex(0)
        for box in (self.ae_filter, self.alarm_filter):
            box.setChecked(False)
        for widget in widgets:
            widget.blockSignals(False)
        self.refresh()

    def _show_page(self, number: int, result: ListResult) -> None:
        keep = self.opened.key if self.opened is not None else None
        if result.offset:  # "Load more": the next page under the rows shown
            self.rows = self.rows + list(result.rows)
            self.centre.update(result.centre)
        else:
            self.rows = list(result.rows)
            self.centre = dict(result.centre)
        self.total = result.total
        self.known_at = self.clock.now()
        self.table.source.today = self.clock.now().astimezone().date()
        self.table.source.set_rows(self.rows)
        shown = (
            f"showing {len(self.rows)} of {result.total}" if result.more or result.offset else ""
        )
        summary = result.counts.summary()
        self.counts_text = f"{summary} · {shown}" if shown else summary
        self.counts_label.setText(self.counts_text)
        self.more_button.setVisible(result.more)
        self.shown_request = number
        self._update_actions()  # "export the listed sessions" follows the list
        if not self.server_known and not self.worker.pending:
            self._ask_server()  # the server is back: fill the choosers, learn who we are
        if "The clinic server cannot be reached" in self.message_text():
            self.clear_message()  # it is back
        if keep is not None and not self.table.select_session(keep):  # type: ignore[arg-type]
            self.close_session()  # filtered out: as the local review, the pane is cleared

    def close_session(self) -> None:
        """Drop the opened session's copy and clear the pane."""
        if self.opened is not None:
            self.opened.session.close()
            self.opened = None
        if self.detail is not None:
            self.detail.clear()
        self.opened_title = NOTHING_OPEN
        self.title_label.setText(NOTHING_OPEN)
        self.centre_label.clear()
        self.centre_label.hide()
        self.setWindowTitle(f"{APP_NAME} — clinic archive ({self.where})")
        self._update_actions()

    def _job_done(self, number: int, kind: str, result: object) -> None:
        if kind == "list":
            assert isinstance(result, ListResult)
            self._show_page(number, result)
        elif kind == "open":
            assert isinstance(result, Opened)
            self._show_opened(result)
        elif kind == "whoami":
            self.reviewer = result
            self.server_known = True
            self._update_actions()
        elif kind == "laptops":
            assert isinstance(result, list)
            for laptop in result:
                if self.laptop_filter.findData(laptop) < 0:
                    self.laptop_filter.addItem(laptop, laptop)
        elif kind == "protocols":
            assert isinstance(result, list)
            self.protocol_filter.blockSignals(True)
            for protocol_id, name in result:
                if self.protocol_filter.findData(protocol_id) < 0:
                    self.protocol_filter.addItem(name, protocol_id)
            self.protocol_filter.blockSignals(False)
        elif kind == "export":
            assert isinstance(result, Path)
            self._exporting -= 1
            self._end_listed(number)
            self.exports_done.append(result)
            self.clear_message()
            self.statusBar().showMessage(f"Exported to {result} (recorded at the archive)", 10000)

    def _job_failed(self, number: int, kind: str, message: str) -> None:
        if kind == "list":
            self.shown_request = number
            if self.known_at is not None:
                since = self.known_at.astimezone().strftime("%H:%M")
                message = f"{message} The list shows what was known at {since}."
                self.counts_label.setText(f"{self.counts_text} · as known at {since}")
            else:
                message = f"{message} Nothing could be listed yet."
                self.counts_label.setText("The list could not be read from the clinic server")
        elif kind == "export":
            self._exporting -= 1
            if self._end_listed(number):
                message = "The export was cancelled; nothing was written."
            else:
                message = f"The export was not written: {message}"
        elif kind == "open":
            message = f"The session could not be opened: {message}"
            self.title_label.setText(self.opened_title)  # the one still shown, if any
        elif kind in ("laptops", "protocols", "whoami") and self.message_text():
            return  # the list's own line already says the server is away
        self.show_message(message)

    # --- the opened session ----------------------------------------------------------------

    def _selection_changed(self) -> None:
        key = self.table.current_session()
        if key is None:
            return
        if self.opened is None or self.opened.key != key:
            self.open_session(key)  # type: ignore[arg-type]

    def open_session(self, key: Key) -> int:
        """Materialise ``key`` on the worker; it is shown when it arrives."""
        url = self.url
        self.title_label.setText(f"Clinic archive — {key[0]} · opening…")
        return self.worker.submit("open", lambda _db: open_from_archive(url, key), needs_db=False)

    def open_selected(self) -> None:
        key = self.table.current_session()
        if key is not None and (self.opened is None or self.opened.key != key):
            self.open_session(key)  # type: ignore[arg-type]
        elif self.detail is not None:
            self.detail.show_tab("Timeline")
            self.detail.timeline.setFocus()

    def _show_opened(self, opened: Opened) -> None:
        store = opened.session.store()
        if self.detail is None:
            self.detail = SessionReviewView(
                store,
                self.clock,
                self.pane,
                night=self.settings.get(NIGHT_MODE),
                treatment_setting=self.settings.get(TREATMENT_SETTING),
            )
            self.pane.layout().addWidget(self.detail, 1)
            self.apply_view_settings()
        self.detail.store, self.detail.ref = store, store.ref
        try:
            self.detail.show_session(opened.key[1])
        except StoreError as exc:
            opened.session.close()
            self.close_session()  # the pane was half-replaced: show nothing rather than a mix
            self.show_message(f"The session could not be shown: {exc}")
            return
        previous, self.opened = self.opened, opened
        if previous is not None:
            previous.session.close()
        laptop = opened.key[0]
        self.setWindowTitle(f"Clinic archive — {laptop} — {APP_NAME} ({self.where})")
        patient = self.detail.log.session["patient_code"] if self.detail.log else ""
        self.opened_title = (
            f"Clinic archive — {laptop} · patient {patient} · a read-only copy from the server"
        )
        self.title_label.setText(self.opened_title)
        signed = [c for c in opened.centre if c.kind == "signature"]
        if signed and not self.detail.signed:
            self.detail.signature_label.setText(
                f"Status: Signed at the centre · {signed[0].words()}"
            )
        self.centre_label.setText(
            " · ".join(c.words() for c in opened.centre if c.kind != "signature")
        )
        self.centre_label.setVisible(bool(self.centre_label.text()))
        if opened.centre:  # the centre's rows on the timeline too, at their time
            model = self.detail.timeline.timeline
            model.reset([*model.items, *(c.timeline_item() for c in opened.centre)], model.origin)
        self._update_actions()
        # The opened session's pane takes height from the list: keep its row in view.
        self._scroll_to_opened.start()

    def signed_centrally(self) -> bool:
        return self.opened is not None and any(c.kind == "signature" for c in self.opened.centre)

    def _why_not(self) -> dict[str, str | None]:
        """Why each write is not offered now (None: offered). The server decides anyway."""
        log = self.detail.log if self.detail is not None and self.opened is not None else None
        if self.reviewer is None:
            nobody = "Your server role is not a registered reviewer (server add-reviewer)"
            return {"sign": nobody, "comment": nobody, "addendum": nobody}
        if log is None:
            pick = "Open a session first"
            return {"sign": pick, "comment": pick, "addendum": pick}
        signed = self.detail is not None and (self.detail.signed or self.signed_centrally())
        ended = log.ended_at() is not None
        return {
            "sign": "Already signed: add an addendum instead"
            if signed
            else None
            if ended
            else "The session has not ended on its laptop",
            "comment": "Signed: add an addendum instead" if signed else None,
            "addendum": None if signed else "An addendum is for a signed session",
        }

    def _update_actions(self) -> None:
        why = self._why_not()
        tips = {
            "sign": "Sign the opened session at the centre",
            "comment": "Comment on the selected moment",
            "addendum": "Add to the signed record",
        }
        for name, tip in tips.items():
            action = self.actions_by_name[name]
            action.setEnabled(why[name] is None)
            action.setToolTip(f"{action.text()} — {why[name] or tip}")
        has = self.opened is not None
        for fmt in export_formats():
            self.actions_by_name[f"export_{fmt.name}"].setEnabled(has)
            self.actions_by_name[f"export_listed_{fmt.name}"].setEnabled(bool(self.rows))

    # --- writes at the centre --------------------------------------------------------------

    def _session_text(self) -> str:
        assert self.detail is not None and self.detail.log is not None and self.opened
        log = self.detail.log
        return (
            f"patient {log.session['patient_code']}, session of {local(log.started_at(), True)} "
            f"on laptop {self.opened.key[0]}"
        )

    def _after_write(self, message: str) -> None:
        self.clear_message()
        if self.opened is not None:
            self.open_session(self.opened.key)  # re-read: what the server now holds
        self.refresh()
        self.statusBar().showMessage(message, 8000)

    def _waiting(self, call: Callable[[], Any]) -> Any:
        """Run a write at the centre under a wait cursor; its refusal in the review's words
        (the dialog shows it and keeps what was typed)."""
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return call()
        except StoreError as exc:
            raise _plain(exc) from None
        finally:
            QGuiApplication.restoreOverrideCursor()

    def sign_dialog(self) -> SignDialog | None:
        refused = self._why_not()["sign"]
        if refused is not None:
            self.show_message(refused)
            return None
        assert self.detail is not None and self.opened is not None and self.reviewer is not None
        from kapmonitor.network.central_review import sign_centrally

        url, (laptop, session_id) = self.url, self.opened.key

        def sign(meaning: str, secret: str, _confirmed: list[str]) -> int:
            return int(
                self._waiting(
                    lambda: sign_centrally(url, laptop, session_id, secret, meaning)
                ).central_id
            )

        who = self.reviewer
        dialog = SignDialog(
            User(who.role_name, who.printed_name, who.role_title),
            self._session_text(),
            sign,
            self,
            flags=self.detail.quality_flags(),
            key_fingerprint=who.fingerprint,
        )
        dialog.setWindowTitle("Sign at the centre")
        for label in dialog.findChildren(QLabel):  # the laptop's seal stores them; this does not
            if "What you confirm is stored with the signature" in label.text():
                label.setText(
                    label.text().replace(
                        "What you confirm is stored with the signature.",
                        "A sign-off at the centre does not store which ones you ticked.",
                    )
                )
        dialog.password.setPlaceholderText("Your reviewer password (as add-reviewer gave it)")
        return dialog

    def sign_selected(self) -> None:
        dialog = self.sign_dialog()
        if dialog is not None and self._run(dialog) is not None:
            self._after_write("Signed at the centre; the laptop receives it at its next sync")

    def comment_dialog(self, addendum: bool = False) -> ReviewCommentDialog | None:
        refused = self._why_not()["addendum" if addendum else "comment"]
        if refused is not None:
            self.show_message(refused)
            return None
        assert self.detail is not None and self.detail.log is not None
        assert self.opened is not None and self.reviewer is not None
        from kapmonitor.network.central_review import addendum_centrally, comment_centrally

        url, (laptop, session_id) = self.url, self.opened.key
        log = self.detail.log
        if addendum:

            def save_addendum(_when: datetime, text: str) -> int:
                return int(self._waiting(lambda: addendum_centrally(url, laptop, session_id, text)))

            return ReviewCommentDialog(
                save_addendum, self.clock.now(), self.reviewer.printed_name, self, addendum=True
            )
        entry = self.detail.selected_entry()
        at = entry.observed_at if entry is not None else log.first_dose_at() or log.started_at()
        about = f"#{entry.row_id} {entry.kind}: {entry.summary}" if entry is not None else ""

        def save_comment(when: datetime, text: str) -> int:
            return int(
                self._waiting(lambda: comment_centrally(url, laptop, session_id, text, when))
            )

        return ReviewCommentDialog(
            save_comment,
            at,
            self.reviewer.printed_name,
            self,
            dose_at=log.first_dose_at(),
            about=about,
        )

    def add_comment(self) -> None:
        dialog = self.comment_dialog()
        if dialog is not None and self._run(dialog) is not None:
            self._after_write("Comment added at the centre")

    def add_addendum(self) -> None:
        dialog = self.comment_dialog(addendum=True)
        if dialog is not None and self._run(dialog) is not None:
            self._after_write("Addendum added at the centre")

    def _run(self, dialog: Any) -> int | None:
        self.active_dialog = dialog
        try:
            dialog.exec()
        finally:
            self.active_dialog = None
        return dialog.saved_id

    # --- exports ---------------------------------------------------------------------------

    def export(self, fmt: str, target: str | None = None) -> int | None:
        """Export the opened session from the archive; recorded there before it lands."""
        if self.opened is None or self.detail is None or self.detail.log is None:
            self.show_message("Open a session to export.")
            return None
        chosen = export_format(fmt)
        log = self.detail.log
        if target is None:
            default = f"{log.session['patient_code']}-{log.started_at():%Y%m%d}{chosen.suffix}"
            if chosen.writes_folder:
                target = QFileDialog.getExistingDirectory(self, f"Export {chosen.title} into")
            else:
                target, _ = QFileDialog.getSaveFileName(
                    self, f"Export {chosen.title}", default, chosen.file_filter
                )
            if not target:
                return None
        url, key, out = self.url, self.opened.key, Path(target)
        actor, now = _os_account(), datetime.now(UTC)
        self._exporting += 1
        self.statusBar().showMessage(f"Writing the {chosen.title} from the clinic archive…")
        return self.worker.submit(
            "export",
            lambda _db: export_from_archive(url, key, fmt, out, actor, now),
            keep_all=True,
            needs_db=False,
        )

    def export_listed(self, fmt: str, target: str | None = None) -> int | None:
        """Every session the list shows (the pages loaded) into one folder, with a
        cancellable progress dialog; recorded at the archive before anything lands."""
        import threading

        keys = [(row.laptop_id, row.session_id) for row in self.rows]
        if not keys:
            self.show_message("The list shows no sessions to export.")
            return None
        chosen = export_format(fmt)
        if target is None:
            target = QFileDialog.getExistingDirectory(self, f"Export {chosen.title} into")
            if not target:
                return None
        url, out, actor, now = self.url, Path(target), _os_account(), datetime.now(UTC)
        cancel = threading.Event()
        relay, box = self.export_progress, [0]

        def progress(done: int, total: int) -> None:
            from kapmonitor.reports.session_export import ExportCancelled

            if cancel.is_set():
                raise ExportCancelled
            relay.moved.emit(box[0], done, total)

        dialog = QProgressDialog(
            f"Writing the {chosen.title} of {len(keys)} sessions from the clinic archive…",
            "Cancel",
            0,
            len(keys),
            self,
        )
        dialog.setObjectName("ExportProgress")
        dialog.setWindowTitle("Exporting")
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(cancel.set)
        dialog.setValue(0)
        self._exporting += 1
        number = self.worker.submit(
            "export",
            lambda _db: export_listed_from_archive(url, keys, fmt, out, actor, now, progress),
            keep_all=True,
            needs_db=False,
        )
        box[0] = number
        self._listed[number] = (dialog, cancel)
        self.statusBar().showMessage(f"Writing the {chosen.title} from the clinic archive…")
        return number

    def _export_moved(self, number: int, done: int, total: int) -> None:
        job = self._listed.get(number)
        if job is not None and not job[1].is_set():
            job[0].setMaximum(total)
            job[0].setValue(done)

    def _end_listed(self, number: int) -> bool:
        """Close a listed export's progress dialog; True if it was cancelled."""
        job = self._listed.pop(number, None)
        if job is None:
            return False
        dialog, cancel = job
        dialog.canceled.disconnect()
        dialog.close()
        dialog.deleteLater()
        return cancel.is_set()

    @property
    def exports_pending(self) -> int:
        return self._exporting

    # --- the dashboard and a patient's course, over every laptop ---------------------------

    def open_dashboard(self) -> QWidget:
        """The local review's dashboard, its figures computed over the whole archive (every
        laptop) on the worker: :func:`kapmonitor.network.central_dashboard.dashboard`."""
        from kapmonitor.ui.review.dashboard_window import DashboardWindow

        url = self.url

        def figures(since: datetime | None, now: datetime) -> Any:
            from kapmonitor.network import central_dashboard

            try:
                with _archive(url) as archive:
                    return central_dashboard.dashboard(archive, since, None, "", now=now)
            except StoreError as exc:
                raise _plain(exc) from None

        window = DashboardWindow(
            Path("."), self.clock, self.settings, self, worker=self.worker, source=figures
        )
        window.setWindowTitle(f"{window.windowTitle()} — clinic archive, every laptop")
        window.show()
        return window

    def open_patient_series(self) -> QWidget | None:
        """The selected session's patient, every session of that code on every laptop."""
        from kapmonitor.ui.review.patient_series_view import PatientSeriesView

        log = self.detail.log if self.detail is not None else None
        if log is None:
            self.show_message("Select a session: the series is of its patient.")
            return None
        url = self.url

        def course(code: str) -> Any:
            from kapmonitor.network import central_dashboard

            try:
                with _archive(url) as archive:
                    return central_dashboard.patient_series(archive, code, "")
            except StoreError as exc:
                raise _plain(exc) from None

        view = PatientSeriesView(
            Path("."),
            log.session["patient_code"],
            self.clock,
            self.settings,
            self,
            worker=self.worker,
            source=course,
        )
        view.setWindowTitle(f"{view.windowTitle()} — clinic archive, every laptop")
        view.show()
        return view

    # --- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.worker.shutdown()
        if self.opened is not None:
            self.opened.session.close()
            self.opened = None
        super().closeEvent(event)


class _ProgressRelay(QObject):
    """Carries a listed export's progress from the worker thread to the window (queued)."""

    moved = Signal(int, int, int)  # request number, sessions done, sessions in all


def _archive_call(url: str, what: str) -> Any:
    try:
        with _archive(url) as archive:
            return archive.laptops() if what == "laptops" else archive.protocols_in_use()
    except StoreError as exc:
        raise _plain(exc) from None


def _os_account() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def open_central_review(parent: QWidget | None, settings: Settings) -> CentralReviewWindow | None:
    """From the local review window: the archive's address from ``$KAPMONITOR_SERVER``, else
    asked once (the password is not typed here: ~/.pgpass or PGPASSWORD)."""
    from PySide6.QtWidgets import QInputDialog

    url = server_url()
    if not url:
        text, ok = QInputDialog.getText(
            parent,
            "Clinic archive",
            "The clinic server, as a reviewer role's address\n"
            "(postgresql://ROLE@HOST:PORT/DATABASE?sslmode=verify-full):",
            QLineEdit.EchoMode.Normal,
        )
        if not ok or not text.strip():
            return None
        url = text.strip()
    return CentralReviewWindow(url, settings)


__all__ = [
    "CentralReviewWindow",
    "CentralTableModel",
    "export_from_archive",
    "open_central_review",
    "open_from_archive",
    "read_page",
    "server_url",
]
