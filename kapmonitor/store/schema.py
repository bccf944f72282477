"""The database schema, as versioned migrations.

Every clinical table is STRICT, carries ``observed_at`` (clinical time) and ``recorded_at``
(system time), both fixed-width UTC text, and the name of who recorded the row. Clinical rows are
append-only: triggers abort any UPDATE or DELETE, so even a script with raw SQL cannot silently
alter the record. A correction is a new row naming the row it supersedes, with a reason.
Document every change here in ``docs/schema.md`` (a test keeps the two in step).
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

SCHEMA_VERSION = 2
MIGRATION_SET = "kapmonitor"

UTC_TEXT = (
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
)


def _time_columns() -> str:
    return f"""
    observed_at TEXT NOT NULL CHECK (observed_at GLOB {UTC_TEXT}),
    recorded_at TEXT NOT NULL CHECK (recorded_at GLOB {UTC_TEXT}),
    recorded_by TEXT NOT NULL CHECK (length(trim(recorded_by)) > 0)"""


def _entry_table(name: str, columns: str) -> str:
    """A clinical entry table: its own columns plus session, times, recorder and correction link."""
    return f"""
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),{_time_columns()},
    supersedes_id INTEGER REFERENCES {name}(id),
    correction_reason TEXT,
    voided INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1)),{columns},
    CHECK ((supersedes_id IS NULL) = (correction_reason IS NULL)),
    CHECK (correction_reason IS NULL OR length(trim(correction_reason)) > 0),
    CHECK (voided = 0 OR supersedes_id IS NOT NULL)
) STRICT;
CREATE INDEX {name}_session ON {name}(session_id, observed_at);
CREATE UNIQUE INDEX {name}_supersedes ON {name}(supersedes_id) WHERE supersedes_id IS NOT NULL;
CREATE TRIGGER {name}_correction_same_session BEFORE INSERT ON {name}
WHEN NEW.supersedes_id IS NOT NULL
 AND (SELECT session_id FROM {name} WHERE id = NEW.supersedes_id) IS NOT NEW.session_id
BEGIN
    SELECT RAISE(ABORT, '{name}: a correction must supersede a row of the same session');
END;
"""


def append_only_triggers(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN
    SELECT RAISE(ABORT, '{table} is append-only: record a correction instead');
END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN
    SELECT RAISE(ABORT, '{table} is append-only: rows cannot be deleted');
END;
"""


ENTRY_TABLES_V1: dict[str, str] = {
    "phase_changes": """
    phase TEXT NOT NULL
        CHECK (phase IN ('preparation', 'dosing', 'monitoring', 'recovery', 'ended'))""",
    "doses": """
    drug TEXT NOT NULL,
    drug_other TEXT,
    route TEXT NOT NULL,
    dose_mg REAL NOT NULL CHECK (dose_mg > 0),
    dose_mg_per_kg REAL,
    lot_number TEXT,
    is_booster INTEGER NOT NULL CHECK (is_booster IN (0, 1)),
    note TEXT""",
    "vitals": """
    hr INTEGER CHECK (hr BETWEEN 1 AND 400),
    sbp INTEGER CHECK (sbp BETWEEN 1 AND 400),
    dbp INTEGER CHECK (dbp BETWEEN 1 AND 400),
    spo2 INTEGER CHECK (spo2 BETWEEN 0 AND 100),
    rr INTEGER CHECK (rr BETWEEN 0 AND 100),
    temp_c REAL CHECK (temp_c BETWEEN 20 AND 50),
    on_oxygen INTEGER NOT NULL DEFAULT 0 CHECK (on_oxygen IN (0, 1)),
    note TEXT,
    CHECK ((sbp IS NULL) = (dbp IS NULL)),
    CHECK (dbp IS NULL OR dbp < sbp)""",
    "observations": """
    moaas INTEGER CHECK (moaas BETWEEN 0 AND 5),
    rass INTEGER CHECK (rass BETWEEN -5 AND 4),
    dissociation INTEGER CHECK (dissociation BETWEEN 0 AND 4),
    features TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(features)),
    cadss_total INTEGER CHECK (cadss_total BETWEEN 0 AND 92),
    other_scores TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(other_scores)),
    note TEXT""",
    "adverse_events": """
    term TEXT NOT NULL,
    verbatim TEXT,
    code TEXT,
    grade INTEGER NOT NULL CHECK (grade BETWEEN 1 AND 5),
    serious INTEGER NOT NULL CHECK (serious IN (0, 1)),
    serious_criterion TEXT,
    action TEXT NOT NULL,
    action_detail TEXT,
    relatedness TEXT NOT NULL,
    CHECK (serious = 0 OR serious_criterion IS NOT NULL)""",
    "adverse_event_outcomes": """
    adverse_event_id INTEGER NOT NULL REFERENCES adverse_events(id),
    outcome TEXT NOT NULL,
    note TEXT""",
    "interventions": """
    category TEXT NOT NULL,
    medication TEXT,
    detail TEXT""",
    "session_ends": """
    disposition TEXT NOT NULL,
    disposition_other TEXT,
    escort TEXT,
    summary TEXT NOT NULL""",
}

# Added by 0002: the protocol copy, what the protocol engine derived, and what clinicians did
# about it. Alarms and NEWS2 scores are written in the same transaction as the reading.
ENTRY_TABLES_V2: dict[str, str] = {
    "session_protocols": """
    protocol_id TEXT NOT NULL,
    protocol_name TEXT NOT NULL,
    protocol_version INTEGER NOT NULL,
    protocol_json TEXT NOT NULL CHECK (json_valid(protocol_json)),
    origin TEXT NOT NULL""",
    "vital_scores": """
    vitals_id INTEGER NOT NULL REFERENCES vitals(id),
    news2_total INTEGER NOT NULL CHECK (news2_total BETWEEN 0 AND 20),
    news2_band TEXT NOT NULL,
    news2_parts TEXT NOT NULL CHECK (json_valid(news2_parts)),
    news2_missing TEXT NOT NULL CHECK (json_valid(news2_missing))""",
    "alarms": """
    source_table TEXT NOT NULL CHECK (source_table IN ('vitals', 'observations')),
    source_id INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    parameter TEXT NOT NULL,
    value REAL NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('advisory', 'warning', 'critical')),
    limit_text TEXT NOT NULL,
    message TEXT NOT NULL,
    rule_source TEXT NOT NULL""",
    "alarm_acknowledgements": """
    alarm_id INTEGER NOT NULL REFERENCES alarms(id),
    response TEXT NOT NULL,
    detail TEXT,
    symptoms TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(symptoms))""",
    "overrides": """
    kind TEXT NOT NULL CHECK (kind IN ('dose_without_baseline', 'discharge_before_criteria')),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0)""",
    "discharge_assessments": """
    score_name TEXT NOT NULL CHECK (score_name IN ('aldrete', 'padss')),
    total INTEGER NOT NULL,
    maximum INTEGER NOT NULL,
    pass_mark INTEGER NOT NULL,
    passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
    items TEXT NOT NULL CHECK (json_valid(items)),
    checklist TEXT NOT NULL CHECK (json_valid(checklist)),
    ready INTEGER NOT NULL CHECK (ready IN (0, 1)),
    reasons TEXT NOT NULL CHECK (json_valid(reasons)),
    override_reason TEXT""",
    "questionnaire_responses": """
    questionnaire_id TEXT NOT NULL,
    timing TEXT NOT NULL CHECK (timing IN ('pre', 'post', 'follow_up')),
    answers TEXT NOT NULL CHECK (json_valid(answers)),
    total INTEGER,
    band TEXT,
    safety_flags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(safety_flags))""",
}
ENTRY_TABLES: dict[str, str] = {**ENTRY_TABLES_V1, **ENTRY_TABLES_V2}

CLINICAL_TABLES: tuple[str, ...] = ("sessions", "session_clinicians", *ENTRY_TABLES)

SESSIONS = f"""
CREATE TABLE sessions (
    id TEXT PRIMARY KEY CHECK (length(id) = 32),
    patient_code TEXT NOT NULL CHECK (length(patient_code) BETWEEN 3 AND 32),
    birth_year INTEGER,
    age_years INTEGER,
    sex TEXT NOT NULL,
    weight_kg REAL NOT NULL CHECK (weight_kg > 0),
    indication TEXT NOT NULL,
    indication_other TEXT,
    eligibility TEXT NOT NULL CHECK (json_valid(eligibility)),
    concomitant_medicines TEXT NOT NULL CHECK (json_valid(concomitant_medicines)),
    session_limit_minutes INTEGER NOT NULL CHECK (session_limit_minutes > 0),
    app_version TEXT NOT NULL,{_time_columns()}
) STRICT;
CREATE INDEX sessions_patient ON sessions(patient_code, observed_at);
CREATE TABLE session_clinicians (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    position INTEGER NOT NULL,{_time_columns()},
    UNIQUE (session_id, name)
) STRICT;
"""

migrations = Migrations(MIGRATION_SET)


@migrations(name="0001_initial")
def m0001_initial(db: Database) -> None:
    script = [SESSIONS]
    script += [_entry_table(name, cols) for name, cols in ENTRY_TABLES_V1.items()]
    script.append(
        "CREATE UNIQUE INDEX session_ends_one_per_session ON session_ends(session_id) "
        "WHERE supersedes_id IS NULL;"
    )
    script += [
        append_only_triggers(t) for t in ("sessions", "session_clinicians", *ENTRY_TABLES_V1)
    ]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")


@migrations(name="0002_protocol_engine")
def m0002_protocol_engine(db: Database) -> None:
    script = [_entry_table(name, cols) for name, cols in ENTRY_TABLES_V2.items()]
    script.append(
        "CREATE UNIQUE INDEX session_protocols_one_per_session ON session_protocols(session_id) "
        "WHERE supersedes_id IS NULL;"
    )
    script.append("CREATE INDEX alarms_source ON alarms(source_table, source_id);")
    script.append("CREATE INDEX alarm_acknowledgements_alarm ON alarm_acknowledgements(alarm_id);")
    script += [append_only_triggers(t) for t in ENTRY_TABLES_V2]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    db.execute("PRAGMA user_version = 2")


def _split(script: str) -> list[str]:
    """Split a DDL script into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines():
        if not line.strip():
            continue
        buffer.append(line)
        joined = "\n".join(buffer)
        in_trigger = joined.lstrip().upper().startswith("CREATE TRIGGER")
        if line.rstrip().endswith(";") and (not in_trigger or line.strip().upper() == "END;"):
            statements.append(joined)
            buffer = []
    if buffer:
        statements.append("\n".join(buffer))
    return statements
