"""The monitor simulator: the physiology it promises, messages the listener accepts, and the
``simulate-monitor`` command end to end against a real listener."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kapmonitor.cli import main
from kapmonitor.devices.hl7_message import parse_oru
from kapmonitor.devices.mllp_listener import ListenerConfig, MllpListener, PatientRule
from kapmonitor.devices.reading import ReadingFlag
from kapmonitor.devices.simulator import messages, samples

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_one_cycle_has_the_promised_events() -> None:
    feed = list(samples(600))
    assert len(feed) == 600
    assert [s.t for s in feed if s.nibp] == [0, 300]
    assert [s.t for s in feed if s.artefact] == [45, 400]
    assert [s.t for s in feed if s.probe_off] == list(range(330, 345))
    lowest = min(s.spo2 for s in feed if s.spo2 is not None)
    assert 84 <= lowest <= 86
    assert all(s.spo2 >= 94 for s in feed if s.spo2 is not None and not 120 <= s.t < 200)
    assert all(s.spo2 is None and s.hr is None for s in feed if s.probe_off)
    assert list(samples(600)) == feed  # deterministic for a seed


@pytest.mark.parametrize("profile", ["philips", "mindray"])
def test_every_message_of_an_hour_parses_into_the_feed(profile) -> None:
    stream = list(messages(profile, 3600, start=NOW))
    assert len(stream) == 3600 + 12  # one a second, plus NIBP every five minutes
    parsed = [parse_oru(m, NOW) for m in stream]
    assert len({p.control_id for p in parsed}) == len(parsed)
    readings = [r for p in parsed for r in p.readings]
    counts = {v: sum(r.vital == v for r in readings) for v in ("spo2", "hr", "sbp", "dbp")}
    assert counts == {"spo2": 3600, "hr": 3600, "sbp": 12, "dbp": 12}
    off = [r for r in readings if ReadingFlag.PROBE_OFF in r.flags]
    assert len(off) == 6 * 15 * 2  # SpO2 and HR for 15 s in each of 6 cycles
    artefacts = [r for r in readings if r.artefact]
    assert {r.vital for r in artefacts} == {"hr"} and len(artefacts) == 12
    assert min(r.value for r in readings if r.vital == "spo2" and r.value) <= 86
    assert parsed[11].readings[0].observed_at == NOW.replace(second=10)  # after t=0 NIBP


@pytest.fixture
def listener():
    stored: list = []
    listener = MllpListener(PatientRule("bed", "BED-3"), ListenerConfig(port=0))
    address = listener.start_in_thread(stored.extend)
    yield listener, address, stored
    listener.stop()


def test_simulate_monitor_feeds_a_listener(listener, capsys) -> None:
    _, (host, port), stored = listener
    code = main(
        ["simulate-monitor", "--to", f"{host}:{port}", "--profile", "mindray", "--rate", "0",
         "--duration", "301", "--bed", "BED-3", "--patient", "PT-SECRET"]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.strip() == "sent 303 messages; answers: AA 303"
    assert "PT-SECRET" not in out.out + out.err
    assert sum(r.vital == "spo2" for r in stored) == 301
    assert sum(r.vital == "sbp" for r in stored) == 2
    assert {r.device_id for r in stored} == {"MR-BV-0001"}


def test_simulate_monitor_reports_refusals_and_fails(listener, capsys) -> None:
    _, (host, port), stored = listener
    code = main(["simulate-monitor", "--to", f"{host}:{port}", "--rate", "0", "--duration", "3"])
    out = capsys.readouterr()
    assert code == 1
    assert out.out.strip() == "sent 4 messages; answers: AR 4"  # BED-1: not this session
    assert stored == []


def test_simulate_monitor_says_plainly_when_nothing_listens(listener, capsys) -> None:
    running, (host, port), _ = listener
    running.stop()
    code = main(["simulate-monitor", "--to", f"{host}:{port}", "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"kapmonitor: --to {host}:{port}: ")
    assert "Traceback" not in err


@pytest.mark.parametrize("target", ["nowhere", "host:", ":2575", "host:99999", "host:x"])
def test_simulate_monitor_refuses_a_bad_target(target, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate-monitor", "--to", target])
    assert caught.value.code == 2
    assert "HOST:PORT" in capsys.readouterr().err
