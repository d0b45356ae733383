-- Idempotency-Key (as in Stripe's API): a create retried with the same key and the same
-- request gets the first answer instead of creating again. Keys live 24 hours.
CREATE TABLE idempotency_keys (
    -- Whose key: the caller's identity once there is one ('' before).
    scope                 text        NOT NULL,
    key                   text        NOT NULL,
    -- SHA-256 of the method, path, content type and body.
    fingerprint           bytea       NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    -- While no answer is stored, the request is running until then; past it, a retry may
    -- take over (the first died).
    locked_until          timestamptz NOT NULL,
    response_status       smallint,
    response_content_type text,
    response_body         bytea,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
