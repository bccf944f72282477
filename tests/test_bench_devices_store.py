"""The device figures of ``kapmonitor bench`` measure the real store path (issue 13): every
benchmark message is answered AA only after it is stored, so the figures are of stored messages.
No time is asserted (shared machines)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from kapmonitor.bench_devices import device_record, measure_store_throughput, measure_stored_latency


def test_device_figures_go_through_the_real_store(tmp_path: Path) -> None:
    db = tmp_path / "devices.sqlite"
    session_id, _now = device_record(db, 120)
    conn = sqlite3.connect(db)
    before = conn.execute("SELECT count(*) FROM device_readings").fetchone()[0]
    conn.close()
    assert before == 240  # two readings a second of the record
    latency = measure_stored_latency(db, session_id, 5, rate_hz=0)
    assert len(latency) == 5 and all(math.isfinite(t) and t > 0 for t in latency)
    per_s = measure_store_throughput(db, session_id, 40, 2)
    assert per_s > 0
    conn = sqlite3.connect(db)
    messages = conn.execute(
        "SELECT count(DISTINCT message_id) FROM device_readings WHERE session_id = ?",
        [session_id],
    ).fetchone()[0]
    conn.close()
    assert messages >= 120 + 5 + 40 - 2  # every message answered AA is in the file
