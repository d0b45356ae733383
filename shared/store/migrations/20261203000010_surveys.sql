-- Survey campaigns (seed 001): a survey's questions are sent to people in Teams as an
-- Adaptive Card; each person's answers come back through the bot.
CREATE TABLE surveys (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    -- The questions as checked by the api (pushfleet_domain::survey::Question).
    questions       jsonb       NOT NULL,
    -- Permission labels (seed 003), as on templates.
    labels          text[]      NOT NULL DEFAULT '{}',
    created_by_id   uuid,
    created_by_name text,
    updated_by_id   uuid,
    updated_by_name text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Set when a campaign first broadcast it: from then on its questions are fixed, so
    -- every answer is to the questions people were shown.
    first_sent_at   timestamptz
);
CREATE INDEX surveys_labels ON surveys USING gin (labels);

-- A campaign sends a template or a survey. A survey campaign's `template_id` is empty
-- until the broadcast, which sets it to the card built from the survey (a frozen copy, as
-- for templates), so that the senders send it like any other card.
ALTER TABLE campaigns ADD COLUMN survey_id uuid REFERENCES surveys (id);
ALTER TABLE campaigns DROP CONSTRAINT campaigns_complete_unless_draft;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_complete_unless_draft
    CHECK (status = 'draft'
           OR (audience_id IS NOT NULL AND (template_id IS NOT NULL OR survey_id IS NOT NULL)));
ALTER TABLE campaigns ADD CONSTRAINT campaigns_survey_alone
    CHECK (survey_id IS NULL
           OR (source_template_id IS NULL AND (template_id IS NULL OR message_frozen_at IS NOT NULL)));
-- Answers come back through the Teams bot only.
ALTER TABLE campaigns ADD CONSTRAINT campaigns_survey_on_teams
    CHECK (survey_id IS NULL OR channels = '{teams}');
CREATE INDEX campaigns_survey ON campaigns (survey_id) WHERE survey_id IS NOT NULL;

-- One answer per person per survey campaign; a second submit replaces it.
CREATE TABLE survey_answers (
    campaign_id       uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    person_id         uuid        NOT NULL REFERENCES people (id),
    survey_id         uuid        NOT NULL REFERENCES surveys (id),
    -- Question id -> the choice id, the choice ids, the rating or the text.
    answers           jsonb       NOT NULL,
    first_answered_at timestamptz NOT NULL DEFAULT now(),
    answered_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, person_id)
);
