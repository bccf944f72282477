"""Protocols are data: the shipped files load, survive a round trip, and a bad file is refused
with the file, the field and the reason, while the last good protocol of that id stays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kapmonitor.domain.protocol import (
    ALARM_PARAMETERS,
    PRIORITIES,
    Protocol,
    ProtocolError,
    load_protocols,
    parse_protocol,
    protocol_folders,
)
from kapmonitor.paths import CONFIG_ENV_VAR, resources_dir

SHIPPED = resources_dir() / "protocols"

# A small valid protocol; each malformed case below changes one line of it.
VALID = """\
id = "clinic"
name = "Test clinic protocol"
version = 1
drugs = ["ketamine"]
source = "Test clinic governance 2026"
session_limit_minutes = { value = 180, source = "clinic limit" }
min_monitoring_minutes = { value = 60, source = "clinic minimum" }

[schedule]
baseline_required = true
overdue_grace_minutes = { value = 5, source = "clinic grace" }
before_discharge_window_minutes = { value = 15, source = "clinic window" }

[[schedule.intervals]]
from_minute = 0
to_minute = 90
every_minutes = 10
source = "early cadence"

[[schedule.intervals]]
from_minute = 90
to_minute = 180
every_minutes = 30
source = "late cadence"

[[schedule.checkpoints]]
id = "peak"
label = "Peak BP check (~40 min)"
minute = 40
window_minutes = 10
source = "peak source"

[discharge]
score = "aldrete"
pass = 9
source = "discharge source"

[[alarms]]
id = "sbp_high"
parameter = "sbp"
priority = "critical"
at_or_above = 180
source = "sbp source"

[[alarms]]
id = "hr_high"
parameter = "hr"
priority = "warning"
at_or_above = 111
source = "hr high source"

[[alarms]]
id = "hr_low"
parameter = "hr"
priority = "warning"
at_or_below = 49
source = "hr low source"

[[questionnaires]]
id = "phq9"
when = "pre"
source = "questionnaire source"
"""


def _changed(old: str, new: str) -> str:
    assert VALID.count(old) == 1, old
    return VALID.replace(old, new)


# --- The shipped protocols --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> dict[str, Protocol]:
    catalogue = load_protocols([SHIPPED])
    assert catalogue.problems == []
    return catalogue.protocols


def test_both_shipped_protocols_load(shipped: dict[str, Protocol]) -> None:
    assert {"clinic-ketamine", "esketamine-rems"} <= set(shipped)
    clinic = shipped["clinic-ketamine"]
    assert clinic.drugs == ("ketamine",)
    assert clinic.rems is False
    assert clinic.baseline_required
    assert clinic.origin.endswith("clinic-ketamine.toml")


def test_esketamine_protocol_has_the_rems_rules(shipped: dict[str, Protocol]) -> None:
    rems = shipped["esketamine-rems"]
    assert rems.rems is True
    assert rems.min_monitoring_minutes == 120
    assert [c.minute for c in rems.checkpoints] == [40]
    assert rems.baseline_required
    assert (rems.discharge_score, rems.discharge_pass) == ("aldrete", 9)
    assert "REMS" in rems.sources["min_monitoring_minutes"]


def test_shipped_alarm_set_matches_the_clinical_reference(shipped: dict[str, Protocol]) -> None:
    for protocol in shipped.values():
        rules = {r.id: r for r in protocol.alarms}
        assert rules["spo2_low_warning"].at_or_below == 91
        assert rules["spo2_low_critical"].at_or_below == 89
        assert rules["spo2_low_critical"].priority == "critical"
        assert (rules["rr_low"].at_or_below, rules["rr_high"].at_or_above) == (9, 25)
        assert rules["sbp_high_critical"].at_or_above == 180
        assert rules["sbp_rise"].rise_at_least == 40
        assert rules["dbp_high_critical"].at_or_above == 110
        assert rules["dbp_rise"].rise_at_least == 25
        assert (rules["hr_high"].at_or_above, rules["hr_low"].at_or_below) == (111, 49)
        assert rules["moaas_deep"].at_or_below == 2
        assert rules["sbp_pre_dose_caution"].at_or_above == 141
        assert rules["dbp_pre_dose_caution"].at_or_above == 91
        assert rules["sbp_pre_dose_caution"].phase == "pre_dose"
        assert rules["sbp_pre_dose_caution"].priority == "advisory"
        assert "weigh the risk of a transient rise" in rules["sbp_pre_dose_caution"].label
        assert rules["dbp_trial_stop"].at_or_above == 101
        assert rules["temp_high"].at_or_above == 38.0
        assert rules["temp_high"].source == "KAP Monitor default; clinic to confirm"
        assert (rules["rass_agitated"].at_or_above, rules["rass_sedated"].at_or_below) == (2, -3)


def test_unverified_items_say_so(shipped: dict[str, Protocol]) -> None:
    for protocol in shipped.values():
        rules = {r.id: r for r in protocol.alarms}
        for rule_id in ("dbp_trial_stop", "sbp_pre_dose_caution", "dbp_pre_dose_caution"):
            assert "(unverified)" in rules[rule_id].source
        assert "(unverified)" in rules["hr_high"].source  # also the trials' stop rule


def test_every_number_carries_a_source(shipped: dict[str, Protocol]) -> None:
    scalar_paths = {
        "session_limit_minutes",
        "min_monitoring_minutes",
        "schedule.overdue_grace_minutes",
        "schedule.before_discharge_window_minutes",
        "schedule.critical_recheck_minutes",
        "discharge",
        "discharge.freshness_minutes",
        "review.correction_review_factor",
        "adverse_events.serious_report_days",
        "schedule.baseline_vitals",
    }
    bp_paths = {
        f"bp_before_dosing.{k}" for k in ("caution_sbp", "caution_dbp", "hard_sbp", "hard_dbp")
    }
    for protocol in shipped.values():
        assert protocol.source.strip()
        expected = scalar_paths | (bp_paths if protocol.bp_before_dosing is not None else set())
        assert expected <= set(protocol.sources)
        assert all(text.strip() for text in protocol.sources.values())
        items = (*protocol.intervals, *protocol.checkpoints, *protocol.alarms)
        assert all(item.source.strip() for item in items)
        assert all(q.source.strip() for q in protocol.questionnaires)
        assert all(g.source.strip() for g in protocol.dose_guards)
        assert {r.parameter for r in protocol.alarms} == set(ALARM_PARAMETERS)
        assert {r.priority for r in protocol.alarms} == set(PRIORITIES)


def test_questionnaires_due(shipped: dict[str, Protocol]) -> None:
    for protocol in shipped.values():
        due = {(q.questionnaire_id, q.when) for q in protocol.questionnaires}
        assert due == {("phq9", "pre"), ("gad7", "pre"), ("post_session", "post")}


@pytest.mark.parametrize("protocol_id", ["clinic-ketamine", "esketamine-rems"])
def test_round_trip_through_json_is_exact(shipped: dict[str, Protocol], protocol_id: str) -> None:
    protocol = shipped[protocol_id]
    stored = json.dumps(protocol.to_dict(), allow_nan=False)
    restored = Protocol.from_dict(json.loads(stored))
    assert restored == protocol
    assert restored.to_dict() == protocol.to_dict()
    assert json.dumps(restored.to_dict(), allow_nan=False) == stored


def test_from_dict_refuses_a_damaged_copy() -> None:
    with pytest.raises(ProtocolError, match="stored protocol"):
        Protocol.from_dict({"id": "x"})


def test_a_valid_file_parses() -> None:
    protocol = parse_protocol(VALID, "clinic.toml")
    assert protocol.id == "clinic"
    assert protocol.description == ""
    assert [i.every_minutes for i in protocol.intervals] == [10, 30]
    assert protocol.alarms[0].label == "Systolic BP ≥ 180 mmHg"  # generated when not given


def test_two_lows_of_different_priority_are_fine() -> None:
    text = VALID + (
        '\n[[alarms]]\nid = "spo2_w"\nparameter = "spo2"\npriority = "warning"\n'
        'at_or_below = 91\nsource = "w"\n'
        '\n[[alarms]]\nid = "spo2_c"\nparameter = "spo2"\npriority = "critical"\n'
        'at_or_below = 89\nsource = "c"\n'
    )
    assert len(parse_protocol(text, "clinic.toml").alarms) == 5


def test_a_low_above_a_high_is_fine_in_separate_phases() -> None:
    text = VALID + (
        '\n[[alarms]]\nid = "hr_pre"\nparameter = "hr"\npriority = "advisory"\n'
        'at_or_below = 120\nphase = "pre_dose"\nsource = "x"\n'
        '\n[[alarms]]\nid = "hr_post"\nparameter = "hr"\npriority = "advisory"\n'
        'at_or_above = 100\nphase = "post_dose"\nsource = "x"\n'
    )
    with pytest.raises(ProtocolError, match=r"alarms\[4\]\.at_or_below"):
        parse_protocol(text, "clinic.toml")  # conflicts with hr_high (phase "any")
    text = text.replace("at_or_below = 120", "at_or_below = 48")
    assert len(parse_protocol(text, "clinic.toml").alarms) == 5


# --- Every malformed case is refused naming file and field ------------------------------------

MALFORMED = [
    (
        "zero interval",
        "every_minutes = 10",
        "every_minutes = 0",
        "schedule.intervals[1].every_minutes: must be above 0",
    ),
    (
        "negative interval",
        "every_minutes = 10",
        "every_minutes = -5",
        "schedule.intervals[1].every_minutes: must be above 0",
    ),
    (
        "from after to",
        "to_minute = 90",
        "to_minute = 0",
        "schedule.intervals[1].to_minute: 0 must be after from_minute 0",
    ),
    ("from equals to", "from_minute = 90", "from_minute = 180", "schedule.intervals[2].to_minute"),
    (
        "negative from",
        "from_minute = 0",
        "from_minute = -10",
        "schedule.intervals[1].from_minute: must be at least 0",
    ),
    (
        "overlapping intervals",
        "from_minute = 90",
        "from_minute = 60",
        "schedule.intervals[2].from_minute: overlaps schedule.intervals[1]",
    ),
    (
        "unknown vital",
        'parameter = "sbp"',
        'parameter = "bp"',
        "alarms[1].parameter: unknown vital 'bp'",
    ),
    (
        "missing alarm source",
        'source = "hr low source"\n',
        "",
        "alarms[3].source: missing source label",
    ),
    (
        "empty alarm source",
        'source = "hr low source"',
        'source = "  "',
        "alarms[3].source: needs a non-empty source label",
    ),
    (
        "missing interval source",
        'source = "late cadence"\n',
        "",
        "schedule.intervals[2].source: missing source label",
    ),
    (
        "missing checkpoint source",
        'source = "peak source"\n',
        "",
        "schedule.checkpoints[1].source: missing source label",
    ),
    (
        "bare number without source",
        'session_limit_minutes = { value = 180, source = "clinic limit" }',
        "session_limit_minutes = 180",
        "session_limit_minutes: needs a source label",
    ),
    (
        "sourced number without source",
        '{ value = 5, source = "clinic grace" }',
        "{ value = 5 }",
        "schedule.overdue_grace_minutes.source: missing source label",
    ),
    (
        "missing discharge source",
        'source = "discharge source"\n',
        "",
        "discharge.source: missing source label",
    ),
    (
        "missing questionnaire source",
        'source = "questionnaire source"\n',
        "",
        "questionnaires[1].source: missing source label",
    ),
    (
        "missing protocol source",
        'source = "Test clinic governance 2026"\n',
        "",
        "source: missing source label",
    ),
    (
        "unknown priority",
        'priority = "critical"',
        'priority = "high"',
        "alarms[1].priority: unknown priority 'high'",
    ),
    (
        "no limit kind",
        "at_or_above = 180\n",
        "",
        "alarms[1]: needs exactly one of at_or_above, at_or_below, rise_at_least, "
        "fall_percent_at_least (found none)",
    ),
    (
        "two limit kinds",
        "at_or_above = 180",
        "at_or_above = 180\nat_or_below = 90",
        "alarms[1]: needs exactly one of at_or_above, at_or_below, rise_at_least, "
        "fall_percent_at_least (found at_or_above and at_or_below)",
    ),
    (
        "zero rise",
        "at_or_above = 180",
        "rise_at_least = 0",
        "alarms[1].rise_at_least: must be above 0",
    ),
    (
        "unknown phase",
        "at_or_above = 180",
        'at_or_above = 180\nphase = "during"',
        "alarms[1].phase: unknown phase 'during'",
    ),
    (
        "misspelt key",
        "at_or_above = 180",
        'at_or_above = 180\nphsae = "pre_dose"',
        "alarms[1].phsae: unknown key 'phsae'",
    ),
    (
        "low above high",
        "at_or_below = 49",
        "at_or_below = 120",
        "alarms[3].at_or_below: low limit 120 is not below the high limit 111 of alarms[2] (hr)",
    ),
    (
        "duplicate alarm id",
        'id = "hr_low"',
        'id = "hr_high"',
        "alarms[3].id: 'hr_high' is used twice",
    ),
    (
        "number as text",
        "at_or_above = 111",
        'at_or_above = "111"',
        "alarms[2].at_or_above: needs a number",
    ),
    (
        "not a finite number",
        "at_or_above = 111",
        "at_or_above = nan",
        "alarms[2].at_or_above: needs a finite number",
    ),
    (
        "boolean as number",
        "every_minutes = 10",
        "every_minutes = true",
        "schedule.intervals[1].every_minutes: needs a number",
    ),
    (
        "unknown questionnaire when",
        'when = "pre"',
        'when = "during"',
        "questionnaires[1].when: unknown time 'during'",
    ),
    (
        "unknown questionnaire id",
        'id = "phq9"',
        'id = "bdi"',
        "questionnaires[1].id: unknown questionnaire 'bdi'",
    ),
    (
        "zero checkpoint window",
        "window_minutes = 10",
        "window_minutes = 0",
        "schedule.checkpoints[1].window_minutes: must be above 0",
    ),
    (
        "unknown discharge score",
        'score = "aldrete"',
        'score = "news2"',
        "discharge.score: unknown discharge score 'news2'",
    ),
    ("pass above total", "pass = 9", "pass = 11", "discharge.pass: must be at most 10"),
    (
        "minimum above limit",
        "{ value = 60, source",
        "{ value = 240, source",
        "min_monitoring_minutes.value: 240 min is longer than the session limit of 180 min",
    ),
    (
        "fractional minutes",
        "{ value = 60, source",
        "{ value = 60.5, source",
        "min_monitoring_minutes.value: needs a whole number",
    ),
    ("missing id", 'id = "clinic"\n', "", "id: missing"),
    ("bad id", 'id = "clinic"', 'id = "my clinic"', "id: 'my clinic' is not a valid id"),
    ("version zero", "version = 1", "version = 0", "version: must be at least 1"),
    ("missing schedule", "[schedule]\n", "[sched]\n", "sched: unknown key"),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_protocol_is_refused_naming_file_and_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "clinic.toml").write_text(_changed(old, new), encoding="utf-8")
    catalogue = load_protocols([folder])
    assert catalogue.protocols == {}
    assert len(catalogue.problems) == 1
    problem = catalogue.problems[0]
    assert problem.startswith(str(folder / "clinic.toml") + ": ")
    assert expected in problem


def test_toml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    broken = VALID.replace("version = 1\n", "version = \n")
    with pytest.raises(ProtocolError, match=r"^clinic\.toml: line 3, column \d+: not valid TOML"):
        parse_protocol(broken, "clinic.toml")
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "clinic.toml").write_text(broken, encoding="utf-8")
    [problem] = load_protocols([folder]).problems
    assert f"{folder / 'clinic.toml'}: line 3" in problem


def test_unreadable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes(VALID.replace("Test", "T\xe9st").encode("latin-1"))
    catalogue = load_protocols([tmp_path])
    assert catalogue.protocols == {}
    assert "latin1.toml: not UTF-8 text" in catalogue.problems[0]


# --- A clinic's own folder --------------------------------------------------------------------


def test_clinic_folder_adds_and_overrides(tmp_path: Path) -> None:
    clinic = tmp_path / "config" / "protocols"
    clinic.mkdir(parents=True)
    (clinic / "own.toml").write_text(VALID, encoding="utf-8")
    override = (SHIPPED / "clinic-ketamine.toml").read_text(encoding="utf-8")
    override = override.replace("version = 1", "version = 2")
    (clinic / "ketamine-local.toml").write_text(override, encoding="utf-8")
    catalogue = load_protocols([SHIPPED, clinic])
    assert catalogue.problems == []
    assert catalogue.protocols["clinic"].origin == str(clinic / "own.toml")
    assert catalogue.protocols["clinic-ketamine"].version == 2
    assert catalogue.protocols["esketamine-rems"].origin.startswith(str(SHIPPED))


def test_a_bad_override_keeps_the_last_good_protocol(tmp_path: Path) -> None:
    clinic = tmp_path / "protocols"
    clinic.mkdir()
    bad = (SHIPPED / "esketamine-rems.toml").read_text(encoding="utf-8")
    bad = bad.replace('parameter = "spo2"', 'parameter = "sats"', 1)
    (clinic / "esketamine-rems.toml").write_text(bad, encoding="utf-8")
    catalogue = load_protocols([SHIPPED, clinic])
    assert catalogue.protocols["esketamine-rems"].origin == str(SHIPPED / "esketamine-rems.toml")
    [problem] = catalogue.problems
    assert str(clinic / "esketamine-rems.toml") in problem
    assert "].parameter: unknown vital 'sats'" in problem


def test_two_files_with_one_id_in_one_folder(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(VALID, encoding="utf-8")
    (tmp_path / "b.toml").write_text(VALID.replace("version = 1", "version = 5"))
    catalogue = load_protocols([tmp_path])
    assert catalogue.protocols["clinic"].version == 1
    [problem] = catalogue.problems
    assert "b.toml" in problem and "already defined by a.toml" in problem


def test_missing_folders_are_skipped(tmp_path: Path) -> None:
    catalogue = load_protocols([tmp_path / "nowhere", SHIPPED])
    assert catalogue.problems == [] and "clinic-ketamine" in catalogue.protocols


def test_protocol_folders_include_the_user_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path))
    (tmp_path / "protocols").mkdir()
    shutil.copy(SHIPPED / "clinic-ketamine.toml", tmp_path / "protocols" / "copy.toml")
    (tmp_path / "protocols" / "own.toml").write_text(VALID, encoding="utf-8")
    folders = protocol_folders()
    assert folders == [SHIPPED, tmp_path / "protocols"]
    catalogue = load_protocols(folders)
    assert {"clinic", "clinic-ketamine", "esketamine-rems"} <= set(catalogue.protocols)
    assert catalogue.protocols["clinic-ketamine"].origin.endswith("copy.toml")
