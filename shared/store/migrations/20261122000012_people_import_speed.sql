-- Cheaper imports (issue 4; docs/benchmarks.md has the measurements).

-- The Teams user index (opt-in lookups) held an entry for every person, most of them NULL
-- (no Teams conversation yet); only people with a conversation are ever looked up by it.
DROP INDEX IF EXISTS people_teams_user_id;
CREATE INDEX people_teams_user_id ON people ((teams_conversation ->> 'user_id'))
    WHERE teams_conversation IS NOT NULL;

-- Manager and HR partner are only ever set by the import, to the id of a person it has just
-- found in this table, and people are never deleted (DELETE /v1/people/{id} deactivates), so
-- the foreign keys guarded nothing; their per-row triggers were a quarter of an import's
-- database time. A criterion on a relation that names nobody simply matches nobody.
ALTER TABLE people DROP CONSTRAINT IF EXISTS people_manager_id_fkey;
ALTER TABLE people DROP CONSTRAINT IF EXISTS people_hr_partner_id_fkey;
