"""The database schema, as versioned migrations.

Every clinical table is STRICT, carries ``observed_at`` (clinical time) and ``recorded_at``
(system time), both fixed-width UTC text, and the name of who recorded the row. Clinical rows are
append-only: triggers abort any UPDATE or DELETE, so even a script with raw SQL cannot silently
alter the record. A correction is a new row naming the row it supersedes, with a reason.
Document every change here in ``docs/schema.md`` (a test keeps the two in step).
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

SCHEMA_VERSION = 17
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


ROLES = ("clinician", "supervisor", "administrator")
SIGNING_ROLES = ("supervisor", "administrator")

REVIEW_TABLES_V3 = f"""
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE
        CHECK (length(trim(username)) BETWEEN 2 AND 40),
    display_name TEXT NOT NULL UNIQUE CHECK (length(trim(display_name)) > 0),
    role TEXT NOT NULL CHECK (role IN {ROLES!r}),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),{_time_columns()}
) STRICT;
CREATE TRIGGER users_no_delete BEFORE DELETE ON users
BEGIN
    SELECT RAISE(ABORT, 'users cannot be deleted: deactivate the account instead');
END;
CREATE TRIGGER users_fixed_identity BEFORE UPDATE OF username, observed_at, recorded_at,
    recorded_by ON users
BEGIN
    SELECT RAISE(ABORT, 'an account keeps its user name and creation record');
END;
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL CHECK (at GLOB {UTC_TEXT}),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    session_id TEXT,
    table_name TEXT,
    row_id INTEGER,
    row_hash TEXT,
    detail TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(detail)),
    prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash TEXT NOT NULL UNIQUE CHECK (length(hash) = 64)
) STRICT;
CREATE INDEX audit_row ON audit(table_name, row_id);
CREATE INDEX audit_session ON audit(session_id, id);
CREATE INDEX audit_actor_action ON audit(actor, action, id);
CREATE TABLE signatures (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),{_time_columns()},
    printed_name TEXT NOT NULL CHECK (length(trim(printed_name)) > 0),
    role TEXT NOT NULL CHECK (role IN {SIGNING_ROLES!r}),
    meaning TEXT NOT NULL CHECK (length(trim(meaning)) > 0)
) STRICT;
CREATE UNIQUE INDEX signatures_one_per_session ON signatures(session_id);
CREATE TRIGGER signatures_signer_role BEFORE INSERT ON signatures
WHEN (SELECT role FROM users WHERE username = NEW.recorded_by AND active = 1)
     NOT IN {SIGNING_ROLES!r}
  OR NOT EXISTS (SELECT 1 FROM users WHERE username = NEW.recorded_by AND active = 1)
BEGIN
    SELECT RAISE(ABORT, 'only an active supervisor or administrator account can sign');
END;
CREATE TRIGGER signatures_session_ended BEFORE INSERT ON signatures
WHEN NOT EXISTS (SELECT 1 FROM session_ends WHERE session_id = NEW.session_id AND voided = 0)
BEGIN
    SELECT RAISE(ABORT, 'a session is signed only after it has ended');
END;
CREATE TABLE addenda (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),{_time_columns()},
    text TEXT NOT NULL CHECK (length(trim(text)) > 0)
) STRICT;
CREATE INDEX addenda_session ON addenda(session_id, observed_at);
CREATE TRIGGER addenda_after_signing BEFORE INSERT ON addenda
WHEN NOT EXISTS (SELECT 1 FROM signatures WHERE session_id = NEW.session_id)
BEGIN
    SELECT RAISE(ABORT, 'an addendum is for a signed session: before sign-off, add or correct');
END;
CREATE TABLE review_comments (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),{_time_columns()},
    text TEXT NOT NULL CHECK (length(trim(text)) > 0)
) STRICT;
CREATE INDEX review_comments_session ON review_comments(session_id, observed_at);
"""


def signed_lock_trigger(table: str) -> str:
    """A signed session takes no new rows in ``table``: later additions are addenda."""
    return f"""
CREATE TRIGGER {table}_signed_lock BEFORE INSERT ON {table}
WHEN EXISTS (SELECT 1 FROM signatures WHERE session_id = NEW.session_id)
BEGIN
    SELECT RAISE(ABORT, 'this session is signed and locked: record an addendum instead');
END;
"""


# Session rows written by review rather than at the bedside (no corrections: append only).
REVIEW_TABLES: tuple[str, ...] = ("review_comments", "signatures", "addenda")

# Tables a signature locks: every clinical entry, the clinicians and the review comments.
LOCKED_BY_SIGNATURE: tuple[str, ...] = ("session_clinicians", *ENTRY_TABLES, "review_comments")


@migrations(name="0003_review_and_audit")
def m0003_review_and_audit(db: Database) -> None:
    from datetime import UTC, datetime

    from kapmonitor.store import audit

    script = [REVIEW_TABLES_V3]
    script += [append_only_triggers(t) for t in ("audit", "signatures", "addenda")]
    script.append(append_only_triggers("review_comments"))
    script += [signed_lock_trigger(t) for t in LOCKED_BY_SIGNATURE]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    # Rows written before the trail existed are sealed as the baseline it starts from.
    audit.install(db)
    audit.seal_existing(db, datetime.now(UTC))
    db.execute("PRAGMA user_version = 3")


# Added by 0004: settings every user of the clinic's file shares (the idle lock), changed only by
# an administrator. Append-only like the record: the newest row per key is in force, the older
# rows are its history, and each row is sealed into the audit trail.
CLINIC_SETTINGS_V4 = f"""
CREATE TABLE clinic_settings (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL CHECK (length(trim(key)) > 0),
    value TEXT NOT NULL CHECK (json_valid(value)),{_time_columns()}
) STRICT;
CREATE INDEX clinic_settings_key ON clinic_settings(key, id);
"""


@migrations(name="0004_clinic_settings")
def m0004_clinic_settings(db: Database) -> None:
    script = [CLINIC_SETTINGS_V4, append_only_triggers("clinic_settings")]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    db.execute("PRAGMA user_version = 4")


# Added by 0005: alarms may come from a questionnaire answer (PHQ-9 item 9, a critical alarm written
# in the same transaction as the questionnaire) or from an adverse event, not only from a reading;
# and the acknowledgement of a suicidality alarm carries the documented risk assessment.
ALARM_SOURCES_V5 = ("vitals", "observations", "questionnaire_responses", "adverse_events")


@migrations(name="0005_questionnaire_alarms", transactional=False)
def m0005_questionnaire_alarms(db: Database) -> None:
    """SQLite cannot change a CHECK in place: ``alarms`` is rebuilt with the wider source list,
    rows copied unchanged (same ids, same content, so their audit hashes still match).

    SQLite's own recipe for a table rebuild: foreign keys off (outside any transaction), the
    rebuild in one transaction, ``foreign_key_check`` before it commits, foreign keys back on.
    ``alarm_acknowledgements`` keeps naming ``alarms``, which is the rebuilt table. The new
    acknowledgement column changes the content of rows already stored, so each is sealed again
    in the audit trail (action ``schema_0005``), openly."""
    from datetime import UTC, datetime

    from kapmonitor.store import audit

    old = "CHECK (source_table IN ('vitals', 'observations'))"
    columns = ENTRY_TABLES_V2["alarms"]
    assert old in columns
    columns = columns.replace(old, f"CHECK (source_table IN {ALARM_SOURCES_V5!r})")
    create, *rest = _split(_entry_table("alarms", columns))
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            # The audit trail's temporary insert trigger on ``alarms`` goes with the old table;
            # it is installed again on the rebuilt one below.
            db.execute("DROP TRIGGER IF EXISTS temp.kapmonitor_audit_alarms_insert")
            db.execute(create.replace("CREATE TABLE alarms (", "CREATE TABLE alarms_0005 (", 1))
            db.execute("INSERT INTO alarms_0005 SELECT * FROM alarms")
            db.execute("DROP TABLE alarms")
            db.execute("ALTER TABLE alarms_0005 RENAME TO alarms")
            script = [
                *rest,
                "CREATE INDEX alarms_source ON alarms(source_table, source_id);",
                append_only_triggers("alarms"),
                signed_lock_trigger("alarms"),
            ]
            for statement in _split("\n".join(script)):
                db.execute(statement)
            db.execute(
                "ALTER TABLE alarm_acknowledgements ADD COLUMN risk_assessment TEXT "
                "CHECK (risk_assessment IS NULL OR json_valid(risk_assessment))"
            )
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration 0005 would break foreign keys: {broken[:3]}")
            audit.install(db)
            acks = db.execute("SELECT rowid FROM alarm_acknowledgements ORDER BY rowid").fetchall()
            for (rowid,) in acks:
                db.execute(
                    f"INSERT INTO {audit.PENDING} (table_name, row_id) VALUES (?, ?)",
                    ["alarm_acknowledgements", rowid],
                )
            if acks:
                audit.seal(db, "system", "schema_0005", datetime.now(UTC))
            if db.execute("PRAGMA user_version").fetchone()[0] < 5:  # a later one may run first
                db.execute("PRAGMA user_version = 5")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


# Added by 0009: the NEWS2 SpO₂ scale chosen for the patient by a clinician, with the reason
# (RCP NEWS2 2017: Scale 2 only for hypercapnic respiratory failure). An entry table like the
# record: append-only, audited, locked by the signature; the newest choice at or before a
# reading is the one its score used (the score row's ``news2_parts`` names it too).
ENTRY_TABLES_V9: dict[str, str] = {
    "news2_scale_choices": """
    scale INTEGER NOT NULL CHECK (scale IN (1, 2)),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0)""",
}
ENTRY_TABLES.update(ENTRY_TABLES_V9)


@migrations(name="0009_news2_scale")
def m0009_news2_scale(db: Database) -> None:
    script = [_entry_table(name, cols) for name, cols in ENTRY_TABLES_V9.items()]
    script += [append_only_triggers(t) for t in ENTRY_TABLES_V9]
    script += [signed_lock_trigger(t) for t in ENTRY_TABLES_V9]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    db.execute("PRAGMA user_version = 9")


# Added by 0008: the Spravato REMS fields a session log cannot derive, asked when an esketamine
# session starts (first treatment, the monitoring clinician's phone and e-mail, the treatment
# setting and its address, the contraindication screen's answers), and the record of the form's
# submission (who submitted it, when). Both append-only and sealed into the audit trail; the
# start details are an entry table locked by the signature, the submissions are not (the form is
# often submitted after sign-off, within 7 days).
ENTRY_TABLES_V8: dict[str, str] = {
    "rems_session_details": """
    first_treatment INTEGER NOT NULL CHECK (first_treatment IN (0, 1)),
    clinician_phone TEXT NOT NULL CHECK (length(trim(clinician_phone)) > 0),
    clinician_email TEXT NOT NULL CHECK (clinician_email LIKE '%_@_%'),
    setting_name TEXT NOT NULL CHECK (length(trim(setting_name)) > 0),
    setting_address TEXT NOT NULL CHECK (length(trim(setting_address)) > 0),
    contraindications TEXT NOT NULL CHECK (json_valid(contraindications))""",
}
ENTRY_TABLES.update(ENTRY_TABLES_V8)

REMS_SUBMISSIONS_V8 = f"""
CREATE TABLE rems_submissions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),{_time_columns()},
    submitted_by TEXT NOT NULL CHECK (length(trim(submitted_by)) > 0),
    reference TEXT,
    note TEXT
) STRICT;
CREATE INDEX rems_submissions_session ON rems_submissions(session_id, observed_at);
"""


@migrations(name="0008_rems_form")
def m0008_rems_form(db: Database) -> None:
    script = [_entry_table(name, cols) for name, cols in ENTRY_TABLES_V8.items()]
    script.append(
        "CREATE UNIQUE INDEX rems_session_details_one_per_session "
        "ON rems_session_details(session_id) WHERE supersedes_id IS NULL;"
    )
    script += [append_only_triggers(t) for t in ENTRY_TABLES_V8]
    script += [signed_lock_trigger(t) for t in ENTRY_TABLES_V8]
    script += [REMS_SUBMISSIONS_V8, append_only_triggers("rems_submissions")]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    if db.execute("PRAGMA user_version").fetchone()[0] < 8:  # a later migration may run first
        db.execute("PRAGMA user_version = 8")


# Added by 0007: the steps of an alarm's checklist (airway, serious-adverse-event escalation), each
# ticked with its time (observed_at) and who ticked it (recorded_by). An entry table like the
# record: append-only, audited, locked by the signature; a mistaken tick is voided by a correction.
ENTRY_TABLES_V7: dict[str, str] = {
    "alarm_checklist_steps": """
    alarm_id INTEGER NOT NULL REFERENCES alarms(id),
    checklist TEXT NOT NULL CHECK (length(trim(checklist)) > 0),
    step TEXT NOT NULL CHECK (length(trim(step)) > 0),
    note TEXT""",
}
ENTRY_TABLES.update(ENTRY_TABLES_V7)


@migrations(name="0007_alarm_checklist_steps")
def m0007_alarm_checklist_steps(db: Database) -> None:
    script = [_entry_table(name, cols) for name, cols in ENTRY_TABLES_V7.items()]
    script.append("CREATE INDEX alarm_checklist_steps_alarm ON alarm_checklist_steps(alarm_id);")
    script += [append_only_triggers(t) for t in ENTRY_TABLES_V7]
    script += [signed_lock_trigger(t) for t in ENTRY_TABLES_V7]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    if db.execute("PRAGMA user_version").fetchone()[0] < 7:  # a later migration may run first
        db.execute("PRAGMA user_version = 7")


# Added by 0010: end-tidal CO₂ (capnography), the first vital sign added through the registry
# (kapmonitor.domain.vitals). Whole mmHg; the CHECK is a hard physical bound, wider than the
# clinic's editable plausibility range (resources/plausibility.json), like the other vitals'.
# Rows written before it read back with ``etco2`` NULL ("not measured") and keep their audit
# hashes: a NULL there is not hashed (kapmonitor.store.audit.HASHED_ONLY_WHEN_SET). The
# append-only and signature triggers name no columns, so they hold for the new one unchanged.
VITALS_COLUMNS_V10: dict[str, str] = {"etco2": "INTEGER CHECK (etco2 BETWEEN 0 AND 150)"}


@migrations(name="0010_etco2")
def m0010_etco2(db: Database) -> None:
    for column, spec in VITALS_COLUMNS_V10.items():
        db.execute(f"ALTER TABLE vitals ADD COLUMN {column} {spec}")
    if db.execute("PRAGMA user_version").fetchone()[0] < 10:
        db.execute("PRAGMA user_version = 10")


# Added by 0011: the keyed audit chain and the guarded role. Entries from here on are chained with
# an HMAC whose key lives only in the key slots (kapmonitor.store.audit); the migration appends
# the key marker that starts the keyed chain, pinning every unkeyed entry before it by digest.
# A role is changed only through the app's audited administrator path: the trigger asks the
# app's connection (the SQL function ``kapmonitor_authorised``, registered by audit.install for
# the length of one authorised change) and aborts otherwise, so raw SQL on the file fails with
# "no such function" or this message. Dropping the trigger to get round it is a schema change that
# the app refuses to write to and ``verify`` names (kapmonitor.store.schema_check).
ROLE_TRIGGER_V11 = """
CREATE TRIGGER users_role_change BEFORE UPDATE OF role ON users
WHEN NEW.role IS NOT OLD.role AND NOT kapmonitor_authorised('role', OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'a role is changed only by an administrator in KAP Monitor (audited)');
END;
"""


@migrations(name="0011_keyed_audit")
def m0011_keyed_audit(db: Database) -> None:
    from datetime import UTC, datetime

    from kapmonitor.store import audit

    for statement in _split(ROLE_TRIGGER_V11):
        db.execute(statement)
    audit.ensure_keyed(db, datetime.now(UTC))
    if db.execute("PRAGMA user_version").fetchone()[0] < 11:
        db.execute("PRAGMA user_version = 11")


# Added by 0012: signatures that cannot be forged (kapmonitor.store.signatures). Each account's
# Ed25519 key (``signing_keys``: the public key, its fingerprint and the private key wrapped by the
# account's password; a password change or reset appends a new row, the newest is in force); the
# audited role history every signature is checked against (``account_roles``, written when an
# account is created and when an administrator changes a role); the short PIN that only unlocks an
# idle lock (``account_pins``, newest per account in force); the cryptographic seal of each
# sign-off (``signature_seals``: the statement signed, the content hash, the rows covered, the
# audit head, the key's fingerprint, the signature); and signatures that came in an import
# (``imported_signatures``: "signed elsewhere", checked against a key known here, never a
# signature made here). All append-only and sealed into the audit trail. Signatures made before
# 0012 get a ``legacy`` seal (never signed with a key); the addendum trigger also accepts a
# session signed elsewhere.
ACCOUNTS_V12 = f"""
CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL CHECK (length(trim(username)) > 0),
    role TEXT NOT NULL CHECK (role IN {ROLES!r}),
    public_key TEXT NOT NULL CHECK (length(public_key) = 64),
    fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),
    wrapped_key TEXT NOT NULL CHECK (json_valid(wrapped_key)),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),{_time_columns()}
) STRICT;
CREATE INDEX signing_keys_user ON signing_keys(username, id);
CREATE INDEX signing_keys_fingerprint ON signing_keys(fingerprint);
CREATE TABLE account_roles (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL CHECK (length(trim(username)) > 0),
    role TEXT NOT NULL CHECK (role IN {ROLES!r}),{_time_columns()}
) STRICT;
CREATE INDEX account_roles_user ON account_roles(username, id);
CREATE TABLE account_pins (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL CHECK (length(trim(username)) > 0),
    pin_hash TEXT NOT NULL CHECK (pin_hash LIKE 'scrypt$%'),{_time_columns()}
) STRICT;
CREATE INDEX account_pins_user ON account_pins(username, id);
CREATE TABLE signature_seals (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    signature_id INTEGER NOT NULL REFERENCES signatures(id),
    signer TEXT NOT NULL,
    printed_name TEXT NOT NULL,
    role TEXT NOT NULL,
    meaning TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    content_hash TEXT,
    covered TEXT CHECK (covered IS NULL OR json_valid(covered)),
    audit_head_id INTEGER,
    audit_head_hash TEXT,
    key_fingerprint TEXT,
    public_key TEXT,
    signature TEXT,
    legacy INTEGER NOT NULL DEFAULT 0 CHECK (legacy IN (0, 1)),{_time_columns()},
    CHECK (legacy = 1 OR (content_hash IS NOT NULL AND signature IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX signature_seals_one_per_signature ON signature_seals(signature_id);
CREATE TABLE imported_signatures (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    signer TEXT,
    printed_name TEXT NOT NULL CHECK (length(trim(printed_name)) > 0),
    role TEXT,
    meaning TEXT,
    signed_at TEXT,
    content_hash TEXT,
    key_fingerprint TEXT,
    public_key TEXT,
    signature TEXT,
    statement TEXT,
    status TEXT NOT NULL
        CHECK (status IN ('verified', 'unknown_key', 'invalid', 'unsealed')),{_time_columns()}
) STRICT;
CREATE INDEX imported_signatures_session ON imported_signatures(session_id, id);
"""
ADDENDA_TRIGGER_V12 = """
CREATE TRIGGER addenda_after_signing BEFORE INSERT ON addenda
WHEN NOT EXISTS (SELECT 1 FROM signatures WHERE session_id = NEW.session_id)
 AND NOT EXISTS (SELECT 1 FROM imported_signatures WHERE session_id = NEW.session_id)
BEGIN
    SELECT RAISE(ABORT, 'an addendum is for a signed session: before sign-off, add or correct');
END;
"""
ACCOUNT_TABLES_V12 = (
    "signing_keys",
    "account_roles",
    "account_pins",
    "signature_seals",
    "imported_signatures",
)


@migrations(name="0012_signing_keys")
def m0012_signing_keys(db: Database) -> None:
    from datetime import UTC, datetime

    from kapmonitor.domain.clock import to_iso
    from kapmonitor.store import audit

    script = [ACCOUNTS_V12, *(append_only_triggers(t) for t in ACCOUNT_TABLES_V12)]
    script.append("DROP TRIGGER addenda_after_signing;")
    script.append(ADDENDA_TRIGGER_V12)
    for statement in _split("\n".join(script)):
        db.execute(statement)
    audit.install(db)
    now = datetime.now(UTC)
    stamp = to_iso(now)
    # The role each account holds now starts its audited role history.
    db.execute(
        "INSERT INTO account_roles (username, role, observed_at, recorded_at, recorded_by) "
        "SELECT username, role, ?, ?, 'system' FROM users ORDER BY id",
        [stamp, stamp],
    )
    # Signatures made before keys existed: sealed as legacy (never signed with a key).
    db.execute(
        "INSERT INTO signature_seals (session_id, signature_id, signer, printed_name, role, "
        "meaning, signed_at, legacy, observed_at, recorded_at, recorded_by) "
        "SELECT session_id, id, recorded_by, printed_name, role, meaning, recorded_at, 1, ?, ?, "
        "'system' FROM signatures ORDER BY id",
        [stamp, stamp],
    )
    audit.seal(db, "system", "schema_0012", now)
    if db.execute("PRAGMA user_version").fetchone()[0] < 12:
        db.execute("PRAGMA user_version = 12")


# Added by 0013: each attending clinician's attestation of the session at its end, signed with
# their own key (kapmonitor.store.signatures.attest): the same statement as a sign-off's (the
# session's content hash over the rows then, the audit head), meaning "attests the record at the
# session's end". Append-only, sealed into the audit trail; one per clinician per session. It
# does not lock the session (corrections stay open until sign-off).
ATTESTATIONS_V13 = f"""
CREATE TABLE attestations (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    signer TEXT NOT NULL CHECK (length(trim(signer)) > 0),
    printed_name TEXT NOT NULL CHECK (length(trim(printed_name)) > 0),
    role TEXT NOT NULL CHECK (role IN {ROLES!r}),
    meaning TEXT NOT NULL CHECK (length(trim(meaning)) > 0),
    signed_at TEXT NOT NULL,
    content_hash TEXT NOT NULL CHECK (length(content_hash) = 64),
    covered TEXT NOT NULL CHECK (json_valid(covered)),
    audit_head_id INTEGER NOT NULL,
    audit_head_hash TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL CHECK (length(key_fingerprint) = 64),
    public_key TEXT NOT NULL CHECK (length(public_key) = 64),
    signature TEXT NOT NULL CHECK (length(signature) = 128),{_time_columns()},
    UNIQUE (session_id, signer)
) STRICT;
"""


@migrations(name="0013_attestations")
def m0013_attestations(db: Database) -> None:
    script = [ATTESTATIONS_V13, append_only_triggers("attestations")]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    if db.execute("PRAGMA user_version").fetchone()[0] < 13:
        db.execute("PRAGMA user_version = 13")


# Added by 0014: readings from bedside devices (issue 13; kapmonitor.devices). A device reading
# is stored *pending* as it arrives (one transaction per device message, committed before the
# device is acknowledged), append-only and audited like every clinical row, with the device that
# sent it (recorded_by ``device:<id>``), how (source), which message, when it arrived and when the
# device says it was observed (``device_time`` 0: the device gave no time, ``observed_at`` is the
# arrival). UNIQUE (session, device, message, vital): a message resent after a crash or restart is
# stored once. A clinician's decision on a reading (confirmed, or artefact with a reason) is a
# ``device_reading_reviews`` row, one per reading; confirming writes a normal ``vitals`` row whose
# new ``device_reading_id``/``source`` point back to the reading (NULL on typed rows, and not
# hashed when NULL: kapmonitor.store.audit.HASHED_ONLY_WHEN_SET), so every view, rule and export
# that reads vitals reads confirmed device values unchanged. An alarm may now come from a pending
# reading (``alarms.source_table`` 'device_readings'): ``alarms`` is rebuilt as in 0005.
DEVICE_SOURCES_V14 = ("mllp", "serial", "ble")
ALARM_SOURCES_V14 = (*ALARM_SOURCES_V5, "device_readings")
DEVICE_TABLES_V14 = f"""
CREATE TABLE device_readings (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),{_time_columns()},
    device_time INTEGER NOT NULL CHECK (device_time IN (0, 1)),
    received_at TEXT NOT NULL CHECK (received_at GLOB {UTC_TEXT}),
    vital TEXT NOT NULL CHECK (length(vital) > 0),
    value REAL,
    unit_received TEXT NOT NULL,
    code TEXT NOT NULL DEFAULT '',
    device_id TEXT NOT NULL CHECK (length(trim(device_id)) > 0),
    source TEXT NOT NULL CHECK (source IN {DEVICE_SOURCES_V14!r}),
    message_id TEXT NOT NULL CHECK (length(message_id) > 0),
    flags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(flags)),
    CHECK (value IS NOT NULL OR flags <> '[]'),
    UNIQUE (session_id, device_id, message_id, vital)
) STRICT;
CREATE INDEX device_readings_session ON device_readings(session_id, observed_at);
CREATE TABLE device_reading_reviews (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),{_time_columns()},
    device_reading_id INTEGER NOT NULL REFERENCES device_readings(id),
    decision TEXT NOT NULL CHECK (decision IN ('confirmed', 'artefact')),
    reason TEXT,
    automatic INTEGER NOT NULL DEFAULT 0 CHECK (automatic IN (0, 1)),
    vitals_id INTEGER REFERENCES vitals(id),
    CHECK (decision = 'confirmed' OR length(trim(reason)) > 0),
    CHECK ((decision = 'confirmed') = (vitals_id IS NOT NULL)),
    UNIQUE (device_reading_id)
) STRICT;
CREATE INDEX device_reading_reviews_session ON device_reading_reviews(session_id, id);
CREATE TRIGGER device_reading_reviews_same_session BEFORE INSERT ON device_reading_reviews
WHEN (SELECT session_id FROM device_readings WHERE id = NEW.device_reading_id)
     IS NOT NEW.session_id
BEGIN
    SELECT RAISE(ABORT, 'device_reading_reviews: a decision must name a reading of its session');
END;
"""
DEVICE_TABLE_NAMES_V14 = ("device_readings", "device_reading_reviews")
VITALS_COLUMNS_V14: dict[str, str] = {
    "device_reading_id": "INTEGER REFERENCES device_readings(id)",
    "source": f"TEXT CHECK (source IS NULL OR source IN {DEVICE_SOURCES_V14!r})",
}


@migrations(name="0014_device_readings", transactional=False)
def m0014_device_readings(db: Database) -> None:
    """The device tables, the vitals columns that point back to a confirmed reading, and
    ``alarms`` rebuilt with the wider source list (SQLite's table-rebuild recipe, as 0005: rows
    copied unchanged, same ids and content, so their audit hashes still match)."""
    from kapmonitor.store import audit

    old = f"CHECK (source_table IN {ALARM_SOURCES_V5!r})"
    columns = ENTRY_TABLES_V2["alarms"].replace(
        "CHECK (source_table IN ('vitals', 'observations'))", old
    )
    columns = columns.replace(old, f"CHECK (source_table IN {ALARM_SOURCES_V14!r})")
    create, *rest = _split(_entry_table("alarms", columns))
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            script = [DEVICE_TABLES_V14, *(append_only_triggers(t) for t in DEVICE_TABLE_NAMES_V14)]
            script += [signed_lock_trigger(t) for t in DEVICE_TABLE_NAMES_V14]
            for statement in _split("\n".join(script)):
                db.execute(statement)
            for column, spec in VITALS_COLUMNS_V14.items():
                db.execute(f"ALTER TABLE vitals ADD COLUMN {column} {spec}")
            db.execute("DROP TRIGGER IF EXISTS temp.kapmonitor_audit_alarms_insert")
            db.execute(create.replace("CREATE TABLE alarms (", "CREATE TABLE alarms_0014 (", 1))
            db.execute("INSERT INTO alarms_0014 SELECT * FROM alarms")
            db.execute("DROP TABLE alarms")
            db.execute("ALTER TABLE alarms_0014 RENAME TO alarms")
            script = [
                *rest,
                "CREATE INDEX alarms_source ON alarms(source_table, source_id);",
                append_only_triggers("alarms"),
                signed_lock_trigger("alarms"),
            ]
            for statement in _split("\n".join(script)):
                db.execute(statement)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration 0014 would break foreign keys: {broken[:3]}")
            audit.install(db)
            if db.execute("PRAGMA user_version").fetchone()[0] < 14:
                db.execute("PRAGMA user_version = 14")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


# Added by 0015: supervisors' review rows written at the clinic's central archive and brought back
# by the laptop's sync (issue 14; kapmonitor.store.central_signatures, kapmonitor.network
# .review_return): a central sign-off with its signed statement and the status this laptop worked
# out against its own rows, a comment, or an addendum. ``central_id`` is the server's id (a
# replayed pull stores once). Append-only and sealed into the audit trail. A *verified* central
# sign-off closes the session as a local one does: every table a signature locks refuses new
# rows (``<table>_central_lock``), and an addendum is accepted after it.
CENTRAL_REVIEWS_V15 = f"""
CREATE TABLE central_reviews (
    id INTEGER PRIMARY KEY,
    central_id INTEGER NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    kind TEXT NOT NULL CHECK (kind IN ('signature', 'comment', 'addendum')),
    reviewer TEXT NOT NULL,
    printed_name TEXT NOT NULL CHECK (length(trim(printed_name)) > 0),
    role TEXT NOT NULL,
    written_at TEXT NOT NULL CHECK (written_at GLOB {UTC_TEXT}),
    text TEXT,
    meaning TEXT,
    content_hash TEXT,
    covered TEXT,
    audit_head_id INTEGER,
    audit_head_hash TEXT,
    key_fingerprint TEXT,
    public_key TEXT,
    signature TEXT,
    status TEXT NOT NULL CHECK (status IN ('verified', 'earlier_state', 'invalid', 'note')),
    rows_added INTEGER NOT NULL DEFAULT 0,
    status_words TEXT NOT NULL,{_time_columns()},
    CHECK ((kind = 'signature') = (status <> 'note'))
) STRICT;
CREATE INDEX central_reviews_session ON central_reviews(session_id, id);
DROP TRIGGER addenda_after_signing;
CREATE TRIGGER addenda_after_signing BEFORE INSERT ON addenda
WHEN NOT EXISTS (SELECT 1 FROM signatures WHERE session_id = NEW.session_id)
 AND NOT EXISTS (SELECT 1 FROM imported_signatures WHERE session_id = NEW.session_id)
 AND NOT EXISTS (SELECT 1 FROM central_reviews WHERE session_id = NEW.session_id
                 AND kind = 'signature' AND status = 'verified')
BEGIN
    SELECT RAISE(ABORT, 'an addendum is for a signed session: before sign-off, add or correct');
END;
"""


def central_lock_trigger(table: str) -> str:
    """A session signed at the centre (verified here) takes no new rows in ``table``."""
    return f"""
CREATE TRIGGER {table}_central_lock BEFORE INSERT ON {table}
WHEN EXISTS (SELECT 1 FROM central_reviews WHERE session_id = NEW.session_id
             AND kind = 'signature' AND status = 'verified')
BEGIN
    SELECT RAISE(ABORT, 'this session is signed at the centre and closed: record an addendum');
END;
"""


@migrations(name="0015_central_reviews")
def m0015_central_reviews(db: Database) -> None:
    locked = [
        r[0]
        for r in db.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' "
            "AND name = tbl_name || '_signed_lock' ORDER BY tbl_name"
        ).fetchall()
    ]
    script = [CENTRAL_REVIEWS_V15, append_only_triggers("central_reviews")]
    script += [central_lock_trigger(t) for t in locked]
    for statement in _split("\n".join(script)):
        db.execute(statement)
    if db.execute("PRAGMA user_version").fetchone()[0] < 15:
        db.execute("PRAGMA user_version = 15")


# Changed by 0016: the audit trail keeps no unique index on ``hash``. Each entry's hash is a MAC,
# random-looking, so every new entry went to a random page of that index: a device feed's group
# commit of 32 messages wrote about 240 of its 340 WAL pages there (issue 13's throughput). The
# index proved nothing the chain does not: verification walks the entries by id and checks each
# entry's MAC and its ``prev_hash`` against the entry before, so a copied, replayed or forged
# entry breaks the chain whatever an index says; and nothing looks an entry up by its hash.
AUDIT_HASH_UNIQUE = "hash TEXT NOT NULL UNIQUE CHECK (length(hash) = 64)"
AUDIT_HASH_V16 = "hash TEXT NOT NULL CHECK (length(hash) = 64)"
AUDIT_INDEXES = """
CREATE INDEX audit_row ON audit(table_name, row_id);
CREATE INDEX audit_session ON audit(session_id, id);
CREATE INDEX audit_actor_action ON audit(actor, action, id);
"""


def _audit_table_v3() -> str:
    """The audit table's CREATE statement as 0003 wrote it."""
    found = [s for s in _split(REVIEW_TABLES_V3) if s.startswith("CREATE TABLE audit (")]
    assert len(found) == 1 and AUDIT_HASH_UNIQUE in found[0]
    return found[0]


@migrations(name="0016_audit_hash_index", transactional=False)
def m0016_audit_hash_index(db: Database) -> None:
    """``audit`` rebuilt without the unique index on ``hash`` (SQLite's table-rebuild recipe, as
    0005: every entry copied unchanged, same ids, fields, ``prev_hash`` and ``hash``, so the chain
    and its anchors verify as before). The append-only triggers go with the old table and are
    made again on the new one, in the same transaction: there is no moment without them."""
    create = _audit_table_v3().replace(AUDIT_HASH_UNIQUE, AUDIT_HASH_V16)
    create = create.replace("CREATE TABLE audit (", "CREATE TABLE audit_0016 (", 1)
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            before = db.execute("SELECT count(*), coalesce(max(id), 0) FROM audit").fetchone()
            db.execute(create)
            db.execute("INSERT INTO audit_0016 SELECT * FROM audit ORDER BY id")
            db.execute("DROP TABLE audit")
            db.execute("ALTER TABLE audit_0016 RENAME TO audit")
            for statement in _split(AUDIT_INDEXES + append_only_triggers("audit")):
                db.execute(statement)
            after = db.execute("SELECT count(*), coalesce(max(id), 0) FROM audit").fetchone()
            if tuple(after) != tuple(before):
                raise RuntimeError(f"migration 0016 would change the audit trail: {before}")
            if db.execute("PRAGMA user_version").fetchone()[0] < 16:
                db.execute("PRAGMA user_version = 16")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


# 0017: the review list finds the REMS sessions by their stored protocol copy (the copy, not the
# protocol file, is what the session was run under). A copy is about 19 KB of JSON, and finding
# the text in every one read 190 MB at 10,000 sessions: about half a second, at every opening of
# the list and every filter. This partial index holds the sessions whose copy says so, decided
# once when the copy is stored; the list's query names the same expression, so SQLite reads the
# index instead of the copies (``archive._REMS_SQL`` uses this same text).
REMS_COPY = """instr(protocol_json, '"rems": true') > 0"""


@migrations(name="0017_rems_protocol_index")
def m0017_rems_protocol_index(db: Database) -> None:
    db.execute(
        f"CREATE INDEX session_protocols_rems ON session_protocols(session_id) WHERE {REMS_COPY}"
    )
    if db.execute("PRAGMA user_version").fetchone()[0] < 17:
        db.execute("PRAGMA user_version = 17")


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
