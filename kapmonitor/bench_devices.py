"""Device figures for the benchmark: the MLLP listener's sustained throughput on loopback.

Why: a gateway reconnecting after a network cut flushes its buffer as fast as the listener
acknowledges, so the listener must take messages much faster than monitors make them (issue 13's
target: at least 2,000 messages/s). Measured as a real deployment runs: the listener on its own
thread and loop in this process, delivering every accepted message to a no-op store callback (a
plain function, so it goes through the executor hop a real store takes), and the senders in a
separate process (a gateway is another program), each connection waiting for every ACK before
sending the next message (HL7 original-mode acknowledgement). Messages are the simulator's
Mindray-style v2.6 feed, built before the clock starts.

Run ``python -m kapmonitor.bench_devices`` (not yet part of ``kapmonitor bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence

from kapmonitor.devices.mllp import Frame, MllpDecoder, frame
from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.reading import DeviceReading
from kapmonitor.devices.simulator import messages

__all__ = ["TARGET_MESSAGES_PER_S", "measure_throughput"]

TARGET_MESSAGES_PER_S = 2000.0


def _no_op_store(readings: Sequence[DeviceReading]) -> None:
    """Stores nothing: what is measured is the listener, not the disk."""


async def _send_all(host: str, port: int, count: int, connections: int, profile: str) -> dict:
    per = count // connections
    feeds = [
        [frame(m) for m in messages(profile, per, prefix=f"B{c}-")][:per]
        for c in range(connections)
    ]
    answers: dict[str, int] = {}

    async def one(feed: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        decoder = MllpDecoder()
        for wire in feed:
            writer.write(wire)
            got = None
            while got is None:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("the listener closed the connection")
                for event in decoder.feed(data):
                    if isinstance(event, Frame):
                        got = event.payload
            code = got.split(b"MSA|", 1)[1][:2].decode("ascii", "replace")
            answers[code] = answers.get(code, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(feed) for feed in feeds))
    elapsed = time.perf_counter() - started
    return {"sent": per * connections, "seconds": elapsed, "answers": answers}


def _sender_main(argv: Sequence[str]) -> None:
    host, port, count, connections, profile = argv
    result = asyncio.run(_send_all(host, int(port), int(count), int(connections), profile))
    print(json.dumps(result))


def measure_throughput(
    count: int = 20_000, connections: int = 4, profile: str = "mindray"
) -> dict[str, float]:
    """Sustained messages/s through the listener to a no-op store; every message must get AA."""
    listener = MllpListener(PatientRule("bed", "BED-1"), ListenerConfig(port=0))
    host, port = listener.start_in_thread(_no_op_store)
    try:
        code = (
            "import sys; from kapmonitor.bench_devices import _sender_main; "
            "_sender_main(sys.argv[1:])"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, host, str(port), str(count), str(connections), profile],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    finally:
        listener.stop()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    accepted = result["answers"].get("AA", 0)
    if accepted != result["sent"]:
        raise RuntimeError(f"only {accepted} of {result['sent']} messages were accepted")
    return {
        "messages": float(result["sent"]),
        "connections": float(connections),
        "seconds": result["seconds"],
        "messages_per_s": result["sent"] / result["seconds"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kapmonitor.bench_devices")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--profile", choices=("philips", "mindray"), default="mindray")
    args = parser.parse_args(argv)
    for connections in dict.fromkeys((args.connections, 1)):
        figure = measure_throughput(args.messages, connections, args.profile)
        verdict = "meets" if figure["messages_per_s"] >= TARGET_MESSAGES_PER_S else "below"
        print(
            f"MLLP listener throughput ({args.profile}, {connections} connection(s), "
            f"{int(figure['messages'])} messages, loopback, no-op store): "
            f"{figure['messages_per_s']:,.0f} messages/s "
            f"({verdict} the {TARGET_MESSAGES_PER_S:,.0f}/s target)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
