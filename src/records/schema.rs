//! The SQLite side of the records: tables, one function per write, and the two reads.
//! Synchronous; only the writer thread and short-lived reader connections call it.

use super::{CallEnd, CallFilter, CallRecord, CallSummary, Cdr, DecisionRecord, Outcome, StateChange};
use super::TurnSummary;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    call_id        TEXT PRIMARY KEY,
    sip_call_id    TEXT NOT NULL DEFAULT '',
    caller         TEXT NOT NULL DEFAULT '',
    callee         TEXT NOT NULL DEFAULT '',
    channel        TEXT NOT NULL DEFAULT '',
    codec          TEXT NOT NULL DEFAULT '',
    started_ms     INTEGER NOT NULL,
    answered_ms    INTEGER,
    ended_ms       INTEGER,
    outcome        TEXT,             -- NULL while in progress
    reason         TEXT NOT NULL DEFAULT '',
    recording      TEXT,
    handoff_packet TEXT,
    media          TEXT,
    active_ms      INTEGER           -- the last thing known of a call in progress
);
CREATE INDEX IF NOT EXISTS calls_by_start ON calls(started_ms);
CREATE TABLE IF NOT EXISTS timeline (
    call_id TEXT NOT NULL, at_ms INTEGER NOT NULL, state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_by_call ON timeline(call_id);
CREATE TABLE IF NOT EXISTS turns (
    call_id TEXT NOT NULL, number INTEGER NOT NULL, heard TEXT NOT NULL, reply TEXT NOT NULL,
    language TEXT NOT NULL, confidence REAL NOT NULL, speech_ms INTEGER NOT NULL,
    transcript_ms INTEGER, brain_ms INTEGER, tts_ms INTEGER, first_rtp_ms INTEGER,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_call ON turns(call_id);
CREATE TABLE IF NOT EXISTS decisions (
    call_id TEXT NOT NULL, turn INTEGER NOT NULL, category TEXT NOT NULL, code TEXT NOT NULL,
    priority TEXT NOT NULL, evidence TEXT NOT NULL, at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_call ON decisions(call_id);
";

/// The writer's connection: WAL (readers never block it, and a commit is one append to the
/// log), synchronous=NORMAL in WAL still survives a process crash (only a power loss may
/// lose the last commits), schema created if missing.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "call records: WAL mode unavailable");
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
    conn.execute_batch(SCHEMA)?;
    // Databases from before `active_ms` existed get the column (SQLite has no ADD IF NOT EXISTS).
    let has_active: bool = conn.prepare("SELECT 1 FROM pragma_table_info('calls') WHERE name = 'active_ms'")?.exists([])?;
    if !has_active {
        conn.execute_batch("ALTER TABLE calls ADD COLUMN active_ms INTEGER;")?;
    }
    Ok(conn)
}

pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    Ok(conn)
}

/// Calls with no outcome when the gateway starts were in progress when it stopped. Their end
/// time is the last thing known of them (their last activity or turn), not now, and never
/// before their start.
pub fn mark_interrupted(conn: &mut Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE calls SET outcome = ?1, reason = 'gateway stopped during the call', ended_ms = MAX(
             started_ms,
             COALESCE(active_ms, 0),
             COALESCE((SELECT MAX(at_ms) FROM turns WHERE turns.call_id = calls.call_id), 0))
         WHERE outcome IS NULL",
        params![Outcome::Interrupted.as_str()],
    )
}

/// Deletes records of calls that started before `cutoff_ms`; returns how many calls.
pub fn delete_older_than(conn: &mut Connection, cutoff_ms: u64) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let old = "SELECT call_id FROM calls WHERE started_ms < ?1 AND outcome IS NOT NULL";
    for table in ["timeline", "turns", "decisions"] {
        tx.execute(&format!("DELETE FROM {table} WHERE call_id IN ({old})"), params![cutoff_ms as i64])?;
    }
    let n = tx.execute("DELETE FROM calls WHERE started_ms < ?1 AND outcome IS NOT NULL", params![cutoff_ms as i64])?;
    tx.commit()?;
    Ok(n)
}

/// Something happened on a call in progress at `at_ms`.
pub fn touch(conn: &Connection, call_id: &str, at_ms: u64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE calls SET active_ms = MAX(COALESCE(active_ms, 0), ?2) WHERE call_id = ?1 AND outcome IS NULL",
        params![call_id, at_ms as i64],
    )?;
    Ok(())
}

pub fn begin(conn: &Connection, s: &Cdr) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO calls (call_id, sip_call_id, caller, callee, channel, codec, started_ms, answered_ms, recording)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        params![s.call_id, s.sip_call_id, s.caller, s.callee, s.channel, s.codec, s.started_at_ms as i64, s.recording],
    )?;
    Ok(())
}

pub fn turn(conn: &Connection, call_id: &str, t: &TurnSummary, at_ms: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO turns (call_id, number, heard, reply, language, confidence, speech_ms, transcript_ms, brain_ms, tts_ms, first_rtp_ms, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            call_id, t.number, t.heard, t.reply, t.language, t.confidence as f64, t.speech_ms,
            t.transcript_ms.map(|v| v as i64), t.brain_ms.map(|v| v as i64), t.tts_ms.map(|v| v as i64),
            t.first_rtp_ms.map(|v| v as i64), at_ms as i64
        ],
    )?;
    Ok(())
}

pub fn decision(conn: &Connection, call_id: &str, d: &DecisionRecord) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO decisions (call_id, turn, category, code, priority, evidence, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![call_id, d.turn, d.category, d.code, d.priority, d.evidence.to_string(), d.at_ms as i64],
    )?;
    Ok(())
}

pub fn handoff(conn: &Connection, call_id: &str, packet_json: &str) -> rusqlite::Result<()> {
    conn.execute("UPDATE calls SET handoff_packet = ?2 WHERE call_id = ?1", params![call_id, packet_json])?;
    Ok(())
}

/// The final CDR and the timeline, in one transaction.
pub fn finish(conn: &mut Connection, e: &CallEnd) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE calls SET ended_ms = ?2, outcome = ?3, reason = ?4, media = ?5 WHERE call_id = ?1",
        params![e.call_id, e.ended_at_ms as i64, e.outcome.as_str(), e.reason, e.media.as_ref().map(|m| m.to_string())],
    )?;
    for s in &e.timeline {
        tx.execute("INSERT INTO timeline (call_id, at_ms, state) VALUES (?1, ?2, ?3)", params![e.call_id, s.at_ms as i64, s.state])?;
    }
    tx.commit()
}

/// A call that never got a call task (refused or cancelled while ringing).
pub fn unanswered(conn: &mut Connection, c: &Cdr) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO calls (call_id, sip_call_id, caller, callee, channel, codec, started_ms, ended_ms, outcome, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            c.call_id, c.sip_call_id, c.caller, c.callee, c.channel, c.codec, c.started_at_ms as i64,
            c.ended_at_ms.map(|v| v as i64), c.outcome.unwrap_or(Outcome::Abandoned).as_str(), c.reason
        ],
    )?;
    Ok(())
}

const CDR_COLUMNS: &str =
    "call_id, sip_call_id, caller, callee, channel, codec, started_ms, answered_ms, ended_ms, outcome, reason, recording";

fn cdr(row: &Row) -> rusqlite::Result<Cdr> {
    let outcome: Option<String> = row.get(9)?;
    Ok(Cdr {
        call_id: row.get(0)?,
        sip_call_id: row.get(1)?,
        caller: row.get(2)?,
        callee: row.get(3)?,
        channel: row.get(4)?,
        codec: row.get(5)?,
        started_at_ms: row.get::<_, i64>(6)? as u64,
        answered_at_ms: row.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        ended_at_ms: row.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        outcome: outcome.as_deref().and_then(Outcome::parse),
        reason: row.get(10)?,
        recording: row.get(11)?,
    })
}

pub fn list(conn: &Connection, f: &CallFilter) -> rusqlite::Result<Vec<CallSummary>> {
    let limit = if f.limit == 0 { 50 } else { f.limit } as i64;
    let sql = format!(
        "SELECT {CDR_COLUMNS},
            (SELECT COUNT(*) FROM turns t WHERE t.call_id = calls.call_id),
            (SELECT code FROM decisions d WHERE d.call_id = calls.call_id ORDER BY at_ms LIMIT 1)
         FROM calls
         WHERE (?1 IS NULL OR outcome = ?1)
           AND (?2 IS NULL OR channel = ?2)
           AND (?3 IS NULL OR (outcome IS NULL) = ?3)
           AND (?4 IS NULL OR started_ms >= ?4)
         ORDER BY started_ms DESC LIMIT ?5"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(
        params![f.outcome.map(|o| o.as_str()), f.channel, f.in_progress, f.since_ms.map(|v| v as i64), limit],
        |row| Ok(CallSummary { cdr: cdr(row)?, turns: row.get::<_, i64>(12)? as u32, escalation: row.get(13)? }),
    )?;
    rows.collect()
}

pub fn get(conn: &Connection, call_id: &str) -> rusqlite::Result<Option<CallRecord>> {
    let head = conn
        .query_row(&format!("SELECT {CDR_COLUMNS}, handoff_packet, media FROM calls WHERE call_id = ?1"), [call_id], |row| {
            Ok((cdr(row)?, row.get::<_, Option<String>>(12)?, row.get::<_, Option<String>>(13)?))
        })
        .optional()?;
    let Some((cdr, packet, media)) = head else { return Ok(None) };
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    let mut stmt = conn.prepare("SELECT state, at_ms FROM timeline WHERE call_id = ?1 ORDER BY at_ms, rowid")?;
    let timeline = stmt
        .query_map([call_id], |r| Ok(StateChange { state: r.get(0)?, at_ms: r.get::<_, i64>(1)? as u64 }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(
        "SELECT number, heard, reply, language, confidence, speech_ms, transcript_ms, brain_ms, tts_ms, first_rtp_ms
         FROM turns WHERE call_id = ?1 ORDER BY rowid",
    )?;
    let ms = |v: Option<i64>| v.map(|v| v as u64);
    let turns = stmt
        .query_map([call_id], |r| {
            Ok(TurnSummary {
                number: r.get(0)?,
                heard: r.get(1)?,
                reply: r.get(2)?,
                language: r.get(3)?,
                confidence: r.get::<_, f64>(4)? as f32,
                speech_ms: r.get(5)?,
                transcript_ms: ms(r.get(6)?),
                brain_ms: ms(r.get(7)?),
                tts_ms: ms(r.get(8)?),
                first_rtp_ms: ms(r.get(9)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt =
        conn.prepare("SELECT turn, category, code, priority, evidence, at_ms FROM decisions WHERE call_id = ?1 ORDER BY rowid")?;
    let decisions = stmt
        .query_map([call_id], |r| {
            Ok(DecisionRecord {
                turn: r.get(0)?,
                category: r.get(1)?,
                code: r.get(2)?,
                priority: r.get(3)?,
                evidence: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                at_ms: r.get::<_, i64>(5)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(CallRecord { cdr, timeline, turns, decisions, handoff_packet: json(packet), media: json(media) }))
}
