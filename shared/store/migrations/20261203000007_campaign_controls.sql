-- Cancel ends every unsent delivery of a campaign as `cancelled`.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'retrying', 'sent', 'failed', 'dead', 'skipped', 'cancelled'));
-- What the senders poll, a few times a second: the campaigns that must not send now.
CREATE INDEX campaigns_halted ON campaigns (status, updated_at)
    WHERE status IN ('paused', 'cancelled');
