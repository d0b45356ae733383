-- Twilio reports more statuses than the five first stored. Most map onto them (accepted and
-- scheduled are queued, sending is sent, read is delivered); `canceled` does not: a
-- message canceled before it left Twilio is final, like failed, and is kept as such.
-- NOT VALID then VALIDATE: the check is added without holding a write lock during the scan.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_provider_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_provider_status_check CHECK (provider_status IN
    ('queued', 'sent', 'delivered', 'undelivered', 'failed', 'canceled')) NOT VALID;
ALTER TABLE deliveries VALIDATE CONSTRAINT deliveries_provider_status_check;

ALTER TABLE provider_status_inbox DROP CONSTRAINT provider_status_inbox_status_check;
ALTER TABLE provider_status_inbox ADD CONSTRAINT provider_status_inbox_status_check CHECK (status IN
    ('queued', 'sent', 'delivered', 'undelivered', 'failed', 'canceled'));

-- Must agree with pushfleet_domain::ProviderStatus::rank.
CREATE OR REPLACE FUNCTION provider_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE status
                     WHEN 'queued' THEN 1
                     WHEN 'sent' THEN 2
                     WHEN 'delivered' THEN 3
                     WHEN 'undelivered' THEN 3
                     WHEN 'failed' THEN 3
                     WHEN 'canceled' THEN 3
                     ELSE 0
                 END $$;

-- Why a campaign's evaluation was given up (an evaluate job that failed the same way
-- EVALUATOR_MAX_ATTEMPTS times and was dead-lettered). Cleared when it is replayed.
ALTER TABLE campaigns ADD COLUMN evaluation_error text;
