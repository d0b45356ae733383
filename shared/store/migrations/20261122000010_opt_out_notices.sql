-- Opt-outs and deactivations reach send jobs already in the broker (issue 4): every change
-- is announced on the `pushfleet_opt_outs` channel in the transaction that makes it, and the
-- senders keep the set of people not to send to. Triggers rather than calls in each writer,
-- so that no writer (the api, the people import, an operator's UPDATE) can forget it.
--
-- Payload (JSON): {"person_id", "channel": "email" | "sms" | "teams" | "all" (the person's
-- active flag), "opted_out": true when sends must stop, "at"}. `at` (clock time) keeps two
-- changes of one person in one transaction from being folded into one notification:
-- Postgres delivers identical payloads of a transaction only once.
-- Must agree with pushfleet_store::OptOutNotice.

CREATE FUNCTION notify_channel_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM pg_notify('pushfleet_opt_outs', json_build_object(
            'person_id', OLD.person_id, 'channel', OLD.channel, 'opted_out', false,
            'at', clock_timestamp())::text);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('pushfleet_opt_outs', json_build_object(
            'person_id', NEW.person_id, 'channel', NEW.channel, 'opted_out', true,
            'at', clock_timestamp())::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER channel_opt_outs_notify
    AFTER INSERT OR UPDATE OR DELETE ON channel_opt_outs
    FOR EACH ROW EXECUTE FUNCTION notify_channel_opt_out();

CREATE FUNCTION notify_person_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pushfleet_opt_outs', json_build_object(
        'person_id', NEW.id, 'channel', 'all', 'opted_out', NOT NEW.active,
        'at', clock_timestamp())::text);
    RETURN NULL;
END $$;

-- Only rows whose flag changes pay for the function call: an import that rewrites
-- `active` unchanged on 100,000 rows sends nothing.
CREATE TRIGGER people_active_notify
    AFTER UPDATE OF active ON people
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active)
    EXECUTE FUNCTION notify_person_active();

-- A sender's catch-up load (at start, after a lost listener connection) reads the recent
-- deactivations; most people are active, so the index is small.
CREATE INDEX people_recently_deactivated ON people (deactivated_at) WHERE NOT active;
