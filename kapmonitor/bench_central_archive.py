"""``kapmonitor bench``'s central-archive figures (issue 14): list, filter and open at 100,000
sessions from 20 laptops (targets ≤ 200 / 200 / 150 ms).

The archive is seeded straight into the mirror tables as the administrator (COPY), not synced:
the figures are the reviewer's reads, and syncing 100,000 recorded sessions would take most of
an hour. Each seeded session is realistic in shape: two clinicians at most, its protocol copy
(shortened to the fields the list reads), four phases, two or three doses (1 % corrected), 24
vital-sign sets, four observations, adverse events in 12 % of sessions, alarms in 15 % (most
acknowledged), an end in 98 %, a signature in 60 % of those, two audit entries. One laptop of
the twenty is a real one instead: an encrypted file with sessions recorded by the demo's script
and synced (every table, every column), and "open" materialises those sessions, as the review
does, among the 100,000. ``--quick`` seeds 2,000 sessions (the table says so).

Each figure is a reviewer role's time on an open connection (the review window keeps one), over
≥ 20 rounds: median and p99.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kapmonitor.bench_table import Row, percentile

T0 = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
LAPTOPS = 20
FULL_SESSIONS = 100_000
QUICK_SESSIONS = 2_000
ROUNDS = 25
CLINICIANS = (
    "Dr Amara Okafor",
    "Zoë Ó Briain",
    "Dr Lars Øvergaard",
    "Nurse Priya Raman",
    "Dr Tomás Herrera",
    "Nurse Jo Whitfield",
    "Dr Mei Chen",
    "Nurse Sam Adeyemi",
)
PROTOCOLS = (
    ("ketamine-im-standard", "Ketamine IM (standard)", False),
    ("ketamine-iv-infusion", "Ketamine IV infusion", False),
    ("esketamine-nasal-rems", "Esketamine nasal (REMS)", True),
)
AE_TERMS = ("nausea", "vomiting", "hypertension", "anxiety", "dizziness", "headache")


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class _Copier:
    """Rows per table, written with COPY in one go per table."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self.columns: dict[str, tuple[str, ...]] = {}
        self.next_id: dict[tuple[str, str], int] = {}

    def add(
        self, table: str, laptop: str, columns: tuple[str, ...], values: tuple[Any, ...]
    ) -> int:
        """Add a row; returns its laptop-local id (also its ``id`` for entry tables)."""
        key = (table, laptop)
        local = self.next_id.get(key, 0) + 1
        self.next_id[key] = local
        self.columns[table] = columns
        with_id = table != "sessions"
        self.rows.setdefault(table, []).append(
            (laptop, local, *((local,) if with_id else ()), *values)
        )
        return local

    def flush(self, pg: Any) -> int:
        total = 0
        for table, rows in self.rows.items():
            with_id = table != "sessions"
            names = ["laptop_id", "local_id", *(["id"] if with_id else []), *self.columns[table]]
            statement = f"COPY kap.{table} ({', '.join(names)}) FROM STDIN"
            with pg.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            total += len(rows)
        self.rows.clear()
        return total


def _entry(session: str, at: str, who: str) -> tuple[Any, ...]:
    return (session, at, at, who, None, None, 0)


ENTRY = ("session_id", "observed_at", "recorded_at", "recorded_by")
CORRECTABLE = (*ENTRY, "supersedes_id", "correction_reason", "voided")


def _seed_session(out: _Copier, laptop: str, start: datetime, n: int, rng: random.Random) -> None:
    sid = uuid.UUID(int=rng.getrandbits(128)).hex
    at = _iso(start)
    clinicians = rng.sample(CLINICIANS, rng.choice((1, 2)))
    who = clinicians[0]
    out.add(
        "sessions",
        laptop,
        (
            "id",
            "patient_code",
            "birth_year",
            "sex",
            "weight_kg",
            "indication",
            "eligibility",
            "concomitant_medicines",
            "session_limit_minutes",
            "app_version",
            "observed_at",
            "recorded_at",
            "recorded_by",
        ),
        (
            sid,
            f"P-{rng.randrange(20_000):05d}",
            rng.randrange(1950, 2004),
            rng.choice(("female", "male")),
            round(rng.uniform(48, 110), 1),
            "treatment_resistant_depression",
            "{}",
            "[]",
            180,
            "bench",
            at,
            at,
            who,
        ),
    )
    for position, name in enumerate(clinicians):
        out.add(
            "session_clinicians",
            laptop,
            ("session_id", "name", "position", *ENTRY[1:]),
            (sid, name, position, at, at, who),
        )
    protocol_id, protocol_name, rems = PROTOCOLS[0 if n % 10 < 6 else 1 if n % 10 < 9 else 2]
    stub = f'{{"id": "{protocol_id}", "rems": {"true" if rems else "false"}}}'
    out.add(
        "session_protocols",
        laptop,
        (*CORRECTABLE, "protocol_id", "protocol_name", "protocol_version", "protocol_json"),
        (*_entry(sid, at, who), protocol_id, protocol_name, 1, stub),
    )
    for minutes, phase in (
        (0, "preparation"),
        (10, "dosing"),
        (15, "monitoring"),
        (70, "recovery"),
    ):
        when = _iso(start + timedelta(minutes=minutes))
        out.add("phase_changes", laptop, (*CORRECTABLE, "phase"), (*_entry(sid, when, who), phase))
    drug = "esketamine" if rems else "ketamine"
    first_dose = 0
    for k in range(rng.choice((2, 3))):
        when = _iso(start + timedelta(minutes=12 + 20 * k))
        row = out.add(
            "doses",
            laptop,
            (*CORRECTABLE, "drug", "route", "dose_mg", "is_booster"),
            (*_entry(sid, when, who), drug, "im", float(rng.choice((25, 35, 50))), int(k > 0)),
        )
        first_dose = first_dose or row
    if rng.random() < 0.01:  # a corrected dose: the first one, re-entered
        when = _iso(start + timedelta(minutes=12))
        out.add(
            "doses",
            laptop,
            (*CORRECTABLE, "drug", "route", "dose_mg", "is_booster"),
            (sid, when, when, who, first_dose, "typed the wrong dose", 0, drug, "im", 30.0, 0),
        )
    for k in range(24):
        when = _iso(start + timedelta(minutes=5 * k))
        out.add(
            "vitals",
            laptop,
            (*CORRECTABLE, "hr", "sbp", "dbp", "spo2", "rr"),
            (
                *_entry(sid, when, who),
                rng.randint(60, 95),
                rng.randint(110, 165),
                rng.randint(65, 95),
                rng.randint(94, 100),
                rng.randint(12, 18),
            ),
        )
    for k in range(4):
        when = _iso(start + timedelta(minutes=20 * k + 15))
        out.add(
            "observations",
            laptop,
            (*CORRECTABLE, "moaas"),
            (*_entry(sid, when, who), rng.randint(2, 5)),
        )
    if rng.random() < 0.12:
        for _ in range(rng.choice((1, 1, 2))):
            when = _iso(start + timedelta(minutes=rng.randint(15, 90)))
            out.add(
                "adverse_events",
                laptop,
                (*CORRECTABLE, "term", "grade", "serious", "action", "relatedness"),
                (*_entry(sid, when, who), rng.choice(AE_TERMS), 1, 0, "none", "possible"),
            )
    if rng.random() < 0.15:
        for _ in range(rng.choice((1, 2, 3))):
            when = _iso(start + timedelta(minutes=rng.randint(15, 90)))
            alarm = out.add(
                "alarms",
                laptop,
                (*CORRECTABLE, "parameter", "value", "priority", "message"),
                (*_entry(sid, when, who), "sbp", 182.0, "high", "Systolic above 180"),
            )
            if rng.random() < 0.8:
                out.add(
                    "alarm_acknowledgements",
                    laptop,
                    (*CORRECTABLE, "alarm_id", "response"),
                    (*_entry(sid, when, who), alarm, "rechecked"),
                )
    ended = rng.random() < 0.98
    if ended:
        when = _iso(start + timedelta(minutes=120))
        out.add(
            "session_ends",
            laptop,
            (*CORRECTABLE, "disposition", "escort"),
            (*_entry(sid, when, who), "home_with_escort", "partner"),
        )
        if rng.random() < 0.6:
            when = _iso(start + timedelta(days=1))
            out.add(
                "signatures",
                laptop,
                (*ENTRY, "printed_name", "role", "meaning"),
                (sid, when, when, "supervisor", "Dr Supervisor", "supervisor", "reviewed"),
            )
    for k in range(2):
        out.add(
            "audit",
            laptop,
            ("at", "actor", "action", "session_id", "hash"),
            (
                _iso(start + timedelta(minutes=k)),
                who,
                "insert",
                sid,
                f"{rng.getrandbits(256):064x}",
            ),
        )


def seed(admin_url: str, sessions: int, laptops: int = LAPTOPS, prefix: str = "") -> int:
    """Seed ``sessions`` sessions, evenly over ``laptops`` synthetic laptops, into the archive at
    ``admin_url`` (schema applied); returns the rows written."""
    import psycopg

    prefix = prefix or f"b{os.getpid() % 100000}"
    rng = random.Random(14)
    names = [f"{prefix}-{k:02d}" for k in range(laptops)]
    span = timedelta(days=730)
    total = 0
    with psycopg.connect(admin_url) as pg:
        for name in names:
            pg.execute(
                "INSERT INTO kap.laptops (laptop_id, role_name) VALUES (%s, %s)",
                [name, f"seed_{name}".replace("-", "_")],
            )
        out = _Copier()
        for n in range(sessions):
            start = T0 + span * (n / max(sessions, 1)) + timedelta(minutes=rng.randint(0, 50))
            _seed_session(out, names[n % laptops], start, n, rng)
            if n % 5000 == 4999:
                total += out.flush(pg)
        total += out.flush(pg)
        pg.commit()
    with psycopg.connect(admin_url, autocommit=True) as pg:
        pg.execute("VACUUM (ANALYZE)")  # as autovacuum leaves a settled archive
    return total


def _real_laptop(folder: Path, admin_url: str, sessions: int) -> list[str]:
    """One real laptop: sessions recorded by the demo's script and synced; their ids."""
    from kapmonitor.demo import record_demo
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.network import admin
    from kapmonitor.network.sync import sync_once
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.session_store import SessionStore

    added = admin.add_laptop(admin_url, f"real-{os.getpid() % 100000}")
    host = admin_url.split("@", 1)[1]
    laptop_url = f"postgresql://{added.role}:{added.password}@{host}"
    path = folder / "archive-laptop.sqlite"
    start = T0 + timedelta(days=740)
    clock = FakeClock(start)
    opened = encrypted_store.create(path, clock, "archbench", "Arch Bench", "violet orchard 42")
    store = SessionStore.open(path, clock, keys=opened.keys)
    ids = []
    for n in range(sessions):
        clock.set(start + timedelta(hours=3 * n))
        for kind, ident in record_demo(store, clock, clock.now(), 0.0, random.Random(100 + n)):
            if kind == "session":
                ids.append(str(ident))
    store.close()
    sync_once(path, laptop_url, opened.keys)
    return ids


def _times(action: Callable[[], object], rounds: int) -> list[float]:
    found = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        found.append((time.perf_counter() - began) * 1000)
    return found


def archive_rows(folder: Path, quick: bool = False) -> list[Row]:
    """The figures, as rows of the bench table."""
    from kapmonitor.bench_live_lag import _reviewer_url
    from kapmonitor.bench_sync import bench_server, no_server_row
    from kapmonitor.network import admin
    from kapmonitor.network.central_archive import CentralArchive
    from kapmonitor.store.archive import ArchiveFilter

    sessions = QUICK_SESSIONS if quick else FULL_SESSIONS
    scale = f"{sessions:,} sessions, {LAPTOPS} laptops" + (
        " (--quick: scaled down)" if quick else ""
    )
    name = f"central archive list, first page of 200 + total ({scale})"
    with bench_server() as (url, why):
        if url is None:
            return [no_server_row(name, why)]
        admin.init_server(url)
        real = 4 if quick else 10
        print(f"central archive figures: seeding {sessions:,} sessions …", flush=True)
        began = time.perf_counter()
        rows = seed(url, sessions - real, LAPTOPS - 1)
        ids = _real_laptop(folder, url, real)
        seeded = time.perf_counter() - began
        archive = CentralArchive(_reviewer_url(url))
        try:
            archive.page()  # the connection, as the window holds one
            # One patient's code (a few sessions each at the full size), typed in lower case.
            middle = archive.page(offset=sessions // 2, limit=1).rows[0]
            selective = ArchiveFilter(patient_code=middle.patient_code.lower())
            broad = ArchiveFilter(date_from=(T0 + timedelta(days=365)).date(), status="unsigned")
            first = _times(lambda: archive.page(), ROUNDS)
            narrow = _times(lambda: archive.page(selective), ROUNDS)
            wide = _times(lambda: archive.page(broad), ROUNDS)
            counter = iter(range(10**9))
            opened = _times(
                lambda: archive.open_session(ids[next(counter) % len(ids)]).close(), ROUNDS
            )
            example = archive.open_session(ids[0])
            opened_rows = example.rows
            example.close()
            total_broad = archive.page(broad).total
            total_narrow = archive.page(selective).total
        finally:
            archive.close()

    def row(label: str, values: list[float], target: str, note: str = "") -> list[Row]:
        return [
            Row(label, statistics.median(values), "ms", target, note=note),
            Row("  … p99", percentile(values, 0.99), "ms", target),
        ]

    return [
        *row(name, first, "≤ 200 ms", f"{rows:,} rows seeded in {seeded:.0f} s, {ROUNDS} rounds"),
        *row(
            "  … filter, selective (patient code part)",
            narrow,
            "≤ 200 ms",
            f"{total_narrow} sessions match",
        ),
        *row(
            "  … filter, broad (a year, unsigned)",
            wide,
            "≤ 200 ms",
            f"{total_broad:,} sessions match",
        ),
        *row(
            "  … open one session (materialised for the review)",
            opened,
            "≤ 150 ms",
            f"a demo-recorded session, {opened_rows} rows",
        ),
    ]
