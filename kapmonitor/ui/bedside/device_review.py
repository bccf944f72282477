"""Device readings in the bedside window: shown pending, confirmed or marked artefact by one key.

Issue 13 item 3 in the window. Whatever feeds the window (the live device feed, a test), each
committed device write reaches :meth:`DeviceReview.apply` as the store's
:class:`~kapmonitor.domain.changes.Changes`, through ``SessionWindow.apply_device_changes``; nothing
is read back from the store. What it wrote is shown in three places:

* the vitals rows the write made (a protocol's automatic confirmation, a clinician's) go the way
  a typed vitals save goes (the model, a normal chart point, the big numbers, the timeline,
  NEWS2 and alarms): the change is split so that each vitals row is shown as its own save;
* pending readings are drawn on the chart in their lighter look, a decision removes the pending
  point (an artefact's comes back as a grey cross, kept), and the big numbers show the newest
  pending value of each vital when it is newer than the confirmed one;
* alarms the store raised on pending values ("device, unconfirmed") reach the banner, the chart
  and the sound at once: a desaturation does not wait for a click.

**Deciding.** *Confirm device values* (F) confirms exactly the readings the big numbers show as
pending and the device did not flag, by their ids (:meth:`LastValuesPanel.pending_ids`): a
reading that arrived after the screen was last drawn is not confirmed unseen, and one the device
itself flagged (probe off, artefact, preliminary, out of range) never is. It is one attributed
confirmation by the clinician chosen in the header, which the store audits. *Mark device
artefact* (M) opens a chooser (:mod:`~kapmonitor.ui.bedside.artefact_chooser`) listing the
pending values on screen, flagged ones included: the ticked ones are marked artefact with the
reason chosen (kept, never deleted), the others stay pending. Older pending readings of the same
vitals, superseded on screen, stay pending: unreviewed device data, not part of the record. Each
key is disabled while it has nothing to decide, and refuses in plain words (status line, the
chooser's strip, or the store's sentence in a message box) when the window is locked, the
session closed, no recorder chosen, or the store says no.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu

from kapmonitor.domain import alarm_rules
from kapmonitor.domain.changes import Changes
from kapmonitor.domain.chart_picture import device_delta, device_points_delta
from kapmonitor.domain.clock import from_iso
from kapmonitor.domain.device_flags import blocking_flags, flag_caption
from kapmonitor.domain.vitals import VITAL_SIGNS
from kapmonitor.settings import ALARM_SOUND, WARNING_SOUND
from kapmonitor.store import permissions
from kapmonitor.store.device_view import charted_device_readings
from kapmonitor.store.errors import StoreError
from kapmonitor.store.protocol_effects import DEVICE_UNCONFIRMED
from kapmonitor.ui.bedside.artefact_chooser import ArtefactChoice
from kapmonitor.ui.widgets.last_values_panel import ROWS

if TYPE_CHECKING:
    from kapmonitor.ui.bedside.session_window import SessionWindow

__all__ = ["ARTEFACT_KEY", "CONFIRM_KEY", "DEVICE_ROWS", "DeviceReview", "split_for_window"]

CONFIRM_KEY = "F"
ARTEFACT_KEY = "M"
CONFIRM_TEXT = "Confirm device values"
ARTEFACT_TEXT = "Mark device artefact"
# The action bar's words: short, so the bar keeps its rows at 1280 px in large type (the big
# numbers take the height a third row would cost). The menu and tooltip say it in full.
BUTTON_TEXTS = {CONFIRM_TEXT: "Confirm", ARTEFACT_TEXT: "Artefact"}
#: Rows of a device write that only this module shows (the window's save path does not).
DEVICE_ROWS = frozenset({"device_readings", "device_reading_reviews"})
NOTHING_PENDING = "No device value is waiting for confirmation."
FLAGGED_ONLY = (
    "The device itself flagged the values shown (probe off, artefact, preliminary or out of "
    "range): F does not confirm them. Mark them artefact (M) or type the value."
)
_SHORT = {sign.key: sign.short for sign in VITAL_SIGNS}
_CELL_ORDER = tuple(key for key, _caption in ROWS)


def _device_row(table: str, row: object) -> bool:
    if table in DEVICE_ROWS:
        return True
    return table == "alarms" and getattr(row, "source_table", None) == "device_readings"


def split_for_window(changes: Changes) -> tuple[list[Changes], Changes]:
    """``changes`` as the window shows it: one change per vitals row the write made (the row,
    then what the store derived with it: NEWS2, its alarms, a phase), each shown as a typed
    vitals save is, and one change holding the device rows (readings, decisions, alarms on
    pending values). Every row is in exactly one of them, in its original order."""
    saves: list[list[tuple[str, object]]] = []
    device: list[tuple[str, object]] = []
    for table, row in changes.rows:
        if _device_row(table, row):
            device.append((table, row))
        elif table == "vitals" or not saves:
            saves.append([(table, row)])
        else:
            saves[-1].append((table, row))
    parts = [Changes(changes.session_id, "insert", tuple(rows)) for rows in saves]  # type: ignore[arg-type]
    return parts, Changes(changes.session_id, changes.action, tuple(device))  # type: ignore[arg-type]


class DeviceReview:
    """The window's device part: shows device writes, and the F and M keys (module docstring)."""

    def __init__(self, window: SessionWindow, menu: QMenu) -> None:
        self.window = window
        # Alarm folding (store: protocol_effects.folded): an active device alarm that later
        # device values continue, by alarm id -> (newest value, its time, its vital).
        self._continued: dict[int, tuple[float, str, str]] = {}
        self.confirm_action = self._action(CONFIRM_TEXT, CONFIRM_KEY, self.confirm)
        self.artefact_action = self._action(ARTEFACT_TEXT, ARTEFACT_KEY, self.mark_artefact)
        menu.addSeparator()
        for action in (self.confirm_action, self.artefact_action):
            menu.addAction(action)
            window.action_bar.add(action)
        self.update_enabled()

    def _action(self, text: str, key: str, slot: object) -> QAction:
        action = QAction(text, self.window)
        action.setShortcut(QKeySequence(key))
        action.setToolTip(f"{text} ({key}): the pending values shown in the big numbers")
        action.setIconText(f"{BUTTON_TEXTS[text]} ({key})")
        action.triggered.connect(slot)
        return action

    # --- showing device writes ------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        """Show one committed device write (see the module docstring). A change of a session
        not open here is not shown (the window moved on; the rows are stored all the same)."""
        window = self.window
        log = window.log
        if log is None or changes.session_id != log.id or not changes.rows:
            return
        saves, device = split_for_window(changes)
        for part in saves:
            window.show_changes(part)  # the typed-save path: chart, numbers, timeline, alarms
        self._note_continued(changes)
        if device.rows:
            log.apply(device)  # the model's pending values; the window's listener skips it
            window.chart.apply(device_delta(device))
            self._show_pending()
            self._probe_off(device)
            self._alarms(device)
        self.update_enabled()

    def _show_pending(self) -> None:
        window = self.window
        if window.log is not None:
            window.last_values.set_pending(window.log.pending_readings(), window.clock.now())

    # --- alarm folding ---------------------------------------------------------------------

    def _note_continued(self, changes: Changes) -> None:
        """Device values in this write that continue an active alarm the store folded them
        into (no new row, no sound): kept so the banner says the newest value and how long the
        episode has lasted. Only absolute limits are followed here (a rise from baseline is
        shown as raised)."""
        window = self.window
        log = window.log
        protocol = log.protocol if log is not None else None
        if log is None or protocol is None:
            return
        values: list[tuple[str, float, str]] = [
            (str(r["vital"]), float(r["value"]), r.observed_at)
            for r in changes.pending_readings
            if r["value"] is not None and not blocking_flags(r["flags"])
        ]
        for row in changes.of("vitals"):
            if row.get("device_reading_id") is not None:
                values += [
                    (key, float(row[key]), row.observed_at)
                    for key in ("spo2", "hr", "rr", "sbp", "dbp", "etco2")
                    if row.get(key) is not None
                ]
        if not values:
            return
        raised = {a.id for a in changes.alarms_raised}
        rules = {rule.id: rule for rule in protocol.alarms}
        for alarm in log.active_alarms():
            rule = rules.get(alarm["rule_id"])
            if alarm.id in raised or rule is None:
                continue
            if rule.at_or_above is None and rule.at_or_below is None:
                continue
            for vital, value, at in values:
                same = vital == alarm["parameter"] and at >= alarm.observed_at
                if same and alarm_rules.crosses(rule, value, None):
                    self._continued[alarm.id] = (value, at, vital)

    def banner_alarms(self, alarms: list[Any]) -> list[Any]:
        """The active alarms as the banner shows them: one that device values continue says
        the newest value and for how long ("SpO₂ 84 % for 2 min (device, unconfirmed)")."""
        active = {int(a["id"]) for a in alarms}
        for alarm_id in [i for i in self._continued if i not in active]:
            del self._continued[alarm_id]  # acknowledged: the next crossing raises anew
        shown: list[Any] = []
        for alarm in alarms:
            continued = self._continued.get(int(alarm["id"]))
            if continued is None:
                shown.append(alarm)
                continue
            value, at, vital = continued
            lasted = (from_iso(at) - from_iso(alarm["observed_at"])).total_seconds()
            span = f"{int(lasted // 60)} min" if lasted >= 60 else f"{int(lasted)} s"
            message = f"{alarm_rules.value_words(vital, value)} for {span} ({DEVICE_UNCONFIRMED})"
            shown.append({**alarm.as_dict(), "message": message})
        return shown

    def _probe_off(self, device: Changes) -> None:
        """A reading without a value that the device flagged "probe off" says so under its
        big number (it has nothing to chart or confirm) until a newer value arrives."""
        panel = self.window.last_values
        for row in device.device_readings:
            if row["value"] is None and "probe_off" in blocking_flags(row["flags"]):
                cell = "bp" if row["vital"] in ("sbp", "dbp") else row["vital"]
                if cell in panel.values:
                    panel.set_probe_off(cell, row.observed_at, self.window.clock.now())

    def _alarms(self, device: Changes) -> None:
        """Alarms on pending values: on the chart, in the banner, one gentle beep."""
        window = self.window
        raised = device.alarms_raised
        for alarm in raised:
            window.chart_row("alarms", alarm)
        if raised:
            critical = any(a.priority == "critical" for a in raised)
            if window.settings.get(ALARM_SOUND if critical else WARNING_SOUND):
                QApplication.beep()
        if raised or self._continued:
            window.protocol_support.refresh_alarms()

    def redraw(self) -> None:
        """After the window redrew the session (opened, corrected): the pending and artefact
        readings from the store, and the pending big numbers."""
        window = self.window
        self._continued.clear()  # another session, or this one read again: no episode carried
        log = window.log
        if log is None:
            return
        try:
            rows = charted_device_readings(window.store.db, log.id)
        except Exception as exc:  # a file that cannot be read says so; the record stays shown
            window.statusBar().showMessage(f"⚠ Device readings not shown: {exc}", 10000)
            rows = []
        with window.chart.bulk():
            window.chart.apply(device_points_delta(rows))
        self._show_pending()
        self.update_enabled()

    # --- deciding ---------------------------------------------------------------------------

    def update_enabled(self) -> None:
        """Enabled only with pending values shown, a session open for entries, and unlocked."""
        window = self.window
        log = window.log
        usable = log is not None and not window.access.locked() and log.phase() != "ended"
        panel = window.last_values
        # F only for values the device did not flag; M for any value shown pending.
        self.confirm_action.setEnabled(usable and bool(panel.pending_ids()))
        self.artefact_action.setEnabled(usable and bool(panel.shown_ids()))

    def _refusal(self, *, confirm: bool = False) -> str | None:
        """Why the keys cannot decide now, in the words the window says it; None if they can."""
        window = self.window
        log = window.log
        if log is None:
            return "No session is open."
        if window.access.locked():
            return "The window is locked: unlock it to decide on device values."
        # A decision is an entry of the monitoring record: closed once ended or signed.
        refused = permissions.why_not_add(window.store.db, log.id, "vitals")
        if refused is not None:
            return str(refused)
        if not window.recorder:
            return "Choose who records (the header) before deciding on device values."
        panel = window.last_values
        if confirm and not panel.pending_ids() and panel.flagged_ids():
            return FLAGGED_ONLY
        if not (panel.pending_ids() if confirm else panel.shown_ids()):
            return NOTHING_PENDING
        return None

    def _shown(self, ids: tuple[int, ...] | None = None) -> str:
        """ "SpO₂ 88, HR 120": the pending values on screen (those holding ``ids``, when
        given), as the status line names them."""
        panel = self.window.last_values
        texts = {
            key: cell.text
            for key, cell in panel.pending.items()
            if ids is None or set(cell.ids) & set(ids)
        }
        order = [key for key in _CELL_ORDER if key in texts]
        return ", ".join(f"{_SHORT.get(key, key.upper())} {texts[key]}" for key in order)

    def confirm(self) -> None:
        """F: the pending values on screen the device did not flag become vitals, attributed
        to the recorder."""
        window = self.window
        refused = self._refusal(confirm=True)
        if refused is not None:
            window.statusBar().showMessage(f"⚠ Nothing confirmed: {refused}", 10000)
            return
        log = window.log
        assert log is not None
        ids = window.last_values.pending_ids()
        shown = self._shown(ids)
        # The device path of the store is imported on first use, as the device feed does: the
        # welcome page paints without it.
        from kapmonitor.store import device_store

        try:
            changes = device_store.confirm_device_readings(
                window.store, log.id, ids, window.recorder
            )
        except (StoreError, ValueError) as exc:  # the store's sentence, never a traceback
            window.statusBar().showMessage(f"⚠ Nothing confirmed: {exc}", 10000)
            window.report_error(exc)
            return
        self.apply(changes)
        window.statusBar().showMessage(
            f"Device values confirmed by {window.recorder}: {shown}", 8000
        )

    def mark_artefact(self) -> None:
        """M: the chooser asks which pending values on screen are artefact and why
        (:mod:`~kapmonitor.ui.bedside.artefact_chooser`); the chosen ones are marked (kept,
        never vitals), the others stay pending. Esc changes nothing."""
        window = self.window
        refused = self._refusal()
        if refused is not None:
            window.statusBar().showMessage(f"⚠ Nothing marked artefact: {refused}", 10000)
            return
        from kapmonitor.ui.bedside.artefact_chooser import ArtefactChooser

        chooser = ArtefactChooser(self._choices(), self._mark, window)
        if window.open_form(chooser) is None:
            window.statusBar().showMessage("Nothing marked artefact.", 5000)

    def _choices(self) -> list[ArtefactChoice]:
        """The pending values on screen as the chooser lists them, in the panel's order."""
        window = self.window
        log = window.log
        alarmed = set()
        if log is not None:
            alarmed = {str(a["parameter"]) for a in log.active_alarms()}
        choices = []
        for key in _CELL_ORDER:
            cell = window.last_values.pending.get(key)
            if cell is None:
                continue
            vitals = {"sbp", "dbp"} if key == "bp" else {key}
            choices.append(
                ArtefactChoice(
                    f"{_SHORT.get(key, key.upper())} {cell.text}",
                    cell.ids,
                    alarmed=bool(vitals & alarmed),
                    flag=flag_caption(cell.flags),
                )
            )
        return choices

    def _mark(self, ids: tuple[int, ...], reason: str) -> int:
        """The chooser's save: the chosen readings marked artefact with the reason (the values
        named after it), shown at once; raises the store's refusal for the chooser's strip."""
        window = self.window
        log = window.log
        if log is None:
            raise StoreError("No session is open.")
        if not window.recorder:
            raise StoreError("Choose who records (the header) before deciding on device values.")
        from kapmonitor.store import device_store

        shown = self._shown(ids)
        changes = device_store.mark_device_artefact(
            window.store, log.id, ids, window.recorder, f"{reason} (M at the bedside: {shown})"
        )
        self.apply(changes)
        window.statusBar().showMessage(
            f"Device values marked artefact by {window.recorder} ({reason}): {shown}", 8000
        )
        return len(ids)
