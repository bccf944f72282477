"""A bedside-monitor simulator: realistic HL7 v2 ORU^R01 streams over MLLP.

Why: the listener, the tests and the benchmark need a monitor that behaves like one (a 1 Hz
SpO₂/HR trend, a blood pressure every five minutes, a desaturation, a probe taken off, motion
artefacts) without a monitor on the desk. Two profiles cover the two shapes seen in the field:

- ``philips``: HL7 v2.3, LOINC codes, units as UCUM text, patient in PID-3, bed in PV1-3;
- ``mindray``: HL7 v2.6, IEEE 11073 MDC codes and MDC units (``150456^MDC_PULS_OXIM_SAT_O2^MDC``,
  ``262688^MDC_DIM_PERCENT^MDC``), the equipment in OBX-18.

Each message is one simulated second of physiology; ``--rate`` is how many of them are sent per
wall-clock second (a fast-forward for tests and benchmarks), ``--duration`` how many simulated
seconds. The physiology repeats every ten minutes: NIBP at 0 and 300 s, an artefact (HR spike
marked wrong, OBX-11 W) at 45 s and 400 s, a desaturation to about 85 % from 120 to 200 s, the
probe off (OBX-11 X, no value) from 330 to 345 s. It prints counts of answers, never values.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kapmonitor.devices.mllp import Frame, MllpDecoder, frame

__all__ = [
    "PROFILES",
    "Sample",
    "SendResult",
    "build_message",
    "messages",
    "run_simulate",
    "samples",
    "send_messages",
]

CYCLE_S = 600
NIBP_EVERY_S = 300
DESAT = (120, 200)
PROBE_OFF = (330, 345)
ARTEFACT_AT = (45, 400)
PROFILES = ("philips", "mindray")


@dataclass(frozen=True)
class Sample:
    """One simulated second: what the monitor would report then."""

    t: int  # seconds since the feed started
    spo2: int | None
    hr: int | None
    nibp: tuple[int, int, int] | None  # systolic, diastolic, mean when a cuff cycle ends now
    probe_off: bool
    artefact: bool


def samples(duration_s: int, seed: int = 7) -> Iterator[Sample]:
    """A physiological 1 Hz feed, deterministic for a seed."""
    rng = random.Random(seed)
    for t in range(duration_s):
        phase = t % CYCLE_S
        probe_off = PROBE_OFF[0] <= phase < PROBE_OFF[1]
        artefact = phase in ARTEFACT_AT
        spo2 = 97 + rng.choice((0, 0, 1, -1))
        if DESAT[0] <= phase < DESAT[1]:
            depth = math.sin(math.pi * (phase - DESAT[0]) / (DESAT[1] - DESAT[0]))
            spo2 = round(97 - 12 * depth)
        hr = 72 + round(6 * math.sin(t / 90)) + rng.choice((0, 1, -1))
        if DESAT[0] <= phase < DESAT[1]:
            hr += 10
        if artefact:
            hr = 188  # a motion spike, marked wrong by the device
        nibp = None
        if phase % NIBP_EVERY_S == 0:  # the cuff is not the oximeter's probe
            sys_ = 128 + rng.randint(-6, 6)
            dia = 78 + rng.randint(-4, 4)
            nibp = (sys_, dia, round((sys_ + 2 * dia) / 3))
        yield Sample(
            t,
            None if probe_off else min(spo2, 100),
            None if probe_off else hr,
            nibp,
            probe_off,
            artefact,
        )


def _ts(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M%S") + when.strftime("%z")


def build_message(
    profile: str,
    sample: Sample,
    control_id: str,
    when: datetime,
    *,
    bed: str = "BED-1",
    patient: str = "SIM0001",
    device: str = "",
    nibp_only: bool = False,
) -> bytes:
    """One ORU^R01 of ``profile`` for ``sample`` (the NIBP in its own message: ``nibp_only``)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: one of {', '.join(PROFILES)}")
    stamp = _ts(when)
    obx: list[tuple[str, str, str, str, str]] = []  # code, value, unit, status, equipment
    mdc = profile == "mindray"
    device = device or ("MR-BV-0001" if mdc else "MX450-0001")
    if nibp_only:
        assert sample.nibp is not None
        sys_, dia, mean = sample.nibp
        if mdc:
            unit = "266016^MDC_DIM_MMHG^MDC"
            obx += [
                ("150021^MDC_PRESS_BLD_NONINV_SYS^MDC", str(sys_), unit, "F", device),
                ("150022^MDC_PRESS_BLD_NONINV_DIA^MDC", str(dia), unit, "F", device),
                ("150023^MDC_PRESS_BLD_NONINV_MEAN^MDC", str(mean), unit, "F", device),
            ]
        else:
            obx += [
                ("8480-6^Systolic blood pressure^LN", str(sys_), "mm[Hg]", "F", device),
                ("8462-4^Diastolic blood pressure^LN", str(dia), "mm[Hg]", "F", device),
                ("8478-0^Mean blood pressure^LN", str(mean), "mm[Hg]", "F", device),
            ]
    else:
        spo2_status = "X" if sample.probe_off else "F"
        hr_status = "X" if sample.probe_off else "W" if sample.artefact else "F"
        spo2 = "" if sample.spo2 is None else str(sample.spo2)
        hr = "" if sample.hr is None else str(sample.hr)
        if mdc:
            obx += [
                (
                    "150456^MDC_PULS_OXIM_SAT_O2^MDC",
                    spo2,
                    "262688^MDC_DIM_PERCENT^MDC",
                    spo2_status,
                    device,
                ),
                (
                    "149530^MDC_PULS_OXIM_PULS_RATE^MDC",
                    hr,
                    "264864^MDC_DIM_BEAT_PER_MIN^MDC",
                    hr_status,
                    device,
                ),
            ]
        else:
            obx += [
                ("59408-5^SpO2^LN", spo2, "%", spo2_status, device),
                ("8867-4^Heart rate^LN", hr, "/min", hr_status, device),
            ]
    if mdc:
        lines = [
            f"MSH|^~\\&|BeneVision^MINDRAY|ICU|KAPMONITOR|KAP|{stamp}||ORU^R01^ORU_R01|"
            f"{control_id}|P|2.6|||AL|NE||UNICODE UTF-8",
            f"PID|1||{patient}^^^KAP^MR||SIMULATED^PATIENT",
            f"PV1|1|I|KAP^^{bed}",
            f"OBR|1|||182777000^monitoring of patient^SCT|||{stamp}",
        ]
        for i, (code, value, unit, status, equipment) in enumerate(obx, start=1):
            lines.append(
                f"OBX|{i}|NM|{code}|1.1.{i}|{value}|{unit}|||||{status}|||{stamp}||||"
                f"{equipment}^MINDRAY^00A037^EUI-64"
            )
    else:
        lines = [
            f"MSH|^~\\&|IntelliVue|PIC|KAPMONITOR|KAP|{stamp}||ORU^R01|{control_id}|P|2.3",
            f"PID|||{patient}||SIMULATED^PATIENT",
            f"PV1||I|KAP^^{bed}",
            f"OBR|1|||VITALS^Vital signs|||{stamp}",
        ]
        for i, (code, value, unit, status, equipment) in enumerate(obx, start=1):
            lines.append(f"OBX|{i}|NM|{code}||{value}|{unit}|||||{status}|||{stamp}||||{equipment}")
    return ("\r".join(lines) + "\r").encode("utf-8")


def messages(
    profile: str,
    duration_s: int,
    *,
    start: datetime | None = None,
    seed: int = 7,
    bed: str = "BED-1",
    patient: str = "SIM0001",
    prefix: str = "SIM",
) -> Iterator[bytes]:
    """The feed as messages: one per simulated second, plus one per NIBP cycle."""
    start = start or datetime.now(UTC).astimezone().replace(microsecond=0)
    number = 0
    for sample in samples(duration_s, seed):
        when = start + timedelta(seconds=sample.t)
        number += 1
        yield build_message(
            profile, sample, f"{prefix}{number:09d}", when, bed=bed, patient=patient
        )
        if sample.nibp is not None:
            number += 1
            yield build_message(
                profile,
                sample,
                f"{prefix}{number:09d}",
                when,
                bed=bed,
                patient=patient,
                nibp_only=True,
            )


@dataclass
class SendResult:
    sent: int = 0
    answers: dict[str, int] | None = None
    closed_early: bool = False

    def count(self, code: str) -> int:
        return (self.answers or {}).get(code, 0)


def _ack_code(payload: bytes) -> str:
    for segment in payload.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            fields = segment.split(b"|")
            return fields[1].decode("ascii", "replace") if len(fields) > 1 else "?"
    return "?"


async def send_messages(
    host: str, port: int, stream: Iterator[bytes], rate_hz: float = 0.0, timeout_s: float = 10.0
) -> SendResult:
    """Send each message, wait for its ACK, pace to ``rate_hz`` (0: as fast as answers come)."""
    result = SendResult(answers={})
    assert result.answers is not None
    reader, writer = await asyncio.open_connection(host, port)
    decoder = MllpDecoder()
    started = time.monotonic()
    try:
        for payload in stream:
            if rate_hz > 0:
                due = started + result.sent / rate_hz
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            writer.write(frame(payload))
            await writer.drain()
            result.sent += 1
            ack: bytes | None = None
            while ack is None:
                data = await asyncio.wait_for(reader.read(65536), timeout_s)
                if not data:
                    result.closed_early = True
                    return result
                for event in decoder.feed(data):
                    if isinstance(event, Frame):
                        ack = event.payload
            code = _ack_code(ack)
            result.answers[code] = result.answers.get(code, 0) + 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return result


def run_simulate(args: argparse.Namespace) -> int:
    """Run the simulator from parsed arguments; prints one summary line (counts only)."""
    host, port = args.to
    stream = messages(
        args.profile, int(args.duration), seed=args.seed, bed=args.bed, patient=args.patient
    )
    try:
        result = asyncio.run(send_messages(host, port, stream, args.rate))
    except (OSError, TimeoutError) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else exc.strerror or exc
        print(f"kapmonitor: --to {host}:{port}: {reason}", file=sys.stderr)
        return 1
    answers = ", ".join(f"{k} {v}" for k, v in sorted((result.answers or {}).items()))
    tail = " (the listener closed the connection)" if result.closed_early else ""
    print(f"sent {result.sent} messages; answers: {answers or 'none'}{tail}")
    return 0 if not result.closed_early and result.count("AA") == result.sent else 1
