"""The session's stored protocol copy is parsed once, and a newer stored copy is read anew.

The views ask a session for its protocol several times per save and per device message; the
copy is frozen, so it is parsed once. These tests prove the parsed copy is the stored one, and
that a later stored copy (its text differs) is never answered by the earlier parse.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from kapmonitor.domain.clock import FakeClock
from kapmonitor.store.session_store import SessionLog
from tests.factories import T0, open_store, protocol, session_start, stored_row


def test_the_protocol_is_parsed_once_and_is_the_stored_one(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = open_store(tmp_path / "p.sqlite", clock)
    try:
        chosen = protocol("clinic-ketamine")
        sid = store.start_session(session_start(clock), "Dr A", protocol=chosen)
        log = store.load(sid)
        first = log.protocol
        assert first == chosen
        assert log.protocol is first  # no second parse
        assert store.load(sid).protocol == chosen  # a fresh load reads its own rows
    finally:
        store.close()


def test_a_newer_stored_copy_is_read_not_the_earlier_parse() -> None:
    older = protocol("clinic-ketamine")
    newer = protocol("esketamine-rems")
    log = SessionLog(session={"id": "s1"}, clinicians=["Dr A"])
    log.rows["session_protocols"] = [
        stored_row(
            "session_protocols",
            "2026-03-02T09:00:00.000Z",
            protocol_json=json.dumps(older.to_dict()),
        )
    ]
    assert log.protocol == older
    log.rows["session_protocols"].append(
        stored_row(
            "session_protocols",
            "2026-03-02T09:05:00.000Z",
            id=2,
            protocol_json=json.dumps(newer.to_dict()),
        )
    )
    assert log.protocol == newer
    assert replace(log).protocol == newer  # a copy of the log reads its own rows
