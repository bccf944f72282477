"""The device commands' arguments (``capture``, ``simulate-monitor``, ``simulate-oximeter``).

Why a module of its own: the command line builds its whole parser at every start, the window's
included, and declaring these next to their code imported the device layer, asyncio and the
store's device path before the first paint (about 0.15 s of start-up). Only argparse and the
standard library are imported here; the commands' code is imported when one of them runs.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

# The simulator's profiles (kapmonitor.devices.simulator.PROFILES; a test keeps them equal).
PROFILES = ("philips", "mindray")
# How capture matches a message to the session (kapmonitor.devices.mllp_listener.MATCH_KINDS).
MATCH_KINDS = ("bed", "device", "patient_id")


def _host_port_any(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, e.g. 127.0.0.1:2575")
    return host.strip("[]"), int(port)


def _match(text: str) -> tuple[str, str]:
    kind, sep, value = text.partition(":")
    if not sep or kind not in MATCH_KINDS or not value.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r}: give KIND:VALUE with KIND one of {', '.join(MATCH_KINDS)}, e.g. bed:BED-1"
        )
    return kind, value.strip()


def add_capture_parser(sub: Any, db_argument: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``capture`` subcommand: runs :func:`kapmonitor.capture.run_capture`."""
    cap = sub.add_parser(
        "capture",
        help="store device readings into a session without a window (docs/devices.md)",
    )
    db_argument(cap)
    cap.add_argument("--session", required=True, metavar="ID", help="the running session")
    cap.add_argument(
        "--mllp",
        required=True,
        type=_host_port_any,
        metavar="HOST:PORT",
        help="where the MLLP listener listens (port 0: any free port, printed)",
    )
    cap.add_argument("--serial", metavar="DEV", help="also read a serial oximeter on DEV")
    cap.add_argument(
        "--match",
        type=_match,
        metavar="KIND:VALUE",
        help="which messages belong to the session: bed:BED, device:ID or patient_id:ID "
        "(default: patient_id:<the session's patient code>)",
    )


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, e.g. 127.0.0.1:2575")
    return host.strip("[]"), int(port)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of 0 or more")
    return value


def add_simulate_parser(sub: argparse._SubParsersAction) -> None:
    """The ``simulate-monitor`` subcommand (:mod:`kapmonitor.devices.simulator`)."""
    sim = sub.add_parser(
        "simulate-monitor",
        help="send a simulated bedside monitor's HL7 feed over MLLP (docs/devices.md)",
    )
    sim.add_argument("--to", required=True, type=_host_port, metavar="HOST:PORT")
    sim.add_argument("--profile", choices=PROFILES, default="philips")
    sim.add_argument(
        "--rate",
        type=_non_negative,
        default=1.0,
        metavar="HZ",
        help="messages per second (default 1, real time; 0 sends as fast as answers come)",
    )
    sim.add_argument(
        "--duration",
        type=_non_negative,
        default=600.0,
        metavar="S",
        help="simulated seconds of feed (default 600: one full cycle of events)",
    )
    sim.add_argument("--bed", default="BED-1", help="the bed in PV1-3 (default BED-1)")
    sim.add_argument("--patient", default="SIM0001", help="the identifier in PID-3")
    sim.add_argument("--seed", type=int, default=7)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number above 0, up to 1000")
    return value


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds, 0 or more")
    return value


def add_simulate_oximeter_parser(sub: argparse._SubParsersAction) -> None:
    """The ``simulate-oximeter`` subcommand (:mod:`kapmonitor.devices.serial_simulator`)."""
    sim = sub.add_parser(
        "simulate-oximeter",
        help="a simulated Nonin-style serial oximeter on a pseudo-terminal (docs/devices.md)",
    )
    sim.add_argument(
        "--pty",
        action="store_true",
        required=True,
        help="serve on a new pseudo-terminal (the only transport so far; POSIX)",
    )
    sim.add_argument(
        "--link",
        default=None,
        metavar="PATH",
        help="also reachable at this path (a symlink; default: one in a temporary folder)",
    )
    sim.add_argument("--rate", type=_positive, default=1.0, metavar="HZ",
                     help="lines per second (default 1, as the oximeter)")  # fmt: skip
    sim.add_argument(
        "--duration",
        type=_duration,
        default=0.0,
        metavar="S",
        help="stop after this many seconds (default 0: until interrupted)",
    )
    sim.add_argument("--seed", type=int, default=13)
