"""How every dialog shows a refusal: the fields concerned outlined, their reason as tooltip, and
a wrapped banner listing every reason, sized so it never squeezes a field.

One place for it, so a form, the start dialog and the alarm acknowledgement say "not saved" the
same way.

The outline is a separate, see-through widget laid exactly over the field, not a style-sheet
border of the field itself. A refused field is often a container (a row holding "birth year or
age", a group of checkboxes): its own border lies under its children, so only the gaps between
them showed, and the dashed line appeared around the word "or" rather than around the fields.
The overlay is a sibling of the field (the same coordinates, so it scrolls with it) and follows
every move and resize of the field, so it stays on the field when the dialog relays out after
the banner appears or when the dialog is resized.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QLabel, QWidget

from kapmonitor.domain.validation import FieldError

OUTLINE_WIDTH = 2  # px; the same weight as a focused field's border, dashed so it reads as "wrong"
OUTLINE_RADIUS = 4  # px; the fields' own corner radius (theme.py)
OUTLINE_NAME = "FieldOutline"
_DIRECT = Qt.FindChildOption.FindDirectChildrenOnly
_FOLLOWED = (
    QEvent.Type.Move,
    QEvent.Type.Resize,
    QEvent.Type.Show,
    QEvent.Type.Hide,
    QEvent.Type.ParentChange,
)


class FieldOutline(QWidget):
    """A dashed outline over one refused field, always exactly on the field's geometry.

    It takes no clicks and no focus, so the field under it is used as if it were not there. Its
    colour is the palette's text colour, which the theme sets to the error colour.
    """

    def __init__(self, field: QWidget) -> None:
        super().__init__(field.parentWidget())
        self.field = field
        self.released = False
        self.setObjectName(OUTLINE_NAME)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        field.installEventFilter(self)
        self.sync()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.field and event.type() in _FOLLOWED:
            self.sync()
        return False

    def sync(self) -> None:
        """Lie on the field: same parent, same geometry, shown while it is, above its siblings."""
        parent = self.field.parentWidget()
        if parent is not None and self.parentWidget() is not parent:
            self.setParent(parent)
        self.setGeometry(self.field.geometry())
        self.setVisible(not self.field.isHidden())
        self.raise_()

    def release(self) -> None:
        """Stop following the field and go (the refusal was cleared)."""
        self.released = True
        self.field.removeEventFilter(self)
        self.hide()
        self.deleteLater()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.palette().color(QPalette.ColorRole.WindowText), OUTLINE_WIDTH)
        pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        half = OUTLINE_WIDTH / 2
        inner = QRectF(self.rect()).adjusted(half, half, -half, -half)
        painter.drawRoundedRect(inner, OUTLINE_RADIUS, OUTLINE_RADIUS)
        painter.end()


def outline_of(field: QWidget) -> FieldOutline | None:
    """The outline currently over ``field``, if it is refused."""
    parent = field.parentWidget()
    if parent is None:
        return None
    for outline in parent.findChildren(FieldOutline, OUTLINE_NAME, _DIRECT):
        if outline.field is field and not outline.released:
            return outline
    return None


def _outline(field: QWidget) -> None:
    if field.parentWidget() is not None and outline_of(field) is None:
        FieldOutline(field)


def _repolish(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def mark_refused(
    fields: Mapping[str, QWidget],
    errors: list[FieldError],
    aliases: Mapping[str, str] | None = None,
) -> QWidget | None:
    """Outline each refused field and put its reason in its tooltip; returns the first one."""
    first: QWidget | None = None
    for error in errors:
        widget = fields.get((aliases or {}).get(error.field, error.field))
        if widget is None:
            continue
        if widget.property("baseTip") is None:
            widget.setProperty("baseTip", widget.toolTip())
        widget.setProperty("invalid", True)
        widget.setToolTip(error.message)
        _repolish(widget)
        _outline(widget)
        first = first or widget
    return first


def clear_refused(fields: Mapping[str, QWidget], banner: QLabel) -> None:
    """Back to normal: the banner hidden, outlines and tooltips restored."""
    banner.hide()
    banner.clear()
    for widget in fields.values():
        if widget.property("invalid"):
            widget.setProperty("invalid", False)
            base = widget.property("baseTip")
            widget.setToolTip(base if base is not None else "")
            _repolish(widget)
        outline = outline_of(widget)
        if outline is not None:
            outline.release()


def refusal_text(heading: str, errors: list[FieldError]) -> str:
    return heading + "\n".join(f"• {e.message}" for e in errors)


def show_banner(dialog: QWidget, banner: QLabel, text: str) -> None:
    """Show ``text`` in the wrapped ``banner`` at the height its lines need.

    A wrapped label's minimum height is computed for a guessed width; without this the dialog
    grows too little for a long list of problems and squeezes the fields.
    """
    banner.setText(text)
    banner.show()
    layout = dialog.layout()
    if layout is not None:
        banner.setMinimumHeight(banner.heightForWidth(layout.contentsRect().width()))
