-- Conversation pushes (seed 000): a conversation template pushed to a fixed or dynamic
-- list of people, with a start day, a deadline, follow-up per person, and a close.

CREATE TABLE conversation_templates (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL,
    -- The questions, in order: [{"id": "...", "text": "..."}] as checked by the api.
    questions     jsonb       NOT NULL,
    -- Seed 000's "Permission to conduct": only such a template can be pushed.
    may_be_pushed boolean     NOT NULL DEFAULT false,
    conducted_by  text        NOT NULL CHECK (conducted_by IN ('team_leaders', 'coaches', 'both')),
    -- Permission labels (seed 003), as on templates.
    labels        text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_templates_labels ON conversation_templates USING gin (labels);

CREATE TABLE pushes (
    id            uuid        PRIMARY KEY,
    template_id   uuid        NOT NULL REFERENCES conversation_templates (id),
    name          text        NOT NULL,
    -- Copied from the template at creation: who conducts the conversations of this push
    -- stays what the users tab and the conductors' summaries said, whatever the template
    -- becomes later.
    conducted_by  text        NOT NULL CHECK (conducted_by IN ('team_leaders', 'coaches', 'both')),
    start_date    date        NOT NULL,
    -- A reminder to finish by then, not an end (seed 000).
    deadline      date        NOT NULL,
    method        text        NOT NULL CHECK (method IN ('fixed', 'dynamic')),
    criteria      jsonb,
    labels        text[]      NOT NULL DEFAULT '{}',
    -- scheduled until the scheduler starts it on its start day (next part), closed by hand.
    status        text        NOT NULL DEFAULT 'scheduled'
                              CHECK (status IN ('scheduled', 'started', 'closed')),
    -- Set by the start (the dynamic list frozen, the first notifications written).
    started_at    timestamptz,
    closed_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pushes_deadline_after_start CHECK (deadline >= start_date),
    CONSTRAINT pushes_criteria_for_dynamic CHECK ((method = 'dynamic') = (criteria IS NOT NULL)),
    CONSTRAINT pushes_closed_at CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX pushes_labels ON pushes USING gin (labels);
CREATE INDEX pushes_template ON pushes (template_id);
-- What the scheduler's start claims: scheduled pushes whose day has come.
CREATE INDEX pushes_due ON pushes (start_date) WHERE status = 'scheduled';

CREATE TABLE push_users (
    push_id      uuid        NOT NULL REFERENCES pushes (id) ON DELETE CASCADE,
    person_id    uuid        NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    -- list: hand-picked before the start; criteria: frozen from the criteria at the start;
    -- added: added by hand after the start (to either kind).
    source       text        NOT NULL CHECK (source IN ('list', 'criteria', 'added')),
    added_at     timestamptz NOT NULL DEFAULT now(),
    status       text        NOT NULL DEFAULT 'not_planned'
                             CHECK (status IN ('not_planned', 'planned', 'conducted')),
    planned_on   date,
    conducted_on date,
    -- When the user's e-mail and their conductors' summaries were written for this user
    -- (next part): users added after the start have it NULL until the notifier runs.
    notified_at  timestamptz,
    PRIMARY KEY (push_id, person_id),
    CONSTRAINT push_users_planned_date CHECK (status <> 'planned' OR planned_on IS NOT NULL),
    CONSTRAINT push_users_conducted_date CHECK (status <> 'conducted' OR conducted_on IS NOT NULL)
);
-- The completion counts and the users tab filtered by status.
CREATE INDEX push_users_status ON push_users (push_id, status, person_id);
-- A person's open tasks (the feed, next part).
CREATE INDEX push_users_person ON push_users (person_id);
-- The users still to notify (next part).
CREATE INDEX push_users_unnotified ON push_users (push_id) WHERE notified_at IS NULL;
