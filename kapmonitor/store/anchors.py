"""Anchors: the audit chain's head written outside the database file, to hold the file against.

A keyed chain stops someone without the key from rewriting history, but not someone with it (an
insider with a clinician's password, or anyone at all on a plain file, whose key is public), and
no chain notices its own end being cut or the whole file being swapped for an earlier copy. So the
chain head (the newest entry's number and MAC, with the database's identity) is copied to places
the file's holder cannot reach together:

- every backup gets a sidecar ``<backup>.anchor`` (JSON);
- every PDF report prints it in its footer ("Audit chain head: #N MAC …") and carries it in the
  PDF's metadata, where ``verify`` reads it back;
- every export gets ``<export>.anchor`` beside it (a folder export too: beside the folder, so
  the folder holds only what the format writes);
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
    if path.is_dir():
        if not sidecar.exists():
            raise ValueError(f"{source} is a folder without a {sidecar.name} beside it")
        return read(sidecar)
    if path.suffix != SIDECAR_SUFFIX and sidecar.exists():
        return read(sidecar)
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        return _from_database(path)
    found = _from_json_lines(data, path)
    if found:
        return found
    found = _from_text(data, path)
    if found:
        return found
    raise ValueError(f"{path} holds no audit chain head")


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
        is_log = Path(str(source)).name == LOG_NAME or len(found) > 1
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
