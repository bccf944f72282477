"""How every dialog shows a refusal: the fields concerned outlined, their reason as tooltip, and
a wrapped banner listing every reason, sized so it never squeezes a field.

One place for it, so a form, the start dialog and the alarm acknowledgement say "not saved" the
same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtWidgets import QLabel, QWidget

from kapmonitor.domain.validation import FieldError


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
