"""``kapmonitor bench``: the figures that say whether the window stays instant, each beside a
floor measured in the same run on the same machine.

Nothing here asserts a time: it measures and prints a table (figure, target, floor, ratio) so a
slow machine shows as a slow floor, not as a flaky test. ``--quick`` scales the sizes down for a
smoke run; the documented run (docs/performance.md) uses the full sizes.
"""

from __future__ import annotations

import gc
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kapmonitor.bench_table import Row, percentile, print_table, timed

SECONDS_3H = 3 * 60 * 60


# --- building data ------------------------------------------------------------------------


def long_session(path: Path, seconds: int) -> tuple[str, datetime]:
    """A session with one vital-signs set per second for ``seconds``, written in bulk.

    Rows go through one transaction with the audit seal, like the app's own writes, but not one
    by one: this builds the record the figures are measured on, it is not the figure itself.
    """
    from kapmonitor.bench_record import baseline_and_dose, start_bench_session
    from kapmonitor.domain.clock import FakeClock, to_iso
    from kapmonitor.store import audit
    from kapmonitor.store.session_store import SessionStore

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds + 600)
    clock = FakeClock(start)
    store = SessionStore.open(path, clock)
    session_id = start_bench_session(store, start, "BENCH-3H")
    dose_at = baseline_and_dose(store, session_id, clock)
    rng = random.Random(3)
    rows = []
    for second in range(1, seconds + 1):
        at = to_iso(dose_at + timedelta(seconds=second))
        rise = 25 * max(0.0, 1 - abs(second - 2400) / 2400)
        rows.append(
            (
                session_id,
                at,
                at,
                "Device feed",
                72 + rng.randint(-4, 4),
                int(124 + rise + rng.randint(-3, 3)),
                int(78 + rise / 2 + rng.randint(-2, 2)),
                rng.choice((96, 97, 98, 98, 99)),
                14 + rng.randint(-2, 2),
                38 + rng.randint(-2, 2),
            )
        )
    with store.db.atomic():
        store.db.conn.executemany(
            "INSERT INTO vitals (session_id, observed_at, recorded_at, recorded_by, hr, sbp, dbp, "
            "spo2, rr, etco2) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        # A sedation score with every reading too: the seventh charted series (with EtCO₂).
        store.db.conn.executemany(
            "INSERT INTO observations (session_id, observed_at, recorded_at, recorded_by, moaas) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r[0], r[1], r[2], r[3], 3 + (i // 1800) % 3) for i, r in enumerate(rows)],
        )
        audit.seal(store.db, "Device feed", "insert", clock.now(), session_id)
    clock.set(dose_at + timedelta(seconds=seconds + 1))
    store.close()
    return session_id, clock.now()


# --- measurements -------------------------------------------------------------------------


def bare_insert_floor(folder: Path, repeats: int) -> list[float]:
    """One committed INSERT in WAL with synchronous=FULL: the floor of any durable save."""
    conn = sqlite3.connect(folder / "floor.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER)")
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (v) VALUES (?)", [i])
        conn.execute("COMMIT")
        times.append((time.perf_counter() - started) * 1000)
    conn.close()
    return times


def measure_window(db: Path, session_id: str, now: datetime, repeats: int) -> dict[str, object]:
    """Save → committed → chart updated, and full chart redraws, on the real window."""
    from PySide6.QtWidgets import QApplication

    from kapmonitor.domain.chart_picture import SERIES_KEYS
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.records import VitalSigns
    from kapmonitor.settings import Settings
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.app import application
    from kapmonitor.ui.bedside.session_window import SessionWindow

    application()
    clock = FakeClock(now)
    store = SessionStore.open(db, clock)
    settings_dir = Path(tempfile.mkdtemp(prefix="kapmonitor-bench-settings-"))
    window = SessionWindow(store, clock, Settings(settings_dir))
    window.resize(1366, 820)
    window.show()
    started = time.perf_counter()
    window.open_session(session_id, fresh=True)
    QApplication.processEvents()
    open_ms = (time.perf_counter() - started) * 1000
    points = window.chart.point_count("sbp")
    saves = []
    rng = random.Random(5)
    for _ in range(repeats):
        clock.advance(seconds=1)
        entry = VitalSigns(
            clock.now(), hr=70 + rng.randint(0, 9), sbp=120, dbp=80, spo2=98, rr=14, etco2=38
        )
        t0 = time.perf_counter()
        row_id = window._save(entry)
        window.after_save("vitals", row_id)
        QApplication.processEvents()  # Qt paints what changed, as it does in the app
        saves.append((time.perf_counter() - t0) * 1000)
    redraws = timed(window.chart.grab, 30)  # every series drawn into a pixmap
    chart = window.chart
    widths = iter(chart.width() + (i % 2) for i in range(1, 100))

    def cold_redraw() -> None:
        # A one-pixel resize drops every cached picture (axes, the series' drawn history):
        # what a redraw costs when nothing can be reused, as after a resize or a theme change.
        chart.resize(next(widths), chart.height())
        chart.grab()

    cold_redraws = timed(cold_redraw, 12)
    series = sum(1 for key in SERIES_KEYS if window.chart.point_count(key))
    window.close()
    store.close()
    return {
        "saves": saves,
        "redraws": redraws,
        "cold_redraws": cold_redraws,
        "open_ms": open_ms,
        "points": points,
        "series": series,
    }


def empty_chart_floor() -> list[float]:
    """A bare pyqtgraph plot of the same size with nothing in it: the floor of a repaint."""
    import pyqtgraph as pg

    widget = pg.PlotWidget()
    widget.resize(1100, 560)
    widget.show()
    times = timed(widget.grab, 30)
    widget.close()
    return times


def measure_memory(folder: Path, seconds: int) -> tuple[float, float, list[float]]:
    """RSS after a simulated session at one reading per second through the window's save
    path, in a fresh process so nothing else measured here inflates it."""
    code = (
        "import sys; from kapmonitor.bench import _memory_child; "
        f"_memory_child(sys.argv[1], {seconds})"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder / "memory.sqlite")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    samples = [float(v) for v in done.stdout.split()] if done.returncode == 0 else []
    if not samples:
        return float("nan"), float("nan"), []
    hour = max(1, len(samples) // 3)
    return samples[-1], samples[-1] - samples[-1 - hour], samples


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _memory_child(db: str, seconds: int) -> None:
    """Run in a subprocess: record ``seconds`` readings via the window; print RSS samples."""
    from kapmonitor.bench_record import start_bench_session
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.records import Dose, VitalSigns
    from kapmonitor.settings import Settings
    from kapmonitor.store.session_store import SessionStore
    from kapmonitor.ui.app import application
    from kapmonitor.ui.bedside.session_window import SessionWindow

    app = application()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds + 900)
    clock = FakeClock(start)
    store = SessionStore.open(Path(db), clock)
    window = SessionWindow(store, clock, Settings(Path(tempfile.mkdtemp())))
    window.show()
    session_id = start_bench_session(store, start, "BENCH-MEM")
    window.open_session(session_id, fresh=True)
    clock.advance(minutes=5)
    window.after_save("doses", window._save(Dose("ketamine", "im", 50, clock.now())))
    step = max(1, seconds // 36)
    rng = random.Random(9)
    for second in range(1, seconds + 1):
        clock.advance(seconds=1)
        entry = VitalSigns(
            clock.now(), hr=70 + rng.randint(0, 9), sbp=120, dbp=80, spo2=98, rr=14, etco2=38
        )
        window.after_save("vitals", window._save(entry))
        if second % 60 == 0:
            window.tick()
            app.processEvents()
        if second % step == 0:
            gc.collect()
            print(f"{_rss_mb():.1f}", flush=True)
    window.close()
    store.close()


PROBE_USER = "bench.admin"
PROBE_PASSWORD = "bench start-up passphrase 7"  # a throw-away database's, never a clinic's


def _probe_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAPMONITOR_")}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return {**env, "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home}


def frozen_startup(executable: Path, repeats: int, mode: str | None = None) -> list[float]:
    """Process start to first painted window, measured from outside the process.

    ``mode`` None: ``executable --startup-probe`` as is (the bare window's floor). ``"first"`` or
    ``"bedside"``: the app started as a clinician does, on an existing encrypted database made
    once beforehand (every start but the very first); ``first`` times the first window (the
    unlock dialog), ``bedside`` the bedside window unlocked from the environment, so including
    the password's key derivation."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = _probe_env(tmp)
        command = [str(executable), "--startup-probe"]
        if mode is not None:
            db = Path(tmp) / "probe.sqlite"
            recovery = str(Path(tmp) / "recovery.txt")
            init = ["init", "--db", str(db), "--admin", PROBE_USER, "--display-name", "Bench"]
            made = subprocess.run(
                [str(executable), *init, "--recovery-out", recovery],
                env={**env, "KAPMONITOR_USER": PROBE_USER, "KAPMONITOR_PASSWORD": PROBE_PASSWORD},
                capture_output=True,
                timeout=120,
            )
            if made.returncode != 0:
                return []
            command += [mode, "--db", str(db)]
            if mode == "bedside":
                env = {**env, "KAPMONITOR_USER": PROBE_USER, "KAPMONITOR_PASSWORD": PROBE_PASSWORD}
        for _ in range(repeats):
            t0 = time.perf_counter()
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
            )
            assert process.stdout is not None
            line = process.stdout.readline()
            elapsed = (time.perf_counter() - t0) * 1000
            process.wait(timeout=30)
            if line.strip() == "painted":
                times.append(elapsed)
    return times


def dir_size_mb(folder: Path) -> float:
    """Like ``du``: each file once (PyInstaller's onedir links some libraries twice)."""
    return (
        sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
    )


# --- the run ------------------------------------------------------------------------------


def startup_rows(frozen: Path, bare: Path | None, repeats: int = 5) -> list[Row]:
    """The start-up figures: the first paint against the floor, and the bedside after unlock."""
    bare_starts = frozen_startup(bare, repeats) if bare and bare.exists() else []
    floor = statistics.median(bare_starts) if bare_starts else None
    floor_name = "a bare PySide6 window frozen the same way" if bare_starts else ""
    first = frozen_startup(frozen, repeats, "first")
    bedside = frozen_startup(frozen, repeats, "bedside")
    return [
        Row(
            "frozen onedir: process start → first painted window (the unlock dialog), median",
            statistics.median(first) if first else None,
            "ms",
            "≤ 2.5× floor",
            floor,
            floor_name,
        ),
        Row(
            "  … start → bedside window, unlocked from the environment (scrypt included), median",
            statistics.median(bedside) if bedside else None,
            "ms",
            "",
            floor,
            floor_name,
            note="includes the 0.4 s key derivation by design",
        ),
    ]


def run_bench(quick: bool = False, frozen: Path | None = None, bare: Path | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from kapmonitor.bench_archive import archive_rows, build_archive
    from kapmonitor.bench_exports import export_rows

    folder = Path(tempfile.mkdtemp(prefix="kapmonitor-bench-"))
    seconds = 900 if quick else SECONDS_3H
    saves = 60 if quick else 300
    rows: list[Row] = []
    print(f"building a {seconds // 60}-minute record at one reading per second …", flush=True)
    db = folder / "long.sqlite"
    session_id, now = long_session(db, seconds)

    floor = bare_insert_floor(folder, saves)
    window = measure_window(db, session_id, now, saves)
    save_times: list[float] = window["saves"]  # type: ignore[assignment]
    chart_floor = empty_chart_floor()
    points = window["points"]
    rows.append(
        Row(
            f"save vitals → committed → chart ({points:,} points on screen), median",
            statistics.median(save_times),
            "ms",
            "≤ 8 ms",
            statistics.median(floor),
            "one bare committed SQLite insert",
        )
    )
    rows.append(
        Row(
            "  … p99",
            percentile(save_times, 0.99),
            "ms",
            "≤ 16 ms",
            percentile(floor, 0.99),
            "bare insert p99",
        )
    )
    rows.append(
        Row(
            f"full chart redraw ({window['series']} series × {points:,} points), median",
            statistics.median(window["redraws"]),  # type: ignore[arg-type]
            "ms",
            "≤ 8 ms",
            statistics.median(chart_floor),
            "an empty pyqtgraph plot",
        )
    )
    rows.append(
        Row(
            "  … after a resize (every cached picture redrawn), median",
            statistics.median(window["cold_redraws"]),  # type: ignore[arg-type]
            "ms",
            "≤ 8 ms",
        )
    )
    rows.append(
        Row("open the 3-hour session in the window", window["open_ms"], "ms", "", None, "")  # type: ignore[arg-type]
    )

    from kapmonitor.bench_crypto import crypto_rows  # encryption's cost beside plain

    rows.extend(crypto_rows(folder, seconds, saves))

    from kapmonitor.reports.pdf_report import write_session_pdf
    from kapmonitor.store.verify import verify_database

    pdf = folder / "report.pdf"
    pdf_times = timed(lambda: write_session_pdf(db, session_id, pdf), 3)
    rows.append(Row("PDF report of the 3-hour session", min(pdf_times), "ms", "≤ 1,500 ms"))

    print("building the archive …", flush=True)
    archive_db = folder / "archive.sqlite"
    archive_sessions = 1000 if quick else 10_000
    figures = archive_rows(archive_db, archive_sessions)
    rows.extend(figures)

    print("exporting the archive for memory …", flush=True)
    rows.extend(export_rows(archive_db, archive_sessions, ("json", "csv")))
    # FHIR writes about 50 ms a session (indented JSON): a tenth of the archive shows whether
    # its memory stays flat without eight minutes of waiting.
    fhir_db = folder / "fhir-archive.sqlite"
    build_archive(fhir_db, archive_sessions // 10)
    rows.extend(export_rows(fhir_db, archive_sessions // 10, ("fhir",)))

    t0 = time.perf_counter()
    report = verify_database(archive_db)
    verify_s = time.perf_counter() - t0
    rows.append(
        Row(
            f"verify ({report.rows_checked:,} rows, {report.entries:,} audit entries)",
            report.rows_checked / verify_s,
            "rows/s",
            "",
            note=f"{verify_s:.1f} s, {'intact' if report.ok else 'FAILED'}",
        )
    )

    print("simulating a session at one reading per second for memory …", flush=True)
    rss, growth, _samples = measure_memory(folder, seconds)
    rows.append(Row("resident memory after the simulated session", rss, "MB", "≤ 250 MB"))
    rows.append(
        Row("  … growth over its last third (last hour at full size)", growth, "MB", "≤ 1 MB")
    )

    from kapmonitor.bench_devices import device_rows  # issue 13: MLLP through the real store

    rows.extend(device_rows(folder, seconds, quick))
    from kapmonitor.bench_device_window import window_device_rows  # the same, into the window

    rows.extend(window_device_rows(folder, seconds, quick))

    from kapmonitor.bench_sync import sync_rows  # issue 14: laptop -> central PostgreSQL

    rows.extend(sync_rows(folder, quick))
    from kapmonitor.bench_sync_latency import save_latency_rows  # issue 14: never waits

    rows.extend(save_latency_rows(folder, quick))

    from kapmonitor.bench_live_lag import live_lag_rows  # issue 14: commit -> live view

    rows.extend(live_lag_rows(folder, quick))
    from kapmonitor.bench_central_archive import archive_rows  # issue 14: review at the centre

    rows.extend(archive_rows(folder, quick))

    if frozen and frozen.exists():
        rows.extend(startup_rows(frozen, bare))
        rows.append(Row("frozen onedir size", dir_size_mb(frozen.parent), "MB", "≤ 200 MB"))
    else:
        rows.append(Row("frozen onedir start and size", None, "", "", note="no --frozen build"))

    print()
    print_table(rows)
    print(f"\nmachine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; data in {folder}")
    return 0
