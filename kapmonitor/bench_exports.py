"""The export half of ``kapmonitor bench``: peak memory of ``export --all`` for each format.

Why a figure: before the writers streamed, ``export --all`` over 10,000 sessions held every file
in memory (447 MiB for JSON, 1.1 GiB for CSV, 2.4 GiB for FHIR). Each format now runs in a child
process of its own, exactly as a clinic would run it, and the child's peak resident size is read
from the operating system (``VmHWM``), so SQLite's own memory counts too. The floor is the same
child doing everything but the export (Python with the command line imported and the database
opened), so the difference is what exporting costs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kapmonitor.bench_table import Row

FORMATS = ("json", "csv", "fhir")
# The child reports its own high-water mark (VmHWM, per address space, so it starts at zero after
# exec; a forked child's rusage would start at the bench's own size) into the file it is given.
_REPORT = (
    "import sys; from pathlib import Path; "
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]; "
    "Path(sys.argv[-1]).write_text(hwm)"
)
# The real command line, or (for the floor) the same imports and the database opened.
_EXPORT = (
    "import sys; from kapmonitor.cli import main; "
    "code = main(['export', '--db', sys.argv[1], '--all', '--format', sys.argv[2], "
    "'--out', sys.argv[3]])\n" + _REPORT + "\nsys.exit(code)"
)
_FLOOR = (
    "import sys; import kapmonitor.cli; from kapmonitor.store.database import connect; "
    "from kapmonitor.reports.export_registry import export_formats; "
    "connect(__import__('pathlib').Path(sys.argv[1])).close()\n" + _REPORT
)


def _peak_mib(code: str, *args: str) -> tuple[float, float]:
    """Run ``code`` in a fresh Python; returns (peak resident MiB, seconds). Output is
    discarded: the export prints only a count and a path, and nothing of it is needed here."""
    with tempfile.TemporaryDirectory(prefix="kapmonitor-bench-hwm-") as tmp:
        report = Path(tmp) / "hwm"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, *args, str(report)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0 or not report.exists():
            raise RuntimeError(f"the bench's export child failed (exit {done.returncode})")
        return int(report.read_text()) / 1024, seconds  # VmHWM is in kB


def export_rows(db_path: Path, sessions: int, formats: tuple[str, ...] = FORMATS) -> list[Row]:
    """Peak memory of ``export --all`` for each format over the archive at ``db_path``."""
    floor, _ = _peak_mib(_FLOOR, str(db_path))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="kapmonitor-bench-export-") as tmp:
        for fmt in formats:
            peak, seconds = _peak_mib(_EXPORT, str(db_path), fmt, str(Path(tmp) / fmt))
            rows.append(
                Row(
                    f"export --all ({sessions:,} sessions), {fmt.upper()}: peak memory",
                    peak,
                    "MiB",
                    "flat in the number of sessions",
                    floor,
                    "the same process without exporting",
                    f"{seconds:.0f} s",
                )
            )
    return rows


__all__ = ["FORMATS", "export_rows"]
