-- The call records as the one-box SQLite database had them; written in the SQL both SQLite and
-- PostgreSQL read (BIGINT and DOUBLE PRECISION are SQLite's INTEGER and REAL), so one
-- migration path serves both backends. Databases made before migrations existed already have
-- these tables: IF NOT EXISTS leaves them as they are.
CREATE TABLE IF NOT EXISTS calls (
    call_id        TEXT PRIMARY KEY,
    sip_call_id    TEXT NOT NULL DEFAULT '',
    caller         TEXT NOT NULL DEFAULT '',
    callee         TEXT NOT NULL DEFAULT '',
    channel        TEXT NOT NULL DEFAULT '',
    codec          TEXT NOT NULL DEFAULT '',
    started_ms     BIGINT NOT NULL,
    answered_ms    BIGINT,
    ended_ms       BIGINT,
    outcome        TEXT,
    reason         TEXT NOT NULL DEFAULT '',
    recording      TEXT,
    handoff_packet TEXT,
    media          TEXT,
    active_ms      BIGINT
);
CREATE INDEX IF NOT EXISTS calls_by_start ON calls(started_ms);
CREATE TABLE IF NOT EXISTS timeline (
    call_id TEXT NOT NULL, at_ms BIGINT NOT NULL, state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_by_call ON timeline(call_id);
CREATE TABLE IF NOT EXISTS turns (
    call_id TEXT NOT NULL, number BIGINT NOT NULL, heard TEXT NOT NULL, reply TEXT NOT NULL,
    language TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL, speech_ms BIGINT NOT NULL,
    transcript_ms BIGINT, brain_ms BIGINT, tts_ms BIGINT, first_rtp_ms BIGINT,
    at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_call ON turns(call_id);
CREATE TABLE IF NOT EXISTS decisions (
    call_id TEXT NOT NULL, turn BIGINT NOT NULL, category TEXT NOT NULL, code TEXT NOT NULL,
    priority TEXT NOT NULL, evidence TEXT NOT NULL, at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_call ON decisions(call_id);
