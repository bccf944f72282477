"""Anchors: the audit chain's head written outside the database file, to hold the file against.

A keyed chain stops someone without the key from rewriting history, but not someone with it (an
insider with a clinician's password, or anyone at all on a plain file, whose key is public), and
no chain notices its own end being cut or the whole file being swapped for an earlier copy. So the
chain head (the newest entry's number and MAC, with the database's identity) is copied to places
the file's holder cannot reach together:

- every backup gets a sidecar ``<backup>.anchor`` (JSON);
- every PDF report prints it in its footer ("Audit chain head: #N MAC …") and carries it in the
  PDF's metadata, where ``verify`` reads it back;
- every export carries the head it was read at inside itself (:func:`embedded`): a JSON export
  as its top-level ``audit_anchor`` object, a FHIR Bundle in ``Bundle.meta`` as the extension
  :data:`FHIR_EXTENSION`, a CSV export as its own small table ``audit_chain_head.csv`` in the
  folder (never a comment line in a data table, which spreadsheets and CSV readers would take for
  a row); and ``<export>.anchor`` beside it too (a folder export: beside the folder), written after
  the export's own audit entry, so it is one entry newer;
- the anchor log, an append-only JSON-lines file in a second place the clinic chooses
  (``anchor_log_folder`` in the settings: another folder, a removable medium), gets a line at
  each backup (so at each session end and every backup interval while a session is recorded),
  each export, each sign-off and when a store closes (the app's close). Not at every save: one
  line per save would cost a second fsync on another disk on the bedside save path.

``kapmonitor verify --anchors …`` reads any of these (and ``#N:MAC`` typed from a printout) and
names a tail cut, a rollback to an earlier copy and a rewritten history.

What anchors cannot do: anything changed and never anchored (after the newest anchor, or before
the first) is caught only by the chain itself; an anchor the insider can also reach (a backup in
the same folder) can be cut with the file; the identity is the first entry's MAC, so a file whose
whole trail was rebuilt is reported as matching none of the anchors given (which verify counts as
a problem), not recognised as a rewrite of this database.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from kapmonitor.domain.clock import to_iso
from kapmonitor.store.errors import StoreError
from kapmonitor.store.file_modes import open_private, private_folder

if TYPE_CHECKING:
    from kapmonitor.store.verify import VerifyReport

SIDECAR_SUFFIX = ".anchor"
LOG_NAME = "kapmonitor-anchors.jsonl"
PRINTED_MAC = 16  # hex digits of the MAC printed on paper (64 bits: enough to tell copies apart)
MIN_MAC = 12  # the shortest MAC prefix accepted from a printout
HEAD_PATTERN = re.compile(
    r"Audit chain head: #(\d+) MAC ([0-9a-f]{12,64})(?: \(database ([0-9a-f]{16})\))?"
)
TYPED_PATTERN = re.compile(r"^#?(\d+):([0-9a-fA-F]{12,64})$")
#: The JSON export's top-level member holding the chain head (docs/json-format.md).
JSON_MEMBER = "audit_anchor"
#: The FHIR extension (on ``Bundle.meta``: a Bundle itself takes no extensions) holding it.
FHIR_EXTENSION = "urn:kapmonitor:fhir:audit-chain-head"
#: The CSV export's table holding it (one header line, one row), inside the export's folder.
CSV_TABLE = "audit_chain_head.csv"
CSV_COLUMNS = ("database", "entry", "mac", "written_at")


@dataclass(frozen=True)
class Anchor:
    """One recorded chain head: the database, the entry number, its MAC (or a printed prefix)."""

    db: str  # the database's identity ("" when the source does not say: a typed printout)
    entry: int
    mac: str
    at: str = ""  # when it was recorded (ISO UTC), "" when unknown
    source: str = ""  # where it was read from, for the report
    event: str = ""  # what wrote it: backup, export, verify…

    @property
    def where(self) -> str:
        when = f", {self.at}" if self.at else ""
        return f"{self.source}{when}"


def identity(db: Database) -> str:
    """The database's identity: the first 16 hex digits of its first audit entry's MAC (its
    first key marker, in a file made since the keyed chain), the same in every copy."""
    found = db.execute("SELECT hash FROM audit ORDER BY id LIMIT 1").fetchone()
    return str(found[0])[:16] if found else ""


def head(db: Database) -> Anchor | None:
    """The chain head now: the newest entry's number and MAC."""
    found = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    if found is None:
        return None
    return Anchor(identity(db), int(found[0]), str(found[1]), to_iso(datetime.now(UTC)))


def embedded(db: Database) -> dict[str, Any] | None:
    """The chain head as an export carries it inside itself: ``database`` (the identity),
    ``entry``, ``mac`` (all 64 hex digits) and ``written_at`` (when that newest entry was written,
    from the entry itself, so exporting an unchanged file twice gives the same bytes). Read on the
    export's own (snapshot) connection, it is the head as of the data exported; None when the
    trail is empty."""
    found = db.execute("SELECT id, hash, at FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    if found is None:
        return None
    return {
        "database": identity(db),
        "entry": int(found[0]),
        "mac": str(found[1]),
        "written_at": str(found[2]),
    }


def head_line(db: Database) -> str:
    """The line printed on paper: "Audit chain head: #N MAC <16 hex> (database <16 hex>)"."""
    now = head(db)
    if now is None:
        return "Audit chain head: none (no audit entries)"
    return f"Audit chain head: #{now.entry} MAC {now.mac[:PRINTED_MAC]} (database {now.db})"


def _record(anchor: Anchor, event: str, file: Path | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "at": anchor.at,
        "db": anchor.db,
        "entry": anchor.entry,
        "mac": anchor.mac,
        "event": event,
    }
    if file is not None:
        found["file"] = str(file)
    return found


def write_sidecar(db: Database, target: Path, event: str) -> Path | None:
    """Write the chain head beside ``target``, file or folder: ``<target>.anchor``."""
    now = head(db)
    if now is None:
        return None
    target = Path(target)
    sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
    with open_private(sidecar, "w", encoding="utf-8") as fh:
        json.dump(_record(now, event, target), fh, sort_keys=True)
        fh.write("\n")
    return sidecar


def log_folder() -> Path | None:
    """The anchor log's folder from this laptop's settings, or None when none is chosen."""
    from kapmonitor.settings import ANCHOR_LOG_FOLDER, Settings

    chosen = Settings().get(ANCHOR_LOG_FOLDER).strip()
    return Path(chosen).expanduser() if chosen else None


def append_to_log(db: Database, event: str, folder: Path | None = None) -> Path | None:
    """Append the chain head to the anchor log in ``folder`` (default: the setting); the log
    is opened for appending only and flushed to disk before this returns."""
    folder = folder if folder is not None else log_folder()
    now = head(db)
    if folder is None or now is None:
        return None
    private_folder(folder)
    log = Path(folder) / LOG_NAME
    line = json.dumps(_record(now, event, _database_file(db)), sort_keys=True) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return log


#: The audit action of a change of the anchor log's folder (detail: from, to).
LOG_FOLDER_CHANGED = "anchor_log_folder"


def choose_log_folder(db: Database, folder: Path, actor: str, at: datetime) -> Path:
    """Make ``folder`` this laptop's anchor log folder: checked writable first, the change
    audited (who, from where to where), the setting stored, and the chain head appended there
    at once so the new log starts with the head that records the change. Refused with a plain
    :class:`StoreError` (nothing changed) when the folder cannot be
    written. Who may do it is the caller's check (an administrator: the dialog)."""
    from kapmonitor.settings import ANCHOR_LOG_FOLDER, Settings
    from kapmonitor.store import audit

    folder = Path(folder).expanduser().resolve()
    previous = log_folder()
    try:
        private_folder(folder)
        os.close(os.open(folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StoreError(
            f"The anchor log cannot be written in {folder} ({exc.strerror or exc}); "
            "the anchor log folder was not changed.",
            "unwritable",
        ) from exc
    with db.atomic():
        detail = {"from": str(previous) if previous else None, "to": str(folder)}
        audit.event(db, actor, LOG_FOLDER_CHANGED, at, detail)
    Settings().set(ANCHOR_LOG_FOLDER, str(folder))
    try:
        append_to_log(db, "log folder chosen", folder)
    except OSError as exc:
        raise StoreError(
            f"The anchor log folder is now {folder}, but the chain head could not be written "
            f"there ({exc.strerror or exc}); check the medium and write an anchor again.",
            "unwritable",
        ) from exc
    return folder


def newest_in_log(db: Database, folder: Path | None = None) -> Anchor | None:
    """The newest line of this database in the anchor log (``folder``, default the setting),
    or None when there is no log or no line of this database in it."""
    folder = folder if folder is not None else log_folder()
    log = Path(folder) / LOG_NAME if folder is not None else None
    if log is None or not log.is_file():
        return None
    mine = identity(db)
    found = [a for a in _from_json_lines(log.read_bytes(), log) if a.db == mine]
    return found[-1] if found else None


def same_place(db: Database, folder: Path) -> str:
    """A plain warning when ``folder`` is where the database is, or on the same drive: whoever
    takes or copies the file there has the log too, so the log proves little against them.
    Empty when they are apart (or the database is in memory)."""
    database = _database_file(db)
    if database is None:
        return ""
    folder = Path(folder).expanduser().resolve()
    home = database.resolve().parent
    if folder == home or home in folder.parents or folder in home.parents:
        return (
            f"The anchor log is in the database's own folder tree ({home}): anyone with the "
            "database file there has the log too. Choose another drive or a removable medium."
        )
    with contextlib.suppress(OSError):
        if os.stat(folder).st_dev == os.stat(home).st_dev:
            return (
                "The anchor log is on the same drive as the database: whoever copies or "
                "replaces the file on this laptop can reach the log too. A removable medium or "
                "another drive kept apart is safer."
            )
    return ""


def note(db: Database, event: str, target: Path | None = None) -> list[str]:
    """Anchor the chain head after an export or backup (its sidecar and the anchor log).

    Never fails what it follows: the export or backup is already in place. Returns the plain
    sentences of anything that could not be written, for the caller to show."""
    problems: list[str] = []
    if target is not None:
        try:
            write_sidecar(db, target, event)
        except (OSError, sqlite3.Error) as exc:
            problems.append(f"the chain head could not be written beside {target} ({exc})")
    try:
        append_to_log(db, event)
    except (OSError, sqlite3.Error) as exc:
        problems.append(f"the anchor log could not be written ({exc})")
    return problems


def _database_file(db: Database) -> Path | None:
    with contextlib.suppress(sqlite3.Error, IndexError, TypeError):
        for _seq, name, file in db.execute("PRAGMA database_list").fetchall():
            if name == "main" and file:
                return Path(file)
    return None


# --- reading anchors back ---------------------------------------------------------------------


def read(source: Path | str) -> list[Anchor]:
    """Every anchor in ``source``: an anchor log, a sidecar, a backup, a PDF, an export, or a
    head typed from a printout as ``#N:MAC``. A source with none is a plain ValueError."""
    text = str(source).strip()
    typed = TYPED_PATTERN.match(text)
    if typed and not Path(text).exists():
        return [Anchor("", int(typed.group(1)), typed.group(2).lower(), source="typed head")]
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    beside = read(sidecar) if path.suffix != SIDECAR_SUFFIX and sidecar.is_file() else []
    if path.is_dir():
        inside = path / CSV_TABLE
        if inside.is_file():
            return _from_csv_table(inside, path.name) + beside
        if not beside:
            raise ValueError(
                f"{source} is a folder with neither a {CSV_TABLE} inside nor a "
                f"{sidecar.name} beside it"
            )
        return beside
    if beside and _is_sqlite(path):
        return beside  # a backup: its sidecar (an encrypted backup cannot be read here anyway)
    try:
        return _from_file(path) + beside
    except ValueError:
        if beside:
            return beside
        raise


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _from_file(path: Path) -> list[Anchor]:
    """The anchors a file holds itself (not its sidecar)."""
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        return _from_database(path)
    if path.name == CSV_TABLE:
        return _from_csv_table(path, path.name)
    found = _from_export_json(data, path)
    if found:
        return found
    found = _from_json_lines(data, path)
    if found:
        return found
    found = _from_text(data, path)
    if found:
        return found
    raise ValueError(f"{path} holds no audit chain head")


def _anchor_of(item: Any, source: str) -> list[Anchor]:
    """An embedded head (``database``, ``entry``, ``mac``, ``written_at``) as an Anchor; [] when
    ``item`` is not one."""
    try:
        entry, mac = int(item["entry"]), str(item["mac"]).lower()
        found = Anchor(str(item["database"]), entry, mac, str(item.get("written_at", "")), source)
    except (ValueError, TypeError, KeyError, AttributeError):
        return []
    if not re.fullmatch(r"[0-9a-f]{12,64}", mac):
        return []
    return [Anchor(found.db, found.entry, found.mac, found.at, source, "export")]


def _from_export_json(data: bytes, path: Path) -> list[Anchor]:
    """A JSON export's ``audit_anchor``, or a FHIR Bundle's ``meta`` extension."""
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return []
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return []
    if not isinstance(document, dict):
        return []
    if JSON_MEMBER in document:
        return _anchor_of(document[JSON_MEMBER], path.name)
    if document.get("resourceType") == "Bundle":
        meta = document.get("meta")
        extensions = meta.get("extension", []) if isinstance(meta, dict) else []
        for extension in extensions if isinstance(extensions, list) else []:
            if isinstance(extension, dict) and extension.get("url") == FHIR_EXTENSION:
                return _anchor_of(fhir_values(extension), path.name)
    return []


def fhir_extension(anchor: dict[str, Any]) -> dict[str, Any]:
    """The chain head as a FHIR R4 complex extension (one sub-extension per field)."""
    return {
        "url": FHIR_EXTENSION,
        "extension": [
            {"url": "database", "valueString": anchor["database"]},
            {"url": "entry", "valueUnsignedInt": anchor["entry"]},
            {"url": "mac", "valueString": anchor["mac"]},
            {"url": "written_at", "valueInstant": anchor["written_at"]},
        ],
    }


def fhir_values(extension: dict[str, Any]) -> dict[str, Any]:
    """The fields of :func:`fhir_extension` read back."""
    found: dict[str, Any] = {}
    for part in extension.get("extension", []):
        if isinstance(part, dict):
            values = [v for k, v in part.items() if k.startswith("value")]
            if values:
                found[str(part.get("url"))] = values[0]
    return found


def csv_table(anchor: dict[str, Any]) -> str:
    """The CSV export's ``audit_chain_head.csv``: a header line and one row (every field is hex
    digits, a number or a time, so no cell can read as a spreadsheet formula)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow([anchor[c] for c in CSV_COLUMNS])
    return out.getvalue()


def _from_csv_table(path: Path, source: str) -> list[Anchor]:
    text = path.read_bytes().decode("utf-8-sig", "replace")
    rows = list(csv.DictReader(io.StringIO(text)))
    found = [a for row in rows for a in _anchor_of(row, source)]
    if not found:
        raise ValueError(f"{path} holds no audit chain head")
    return found


def _from_json_lines(data: bytes, path: Path) -> list[Anchor]:
    found = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        try:
            item = json.loads(line)
            anchor = Anchor(
                str(item["db"]),
                int(item["entry"]),
                str(item["mac"]).lower(),
                str(item.get("at", "")),
                f"{path.name} line {number}" if path.name == LOG_NAME else path.name,
                str(item.get("event", "")),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        found.append(anchor)
    return found


def _from_text(data: bytes, path: Path) -> list[Anchor]:
    """A head printed in text: a PDF's metadata, an export's header. Qt writes a non-ASCII PDF
    string as UTF-16 hex; both forms are searched."""
    texts = [data.decode("latin-1")]
    for hexed in re.findall(rb"<FEFF([0-9A-Fa-f]+)>", data):
        with contextlib.suppress(ValueError):
            texts.append(bytes.fromhex(hexed.decode()).decode("utf-16-be", "replace"))
    found = []
    for text in texts:
        for match in HEAD_PATTERN.finditer(text):
            found.append(
                Anchor(match.group(3) or "", int(match.group(1)), match.group(2), "", path.name)
            )
    return found[:1]


def _from_database(path: Path) -> list[Anchor]:
    """A backup or copy without its sidecar: its own chain head (a plain file only)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            db = Database(conn, execute_plugins=False)
            now = head(db)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ValueError(f"{path} cannot be read ({exc}); give its .anchor file") from exc
    if now is None:
        raise ValueError(f"{path} has no audit entries")
    return [Anchor(now.db, now.entry, now.mac, "", path.name, "copy")]


# --- checking a file against them -------------------------------------------------------------


def check(db: Database, sources: Sequence[Path | str], report: VerifyReport) -> None:
    """Hold the file's chain against every anchor in ``sources``; add what is wrong to
    ``report.problems`` in plain words and count the anchors that agree."""
    mine = identity(db)
    macs = dict(db.execute("SELECT id, hash FROM audit").fetchall())
    last = max(macs) if macs else 0
    anchors: list[Anchor] = []
    for source in sources:
        try:
            found = read(source)
        except (ValueError, OSError) as exc:
            report.problems.append(f"anchor {source}: cannot be read ({exc})")
            continue
        # A log (or a renamed one: many lines of one file) holds other databases' heads too;
        # an export and its sidecar are two anchors of one database.
        is_log = Path(str(source)).name == LOG_NAME or (
            len(found) > 1 and len({a.source for a in found}) == 1
        )
        for anchor in found:
            if anchor.db and anchor.db != mine:
                if not is_log:
                    report.problems.append(
                        f"anchor {anchor.where}: belongs to another database (identity "
                        f"{anchor.db}; this file's is {mine or 'empty'})"
                    )
                continue
            anchors.append(anchor)
    if sources and not anchors:
        if not any(p.startswith("anchor ") for p in report.problems):
            report.problems.append(
                f"none of the anchors given belong to this database (identity {mine or 'empty'}): "
                "either they are another database's, or this file's trail was rebuilt from its "
                "first entry"
            )
        return
    beyond = [a for a in anchors if a.entry > last]
    rewritten = [
        a for a in anchors if a.entry <= last and not str(macs.get(a.entry, "")).startswith(a.mac)
    ]
    report.anchors_checked += len(anchors) - len(beyond) - len(rewritten)
    if rewritten:
        first = min(rewritten, key=lambda a: a.entry)
        gone = macs.get(first.entry) is None
        what = "is missing from this file" if gone else "differs from what it recorded"
        more = f" ({len(rewritten) - 1} more anchor(s) differ too)" if len(rewritten) > 1 else ""
        report.problems.append(
            f"audit entry #{first.entry} {what} (anchor {first.where}): the history was "
            f"rewritten after it was anchored{more}"
        )
    if beyond:
        furthest = max(beyond, key=lambda a: a.entry)
        file_head = macs.get(last, "")
        earlier = [a for a in anchors if a.entry == last and file_head.startswith(a.mac)]
        if earlier:
            report.problems.append(
                f"this file is an earlier copy: its trail ends at entry #{last}, as anchored by "
                f"{earlier[0].where}, but anchor {furthest.where} recorded entry "
                f"#{furthest.entry}: the database was rolled back and entries "
                f"#{last + 1}–#{furthest.entry} are missing"
            )
        else:
            report.problems.append(
                f"the trail ends at entry #{last}, but anchor {furthest.where} recorded entry "
                f"#{furthest.entry}: the end of the trail was cut (entries #{last + 1}–"
                f"#{furthest.entry} are missing), or the file was replaced by an earlier copy"
            )
