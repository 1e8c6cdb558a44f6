-- The caller's answer to the post-call satisfaction survey (`call::survey`): a score from 1 to
-- 5 (NULL when not asked or not answered) and how it was given ('keypad' or 'voice').
ALTER TABLE calls ADD COLUMN survey_score BIGINT;
ALTER TABLE calls ADD COLUMN survey_by TEXT NOT NULL DEFAULT '';
