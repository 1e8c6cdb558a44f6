//! The one thread that writes call records. Calls queue writes on a bounded channel and never
//! wait on the database, except the end of a call, which waits (bounded) for its CDR's ack.
//! A write the database refuses (full disk, I/O error) is counted and logged, and the thread
//! goes on with the next one: a full disk costs records, never calls. A lost PostgreSQL
//! connection is different: the write waits and is tried again on a new connection while the
//! queue fills behind it, so a database restart loses nothing unless the queue overflows, and
//! what overflows is counted and logged.

use super::db::{Db, DbError};
use super::{schema, CallEnd, Cdr, DecisionRecord, RecordError};
use super::TurnSummary;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const DAY: Duration = Duration::from_secs(24 * 3600);

pub enum Write {
    Begin(Cdr),
    Turn { call_id: String, turn: TurnSummary, at_ms: u64 },
    Decision { call_id: String, decision: DecisionRecord },
    Handoff { call_id: String, packet_json: String },
    Finish(CallEnd),
    Unanswered(Cdr),
    /// Writes nothing: its ack says every earlier write is done.
    Barrier,
    /// The call was alive at `at_ms` (so a crash leaves a true duration).
    Touch { call_id: String, at_ms: u64 },
    /// This node was alive at `at_ms`.
    Heartbeat { beat: super::NodeBeat, at_ms: u64 },
    /// A call event for the other nodes (`relay`).
    Notify { payload: String },
    /// An agent's phone registered or left.
    Registration(super::RegistrationChange),
}

impl Write {
    fn kind(&self) -> &'static str {
        match self {
            Write::Begin(_) => "begin",
            Write::Turn { .. } => "turn",
            Write::Decision { .. } => "decision",
            Write::Handoff { .. } => "handoff",
            Write::Finish(_) => "finish",
            Write::Unanswered(_) => "unanswered",
            Write::Barrier => "barrier",
            Write::Touch { .. } => "touch",
            Write::Heartbeat { .. } => "heartbeat",
            Write::Notify { .. } => "notify",
            Write::Registration(_) => "registration",
        }
    }

    fn call_id(&self) -> &str {
        match self {
            Write::Begin(c) | Write::Unanswered(c) => &c.call_id,
            Write::Turn { call_id, .. } | Write::Decision { call_id, .. } | Write::Handoff { call_id, .. } | Write::Touch { call_id, .. } => call_id,
            Write::Finish(e) => &e.call_id,
            Write::Barrier | Write::Heartbeat { .. } | Write::Notify { .. } | Write::Registration(_) => "",
        }
    }
}

struct Job {
    write: Write,
    ack: Option<oneshot::Sender<Result<(), RecordError>>>,
    queued: Instant,
}

pub struct WriterHandle {
    tx: mpsc::SyncSender<Job>,
    dropped: Arc<AtomicU64>,
    /// The writer is waiting for a lost database to come back.
    down: Arc<AtomicBool>,
}

impl WriterHandle {
    /// Queues a write without ever waiting. When the queue is full (the database has been away
    /// for a long time) the write is dropped, counted and logged; its ack's sender drops, so a
    /// waiter reads WriterGone rather than waiting.
    pub fn send(&self, write: Write, ack: Option<oneshot::Sender<Result<(), RecordError>>>) {
        match self.tx.try_send(Job { write, ack, queued: Instant::now() }) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("frontline_records_dropped_total").increment(1);
                // Every write while the queue is full would flood the log: the first, then every 1000th.
                if n == 1 || n % 1000 == 0 {
                    tracing::error!(call_id = job.write.call_id(), write = job.write.kind(), dropped = n, "call record dropped: the records queue is full (database unreachable?)");
                }
            }
            // The thread only ends when every handle is gone: this cannot happen while we hold one.
            Err(mpsc::TrySendError::Disconnected(_)) => {}
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn database_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

/// The longest wait between two tries to reach a database that went away.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

pub struct WriterSettings {
    pub node: String,
    pub retention_days: u32,
    pub queue_limit: usize,
    pub node_timeout: Duration,
}

pub fn spawn(mut db: Db, settings: WriterSettings, errors: Arc<AtomicU64>) -> WriterHandle {
    let WriterSettings { node, retention_days, queue_limit, node_timeout } = settings;
    let (tx, rx) = mpsc::sync_channel::<Job>(queue_limit.max(1));
    let down = Arc::new(AtomicBool::new(false));
    let writer_down = down.clone();
    std::thread::Builder::new()
        .name("call-records".into())
        .spawn(move || {
            let mut next_retention = Instant::now();
            loop {
                if retention_days > 0 && Instant::now() >= next_retention {
                    apply_retention(&mut db, retention_days, &errors);
                    next_retention = Instant::now() + DAY;
                }
                let job = match rx.recv_timeout(next_retention.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))) {
                    Ok(job) => job,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                let kind = job.write.kind();
                let result = apply_until_written(&mut db, &node, node_timeout, &job.write, &writer_down);
                // Queue wait + commit: what a call's record waits for.
                let latency = job.queued.elapsed();
                metrics::histogram!("frontline_records_write_seconds", "kind" => kind).record(latency.as_secs_f64());
                if let Err(e) = &result {
                    errors.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("frontline_records_write_errors_total").increment(1);
                    tracing::error!(call_id = job.write.call_id(), write = kind, error = %e, "call record not written (disk full or unwritable?)");
                }
                if let Some(ack) = job.ack {
                    let _ = ack.send(result.map_err(RecordError::from));
                }
            }
        })
        .expect("spawn the call-records thread");
    WriterHandle { tx, dropped: Arc::new(AtomicU64::new(0)), down }
}

/// Applies the write; while the connection is lost, reconnects (backing off to
/// [`RECONNECT_MAX`]) and tries again, however long that takes: the queue holds what comes
/// in meanwhile.
fn apply_until_written(db: &mut Db, node: &str, node_timeout: Duration, write: &Write, down: &AtomicBool) -> Result<(), DbError> {
    let mut backoff = Duration::from_millis(100);
    let mut down_since: Option<Instant> = None;
    loop {
        match apply(db, node, node_timeout, write) {
            Err(e) if e.is_connection_lost() => {
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    down.store(true, Ordering::Relaxed);
                    tracing::error!(error = %e, "call records: database connection lost; writes queue until it is back");
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(RECONNECT_MAX);
                if let Err(e) = db.reconnect() {
                    tracing::debug!(error = %e, "call records: database still unreachable");
                }
            }
            result => {
                if let Some(since) = down_since {
                    down.store(false, Ordering::Relaxed);
                    tracing::warn!(down_ms = since.elapsed().as_millis() as u64, "call records: database reachable again; writing the queue");
                }
                return result;
            }
        }
    }
}

fn apply(db: &mut Db, node: &str, node_timeout: Duration, write: &Write) -> Result<(), DbError> {
    match write {
        Write::Heartbeat { beat, at_ms } => {
            schema::heartbeat(db, node, beat, *at_ms)?;
            let silent_since = at_ms.saturating_sub(node_timeout.as_millis() as u64);
            for (dead, calls) in schema::close_calls_of_silent_nodes(db, node, silent_since)? {
                tracing::warn!(node = dead, calls, "a gateway sharing the records went silent: its calls are marked interrupted");
            }
            Ok(())
        }
        Write::Begin(s) => schema::begin(db, node, s),
        Write::Turn { call_id, turn, at_ms } => schema::turn(db, call_id, turn, *at_ms),
        Write::Decision { call_id, decision } => schema::decision(db, call_id, decision),
        Write::Handoff { call_id, packet_json } => schema::handoff(db, call_id, packet_json),
        Write::Finish(e) => schema::finish(db, e),
        Write::Unanswered(c) => schema::unanswered(db, node, c),
        Write::Barrier => Ok(()),
        Write::Notify { payload } => schema::notify(db, payload),
        Write::Touch { call_id, at_ms } => schema::touch(db, call_id, *at_ms),
        Write::Registration(change) => schema::registration(db, node, change),
    }
}

fn apply_retention(db: &mut Db, days: u32, errors: &AtomicU64) {
    let cutoff = crate::clock::now_ms().saturating_sub(u64::from(days) * DAY.as_millis() as u64);
    match schema::delete_older_than(db, cutoff) {
        Ok(0) => {}
        Ok(n) => tracing::info!(calls = n, retention_days = days, "old call records deleted"),
        Err(e) => {
            errors.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("frontline_records_write_errors_total").increment(1);
            tracing::error!(error = %e, "call records retention failed");
        }
    }
}
