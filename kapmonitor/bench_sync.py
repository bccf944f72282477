"""``kapmonitor bench``'s sync figures (issue 14): rows per second from an encrypted laptop file to
a local PostgreSQL, and the cost of a pass with nothing to send.

The server is ``$KAPMONITOR_BENCH_SERVER`` (an administrator's URL to an empty database) when
set, else a throwaway one started here from the PostgreSQL binaries
(:mod:`kapmonitor.network.local_server`); with neither, the rows say so instead of failing.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kapmonitor.bench_table import Row

SERVER_ENV = "KAPMONITOR_BENCH_SERVER"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@contextmanager
def bench_server() -> Iterator[tuple[str | None, str]]:
    """The PostgreSQL every network figure measures against: ``$KAPMONITOR_BENCH_SERVER``, else a
    throwaway local server, closed afterwards. Yields ``(url, "")``, or ``(None, why not)``."""
    from kapmonitor.network.local_server import PgServer

    url = os.environ.get(SERVER_ENV)
    if url:
        yield url, ""
        return
    server = PgServer()
    try:
        try:
            server.start()
        except (RuntimeError, OSError) as exc:
            yield None, str(exc)
            return
        yield server.url(), ""
    finally:
        server.close()


def no_server_row(name: str, why: str) -> Row:
    """The row a figure gets when there is no PostgreSQL to measure against (it says so)."""
    return Row(name, None, "", "", note=f"no PostgreSQL to measure against ({why})")


def _laptop(folder: Path, sessions: int) -> tuple[Path, object]:
    from kapmonitor.demo import record_demo
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.session_store import SessionStore

    path = folder / "sync-laptop.sqlite"
    clock = FakeClock(T0)
    opened = encrypted_store.create(
        path, clock, "syncbench", "Sync Bench", "violet orchard lantern 42"
    )
    store = SessionStore.open(path, clock, keys=opened.keys)
    for n in range(sessions):
        clock.set(T0 + timedelta(hours=2 * n))
        for _ in record_demo(store, clock, clock.now(), 0.0, random.Random(n)):
            pass
    store.close()
    return path, opened.keys


def sync_rows(folder: Path, quick: bool = False) -> list[Row]:
    """The figures, as rows of the bench table."""
    from kapmonitor.network import admin
    from kapmonitor.network.sync import sync_once

    name = "sync throughput, encrypted laptop → local PostgreSQL (batches of 500)"
    with bench_server() as (url, why):
        if url is None:
            return [no_server_row(name, why)]
        print("sync figures: recording the laptop's sessions …", flush=True)
        admin.init_server(url)
        added = admin.add_laptop(url, f"bench-{os.getpid()}")
        host = url.split("@", 1)[1]
        laptop_url = f"postgresql://{added.role}:{added.password}@{host}"
        sessions = 5 if quick else 60
        path, keys = _laptop(folder, sessions)
        started = time.perf_counter()
        result = sync_once(path, laptop_url, keys)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        idle = []
        for _ in range(3 if quick else 10):
            began = time.perf_counter()
            sync_once(path, laptop_url, keys)  # type: ignore[arg-type]
            idle.append((time.perf_counter() - began) * 1000)
        return [
            Row(
                name,
                result.sent_total / elapsed,
                "rows/s",
                "",
                note=f"{result.sent_total} rows, {sessions} sessions, {elapsed:.1f} s",
            ),
            Row("  … a pass with nothing to send (median)", sorted(idle)[len(idle) // 2], "ms", ""),
        ]
