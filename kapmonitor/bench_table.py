"""The table ``kapmonitor bench`` prints, and its small measuring helpers.

Separate from the runs so that each half of the benchmark (the window, the archive, the
exports) imports the table without importing the others: the bench modules form no circle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    name: str
    value: float | None
    unit: str
    target: str
    floor: float | None = None
    floor_name: str = ""
    note: str = ""

    def cells(self) -> list[str]:
        value = "n/a" if self.value is None else _fmt(self.value)
        floor = "" if self.floor is None else _fmt(self.floor)
        ratio = ""
        if self.value is not None and self.floor:
            ratio = f"{self.value / self.floor:.1f}×"
        return [self.name, f"{value} {self.unit}", self.target, floor, ratio, self.note]


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_table(rows: list[Row], out: Callable[[str], None] = print) -> None:
    header = ["figure", "measured", "target", "floor", "ratio", "floor is / note"]
    cells = [header, *[r.cells() for r in rows]]
    for row, data in zip(cells[1:], rows, strict=True):
        row[5] = data.floor_name + (
            f"; {data.note}" if data.note and data.floor_name else data.note
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    out(line)
    for row in cells[1:]:
        out("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        action()
        times.append((time.perf_counter() - t0) * 1000)
    return times
