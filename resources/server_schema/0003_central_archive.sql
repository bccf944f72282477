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
