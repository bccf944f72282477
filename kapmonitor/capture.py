"""``kapmonitor capture``: the device listener without a window, storing into a session.

Issue 13: for servers, tests and scripts, ``kapmonitor capture --db PATH --session ID --mllp
HOST:PORT [--serial DEV]`` runs the same MLLP listener the window runs (and the serial oximeter
source when asked) with the store as the sink: each device message is stored pending (and
confirmed automatically where the session's protocol says so) in one transaction, and only then
acknowledged ``AA``. After each commit it prints one line per row written, never a value:
``pending <vital> <id>`` for each device reading stored, ``confirmed vitals <id>`` for a vitals
row the protocol confirmed, ``alarm <priority> <id>`` for an alarm raised. It first prints
``listening HOST:PORT`` (the bound address: ``--mllp 127.0.0.1:0`` picks a free port). Ctrl-C
or SIGTERM stops it cleanly (a message being stored at that moment gets no ACK, so the device
resends it, and the database's unique key stores it once).

It lives outside :mod:`kapmonitor.devices` because it uses the store. It unlocks the database
like every other command (``KAPMONITOR_USER``/``KAPMONITOR_PASSWORD``, see
:mod:`kapmonitor.cli_keys`). SQLite is used from one writer thread only: the listener's loop
hands each message to it and waits, so the loop keeps serving other connections meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.reading import DeviceReading
from kapmonitor.domain.changes import Changes
from kapmonitor.store import device_store, permissions
from kapmonitor.store.database import StoreError
from kapmonitor.store.session_store import SessionStore


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def report_lines(changes: Changes) -> list[str]:
    """What ``capture`` prints for one committed change: kinds and row ids, never values."""
    lines = [f"pending {row['vital']} {row.id}" for row in changes.device_readings]
    lines += [f"confirmed vitals {row.id}" for row in changes.of("vitals")]
    lines += [f"alarm {row.priority} {row.id}" for row in changes.alarms_raised]
    return lines


class _Writer:
    """The store, opened and used on one thread (SQLite connections stay on their thread)."""

    def __init__(self, db_path: Path, session_id: str) -> None:
        self.session_id = session_id
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kapmonitor-capture")
        self.store: SessionStore = self.pool.submit(SessionStore.open, db_path).result()
        self.stored = 0

    def patient_code(self) -> str:
        def read() -> str:
            refused = permissions.why_not_add(self.store.db, self.session_id, "device_readings")
            if refused is not None:
                raise refused.error()
            row = self.store.db.execute(
                "SELECT patient_code FROM sessions WHERE id = ?", [self.session_id]
            ).fetchone()
            return str(row[0])

        return self.pool.submit(read).result()

    def _store(self, readings: Sequence[DeviceReading]) -> None:
        changes = device_store.add_device_readings(self.store, self.session_id, readings)
        self.stored += len(changes.device_readings)
        for line in report_lines(changes):
            _say(line)

    async def sink(self, readings: Sequence[DeviceReading]) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._store, readings)

    def close(self) -> None:
        self.pool.submit(self.store.close).result()
        self.pool.shutdown()


async def _serve(writer: _Writer, args: argparse.Namespace, rule: PatientRule) -> int:
    host, port = args.mllp
    listener = MllpListener(rule, ListenerConfig(host=host, port=port))
    sources: list[Any] = [listener]
    if args.serial:
        from kapmonitor.devices.serial_source import SerialOximeterSource

        sources.append(SerialOximeterSource(args.serial))

    def stop() -> None:
        for source in sources:
            source.stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)

    def ready(address: tuple[str, int]) -> None:
        _say(f"listening {address[0]}:{address[1]}")

    tasks = [asyncio.create_task(listener.run(writer.sink, ready=ready))]
    tasks += [asyncio.create_task(s.run(writer.sink)) for s in sources[1:]]
    failed = 0
    for finished in asyncio.as_completed(tasks):
        try:
            await finished
        except (OSError, StoreError) as exc:
            print(f"kapmonitor: capture: {exc}", file=sys.stderr)
            failed = 1
        stop()  # one source ending (stopped or failed) ends the capture
    return failed


def run_capture(args: argparse.Namespace, db_path: Path) -> int:
    """Run until stopped; 0 after a clean stop, 1 when a source failed."""
    writer = _Writer(db_path, args.session)
    try:
        kind, value = args.match if args.match else ("patient_id", writer.patient_code())
        if args.match:
            writer.patient_code()  # the session must exist and take readings
        code = asyncio.run(_serve(writer, args, PatientRule(kind, value)))
    finally:
        writer.close()
    print(f"capture stopped: {writer.stored} readings stored", file=sys.stderr)
    return code
