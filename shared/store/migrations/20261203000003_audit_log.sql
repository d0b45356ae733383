-- The audit log: every admin write and every read of personal data, who, what, when, from
-- where. Append-only: updates, deletes and truncation are refused by triggers.
CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid,
    actor_name  text,
    actor_role  text,
    method      text        NOT NULL,
    route       text        NOT NULL,
    path        text        NOT NULL,
    -- The entity the operation concerns: the route's {id}, or what a create made.
    entity_id   text,
    status      smallint    NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('write', 'personal_data_read')),
    client_addr text
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id DESC);
CREATE INDEX audit_log_entity ON audit_log (entity_id, id DESC) WHERE entity_id IS NOT NULL;

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
