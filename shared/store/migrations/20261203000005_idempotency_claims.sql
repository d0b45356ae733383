-- Which request holds a key: a request that outlives its lease and is taken over by a retry
-- can no longer record an answer (or release the key) over the retry's.
ALTER TABLE idempotency_keys ADD COLUMN claim uuid;
