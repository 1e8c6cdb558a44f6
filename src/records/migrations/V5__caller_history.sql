-- What each call was about, for the same caller's next call: the playbook intents it touched
-- (space-separated, first first) and one line of what the caller said (masked like the turns).
ALTER TABLE calls ADD COLUMN intents TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN summary TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS calls_by_caller ON calls(caller, started_ms);
