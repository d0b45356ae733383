-- Audiences (issue 4, seeds 000, 003 and 004): the people directory with the properties
-- criteria filter on, dynamic audiences and their frozen snapshots, segments with CSV uploads,
-- and opt-outs per channel.

-- The directory. Text properties are matched case-insensitively (lower() indexes below);
-- teams and roles are identifiers picked from a list and match exactly.
ALTER TABLE people
    ADD COLUMN external_id    text,
    ADD COLUMN department     text,
    ADD COLUMN teams          text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN job_title      text,
    ADD COLUMN roles          text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN joining_date   date,
    ADD COLUMN location       text,
    ADD COLUMN language       text,
    -- Custom attributes: a flat object of strings ({"cost_center": "CC-12"}).
    ADD COLUMN attributes     jsonb       NOT NULL DEFAULT '{}'
                              CHECK (jsonb_typeof(attributes) = 'object'),
    ADD COLUMN manager_id     uuid        REFERENCES people (id) ON DELETE SET NULL,
    ADD COLUMN hr_partner_id  uuid        REFERENCES people (id) ON DELETE SET NULL,
    -- Deactivated people keep their rows (and so their delivery history) but leave every
    -- audience and segment evaluation.
    ADD COLUMN active         boolean     NOT NULL DEFAULT true,
    ADD COLUMN deactivated_at timestamptz;
CREATE UNIQUE INDEX people_external_id_key ON people (external_id);
CREATE INDEX people_manager ON people (manager_id) WHERE manager_id IS NOT NULL;
CREATE INDEX people_department ON people (lower(department));
CREATE INDEX people_joining_date ON people (joining_date);
CREATE INDEX people_teams ON people USING gin (teams);
CREATE INDEX people_roles ON people USING gin (roles);

-- A person may have several team leaders and coaches (seed 000: all of them get the summary).
CREATE TABLE person_relations (
    person_id  uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('team_leader', 'coach')),
    related_id uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    PRIMARY KEY (person_id, kind, related_id)
);
CREATE INDEX person_relations_related ON person_relations (related_id, kind);

-- Audiences are a fixed list (audience_members) or criteria evaluated when asked.
ALTER TABLE audiences
    ADD COLUMN kind     text NOT NULL DEFAULT 'fixed' CHECK (kind IN ('fixed', 'dynamic')),
    ADD COLUMN criteria jsonb,
    ADD CONSTRAINT audiences_criteria_for_dynamic CHECK ((kind = 'dynamic') = (criteria IS NOT NULL));

-- An audience evaluated and frozen at one moment. A campaign freezes its audience when it
-- is evaluated (its start), so later directory changes do not change who got it, and a
-- re-evaluation after a crash sees the same people.
CREATE TABLE audience_snapshots (
    id           uuid PRIMARY KEY,
    audience_id  uuid        NOT NULL REFERENCES audiences (id) ON DELETE CASCADE,
    criteria     jsonb,
    member_count bigint      NOT NULL,
    taken_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audience_snapshots_audience ON audience_snapshots (audience_id, taken_at);
CREATE TABLE audience_snapshot_members (
    snapshot_id uuid NOT NULL REFERENCES audience_snapshots (id) ON DELETE CASCADE,
    person_id   uuid NOT NULL REFERENCES people (id),
    PRIMARY KEY (snapshot_id, person_id)
);
ALTER TABLE campaigns ADD COLUMN snapshot_id uuid REFERENCES audience_snapshots (id);

-- Segments (seed 004): named sets people are put in by upload or paste, or join and leave
-- themselves (opt-in and opt-out buttons, keywords).
CREATE TABLE segments (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE segment_members (
    segment_id uuid        NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    person_id  uuid        NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    source     text        NOT NULL CHECK (source IN ('paste', 'upload', 'opt_in', 'api')),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment_id, person_id)
);
CREATE INDEX segment_members_person ON segment_members (person_id);
-- Who left a segment on their own: an admin's upload must not put them back.
CREATE TABLE segment_opt_outs (
    segment_id   uuid        NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    person_id    uuid        NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    source       text        NOT NULL,
    opted_out_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment_id, person_id)
);

-- A CSV upload is stored, then processed by a worker (not the HTTP request).
CREATE TABLE segment_uploads (
    id          uuid PRIMARY KEY,
    segment_id  uuid        NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    filename    text,
    -- Dropped once processed: the members and the error rows are the record.
    content     bytea,
    status      text        NOT NULL DEFAULT 'processing'
                            CHECK (status IN ('processing', 'completed', 'completed_with_errors', 'failed')),
    total       integer     NOT NULL DEFAULT 0,
    added       integer     NOT NULL DEFAULT 0,
    failed      integer     NOT NULL DEFAULT 0,
    warnings    text[]      NOT NULL DEFAULT '{}',
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX segment_uploads_segment ON segment_uploads (segment_id, created_at);
CREATE TABLE segment_upload_errors (
    upload_id  uuid    NOT NULL REFERENCES segment_uploads (id) ON DELETE CASCADE,
    row_number integer NOT NULL,
    value      text    NOT NULL,
    reason     text    NOT NULL CHECK (reason IN ('unknown_person', 'invalid_email', 'duplicate_row',
                                                  'opted_out', 'deactivated', 'empty_row')),
    PRIMARY KEY (upload_id, row_number)
);

-- Unsubscribed from a channel (e-mail link, SMS STOP, Teams button): every later send on
-- that channel skips the person until they opt in again.
CREATE TABLE channel_opt_outs (
    person_id    uuid        NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    channel      text        NOT NULL CHECK (channel IN ('email', 'teams', 'sms')),
    source       text        NOT NULL,
    opted_out_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, channel)
);

-- A delivery not sent on purpose (the person opted out, or was deactivated) is `skipped`:
-- final, and not an error.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'retrying', 'sent', 'failed', 'dead', 'skipped'));
