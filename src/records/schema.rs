//! The records' statements: one function per write, and the two reads. Each statement is
//! written once for both databases (`db`); the tables come from `migrations/`.

use super::db::{Cell, Db, DbError, Row};
use super::{CallEnd, CallFilter, CallRecord, CallSummary, Cdr, DecisionRecord, NodeBeat, NodeStatus, Outcome, PastCall, StateChange};
use super::{RecordedRegistration, RegistrationChange};
use super::TurnSummary;

/// Calls with no outcome when a gateway starts were in progress when it stopped. In a shared
/// database only this node's calls (and rows from before nodes were named): other gateways
/// still run theirs. A SQLite file has one gateway, whatever name it had before.
pub fn mark_interrupted(db: &mut Db, node: &str, shared: bool) -> Result<u64, DbError> {
    interrupt_where(db, if shared { "(node = ?2 OR node = '')" } else { "?2 = ?2" }, node)
}

/// Marks interrupted the calls in progress that match `which` (with `?2` bound to `node`).
/// Their end time is the last thing known of them (their last activity or turn), not now, and
/// never before their start.
fn interrupt_where(db: &mut Db, which: &str, node: &str) -> Result<u64, DbError> {
    let last_known = db.greatest(&[
        "started_ms",
        "COALESCE(active_ms, 0)",
        "COALESCE((SELECT MAX(at_ms) FROM turns WHERE turns.call_id = calls.call_id), 0)",
    ]);
    db.execute(
        &format!(
            "UPDATE calls SET outcome = ?1, reason = 'gateway stopped during the call', ended_ms = {last_known}
             WHERE outcome IS NULL AND {which}"
        ),
        &[Outcome::Interrupted.as_str().into(), node.into()],
    )
}

/// A call event for the nodes LISTENing (PostgreSQL only: `relay`).
pub fn notify(db: &mut Db, payload: &str) -> Result<(), DbError> {
    // execute, not query: pg_notify returns void, which no column type reads.
    db.execute(&format!("SELECT pg_notify('{}', ?1)", super::relay::CHANNEL), &[payload.into()])?;
    Ok(())
}

/// This node's row in `nodes`, as of `at_ms`.
pub fn heartbeat(db: &mut Db, node: &str, beat: &NodeBeat, at_ms: u64) -> Result<(), DbError> {
    let agent_load: std::collections::HashMap<&str, u32> = beat.agent_load.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    let agent_load = serde_json::to_string(&agent_load).unwrap_or_else(|_| "{}".into());
    db.execute(
        "INSERT INTO nodes (node, ops_url, started_ms, seen_ms, draining, active_calls, agent_load) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (node) DO UPDATE SET ops_url = excluded.ops_url, started_ms = excluded.started_ms, seen_ms = excluded.seen_ms,
             draining = excluded.draining, active_calls = excluded.active_calls, agent_load = excluded.agent_load",
        &[
            node.into(),
            (&beat.ops_url).into(),
            beat.started_ms.into(),
            at_ms.into(),
            u64::from(beat.draining).into(),
            beat.active_calls.into(),
            (&agent_load).into(),
        ],
    )?;
    Ok(())
}

/// Other nodes silent since before `silent_since` (killed, powered off, cut off) cannot end
/// their calls: those are marked interrupted here, and each such node's count is returned.
pub fn close_calls_of_silent_nodes(db: &mut Db, me: &str, silent_since: u64) -> Result<Vec<(String, u64)>, DbError> {
    let silent = db.query(
        "SELECT node FROM nodes WHERE node <> ?1 AND seen_ms < ?2
           AND EXISTS (SELECT 1 FROM calls WHERE calls.node = nodes.node AND calls.outcome IS NULL)",
        &[me.into(), silent_since.into()],
    )?;
    let mut closed = Vec::new();
    for row in silent {
        let node = text(&row[0]);
        let n = interrupt_where(db, "node = ?2", &node)?;
        closed.push((node, n));
    }
    Ok(closed)
}

pub fn nodes(db: &mut Db, up_since: u64) -> Result<Vec<NodeStatus>, DbError> {
    let rows = db.query("SELECT node, ops_url, started_ms, seen_ms, draining, active_calls, agent_load FROM nodes ORDER BY node", &[])?;
    Ok(rows
        .iter()
        .map(|r| {
            let seen_ms = ms(&r[3]).unwrap_or(0);
            NodeStatus {
                node: text(&r[0]),
                ops_url: text(&r[1]),
                started_ms: ms(&r[2]).unwrap_or(0),
                seen_ms,
                draining: r[4].int().unwrap_or(0) != 0,
                active_calls: r[5].int().unwrap_or(0) as u32,
                up: seen_ms >= up_since,
                agent_load: serde_json::from_str(&text(&r[6])).unwrap_or_default(),
            }
        })
        .collect())
}

/// An agent's phone registered through this node, or left. Leaving ends the binding where it
/// is (a row kept with expires_ms = registered_ms = when), and only if it is that phone: a
/// phone that already moved elsewhere stays bound.
pub fn registration(db: &mut Db, node: &str, change: &RegistrationChange) -> Result<(), DbError> {
    match change {
        RegistrationChange::Bound { agent, contact, at_ms, expires_ms } => db.execute(
            "INSERT INTO registrations (agent, contact, registered_ms, expires_ms, node) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (agent) DO UPDATE SET contact = excluded.contact, registered_ms = excluded.registered_ms,
                 expires_ms = excluded.expires_ms, node = excluded.node",
            &[agent.into(), contact.into(), (*at_ms).into(), (*expires_ms).into(), node.into()],
        )?,
        RegistrationChange::Ended { agent, contact, at_ms } => db.execute(
            "UPDATE registrations SET registered_ms = ?3, expires_ms = ?3, node = ?4 WHERE agent = ?1 AND (?2 = '' OR contact = ?2)",
            &[agent.into(), contact.as_deref().unwrap_or("").into(), (*at_ms).into(), node.into()],
        )?,
    };
    Ok(())
}

pub fn registration_of(db: &mut Db, agent: &str) -> Result<Option<RecordedRegistration>, DbError> {
    let rows = db.query("SELECT contact, registered_ms, expires_ms, node FROM registrations WHERE agent = ?1", &[agent.into()])?;
    Ok(rows.first().map(|r| RecordedRegistration {
        contact: text(&r[0]),
        at_ms: ms(&r[1]).unwrap_or(0),
        expires_ms: ms(&r[2]).unwrap_or(0),
        node: text(&r[3]),
    }))
}

/// Deletes records of calls that started before `cutoff_ms`; returns how many calls.
pub fn delete_older_than(db: &mut Db, cutoff_ms: u64) -> Result<u64, DbError> {
    db.transaction(|db| {
        let old = "SELECT call_id FROM calls WHERE started_ms < ?1 AND outcome IS NOT NULL";
        for table in ["timeline", "turns", "decisions"] {
            db.execute(&format!("DELETE FROM {table} WHERE call_id IN ({old})"), &[cutoff_ms.into()])?;
        }
        db.execute("DELETE FROM calls WHERE started_ms < ?1 AND outcome IS NOT NULL", &[cutoff_ms.into()])
    })
}

/// Something happened on a call in progress at `at_ms`.
pub fn touch(db: &mut Db, call_id: &str, at_ms: u64) -> Result<(), DbError> {
    let later = db.greatest(&["COALESCE(active_ms, 0)", "?2"]);
    db.execute(&format!("UPDATE calls SET active_ms = {later} WHERE call_id = ?1 AND outcome IS NULL"), &[call_id.into(), at_ms.into()])?;
    Ok(())
}

/// The columns a CDR row is written with; a second write of the same call (a retried begin,
/// an unanswered call first seen ringing) replaces the first.
const UPSERT: &str = "INSERT INTO calls (call_id, sip_call_id, caller, callee, channel, codec, started_ms, answered_ms, ended_ms, outcome, reason, recording, node, customer_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
     ON CONFLICT (call_id) DO UPDATE SET sip_call_id = excluded.sip_call_id, caller = excluded.caller, callee = excluded.callee,
         channel = excluded.channel, codec = excluded.codec, started_ms = excluded.started_ms, answered_ms = excluded.answered_ms,
         ended_ms = excluded.ended_ms, outcome = excluded.outcome, reason = excluded.reason, recording = excluded.recording, node = excluded.node,
         customer_id = excluded.customer_id";

fn upsert(db: &mut Db, node: &str, c: &Cdr, answered_ms: Option<u64>, ended_ms: Option<u64>, outcome: Option<Outcome>) -> Result<(), DbError> {
    db.execute(
        UPSERT,
        &[
            (&c.call_id).into(),
            (&c.sip_call_id).into(),
            (&c.caller).into(),
            (&c.callee).into(),
            (&c.channel).into(),
            (&c.codec).into(),
            c.started_at_ms.into(),
            answered_ms.into(),
            ended_ms.into(),
            outcome.map(Outcome::as_str).into(),
            (&c.reason).into(),
            c.recording.as_deref().into(),
            node.into(),
            (&c.customer_id).into(),
        ],
    )?;
    Ok(())
}

/// The call's row, in progress (answered as it starts).
pub fn begin(db: &mut Db, node: &str, c: &Cdr) -> Result<(), DbError> {
    upsert(db, node, c, Some(c.started_at_ms), None, None)
}

/// A call that never got a call task (refused or cancelled while ringing): one complete row.
pub fn unanswered(db: &mut Db, node: &str, c: &Cdr) -> Result<(), DbError> {
    upsert(db, node, c, None, c.ended_at_ms, Some(c.outcome.unwrap_or(Outcome::Abandoned)))
}

pub fn turn(db: &mut Db, call_id: &str, t: &TurnSummary, at_ms: u64) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO turns (call_id, number, heard, reply, language, confidence, speech_ms, transcript_ms, brain_ms, tts_ms, first_rtp_ms, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        &[
            call_id.into(),
            t.number.into(),
            (&t.heard).into(),
            (&t.reply).into(),
            (&t.language).into(),
            t.confidence.into(),
            t.speech_ms.into(),
            t.transcript_ms.into(),
            t.brain_ms.into(),
            t.tts_ms.into(),
            t.first_rtp_ms.into(),
            at_ms.into(),
        ],
    )?;
    Ok(())
}

pub fn decision(db: &mut Db, call_id: &str, d: &DecisionRecord) -> Result<(), DbError> {
    let evidence = d.evidence.to_string();
    db.execute(
        "INSERT INTO decisions (call_id, turn, category, code, priority, evidence, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[call_id.into(), d.turn.into(), (&d.category).into(), (&d.code).into(), (&d.priority).into(), (&evidence).into(), d.at_ms.into()],
    )?;
    Ok(())
}

pub fn handoff(db: &mut Db, call_id: &str, packet_json: &str) -> Result<(), DbError> {
    db.execute("UPDATE calls SET handoff_packet = ?2 WHERE call_id = ?1", &[call_id.into(), packet_json.into()])?;
    Ok(())
}

/// The final CDR and the timeline, in one transaction.
pub fn finish(db: &mut Db, e: &CallEnd) -> Result<(), DbError> {
    let media = e.media.as_ref().map(|m| m.to_string());
    let intents = e.intents.join(" ");
    let survey_score = e.survey.map(|r| u64::from(r.score));
    let survey_by = e.survey.map_or("", |r| r.by.as_str());
    db.transaction(|db| {
        db.execute(
            "UPDATE calls SET ended_ms = ?2, outcome = ?3, reason = ?4, media = ?5, intents = ?6, summary = ?7,
                 survey_score = ?8, survey_by = ?9 WHERE call_id = ?1",
            &[
                (&e.call_id).into(),
                e.ended_at_ms.into(),
                e.outcome.as_str().into(),
                (&e.reason).into(),
                media.as_deref().into(),
                (&intents).into(),
                (&e.summary).into(),
                survey_score.into(),
                survey_by.into(),
            ],
        )?;
        // A finish retried after a lost connection must not leave the timeline twice.
        db.execute("DELETE FROM timeline WHERE call_id = ?1", &[(&e.call_id).into()])?;
        for (position, s) in e.timeline.iter().enumerate() {
            db.execute(
                "INSERT INTO timeline (call_id, at_ms, state, position) VALUES (?1, ?2, ?3, ?4)",
                &[(&e.call_id).into(), s.at_ms.into(), (&s.state).into(), (position as u64).into()],
            )?;
        }
        Ok(())
    })
}

/// Whose calls: a caller's CRM id, or their number.
pub enum Who<'a> {
    Customer(&'a str),
    Number(&'a str),
}

/// A caller's finished calls since `since_ms`, newest first.
pub fn history(db: &mut Db, who: Who<'_>, since_ms: u64, limit: usize) -> Result<Vec<PastCall>, DbError> {
    let (column, value) = match who {
        Who::Customer(id) => ("customer_id", id),
        Who::Number(number) => ("caller", number),
    };
    let rows = db.query(
        &format!(
            "SELECT call_id, started_ms, outcome, intents, summary,
                (SELECT code FROM decisions d WHERE d.call_id = calls.call_id ORDER BY at_ms LIMIT 1)
             FROM calls
             WHERE {column} = ?1 AND started_ms >= ?2 AND outcome IS NOT NULL
             ORDER BY started_ms DESC LIMIT ?3"
        ),
        &[value.into(), since_ms.into(), (limit as u64).into()],
    )?;
    Ok(rows
        .iter()
        .map(|row| PastCall {
            call_id: text(&row[0]),
            started_at_ms: ms(&row[1]).unwrap_or(0),
            outcome: text(&row[2]),
            intents: text(&row[3]).split_whitespace().map(str::to_string).collect(),
            summary: text(&row[4]),
            escalation: row[5].text(),
        })
        .collect())
}

/// The calls started in [`since_ms`, `until_ms`), their caller turns and triage decisions,
/// for `frontline report`.
pub fn report_data(db: &mut Db, since_ms: u64, until_ms: u64) -> Result<super::report::ReportData, DbError> {
    use super::report::{ReportCall, ReportDecision, ReportTurn};
    let range = [since_ms.into(), until_ms.into()];
    let calls = db
        .query(
            "SELECT call_id, started_ms, outcome, intents, survey_score,
                (SELECT code FROM decisions d WHERE d.call_id = calls.call_id ORDER BY at_ms LIMIT 1)
             FROM calls WHERE started_ms >= ?1 AND started_ms < ?2 ORDER BY started_ms",
            &range,
        )?
        .iter()
        .map(|row| ReportCall {
            call_id: text(&row[0]),
            started_ms: ms(&row[1]).unwrap_or(0),
            outcome: row[2].text().as_deref().and_then(Outcome::parse),
            intents: text(&row[3]).split_whitespace().map(str::to_string).collect(),
            survey: row[4].int().and_then(|s| u8::try_from(s).ok()).filter(|s| (1..=5).contains(s)),
            handoff_reason: row[5].text(),
        })
        .collect();
    let turns = db
        .query(
            "SELECT t.call_id, t.number, t.heard, t.reply, t.language, t.confidence FROM turns t
             JOIN calls c ON c.call_id = t.call_id WHERE c.started_ms >= ?1 AND c.started_ms < ?2 ORDER BY t.at_ms, t.number",
            &range,
        )?
        .iter()
        .map(|row| ReportTurn {
            call_id: text(&row[0]),
            number: row[1].int().unwrap_or(0) as u32,
            heard: text(&row[2]),
            reply: text(&row[3]),
            language: text(&row[4]),
            confidence: row[5].real() as f32,
        })
        .collect();
    let decisions = db
        .query(
            "SELECT d.call_id, d.turn, d.code FROM decisions d
             JOIN calls c ON c.call_id = d.call_id WHERE c.started_ms >= ?1 AND c.started_ms < ?2",
            &range,
        )?
        .iter()
        .map(|row| ReportDecision { call_id: text(&row[0]), turn: row[1].int().unwrap_or(0) as u32, code: text(&row[2]) })
        .collect();
    Ok(super::report::ReportData { calls, turns, decisions })
}

const CDR_COLUMNS: &str =
    "call_id, sip_call_id, caller, callee, channel, codec, started_ms, answered_ms, ended_ms, outcome, reason, recording, node, customer_id";
/// How many columns `cdr` reads.
const CDR_WIDTH: usize = 14;

fn text(c: &Cell) -> String {
    c.text().unwrap_or_default()
}

fn ms(c: &Cell) -> Option<u64> {
    c.int().map(|v| v as u64)
}

fn cdr(row: &Row) -> Cdr {
    Cdr {
        call_id: text(&row[0]),
        sip_call_id: text(&row[1]),
        caller: text(&row[2]),
        callee: text(&row[3]),
        channel: text(&row[4]),
        codec: text(&row[5]),
        started_at_ms: ms(&row[6]).unwrap_or(0),
        answered_at_ms: ms(&row[7]),
        ended_at_ms: ms(&row[8]),
        outcome: row[9].text().as_deref().and_then(Outcome::parse),
        reason: text(&row[10]),
        recording: row[11].text(),
        node: text(&row[12]),
        customer_id: text(&row[13]),
    }
}

pub fn list(db: &mut Db, f: &CallFilter) -> Result<Vec<CallSummary>, DbError> {
    let limit = if f.limit == 0 { 50 } else { f.limit } as u64;
    // The CASTs give PostgreSQL the type of a parameter that is only compared with NULL.
    let sql = format!(
        "SELECT {CDR_COLUMNS},
            (SELECT COUNT(*) FROM turns t WHERE t.call_id = calls.call_id),
            (SELECT code FROM decisions d WHERE d.call_id = calls.call_id ORDER BY at_ms LIMIT 1)
         FROM calls
         WHERE (CAST(?1 AS TEXT) IS NULL OR outcome = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR channel = ?2)
           AND (CAST(?3 AS BOOLEAN) IS NULL OR (outcome IS NULL) = ?3)
           AND (CAST(?4 AS BIGINT) IS NULL OR started_ms >= ?4)
           AND (CAST(?6 AS TEXT) IS NULL OR node <> ?6)
           AND (CAST(?7 AS TEXT) IS NULL OR node = ?7)
         ORDER BY started_ms DESC LIMIT ?5"
    );
    let rows = db.query(
        &sql,
        &[
            f.outcome.map(Outcome::as_str).into(),
            f.channel.as_deref().into(),
            f.in_progress.into(),
            f.since_ms.into(),
            limit.into(),
            f.not_node.as_deref().into(),
            f.node.as_deref().into(),
        ],
    )?;
    Ok(rows
        .iter()
        .map(|row| CallSummary { cdr: cdr(row), turns: row[CDR_WIDTH].int().unwrap_or(0) as u32, escalation: row[CDR_WIDTH + 1].text() })
        .collect())
}

pub fn get(db: &mut Db, call_id: &str) -> Result<Option<CallRecord>, DbError> {
    let head = db.query(
        &format!("SELECT {CDR_COLUMNS}, handoff_packet, media, intents, summary, survey_score, survey_by FROM calls WHERE call_id = ?1"),
        &[call_id.into()],
    )?;
    let Some(head) = head.first() else { return Ok(None) };
    let json = |c: &Cell| c.text().and_then(|s| serde_json::from_str(&s).ok());
    let timeline = db
        .query("SELECT state, at_ms FROM timeline WHERE call_id = ?1 ORDER BY position, at_ms", &[call_id.into()])?
        .iter()
        .map(|r| StateChange { state: text(&r[0]), at_ms: ms(&r[1]).unwrap_or(0) })
        .collect();
    let turns = db
        .query(
            "SELECT number, heard, reply, language, confidence, speech_ms, transcript_ms, brain_ms, tts_ms, first_rtp_ms
             FROM turns WHERE call_id = ?1 ORDER BY at_ms, number",
            &[call_id.into()],
        )?
        .iter()
        .map(|r| TurnSummary {
            number: r[0].int().unwrap_or(0) as u32,
            heard: text(&r[1]),
            reply: text(&r[2]),
            language: text(&r[3]),
            confidence: r[4].real() as f32,
            speech_ms: r[5].int().unwrap_or(0) as u32,
            transcript_ms: ms(&r[6]),
            brain_ms: ms(&r[7]),
            tts_ms: ms(&r[8]),
            first_rtp_ms: ms(&r[9]),
        })
        .collect();
    let decisions = db
        .query("SELECT turn, category, code, priority, evidence, at_ms FROM decisions WHERE call_id = ?1 ORDER BY at_ms, turn", &[call_id.into()])?
        .iter()
        .map(|r| DecisionRecord {
            turn: r[0].int().unwrap_or(0) as u32,
            category: text(&r[1]),
            code: text(&r[2]),
            priority: text(&r[3]),
            evidence: serde_json::from_str(&text(&r[4])).unwrap_or_default(),
            at_ms: ms(&r[5]).unwrap_or(0),
        })
        .collect();
    Ok(Some(CallRecord {
        cdr: cdr(head),
        timeline,
        turns,
        decisions,
        handoff_packet: json(&head[CDR_WIDTH]),
        media: json(&head[CDR_WIDTH + 1]),
        intents: text(&head[CDR_WIDTH + 2]).split_whitespace().map(str::to_string).collect(),
        summary: text(&head[CDR_WIDTH + 3]),
        survey: survey(&head[CDR_WIDTH + 4], &head[CDR_WIDTH + 5]),
    }))
}

/// A stored survey answer: a score from 1 to 5 and how it was given.
fn survey(score: &Cell, by: &Cell) -> Option<crate::call::survey::Rating> {
    use crate::call::survey::{AnsweredBy, Rating};
    let score = u8::try_from(score.int()?).ok().filter(|s| (1..=5).contains(s))?;
    let by = if text(by) == "voice" { AnsweredBy::Voice } else { AnsweredBy::Keypad };
    Some(Rating { score, by })
}
