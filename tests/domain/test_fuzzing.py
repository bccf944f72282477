"""Fuzzing the data a clinic can hand the app: scale files and sedation observations.

Malformed input gets a clear error and never a crash; an observation the validator accepts is
one the database accepts too (no CHECK constraint is the first to notice), so a refusal never
leaves a partial write. Vital signs, BP parsing and protocol files are fuzzed beside their own
tests (test_validation.py, test_alarms.py); JSON import and CSV quoting in tests/reports/.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapmonitor.domain.clock import FakeClock
from kapmonitor.domain.records import Observation
from kapmonitor.domain.reference import ReferenceDataError, default_reference, parse_scale
from kapmonitor.domain.validation import ValidationError
from kapmonitor.paths import resources_dir
from kapmonitor.store.session_store import SessionStore
from tests.factories import T0, session_start

REF = default_reference()
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SHIPPED_SCALES = [
    json.loads(p.read_text(encoding="utf-8"))
    for p in sorted((resources_dir() / "scales").glob("*.json"))
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)


@settings(max_examples=1000, deadline=None)
@given(data=JSON)
def test_any_json_as_a_scale_is_a_scale_or_a_named_refusal(data: Any) -> None:
    try:
        scale = parse_scale(data, "clinic/scales/fuzz.json")
    except ReferenceDataError as exc:
        assert str(exc).startswith("clinic/scales/fuzz.json: ")
    else:
        assert scale.minimum <= scale.maximum


@settings(max_examples=1000, deadline=None)
@given(
    index=st.integers(0, len(SHIPPED_SCALES) - 1),
    key=st.sampled_from(["kind", "source", "levels", "min", "max", "id", "name", "features"]),
    value=JSON,
    drop=st.booleans(),
)
def test_a_damaged_shipped_scale_is_refused_by_name(
    index: int, key: str, value: Any, drop: bool
) -> None:
    data = dict(SHIPPED_SCALES[index])
    if drop:
        data.pop(key, None)
    else:
        data[key] = value
    try:
        scale = parse_scale(data, "damaged.json")
    except ReferenceDataError as exc:
        assert str(exc).startswith("damaged.json: ")
    else:
        assert scale.minimum <= scale.maximum
        assert len({lvl.value for lvl in scale.levels}) == len(scale.levels)


SCORE = st.one_of(st.none(), st.integers(-10, 100))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    clock = FakeClock(T0)
    opened = SessionStore.open(tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite", clock)
    session_id = opened.start_session(session_start(clock), "Dr A")
    yield opened, session_id
    opened.close()


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moaas=SCORE,
    rass=SCORE,
    dissociation=SCORE,
    cadss=SCORE,
    features=st.lists(st.sampled_from(["derealisation", "calm", "unknown", ""]), max_size=3),
    minutes=st.integers(-600, 30),
)
def test_an_accepted_observation_is_stored_whole_and_a_refused_one_not_at_all(
    store: tuple[SessionStore, str],
    moaas: int | None,
    rass: int | None,
    dissociation: int | None,
    cadss: int | None,
    features: list[str],
    minutes: int,
) -> None:
    opened, session_id = store
    entry = Observation(
        observed_at=opened.clock.now() + timedelta(minutes=minutes),
        moaas=moaas,
        rass=rass,
        dissociation=dissociation,
        cadss_total=cadss,
        features=tuple(features),
    )
    before = opened.db.execute("SELECT count(*) FROM observations").fetchone()[0]
    try:
        row_id = opened.add(session_id, entry, "Dr A").primary_id
    except ValidationError as exc:
        assert exc.errors and all(e.message for e in exc.errors)
        after = opened.db.execute("SELECT count(*) FROM observations").fetchone()[0]
        assert after == before  # nothing half-written
    else:
        row = opened.row("observations", row_id)
        assert (row["moaas"], row["rass"], row["dissociation"]) == (moaas, rass, dissociation)


def test_the_shipped_scales_parse() -> None:
    for data in SHIPPED_SCALES:
        parse_scale(data, "shipped")
    assert Path(resources_dir() / "scales").is_dir()
