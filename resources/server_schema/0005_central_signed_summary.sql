-- KAP Monitor central archive, server schema version 5: a session signed at the centre is
-- listed as signed.
--
-- The list's status ("signed" / "unsigned") and the summary line's "unsigned" count read
-- kap.session_summary.signature_rows, which version 3 recomputes from the laptops' own
-- `signatures` rows only. A supervisor's sign-off at the centre (kap.central_reviews, kind
-- 'signature', version 4) signs the session as surely; without this, the archive listed a
-- session just signed there as "ended" and kept it among the unsigned. The figure is still
-- recomputed from the rows themselves (never incremented), now from both tables.

CREATE FUNCTION kap.summarise_signed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kap AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('kap.session_summary:' || laptop_id))
    FROM (SELECT DISTINCT laptop_id FROM new_rows ORDER BY laptop_id) AS touched;
    INSERT INTO kap.session_summary AS m (laptop_id, session_id, signature_rows)
    SELECT t.laptop_id, t.session_id,
        (SELECT count(*) FROM kap.signatures g
         WHERE g.laptop_id = t.laptop_id AND g.session_id = t.session_id)
        + (SELECT count(*) FROM kap.central_reviews c
           WHERE c.laptop_id = t.laptop_id AND c.session_id = t.session_id
           AND c.kind = 'signature')
    FROM (SELECT DISTINCT laptop_id, session_id FROM new_rows
          WHERE session_id IS NOT NULL) AS t
    ON CONFLICT (laptop_id, session_id) DO UPDATE SET signature_rows = excluded.signature_rows;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION kap.summarise_signed() FROM PUBLIC;

-- Both kinds of signature recompute the same figure with the same function.
DROP TRIGGER signatures_summary ON kap.signatures;
CREATE TRIGGER signatures_summary AFTER INSERT ON kap.signatures
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.summarise_signed();
CREATE TRIGGER central_reviews_summary AFTER INSERT ON kap.central_reviews
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kap.summarise_signed();

-- An archive upgraded from version 4 may already hold sign-offs made at the centre.
INSERT INTO kap.session_summary AS m (laptop_id, session_id, signature_rows)
SELECT c.laptop_id, c.session_id,
    (SELECT count(*) FROM kap.signatures g
     WHERE g.laptop_id = c.laptop_id AND g.session_id = c.session_id) + count(*)
FROM kap.central_reviews c WHERE c.kind = 'signature'
GROUP BY c.laptop_id, c.session_id
ON CONFLICT (laptop_id, session_id) DO UPDATE SET signature_rows = excluded.signature_rows;
