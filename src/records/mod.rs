//! API: `RecordStore::open(&RecordsConfig, RedactionConfig)` → Clone handle; writes `begin(Cdr)/turn/decision/handoff/unanswered(Cdr)` (queued) and `finish(CallEnd).await` (committed); reads `list(&CallFilter) -> Vec<CallSummary>` and `get(call_id) -> Option<CallRecord>`.
//!
//! Every call leaves a durable record in SQLite (WAL mode): the CDR (who, when, channel,
//! codec, outcome and why), the state timeline, the transcript turns with per-stage latency,
//! triage's decisions with their evidence, and the handoff packet.
//!
//! Writes never run on the async runtime: one writer thread owns the connection and takes
//! writes from an unbounded channel, so a slow or full disk can delay a record, never a call.
//! The call's end waits (bounded) for the final CDR's commit, so a call reported as ended is on
//! disk. A call still `in-progress` when the gateway starts was cut off by a crash: it is
//! marked `interrupted`. Transcript words are masked (`crate::redact`) before they are stored.

pub mod cli;
mod schema;
pub mod recording;
mod text;
mod writer;

pub use text::{render_list, render_record};

use crate::redact::RedactionConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a call's end waits for its CDR to commit before it goes on without (the write
/// still happens; a failed one raises `frontline_records_write_errors_total`).
const FINISH_WAIT: Duration = Duration::from_secs(2);

/// One turn as the record and the Ops API show it: words and per-stage latency.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TurnSummary {
    pub number: u32,
    pub heard: String,
    pub reply: String,
    pub language: String,
    pub confidence: f32,
    pub speech_ms: u32,
    pub transcript_ms: Option<u64>,
    pub brain_ms: Option<u64>,
    pub tts_ms: Option<u64>,
    pub first_rtp_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// The SQLite database (created with its folder). WAL mode: readers (`frontline calls`,
    /// the Ops API) never block the writer.
    pub path: PathBuf,
    /// Records older than this many days are deleted at start-up and daily; 0 keeps them all.
    pub retention_days: u32,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig { path: PathBuf::from("var/records.db"), retention_days: 90 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    // `error` is not a `source`: the message already carries it, so anyhow's chain does not repeat it.
    #[error("call records {path}: {error} (check that the folder exists and is writable and the disk has room, or set records.path in the config)")]
    Open { path: PathBuf, error: rusqlite::Error },
    #[error("call records: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("call records: the writer thread is gone")]
    WriterGone,
    #[error("call records: the write did not commit within {0:?}")]
    Slow(Duration),
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The AI handled the call to its end.
    Contained,
    /// Handed to a person (or the handoff fallback ran).
    Escalated,
    /// The caller hung up before saying anything, or before the call was answered.
    Abandoned,
    /// The gateway could not serve the call (brain lost, no media, refused at admission).
    Failed,
    /// The gateway stopped (crash, kill) while the call was in progress.
    Interrupted,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [Outcome::Contained, Outcome::Escalated, Outcome::Abandoned, Outcome::Failed, Outcome::Interrupted];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Contained => "contained",
            Outcome::Escalated => "escalated",
            Outcome::Abandoned => "abandoned",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The call detail record: one row per call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cdr {
    pub call_id: String,
    pub sip_call_id: String,
    pub caller: String,
    pub callee: String,
    pub channel: String,
    pub codec: String,
    pub started_at_ms: u64,
    /// None for a call refused or abandoned before it was answered.
    pub answered_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    /// None while the call is in progress.
    pub outcome: Option<Outcome>,
    pub reason: String,
    /// The call's WAV, when recording is on.
    pub recording: Option<String>,
}

/// One line of `ListCalls` / `frontline calls list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    #[serde(flatten)]
    pub cdr: Cdr,
    pub turns: u32,
    /// The escalation reason code, when the call was handed over.
    pub escalation: Option<String>,
}

/// A state the call entered, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    pub state: String,
    pub at_ms: u64,
}

/// A triage decision and what it rested on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    pub turn: u32,
    pub category: String,
    pub code: String,
    pub priority: String,
    /// `crate::triage::Evidence` items: trigger, turn, text.
    pub evidence: serde_json::Value,
    pub at_ms: u64,
}

impl DecisionRecord {
    pub fn of(esc: &crate::triage::Escalation, at_ms: u64) -> DecisionRecord {
        DecisionRecord {
            turn: esc.turn,
            category: esc.category.as_str().to_string(),
            code: esc.code.clone(),
            priority: esc.priority.as_str().to_string(),
            evidence: serde_json::to_value(&esc.evidence).unwrap_or_default(),
            at_ms,
        }
    }
}

/// Everything stored about one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub cdr: Cdr,
    pub timeline: Vec<StateChange>,
    pub turns: Vec<TurnSummary>,
    pub decisions: Vec<DecisionRecord>,
    /// `crate::handoff::HandoffPacket` as JSON, when the call was escalated.
    pub handoff_packet: Option<serde_json::Value>,
    /// RTP counters at the end of the call (`crate::media::session::MediaStats`).
    pub media: Option<serde_json::Value>,
}

/// Which records `list` returns; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// 0: the default of 50.
    pub limit: usize,
    pub outcome: Option<Outcome>,
    pub channel: Option<String>,
    /// Only calls still in progress (true) or finished (false).
    pub in_progress: Option<bool>,
    /// Only calls started at or after this time (Unix ms).
    pub since_ms: Option<u64>,
}

/// What is known when a call ends.
#[derive(Debug, Clone)]
pub struct CallEnd {
    pub call_id: String,
    pub ended_at_ms: u64,
    pub outcome: Outcome,
    pub reason: String,
    /// The whole state timeline (the live registry keeps it; written once, at the end).
    pub timeline: Vec<StateChange>,
    pub media: Option<serde_json::Value>,
}

/// Handle on the call records; cheap to clone, shared by every call and the Ops API.
#[derive(Clone)]
pub struct RecordStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: writer::WriterHandle,
    redaction: RedactionConfig,
    write_errors: Arc<AtomicU64>,
}

impl RecordStore {
    /// Opens (creating) the database, marks calls a crash cut off as interrupted, applies the
    /// retention, and starts the writer thread. Fails with the file and the fix when the path is
    /// unwritable or the disk is full.
    pub fn open(config: &RecordsConfig, redaction: RedactionConfig) -> Result<RecordStore, RecordError> {
        let path = config.path.clone();
        let open_err = |error| RecordError::Open { path: path.clone(), error };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = std::fs::create_dir_all(dir) {
                return Err(open_err(rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into())));
            }
        }
        let mut conn = schema::open_writer(&path).map_err(open_err)?;
        let interrupted = schema::mark_interrupted(&mut conn).map_err(open_err)?;
        if interrupted > 0 {
            tracing::warn!(path = %path.display(), calls = interrupted, "calls cut off by the last stop marked interrupted");
        }
        let write_errors = Arc::new(AtomicU64::new(0));
        let writer = writer::spawn(conn, config.retention_days, write_errors.clone());
        Ok(RecordStore { inner: Arc::new(Inner { path, writer, redaction, write_errors }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes that failed since start-up (full disk, I/O error): the alert behind
    /// `frontline_records_write_errors_total`.
    pub fn write_errors(&self) -> u64 {
        self.inner.write_errors.load(Ordering::Relaxed)
    }

    fn mask(&self, text: &str) -> String {
        crate::redact::redact(text, &self.inner.redaction).into_owned()
    }

    /// The call's row, in progress: who, when, channel, codec, recording (outcome unset).
    pub fn begin(&self, start: Cdr) {
        self.inner.writer.send(writer::Write::Begin(start), None);
    }

    /// A turn whose reply went out (or that was cut short).
    pub fn turn(&self, call_id: &str, turn: &TurnSummary) {
        let mut turn = turn.clone();
        turn.heard = self.mask(&turn.heard);
        turn.reply = self.mask(&turn.reply);
        let at_ms = crate::clock::now_ms();
        self.inner.writer.send(writer::Write::Turn { call_id: call_id.to_string(), turn, at_ms }, None);
    }

    /// The call in progress was alive at `at_ms`: after a crash its duration ends there.
    pub fn touch(&self, call_id: &str, at_ms: u64) {
        self.inner.writer.send(writer::Write::Touch { call_id: call_id.to_string(), at_ms }, None);
    }

    pub fn decision(&self, call_id: &str, decision: DecisionRecord) {
        self.inner.writer.send(writer::Write::Decision { call_id: call_id.to_string(), decision }, None);
    }

    /// Stores the handoff packet, masked like the turns; returns the JSON stored.
    pub fn handoff(&self, call_id: &str, packet: &crate::handoff::HandoffPacket) -> String {
        let packet_json = packet.masked(&self.inner.redaction).to_json();
        self.inner.writer.send(writer::Write::Handoff { call_id: call_id.to_string(), packet_json: packet_json.clone() }, None);
        packet_json
    }

    /// The final CDR; returns once it is committed (or failed, or took longer than
    /// [`FINISH_WAIT`]: the call must end either way).
    pub async fn finish(&self, end: CallEnd) -> Result<(), RecordError> {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.inner.writer.send(writer::Write::Finish(end), Some(ack));
        match tokio::time::timeout(FINISH_WAIT, done).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RecordError::WriterGone),
            Err(_) => Err(RecordError::Slow(FINISH_WAIT)),
        }
    }

    /// A call refused or abandoned before it was answered: one complete row (outcome set).
    pub fn unanswered(&self, cdr: Cdr) {
        self.inner.writer.send(writer::Write::Unanswered(cdr), None);
    }

    /// Waits until every write queued before this call is committed (tests, shutdown).
    pub fn sync(&self) -> Result<(), RecordError> {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.inner.writer.send(writer::Write::Barrier, Some(ack));
        done.blocking_recv().map_err(|_| RecordError::WriterGone)?
    }

    /// Newest first. Reads open their own connection: WAL lets them run beside the writer.
    pub fn list(&self, filter: &CallFilter) -> Result<Vec<CallSummary>, RecordError> {
        let conn = schema::open_reader(&self.inner.path)?;
        Ok(schema::list(&conn, filter)?)
    }

    pub fn get(&self, call_id: &str) -> Result<Option<CallRecord>, RecordError> {
        let conn = schema::open_reader(&self.inner.path)?;
        Ok(schema::get(&conn, call_id)?)
    }
}

/// Reads records without starting a writer (`frontline calls`: the gateway may be running).
pub fn list_at(path: &Path, filter: &CallFilter) -> Result<Vec<CallSummary>, RecordError> {
    let conn = schema::open_reader(path).map_err(|error| RecordError::Open { path: path.to_path_buf(), error })?;
    Ok(schema::list(&conn, filter)?)
}

pub fn get_at(path: &Path, call_id: &str) -> Result<Option<CallRecord>, RecordError> {
    let conn = schema::open_reader(path).map_err(|error| RecordError::Open { path: path.to_path_buf(), error })?;
    Ok(schema::get(&conn, call_id)?)
}

#[cfg(test)]
mod tests;
