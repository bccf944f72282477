"""The tamper suite: each attack of issue 12, run as an insider with the file and Python's sqlite3
would, and the line ``verify`` must print for it, given the anchors a clinic has.

The clinic's file is plain (``PLAIN_KEYS``, as every unit test's): its audit key is public, so
the attacker here is the strongest one (they can recompute the keyed MAC too, as an insider with
a clinician's password could on an encrypted file). Where the chain alone cannot tell, the
anchors do: the anchor log (a line at each backup), the backups' sidecars and the signed
session's PDF, which prints the chain head. The forged-signature, password-hash-swap and
role-raise attacks are in the accounts and signatures tests.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.reports.pdf_report import write_session_pdf
from kapmonitor.settings import ANCHOR_LOG_FOLDER, Settings
from kapmonitor.store import anchors, audit, backup, key_slots
from kapmonitor.store.accounts import Accounts
from kapmonitor.store.database import StoreError
from kapmonitor.store.signoff import Review
from kapmonitor.store.verify import PLAIN_KEY_NOTE, verify_database
from tests.factories import T0, open_store

PLAIN_MAC_KEY = audit.audit_key(key_slots.PLAIN_KEYS)  # public: anyone can compute it


@dataclass(frozen=True)
class Clinic:
    """A clinic's file after a signed session, and the anchors it keeps outside the file."""

    master: Path
    session_id: str
    early_backup: Path  # taken before the signature
    late_backup: Path  # taken after it: its head is the file's head
    pdf: Path  # the signed session's report, printed after the signature
    log: Path  # the anchor log on the clinic's second medium

    @property
    def anchors(self) -> list[Path]:
        return [self.log, self.pdf, self.late_backup]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    root = tmp_path_factory.mktemp("clinic")
    settings = Settings()
    settings.set(ANCHOR_LOG_FOLDER, str(root / "usb-stick"))
    try:
        clock = FakeClock(T0)
        store = open_store(root / "clinic.sqlite", clock)
        for _ in record_demo(store, clock, T0, 0.0, random.Random(7)):
            pass
        accounts = Accounts(store.db, clock)
        admin = accounts.create_first_administrator("admin", "Alex Admin", "alpine-harbour-7")
        accounts.create_user(admin, "chen", "Dr M. Chen", "supervisor", "copper-meadow-9")
        session_id = store.list_sessions()[0]["id"]
        early = backup.take_backup(store.path).path
        clock.advance(hours=20)
        review = Review(store)
        flags = [f.key for f in review.quality_flags(session_id)]
        review.sign(session_id, "chen", "copper-meadow-9", confirmed=flags)
        store.close()
        pdf = root / "signed-report.pdf"
        write_session_pdf(root / "clinic.sqlite", session_id, pdf)
        late = backup.take_backup(root / "clinic.sqlite", root / "backups-2").path
        yield Clinic(
            root / "clinic.sqlite",
            session_id,
            early,
            late,
            pdf,
            root / "usb-stick" / anchors.LOG_NAME,
        )
    finally:
        settings.set(ANCHOR_LOG_FOLDER, "")


@pytest.fixture
def copy(clinic: Clinic, tmp_path: Path) -> Path:
    """The clinic's file as the insider found it (a copy: each attack starts afresh)."""
    target = tmp_path / "clinic.sqlite"
    shutil.copyfile(clinic.master, target)
    return target


# --- the insider's tools ------------------------------------------------------------------------


class Insider(sqlite3.Connection):
    """Python's sqlite3 on the file, with every trigger dropped for the edit and put back exactly
    as it was on commit, so the schema shows no trace: what is left to find is the edit."""

    saved: list[str]

    def commit(self) -> None:
        for sql in self.saved:
            self.execute(sql)
        self.saved = []
        super().commit()


def insider(path: Path) -> Insider:
    conn = sqlite3.connect(path, factory=Insider)
    conn.row_factory = sqlite3.Row
    found = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    conn.saved = [row["sql"] for row in found]
    for row in found:
        conn.execute(f"DROP TRIGGER {row['name']}")
    return conn


def trail(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute("SELECT * FROM audit ORDER BY id")]


def rewrite_trail(
    conn: sqlite3.Connection,
    edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    key: bytes | None,
) -> None:
    """Renumber the trail 1..n after ``edit`` and recompute every link from the first changed
    entry on: with the keyed MAC under ``key``, or (None) with the public unkeyed SHA-256."""
    old = trail(conn)
    new = edit([dict(e) for e in old])
    conn.execute("DELETE FROM audit")
    previous, changed = audit.GENESIS, False
    for number, entry in enumerate(new, 1):
        fields = {name: entry[name] for name in audit.CHAINED_FIELDS}
        before = old[number - 1] if number <= len(old) else None
        changed = changed or before is None or before != entry
        if changed:
            digest = (
                audit.entry_mac(key, previous, fields)
                if key is not None
                else audit.entry_hash(previous, fields)
            )
        else:
            digest = entry["hash"]
        conn.execute(
            "INSERT INTO audit (id, at, actor, action, session_id, table_name, row_id, row_hash, "
            "detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [number, *fields.values(), previous, digest],
        )
        previous = digest


def row_hash_now(conn: sqlite3.Connection, table: str, rowid: int) -> str:
    row = conn.execute(f"SELECT * FROM {table} WHERE rowid = ?", [rowid]).fetchone()
    return audit.row_hash(audit.hashed_content(table, dict(row)))


def entry_of(conn: sqlite3.Connection, table: str, rowid: int) -> int:
    return int(
        conn.execute(
            "SELECT min(id) FROM audit WHERE table_name = ? AND row_id = ?", [table, rowid]
        ).fetchone()[0]
    )


def signed_vital(conn: sqlite3.Connection, session_id: str) -> int:
    return int(
        conn.execute(
            "SELECT id FROM vitals WHERE session_id = ? AND sbp IS NOT NULL ORDER BY id "
            "LIMIT 1 OFFSET 2",
            [session_id],
        ).fetchone()[0]
    )


def anchored(clinic: Clinic) -> list[anchors.Anchor]:
    return [a for source in clinic.anchors for a in anchors.read(source)]


def problems(path: Path, clinic: Clinic) -> list[str]:
    return verify_database(path, anchors=clinic.anchors).problems


def chain_lines(found: list[str]) -> list[str]:
    """The audit chain's, the schema's and the anchors' lines, less the signature checks' (a
    defence of its own, tested with the signatures: an edit inside a signed session is named
    there too)."""
    return [p for p in found if not p.startswith("signature #")]


# --- the untouched file ---------------------------------------------------------------------


def test_the_untouched_file_agrees_with_every_anchor_and_says_what_its_ok_rests_on(
    clinic: Clinic, copy: Path
) -> None:
    report = verify_database(copy, anchors=clinic.anchors)
    assert report.ok, report.lines
    # The log's lines (backups, the sign-off, closing the app), the PDF's printed head, the backup.
    kept = anchored(clinic)
    assert {"backup", "sign-off", "close"} <= {a.event for a in anchors.read(clinic.log)}
    assert report.anchors_checked == len(kept) > 3
    assert report.lines[0].endswith(f"; {len(kept)} anchor(s) agree.")
    assert PLAIN_KEY_NOTE in report.lines  # a plain file: its audit key is public
    heads = {(a.entry, a.mac[:16]) for a in anchored(clinic) if a.source != "signed-report.pdf"}
    printed = anchors.read(clinic.pdf)[0]
    assert (printed.entry, printed.mac) in heads  # the PDF printed the head of the signed file


# --- edit and recompute -------------------------------------------------------------------------


def _edit_signed_vital(conn: sqlite3.Connection, session_id: str) -> tuple[int, int]:
    vital = signed_vital(conn, session_id)
    conn.execute("UPDATE vitals SET sbp = 138, dbp = 84, spo2 = 95 WHERE id = ?", [vital])
    return vital, entry_of(conn, "vitals", vital)


def test_edit_a_signed_vital_and_recompute_the_chain_with_the_public_hash(
    clinic: Clinic, copy: Path
) -> None:
    conn = insider(copy)
    vital, entry = _edit_signed_vital(conn, clinic.session_id)
    digest = row_hash_now(conn, "vitals", vital)

    def edit(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries[entry - 1]["row_hash"] = digest
        return entries

    rewrite_trail(conn, edit, key=None)  # the unkeyed SHA-256 chain every older version used
    conn.commit()
    last = len(trail(conn))
    found = problems(copy, clinic)
    assert found[0] == (
        f"audit entries #{entry}–#{last}: rewritten with the public unkeyed hash where the keyed "
        "MAC belongs (the chain was recomputed without the database's audit key)"
    )


def test_edit_a_signed_vital_and_recompute_with_the_public_key_is_caught_by_the_anchors(
    clinic: Clinic, copy: Path
) -> None:
    """A plain file's key is public (as a clinician's password makes an encrypted file's key
    known): the chain verifies, and only the anchors can tell."""
    conn = insider(copy)
    vital, entry = _edit_signed_vital(conn, clinic.session_id)
    digest = row_hash_now(conn, "vitals", vital)

    def edit(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries[entry - 1]["row_hash"] = digest
        return entries

    rewrite_trail(conn, edit, key=PLAIN_MAC_KEY)
    conn.commit()
    alone = verify_database(copy)
    assert chain_lines(alone.problems) == []  # what the chain alone cannot see
    assert PLAIN_KEY_NOTE in alone.lines
    first = min(a.entry for a in anchored(clinic))
    found = chain_lines(problems(copy, clinic))
    assert len(found) == 1
    assert found[0].startswith(f"audit entry #{first} differs from what it recorded (anchor ")
    assert found[0].endswith(
        "the history was rewritten after it was anchored "
        f"({len(anchored(clinic)) - 1} more anchor(s) differ too)"
    )


def test_an_appended_shadow_entry_for_an_edited_row_is_named(clinic: Clinic, copy: Path) -> None:
    """Verify checks every entry of a row, not the latest: a new, well-chained entry recording
    the edited content does not cover the edit."""
    conn = insider(copy)
    vital, entry = _edit_signed_vital(conn, clinic.session_id)
    digest = row_hash_now(conn, "vitals", vital)
    shadow = len(trail(conn)) + 1

    def edit(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        copied = dict(entries[entry - 1], row_hash=digest, at=entries[-1]["at"])
        return [*entries, copied]

    rewrite_trail(conn, edit, key=PLAIN_MAC_KEY)
    conn.commit()
    assert chain_lines(problems(copy, clinic)) == [
        f"vitals row {vital}: a second audit entry #{shadow} (insert by Dr. A. Rivera) was added "
        f"for a row already recorded by entry #{entry} (an entry appended to cover an edit)",
        f"vitals row {vital}: altered after it was recorded (audit entry #{entry})",
    ]


# --- delete, renumber, splice -------------------------------------------------------------------


def test_an_adverse_event_and_its_outcome_deleted_and_the_chain_renumbered(
    clinic: Clinic, copy: Path
) -> None:
    conn = insider(copy)
    event = conn.execute("SELECT id FROM adverse_events ORDER BY id LIMIT 1").fetchone()[0]
    outcomes = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM adverse_event_outcomes WHERE adverse_event_id = ?", [event]
        )
    ]
    assert outcomes
    gone = {("adverse_events", event), *(("adverse_event_outcomes", o) for o in outcomes)}
    conn.execute("DELETE FROM adverse_event_outcomes WHERE adverse_event_id = ?", [event])
    conn.execute("DELETE FROM adverse_events WHERE id = ?", [event])
    first_gone = min(entry_of(conn, t, r) for t, r in gone)
    rewrite_trail(
        conn,
        lambda es: [e for e in es if (e["table_name"], e["row_id"]) not in gone],
        key=PLAIN_MAC_KEY,
    )
    conn.commit()
    # Renumbered and recomputed: the chain alone is satisfied.
    assert chain_lines(verify_database(copy).problems) == []
    found = chain_lines(problems(copy, clinic))
    early = min(a.entry for a in anchored(clinic))
    assert early > first_gone  # the early backup anchored a head after the event was recorded
    assert found[0].startswith(f"audit entry #{early} differs from what it recorded (anchor ")
    assert found[1].startswith(f"the trail ends at entry #{len(trail(conn))}, but anchor ")
    assert "the end of the trail was cut" in found[1]


def test_a_whole_session_removed_with_its_audit_entries(clinic: Clinic, copy: Path) -> None:
    conn = insider(copy)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT table_name FROM audit WHERE session_id = ?", [clinic.session_id]
        )
        if r[0]
    ]
    conn.execute("PRAGMA foreign_keys = OFF")
    for table in tables:
        column = "id" if table == "sessions" else "session_id"
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [clinic.session_id])
    rewrite_trail(
        conn, lambda es: [e for e in es if e["session_id"] != clinic.session_id], PLAIN_MAC_KEY
    )
    conn.commit()
    found = chain_lines(problems(copy, clinic))
    # Every anchor was taken after the session was recorded: each lies beyond the shorter trail.
    last = len(trail(conn))
    assert len(found) == 1
    assert found[0].startswith(f"the trail ends at entry #{last}, but anchor ")
    assert "the end of the trail was cut" in found[0]


def test_a_back_dated_baseline_spliced_into_the_chain_in_time_order(
    clinic: Clinic, copy: Path
) -> None:
    conn = insider(copy)
    first = conn.execute(
        "SELECT * FROM vitals WHERE session_id = ? ORDER BY observed_at LIMIT 1",
        [clinic.session_id],
    ).fetchone()
    columns = [k for k in first.keys() if k != "id"]  # noqa: SIM118 (sqlite3.Row)
    values = dict(first)
    values.update(observed_at="2026-03-02T09:00:00.000Z", recorded_at="2026-03-02T09:00:20.000Z")
    values.update(hr=72, sbp=118, dbp=76, spo2=98)
    cursor = conn.execute(
        f"INSERT INTO vitals ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [values[c] for c in columns],
    )
    new_id = cursor.lastrowid
    digest = row_hash_now(conn, "vitals", new_id)
    at = entry_of(conn, "vitals", first["id"])

    def splice(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        model = entries[at - 1]
        spliced = dict(model, row_id=new_id, row_hash=digest, at=values["recorded_at"])
        return [*entries[: at - 1], spliced, *entries[at - 1 :]]

    rewrite_trail(conn, splice, PLAIN_MAC_KEY)
    conn.commit()
    # Spliced with the (public) key: the chain is satisfied.
    assert chain_lines(verify_database(copy).problems) == []
    early = min(a.entry for a in anchored(clinic))
    found = chain_lines(problems(copy, clinic))
    assert found[0].startswith(f"audit entry #{early} differs from what it recorded (anchor ")


# --- the tail cut and the rollback --------------------------------------------------------------


def test_the_tail_cut_with_no_hashing_at_all(clinic: Clinic, copy: Path) -> None:
    """The last three entries and the rows they record are deleted: what is left is a sound
    chain, shorter than the anchors say."""
    conn = insider(copy)
    cut = trail(conn)[-3:]
    conn.execute("PRAGMA foreign_keys = OFF")
    for entry in cut:
        if entry["table_name"]:
            conn.execute(f"DELETE FROM {entry['table_name']} WHERE rowid = ?", [entry["row_id"]])
        conn.execute("DELETE FROM audit WHERE id = ?", [entry["id"]])
    conn.commit()
    assert verify_database(copy).ok  # nothing in the file can tell
    last, end = cut[0]["id"] - 1, cut[-1]["id"]
    found = problems(copy, clinic)
    assert len(found) == 1
    assert found[0].startswith(f"the trail ends at entry #{last}, but anchor ")
    assert found[0].endswith(
        f"recorded entry #{end}: the end of the trail was cut (entries #{last + 1}–#{end} are "
        "missing), or the file was replaced by an earlier copy"
    )


def test_the_file_replaced_by_an_earlier_backup(clinic: Clinic, copy: Path) -> None:
    """The rollback: the supervisor's signature vanished with the newer file."""
    shutil.copyfile(clinic.early_backup, copy)
    early = anchors.read(clinic.early_backup)[0]
    conn = sqlite3.connect(copy)
    assert conn.execute("SELECT count(*) FROM signatures").fetchone()[0] == 0
    conn.close()
    assert verify_database(copy).ok  # a sound file, just an old one
    found = verify_database(copy, anchors=[clinic.log, clinic.pdf]).problems
    line = next(
        n
        for n, a in enumerate(anchors.read(clinic.log), 1)
        if (a.entry, a.mac) == (early.entry, early.mac)
    )
    assert len(found) == 1
    assert found[0].startswith(
        f"this file is an earlier copy: its trail ends at entry #{early.entry}, as anchored by "
        f"{anchors.LOG_NAME} line {line}, "
    )
    assert "the database was rolled back and entries" in found[0]


# --- the schema: dropped, rewritten and planted triggers ------------------------------------------


def test_every_trigger_dropped(clinic: Clinic, copy: Path) -> None:
    conn = sqlite3.connect(copy)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for name in names:
        conn.execute(f"DROP TRIGGER {name}")
    conn.commit()
    conn.close()
    found = problems(copy, clinic)
    assert len(found) == 1
    assert found[0].startswith(
        f"the file's structure was changed outside KAP Monitor: {len(names)} objects missing "
        "(trigger "
    )
    with pytest.raises(StoreError, match="structure was changed outside KAP Monitor") as refused:
        open_store(copy)
    assert refused.value.kind == "schema"


def test_a_trigger_and_a_check_rewritten_through_writable_schema(
    clinic: Clinic, copy: Path
) -> None:
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, 'WHEN EXISTS', 'WHEN 0 AND EXISTS') "
        "WHERE name = 'vitals_signed_lock'"
    )
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, 'spo2 BETWEEN 0 AND 100', "
        "'spo2 BETWEEN 0 AND 1000') WHERE name = 'vitals'"
    )
    conn.commit()
    conn.close()
    conn = sqlite3.connect(copy)  # the rewritten schema is read afresh
    row = dict(
        zip(
            [c[1] for c in conn.execute("PRAGMA table_info(vitals)")],
            conn.execute(
                "SELECT * FROM vitals WHERE session_id = ? LIMIT 1", [clinic.session_id]
            ).fetchone(),
            strict=True,
        )
    )
    row.pop("id")
    row["spo2"] = 400
    conn.execute(
        f"INSERT INTO vitals ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
        list(row.values()),
    )  # into the signed session, past the CHECK
    new_id = conn.execute("SELECT max(id) FROM vitals").fetchone()[0]
    conn.commit()
    conn.close()
    assert chain_lines(problems(copy, clinic)) == [
        "the file's structure was changed outside KAP Monitor: 2 objects rewritten "
        "(table vitals, trigger vitals_signed_lock)",
        f"vitals row {new_id}: inserted outside the app (no audit entry)",
    ]


def test_a_planted_after_insert_trigger_stops_the_app_writing(clinic: Clinic, copy: Path) -> None:
    """The planted trigger would store 138/84 and SpO2 95 for a typed 212/118 and 87, and no
    critical alarm would fire: the app refuses to write to the file at all."""
    conn = sqlite3.connect(copy)
    conn.execute("DROP TRIGGER vitals_no_update")
    conn.execute(
        "CREATE TRIGGER vitals_calm AFTER INSERT ON vitals BEGIN "
        "UPDATE vitals SET sbp = 138, dbp = 84, spo2 = 95 WHERE id = NEW.id; END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as refused:
        open_store(copy)
    assert refused.value.kind == "schema"
    assert str(refused.value) == (
        f"{copy}: this file's structure was changed outside KAP Monitor: trigger "
        "vitals_no_update is missing; trigger vitals_calm was not made by KAP Monitor. Nothing "
        "was written to it; it can be opened read-only and verified (kapmonitor verify)."
    )
    assert problems(copy, clinic) == [
        "the file's structure was changed outside KAP Monitor: trigger vitals_no_update is missing",
        "the file's structure was changed outside KAP Monitor: trigger vitals_calm was not made "
        "by KAP Monitor",
    ]


# --- a killed writer's WAL, cut or flipped --------------------------------------------------------

WRITER = """
import os, signal, sys
from datetime import timedelta
from pathlib import Path
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import VitalSigns
from kapmonitor.settings import ANCHOR_LOG_FOLDER, Settings
from kapmonitor.store import backup
from tests.factories import T0, open_store, session_start

path, usb = Path(sys.argv[1]), sys.argv[2]
Settings().set(ANCHOR_LOG_FOLDER, usb)
clock = FakeClock(T0)
open_store(path, clock).close()  # the new file, checkpointed: its schema and first entry
store = open_store(path, clock)
store.db.execute("PRAGMA wal_autocheckpoint = 0")  # the session stays in the WAL
session_id = store.start_session(session_start(clock), "Dr A")
for minute in range(6):
    clock.advance(minutes=1)
    store.add(session_id, VitalSigns(clock.now(), hr=70 + minute, sbp=120, dbp=80), "Dr A")
backup.take_backup(path, path.parent / "backups")  # anchors the head, in the WAL
print("anchored", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the writer dies: no checkpoint, no clean close
"""


def _killed_writer(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "bedside.sqlite"
    usb = tmp_path / "usb"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(usb)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "anchored" in done.stdout
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0
    return path, usb / anchors.LOG_NAME


def _frames(wal: Path) -> tuple[int, int]:
    """The WAL's page size and frame count (32-byte header; each frame 24 bytes + a page)."""
    data = wal.read_bytes()
    page = int.from_bytes(data[8:12], "big")
    return page, (len(data) - 32) // (24 + page)


def test_the_wal_cut_after_a_killed_writer(tmp_path: Path) -> None:
    path, log = _killed_writer(tmp_path)
    wal = Path(f"{path}-wal")
    page, frames = _frames(wal)
    with wal.open("r+b") as fh:  # the last half of the frames gone
        fh.truncate(32 + (frames // 2) * (24 + page))
    Path(f"{path}-shm").unlink()  # as after a reboot: the index is rebuilt from the WAL
    anchor = anchors.read(log)[-1]
    found = verify_database(path, anchors=[log]).problems
    assert len(found) == 1
    assert found[0].startswith("the trail ends at entry #")
    assert f"recorded entry #{anchor.entry}: the end of the trail was cut" in found[0]


def test_one_byte_flipped_in_the_wal_after_a_killed_writer(tmp_path: Path) -> None:
    path, log = _killed_writer(tmp_path)
    wal = Path(f"{path}-wal")
    page, frames = _frames(wal)
    where = 32 + (frames // 3) * (24 + page) + 24 + page // 2  # inside a page a third in
    data = bytearray(wal.read_bytes())
    data[where] ^= 0x01
    wal.write_bytes(bytes(data))
    Path(f"{path}-shm").unlink()
    anchor = anchors.read(log)[-1]
    found = verify_database(path, anchors=[log]).problems
    assert len(found) == 1
    assert f"recorded entry #{anchor.entry}: the end of the trail was cut" in found[0]


# --- the guarded role -----------------------------------------------------------------------------


def test_a_role_raised_with_sql_is_refused_by_the_database(clinic: Clinic, copy: Path) -> None:
    conn = sqlite3.connect(copy)
    with pytest.raises(sqlite3.OperationalError, match="kapmonitor_authorised"):
        conn.execute("UPDATE users SET role = 'supervisor' WHERE username = 'admin'")
    conn.close()
    store = open_store(copy)  # even the app's own connection, outside the audited path
    with pytest.raises(sqlite3.IntegrityError, match="a role is changed only by an administrator"):
        store.db.execute("UPDATE users SET role = 'clinician' WHERE username = 'chen'")
    (chen,) = store.db.execute("SELECT id FROM users WHERE username = 'chen'").fetchone()
    with audit.authorise(store.db, "role", chen):  # the audited path's authorisation
        store.db.execute("UPDATE users SET role = 'clinician' WHERE id = ?", [chen])
    store.db.conn.rollback()
    store.close()
