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

Its lifetime is tied to the field's on the C++ side, never to Python's: the field's
``destroyed`` signal deletes the outline (a plain Qt slot, no Python runs), and the outline's
filter does nothing once its Python state is gone. When the garbage collector frees a dialog
that was only held by a reference cycle, it first clears the Python side of every wrapper in
it while the widgets are still alive and filtering: a filter that then read its attributes
raised inside Qt's event dispatch. (The dialogs themselves no longer form such cycles, see
``FittingDialog.attempt`` and the alarm checklist's slot; a dialog deleted by the collector
in the middle of an event's dispatch is what crashed the ui suite.)
"""

from __future__ import annotations

from collections.abc import Mapping

import shiboken6
from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QLabel, QWidget

from kapmonitor.domain.refusals import FieldError

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
        # A field that goes takes its outline with it (deferred: never inside its own dispatch).
        field.destroyed.connect(self.deleteLater)
        self.sync()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        field = following(self, "field")
        if field is None or watched is not field or self.__dict__.get("released", True):
            return False
        if event.type() in _FOLLOWED:
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
        if shiboken6.isValid(self.field):
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


def following(watcher: QObject, name: str) -> QObject | None:
    """The object ``watcher`` filters events for, or None once it must stop filtering.

    An event filter's own Python state can vanish while Qt still calls it: the garbage
    collector clears every wrapper of an unreachable dialog before the dialog's widgets are
    deleted, and their deletion sends events through the filters. Reading an attribute then
    raises inside Qt's event dispatch. A filter asks here first and does nothing on None.
    """
    watched = watcher.__dict__.get(name)
    if watched is None or not shiboken6.isValid(watched):
        return None
    return watched


def outline_of(field: QWidget) -> FieldOutline | None:
    """The outline currently over ``field``, if it is refused."""
    parent = field.parentWidget()
    if parent is None:
        return None
    for outline in parent.findChildren(FieldOutline, OUTLINE_NAME, _DIRECT):
        if following(outline, "field") is field and not outline.__dict__.get("released", True):
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
