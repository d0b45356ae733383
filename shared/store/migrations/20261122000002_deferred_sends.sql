-- Deferred sends: a campaign may spread its sends over a window (days, working hours, time
-- zones), and a retry may wait longer than the broker's delay queues hold. Such deliveries
-- carry a due time and stay unpublished; the scheduler publishes them when due, so a
-- waiting send holds no consumer.
ALTER TABLE campaigns ADD COLUMN send_window jsonb;
ALTER TABLE deliveries ADD COLUMN due_at timestamptz;
CREATE INDEX deliveries_deferred ON deliveries (due_at)
    WHERE published_at IS NULL AND state IN ('pending', 'retrying') AND due_at IS NOT NULL;

-- Availability-aware Teams sends (seed 001): when asked, a send waits until the recipient's
-- presence says available; each miss reschedules it, and after three rounds it ends unsent.
ALTER TABLE campaigns ADD COLUMN wait_for_availability boolean NOT NULL DEFAULT false;
ALTER TABLE deliveries ADD COLUMN presence_misses integer NOT NULL DEFAULT 0;
