-- A campaign's recipients (issue 13, seed 001: "an existing distribution list ... or to all
-- users: users who have the chatbot application on their Teams"): an audience, a segment,
-- or everyone with a Teams conversation reference. One source, except in a draft.
ALTER TABLE campaigns
    ADD COLUMN segment_id    uuid REFERENCES segments (id),
    ADD COLUMN all_bot_users boolean NOT NULL DEFAULT false;

-- The old rule asked every campaign but a draft for an audience; split in two so the
-- recipients and the message can each change on their own.
ALTER TABLE campaigns DROP CONSTRAINT IF EXISTS campaigns_complete_unless_draft;
-- The message: a template, or a survey (000010) whose card becomes the template when sent.
ALTER TABLE campaigns ADD CONSTRAINT campaigns_message_unless_draft
    CHECK (status = 'draft' OR template_id IS NOT NULL OR survey_id IS NOT NULL);
ALTER TABLE campaigns ADD CONSTRAINT campaigns_one_recipient_source
    CHECK (num_nonnulls(audience_id, segment_id) + all_bot_users::int
           BETWEEN CASE WHEN status = 'draft' THEN 0 ELSE 1 END AND 1);
-- "Everyone with the bot": the people a broadcast reads.
CREATE INDEX people_with_bot ON people (id) WHERE active AND teams_conversation IS NOT NULL;
