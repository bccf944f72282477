"""The device figures of ``kapmonitor bench`` measure the real store path (issue 13): every
benchmark message is answered AA only after it is stored, so the figures are of stored messages,
through ``kapmonitor capture``'s own group-commit writer, into an encrypted file as a clinic's.
No time is asserted (shared machines)."""

from __future__ import annotations

import math
from pathlib import Path

from kapmonitor.bench_devices import device_record, measure_store_throughput, measure_stored_latency
from kapmonitor.store import encryption
from kapmonitor.store.database import connect_readonly


def _count(db: Path, sql: str, *args: object) -> int:
    conn = connect_readonly(db)
    try:
        return int(conn.execute(sql, list(args)).fetchone()[0])
    finally:
        conn.close()


def test_device_figures_go_through_the_real_store(tmp_path: Path) -> None:
    db = tmp_path / "devices.sqlite"
    session_id, _now = device_record(db, 120)
    assert encryption.file_header(db) != encryption.SQLITE_HEADER  # encrypted, as in a clinic
    assert _count(db, "SELECT count(*) FROM device_readings") == 240  # two a second
    latency = measure_stored_latency(db, session_id, 5, rate_hz=0)
    assert len(latency) == 5 and all(math.isfinite(t) and t > 0 for t in latency)
    waiting = measure_store_throughput(db, session_id, 40, 2)
    assert waiting["messages_per_s"] > 0 and waiting["per_commit"] >= 1
    pipelined = measure_store_throughput(db, session_id, 40, 1, window=16)
    assert pipelined["messages_per_s"] > 0
    messages = _count(
        db,
        "SELECT count(DISTINCT message_id) FROM device_readings WHERE session_id = ?",
        session_id,
    )
    # every message answered AA is in the file (the two throughput runs reuse the feed's ids:
    # the second one's AA'd messages are the first one's, stored once)
    assert messages >= 120 + 5 + 40 - 2
