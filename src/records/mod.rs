//! API: `RecordStore::open(&RecordsConfig, RedactionConfig)` → Clone handle; writes `begin(Cdr)/turn/decision/handoff/unanswered(Cdr)` (queued) and `finish(CallEnd).await` (committed); reads `list(&CallFilter) -> Vec<CallSummary>` and `get(call_id) -> Option<CallRecord>`.
//!
//! Every call leaves a durable record: the CDR (who, when, channel, codec, outcome and why,
//! which node took it), the state timeline, the transcript turns with per-stage latency,
//! triage's decisions with their evidence, and the handoff packet. One gateway keeps them in
//! an embedded SQLite file (WAL mode); gateways behind one SIP proxy share a PostgreSQL
//! database (`records.url`). Both have the same tables, from the same migrations (`db`).
//!
//! Writes never run on the async runtime: one writer thread owns the connection and takes
//! writes from a bounded channel, so a slow disk or an unreachable database can delay a record,
//! never a call. The call's end waits (bounded) for the final CDR's commit, so a call reported
//! as ended is stored. A call still `in-progress` when its gateway starts was cut off by a
//! crash: it is marked `interrupted`. Transcript words are masked (`crate::redact`) before
//! they are stored.
//!
//! Reads open their own connection, and block: call them off the async runtime
//! (`spawn_blocking`), as the Ops API does.

pub mod cli;
mod db;
pub mod local_postgres;
pub mod relay;
mod schema;
pub mod recording;
pub mod report;
mod text;
mod writer;

pub use db::{is_postgres_url, DbError, Location};
pub use text::{render_list, render_record};

use crate::redact::RedactionConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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
    /// the Ops API) never block the writer. Used when `url` is empty.
    pub path: PathBuf,
    /// A PostgreSQL database shared by several gateways (`postgres://user:password@host/db`);
    /// empty keeps the embedded SQLite file at `path`.
    pub url: String,
    /// The name this gateway's records carry (`calls.node`); empty: the host name.
    pub node: String,
    /// Records older than this many days are deleted at start-up and daily; 0 keeps them all.
    pub retention_days: u32,
    /// Writes held while the database is unreachable (about 1 KB each; a call makes ~20):
    /// beyond this, writes are dropped and counted (`frontline_records_dropped_total`).
    pub queue_limit: usize,
    /// A node not heard from for this long is down: the nodes still up mark its calls
    /// interrupted. Each node says it is alive every sixth of this.
    pub node_timeout_secs: u64,
    /// A caller's calls of the last this many days are their history (the handoff packet, the
    /// console, the brain's CallStart, triage's repeat-contact); 0: none is looked up.
    pub history_days: u32,
    /// At most this many earlier calls, newest first.
    pub history_calls: usize,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            path: PathBuf::from("var/records.db"),
            url: String::new(),
            node: String::new(),
            retention_days: 90,
            queue_limit: 50_000,
            node_timeout_secs: 30,
            history_days: 30,
            history_calls: 5,
        }
    }
}

impl RecordsConfig {
    pub fn node_timeout(&self) -> Duration {
        Duration::from_secs(self.node_timeout_secs)
    }

    /// How often a node says it is alive.
    pub fn heartbeat_interval(&self) -> Duration {
        self.node_timeout() / 6
    }

    pub fn location(&self) -> Location {
        if self.url.is_empty() {
            Location::Sqlite(self.path.clone())
        } else {
            Location::Postgres(self.url.clone())
        }
    }

    /// `node`, or the host name when it is empty.
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        host_name().unwrap_or_else(|| "gateway".into())
    }

    /// `--records X`: a PostgreSQL URL sets `url`, anything else is the SQLite file.
    pub fn set_location(&mut self, location: Location) {
        match location {
            Location::Sqlite(path) => {
                self.path = path;
                self.url.clear();
            }
            Location::Postgres(url) => self.url = url,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    // `error` is not a `source`: the message already carries it, so anyhow's chain does not repeat it.
    #[error("call records {location}: {error} ({})", open_fix(.location))]
    Open { location: Location, error: DbError },
    #[error("call records: {0}")]
    Db(#[from] DbError),
    #[error("call records: the writer thread is gone")]
    WriterGone,
    #[error("call records: the write did not commit within {0:?}")]
    Slow(Duration),
    #[error("call records: the database is unreachable; the record is queued until it is back")]
    Queued,
}

fn open_fix(location: &Location) -> &'static str {
    match location {
        Location::Sqlite(_) => "check that the folder exists and is writable and the disk has room, or set records.path in the config",
        Location::Postgres(_) => "check that PostgreSQL is running and reachable and that the user may create tables in the database, or fix records.url in the config",
    }
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
    /// The gateway that took the call (`records.node`); filled in by the store.
    pub node: String,
    /// The caller's id in the CRM (`[sip] customer_id_header`); empty when none came.
    pub customer_id: String,
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
    /// The playbook intents the call touched, first first.
    pub intents: Vec<String>,
    /// The caller's first words (masked).
    pub summary: String,
    /// The caller's answer to the satisfaction survey.
    pub survey: Option<crate::call::survey::Rating>,
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
    /// Only calls taken by this node.
    pub node: Option<String>,
    /// Leave out calls taken by this node (a node lists its own live calls from memory).
    pub not_node: Option<String>,
}

/// This machine's host name, when it has one.
pub fn host_name() -> Option<String> {
    whoami::hostname().ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// A gateway's sign of life, written every few seconds (`RecordStore::heartbeat`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBeat {
    /// Where its Ops service answers (`http://host:port`), for controls other nodes forward.
    pub ops_url: String,
    pub started_ms: u64,
    pub draining: bool,
    pub active_calls: u32,
    /// Bridged calls per SIP agent on this node.
    pub agent_load: Vec<(String, u32)>,
}

/// An agent's phone registering with a gateway, or leaving (times in unix milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationChange {
    /// The agent's phone is at `contact` from `at_ms` until `expires_ms`.
    Bound { agent: String, contact: String, at_ms: u64, expires_ms: u64 },
    /// The agent's phone at `contact` (any phone: None) left at `at_ms`.
    Ended { agent: String, contact: Option<String>, at_ms: u64 },
}

/// Where an agent's phone last registered, through any gateway sharing the records; a phone
/// that left has `expires_ms == at_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRegistration {
    pub contact: String,
    pub at_ms: u64,
    pub expires_ms: u64,
    /// The gateway it registered (or left) through.
    pub node: String,
}

/// A gateway sharing the records database, as it last said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub ops_url: String,
    pub started_ms: u64,
    pub seen_ms: u64,
    pub draining: bool,
    pub active_calls: u32,
    /// Seen within `records.node_timeout_secs`.
    pub up: bool,
    /// Bridged calls per SIP agent on that node.
    pub agent_load: std::collections::HashMap<String, u32>,
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
    /// The playbook intents the call touched, first first (`brain::conversation::is_topic`).
    pub intents: Vec<String>,
    /// One line of what the caller came for (masked by the store).
    pub summary: String,
    /// The caller's answer to the satisfaction survey.
    pub survey: Option<crate::call::survey::Rating>,
}

/// One of a caller's earlier calls, as their next call is told of it (the handoff packet, the
/// brain's CallStart, triage's repeat-contact signal).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PastCall {
    pub call_id: String,
    pub started_at_ms: u64,
    /// "contained", "escalated", ...
    pub outcome: String,
    pub intents: Vec<String>,
    /// The escalation reason code, when it was handed over.
    pub escalation: Option<String>,
    pub summary: String,
}

/// Handle on the call records; cheap to clone, shared by every call and the Ops API.
#[derive(Clone)]
pub struct RecordStore {
    inner: Arc<Inner>,
}

struct Inner {
    location: Location,
    /// Call events between the nodes sharing a PostgreSQL database; None with SQLite.
    relay: Option<relay::Relay>,
    node: String,
    node_timeout: Duration,
    writer: writer::WriterHandle,
    redaction: RedactionConfig,
    write_errors: Arc<AtomicU64>,
    /// `[records] history_days` and `history_calls`.
    history_days: u32,
    history_calls: usize,
}

impl RecordStore {
    /// Opens (creating) the database, marks calls a crash cut off as interrupted, applies the
    /// retention, and starts the writer thread. Fails with the file and the fix when the path is
    /// unwritable or the disk is full.
    pub fn open(config: &RecordsConfig, redaction: RedactionConfig) -> Result<RecordStore, RecordError> {
        let location = config.location();
        let open_err = |error| RecordError::Open { location: location.clone(), error };
        if let Location::Sqlite(path) = &location {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    return Err(open_err(DbError::Sqlite(rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into()))));
                }
            }
        }
        let node = config.node_name();
        let (db, interrupted) = db::off_runtime(|| {
            let mut db = db::Db::open_writer(&location)?;
            let interrupted = schema::mark_interrupted(&mut db, &node, matches!(location, Location::Postgres(_)))?;
            Ok((db, interrupted))
        })
        .map_err(open_err)?;
        if interrupted > 0 {
            tracing::warn!(records = %location, calls = interrupted, "calls cut off by the last stop marked interrupted");
        }
        tracing::info!(records = %location, node, "call records open");
        let write_errors = Arc::new(AtomicU64::new(0));
        let settings = writer::WriterSettings {
            node: node.clone(),
            retention_days: config.retention_days,
            queue_limit: config.queue_limit,
            node_timeout: config.node_timeout(),
        };
        let writer = writer::spawn(db, settings, write_errors.clone());
        let node_timeout = config.node_timeout();
        let relay = match &location {
            Location::Postgres(url) => Some(relay::Relay::listen(url.clone())),
            Location::Sqlite(_) => None,
        };
        let (history_days, history_calls) = (config.history_days, config.history_calls);
        Ok(RecordStore {
            inner: Arc::new(Inner { location, relay, node, node_timeout, writer, redaction, write_errors, history_days, history_calls }),
        })
    }

    /// Other gateways may share these records (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.inner.relay.is_some()
    }

    /// Tells the other nodes sharing the database about a call event (queued behind this
    /// call's record writes; nothing with SQLite, where there are no other nodes). `json`: the
    /// event's fields, already masked as the Ops watchers get them.
    pub fn publish_event(&self, call_id: &str, kind: &str, at_ms: u64, json: String) {
        if self.inner.relay.is_none() {
            return;
        }
        let event = relay::RelayedEvent { node: self.inner.node.clone(), call_id: call_id.to_string(), kind: kind.to_string(), at_ms, json };
        self.inner.writer.send(writer::Write::Notify { payload: event.payload() }, None);
    }

    /// Every node's call events as they are published (this node's included); None when the
    /// records are not shared.
    pub fn cluster_events(&self) -> Option<tokio::sync::broadcast::Receiver<relay::RelayedEvent>> {
        self.inner.relay.as_ref().map(relay::Relay::subscribe)
    }

    /// The name this gateway's records carry.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// This node is alive (and how it is); also closes, as interrupted, the calls of nodes
    /// silent for longer than `records.node_timeout_secs`.
    pub fn heartbeat(&self, beat: NodeBeat) {
        self.inner.writer.send(writer::Write::Heartbeat { beat, at_ms: crate::clock::now_ms() }, None);
    }

    /// Bridged calls per SIP agent on the other nodes that are up, summed: what least-busy
    /// routing adds to this node's own counts.
    pub fn agent_load_elsewhere(&self) -> Result<std::collections::HashMap<String, u32>, RecordError> {
        let mut elsewhere = std::collections::HashMap::new();
        for node in self.nodes()?.into_iter().filter(|n| n.up && n.node != self.inner.node) {
            for (agent, calls) in node.agent_load {
                *elsewhere.entry(agent).or_insert(0) += calls;
            }
        }
        Ok(elsewhere)
    }

    /// Every node that shares the database, this one included.
    pub fn nodes(&self) -> Result<Vec<NodeStatus>, RecordError> {
        let up_since = crate::clock::now_ms().saturating_sub(self.inner.node_timeout.as_millis() as u64);
        db::off_runtime(|| Ok(schema::nodes(&mut open_reader(&self.inner.location)?, up_since)?))
    }

    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// The writer is waiting for a lost database (writes queue meanwhile).
    pub fn database_down(&self) -> bool {
        self.inner.writer.database_down()
    }

    /// Writes dropped because the queue was full (the database away too long).
    pub fn dropped_writes(&self) -> u64 {
        self.inner.writer.dropped()
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
    pub async fn finish(&self, mut end: CallEnd) -> Result<(), RecordError> {
        end.summary = self.mask(&end.summary);
        // While the database is known to be away, the call's end does not wait on it: every
        // call would otherwise linger the whole bound in an outage.
        if self.inner.writer.database_down() {
            self.inner.writer.send(writer::Write::Finish(end), None);
            return Err(RecordError::Queued);
        }
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
        if !self.is_shared() && filter.node.is_some() {
            // A SQLite file has one gateway: its calls are this node's whatever name they carry.
            return list_at(&self.inner.location, &CallFilter { node: None, ..filter.clone() });
        }
        list_at(&self.inner.location, filter)
    }

    pub fn get(&self, call_id: &str) -> Result<Option<CallRecord>, RecordError> {
        get_at(&self.inner.location, call_id)
    }

    /// The caller's earlier calls for a call starting now, as `[records] history_days` and
    /// `history_calls` say; none when that is off or the lookup fails (a call never waits long
    /// on, or fails for, its history: the failure is logged).
    pub async fn recent_calls(&self, caller: &str, customer_id: &str) -> Vec<PastCall> {
        let (days, limit) = (self.inner.history_days, self.inner.history_calls);
        if days == 0 || limit == 0 {
            return Vec::new();
        }
        let since = crate::clock::now_ms().saturating_sub(u64::from(days) * 86_400_000);
        let (store, caller, customer_id) = (self.clone(), caller.to_string(), customer_id.to_string());
        match tokio::task::spawn_blocking(move || store.history(&caller, &customer_id, since, limit)).await {
            Ok(Ok(past)) => past,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "caller history not read; the call goes on without it");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, "caller history lookup failed");
                Vec::new()
            }
        }
    }

    /// An agent's phone registered or left: written behind the other writes, off the SIP path.
    pub fn registration(&self, change: RegistrationChange) {
        self.inner.writer.send(writer::Write::Registration(change), None);
    }

    /// Where `agent`'s phone last registered, through this gateway or any other sharing the
    /// records (still in force or not: the caller compares it with what it knows).
    pub fn registration_of(&self, agent: &str) -> Result<Option<RecordedRegistration>, RecordError> {
        db::off_runtime(|| Ok(schema::registration_of(&mut open_reader(&self.inner.location)?, agent)?))
    }

    /// The caller's finished calls started at or after `since_ms`, newest first, at most
    /// `limit`: what their next call should know. A caller with a CRM id (`customer_id`, not
    /// empty) is known by it, whatever number they call from; otherwise by their number.
    /// Nobody's history for a caller with neither.
    pub fn history(&self, caller: &str, customer_id: &str, since_ms: u64, limit: usize) -> Result<Vec<PastCall>, RecordError> {
        let (caller, customer_id) = (caller.trim(), customer_id.trim());
        let who = if !customer_id.is_empty() {
            schema::Who::Customer(customer_id)
        } else if !caller.is_empty() && !caller.eq_ignore_ascii_case("anonymous") {
            schema::Who::Number(caller)
        } else {
            return Ok(Vec::new());
        };
        db::off_runtime(|| Ok(schema::history(&mut open_reader(&self.inner.location)?, who, since_ms, limit)?))
    }
}

fn open_reader(location: &Location) -> Result<db::Db, RecordError> {
    db::Db::open_reader(location).map_err(|error| RecordError::Open { location: location.clone(), error })
}

/// Reads records without starting a writer (`frontline calls`: the gateway may be running).
pub fn list_at(location: &Location, filter: &CallFilter) -> Result<Vec<CallSummary>, RecordError> {
    db::off_runtime(|| Ok(schema::list(&mut open_reader(location)?, filter)?))
}

pub fn get_at(location: &Location, call_id: &str) -> Result<Option<CallRecord>, RecordError> {
    db::off_runtime(|| Ok(schema::get(&mut open_reader(location)?, call_id)?))
}

/// What `frontline report` reads: the calls started in [`since_ms`, `until_ms`).
pub fn report_data_at(location: &Location, since_ms: u64, until_ms: u64) -> Result<report::ReportData, RecordError> {
    db::off_runtime(|| Ok(schema::report_data(&mut open_reader(location)?, since_ms, until_ms)?))
}

#[cfg(test)]
mod tests;
