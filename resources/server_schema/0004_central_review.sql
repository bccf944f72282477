-- KAP Monitor central archive, server schema version 4: review at the centre.
-- Applied by `kapmonitor server init` inside one transaction (kapmonitor/network/server_schema.py).
--
-- kap.reviewers: one row per supervisor registered by `kapmonitor server add-reviewer`: their
--   login role (a member of kap_reviewer), printed name, role title, and their Ed25519 public key
--   with its fingerprint. The private key is stored only wrapped (scrypt + AES-256-GCM under the
--   supervisor's password, made on the administrator's machine, exactly as a laptop account's
--   key is wrapped); the server never sees it in clear. Only the supervisor's own role can read
--   its wrapped copy (kap.my_signing_key()); laptops and other reviewers read the public columns.
-- kap.central_reviews: what supervisors write at the centre about one laptop's session: a
--   sign-off (kind 'signature', with its signed statement), a comment or an addendum. Written by
--   reviewer roles only, in their own name (a trigger fills reviewer, printed name and role from
--   kap.reviewers, and refuses a key that is not the reviewer's registered one, a session the
--   server does not hold, a sign-off of a session not ended or already signed), append-only like
--   every table here, and readable by a laptop role for that laptop's sessions only.

CREATE TABLE kap.reviewers (
    role_name text PRIMARY KEY,
    printed_name text NOT NULL CHECK (length(btrim(printed_name)) > 0),
    role_title text NOT NULL CHECK (role_title IN ('supervisor', 'administrator')),
    public_key text NOT NULL CHECK (public_key ~ '^[0-9a-f]{64}$'),
    fingerprint text NOT NULL UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    wrapped_key text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by text NOT NULL DEFAULT current_user
);
CREATE TRIGGER reviewers_append_only BEFORE UPDATE OR DELETE ON kap.reviewers
    FOR EACH ROW EXECUTE FUNCTION kap.refuse_change();
CREATE TRIGGER reviewers_no_truncate BEFORE TRUNCATE ON kap.reviewers
    FOR EACH STATEMENT EXECUTE FUNCTION kap.refuse_change();
REVOKE ALL ON kap.reviewers FROM PUBLIC;
GRANT SELECT (role_name, printed_name, role_title, public_key, fingerprint, added_at)
    ON kap.reviewers TO kap_reviewer, kap_laptop;

-- The calling reviewer's own password-wrapped signing key (NULL for any other role).
CREATE FUNCTION kap.my_signing_key() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, kap
AS $$ SELECT wrapped_key FROM kap.reviewers WHERE role_name = session_user $$;
REVOKE ALL ON FUNCTION kap.my_signing_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kap.my_signing_key() TO kap_reviewer;

CREATE TABLE kap.central_reviews (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    laptop_id text NOT NULL REFERENCES kap.laptops (laptop_id),
    session_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('signature', 'comment', 'addendum')),
    reviewer text NOT NULL DEFAULT session_user REFERENCES kap.reviewers (role_name),
    printed_name text NOT NULL,
    role_title text NOT NULL,
    written_at text NOT NULL,
    -- a comment's moment in the session (laptop time text); NULL for the other kinds
    observed_at text,
    text text,
    -- a sign-off's statement (kapmonitor.store.signatures.statement) and what it was made over
    meaning text,
    content_hash text,
    covered text,
    audit_head_id bigint,
    audit_head_hash text,
    key_fingerprint text,
    public_key text,
    signature text,
    server_received_at timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'signature' OR length(btrim(coalesce(text, ''))) > 0),
    CHECK (kind <> 'signature' OR (meaning IS NOT NULL AND content_hash IS NOT NULL
           AND covered IS NOT NULL AND audit_head_id IS NOT NULL AND audit_head_hash IS NOT NULL
           AND key_fingerprint IS NOT NULL AND public_key IS NOT NULL AND signature IS NOT NULL))
);
-- One sign-off per session at the centre ("already signed").
CREATE UNIQUE INDEX central_reviews_one_signature ON kap.central_reviews (laptop_id, session_id)
    WHERE kind = 'signature';
CREATE INDEX central_reviews_laptop ON kap.central_reviews (laptop_id, id);

CREATE FUNCTION kap.central_review_checks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kap AS $$
DECLARE
    who kap.reviewers%ROWTYPE;
BEGIN
    SELECT * INTO who FROM kap.reviewers WHERE role_name = session_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'only a registered reviewer writes central review rows'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.reviewer := who.role_name;
    NEW.printed_name := who.printed_name;
    NEW.role_title := who.role_title;
    NEW.server_received_at := now();
    IF NOT EXISTS (SELECT 1 FROM kap.sessions s
                   WHERE s.laptop_id = NEW.laptop_id AND s.id = NEW.session_id) THEN
        RAISE EXCEPTION 'the archive holds no session % from laptop %', NEW.session_id, NEW.laptop_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.kind = 'signature' THEN
        IF NEW.key_fingerprint IS DISTINCT FROM who.fingerprint
           OR NEW.public_key IS DISTINCT FROM who.public_key THEN
            RAISE EXCEPTION 'the signature is not made with the reviewer''s registered key'
                USING ERRCODE = 'check_violation';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM kap.session_ends e
                       WHERE e.laptop_id = NEW.laptop_id AND e.session_id = NEW.session_id
                         AND coalesce(e.voided, 0) = 0) THEN
            RAISE EXCEPTION 'the session has not ended on its laptop: it cannot be signed yet'
                USING ERRCODE = 'check_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM kap.signatures g
                   WHERE g.laptop_id = NEW.laptop_id AND g.session_id = NEW.session_id) THEN
            RAISE EXCEPTION 'the session was already signed on its laptop'
                USING ERRCODE = 'unique_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION kap.central_review_checks() FROM PUBLIC;
CREATE TRIGGER central_reviews_checks BEFORE INSERT ON kap.central_reviews
    FOR EACH ROW EXECUTE FUNCTION kap.central_review_checks();
CREATE TRIGGER central_reviews_append_only BEFORE UPDATE OR DELETE ON kap.central_reviews
    FOR EACH ROW EXECUTE FUNCTION kap.refuse_change();
CREATE TRIGGER central_reviews_no_truncate BEFORE TRUNCATE ON kap.central_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION kap.refuse_change();

ALTER TABLE kap.central_reviews ENABLE ROW LEVEL SECURITY;
CREATE POLICY reviewer_reads ON kap.central_reviews FOR SELECT TO kap_reviewer USING (true);
CREATE POLICY reviewer_writes_own ON kap.central_reviews FOR INSERT TO kap_reviewer
    WITH CHECK (reviewer = session_user);
CREATE POLICY laptop_reads_own ON kap.central_reviews FOR SELECT TO kap_laptop
    USING (laptop_id = kap.my_laptop());
REVOKE ALL ON kap.central_reviews FROM PUBLIC;
GRANT SELECT, INSERT ON kap.central_reviews TO kap_reviewer;
GRANT SELECT ON kap.central_reviews TO kap_laptop;
