-- KAP Monitor central archive, server schema version 3: the archive's read side.
-- Applied by `kapmonitor server init` inside one transaction (kapmonitor/network/server_schema.py).
-- Never edit an applied version: add the next numbered file.
--
-- Indexes only (no summary table): the list (kapmonitor/network/central_archive.py) pages
-- newest first off an index on the session start and computes each page's per-session counts
-- from the `session_id` indexes version 1 made, and the filters' "is this row current?" tests
-- (no later row names it in supersedes_id) look corrections up by the partial indexes below,
-- which hold correction rows only. Measured at 100,000 sessions from 20 laptops by
-- `kapmonitor bench` (docs/network.md): no second copy of any figure is kept, so there is
-- nothing to drift from the rows.
--
-- kap.central_exports: the audit entry of an export made from the central archive (the
-- laptop's own audit trail cannot take it: the archive is read, never written back). One row
-- per export, written before the files are moved into place, append-only.

-- Newest first, ties in a fixed order: the first page is the top of this index.
CREATE INDEX sessions_newest ON kap.sessions (observed_at DESC, laptop_id, id);
-- A session by its global id (open, export, the filters' joins).
CREATE INDEX sessions_id ON kap.sessions (id, laptop_id);

-- Corrections, per laptop (ids are the laptop's own): what the current-row test looks up.
DO $$
DECLARE
    tbl text;
BEGIN
    FOR tbl IN
        SELECT table_name FROM information_schema.columns
        WHERE table_schema = 'kap' AND column_name = 'supersedes_id'
        ORDER BY table_name
    LOOP
        EXECUTE format('CREATE INDEX %I ON kap.%I (laptop_id, supersedes_id) '
                       'WHERE supersedes_id IS NOT NULL', tbl || '_supersedes', tbl);
    END LOOP;
END
$$;

-- The distinct clinician names the clinician filter folds (an index-only scan).
CREATE INDEX session_clinicians_name ON kap.session_clinicians (name);

-- An alarm's acknowledgements (the unacknowledged-alarm count).
CREATE INDEX alarm_acknowledgements_alarm ON kap.alarm_acknowledgements (laptop_id, alarm_id);

-- The laptops' names, for the reviewer's list and its laptop filter.
GRANT SELECT (laptop_id, added_at) ON kap.laptops TO kap_reviewer;

CREATE TABLE kap.central_exports (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exported_at timestamptz NOT NULL DEFAULT now(),
    exported_by text NOT NULL DEFAULT session_user,
    actor text NOT NULL,
    format text NOT NULL,
    destination text NOT NULL,
    sessions text[] NOT NULL CHECK (cardinality(sessions) > 0)
);
COMMENT ON TABLE kap.central_exports IS
    'One row per export from the central archive: sessions as laptop_id/session_id';
CREATE TRIGGER central_exports_append_only BEFORE UPDATE OR DELETE ON kap.central_exports
    FOR EACH ROW EXECUTE FUNCTION kap.refuse_change();
CREATE TRIGGER central_exports_no_truncate BEFORE TRUNCATE ON kap.central_exports
    FOR EACH STATEMENT EXECUTE FUNCTION kap.refuse_change();
REVOKE ALL ON kap.central_exports FROM PUBLIC;
GRANT SELECT, INSERT (actor, format, destination, sessions) ON kap.central_exports TO kap_reviewer;

-- kap.session_summary: one row per session of each laptop, DERIVED from the mirror tables: the
-- session's start and patient code, and how many current (not withdrawn, not superseded) rows
-- of session_ends, adverse_events and alarms it has, and how many signatures. It is never
-- written by anyone but the triggers below, which RECOMPUTE the touched sessions' figures from
-- the rows themselves after every INSERT statement into those tables (a statement-level
-- trigger over the inserted rows' sessions): nothing is incremented, so nothing can drift, and
-- the central list's status and "has adverse events / alarms" filters and the summary line's
-- counts read one narrow row per session instead of joining four large tables (measured: the
-- joins cost 0.1-0.3 s per filter and 1.6 s for the counts at 100,000 sessions). The rows it
-- summarises stay append-only; this table is the one place UPDATE happens, by the triggers.
CREATE TABLE kap.session_summary (
    laptop_id text NOT NULL,
    session_id text NOT NULL,
    started_at text,
    patient_code text,
    ended_rows integer NOT NULL DEFAULT 0,
    adverse_event_rows integer NOT NULL DEFAULT 0,
    alarm_rows integer NOT NULL DEFAULT 0,
    signature_rows integer NOT NULL DEFAULT 0,
    PRIMARY KEY (laptop_id, session_id)
);
CREATE INDEX session_summary_newest ON kap.session_summary (started_at DESC, laptop_id, session_id);
REVOKE ALL ON kap.session_summary FROM PUBLIC;
ALTER TABLE kap.session_summary ENABLE ROW LEVEL SECURITY;
CREATE POLICY reviewer_reads ON kap.session_summary FOR SELECT TO kap_reviewer USING (true);
CREATE POLICY laptop_reads_own ON kap.session_summary FOR SELECT TO kap_laptop
    USING (laptop_id = kap.my_laptop());
GRANT SELECT ON kap.session_summary TO kap_reviewer, kap_laptop;

-- Recompute one figure (TG_ARGV[0]) of the sessions the statement's rows belong to; TG_ARGV[1]
-- says whether only current rows count. SECURITY DEFINER: a laptop's role inserts the rows but
-- has no right on the summary.
CREATE FUNCTION kap.summarise_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kap AS $$
DECLARE
    figure text := TG_ARGV[0];
    only_current boolean := TG_ARGV[1]::boolean;
    counted text := CASE WHEN only_current THEN
        'count(*) FILTER (WHERE t.voided = 0 AND NOT EXISTS (SELECT 1 FROM kap.' ||
        quote_ident(TG_TABLE_NAME) || ' sup WHERE sup.laptop_id = t.laptop_id ' ||
        'AND sup.supersedes_id = t.id))' ELSE 'count(*)' END;
BEGIN
    -- One recomputation per laptop at a time, each after the other's commit (READ COMMITTED:
    -- the next statement sees it), so two transactions adding rows to one session cannot
    -- each write a count that misses the other's rows.
    PERFORM pg_advisory_xact_lock(hashtext('kap.session_summary:' || laptop_id))
    FROM (SELECT DISTINCT laptop_id FROM new_rows ORDER BY laptop_id) AS touched;
    EXECUTE format(
        'INSERT INTO kap.session_summary AS m (laptop_id, session_id, %1$I) '
        'SELECT t.laptop_id, t.session_id, %3$s FROM kap.%2$I t '
        'WHERE (t.laptop_id, t.session_id) IN '
        '(SELECT DISTINCT laptop_id, session_id FROM new_rows WHERE session_id IS NOT NULL) '
        'GROUP BY t.laptop_id, t.session_id '
        'ON CONFLICT (laptop_id, session_id) DO UPDATE SET %1$I = excluded.%1$I',
        figure, TG_TABLE_NAME, counted);
    RETURN NULL;
END
$$;

CREATE FUNCTION kap.summarise_sessions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kap AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('kap.session_summary:' || laptop_id))
    FROM (SELECT DISTINCT laptop_id FROM new_rows ORDER BY laptop_id) AS touched;
    INSERT INTO kap.session_summary AS m (laptop_id, session_id, started_at, patient_code)
    SELECT laptop_id, id, observed_at, patient_code FROM new_rows WHERE id IS NOT NULL
    ON CONFLICT (laptop_id, session_id) DO UPDATE
        SET started_at = excluded.started_at, patient_code = excluded.patient_code;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION kap.summarise_rows() FROM PUBLIC;
REVOKE ALL ON FUNCTION kap.summarise_sessions() FROM PUBLIC;

CREATE TRIGGER sessions_summary AFTER INSERT ON kap.sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.summarise_sessions();
CREATE TRIGGER session_ends_summary AFTER INSERT ON kap.session_ends
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.summarise_rows('ended_rows', 'true');
CREATE TRIGGER adverse_events_summary AFTER INSERT ON kap.adverse_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.summarise_rows('adverse_event_rows', 'true');
CREATE TRIGGER alarms_summary AFTER INSERT ON kap.alarms
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.summarise_rows('alarm_rows', 'true');
CREATE TRIGGER signatures_summary AFTER INSERT ON kap.signatures
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.summarise_rows('signature_rows', 'false');

-- An archive upgraded from version 2 already holds rows: summarise them once, here.
INSERT INTO kap.session_summary (laptop_id, session_id, started_at, patient_code)
SELECT laptop_id, id, observed_at, patient_code FROM kap.sessions WHERE id IS NOT NULL
ON CONFLICT (laptop_id, session_id) DO NOTHING;
DO $$
DECLARE
    part record;
BEGIN
    FOR part IN SELECT * FROM (VALUES ('session_ends', 'ended_rows', true),
                                      ('adverse_events', 'adverse_event_rows', true),
                                      ('alarms', 'alarm_rows', true),
                                      ('signatures', 'signature_rows', false)) AS p (tbl, figure, cur)
    LOOP
        EXECUTE format(
            'INSERT INTO kap.session_summary AS m (laptop_id, session_id, %1$I) '
            'SELECT t.laptop_id, t.session_id, %3$s FROM kap.%2$I t '
            'WHERE t.session_id IS NOT NULL GROUP BY t.laptop_id, t.session_id '
            'ON CONFLICT (laptop_id, session_id) DO UPDATE SET %1$I = excluded.%1$I',
            part.figure, part.tbl,
            CASE WHEN part.cur THEN
                'count(*) FILTER (WHERE t.voided = 0 AND NOT EXISTS (SELECT 1 FROM kap.' ||
                quote_ident(part.tbl) || ' sup WHERE sup.laptop_id = t.laptop_id ' ||
                'AND sup.supersedes_id = t.id))' ELSE 'count(*)' END);
    END LOOP;
END
$$;
