"""``kapmonitor bench --before``: two printed tables read back and matched figure by figure."""

from __future__ import annotations

from kapmonitor.bench_compare import parse_table, side_by_side
from kapmonitor.bench_table import Row, print_table


def printed(rows: list[Row]) -> str:
    lines: list[str] = []
    print_table(rows, lines.append)
    return "building …\n\n" + "\n".join(lines) + "\n\nmachine: 2 CPUs"


def test_a_printed_table_reads_back_cell_by_cell() -> None:
    text = printed(
        [
            Row("save (10,801 points), median", 13.9, "ms", "≤ 8 ms", 0.22, "bare insert"),
            Row("  … p99", 35.2, "ms", "≤ 16 ms"),
        ]
    )
    rows = parse_table(text)
    assert [r["figure"] for r in rows] == ["save (10,801 points), median", "… p99"]
    assert rows[0]["measured"] == "13.9 ms" and rows[0]["target"] == "≤ 8 ms"
    assert rows[0]["floor"] == "0.22" and rows[0]["ratio"] == "63.2×"


def test_figures_match_across_counts_and_unmatched_ones_still_show() -> None:
    before = parse_table(
        printed(
            [
                Row("redraw (6 series × 10,801 points)", 7.68, "ms", "≤ 16 ms"),
                Row("gone", 1, "s", ""),
            ]
        )
    )
    after = parse_table(
        printed(
            [Row("redraw (7 series × 10,801 points)", 3.84, "ms", "≤ 8 ms"), Row("new", 2, "s", "")]
        )
    )
    table = side_by_side(before, after)
    assert table[1] == [
        "redraw (7 series × 10,801 points)",
        "7.68 ms",
        "3.84 ms",
        "≤ 8 ms",
        "0.50×",
    ]
    assert table[2][:3] == ["new", "", "2.00 s"]
    assert table[3][:3] == ["gone", "1.00 s", "(not measured now)"]
