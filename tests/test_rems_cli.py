"""`kapmonitor sessions` names each esketamine REMS session's form due date and submission."""

from __future__ import annotations

from pathlib import Path

from kapmonitor.cli import main
from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Dose, VitalSigns
from kapmonitor.store import rems_store
from tests.factories import T0, open_store, protocol, session_start
from tests.store.test_rems_store import rems_start


def test_sessions_show_the_rems_due_date_then_who_submitted(tmp_path: Path, capsys) -> None:
    path = tmp_path / "cli.sqlite"
    clock = FakeClock(T0)
    store = open_store(path, clock)
    sid = store.start_session(
        session_start(clock, rems=rems_start()), "Dr A", protocol=protocol("esketamine-rems")
    )
    store.add(sid, VitalSigns(clock.now(), sbp=128, dbp=80, hr=72, spo2=98, rr=14), "Dr A")
    clock.advance(minutes=5)
    store.add(sid, Dose("esketamine", "intranasal", 56, clock.now(), lot_number="L1"), "Dr A")
    other = store.start_session(
        session_start(clock, patient_code="KAP-0777"), "Dr A", protocol=protocol("clinic-ketamine")
    )
    due = rems_store.status(store.db, sid, clock.now().date()).due
    assert main(["sessions", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"REMS due {due.isoformat()} — OVERDUE, not submitted" in out  # T0 is long past
    assert out.count("REMS due") == 1 and other in out
    clock.advance(hours=24)
    rems_store.mark_submitted(store.db, sid, "Dr A", clock.now(), "Dr A", clock)
    store.close()
    assert main(["sessions", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"REMS due {due.isoformat()} / submitted by Dr A on " in out
