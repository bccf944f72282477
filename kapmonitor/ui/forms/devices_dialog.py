"""Session ▸ Devices…: the monitors and oximeters this laptop captures from, and a connection test.

Issue 13 item 7. A clinic adds its sources once per laptop: an HL7 monitor or gateway (the MLLP
listener's host, loopback by default since MLLP has no authentication, its port, and how a message
is matched to the running session), a serial oximeter's port, a Bluetooth LE device's address.
The list is kept in the laptop's settings (:data:`kapmonitor.settings.DEVICE_SOURCES`), each entry
checked by :class:`kapmonitor.devices.source_config.SourceConfig`. "Test connection" tries what
capture would do first (bind the listener's port; open the serial port) and says plainly what is
wrong; each source shows the last message seen from it this session, with its age.

Refusals (a bad port, a port in use, a duplicate) go through the dialogs' one refusal strip
(:class:`~kapmonitor.ui.forms.form_base.FittingDialog`), naming the field concerned.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from kapmonitor.devices.source_config import (
    DEFAULT_PORT,
    KIND_LABELS,
    MATCH_LABELS,
    SourceConfig,
    bind_problem,
    load_sources,
)
from kapmonitor.domain.validation import FieldError, ValidationError
from kapmonitor.settings import DEVICE_SOURCES, Settings
from kapmonitor.ui.forms.form_base import FittingDialog

__all__ = ["DevicesDialog", "test_source"]

DIALOG_WIDTH = 600  # a source's line and its "last message" fit unwrapped at 1280 x 720


def _check_bind(host: str, port: int) -> None:
    """Bind and release ``host:port`` as the listener would (address reuse on, like asyncio's
    server), so "in use" means another program listens there."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def test_source(config: SourceConfig) -> str:
    """Try ``config`` as capture would start it; the outcome in words, or ValidationError."""
    if config.kind == "mllp":
        try:
            _check_bind(config.host, config.port)
        except OSError as exc:
            reason = bind_problem(exc, config.host, config.port)
            raise ValidationError(FieldError("port", reason)) from None
        return f"{config.host}:{config.port} is free: the listener can start there."
    if config.kind == "serial":
        try:
            import serial  # pyserial

            port = serial.Serial(config.device, 9600, timeout=0)
            port.close()
        except (OSError, ValueError, ImportError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            message = f"cannot open {config.device}: {reason}"
            raise ValidationError(FieldError("device", message)) from None
        return f"{config.device} opened: the oximeter's port is there."
    return (
        "A Bluetooth device is tried when a session starts (it must be switched on and in "
        "range); the indicator then says whether it connected."
    )


class DevicesDialog(FittingDialog):
    """The list of sources, a form to add one, and Test / Add / Remove."""

    refusal_heading = "Not added"

    def __init__(
        self,
        settings: Settings,
        *,
        now: Callable[[], datetime],
        last_seen: Callable[[str], datetime | None] = lambda key: None,
        listening: Callable[[str], tuple[str, int] | None] = lambda key: None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("DevicesDialog")
        self.setWindowTitle("Devices")
        self.setMinimumWidth(DIALOG_WIDTH)
        self.settings = settings
        self.now = now
        self.last_seen = last_seen
        self.listening = listening
        self.changed = False
        self.sources, problems = load_sources(settings.get(DEVICE_SOURCES))
        layout = self.body_layout = QFormLayout(self.body)
        intro = QLabel(
            "Monitors and oximeters this laptop captures from while a session runs. Readings "
            "arrive pending until a clinician confirms them (F)."
        )
        intro.setWordWrap(True)
        layout.addRow(intro)
        self.list = QListWidget(self)
        self.list.setObjectName("DeviceSources")
        self.list.setMinimumHeight(90)
        self.list.setWordWrap(True)  # a long source line wraps rather than scrolls sideways
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addRow(self.list)
        self.kind = QComboBox(self)
        for code, label in KIND_LABELS.items():
            self.kind.addItem(label, code)
        self.host = QLineEdit("127.0.0.1", self)
        self.host.setToolTip("Loopback (127.0.0.1) unless the monitor is on another machine")
        self.port = QLineEdit(str(DEFAULT_PORT), self)
        self.match = QComboBox(self)
        for code, label in MATCH_LABELS.items():
            self.match.addItem(label, code)
        self.match_value = QLineEdit(self)
        self.match_value.setPlaceholderText("bed or device id (not needed for the patient code)")
        self.device = QLineEdit(self)
        self.device.setPlaceholderText("/dev/ttyUSB0, COM3, or 00:1C:05:AB:12:34")
        for label, widget in (
            ("Kind", self.kind),
            ("Host", self.host),
            ("Port", self.port),
            ("Match by", self.match),
            ("Bed / device id", self.match_value),
            ("Serial port / address", self.device),
        ):
            layout.addRow(label, widget)
        self.field_widgets = {
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "match": self.match,
            "match_value": self.match_value,
            "device": self.device,
        }
        self.result = QLabel("", self)
        self.result.setObjectName("Muted")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addRow(self.result)
        buttons = QHBoxLayout()
        self.test_button = QPushButton("Test connection", self)
        self.add_button = QPushButton("Add", self)
        self.remove_button = QPushButton("Remove selected", self)
        for button in (self.test_button, self.add_button, self.remove_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        self.foot.addLayout(buttons)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        self.foot.addWidget(close)
        self.test_button.clicked.connect(self.test_connection)
        self.add_button.clicked.connect(self.add_source)
        self.remove_button.clicked.connect(self.remove_selected)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.match.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()
        self._fill_list()
        if problems:
            self.show_banner("Left out of the saved list: " + "; ".join(problems))

    # --- the form ------------------------------------------------------------------------------

    def _kind_changed(self) -> None:
        mllp = self.kind.currentData() == "mllp"
        for widget in (self.host, self.port, self.match):
            widget.setEnabled(mllp)
        self.match_value.setEnabled(mllp and self.match.currentData() != "patient_id")
        self.device.setEnabled(not mllp)

    def source(self) -> SourceConfig:
        """The form's source, checked (ValidationError naming the fields otherwise)."""
        kind = str(self.kind.currentData())
        if kind == "mllp":
            text = self.port.text().strip()
            if not text.isdigit():
                raise ValidationError(FieldError("port", "Port: a whole number, e.g. 2575"))
            if not 1 <= int(text) <= 65535:
                raise ValidationError(FieldError("port", f"Port {text}: use 1–65535"))
            return SourceConfig(
                "mllp",
                host=self.host.text().strip(),
                port=int(text),
                match=str(self.match.currentData()),
                match_value=self.match_value.text().strip(),
            )
        return SourceConfig(kind, device=self.device.text().strip())

    def test_connection(self) -> None:
        """Try the form's source; a failure is a refusal naming the field, success a line."""
        self.result.setText("")
        outcome: list[str] = []

        def run() -> None:
            config = self.source()
            address = self.listening(config.key)
            if address is not None:  # this window's own listener holds it: that is the answer
                outcome.append(f"Listening on {address[0]}:{address[1]} now (this window).")
                return
            outcome.append(test_source(config))

        if self.attempt(run, heading="Connection test failed"):
            self.result.setText(outcome[0])

    def add_source(self) -> None:
        def run() -> None:
            config = self.source()
            if any(s.key == config.key for s in self.sources):
                field = "port" if config.kind == "mllp" else "device"
                raise ValidationError(FieldError(field, f"{config.key} is already in the list"))
            self.sources.append(config)
            self._save()

        if self.attempt(run):
            self.result.setText("Added: capture starts with it at once for the open session.")

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if row < 0 or row >= len(self.sources):
            self.show_banner("Select a source in the list to remove it.")
            return
        del self.sources[row]
        self._save()
        self.result.setText("Removed.")

    # --- the list ------------------------------------------------------------------------------

    def _save(self) -> None:
        self.settings.set(DEVICE_SOURCES, tuple(s.to_dict() for s in self.sources))
        self.changed = True
        self._fill_list()

    def seen_text(self, key: str) -> str:
        """``last message 09:14:02 (12 s ago)`` or ``no message yet``."""
        when = self.last_seen(key)
        if when is None:
            return "no message yet"
        age = int(max(0.0, (self.now() - when).total_seconds()))
        if age < 120:
            ago = f"{age} s"
        elif age < 3600:
            ago = f"{age // 60} min {age % 60:02d} s"
        else:
            ago = f"{age // 3600} h {age % 3600 // 60:02d} min"
        return f"last message {when.astimezone():%H:%M:%S} ({ago} ago)"

    def _fill_list(self) -> None:
        self.list.clear()
        for config in self.sources:
            item = QListWidgetItem(f"{config.label()}\n    {self.seen_text(config.key)}")
            item.setData(Qt.ItemDataRole.UserRole, config.key)
            self.list.addItem(item)
        if not self.sources:
            self.list.addItem("No device yet: add one below.")
        self.remove_button.setEnabled(bool(self.sources))

    def rows(self) -> list[str]:
        """The list's lines as shown (for tests and the screen reader)."""
        return [self.list.item(i).text() for i in range(self.list.count())]
