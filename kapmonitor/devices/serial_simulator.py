"""A simulated Nonin-style oximeter on a pseudo-terminal, for the tests, the benchmark and demos.

Why a pseudo-terminal: the serial source then runs exactly as at the bedside (pyserial opens a
real tty device, sets its line discipline, reads with timeouts, sees EIO when the "cable" is
pulled), with no hardware. The simulator publishes the terminal under a stable path (a symlink,
like ``/dev/serial/by-id/...`` on Linux): :meth:`PtyOximeter.unplug` closes the terminal and
removes the link as unplugging a USB adapter does, :meth:`PtyOximeter.plug` makes a new terminal
behind the same path, so reconnection is tested through the same port name.

The feed (:func:`oximeter_feed`) is one line a second: a stable baseline with a little noise, a
desaturation episode, a probe-off spell (``SPO2=--- HR=---``), a one-second motion artefact
(implausible values), an undisplayable value and a torn line, repeating every
:data:`CYCLE_SECONDS`. POSIX only (``os.openpty``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from kapmonitor.devices.nonin_serial import NoninLine, format_line

__all__ = [
    "CYCLE_SECONDS",
    "PtyOximeter",
    "oximeter_feed",
    "run_simulate_oximeter",
]

#: One cycle of the simulated feed, in seconds (lines).
CYCLE_SECONDS = 300
#: Where in each cycle the episodes happen (second within the cycle, inclusive ranges).
DESATURATION = (60, 119)  # SpO₂ falls to about 84 % and recovers; HR rises
PROBE_OFF = (180, 194)  # "---" for 15 s
MOTION_ARTEFACT = 240  # one second of implausible values (in range, so only a person can tell)
UNDISPLAYABLE = 250  # a corrupted digit: SpO₂ 130 (kept, flagged out of range)
TORN_LINE = 260  # half a line, as after a framing error


def _desaturation_drop(second: int) -> float:
    """How far SpO₂ is below baseline during the episode: down over 20 s, 20 s low, back up."""
    start, end = DESATURATION
    if not start <= second <= end:
        return 0.0
    t = second - start
    if t < 20:
        return 13.0 * t / 20
    if t < 40:
        return 13.0
    return 13.0 * (end - second) / 20


def oximeter_feed(
    seed: int = 13, *, baseline_spo2: int = 97, baseline_hr: int = 72
) -> Iterator[str]:
    """The simulated oximeter's lines (without CR LF), one per second, forever."""
    rng = random.Random(seed)
    second = 0
    while True:
        phase = second % CYCLE_SECONDS
        if PROBE_OFF[0] <= phase <= PROBE_OFF[1]:
            yield format_line(NoninLine(None, None))
        elif phase == MOTION_ARTEFACT:
            yield format_line(NoninLine(71, 163))
        elif phase == UNDISPLAYABLE:
            yield format_line(NoninLine(130, baseline_hr))
        elif phase == TORN_LINE:
            yield "9 HR=07"
        else:
            drop = _desaturation_drop(phase)
            spo2 = round(baseline_spo2 - drop + rng.uniform(-0.6, 0.6))
            hr = round(baseline_hr + drop * 1.5 + rng.uniform(-2, 2))
            yield format_line(NoninLine(max(0, min(100, spo2)), hr))
        second += 1


class PtyOximeter:
    """A pseudo-terminal that behaves like an oximeter's serial port, at a stable ``path``.

    Write lines yourself (:meth:`send`, deterministic, for tests) or :meth:`start` a thread that
    sends :func:`oximeter_feed` at ``rate_hz``. Writes never block: if nobody reads and the
    terminal's buffer is full, the line is lost, as on a real wire.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
            self._tmp = tempfile.mkdtemp(prefix="kapmonitor-oximeter-")
            path = Path(self._tmp) / "ttyNONIN0"
        else:
            self._tmp = None
        self.path = Path(path)
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.lines_sent = 0
        self.lines_dropped = 0
        self.plug()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def device(self) -> str:
        """The terminal's own device name (/dev/pts/N) while plugged."""
        if self._slave is None:
            raise RuntimeError("the simulated oximeter is unplugged")
        return os.ttyname(self._slave)

    def plug(self) -> None:
        """A new terminal behind :attr:`path` (no-op if already plugged)."""
        with self._lock:
            if self._master is not None:
                return
            if self.path.exists() and not self.path.is_symlink():
                # Never replace a real file or device with the simulator's link.
                raise FileExistsError(f"{self.path} exists and is not a link")
            import tty  # POSIX only: imported here so the module imports anywhere

            master, slave = os.openpty()
            # Raw from the start: no echo back to the master (nobody reads it; a full echo
            # buffer would block the writes), no CR/LF translation of what is sent.
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            link = self.path.with_name(self.path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(os.ttyname(slave))
            link.replace(self.path)  # atomic: a reader never sees the path missing mid-swap

    def unplug(self) -> None:
        """Pull the cable: the terminal closes (a reader gets EIO) and the path disappears."""
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None

    def send(self, line: str | bytes, *, end: bytes = b"\r\n") -> bool:
        """Write one line (CR LF appended); False if unplugged or the buffer was full."""
        data = (line.encode("ascii") if isinstance(line, str) else line) + end
        with self._lock:
            if self._master is None:
                self.lines_dropped += 1
                return False
            try:
                written = os.write(self._master, data)
            except (BlockingIOError, OSError):
                self.lines_dropped += 1
                return False
        if written < len(data):
            self.lines_dropped += 1
            return False
        self.lines_sent += 1
        return True

    def start(self, rate_hz: float = 1.0, seed: int = 13) -> None:
        """Send :func:`oximeter_feed` at ``rate_hz`` lines a second, in a thread, until stopped."""
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            feed = oximeter_feed(seed)
            interval = 1.0 / rate_hz
            while not self._stop.wait(interval):
                self.send(next(feed))

        self._thread = threading.Thread(target=run, name="kap-oximeter-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop sending, unplug, and remove the temporary folder if this made one."""
        self.stop()
        self.unplug()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._tmp)

    def __enter__(self) -> PtyOximeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- kapmonitor simulate-oximeter ---------------------------------------------------------------


def run_simulate_oximeter(args: argparse.Namespace) -> int:
    """Serve the feed until ``--duration`` or Ctrl-C; prints the port's path first (for the
    reader to open), then one summary line. Simulated values are never printed."""
    if not hasattr(os, "openpty"):
        print("kapmonitor: --pty: pseudo-terminals need Linux or macOS", file=sys.stderr)
        return 1
    link = Path(args.link).expanduser() if args.link else None
    if link is not None and not link.parent.is_dir():
        print(f"kapmonitor: --link: no folder {link.parent}", file=sys.stderr)
        return 1
    try:
        sim = PtyOximeter(link)
    except OSError as exc:
        print(f"kapmonitor: --link: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with sim:
        print(f"oximeter on {sim.path} ({sim.device})", flush=True)
        sim.start(args.rate, args.seed)
        try:
            if args.duration:
                time.sleep(args.duration)
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
        sim.stop()
        print(f"sent {sim.lines_sent} lines, {sim.lines_dropped} not taken", flush=True)
    return 0
