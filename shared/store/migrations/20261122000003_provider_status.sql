-- What the provider said after accepting a message (Twilio status callbacks), and the SMS
-- segments a sent message was billed as.
ALTER TABLE deliveries
    ADD COLUMN provider_status     text CHECK (provider_status IN
                                   ('queued', 'sent', 'delivered', 'undelivered', 'failed')),
    ADD COLUMN provider_error_code text,
    ADD COLUMN provider_status_at  timestamptz,
    ADD COLUMN segments            integer CHECK (segments > 0);

-- Callbacks name the message only by the provider's id.
CREATE INDEX deliveries_provider_message_id ON deliveries (provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- Statuses only move forward: queued < sent < a final one; a final status is never replaced.
-- Must agree with pushfleet_domain::ProviderStatus::rank.
CREATE FUNCTION provider_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE status
                     WHEN 'queued' THEN 1
                     WHEN 'sent' THEN 2
                     WHEN 'delivered' THEN 3
                     WHEN 'undelivered' THEN 3
                     WHEN 'failed' THEN 3
                     ELSE 0
                 END $$;

-- Twilio answers a send and starts posting callbacks at once, while the sender writes the
-- sid in its next outcome batch: a callback can arrive before its delivery knows the sid.
-- It waits here (the latest status per sid) until the sender's outcome write picks it up.
CREATE TABLE provider_status_inbox (
    channel             text        NOT NULL CHECK (channel IN ('email', 'teams', 'sms')),
    provider_message_id text        NOT NULL,
    status              text        NOT NULL CHECK (status IN
                                    ('queued', 'sent', 'delivered', 'undelivered', 'failed')),
    error_code          text,
    status_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_message_id, channel)
);
-- For forgetting callbacks whose sid never shows up (a message sent by something else).
CREATE INDEX provider_status_inbox_status_at ON provider_status_inbox (status_at);
