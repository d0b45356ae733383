-- How Teams shows a template (seed 001): message, idea, success, important, or the admin's
-- own Adaptive Card (placeholders allowed in its string values).
ALTER TABLE templates
    ADD COLUMN teams_format text NOT NULL DEFAULT 'message'
        CHECK (teams_format IN ('message', 'idea', 'success', 'important', 'adaptive_card')),
    ADD COLUMN card jsonb;
