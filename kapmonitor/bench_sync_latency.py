"""``kapmonitor bench``: the bedside never waits for the network (issue 14, a must-show).

Save latency on an encrypted laptop file, side by side in one run, with the window's own sync
runner (:class:`~kapmonitor.network.background.BackgroundSync`) active and asked for a pass after
every save, exactly as the window does:

- **none**: no runner at all (the floor the others are read against);
- **server down**: the address points at a loopback port where nothing listens;
- **server slow**: the real server behind :class:`SlowProxy`, a TCP relay on loopback that
  holds every chunk it relays for 500 ms (both directions), so each round trip of the sync
  costs a second;
- **server up**: the real server, directly.

Median and p99 per condition are printed; "unchanged within noise" is the claim, read from the
table (no timed assertion in the tests). The server is ``$KAPMONITOR_BENCH_SERVER`` or a
throwaway one (:mod:`kapmonitor.network.local_server`), as for the sync throughput rows.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kapmonitor.bench_sync import SERVER_ENV, bench_server, no_server_row  # noqa: F401 (SERVER_ENV re-exported)
from kapmonitor.bench_table import Row

PROXY_DELAY_S = 0.5
SAVE_GAP_S = 0.05  # between saves: a burst at the bedside is a few per second, not thousands
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class SlowProxy:
    """A TCP relay on loopback adding ``delay_s`` to every chunk it passes on, in order, in both
    directions (a slow link, not a slow server: the bytes arrive, late)."""

    def __init__(self, target: tuple[str, int], delay_s: float = PROXY_DELAY_S) -> None:
        self.target, self.delay_s = target, delay_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._sockets: list[socket.socket] = [self.listener]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="slow-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                held: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(source, held), daemon=True).start()
                threading.Thread(target=self._write, args=(sink, held), daemon=True).start()

    def _read(self, source: socket.socket, held: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            held.put((time.monotonic() + self.delay_s, data))
            if not data:
                return

    def _write(self, sink: socket.socket, held: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            due, data = held.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _laptop(folder: Path, name: str) -> tuple[Path, object, object, str, object]:
    from kapmonitor.bench_record import start_bench_session
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.store import encrypted_store
    from kapmonitor.store.session_store import SessionStore

    path = folder / f"latency-{name}.sqlite"
    for old in folder.glob(f"latency-{name}.sqlite*"):
        old.unlink()
    clock = FakeClock(T0)
    opened = encrypted_store.create(path, clock, "latbench", "Dr Bench", "violet orchard 42 lamp")
    store = SessionStore.open(path, clock, keys=opened.keys)
    session_id = start_bench_session(store, clock.now(), f"KAP-LAT-{name.upper()}")
    return path, opened.keys, store, session_id, clock


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _saves(
    store: object, session_id: str, clock: object, count: int, after: Callable[[], None]
) -> list[float]:
    """``count`` committed vital-sign saves, each followed by ``after`` (the window's request),
    timed together: what the person at the laptop waits for; ms each."""
    from kapmonitor.domain.records import VitalSigns

    times = []
    for n in range(count):
        clock.advance(seconds=30)  # type: ignore[attr-defined]
        entry = VitalSigns(clock.now(), hr=70 + n % 9, sbp=120, dbp=80, spo2=97, rr=14)  # type: ignore[attr-defined]
        began = time.perf_counter()
        store.add(session_id, entry, "Dr Bench")  # type: ignore[attr-defined]
        after()
        times.append((time.perf_counter() - began) * 1000)
        time.sleep(SAVE_GAP_S)
    return times


def save_latency_rows(folder: Path, quick: bool = False) -> list[Row]:
    """The four conditions, median and p99 each, as rows of the bench table.

    Each condition has its own laptop file (and role), and the saves are taken in blocks, the
    conditions in turn, round after round: this shared machine's load drifts over a minute far
    more than any effect looked for, and blocks in turn spread the drift over all four. A block
    starts its runner (whose first pass starts at once, as when the window opens) and stops it
    after its saves (the stop, which waits for a pass in progress, is not timed).
    """
    title = "save latency, sync runner asked after every save"
    with bench_server() as (url, why):
        if url is None:
            return [no_server_row(title, why)]
        return _measure(folder, url, title, quick)


def _measure(folder: Path, url: str, title: str, quick: bool) -> list[Row]:
    """The measurement itself, against the server at ``url``."""
    from kapmonitor.network import admin
    from kapmonitor.network.background import BackgroundSync
    from kapmonitor.network.local_server import free_port

    proxy = None
    stores: list[object] = []
    try:
        print("bedside-never-waits figures: saves with the server down, slow and up …", flush=True)
        admin.init_server(url)
        host_port = url.split("@", 1)[1]
        host, rest = host_port.split(":", 1)
        port = int(rest.split("/", 1)[0])
        database_and_query = rest.split("/", 1)[1]
        proxy = SlowProxy((host, port), PROXY_DELAY_S)
        slow = f"server slow (+{PROXY_DELAY_S * 1000:.0f} ms a packet)"
        plan = [
            ("floor", "no sync runner (the floor)", None),
            ("down", "server down (connection refused)", ("127.0.0.1", free_port())),
            ("slow", slow, ("127.0.0.1", proxy.port)),
            ("up", "server up (loopback)", (host, port)),
        ]
        conditions = []
        for key, label, address in plan:
            path, keys, store, session_id, clock = _laptop(folder, key)
            stores.append(store)
            target = None
            if address is not None:
                added = admin.add_laptop(url, f"lat-{key}-{os.getpid()}")
                target = (
                    f"postgresql://{added.role}:{added.password}@{address[0]}:{address[1]}/"
                    f"{database_and_query}"
                )
            conditions.append((label, target, path, keys, store, session_id, clock))
        rounds, block = (2, 20) if quick else (5, 40)
        times: dict[str, list[float]] = {label: [] for label, *_ in conditions}
        passes: dict[str, int] = dict.fromkeys(times, 0)
        for _ in range(rounds):
            for label, target, path, keys, store, session_id, clock in conditions:
                runner = None
                if target is not None:
                    runner = BackgroundSync(path, target, keys, interval_s=30.0)  # type: ignore[arg-type]
                    runner.start()
                ask = runner.request if runner is not None else (lambda: None)
                try:
                    times[label] += _saves(store, session_id, clock, block, ask)
                finally:
                    if runner is not None:
                        runner.stop(60.0)
                        passes[label] += runner.passes
        rows: list[Row] = []
        for label, measured in times.items():
            median, p99 = statistics.median(measured), _percentile(measured, 0.99)
            runs = f", {passes[label]} passes" if passes[label] else ""
            rows.append(
                Row(
                    f"{title}: {label}",
                    median,
                    "ms",
                    "unchanged",
                    note=f"median of {len(measured)}{runs}",
                )
            )
            rows.append(Row("  … p99", p99, "ms", "unchanged"))
        return rows
    finally:
        for store in stores:
            store.close()  # type: ignore[attr-defined]
        if proxy is not None:
            proxy.close()
