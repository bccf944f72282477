"""Kill ``kapmonitor demo --pace`` with SIGKILL at random moments; prove nothing acknowledged
was lost.

Each trial records a simulated session into one database (the same file across trials, as a
clinic laptop would), reads the ``committed <kind> <id>`` lines the process printed before it
died, and then checks, after every kill:
- every printed entry is in the database (an acknowledged entry is never lost);
- ``PRAGMA integrity_check`` says ``ok`` and ``kapmonitor verify`` finds the audit chain intact;
- the killed session is listed as unfinished and resumes with its clock (elapsed time computed
  from its stored start), and a new entry can be committed to it.

Run the documented 200-trial run with::

    .venv/bin/python -m tests.crash_trials --trials 200

It prints one line per trial and a summary table; the exit code is 0 only when nothing was lost.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kapmonitor.domain.clock import SystemClock
from kapmonitor.domain.records import Entry, Intervention
from kapmonitor.store.session_store import SessionStore
from kapmonitor.store.verify import verify_database

PACE_SECONDS = 0.01  # between entries, so a kill can land between or inside commits
DEMO_ENTRIES = 56  # commits a whole demo session prints (session start included)


def _entry_tables() -> dict[str, str]:
    tables: dict[str, str] = {"session": "sessions"}
    pending = list(Entry.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if getattr(cls, "kind", None) and getattr(cls, "table", None):
            tables[cls.kind] = cls.table
    return tables


KIND_TABLES = _entry_tables()


@dataclass
class TrialResult:
    number: int
    killed_after_s: float
    acknowledged: int
    lost: list[str] = field(default_factory=list)
    integrity: str = "ok"
    verify_ok: bool = True
    verify_lines: list[str] = field(default_factory=list)
    resumed: bool = True
    finished_before_kill: bool = False

    @property
    def ok(self) -> bool:
        return not self.lost and self.integrity == "ok" and self.verify_ok and self.resumed


@dataclass
class Summary:
    trials: int = 0
    kills: int = 0
    acknowledged: int = 0
    lost: int = 0
    integrity_failures: int = 0
    verify_failures: int = 0
    resume_failures: int = 0

    def add(self, result: TrialResult) -> None:
        self.trials += 1
        self.kills += 0 if result.finished_before_kill else 1
        self.acknowledged += result.acknowledged
        self.lost += len(result.lost)
        self.integrity_failures += result.integrity != "ok"
        self.verify_failures += not result.verify_ok
        self.resume_failures += not result.resumed

    def table(self) -> str:
        rows = [
            ("trials", self.trials),
            ("SIGKILLs delivered mid-run", self.kills),
            ("entries acknowledged (printed as committed)", self.acknowledged),
            ("entries lost", self.lost),
            ("integrity_check failures", self.integrity_failures),
            ("verify failures", self.verify_failures),
            ("resume failures", self.resume_failures),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value:>8}" for name, value in rows)


def run_trial(
    number: int, db: Path, rng: random.Random, python: str = sys.executable
) -> TrialResult:
    """One demo process, killed at a random moment: after a random number of acknowledged
    entries plus a random fraction of the pause between entries (so some kills land inside a
    transaction), or during start-up when that number is zero."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [python, "-m", "kapmonitor", "demo", "--db", str(db), "--pace", str(PACE_SECONDS)]
    command += ["--seed", str(number)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    started = time.monotonic()
    target = rng.randrange(0, DEMO_ENTRIES)
    lines: list[str] = []
    assert process.stdout is not None
    if target == 0:
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere in start-up, opening or migrating
    else:
        for line in process.stdout:
            if line.startswith("committed "):
                lines.append(line.strip())
            if len(lines) >= target:
                break
        time.sleep(rng.uniform(0.0, PACE_SECONDS))
    finished = process.poll() is not None
    if not finished:
        process.send_signal(signal.SIGKILL)
    out, _ = process.communicate(timeout=60)
    lines += [line for line in out.splitlines() if line.startswith("committed ")]
    result = TrialResult(number, time.monotonic() - started, len(lines))
    result.finished_before_kill = finished and process.returncode == 0
    check(db, lines, result)
    return result


def check(db: Path, lines: list[str], result: TrialResult) -> None:
    if not db.exists():
        if lines:
            result.lost = lines
        return
    conn = sqlite3.connect(db)
    try:
        result.integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        for line in lines:
            _, kind, row_id = line.split(maxsplit=2)
            table = KIND_TABLES[kind]
            column = "id"
            found = conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", [row_id]).fetchone()
            if found is None:
                result.lost.append(line)
    finally:
        conn.close()
    report = verify_database(db)
    result.verify_ok = report.ok
    result.verify_lines = report.lines
    result.resumed = _resumes(db, lines, result.finished_before_kill)


def _resumes(db: Path, lines: list[str], finished: bool) -> bool:
    """The killed session opens, lists as unfinished, shows its clock and takes a new entry."""
    sessions = [line.split()[2] for line in lines if line.split()[1] == "session"]
    if not sessions:
        return True  # killed before the session started: nothing to resume
    session_id = sessions[-1]
    store = SessionStore.open(db, SystemClock())
    try:
        log = store.load(session_id)
        elapsed = (SystemClock().now() - log.started_at()).total_seconds()
        if elapsed <= 0:
            return False
        if log.ended_at() is not None:
            return finished or any(line.split()[1] == "end" for line in lines)
        if session_id not in {s["id"] for s in store.unfinished_sessions()}:
            return False
        store.add(
            session_id,
            Intervention("note", SystemClock().now(), detail="resumed after a crash"),
            log.clinicians[0],
        )
        return True
    finally:
        store.close()


def run(
    trials: int, seed: int, folder: Path, echo: bool = True
) -> tuple[Summary, list[TrialResult]]:
    rng = random.Random(seed)
    db = folder / "crash.sqlite"
    summary = Summary()
    results = []
    for number in range(1, trials + 1):
        result = run_trial(number, db, rng)
        summary.add(result)
        results.append(result)
        if echo:
            state = "finished" if result.finished_before_kill else "killed"
            print(
                f"trial {number:>4}: {state} at {result.killed_after_s:.2f} s, "
                f"{result.acknowledged:>3} acknowledged, {len(result.lost)} lost, "
                f"integrity {result.integrity}, verify {'ok' if result.verify_ok else 'FAILED'}, "
                f"resume {'ok' if result.resumed else 'FAILED'}",
                flush=True,
            )
    return summary, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", metavar="FOLDER", help="keep the database in this folder")
    args = parser.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kapmonitor-crash-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    summary, results = run(args.trials, args.seed, folder)
    print()
    print(summary.table())
    print(f"\n{summary.trials} trials in {time.monotonic() - started:.0f} s; database {folder}")
    for result in results:
        if not result.ok:
            print(f"trial {result.number}: lost {result.lost}; {result.verify_lines}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
