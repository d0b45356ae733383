-- The store of record. Every table here is written by exactly one service role:
-- api (people, audiences, templates, campaigns), scheduler (claims + outbox),
-- evaluator (deliveries), senders (delivery outcomes).

CREATE TABLE people (
    id                 uuid PRIMARY KEY,
    email              text,
    first_name         text        NOT NULL,
    last_name          text        NOT NULL DEFAULT '',
    phone              text,
    -- {"service_url": ..., "conversation_id": ..., "user_id": ..., "tenant_id": ...}
    teams_conversation jsonb,
    time_zone          text        NOT NULL DEFAULT 'UTC',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX people_email_key ON people (lower(email));

CREATE TABLE audiences (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audience_members (
    audience_id uuid NOT NULL REFERENCES audiences (id) ON DELETE CASCADE,
    person_id   uuid NOT NULL REFERENCES people (id),
    PRIMARY KEY (audience_id, person_id)
);

CREATE TABLE templates (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    subject    text        NOT NULL DEFAULT '',
    body       text        NOT NULL,
    html       text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaigns (
    id           uuid PRIMARY KEY,
    name         text        NOT NULL,
    audience_id  uuid        NOT NULL REFERENCES audiences (id),
    template_id  uuid        NOT NULL REFERENCES templates (id),
    channels     text[]      NOT NULL CHECK (cardinality(channels) > 0
                                             AND channels <@ ARRAY['email', 'teams', 'sms']),
    start_at     timestamptz NOT NULL,
    -- scheduled -> evaluating (claimed by a scheduler) -> sending (deliveries written)
    status       text        NOT NULL DEFAULT 'scheduled'
                             CHECK (status IN ('scheduled', 'evaluating', 'sending')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    claimed_at   timestamptz,
    evaluated_at timestamptz
);
-- The scheduler's only question: what is due?
CREATE INDEX campaigns_due ON campaigns (start_at) WHERE status = 'scheduled';

-- One row per (campaign, recipient, channel): the unique key is what makes a repeated
-- evaluation harmless. The row doubles as the send outbox: published_at is set only after
-- the broker confirmed the send job.
CREATE TABLE deliveries (
    id                  bigserial PRIMARY KEY,
    campaign_id         uuid        NOT NULL REFERENCES campaigns (id),
    person_id           uuid        NOT NULL REFERENCES people (id),
    channel             text        NOT NULL CHECK (channel IN ('email', 'teams', 'sms')),
    state               text        NOT NULL DEFAULT 'pending'
                                    CHECK (state IN ('pending', 'retrying', 'sent', 'failed', 'dead')),
    attempts            integer     NOT NULL DEFAULT 0,
    last_error          text,
    provider_message_id text,
    published_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, person_id, channel)
);
CREATE INDEX deliveries_campaign_state ON deliveries (campaign_id, state);
CREATE INDEX deliveries_unpublished ON deliveries (campaign_id, id)
    WHERE published_at IS NULL AND state = 'pending';

-- Messages that must reach the broker because a transaction said so (e.g. "evaluate this
-- campaign"). Written in the same transaction as the state change, deleted after the
-- broker confirmed: a crash in between publishes again, never loses.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    routing_key text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
