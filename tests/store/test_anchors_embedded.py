"""The chain head inside each export (JSON, FHIR, CSV), read back by ``verify --anchors`` from
the export alone, without its ``.anchor`` sidecar: a clinic that kept only the file it sent (to a
patient record, a spreadsheet, another laptop) still holds the database against it.

Each attack is the insider's, on a plain file (its audit key is public, so the chain alone cannot
tell): the tail cut, the file replaced by an earlier copy, a history rewritten and rechained.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from kapmonitor.demo import record_demo
from kapmonitor.domain.clock import FakeClock
from kapmonitor.reports.export_registry import run_export
from kapmonitor.store import anchors, audit, key_slots
from kapmonitor.store.verify import verify_database
from tests.factories import T0, open_store

PLAIN_MAC_KEY = audit.audit_key(key_slots.PLAIN_KEYS)  # public: anyone can compute it
FORMATS = ("json", "fhir", "csv")


@dataclass(frozen=True)
class Exported:
    master: Path  # the clinic's file after the exports
    earlier: Path  # a copy of the file taken before the second session
    files: dict[str, Path]  # format -> the export (a folder for CSV), sidecar removed
    heads: dict[str, int]  # format -> the entry number the export carries


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("embedded")
    clock = FakeClock(T0)
    store = open_store(root / "clinic.sqlite", clock)
    for _ in record_demo(store, clock, T0, 0.0, random.Random(3)):
        pass
    store.db.conn.commit()
    store.close()
    shutil.copyfile(root / "clinic.sqlite", root / "earlier.sqlite")
    clock.advance(days=1)
    store = open_store(root / "clinic.sqlite", clock)
    for _ in record_demo(store, clock, clock.now(), 0.0, random.Random(5)):
        pass
    session_id = store.list_sessions()[0]["id"]
    files: dict[str, Path] = {}
    heads: dict[str, int] = {}
    for fmt in FORMATS:
        suffix = {"json": ".json", "fhir": ".fhir.json", "csv": ""}[fmt]
        out = run_export(
            store.db, fmt, [session_id], root / f"out-{fmt}{suffix}", "tester", clock.now()
        )
        sidecar = out.with_name(out.name + anchors.SIDECAR_SUFFIX)
        assert sidecar.exists()
        sidecar.unlink()  # the export alone
        files[fmt] = out
        (found,) = anchors.read(out)
        heads[fmt] = found.entry
    store.close()
    return Exported(root / "clinic.sqlite", root / "earlier.sqlite", files, heads)


@pytest.fixture
def copy(exported: Exported, tmp_path: Path) -> Path:
    target = tmp_path / "clinic.sqlite"
    shutil.copyfile(exported.master, target)
    return target


class Insider(sqlite3.Connection):
    """sqlite3 on the file with every trigger dropped for the edit and put back exactly as it
    was on commit, so the schema shows no trace (the insider's tool)."""

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


def test_each_export_carries_the_head_as_of_its_data(exported: Exported) -> None:
    json_doc = json.loads(exported.files["json"].read_text(encoding="utf-8"))
    bundle = json.loads(exported.files["fhir"].read_text(encoding="utf-8"))
    conn = sqlite3.connect(exported.master)
    macs = dict(conn.execute("SELECT id, hash FROM audit").fetchall())
    times = dict(conn.execute("SELECT id, at FROM audit").fetchall())
    conn.close()
    anchor = json_doc["audit_anchor"]
    assert set(anchor) == {"database", "entry", "mac", "written_at"}
    assert anchor["mac"] == macs[anchor["entry"]]
    assert anchor["written_at"] == times[anchor["entry"]]
    (extension,) = bundle["meta"]["extension"]
    assert extension["url"] == anchors.FHIR_EXTENSION
    fhir_anchor = anchors.fhir_values(extension)
    assert fhir_anchor["mac"] == macs[fhir_anchor["entry"]]
    table = (exported.files["csv"] / anchors.CSV_TABLE).read_text(encoding="utf-8-sig")
    assert table.splitlines()[0] == "database,entry,mac,written_at"
    # Each export's own audit entry is written after its files, so each head is one newer.
    assert exported.heads["fhir"] == exported.heads["json"] + 1
    assert exported.heads["csv"] == exported.heads["fhir"] + 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_intact_file_agrees_with_the_export_alone(exported: Exported, fmt: str) -> None:
    report = verify_database(exported.master, anchors=[exported.files[fmt]])
    assert report.ok, report.problems
    assert report.anchors_checked == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_tail_cut_is_named_from_the_export_alone(
    exported: Exported, copy: Path, fmt: str
) -> None:
    conn = insider(copy)
    conn.execute("PRAGMA foreign_keys = OFF")
    cut = exported.heads[fmt] - 2  # the export's head and the two entries before it, and on
    for entry in conn.execute("SELECT * FROM audit WHERE id >= ?", [cut]).fetchall():
        if entry["table_name"]:
            conn.execute(f"DELETE FROM {entry['table_name']} WHERE rowid = ?", [entry["row_id"]])
    conn.execute("DELETE FROM audit WHERE id >= ?", [cut])
    conn.commit()
    conn.close()
    assert verify_database(copy).ok  # nothing in the file can tell
    (found,) = verify_database(copy, anchors=[exported.files[fmt]]).problems
    assert found.startswith(f"the trail ends at entry #{cut - 1}, but anchor ")
    assert f"recorded entry #{exported.heads[fmt]}: the end of the trail was cut" in found


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_rollback_to_an_earlier_copy_is_named_from_the_export_alone(
    exported: Exported, copy: Path, fmt: str
) -> None:
    shutil.copyfile(exported.earlier, copy)
    assert verify_database(copy).ok  # a sound file, just an old one
    (found,) = verify_database(copy, anchors=[exported.files[fmt]]).problems
    assert f"recorded entry #{exported.heads[fmt]}" in found
    assert "or the file was replaced by an earlier copy" in found


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_rewritten_history_is_named_from_the_export_alone(
    exported: Exported, copy: Path, fmt: str
) -> None:
    """An entry before the export's head is changed and the chain recomputed from it with the
    plain file's public key: the chain is sound again, the export's MAC no longer matches."""
    conn = insider(copy)
    entries = [dict(row) for row in conn.execute("SELECT * FROM audit ORDER BY id")]
    target = max(  # an entry before the export's head whose time can be moved back
        n for n in range(2, exported.heads[fmt]) if entries[n - 1]["at"] != entries[n - 2]["at"]
    )
    entries[target - 1]["at"] = entries[target - 2]["at"]  # back-dated: one field, no row
    previous = entries[target - 2]["hash"]
    for entry in entries[target - 1 :]:
        fields = {name: entry[name] for name in audit.CHAINED_FIELDS}
        digest = audit.entry_mac(PLAIN_MAC_KEY, previous, fields)
        conn.execute(
            "UPDATE audit SET at = ?, prev_hash = ?, hash = ? WHERE id = ?",
            [entry["at"], previous, digest, entry["id"]],
        )
        previous = digest
    conn.commit()
    conn.close()
    assert verify_database(copy).ok  # rechained with the public key: the chain cannot tell
    (found,) = verify_database(copy, anchors=[exported.files[fmt]]).problems
    assert found.startswith(f"audit entry #{exported.heads[fmt]} differs from what it recorded")
    assert "the history was rewritten after it was anchored" in found


def test_a_file_holding_no_head_is_refused_plainly(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"format": "kapmonitor-session", "tables": {}}))
    with pytest.raises(ValueError, match="holds no audit chain head"):
        anchors.read(plain)
    folder = tmp_path / "csv"
    folder.mkdir()
    with pytest.raises(ValueError, match=f"neither a {anchors.CSV_TABLE} inside"):
        anchors.read(folder)
