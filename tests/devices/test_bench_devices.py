"""The device benchmark runs end to end and counts only accepted messages (no timing asserted)."""

from __future__ import annotations

from kapmonitor.bench_devices import main, measure_throughput


def test_the_throughput_figure_counts_every_message_accepted() -> None:
    figure = measure_throughput(count=200, connections=2)
    assert figure["messages"] == 200
    assert figure["messages_per_s"] == figure["messages"] / figure["seconds"]


def test_the_command_prints_its_figure(capsys) -> None:
    assert main(["--messages", "100", "--connections", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # the given connections, one connection, one pipelining gateway
    assert lines[0].startswith(
        "MLLP listener throughput (mindray, 2 connection(s), each waiting for its ACK, 100 messages"
    )
    assert "pipelining 64" in lines[2]
    assert all("messages/s" in line for line in lines)
