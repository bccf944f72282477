"""A device batch's NEWS2 reads consciousness through :class:`DoseFacts`, which remembers an
answer for the times that share it; whatever the order of the times asked, each answer is the
one the per-reading query gives (the newest MOAA/S or dissociation observation at or before)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapmonitor.domain.clock import FakeClock, to_iso
from kapmonitor.domain.records import Observation
from kapmonitor.store import protocol_effects
from tests.factories import T0, open_store, session_start

MINUTES = 60


def _store_with_observations(path: Path, minutes: list[int]):
    clock = FakeClock(T0)
    store = open_store(path, clock)
    session_id = store.start_session(session_start(clock), "Dr A")
    clock.advance(minutes=MINUTES + 1)
    for minute in minutes:
        at = T0 + timedelta(minutes=minute)
        store.add(session_id, Observation(at, moaas=5), "Dr A")
        store.add(session_id, Observation(at, rass=0), "Dr A")  # no consciousness score
    return store, session_id


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    observed=st.lists(st.integers(0, MINUTES), max_size=6),
    asked=st.lists(st.integers(-1, MINUTES + 1), min_size=1, max_size=12),
)
def test_each_answer_is_the_newest_observation_at_or_before_the_time(
    tmp_path_factory, observed: list[int], asked: list[int]
) -> None:
    store, session_id = _store_with_observations(
        tmp_path_factory.mktemp("f") / "f.sqlite", observed
    )
    facts = protocol_effects.DoseFacts(store.db, session_id)
    for minute in asked:
        at = to_iso(T0 + timedelta(minutes=minute, seconds=30 * (minute % 2)))
        expected = protocol_effects._latest_observation(
            store.db, session_id, at, protocol_effects._CONSCIOUSNESS
        )
        assert facts.latest_consciousness(at) == expected
    store.close()
