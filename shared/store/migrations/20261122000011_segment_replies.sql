-- The bot's reply after a segment button (seed 004): a text per segment for opt-in and for
-- opt-out. NULL means the default, which names the segment and says how to undo the choice
-- (pushfleet_domain::bot_reply_text).
ALTER TABLE segments
    ADD COLUMN opt_in_reply  text CHECK (opt_in_reply <> ''),
    ADD COLUMN opt_out_reply text CHECK (opt_out_reply <> '');

-- Replies owed to button presses that came as message activities (Action.Submit): written
-- with the opt-in or opt-out and its outbox row, posted by the teams-sender. Keyed by the
-- activity answered, so a press the Bot Framework delivers twice queues one reply, and a
-- redelivered job finds the reply finished (posted, or given up with the error).
CREATE TABLE bot_replies (
    activity_id         text PRIMARY KEY,
    conversation_id     text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    provider_message_id text,
    error               text
);
