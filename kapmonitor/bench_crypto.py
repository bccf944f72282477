"""The cost of encryption at rest, measured beside its plain floor in the same run.

Two stores hold the same record (the same number of readings, written the same way), one plain
and one SQLCipher-encrypted; the same vital-signs save is timed on each (validate, insert, audit
seal, commit with ``synchronous=FULL``), then ``verify`` runs over each. The unlock figure is one
key-slot derivation at the shipped cost: what every guess at a copied key file costs too.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kapmonitor.bench_table import Row, percentile


def _filled_store(path: Path, readings: int, encrypted: bool) -> tuple[object, str, object]:
    """A store (plain or encrypted) with one session of ``readings`` vital-signs rows."""
    from kapmonitor.bench_record import start_bench_session
    from kapmonitor.domain.clock import FakeClock, to_iso
    from kapmonitor.store import audit
    from kapmonitor.store.key_slots import new_keys
    from kapmonitor.store.session_store import SessionStore

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=readings + 3600)
    clock = FakeClock(start)
    store = SessionStore.open(path, clock, keys=new_keys() if encrypted else None)
    session_id = start_bench_session(store, start, "BENCH-CRYPT")
    rng = random.Random(5)
    rows = []
    for second in range(1, readings + 1):
        at = to_iso(start + timedelta(seconds=60 + second))
        rows.append((session_id, at, at, "Device feed", 70 + rng.randint(-4, 4), 120, 80, 98))
    with store.db.atomic():
        store.db.conn.executemany(
            "INSERT INTO vitals (session_id, observed_at, recorded_at, recorded_by, hr, sbp, dbp, "
            "spo2) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        audit.seal(store.db, "Device feed", "insert", clock.now(), session_id)
    clock.set(start + timedelta(seconds=readings + 120))
    return store, session_id, clock


def _save_times(store: object, session_id: str, clock: object, saves: int) -> list[float]:
    from kapmonitor.domain.records import VitalSigns

    times = []
    for i in range(saves):
        clock.advance(seconds=1)  # type: ignore[attr-defined]
        entry = VitalSigns(clock.now(), hr=70 + i % 5, sbp=121, dbp=79, spo2=97)  # type: ignore[attr-defined]
        started = time.perf_counter()
        store.add(session_id, entry, "Dr Bench")  # type: ignore[attr-defined]
        times.append((time.perf_counter() - started) * 1000)
    return times


def _verify_rate(path: Path) -> tuple[float, int, bool]:
    from kapmonitor.store.verify import verify_database

    started = time.perf_counter()
    report = verify_database(path)
    return report.rows_checked / (time.perf_counter() - started), report.rows_checked, report.ok


def crypto_rows(folder: Path, readings: int, saves: int) -> list[Row]:
    """Save median/p99 and verify throughput with SQLCipher against plain, and one unlock."""
    from kapmonitor.store import encryption
    from kapmonitor.store.key_slots import SHIPPED_PASSWORD_COST

    figures: dict[bool, tuple[list[float], float, int, bool]] = {}
    for encrypted in (False, True):
        path = folder / ("crypt-encrypted.sqlite" if encrypted else "crypt-plain.sqlite")
        store, session_id, clock = _filled_store(path, readings, encrypted)
        times = _save_times(store, session_id, clock, saves)
        store.close()  # type: ignore[attr-defined]
        rate, rows, ok = _verify_rate(path)
        figures[encrypted] = (times, rate, rows, ok)
        encryption.forget(path)
    plain, cipher = figures[False], figures[True]
    started = time.perf_counter()
    SHIPPED_PASSWORD_COST.derive(b"bench passphrase", b"0123456789abcdef")
    unlock_ms = (time.perf_counter() - started) * 1000
    exponent = SHIPPED_PASSWORD_COST.n.bit_length() - 1
    return [
        Row(
            f"save vitals, SQLCipher ({readings:,} readings stored), median",
            statistics.median(cipher[0]),
            "ms",
            "≤ 8 ms",
            statistics.median(plain[0]),
            "the same save, plain SQLite",
        ),
        Row(
            "  … p99",
            percentile(cipher[0], 0.99),
            "ms",
            "≤ 16 ms",
            percentile(plain[0], 0.99),
            "plain p99",
        ),
        Row(
            f"verify, SQLCipher ({cipher[2]:,} rows)",
            cipher[1],
            "rows/s",
            "",
            plain[1],
            "verify, plain",
            note="intact" if cipher[3] and plain[3] else "FAILED",
        ),
        Row(
            f"unlock: one key-slot derivation (scrypt n=2^{exponent})",
            unlock_ms,
            "ms",
            "≥ 250 ms",
            note="also the cost of each guess at a copied key file",
        ),
    ]
