"""``kapmonitor simulate-oximeter --pty``: a separate process serving the simulated oximeter, read
by the real serial source through the path it prints; Ctrl-C ends it with a summary and no
values; it never puts its link over an existing file. POSIX only (pseudo-terminals)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from kapmonitor.cli import main
from kapmonitor.devices.reading import ConnectionState, DeviceReading
from kapmonitor.devices.serial_source import SerialOximeterSource


def test_the_command_serves_an_oximeter_the_serial_source_reads(tmp_path: Path) -> None:
    link = tmp_path / "ttyOXI"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kapmonitor", "simulate-oximeter", "--pty", "--link", str(link),
         "--rate", "50", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"oximeter on {link} (/dev/")

        batches: list[Sequence[DeviceReading]] = []

        async def read() -> None:
            source = SerialOximeterSource(str(link), no_data_after=30.0)
            task = asyncio.get_running_loop().create_task(
                source.run(lambda readings: batches.append(readings))
            )
            deadline = asyncio.get_running_loop().time() + 30
            while len(batches) < 10 and not task.done():
                assert asyncio.get_running_loop().time() < deadline, "no lines from the command"
                await asyncio.sleep(0.01)
            assert source.state == ConnectionState.CONNECTED
            source.stop()
            await asyncio.wait_for(task, 30)

        asyncio.run(read())
        assert [r.vital for r in batches[0]] == ["spo2", "hr"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.startswith("sent ") and "lines" in out
    assert "SPO2" not in first + out  # counts only, never values
    assert not link.exists()  # the link goes with the simulator


def test_the_link_never_replaces_an_existing_file(tmp_path: Path, capsys) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    code = main(["simulate-oximeter", "--pty", "--link", str(precious), "--duration", "0.1"])
    assert code == 1
    assert "--link" in capsys.readouterr().err
    assert precious.read_text() == "keep me" and not precious.is_symlink()


def test_a_link_in_a_missing_folder_is_refused(tmp_path: Path, capsys) -> None:
    code = main(["simulate-oximeter", "--pty", "--link", str(tmp_path / "no" / "tty")])
    assert code == 1
    assert capsys.readouterr().err.startswith("kapmonitor: --link: no folder")
