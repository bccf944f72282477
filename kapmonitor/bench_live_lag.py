"""``kapmonitor bench``'s live-view figure (issue 14): commit-to-visible lag at the centre.

One measured step, repeated ``commits`` times on loopback:

1. a commit on an encrypted laptop file (``SessionStore.add`` of a vitals set, as the bedside
   saves one) — the clock starts just before it;
2. a sync pass right after it, as the window's runner runs one after each commit (a new
   connection and SCRAM sign-in every pass, as :class:`kapmonitor.network.sync.SyncRunner`);
3. the server's NOTIFY, the supervisor's :class:`kapmonitor.network.live.LiveListener`
   re-reading that session (as a reviewer role) and handing over its snapshot;
4. the clock stops when the snapshot shows the new entry (its save time).

Median and p99 (target p99 ≤ 2 s). The server is ``$KAPMONITOR_BENCH_SERVER`` (an
administrator's URL to an empty database) or a throwaway one started here; with neither, the
rows say so instead of failing.
"""

from __future__ import annotations

import os
import secrets
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kapmonitor.bench_sync import SERVER_ENV, bench_server, no_server_row  # noqa: F401 (SERVER_ENV re-exported)
from kapmonitor.bench_table import Row, percentile

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WAIT_S = 30.0  # a commit not seen by then counts as lost (and is reported)


def _reviewer_url(admin_url: str) -> str:
    """A reviewer login role (member of kap_reviewer), as docs/network.md sets one up."""
    import psycopg
    from psycopg import sql

    from kapmonitor.network import admin

    database = admin.database_name(admin_url)
    role = f"kap_{database}_bench_reviewer_{os.getpid()}"[:63]
    password = secrets.token_urlsafe(18)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE kap_reviewer").format(
                sql.Identifier(role), sql.Literal(admin.scram_verifier(password))
            )
        )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(role)
            )
        )
    host = admin_url.split("@", 1)[1]
    return f"postgresql://{role}:{password}@{host}"


class _Seen:
    """The listener's snapshots of one session: the newest save time seen, and when."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.latest: datetime | None = None
        self.cond = threading.Condition()

    def on_update(self, update: Any) -> None:
        for session in update.sessions:
            if session.session_id == self.session_id:
                with self.cond:
                    self.latest = session.last_recorded_at
                    self.cond.notify_all()

    def wait_for(self, when: datetime) -> bool:
        with self.cond:
            return self.cond.wait_for(
                lambda: self.latest is not None and self.latest >= when, WAIT_S
            )


def measure_lag(admin_url: str, folder: Path, commits: int) -> tuple[list[float], int]:
    """Lags in ms of ``commits`` commits, and how many were never seen within WAIT_S."""
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.protocol import load_protocols
    from kapmonitor.domain.records import Dose, SessionStart, VitalSigns
    from kapmonitor.domain.reference import default_reference
    from kapmonitor.network import admin
    from kapmonitor.network.live import LiveListener
    from kapmonitor.network.sync import sync_once
    from kapmonitor.paths import resources_dir
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.session_store import SessionStore

    admin.init_server(admin_url)
    added = admin.add_laptop(admin_url, f"lag-{os.getpid()}")
    host = admin_url.split("@", 1)[1]
    laptop_url = f"postgresql://{added.role}:{added.password}@{host}"
    path = folder / "live-lag-laptop.sqlite"
    clock = FakeClock(T0)
    opened = encrypted_store.create(
        path, clock, "lagbench", "Lag Bench", "violet orchard lantern 42"
    )
    store = SessionStore.open(path, clock, keys=opened.keys)
    by = "Lag Bench"
    checklist = {c.code: True for c in default_reference().choices("eligibility_checklist")}
    protocol = load_protocols([resources_dir() / "protocols"]).protocols["clinic-ketamine"]
    start = SessionStart(
        patient_code="BENCH-0001",
        sex="female",
        weight_kg=70.0,
        indication="trd",
        clinicians=(by, "Nurse Bench"),
        started_at=clock.now(),
        age_years=40,
        checklist=checklist,
    )
    listener = None
    try:
        sid = store.start_session(start, by, protocol=protocol)
        clock.advance(minutes=2)
        store.add(sid, VitalSigns(clock.now(), hr=72, sbp=122, dbp=78, spo2=98, rr=14), by)
        clock.advance(minutes=1)
        store.add(sid, Dose("ketamine", "im", 50, clock.now()), by)
        sync_once(path, laptop_url, opened.keys)
        seen = _Seen(sid)
        listener = LiveListener(_reviewer_url(admin_url), seen.on_update, refresh_s=3600.0)
        listener.start()
        if not seen.wait_for(clock.now() - timedelta(minutes=1)):
            raise RuntimeError("the live listener never saw the session")
        lags: list[float] = []
        lost = 0
        for n in range(commits):
            clock.advance(seconds=30)
            began = time.perf_counter()
            store.add(
                sid,
                VitalSigns(clock.now(), hr=70 + n % 5, sbp=120, dbp=80, spo2=97, rr=14),
                by,
            )
            sync_once(path, laptop_url, opened.keys)  # the runner's pass right after the commit
            if seen.wait_for(clock.now()):
                lags.append((time.perf_counter() - began) * 1000)
            else:
                lost += 1
        return lags, lost
    finally:
        if listener is not None:
            listener.stop()
        store.close()


def live_lag_rows(folder: Path, quick: bool = False) -> list[Row]:
    """The figure, as rows of the bench table."""
    name = "live view: commit → sync → NOTIFY → visible at the centre (loopback), median"
    with bench_server() as (url, why):
        if url is None:
            return [no_server_row(name, why)]
        commits = 20 if quick else 120
        print(f"live-view lag: {commits} commits, each synced and awaited …", flush=True)
        lags, lost = measure_lag(url, folder, commits)
        note = f"{len(lags)} commits" + (f", {lost} NOT SEEN within {WAIT_S:.0f} s" if lost else "")
        if not lags:
            return [Row(name, None, "", "", note=note)]
        return [
            Row(name, statistics.median(lags), "ms", "", note=note),
            Row("  … p99", percentile(lags, 0.99), "ms", "≤ 2000 ms"),
        ]
