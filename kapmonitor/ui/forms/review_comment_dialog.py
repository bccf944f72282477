"""A review comment pinned to a moment of the session, or an addendum to a signed one.

A review comment is the supervisor's note on the record before sign-off ("BP response at 40 min
well documented"), at the time it is about: by default the entry selected in the timeline. An
addendum is the only addition a signed session accepts; it is written now and shown marked
ADDENDUM wherever the session is shown. Neither changes a clinical entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from kapmonitor.domain.clock import format_duration
from kapmonitor.ui.forms.form_base import FittingDialog, fit_to_screen, from_qdatetime, to_qdatetime

# save(at, text) -> row id; raises AccessRefused/ValidationError/StoreError.
SaveFn = Callable[[datetime, str], int]


class _TextEdit(QPlainTextEdit):
    """Several lines of text; Ctrl+Enter saves (Enter alone starts a new line)."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            dialog = self.window()
            if isinstance(dialog, ReviewCommentDialog):
                dialog.try_save()
                return
        super().keyPressEvent(event)


class ReviewCommentDialog(FittingDialog):
    """``addendum=False``: a review comment at a time; ``True``: an addendum, written now."""

    def __init__(
        self,
        save: SaveFn,
        at: datetime,
        author: str,
        parent: QWidget | None = None,
        *,
        addendum: bool = False,
        dose_at: datetime | None = None,
        about: str = "",
    ) -> None:
        super().__init__(parent)
        self._save = save
        self.addendum = addendum
        self.dose_at = dose_at
        self.saved_id: int | None = None
        self.setWindowTitle("Add addendum" if addendum else "Add review comment")
        self.setModal(True)
        self.setMinimumWidth(600)

        # The text and the time scroll if the screen is short; the buttons never do.
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        if addendum:
            intro = (
                "An ADDENDUM is added to the signed record with your name and today's date. "
                "The signed entries stay exactly as they were."
            )
        else:
            intro = (
                "A review comment is pinned to a moment of the session. It does not change any "
                "entry; the clinician who recorded an entry amends it if it is wrong."
            )
        text = QLabel(intro, self)
        text.setWordWrap(True)
        text.setObjectName("Muted")
        layout.addWidget(text)
        if about:
            what = QLabel(f"About: {about}", self)
            what.setWordWrap(True)
            layout.addWidget(what)

        form = QFormLayout()
        layout.addLayout(form)
        self.text = _TextEdit(self)
        self.text.setTabChangesFocus(True)
        self.text.setPlaceholderText(
            "The addendum" if addendum else "Your comment on the record at this moment"
        )
        self.text.setMinimumHeight(self.fontMetrics().lineSpacing() * 5 + 14)
        form.addRow("Addendum" if addendum else "Comment", self.text)
        self.time_edit = QDateTimeEdit(to_qdatetime(at), self)
        self.time_edit.setDisplayFormat("yyyy-MM-dd  HH:mm:ss")
        self.time_edit.setToolTip("The moment of the session the comment is about (local time)")
        self.when_label = QLabel(self)
        self.when_label.setObjectName("Muted")
        self.time_edit.dateTimeChanged.connect(lambda _v: self._update_when())
        if addendum:
            self.time_edit.hide()
        else:
            form.addRow("At", self.time_edit)
            form.addRow("", self.when_label)
        self._update_when()
        who = QLabel(f"Written by <b>{author}</b>", self)
        who.setObjectName("RecorderNote")
        self.foot.addWidget(who)

        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            "Add addendum" if addendum else "Add comment", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setDefault(True)
        self.save_button.setToolTip("Save (Ctrl+Enter)")
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setToolTip("Cancel (Esc)")
        self.buttons.accepted.connect(self.try_save)
        self.buttons.rejected.connect(self.reject)
        self.foot.addWidget(self.buttons)
        self.field_widgets = {"text": self.text, "observed_at": self.time_edit}
        self.text.setFocus()
        fit_to_screen(self)

    def at(self) -> datetime:
        return from_qdatetime(self.time_edit.dateTime())

    def _update_when(self) -> None:
        if self.dose_at is None or self.addendum:
            self.when_label.setText("")
            return
        seconds = (self.at() - self.dose_at).total_seconds()
        side = "after" if seconds >= 0 else "before"
        self.when_label.setText(f"{format_duration(abs(seconds))} {side} the first dose")

    def try_save(self) -> None:
        def save() -> None:
            self.saved_id = self._save(self.at(), self.text.toPlainText())

        if self.attempt(save):
            self.accept()


__all__ = ["ReviewCommentDialog"]
