-- Campaigns as admins run them (seed 001): a draft is edited freely until it is broadcast;
-- afterwards the campaign is read, cloned or removed from the list (its deliveries and
-- report are kept).
ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
-- draft -> scheduled -> evaluating -> sending (-> completed, derived), plus paused and
-- cancelled.
ALTER TABLE campaigns ADD CONSTRAINT campaigns_status_check
    CHECK (status IN ('draft', 'scheduled', 'evaluating', 'sending', 'paused', 'cancelled'));
-- A draft may lack its recipients or its message; nothing else may.
ALTER TABLE campaigns ALTER COLUMN audience_id DROP NOT NULL;
ALTER TABLE campaigns ALTER COLUMN template_id DROP NOT NULL;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_complete_unless_draft
    CHECK (status = 'draft' OR (audience_id IS NOT NULL AND template_id IS NOT NULL));

ALTER TABLE campaigns
    -- Who made it and who changed it last (an operator's or an API key's id and name).
    ADD COLUMN created_by_id   uuid,
    ADD COLUMN created_by_name text,
    ADD COLUMN updated_by_id   uuid,
    ADD COLUMN updated_by_name text,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Removed from the list; kept with its deliveries for the report and the audit.
    ADD COLUMN deleted_at      timestamptz,
    -- The template chosen; `template_id` points at a frozen copy of it once the campaign is
    -- broadcast, so a later edit of the template does not change what the campaign sends.
    ADD COLUMN source_template_id uuid REFERENCES templates (id),
    ADD COLUMN message_frozen_at  timestamptz;

-- A template's frozen copy, made for one campaign when it was broadcast: not listed, not
-- edited.
ALTER TABLE templates
    ADD COLUMN frozen_for uuid,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- The list: newest first, without the removed ones.
CREATE INDEX campaigns_listed ON campaigns (id DESC) WHERE deleted_at IS NULL;
CREATE INDEX templates_listed ON templates (id DESC) WHERE frozen_for IS NULL;
