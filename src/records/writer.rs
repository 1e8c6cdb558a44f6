//! The one thread that writes call records. Calls queue writes on an unbounded channel and
//! never wait on the disk, except the end of a call, which waits (bounded) for its CDR's ack.
//! A failed write is counted and logged, and the thread goes on with the next one: a full disk
//! costs records, never calls.

use super::{schema, CallEnd, Cdr, DecisionRecord, RecordError};
use super::TurnSummary;
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
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
        }
    }

    fn call_id(&self) -> &str {
        match self {
            Write::Begin(c) | Write::Unanswered(c) => &c.call_id,
            Write::Turn { call_id, .. } | Write::Decision { call_id, .. } | Write::Handoff { call_id, .. } | Write::Touch { call_id, .. } => call_id,
            Write::Finish(e) => &e.call_id,
            Write::Barrier => "",
        }
    }
}

struct Job {
    write: Write,
    ack: Option<oneshot::Sender<Result<(), RecordError>>>,
    queued: Instant,
}

pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

impl WriterHandle {
    pub fn send(&self, write: Write, ack: Option<oneshot::Sender<Result<(), RecordError>>>) {
        // The thread only ends when every handle is gone: a send cannot fail while we hold one,
        // but if it ever did the ack's sender drops and the waiter reads WriterGone.
        let _ = self.tx.send(Job { write, ack, queued: Instant::now() });
    }
}

pub fn spawn(mut conn: Connection, retention_days: u32, errors: Arc<AtomicU64>) -> WriterHandle {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("call-records".into())
        .spawn(move || {
            let mut next_retention = Instant::now();
            loop {
                if retention_days > 0 && Instant::now() >= next_retention {
                    apply_retention(&mut conn, retention_days, &errors);
                    next_retention = Instant::now() + DAY;
                }
                let job = match rx.recv_timeout(next_retention.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))) {
                    Ok(job) => job,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                let kind = job.write.kind();
                let result = apply(&mut conn, &job.write);
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
    WriterHandle { tx }
}

fn apply(conn: &mut Connection, write: &Write) -> rusqlite::Result<()> {
    match write {
        Write::Begin(s) => schema::begin(conn, s),
        Write::Turn { call_id, turn, at_ms } => schema::turn(conn, call_id, turn, *at_ms),
        Write::Decision { call_id, decision } => schema::decision(conn, call_id, decision),
        Write::Handoff { call_id, packet_json } => schema::handoff(conn, call_id, packet_json),
        Write::Finish(e) => schema::finish(conn, e),
        Write::Unanswered(c) => schema::unanswered(conn, c),
        Write::Barrier => Ok(()),
        Write::Touch { call_id, at_ms } => schema::touch(conn, call_id, *at_ms),
    }
}

fn apply_retention(conn: &mut Connection, days: u32, errors: &AtomicU64) {
    let cutoff = crate::clock::now_ms().saturating_sub(u64::from(days) * DAY.as_millis() as u64);
    match schema::delete_older_than(conn, cutoff) {
        Ok(0) => {}
        Ok(n) => tracing::info!(calls = n, retention_days = days, "old call records deleted"),
        Err(e) => {
            errors.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("frontline_records_write_errors_total").increment(1);
            tracing::error!(error = %e, "call records retention failed");
        }
    }
}
