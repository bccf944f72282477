-- KAP Monitor central archive, server schema version 1.
-- Applied by `kapmonitor server init` (kapmonitor/network/server_schema.py), inside one
-- transaction, with its number recorded in kap.schema_versions. Never edit an applied version:
-- add the next numbered file. Every mirrored table is append-only here too.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kap_laptop') THEN
        CREATE ROLE kap_laptop NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kap_reviewer') THEN
        CREATE ROLE kap_reviewer NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA kap FROM PUBLIC;
GRANT USAGE ON SCHEMA kap TO kap_laptop, kap_reviewer;

-- One row per laptop: its name (laptop_id, on every row it sends) and its login role.
CREATE TABLE kap.laptops (
    laptop_id text PRIMARY KEY CHECK (laptop_id ~ '^[a-z0-9][a-z0-9-]{0,30}$'),
    role_name text NOT NULL UNIQUE,
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by text NOT NULL DEFAULT current_user
);

-- The calling laptop's id: its login role looked up in kap.laptops (NULL for any other role).
CREATE FUNCTION kap.my_laptop() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, kap
AS $$ SELECT laptop_id FROM kap.laptops WHERE role_name = session_user $$;
REVOKE ALL ON FUNCTION kap.my_laptop() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kap.my_laptop() TO kap_laptop, kap_reviewer;

-- Append-only: the one trigger function every mirrored table uses.
CREATE FUNCTION kap.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kap.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Make a mirrored table append-only and give laptops INSERT and SELECT of their own rows only.
CREATE FUNCTION kap.protect(tbl text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON kap.%I '
                   'FOR EACH ROW EXECUTE FUNCTION kap.refuse_change()', tbl || '_append_only', tbl);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON kap.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION kap.refuse_change()', tbl || '_no_truncate', tbl);
    EXECUTE format('ALTER TABLE kap.%I ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY laptop_reads_own ON kap.%I FOR SELECT TO kap_laptop '
                   'USING (laptop_id = kap.my_laptop())', tbl);
    EXECUTE format('CREATE POLICY laptop_inserts_own ON kap.%I FOR INSERT TO kap_laptop '
                   'WITH CHECK (laptop_id = kap.my_laptop())', tbl);
    EXECUTE format('CREATE POLICY reviewer_reads ON kap.%I FOR SELECT TO kap_reviewer USING (true)', tbl);
    EXECUTE format('GRANT SELECT, INSERT ON kap.%I TO kap_laptop', tbl);
    EXECUTE format('GRANT SELECT ON kap.%I TO kap_reviewer', tbl);
    IF EXISTS (SELECT FROM information_schema.columns
               WHERE table_schema = 'kap' AND table_name = tbl AND column_name = 'session_id') THEN
        EXECUTE format('CREATE INDEX %I ON kap.%I (session_id)', tbl || '_session', tbl);
    END IF;
END
$$;

-- Each laptop's audit-chain head at each sync: the outside witness `verify --server` holds the
-- laptop's file against (a rollback or rewrite of the file no longer matches it).
CREATE TABLE kap.chain_heads (
    laptop_id text NOT NULL DEFAULT kap.my_laptop() REFERENCES kap.laptops (laptop_id),
    database_identity text NOT NULL,
    entry bigint NOT NULL,
    mac text NOT NULL,
    entry_at text NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (laptop_id, entry)
);
SELECT kap.protect('chain_heads');

-- The laptop's tables, column for column (types: INTEGER bigint, REAL double precision, TEXT
-- text), drafted by kapmonitor.network.server_schema.mirror_sql from the laptop schema 14.
-- Not sent: users, account_pins, signing_keys (password and PIN hashes, wrapped private keys).

CREATE TABLE kap.sessions (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id text,
    patient_code text,
    birth_year bigint,
    age_years bigint,
    sex text,
    weight_kg double precision,
    indication text,
    indication_other text,
    eligibility text,
    concomitant_medicines text,
    session_limit_minutes bigint,
    app_version text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('sessions');

CREATE TABLE kap.session_clinicians (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    name text,
    position bigint,
    observed_at text,
    recorded_at text,
    recorded_by text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('session_clinicians');

CREATE TABLE kap.phase_changes (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    phase text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('phase_changes');

CREATE TABLE kap.doses (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    drug text,
    drug_other text,
    route text,
    dose_mg double precision,
    dose_mg_per_kg double precision,
    lot_number text,
    is_booster bigint,
    note text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('doses');

CREATE TABLE kap.vitals (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    hr bigint,
    sbp bigint,
    dbp bigint,
    spo2 bigint,
    rr bigint,
    temp_c double precision,
    on_oxygen bigint,
    note text,
    etco2 bigint,
    device_reading_id bigint,
    source text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('vitals');

CREATE TABLE kap.observations (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    moaas bigint,
    rass bigint,
    dissociation bigint,
    features text,
    cadss_total bigint,
    other_scores text,
    note text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('observations');

CREATE TABLE kap.adverse_events (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    term text,
    verbatim text,
    code text,
    grade bigint,
    serious bigint,
    serious_criterion text,
    action text,
    action_detail text,
    relatedness text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('adverse_events');

CREATE TABLE kap.adverse_event_outcomes (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    adverse_event_id bigint,
    outcome text,
    note text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('adverse_event_outcomes');

CREATE TABLE kap.interventions (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    category text,
    medication text,
    detail text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('interventions');

CREATE TABLE kap.session_ends (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    disposition text,
    disposition_other text,
    escort text,
    summary text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('session_ends');

CREATE TABLE kap.session_protocols (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    protocol_id text,
    protocol_name text,
    protocol_version bigint,
    protocol_json text,
    origin text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('session_protocols');

CREATE TABLE kap.vital_scores (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    vitals_id bigint,
    news2_total bigint,
    news2_band text,
    news2_parts text,
    news2_missing text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('vital_scores');

CREATE TABLE kap.alarm_acknowledgements (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    alarm_id bigint,
    response text,
    detail text,
    symptoms text,
    risk_assessment text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('alarm_acknowledgements');

CREATE TABLE kap.overrides (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    kind text,
    reason text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('overrides');

CREATE TABLE kap.discharge_assessments (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    score_name text,
    total bigint,
    maximum bigint,
    pass_mark bigint,
    passed bigint,
    items text,
    checklist text,
    ready bigint,
    reasons text,
    override_reason text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('discharge_assessments');

CREATE TABLE kap.questionnaire_responses (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    questionnaire_id text,
    timing text,
    answers text,
    total bigint,
    band text,
    safety_flags text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('questionnaire_responses');

CREATE TABLE kap.audit (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    at text,
    actor text,
    action text,
    session_id text,
    table_name text,
    row_id bigint,
    row_hash text,
    detail text,
    prev_hash text,
    hash text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('audit');

CREATE TABLE kap.signatures (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    printed_name text,
    role text,
    meaning text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('signatures');

CREATE TABLE kap.addenda (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    text text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('addenda');

CREATE TABLE kap.review_comments (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    text text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('review_comments');

CREATE TABLE kap.clinic_settings (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    key text,
    value text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('clinic_settings');

CREATE TABLE kap.news2_scale_choices (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    scale bigint,
    reason text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('news2_scale_choices');

CREATE TABLE kap.rems_session_details (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    first_treatment bigint,
    clinician_phone text,
    clinician_email text,
    setting_name text,
    setting_address text,
    contraindications text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('rems_session_details');

CREATE TABLE kap.rems_submissions (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    submitted_by text,
    reference text,
    note text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('rems_submissions');

CREATE TABLE kap.alarm_checklist_steps (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    alarm_id bigint,
    checklist text,
    step text,
    note text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('alarm_checklist_steps');

CREATE TABLE kap.account_roles (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    username text,
    role text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('account_roles');

CREATE TABLE kap.signature_seals (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    signature_id bigint,
    signer text,
    printed_name text,
    role text,
    meaning text,
    signed_at text,
    content_hash text,
    covered text,
    audit_head_id bigint,
    audit_head_hash text,
    key_fingerprint text,
    public_key text,
    signature text,
    legacy bigint,
    observed_at text,
    recorded_at text,
    recorded_by text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('signature_seals');

CREATE TABLE kap.imported_signatures (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    signer text,
    printed_name text,
    role text,
    meaning text,
    signed_at text,
    content_hash text,
    key_fingerprint text,
    public_key text,
    signature text,
    statement text,
    status text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('imported_signatures');

CREATE TABLE kap.attestations (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    signer text,
    printed_name text,
    role text,
    meaning text,
    signed_at text,
    content_hash text,
    covered text,
    audit_head_id bigint,
    audit_head_hash text,
    key_fingerprint text,
    public_key text,
    signature text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('attestations');

CREATE TABLE kap.device_readings (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    device_time bigint,
    received_at text,
    vital text,
    value double precision,
    unit_received text,
    code text,
    device_id text,
    source text,
    message_id text,
    flags text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('device_readings');

CREATE TABLE kap.device_reading_reviews (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    device_reading_id bigint,
    decision text,
    reason text,
    automatic bigint,
    vitals_id bigint,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('device_reading_reviews');

CREATE TABLE kap.alarms (
    laptop_id text NOT NULL DEFAULT kap.my_laptop()
        REFERENCES kap.laptops (laptop_id),
    local_id bigint NOT NULL,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    id bigint,
    session_id text,
    observed_at text,
    recorded_at text,
    recorded_by text,
    supersedes_id bigint,
    correction_reason text,
    voided bigint,
    source_table text,
    source_id bigint,
    rule_id text,
    parameter text,
    value double precision,
    priority text,
    limit_text text,
    message text,
    rule_source text,
    PRIMARY KEY (laptop_id, local_id)
);
SELECT kap.protect('alarms');

