-- Inbound opt-in and opt-out (issue 4): an SMS keyword names its sender by phone number, a
-- Teams button by the user's id; each request looks the person up, so neither may scan the
-- directory.
CREATE INDEX people_phone ON people (phone) WHERE phone IS NOT NULL;
CREATE INDEX people_teams_user_id ON people ((teams_conversation->>'user_id'));
