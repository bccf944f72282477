"""Device figures for the benchmark: the MLLP listener's sustained throughput on loopback.

Why: a gateway reconnecting after a network cut flushes its buffer as fast as the listener
acknowledges, so the listener must take messages much faster than monitors make them (issue 13's
target: at least 2,000 messages/s). Measured as a real deployment runs: the listener on its own
thread and loop in this process, delivering every accepted message to a no-op store callback (a
coroutine, as both real sinks are: the window's feed and ``kapmonitor capture``'s group commit
take each message on the loop, with no executor hop per message), and the senders in a
separate process (a gateway is another program), each connection waiting for every ACK before
sending the next message (HL7 original-mode acknowledgement). Messages are the simulator's
Mindray-style v2.6 feed, built before the clock starts.

Run ``python -m kapmonitor.bench_devices`` for the listener alone. ``kapmonitor bench`` adds the
figures through the real store (:func:`device_rows`): MLLP message -> stored (pending, or
confirmed by the protocol) at 1 Hz beside a three-hour device record, the listener's sustained
rate into the store (group commit, :class:`kapmonitor.capture.StoreWriter`) with several
senders each waiting for its ACK and with one gateway pipelining, and memory growth over the last
third of a 1 Hz feed through the store and the session model. The charted figure (the same
message into the real window) is :mod:`kapmonitor.bench_device_window`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kapmonitor.bench_table import Row, percentile
from kapmonitor.devices.hl7_message import peek_header
from kapmonitor.devices.mllp import Frame, MllpDecoder, frame
from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.reading import DeviceReading
from kapmonitor.devices.simulator import messages

if TYPE_CHECKING:
    from kapmonitor.capture import StoreWriter

__all__ = ["TARGET_MESSAGES_PER_S", "device_rows", "measure_throughput"]

TARGET_MESSAGES_PER_S = 2000.0


async def _no_op_store(readings: Sequence[DeviceReading]) -> None:
    """Stores nothing: what is measured is the listener, not the disk. A coroutine like the
    real sinks (a plain function would add a thread hop per message that neither takes)."""


def _msa(payload: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK."""
    msa = payload.split(b"MSA|", 1)[1].split(b"\r", 1)[0].split(b"|")
    return msa[0].decode("ascii", "replace"), (msa[1] if len(msa) > 1 else b"").decode()


async def _send_all(
    host: str,
    port: int,
    count: int,
    connections: int,
    profile: str,
    window: int = 1,
    tag: str = "B",
) -> dict:
    """Send ``count`` messages over ``connections`` connections, each keeping at most ``window``
    messages unanswered (1: original-mode HL7, wait for each ACK; more: a gateway flushing its
    buffer, pipelining). Every connection checks its ACKs come back in the order it sent.
    ``tag`` starts every message control id: a run against a store must use a tag of its own,
    or its messages are resends of an earlier run's, acknowledged but not stored again."""
    per = count // connections
    # What a gateway flushes after a cut: readings it buffered, the newest a few seconds old
    # (readings dated in the future would be kept pending, the cheaper path, by the store).
    start = datetime.now(UTC).astimezone().replace(microsecond=0) - timedelta(seconds=per + 5)
    feeds = [
        [frame(m) for m in messages(profile, per, start=start, prefix=f"{tag}{c}-")][:per]
        for c in range(connections)
    ]
    answers: dict[str, int] = {}
    out_of_order = 0

    async def one(feed: list[bytes]) -> None:
        nonlocal out_of_order
        reader, writer = await asyncio.open_connection(host, port)
        decoder = MllpDecoder()
        controls = [peek_header(wire[1:-2]).control_id for wire in feed]
        sent = answered = 0
        while answered < len(feed):
            while sent < len(feed) and sent - answered < window:
                writer.write(feed[sent])
                sent += 1
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the listener closed the connection")
            for event in decoder.feed(data):
                if isinstance(event, Frame):
                    code, control = _msa(event.payload)
                    answers[code] = answers.get(code, 0) + 1
                    out_of_order += control != controls[answered]
                    answered += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(feed) for feed in feeds))
    elapsed = time.perf_counter() - started
    return {
        "sent": per * connections,
        "seconds": elapsed,
        "answers": answers,
        "out_of_order": out_of_order,
    }


def _sender_main(argv: Sequence[str]) -> None:
    host, port, count, connections, profile, window, tag = argv
    result = asyncio.run(
        _send_all(host, int(port), int(count), int(connections), profile, int(window), tag)
    )
    print(json.dumps(result))


def _run_senders(
    host: str, port: int, count: int, connections: int, profile: str, window: int
) -> dict:
    """The senders in another process (a gateway is another program); all must get AA, in order.
    Each run's control ids are its own (a fresh tag), so no message repeats an earlier run's."""
    code = (
        "import sys; from kapmonitor.bench_devices import _sender_main; _sender_main(sys.argv[1:])"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            host,
            str(port),
            str(count),
            str(connections),
            profile,
            str(window),
            f"B{uuid.uuid4().hex[:6]}",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["answers"].get("AA", 0) != result["sent"]:
        raise RuntimeError(f"not every message was accepted: {result['answers']}")
    if result["out_of_order"]:
        raise RuntimeError(f"{result['out_of_order']} ACKs came back out of order")
    return result


def measure_throughput(
    count: int = 20_000, connections: int = 4, profile: str = "mindray", window: int = 1
) -> dict[str, float]:
    """Sustained messages/s through the listener to a no-op store; every message must get AA
    (in order); each connection keeps at most ``window`` messages unanswered."""
    listener = MllpListener(PatientRule("bed", "BED-1"), ListenerConfig(port=0))
    host, port = listener.start_in_thread(_no_op_store)
    try:
        result = _run_senders(host, port, count, connections, profile, window)
    finally:
        listener.stop()
    return {
        "messages": float(result["sent"]),
        "connections": float(connections),
        "seconds": result["seconds"],
        "messages_per_s": result["sent"] / result["seconds"],
    }


# --- through the real store (issue 13's second wave) ------------------------------------------

BENCH_DEVICE = "BENCH^MONITOR"


def _store_writer(path: Path, session_id: str) -> StoreWriter:
    """The real store as the listener's sink: ``kapmonitor capture``'s own writer (a process of
    its own, group commit, checkpoints after the ACKs), so the figures are the command's."""
    from kapmonitor.capture import StoreWriter

    return StoreWriter(path, session_id)


def device_record(path: Path, seconds: int, encrypted: bool = True) -> tuple[str, datetime]:
    """A session under the clinic protocol with ``seconds`` of a 1 Hz SpO2/HR device feed already
    stored as a monitor's would be (each second two device readings, auto-confirmed into one
    vitals row with their two review rows), written in bulk with the audit seal: the record the
    figures are measured beside, not a figure itself. Encrypted (SQLCipher) as a clinic's file
    is, unless ``encrypted`` is False; this process remembers the keys for the later opens."""
    from kapmonitor.bench_record import baseline_and_dose, start_bench_session
    from kapmonitor.domain.clock import FakeClock, to_iso
    from kapmonitor.domain.protocol import load_protocols
    from kapmonitor.paths import resources_dir
    from kapmonitor.store import audit
    from kapmonitor.store.key_slots import new_keys
    from kapmonitor.store.session_store import SessionStore

    protocol = load_protocols([resources_dir() / "protocols"]).protocols["clinic-ketamine"]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds + 900)
    clock = FakeClock(start)
    store = SessionStore.open(path, clock, keys=new_keys() if encrypted else None)
    session_id = start_bench_session(store, start, "BENCH-DEV", protocol)
    dose_at = baseline_and_dose(store, session_id, clock)
    db = store.db
    by = f"protocol:{protocol.id}"
    with db.atomic():
        base = db.execute("SELECT coalesce(max(id), 0) FROM device_readings").fetchone()[0]
        vbase = db.execute("SELECT coalesce(max(id), 0) FROM vitals").fetchone()[0]
        readings, vitals, reviews = [], [], []
        for second in range(1, seconds + 1):
            at = to_iso(dose_at + timedelta(seconds=second))
            rid = base + 2 * second - 1
            vid = vbase + second
            hr, spo2 = 70 + second % 9, 96 + second % 4
            for offset, (vital, value, unit) in enumerate(
                (("spo2", spo2, "%"), ("hr", hr, "/min"))
            ):
                readings.append(
                    (
                        rid + offset,
                        session_id,
                        at,
                        at,
                        f"device:{BENCH_DEVICE}",
                        1,
                        at,
                        vital,
                        float(value),
                        unit,
                        BENCH_DEVICE,
                        "mllp",
                        f"R{second:09d}",
                    )
                )
                reviews.append((session_id, at, at, by, rid + offset, "confirmed", 1, vid))
            vitals.append((vid, session_id, at, at, by, hr, spo2, rid, "mllp"))
        db.conn.executemany(
            "INSERT INTO device_readings (id, session_id, observed_at, recorded_at, recorded_by, "
            "device_time, received_at, vital, value, unit_received, device_id, source, "
            "message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            readings,
        )
        db.conn.executemany(
            "INSERT INTO vitals (id, session_id, observed_at, recorded_at, recorded_by, hr, spo2, "
            "device_reading_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vitals,
        )
        db.conn.executemany(
            "INSERT INTO device_reading_reviews (session_id, observed_at, recorded_at, "
            "recorded_by, device_reading_id, decision, automatic, vitals_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            reviews,
        )
        audit.seal(db, by, "device_readings", clock.now(), session_id)
    store.close()
    return session_id, dose_at + timedelta(seconds=seconds)


def _one_message(sock: socket.socket, decoder: MllpDecoder, wire: bytes) -> bytes:
    sock.sendall(wire)
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the listener closed the connection")
        for event in decoder.feed(data):
            if isinstance(event, Frame):
                return event.payload


def measure_stored_latency(
    path: Path, session_id: str, count: int, rate_hz: float = 1.0
) -> list[float]:
    """Milliseconds from a monitor's message leaving its socket to its ``AA`` (sent only once
    the readings are committed): MLLP message -> stored (pending, or confirmed by the protocol),
    at ``rate_hz``, beside the record already in ``path``. Every message must get AA."""
    writer = _store_writer(path, session_id)
    listener = MllpListener(PatientRule("bed", "BED-1"), ListenerConfig(port=0))
    host, port = listener.start_in_thread(writer.sink)
    times: list[float] = []
    try:
        feed = [frame(m) for m in messages("mindray", count, prefix="L")][:count]
        with socket.create_connection((host, port), timeout=30) as sock:
            decoder = MllpDecoder()
            started = time.perf_counter()
            for number, wire in enumerate(feed):
                delay = started + number / rate_hz - time.perf_counter() if rate_hz > 0 else 0
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                answer = _one_message(sock, decoder, wire)
                times.append((time.perf_counter() - t0) * 1000)
                if b"MSA|AA" not in answer:
                    raise RuntimeError("a benchmark message was not accepted")
    finally:
        listener.stop()
        writer.close()
    return times


def measure_store_throughput(
    path: Path, session_id: str, count: int, connections: int, window: int = 1
) -> dict[str, float]:
    """Sustained messages/s through the listener into the real store (group commit: one
    transaction per batch of what arrived meanwhile, each message sealed into the audit trail,
    ACK after the commit), senders in another process, each connection keeping at most
    ``window`` messages unanswered; all AA, in order. Also the mean messages per transaction."""
    writer = _store_writer(path, session_id)
    listener = MllpListener(PatientRule("bed", "BED-1"), ListenerConfig(port=0))
    host, port = listener.start_in_thread(writer.sink)
    try:
        result = _run_senders(host, port, count, connections, "mindray", window)
    finally:
        listener.stop()
        writer.close()
    if writer.stored < result["sent"]:  # every message carries a reading: each must be new
        raise RuntimeError(f"only {writer.stored} readings stored for {result['sent']} messages")
    return {
        "messages_per_s": result["sent"] / result["seconds"],
        "per_commit": result["sent"] / max(1, writer.batches),
    }


def _store_memory_child(db: str, seconds: int) -> None:
    """Run in a subprocess: ``seconds`` of a 1 Hz SpO2/HR feed (and NIBP every 5 minutes, left
    pending) through the store and the session model, fast-forwarded; print RSS samples."""
    from kapmonitor.bench_record import start_bench_session
    from kapmonitor.domain.clock import FakeClock
    from kapmonitor.domain.protocol import load_protocols
    from kapmonitor.paths import resources_dir
    from kapmonitor.store.device_store import add_device_readings
    from kapmonitor.store.session_model import SessionModel
    from kapmonitor.store.session_store import SessionStore

    protocol = load_protocols([resources_dir() / "protocols"]).protocols["clinic-ketamine"]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds + 900)
    clock = FakeClock(start)
    store = SessionStore.open(Path(db), clock)
    session_id = start_bench_session(store, start, "BENCH-MEM", protocol)
    model = SessionModel.load(store, session_id)
    step = max(1, seconds // 36)
    for second in range(1, seconds + 1):
        clock.advance(seconds=1)
        now = clock.now()
        common = {
            "device_id": BENCH_DEVICE,
            "source": "mllp",
            "received_at": now,
            "observed_at": now,
        }
        batch = [
            DeviceReading(
                message_id=f"M{second}", vital="spo2", value=96.0 + second % 4, unit="%", **common
            ),
            DeviceReading(
                message_id=f"M{second}", vital="hr", value=70.0 + second % 9, unit="/min", **common
            ),
        ]
        if second % 300 == 0:
            batch += [
                DeviceReading(
                    message_id=f"N{second}", vital="sbp", value=124.0, unit="mm[Hg]", **common
                ),
                DeviceReading(
                    message_id=f"N{second}", vital="dbp", value=78.0, unit="mm[Hg]", **common
                ),
            ]
        model.apply(add_device_readings(store, session_id, batch))
        if second % step == 0:
            gc.collect()
            print(f"{_rss_mb():.1f}", flush=True)
    store.close()


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_store_memory(folder: Path, seconds: int) -> tuple[float, list[float]]:
    """Growth (MB) over the last third of a 1 Hz feed through the store, in a fresh process."""
    code = (
        "import sys; from kapmonitor.bench_devices import _store_memory_child; "
        f"_store_memory_child(sys.argv[1], {seconds})"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder / "device-memory.sqlite")],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    samples = [float(v) for v in done.stdout.split()] if done.returncode == 0 else []
    if not samples:
        return float("nan"), []
    third = max(1, len(samples) // 3)
    return samples[-1] - samples[-1 - third], samples


def device_rows(folder: Path, seconds: int, quick: bool = False) -> list[Row]:
    """The device figures of ``kapmonitor bench`` (issue 13), through the real store."""
    print("device figures: building a device record …", flush=True)
    db = folder / "devices.sqlite"
    session_id, _now = device_record(db, seconds)
    latency = measure_stored_latency(db, session_id, 15 if quick else 120)
    rows = [
        Row(
            f"MLLP message → stored (pending/auto-confirmed), 1 Hz, {seconds // 60}-min record, "
            "median",
            statistics.median(latency),
            "ms",
            "≤ 16 ms p99 (with charting)",
            note="ACK round trip on loopback; with charting: the window row below",
        ),
        Row("  … p99", percentile(latency, 0.99), "ms", "≤ 16 ms (with charting)"),
    ]
    count = 400 if quick else 6000
    for label, connections, window in (
        ("4 senders, each waiting for its ACK", 4, 1),
        ("1 gateway pipelining (64 unanswered)", 1, 64),
    ):
        alone = measure_throughput(count * 2, connections, "mindray", window)
        rows.append(
            Row(
                f"MLLP listener alone (no-op store), {label}",
                alone["messages_per_s"],
                "msg/s",
                "≥ 2,000 msg/s",
                note="the listener's own work: parsing, matching, ACKs in order",
            )
        )
    for label, connections, window in (
        ("4 senders, each waiting for its ACK", 4, 1),
        ("16 senders, each waiting for its ACK", 16, 1),
        ("1 gateway pipelining (64 unanswered)", 1, 64),
    ):
        figure = measure_store_throughput(db, session_id, count, connections, window)
        per_commit = f"group commit: {figure['per_commit']:.1f} messages per fsync'd commit"
        rows.append(
            Row(
                f"MLLP listener → real store, sustained, {label}",
                figure["messages_per_s"],
                "msg/s",
                "≥ 2,000 msg/s" if window > 1 else "— (see note)",
                # A sender waiting for each ACK puts at most one message in each commit: the
                # disk's fsync bounds it, not the listener (docs/devices.md).
                note=per_commit
                if window > 1
                else f"{per_commit}; each sender waits for its ACK: bounded by the fsync",
            )
        )
    print("device figures: a 1 Hz feed through the store for memory …", flush=True)
    growth, _samples = measure_store_memory(folder, seconds)
    rows.append(
        Row(
            "  … memory growth over the last third of a 1 Hz feed (store + session model)",
            growth,
            "MB",
            "≤ 1 MB",
            note="without the window; the chart's own share is tested (under 1 MB)",
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kapmonitor.bench_devices")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--profile", choices=("philips", "mindray"), default="mindray")
    args = parser.parse_args(argv)
    for connections, window in dict.fromkeys(((args.connections, 1), (1, 1), (1, 64))):
        figure = measure_throughput(args.messages, connections, args.profile, window)
        verdict = "meets" if figure["messages_per_s"] >= TARGET_MESSAGES_PER_S else "below"
        how = "each waiting for its ACK" if window == 1 else f"pipelining {window}"
        print(
            f"MLLP listener throughput ({args.profile}, {connections} connection(s), {how}, "
            f"{int(figure['messages'])} messages, loopback, no-op store): "
            f"{figure['messages_per_s']:,.0f} messages/s "
            f"({verdict} the {TARGET_MESSAGES_PER_S:,.0f}/s target)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
