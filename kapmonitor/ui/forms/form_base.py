"""The shape every entry dialog shares, so each form is only its own fields.

A form opens with the time set to now, saves on Enter and cancels on Escape. It closes only after
the store has committed; a refusal (a field out of range, a locked or full disk) keeps everything
typed in place and says why, next to the field concerned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from PySide6.QtCore import QDateTime, QEvent, QObject, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication, QKeyEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.refusals import FieldError, ValidationError
from kapmonitor.store.errors import StoreError
from kapmonitor.ui.widgets.field_errors import (
    clear_refused,
    following,
    mark_refused,
    refusal_text,
    show_banner,
)

if TYPE_CHECKING:  # types only: the unlock dialog (a FittingDialog) paints before they load
    from kapmonitor.domain.records import Entry
    from kapmonitor.domain.reference import Choice, Reference

SaveFn = Callable[["Entry"], int]


class NoteEdit(QPlainTextEdit):
    """Multi-line text where Enter still saves the form (Shift+Enter starts a new line)."""

    def __init__(self, parent: QWidget | None = None, lines: int = 3) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 14)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            dialog = self.window()
            if isinstance(dialog, EntryForm):
                dialog.try_save()
                return
        super().keyPressEvent(event)

    def text(self) -> str:
        return self.toPlainText()

    def setText(self, text: str) -> None:
        self.setPlainText(text)


def to_qdatetime(when: datetime) -> QDateTime:
    return QDateTime.fromMSecsSinceEpoch(int(when.timestamp() * 1000))


def from_qdatetime(value: QDateTime) -> datetime:
    return datetime.fromtimestamp(value.toMSecsSinceEpoch() / 1000, UTC)


def fill_combo(combo: QComboBox, choices: tuple[Choice, ...], blank: str | None = None) -> None:
    """Items show labels and carry codes; an optional blank first item means "not assessed"."""
    combo.clear()
    if blank is not None:
        combo.addItem(blank, None)
    for choice in choices:
        combo.addItem(choice.label, choice.code)
        if choice.description:
            combo.setItemData(combo.count() - 1, choice.description, Qt.ItemDataRole.ToolTipRole)


def select_code(combo: QComboBox, code: Any) -> None:
    for index in range(combo.count()):
        if combo.itemData(index) is not None and str(combo.itemData(index)) == str(code):
            combo.setCurrentIndex(index)
            return
    if code is None:
        combo.setCurrentIndex(0)


# --- dialogs that fit the screen ------------------------------------------------------------
#
# The clinic laptop gives 1280 × 720 logical pixels. A dialog whose fields are laid out straight
# into it grows with every refusal until its buttons are below the screen. So a dialog's fields
# sit in a scroll area that is as tall as they need while that fits, the refusal banner sits
# above it in a strip of limited height, and the recorder note and buttons sit below, outside
# any scrolling: they are always on screen.

TITLE_BAR_ALLOWANCE = 32  # px a window manager's title bar and frame take above a dialog
BANNER_SHARE = 0.25  # at most this share of the screen's height for the list of refusals
MIN_BODY_LINES = 4  # the fields keep at least this many lines of room, whatever the banner


def screen_room(widget: QWidget | None) -> QRect:
    """The part of the widget's screen a window may use (task bars excluded)."""
    screen = widget.screen() if widget is not None else None
    screen = screen or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, 1280, 720)


def resize_within_screen(window: QWidget, width: int, height: int) -> None:
    """Open a main window at its preferred size, or as much of it as the screen has room for.

    The review window opened at 1366 x 860 and the dashboard at 1280 x 820: taller than a
    1280 x 720 laptop, with their bottom rows and buttons off the screen.
    """
    room = screen_room(window)
    window.resize(min(width, room.width()), min(height, room.height() - TITLE_BAR_ALLOWANCE))


def max_dialog_height(widget: QWidget | None) -> int:
    """The tallest a dialog's client area may be so its frame and title still fit the screen."""
    return screen_room(widget).height() - TITLE_BAR_ALLOWANCE


def _scrollbar_extent(widget: QWidget) -> int:
    return widget.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, widget)


class ScrollBody(QScrollArea):
    """A dialog's fields: as tall as they need while that fits the screen, scrolling beyond.

    Unlike a plain scroll area (whose size hint stops at 24 lines) it asks for its content's
    full height, so a dialog that fits shows no scroll bar; its minimum is a few lines, so the
    banner and buttons can always take their room. It never scrolls sideways: its minimum width
    is the content's, so nothing is cut at the right.
    """

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("DialogBody")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes field to field, not to the area
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.body = QWidget(self)
        self.body.setObjectName("DialogBodyContent")
        self.setWidget(self.body)
        self.viewport().setAutoFillBackground(False)  # the dialog's own background shows
        self.body.setAutoFillBackground(False)

    def content_height(self, width: int) -> int:
        body = self.body
        if body.hasHeightForWidth():
            return max(body.heightForWidth(width), body.minimumSizeHint().height())
        return body.sizeHint().height()

    def sizeHint(self) -> QSize:
        hint = self.body.sizeHint()
        width = self.viewport().width() if self.isVisible() else hint.width()
        height = self.content_height(max(width, self.body.minimumSizeHint().width()))
        frame = 2 * self.frameWidth()
        return QSize(hint.width() + frame + _scrollbar_extent(self), height + frame)

    def minimumSizeHint(self) -> QSize:
        frame = 2 * self.frameWidth()
        lines = self.fontMetrics().lineSpacing() * MIN_BODY_LINES
        needed = self.content_height(self.body.minimumSizeHint().width())
        width = self.body.minimumSizeHint().width() + _scrollbar_extent(self) + frame
        return QSize(width, min(needed, lines) + frame)

    def show_widget(self, widget: QWidget) -> None:
        """Scroll so a field is in view, e.g. the first one refused."""
        if self.body.isAncestorOf(widget):
            self.ensureWidgetVisible(widget)


class BannerArea(QScrollArea):
    """The refusal banner's strip: as tall as its lines up to a share of the screen, then scrolls.

    It follows the banner: when the banner is shown or hidden (by whoever shows refusals) the
    strip is shown or hidden with it and takes the height the text needs, so a long list of
    reasons never pushes the buttons below the screen.
    """

    def __init__(self, banner: QLabel, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("BannerArea")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.banner = banner
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        hidden = banner.isHidden()
        self.setWidget(banner)  # this shows the banner: put it back as it was
        banner.setHidden(hidden)
        self.viewport().setAutoFillBackground(False)
        banner.setAutoFillBackground(False)  # its style sheet paints it
        banner.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        banner.installEventFilter(self)
        self.setVisible(not hidden)

    def cap(self) -> int:
        lines = self.banner.fontMetrics().lineSpacing() * 3
        return max(lines, int(max_dialog_height(self) * BANNER_SHARE))

    def sync(self) -> None:
        """Show or hide with the banner and take the height its text needs, up to the cap."""
        shown = not self.banner.isHidden()
        self.setVisible(shown)
        if not shown:
            return
        parent = self.parentWidget()
        layout = parent.layout() if parent is not None else None
        width = layout.contentsRect().width() if layout is not None else self.width()
        if width <= 0:
            width = self.banner.sizeHint().width()
        needed = self._text_height(width)
        if needed > self.cap():  # it scrolls: the text wraps beside the scroll bar
            needed = self._text_height(width - _scrollbar_extent(self))
        self.setFixedHeight(min(needed + 2 * self.frameWidth(), self.cap()))

    def _text_height(self, width: int) -> int:
        height = self.banner.heightForWidth(width)
        return height if height > 0 else self.banner.sizeHint().height()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kinds = (QEvent.Type.ShowToParent, QEvent.Type.HideToParent)
        banner = following(self, "banner")  # None once its Python side is torn down
        if banner is not None and watched is banner and event.type() in kinds:
            self.sync()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.sync()  # a new width wraps the lines differently


def error_banner(parent: QWidget) -> QLabel:
    """The wrapped, selectable refusal banner every dialog shows its reasons in (hidden)."""
    banner = QLabel(parent)
    banner.setObjectName("ErrorBanner")
    banner.setWordWrap(True)
    banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    banner.hide()
    return banner


def fit_to_screen(dialog: QWidget) -> None:
    """Make a dialog as tall as its content needs, never taller than the screen, and on it.

    Called when it is built, shown and after a refusal. It only grows (a dialog shrinking under
    the pointer moves its buttons); the scroll body absorbs whatever does not fit.
    """
    limit = max_dialog_height(dialog)
    if dialog.maximumHeight() != limit:
        dialog.setMaximumHeight(limit)
    dialog.ensurePolished()
    layout = dialog.layout()
    width = max(dialog.width() if dialog.isVisible() else 0, dialog.sizeHint().width())
    width = max(width, dialog.minimumSizeHint().width())
    if layout is not None and layout.hasHeightForWidth():
        needed = layout.totalHeightForWidth(width)
    else:
        needed = dialog.sizeHint().height()
    height = min(max(needed, dialog.height() if dialog.isVisible() else 0), limit)
    if dialog.isVisible():
        width = dialog.width()
    if (width, height) != (dialog.width(), dialog.height()):
        dialog.resize(width, height)
    if dialog.isVisible():
        keep_on_screen(dialog)


def keep_on_screen(dialog: QWidget) -> None:
    """Move a dialog up (or left) so its frame lies on the screen after it grew."""
    room = screen_room(dialog)
    frame = dialog.frameGeometry()
    dx = min(0, room.right() - frame.right())
    dy = min(0, room.bottom() - frame.bottom())
    if dx or dy:
        dialog.move(max(room.left(), frame.left() + dx), max(room.top(), frame.top() + dy))


class FittingDialog(QDialog):
    """A dialog laid out as banner strip, scrolling body, and a foot that never scrolls, with
    the one way every dialog handles a refusal.

    Subclasses put their fields in ``self.body_layout`` (or in a layout set on ``self.body``)
    and their recorder note and buttons in ``self.foot``, and list the fields a refusal may
    name in ``self.field_widgets``. A save runs through :meth:`attempt`: a ValidationError,
    AccessRefused or StoreError becomes the strip's text (headed by ``refusal_heading``), the
    fields it names are outlined and the first one gets the focus; the dialog stays open and
    keeps everything typed.
    """

    refusal_heading = "Not saved"  # what did not happen ("Not signed", "Not recorded"…)
    field_aliases: ClassVar[Mapping[str, str]] = {}  # a refusal's field name -> field_widgets key

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.field_widgets: dict[str, QWidget] = {}
        self.outer = QVBoxLayout(self)
        self.banner = error_banner(self)
        self.banner_area = BannerArea(self.banner, self)
        self.outer.addWidget(self.banner_area)
        self.scroll = ScrollBody(self)
        self.body = self.scroll.body
        self.outer.addWidget(self.scroll, 1)
        self.foot = QVBoxLayout()
        self.outer.addLayout(self.foot)

    def fit(self) -> None:
        """Fit the screen after the content changed (a refusal, a row appearing)."""
        self.banner_area.sync()
        fit_to_screen(self)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.fit()

    # --- refusals -----------------------------------------------------------------------

    def attempt(self, action: Callable[[], object], heading: str | None = None) -> bool:
        """Run a save; True when it went through. A refusal is shown (:meth:`show_refusal`,
        headed by ``heading`` when this write is not the dialog's main one) and the dialog
        stays open with what was typed."""
        self.clear_errors()
        try:
            action()
        except (ValidationError, StoreError) as exc:  # AccessRefused is a ValidationError
            self.show_refusal(exc, heading)
            # The refusal keeps no frame of this dialog: a save that raises the same exception
            # object again would otherwise tie the dialog into a cycle only the garbage
            # collector frees, at whatever moment it runs, inside some event's dispatch.
            exc.__traceback__ = None
            return False
        return True

    def show_refusal(self, exc: ValidationError | StoreError, heading: str | None = None) -> None:
        """The store's or validator's words in the strip; named fields outlined and focused."""
        if isinstance(exc, ValidationError):
            self.show_errors(exc, heading)
        else:
            heading = self.refusal_heading if heading is None else heading
            self.show_banner(f"{heading}. {exc}" if heading else str(exc))

    def show_errors(self, exc: ValidationError, heading: str | None = None) -> None:
        first = mark_refused(self.field_widgets, exc.errors, self.field_aliases)
        heading = self.refusal_heading if heading is None else heading
        if heading:
            self.show_banner(refusal_text(f"{heading}:\n", exc.errors))
        else:
            self.show_banner("\n".join(e.message for e in exc.errors))
        if first is not None:
            (first.focusProxy() or first).setFocus()
            self.scroll.show_widget(first)

    def clear_errors(self) -> None:
        clear_refused(self.field_widgets, self.banner)

    def show_banner(self, text: str) -> None:
        show_banner(self, self.banner, text)
        self.fit()

    def errors_text(self) -> str:
        """What the strip says now (empty when nothing was refused)."""
        return "" if self.banner.isHidden() else self.banner.text()


class EntryForm(FittingDialog):
    """Base dialog: subclasses add fields in ``build`` and turn them into a record in ``entry``."""

    title = "Entry"
    time_label = "Observed at"

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
        super().__init__(parent)
        self.ref = ref
        self._save = save
        self.now = now
        self.correcting = correcting
        self.saved_id: int | None = None
        self.setWindowTitle(f"Correct {self.title.lower()}" if correcting else self.title)
        self.setModal(True)

        self.form = QFormLayout(self.body)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.build()
        # Created after the fields so Tab reaches the time last, in reading order.
        self.time_edit = QDateTimeEdit(to_qdatetime(now), self)
        self.time_edit.setDisplayFormat("yyyy-MM-dd  HH:mm:ss")
        self.time_edit.setCalendarPopup(False)
        self.time_edit.setToolTip("When it happened (local time). Defaults to now.")
        self.form.addRow(self.time_label, self.time_edit)
        self.field_widgets.setdefault("observed_at", self.time_edit)

        self.reason_edit: QLineEdit | None = None
        self.void_box: QCheckBox | None = None
        if correcting is not None:
            self.reason_edit = QLineEdit(self)
            self.reason_edit.setPlaceholderText("Required: why is this being corrected?")
            self.void_box = QCheckBox("Entered in error: withdraw the original entirely", self)
            self.form.addRow("Reason for correction", self.reason_edit)
            self.form.addRow("", self.void_box)
            self.field_widgets["reason"] = self.reason_edit
            self.time_edit.setDateTime(to_qdatetime(from_iso(correcting["observed_at"])))
            self.fill(correcting)

        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            "Save correction" if correcting else "Save", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setDefault(True)
        self.save_button.setToolTip("Save (Enter)")
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Cancel (Esc)")
        self.buttons.accepted.connect(self.try_save)
        self.buttons.rejected.connect(self.reject)
        if recorder:
            who = QLabel(f"Recording as <b>{recorder}</b>", self)
            who.setObjectName("RecorderNote")
            self.foot.addWidget(who)
        self.foot.addWidget(self.buttons)
        first = next(iter(self.field_widgets.values()))
        (first.focusProxy() or first).setFocus()  # type straight away: no click needed
        fit_to_screen(self)

    # --- for subclasses -----------------------------------------------------------------

    def build(self) -> None:
        """Add this form's fields to ``self.form`` in reading order."""
        raise NotImplementedError

    def entry(self) -> Entry:
        """Build the record from the fields; raise ValidationError for unparseable input."""
        raise NotImplementedError

    def fill(self, row: dict[str, Any]) -> None:
        """Put a stored row's values into the fields (used when correcting it)."""

    def observed_at(self) -> datetime:
        return from_qdatetime(self.time_edit.dateTime())

    def add_field(self, key: str, label: str, widget: QWidget, tip: str = "") -> QWidget:
        if tip:
            widget.setToolTip(tip)
        self.form.addRow(label, widget)
        self.field_widgets[key] = widget
        return widget

    # --- parsing helpers that collect errors -------------------------------------------

    def read_number(self, errors: list[FieldError], key: str, label: str) -> float | None:
        widget = self.field_widgets[key]
        assert isinstance(widget, QLineEdit)
        from kapmonitor.domain.validation import parse_number

        try:
            return parse_number(widget.text(), label)
        except ValueError as exc:
            errors.append(FieldError(key, str(exc)))
            return None

    def read_int(self, errors: list[FieldError], key: str, label: str) -> int | None:
        widget = self.field_widgets[key]
        assert isinstance(widget, QLineEdit)
        from kapmonitor.domain.validation import parse_int

        try:
            return parse_int(widget.text(), label)
        except ValueError as exc:
            errors.append(FieldError(key, str(exc)))
            return None

    # --- saving -------------------------------------------------------------------------

    def reason(self) -> str:
        return self.reason_edit.text() if self.reason_edit else ""

    def is_void(self) -> bool:
        return bool(self.void_box and self.void_box.isChecked())

    def try_save(self) -> None:
        def save() -> None:
            self.saved_id = self._save(self.entry())

        if self.attempt(save):
            self.accept()
