-- Operators: the people who use pushfleet, as their identity provider names them (issuer
-- and subject). Role and labels are the provider's claims at the last sign-in; the link to
-- a person of the directory and the owner scope are set by admins.
CREATE TABLE operators (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    issuer            text        NOT NULL,
    subject           text        NOT NULL,
    name              text        NOT NULL,
    email             text,
    role              text        NOT NULL CHECK (role IN ('admin', 'organizer', 'viewer', 'operator')),
    -- NULL: not limited by labels (an organizer always is: NULL counts as none).
    labels            text[],
    person_id         uuid        REFERENCES people (id) ON DELETE SET NULL,
    -- Owner scope: the people this operator's workflows may reach (NULL: everyone).
    scope_audience_id uuid        REFERENCES audiences (id),
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (issuer, subject)
);

-- An API key may be limited to labels too (NULL: not limited).
ALTER TABLE api_keys ADD COLUMN labels text[];

-- Permission labels (seed 003): an operator limited to labels sees and changes only the
-- entities carrying one of them. Entities made before labels carry none.
ALTER TABLE campaigns ADD COLUMN labels text[] NOT NULL DEFAULT '{}';
ALTER TABLE templates ADD COLUMN labels text[] NOT NULL DEFAULT '{}';
ALTER TABLE audiences ADD COLUMN labels text[] NOT NULL DEFAULT '{}';
ALTER TABLE segments ADD COLUMN labels text[] NOT NULL DEFAULT '{}';
CREATE INDEX campaigns_labels ON campaigns USING gin (labels);
CREATE INDEX templates_labels ON templates USING gin (labels);
CREATE INDEX audiences_labels ON audiences USING gin (labels);
CREATE INDEX segments_labels ON segments USING gin (labels);
