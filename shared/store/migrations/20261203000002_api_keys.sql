-- API keys (automation's credentials): only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    secret_hash  bytea       NOT NULL UNIQUE,
    role         text        NOT NULL CHECK (role IN ('admin', 'organizer', 'viewer', 'operator')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid        REFERENCES api_keys (id),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
