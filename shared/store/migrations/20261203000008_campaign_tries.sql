-- Try (seed 001's TRY button): the campaign's message sent now to one person, as a campaign
-- of its own so the engine sends it like any other, kept out of the list and the report.
ALTER TABLE campaigns
    ADD COLUMN is_try boolean NOT NULL DEFAULT false,
    ADD COLUMN try_of uuid REFERENCES campaigns (id) ON DELETE SET NULL;
