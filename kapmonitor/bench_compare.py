"""``kapmonitor bench --before TREE``: an earlier version and this one, measured in one run.

A figure means little beside a figure taken on another day: the shared machine's speed moves by
10-20 % between runs. So the earlier checkout (``TREE``, a git worktree of the commit to compare
with) and this version are benchmarked back to back, each in a fresh process with the same
arguments, and their tables are printed side by side, matched by figure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["parse_table", "run_compare", "side_by_side"]


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of a printed bench table, cut at the column positions its dashes line marks."""
    lines = text.splitlines()
    for index, line in enumerate(lines[:-1]):
        if line.startswith("figure") and set(lines[index + 1]) <= {"-", " "}:
            header, rule = line, lines[index + 1]
            break
    else:
        return []
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    names = [header[a : b + 2].strip() for a, b in spans]
    rows = []
    for line in lines[index + 2 :]:
        if not line.strip():
            break
        cells = [
            line[a : (spans[i + 1][0] if i + 1 < len(spans) else len(line))].strip()
            for i, (a, _b) in enumerate(spans)
        ]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def _key(figure: str) -> str:
    """A figure's name without its counts, so "6 series × 10,801 points" matches "7 series …"."""
    return re.sub(r"[\d][\d,.]*", "#", figure)


def side_by_side(before: list[dict[str, str]], after: list[dict[str, str]]) -> list[list[str]]:
    """One row per figure: name (as now), before, after, the target now, after/before."""
    earlier = {_key(row["figure"]): row for row in before}
    seen: set[str] = set()
    table = [["figure", "before", "after", "target", "after/before"]]
    for row in after:
        key = _key(row["figure"])
        old = earlier.get(key, {})
        seen.add(key)
        table.append(
            [
                row["figure"],
                old.get("measured", ""),
                row["measured"],
                row["target"],
                _ratio(old, row),
            ]
        )
    for row in before:
        if _key(row["figure"]) not in seen:
            table.append([row["figure"], row["measured"], "(not measured now)", "", ""])
    return table


def _ratio(old: dict[str, str], new: dict[str, str]) -> str:
    def number(cell: str) -> float | None:
        found = re.match(r"[\d,]+(\.\d+)?", cell or "")
        return float(found.group(0).replace(",", "")) if found else None

    a, b = number(old.get("measured", "")), number(new.get("measured", ""))
    return f"{b / a:.2f}×" if a and b is not None else ""


def _run(tree: Path | None, args: list[str]) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-m", "kapmonitor", "bench", *args],
        env=env,
        # ``-m`` (and the bench's own ``-c`` children) put the working directory first on the
        # path: run from a checkout, the earlier version would silently be this one.
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench failed ({tree or 'this version'}): {result.stderr[-2000:]}")
    return result.stdout


def _own_frozen(tree: Path, args: list[str]) -> list[str]:
    """The earlier version's start-up is timed on its own frozen build, when it has one."""
    own = tree / "dist" / "kapmonitor" / "kapmonitor"
    if "--frozen" not in args:
        return args
    at = args.index("--frozen")
    if not own.exists():
        return args[:at] + args[at + 2 :]
    return [*args[:at], "--frozen", str(own), *args[at + 2 :]]


def run_compare(before: Path, args: list[str]) -> int:
    """Benchmark ``before`` then this version, and print both tables and the side-by-side one."""
    if not (before / "kapmonitor" / "__init__.py").is_file():
        print(f"kapmonitor bench: {before} is not a KAP Monitor checkout", file=sys.stderr)
        return 2
    print(f"benchmarking the earlier version in {before} …", flush=True)
    old = _run(before, _own_frozen(before, args))
    print("benchmarking this version …", flush=True)
    new = _run(None, args)
    print("\n== before ==\n" + old.strip() + "\n\n== after ==\n" + new.strip() + "\n")
    table = side_by_side(parse_table(old), parse_table(new))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    print("  ".join(c.ljust(w) for c, w in zip(table[0], widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in table[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0
