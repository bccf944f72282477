-- KAP Monitor central archive, server schema version 2: the live view.
-- Applied by `kapmonitor server init` like version 1 (one transaction, recorded in
-- kap.schema_versions). Never edit an applied version: add the next numbered file.
--
-- 1. NOTIFY on the channel `kap_live` after each INSERT statement into a table that changes a
--    running session's state. One notification per statement and session (a statement-level
--    trigger over the inserted rows' distinct sessions), and PostgreSQL folds identical payloads
--    within one transaction, so a sync batch of 500 rows raises one notification per session it
--    touched, not 500. The payload is visible to ANY role that can connect (PostgreSQL has no
--    permission on LISTEN): it carries only the laptop's name and the session's global id (a
--    random UUID), never a clinical value; the listener reads the rest with its own rights.
-- 2. The view kap.live_sessions: one row per session in progress (no current session-end row),
--    read with the caller's rights (security_invoker), so a laptop's role still sees only its
--    own sessions through it and kap_reviewer sees every laptop's. The next check due is not
--    computed here: the listener (kapmonitor/network/live.py) runs the domain's own schedule
--    (kapmonitor/domain/schedule.py) over the session's rows and stored protocol.

CREATE FUNCTION kap.notify_live() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, kap AS $$
BEGIN
    PERFORM pg_notify('kap_live', json_build_object('laptop', laptop_id, 'session', sid)::text)
    FROM (SELECT DISTINCT laptop_id, session_id AS sid FROM new_rows) AS touched
    WHERE sid IS NOT NULL;
    RETURN NULL;
END
$$;

-- kap.sessions names its session `id`, not `session_id`.
CREATE FUNCTION kap.notify_live_session() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, kap AS $$
BEGIN
    PERFORM pg_notify('kap_live', json_build_object('laptop', laptop_id, 'session', sid)::text)
    FROM (SELECT DISTINCT laptop_id, id AS sid FROM new_rows) AS touched
    WHERE sid IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_notify_live AFTER INSERT ON kap.sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.notify_live_session();

DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['session_protocols', 'phase_changes', 'doses', 'vitals',
                               'observations', 'alarms', 'alarm_acknowledgements',
                               'session_ends'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON kap.%I REFERENCING NEW TABLE AS '
                       'new_rows FOR EACH STATEMENT EXECUTE FUNCTION kap.notify_live()',
                       tbl || '_notify_live', tbl);
    END LOOP;
END
$$;

-- A laptop's time text as a time, NULL when it is not one: a laptop's role may insert any text
-- in its own rows, and one unreadable time must not take the whole view down for every laptop.
CREATE FUNCTION kap.as_time(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, kap AS $$
BEGIN
    RETURN value::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
GRANT EXECUTE ON FUNCTION kap.as_time(text) TO kap_laptop, kap_reviewer;

-- Rows as they stand now, as the laptop's SessionLog.current() reads them: a row superseded by
-- a correction, or voided, is gone (a voiding row supersedes and is itself voided). Spelled out
-- per table below as NOT EXISTS on (laptop_id, session_id) so the session index serves it.
CREATE VIEW kap.live_sessions WITH (security_invoker = true) AS
WITH
ends AS (
    SELECT e.laptop_id, e.session_id FROM kap.session_ends e
    WHERE coalesce(e.voided, 0) = 0
      AND NOT EXISTS (SELECT 1 FROM kap.session_ends c WHERE c.laptop_id = e.laptop_id
                      AND c.session_id = e.session_id AND c.supersedes_id = e.id)
),
phases AS (
    SELECT DISTINCT ON (p.laptop_id, p.session_id) p.laptop_id, p.session_id, p.phase
    FROM kap.phase_changes p
    WHERE coalesce(p.voided, 0) = 0
      AND NOT EXISTS (SELECT 1 FROM kap.phase_changes c WHERE c.laptop_id = p.laptop_id
                      AND c.session_id = p.session_id AND c.supersedes_id = p.id)
    ORDER BY p.laptop_id, p.session_id, p.observed_at DESC, p.id DESC
),
doses AS (
    SELECT d.laptop_id, d.session_id, max(d.observed_at) AS last_dose_at,
           min(d.observed_at) AS first_dose_at
    FROM kap.doses d
    WHERE coalesce(d.voided, 0) = 0
      AND NOT EXISTS (SELECT 1 FROM kap.doses c WHERE c.laptop_id = d.laptop_id
                      AND c.session_id = d.session_id AND c.supersedes_id = d.id)
    GROUP BY d.laptop_id, d.session_id
),
acked AS (
    SELECT a.laptop_id, a.alarm_id FROM kap.alarm_acknowledgements a
    WHERE coalesce(a.voided, 0) = 0
      AND NOT EXISTS (SELECT 1 FROM kap.alarm_acknowledgements c WHERE c.laptop_id = a.laptop_id
                      AND c.session_id = a.session_id AND c.supersedes_id = a.id)
),
open_alarms AS (
    SELECT al.laptop_id, al.session_id, count(*) AS open_alarms,
           count(*) FILTER (WHERE al.priority = 'critical') AS open_critical
    FROM kap.alarms al
    WHERE coalesce(al.voided, 0) = 0
      AND NOT EXISTS (SELECT 1 FROM kap.alarms c WHERE c.laptop_id = al.laptop_id
                      AND c.session_id = al.session_id AND c.supersedes_id = al.id)
      AND NOT EXISTS (SELECT 1 FROM acked k
                      WHERE k.laptop_id = al.laptop_id AND k.alarm_id = al.id)
    GROUP BY al.laptop_id, al.session_id
)
SELECT s.laptop_id,
       s.id AS session_id,
       s.patient_code,
       coalesce(ph.phase, 'preparation') AS phase,
       kap.as_time(s.observed_at) AS started_at,
       now() - kap.as_time(s.observed_at) AS elapsed,
       kap.as_time(d.first_dose_at) AS first_dose_at,
       kap.as_time(d.last_dose_at) AS last_dose_at,
       now() - kap.as_time(d.last_dose_at) AS since_last_dose,
       coalesce(o.open_alarms, 0) AS open_alarms,
       coalesce(o.open_critical, 0) AS open_critical
FROM kap.sessions s
LEFT JOIN phases ph ON ph.laptop_id = s.laptop_id AND ph.session_id = s.id
LEFT JOIN doses d ON d.laptop_id = s.laptop_id AND d.session_id = s.id
LEFT JOIN open_alarms o ON o.laptop_id = s.laptop_id AND o.session_id = s.id
WHERE NOT EXISTS (SELECT 1 FROM ends e WHERE e.laptop_id = s.laptop_id AND e.session_id = s.id);

GRANT SELECT ON kap.live_sessions TO kap_reviewer, kap_laptop;
