"""Day and night looks, and large type.

The bedside room is dim and the patient wears an eye mask: night mode is near-black with muted,
low-glare colours and no pure white. Meaning never rides on colour alone: every state also has a
word or a symbol. Large type scales every font so the next check reads from two metres.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtGui import QAction, QColor, QFont, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from kapmonitor.settings import LARGE_TYPE, NIGHT_MODE, ConfigVar, Settings

BASE_POINT_SIZE = 11
LARGE_FACTOR = 1.35
# The big numbers grow more than the rest in large type: they are what is read from two metres,
# and the chart and the timeline give way to them on a 1280 x 720 screen.
BIG_POINT_SIZE = 28
BIG_LARGE_FACTOR = 1.5
HEADER_POINT_SIZE = 17
HEADER_LARGE_FACTOR = 1.0  # the header keeps its size: at 1280 px the room goes to the numbers


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    panel: str
    text: str
    muted: str
    accent: str
    field: str
    border: str
    error_bg: str
    error_text: str
    warn: str
    ok: str


DAY = Theme(
    name="day",
    window="#eef1f4",
    panel="#ffffff",
    text="#1b2430",
    muted="#5b6672",
    accent="#1f6f78",
    field="#ffffff",
    border="#c5ccd4",
    error_bg="#fbe3e1",
    error_text="#8a1c13",
    warn="#8a5a00",
    ok="#1d6b3a",
)
NIGHT = Theme(
    name="night",
    window="#0d1114",
    panel="#151b20",
    text="#b9c2c9",
    muted="#7d8790",
    accent="#5fa3a8",
    field="#1b2228",
    border="#2c353d",
    error_bg="#3a1d1b",
    error_text="#f0b4ad",
    warn="#d9a74a",
    ok="#7cbf8e",
)


def current_theme(night: bool) -> Theme:
    return NIGHT if night else DAY


# The status bar's small state labels (each device's line, the Sync line): one look per kind.
CHIP_LOOKS = {
    "ok": "color: {t.ok};",
    "plain": "color: {t.text};",
    "warning": "color: {t.warn}; font-weight: bold; border: 1px solid {t.warn};",
    "alarm": (
        "color: {t.error_text}; background: {t.error_bg}; font-weight: bold; "
        "border: 2px solid {t.error_text};"
    ),
}


def status_chip_style(
    object_name: str, prop: str, looks: Mapping[str, str], night: bool, large: bool
) -> str:
    """The stylesheet of a status-bar label named ``object_name`` whose ``prop`` property takes
    the values of ``looks`` (value -> a kind of :data:`CHIP_LOOKS`), so every such label reads
    alike in day and night and grows a little in large type."""
    theme = current_theme(night)
    size = round(BASE_POINT_SIZE * (LARGE_FACTOR if large else 1.0))
    rules = [
        f"QLabel#{object_name} {{ font-size: {size}pt; padding: 1px 6px; border-radius: 3px; }}"
    ]
    for value, kind in looks.items():
        look = CHIP_LOOKS[kind].format(t=theme)
        rules.append(f'QLabel#{object_name}[{prop}="{value}"] {{ {look} }}')
    return "\n".join(rules)


def stylesheet(theme: Theme, large: bool) -> str:
    scale = LARGE_FACTOR if large else 1.0
    base = round(BASE_POINT_SIZE * scale)
    big = round(BIG_POINT_SIZE * (BIG_LARGE_FACTOR if large else 1.0))
    word = round(big * 0.62)
    clock = round(20 * scale)
    header = round(HEADER_POINT_SIZE * (HEADER_LARGE_FACTOR if large else 1.0))
    small = round(BASE_POINT_SIZE * 0.95 * scale)
    return f"""
    QWidget {{ font-size: {base}pt; color: {theme.text}; }}
    QMainWindow, QDialog {{ background: {theme.window}; }}
    QLineEdit, QPlainTextEdit, QComboBox, QDateTimeEdit, QSpinBox {{
        background: {theme.field}; border: 1px solid {theme.border}; border-radius: 4px;
        padding: 3px 6px; selection-background-color: {theme.accent};
    }}
    QLineEdit:focus, QPlainTextEdit:focus, QComboBox:focus, QDateTimeEdit:focus {{
        border: 2px solid {theme.accent};
    }}
    QLineEdit[invalid="true"], QPlainTextEdit[invalid="true"], QComboBox[invalid="true"],
    QDateTimeEdit[invalid="true"], QSpinBox[invalid="true"] {{
        border: 2px dashed {theme.error_text}; background: {theme.error_bg};
    }}
    FieldOutline {{ color: {theme.error_text}; }}
    QLabel#ErrorBanner {{
        background: {theme.error_bg}; color: {theme.error_text}; border-left: 6px solid
        {theme.error_text}; padding: 8px; font-weight: bold;
    }}
    QFrame#Panel, QGroupBox {{
        background: {theme.panel}; border: 1px solid {theme.border}; border-radius: 6px;
    }}
    QGroupBox {{ margin-top: 14px; padding-top: 6px; }}
    QGroupBox::title {{ subcontrol-origin: margin; left: 8px; color: {theme.muted}; }}
    QLabel#BigValue {{ font-size: {big}pt; font-weight: bold; }}
    QLabel#BigWord {{ font-size: {word}pt; font-weight: bold; }}
    QLabel#BigLabel, QLabel#Muted, QLabel#RecorderNote, QLabel#HeaderSub {{
        color: {theme.muted};
    }}
    QLabel#BigAge {{ color: {theme.muted}; font-size: {small}pt; }}
    QLabel#BigValue[level="critical"], QLabel#BigWord[level="critical"] {{
        color: {theme.error_text}; background: {theme.error_bg};
    }}
    QLabel#BigValue[level="warning"], QLabel#BigWord[level="warning"] {{ color: {theme.warn}; }}
    QLabel#BigLabel[level="critical"] {{ color: {theme.error_text}; font-weight: bold; }}
    QLabel#BigLabel[level="warning"] {{ color: {theme.warn}; font-weight: bold; }}
    QLabel#ClockValue {{ font-size: {clock}pt; font-weight: bold; }}
    QLabel#PatientCode {{ font-size: {clock}pt; font-weight: bold; color: {theme.accent}; }}
    SessionHeader QLabel#ClockValue {{ font-size: {header}pt; }}
    SessionHeader QLabel#PatientCode {{ font-size: {header}pt; }}
    QLabel#PatientCodeLong {{
        font-size: {BASE_POINT_SIZE}pt; font-weight: bold; color: {theme.accent};
    }}
    SessionHeader QLabel#BigLabel, SessionHeader QLabel#HeaderSub,
    SessionHeader QComboBox {{ font-size: {BASE_POINT_SIZE}pt; }}
    ActionBar {{ background: {theme.panel}; border-bottom: 1px solid {theme.border}; }}
    ActionBar QToolButton {{ font-size: {BASE_POINT_SIZE}pt; padding: 3px 6px; }}
    QLabel#Warn {{ color: {theme.warn}; font-weight: bold; }}
    QPushButton {{
        background: {theme.panel}; border: 1px solid {theme.border}; border-radius: 4px;
        padding: 6px 12px;
    }}
    QPushButton:default {{ border: 2px solid {theme.accent}; }}
    QPushButton:hover {{ border-color: {theme.accent}; }}
    QPushButton:disabled {{ color: {theme.muted}; }}
    QTableView {{
        background: {theme.panel}; alternate-background-color: {theme.window};
        gridline-color: {theme.border};
    }}
    QHeaderView::section {{
        background: {theme.window}; color: {theme.muted}; border: none; padding: 4px;
    }}
    QToolBar {{ background: {theme.panel}; border-bottom: 1px solid {theme.border}; spacing: 6px; }}
    QToolButton {{ padding: 4px 8px; }}
    QToolButton:disabled {{ color: {theme.border}; }}
    QMenuBar, QMenu, QStatusBar {{ background: {theme.panel}; }}
    """


_APPLIED = "kapmonitorTheme"  # app property: the theme last applied


def apply_theme(app: QApplication, night: bool, large: bool) -> Theme:
    """Set the app-wide palette, font and style sheet, only when they change.

    Re-applying a style sheet re-polishes every widget in the process, including windows
    closed a moment ago and not yet deleted; each new window re-applying the same theme did
    that for nothing, and on a busy test run it crashed Qt inside a half-deleted widget.
    """
    theme = current_theme(night)
    key = f"{'night' if night else 'day'}/{'large' if large else 'normal'}"
    if app.property(_APPLIED) == key and app.styleSheet():
        return theme
    app.setProperty(_APPLIED, key)
    palette = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, theme.window),
        (QPalette.ColorRole.WindowText, theme.text),
        (QPalette.ColorRole.Base, theme.field),
        (QPalette.ColorRole.AlternateBase, theme.window),
        (QPalette.ColorRole.Text, theme.text),
        (QPalette.ColorRole.Button, theme.panel),
        (QPalette.ColorRole.ButtonText, theme.text),
        (QPalette.ColorRole.Highlight, theme.accent),
        (QPalette.ColorRole.ToolTipBase, theme.panel),
        (QPalette.ColorRole.ToolTipText, theme.text),
        (QPalette.ColorRole.PlaceholderText, theme.muted),
    ):
        palette.setColor(role, QColor(colour))
    app.setPalette(palette)
    font = QFont(app.font())
    font.setPointSize(round(BASE_POINT_SIZE * (LARGE_FACTOR if large else 1.0)))
    app.setFont(font)
    app.setStyleSheet(stylesheet(theme, large))
    return theme


def view_actions(
    window: QWidget, settings: Settings, changed: Callable[[], None]
) -> tuple[QAction, QAction]:
    """Night mode (F8) and large type (F9): remembered per laptop, the same in every window."""
    made = []
    for var, text, key in ((NIGHT_MODE, "Night mode", "F8"), (LARGE_TYPE, "Large type", "F9")):
        action = QAction(text, window, checkable=True)
        action.setShortcut(QKeySequence(key))
        action.setChecked(settings.get(var))
        action.setToolTip(f"{text} ({key})")

        def toggled(on: bool, var: ConfigVar[bool] = var) -> None:
            settings.set(var, on)
            changed()

        action.toggled.connect(toggled)
        made.append(action)
    return made[0], made[1]


def apply_settings_theme(settings: Settings) -> tuple[bool, bool]:
    """Apply the remembered theme to the application; returns (night, large)."""
    night, large = settings.get(NIGHT_MODE), settings.get(LARGE_TYPE)
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, night, large)
    return night, large
