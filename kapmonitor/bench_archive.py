"""The archive half of ``kapmonitor bench``: a clinic's years of sessions, and the review list.

Builds N sessions (about 75 clinical rows each plus their audit entries: 10,000 sessions are
about 1.5 million rows) in bulk, then times what a supervisor waits for: opening the review
list, applying a filter, opening one session.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kapmonitor.bench_table import Row, timed

VITALS_PER_SESSION = 30
PATIENTS = 800


def build_archive(path: Path, sessions: int, seed: int = 11) -> int:
    """Write ``sessions`` sessions in bulk, sealed into the audit trail; returns the row count."""
    from kapmonitor import __version__
    from kapmonitor.domain.clock import FakeClock, to_iso
    from kapmonitor.domain.protocol import load_protocols
    from kapmonitor.paths import resources_dir
    from kapmonitor.store import audit
    from kapmonitor.store.session_store import SessionStore

    protocol = load_protocols([resources_dir() / "protocols"]).protocols["clinic-ketamine"]
    protocol_json = json.dumps(protocol.to_dict(), sort_keys=True)
    rng = random.Random(seed)
    first = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    clock = FakeClock(first)
    store = SessionStore.open(path, clock)
    eligibility = json.dumps({c.code: True for c in store.ref.choices("eligibility_checklist")})
    meds = json.dumps({c.code: False for c in store.ref.choices("concomitant_medicines")})
    batch = 500
    for offset in range(0, sessions, batch):
        session_rows = []
        tables: dict[str, list[tuple]] = {name: [] for name in TABLE_COLUMNS}
        for index in range(offset, min(sessions, offset + batch)):
            start = first + timedelta(hours=index * 7)
            session_id = uuid.UUID(int=rng.getrandbits(128)).hex
            stamp = to_iso(start)
            session_rows.append(
                (
                    session_id,
                    f"KAP-{rng.randrange(PATIENTS):04d}",
                    "female",
                    70.0,
                    "trd",
                    eligibility,
                    meds,
                    180,
                    __version__,
                    stamp,
                    stamp,
                    "Dr Bench",
                    40,
                )
            )
            for table, found in _rows_for(rng, session_id, start, protocol_json).items():
                tables[table].extend(found)
        with store.db.atomic():
            store.db.conn.executemany(
                "INSERT INTO sessions (id, patient_code, sex, weight_kg, indication, eligibility, "
                "concomitant_medicines, session_limit_minutes, app_version, observed_at, "
                "recorded_at, recorded_by, age_years) "
                f"VALUES ({', '.join('?' * 13)})",
                session_rows,
            )
            last_vitals = store.db.execute("SELECT coalesce(max(id), 0) FROM vitals").fetchone()[0]
            for table, found in tables.items():
                columns = TABLE_COLUMNS[table]
                store.db.conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    found,
                )
            # Each vitals set has its NEWS2 row, as the app writes it.
            store.db.execute(
                "INSERT INTO vital_scores (session_id, observed_at, recorded_at, recorded_by, "
                "vitals_id, news2_total, news2_band, news2_parts, news2_missing) "
                "SELECT session_id, observed_at, recorded_at, recorded_by, id, 1, 'low', '{}', "
                "'[]' FROM vitals WHERE id > ?",
                [last_vitals],
            )
            audit.seal(store.db, "bench", "insert", clock.now())
    total = sum(
        store.db.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0]
        for t in audit.audited_tables(store.db)
    )
    total += store.db.execute("SELECT count(*) FROM audit").fetchone()[0]
    store.close()
    return total


def archive_rows(path: Path, sessions: int) -> list[Row]:
    """Build the archive and time the review list, a filter and opening one session."""
    from kapmonitor.store.archive import ArchiveFilter, list_sessions
    from kapmonitor.store.database import connect
    from kapmonitor.store.session_store import SessionStore

    t0 = time.perf_counter()
    total = build_archive(path, sessions)
    built = time.perf_counter() - t0
    db = connect(path)
    try:
        listing = list_sessions(db)
        opening = timed(lambda: list_sessions(db), 5)
        filtering = timed(lambda: list_sessions(db, ArchiveFilter(patient_code="KAP-04")), 5)
        adverse = timed(lambda: list_sessions(db, ArchiveFilter(has_adverse_effects=True)), 5)
        floor = timed(lambda: db.execute("SELECT id FROM sessions").fetchall(), 5)
    finally:
        db.close()
    store = SessionStore.open(path)
    try:
        some = [row.session_id for row in listing[:: max(1, len(listing) // 5)]][:5]
        loading = [timed(lambda sid=sid: store.load(sid), 1)[0] for sid in some]
    finally:
        store.close()
    label = f"{sessions:,} sessions, {total / 1e6:.2f} M rows"
    return [
        Row(
            f"archive ({label}): open the review list, median",
            statistics.median(opening),
            "ms",
            "≤ 200 ms",
            statistics.median(floor),
            "SELECT id FROM sessions",
            f"built in {built:.0f} s",
        ),
        Row(
            "  … apply a filter (patient code), median",
            statistics.median(filtering),
            "ms",
            "≤ 200 ms",
        ),
        Row(
            "  … apply a filter (has adverse effects), median",
            statistics.median(adverse),
            "ms",
            "≤ 200 ms",
        ),
        Row("  … open one session, median", statistics.median(loading), "ms", "≤ 150 ms"),
    ]


def _rows_for(
    rng: random.Random, session_id: str, start: datetime, protocol_json: str
) -> dict[str, list[tuple]]:
    from kapmonitor.domain.clock import to_iso

    def at(minutes: float) -> str:
        return to_iso(start + timedelta(minutes=minutes))

    who = ("Dr Bench", "Nurse Bench")
    rows: dict[str, list[tuple]] = {name: [] for name in TABLE_COLUMNS}
    rows["session_clinicians"] = [
        (session_id, name, i, at(0), at(0), who[0]) for i, name in enumerate(who)
    ]
    rows["session_protocols"] = [
        (
            session_id,
            at(0),
            at(0),
            who[0],
            "clinic-ketamine",
            "Clinic default",
            1,
            protocol_json,
            "built-in",
        )
    ]
    rows["phase_changes"] = [
        (session_id, at(m), at(m), who[0], phase)
        for m, phase in ((0, "preparation"), (10, "dosing"), (40, "monitoring"), (110, "recovery"))
    ]
    mg = rng.choice((35, 40, 50, 56, 60, 70))
    rows["doses"] = [
        (session_id, at(10), at(10), who[1], "ketamine", "im", mg, round(mg / 70, 3), 0)
    ]
    peak = rng.randint(0, 50)
    for i in range(VITALS_PER_SESSION):
        minute = 5 + i * 5
        rise = peak * max(0.0, 1 - abs(minute - 50) / 50)
        rows["vitals"].append(
            (
                session_id,
                at(minute),
                at(minute),
                who[i % 2],
                72 + rng.randint(-5, 8),
                int(122 + rise),
                int(78 + rise / 2),
                rng.choice((95, 97, 98, 99)),
                14,
            )
        )
    for i in range(8):
        rows["observations"].append(
            (
                session_id,
                at(15 + i * 15),
                at(15 + i * 15),
                who[1],
                rng.randint(2, 5),
                rng.randint(0, 3),
            )
        )
    rows["interventions"] = [
        (session_id, at(12), at(12), who[0], "music", "Playlist started"),
        (session_id, at(60), at(60), who[1], "note", "Calm"),
    ]
    if rng.random() < 0.2:
        rows["adverse_events"].append(
            (
                session_id,
                at(30),
                at(30),
                who[1],
                rng.choice(("nausea", "dizziness")),
                1,
                0,
                "none",
                "probable",
            )
        )
    rows["session_ends"] = [
        (session_id, at(150), at(150), who[0], "home_with_escort", "Partner", "Uneventful")
    ]
    return rows


TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "session_clinicians": (
        "session_id",
        "name",
        "position",
        "observed_at",
        "recorded_at",
        "recorded_by",
    ),
    "session_protocols": (
        "session_id",
        "observed_at",
        "recorded_at",
        "recorded_by",
        "protocol_id",
        "protocol_name",
        "protocol_version",
        "protocol_json",
        "origin",
    ),
    "phase_changes": ("session_id", "observed_at", "recorded_at", "recorded_by", "phase"),
    "doses": (
        "session_id",
        "observed_at",
        "recorded_at",
        "recorded_by",
        "drug",
        "route",
        "dose_mg",
        "dose_mg_per_kg",
        "is_booster",
    ),
    "vitals": (
        "session_id",
        "observed_at",
        "recorded_at",
        "recorded_by",
        "hr",
        "sbp",
        "dbp",
        "spo2",
        "rr",
    ),
    "observations": (
        "session_id",
        "observed_at",
        "recorded_at",
        "recorded_by",
        "moaas",
        "dissociation",
    ),
    "interventions": (
        "session_id",
        "observed_at",
        "recorded_at",
        "recorded_by",
        "category",
        "detail",
    ),
    "adverse_events": (
        "session_id",
        "observed_at",
        "recorded_at",
        "recorded_by",
        "term",
        "grade",
        "serious",
        "action",
        "relatedness",
    ),
    "session_ends": (
        "session_id",
        "observed_at",
        "recorded_at",
        "recorded_by",
        "disposition",
        "escort",
        "summary",
    ),
}
