//! The live-call registry: which calls are in progress, where each one is, and a way to steer
//! one from outside (the Ops API's Hangup, Escalate and Say).
//!
//! The call task stays the only owner of its call: the registry holds a snapshot the task keeps
//! up to date (state, turns, triage decisions) and a control channel into the task's select
//! loop. A control command is a message with a reply, answered by the task between two other
//! inputs, so a supervisor's action never races the call's own logic.
//!
//! It is the one live read model: the Ops API answers from it, and the agent console's call
//! list is a projection of it (`crate::http::view`). Both are kept up to date by
//! [`LiveCalls::observe`], which the call's observers run for every event in order, so neither
//! can miss an event or disagree with the other.
//!
//! Finished calls stay in a small in-memory ring (the last [`FINISHED_KEPT`]) so GetCall works
//! on a call that just ended even without the durable record store; the totals behind GetStats
//! (outcomes, escalation reasons, recent turn latencies) are kept since start-up.

use super::events::CallEvent;
pub use crate::records::TurnSummary;
use crate::handoff::HandoffPacket;
use crate::triage::Escalation;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Finished calls kept in memory for GetCall, ListCalls and the console's recent calls.
pub const FINISHED_KEPT: usize = 256;
/// Transcript lines kept per call: a 30-minute call at a turn every few seconds fits; a call
/// stuck in a loop does not grow the gateway's memory without end.
pub const MAX_LINES_PER_CALL: usize = 1000;
/// Turns whose latencies feed the percentiles.
const LATENCY_WINDOW: usize = 1000;
/// A call task answers control between two inputs (a 20 ms frame at most); one that does not
/// answer within this is stuck or ending.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallState {
    Ringing,
    Answered,
    /// Talking with the AI front line.
    Ai,
    /// Triage decided; bridging line and hold audio while an agent rings (or a REFER is out).
    HandingOver,
    /// The caller talks with a person.
    Bridged,
    Ended,
}

impl CallState {
    pub const ALL: [CallState; 6] =
        [CallState::Ringing, CallState::Answered, CallState::Ai, CallState::HandingOver, CallState::Bridged, CallState::Ended];

    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Answered => "answered",
            CallState::Ai => "ai",
            CallState::HandingOver => "handing_over",
            CallState::Bridged => "bridged",
            CallState::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<CallState> {
        CallState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a supervisor asks a live call to do.
#[derive(Debug, Clone)]
pub enum Control {
    Hangup { reason: String },
    /// Hand the caller to a person now, through triage and the handoff path.
    Escalate { reason: String },
    /// Speak a line into the call with the gateway's voice.
    Say { text: String, language: Option<String> },
}

/// Why a live call did not do what it was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlRefused {
    #[error("no live call {0:?}")]
    NotFound(String),
    /// The call cannot do it in its current state (already handed over, ...).
    #[error("{0}")]
    NotNow(String),
}

/// A command in flight to a call task, with the way back.
#[derive(Debug)]
pub struct ControlRequest {
    pub command: Control,
    pub reply: oneshot::Sender<Result<String, ControlRefused>>,
}

/// Who is calling whom, known when the call task starts.
#[derive(Debug, Clone, Default)]
pub struct CallIdentity {
    pub call_id: String,
    pub channel: String,
    pub caller: String,
    pub callee: String,
    pub codec: String,
}

/// One line of a call's transcript, as it was said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveLine {
    pub turn: u32,
    /// "caller", "bot", "supervisor" or "agent".
    pub speaker: String,
    pub text: String,
    pub at_ms: u64,
}

/// Everything the registry knows about one call, live or recently finished.
#[derive(Debug, Clone)]
pub struct CallSnapshot {
    pub identity: CallIdentity,
    pub state: CallState,
    /// The language the call is going on in, as last reported ("en", "zh"); empty until known.
    pub language: String,
    pub started_at_ms: u64,
    /// The time of the latest event folded in.
    pub updated_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    /// Each state the call entered, with when.
    pub timeline: Vec<(CallState, u64)>,
    pub turns: Vec<TurnSummary>,
    /// Who said what, the latest [`MAX_LINES_PER_CALL`] lines.
    pub transcript: Vec<LiveLine>,
    /// Lines dropped from the front of `transcript` to stay within the bound.
    pub transcript_dropped: usize,
    pub decisions: Vec<Escalation>,
    /// Shared, so copying a snapshot for a reader does not copy the packet.
    pub handoff: Option<Arc<HandoffPacket>>,
    /// The person the caller was bridged to.
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub end_reason: Option<String>,
}

impl CallSnapshot {
    /// The escalation's reason code, when the call was handed over.
    pub fn escalation(&self) -> Option<&str> {
        self.decisions.first().map(|d| d.code.as_str())
    }
}

/// Totals since start-up, for GetStats.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub finished: u64,
    pub outcomes: BTreeMap<String, u64>,
    /// Finished calls escalated, by reason code.
    pub escalations: BTreeMap<String, u64>,
    /// The most recent turns' latencies, oldest first.
    pub recent_turns: Vec<TurnSummary>,
    pub active_by_state: BTreeMap<CallState, u32>,
}

struct LiveEntry {
    snapshot: CallSnapshot,
    control: mpsc::Sender<ControlRequest>,
}

#[derive(Default)]
struct Inner {
    live: HashMap<String, LiveEntry>,
    finished: VecDeque<CallSnapshot>,
    finished_total: u64,
    outcomes: BTreeMap<String, u64>,
    escalations: BTreeMap<String, u64>,
    recent_turns: VecDeque<TurnSummary>,
}

/// Shared by every call (in `CallServices`) and read by the Ops API. The lock is held only to
/// copy or update a snapshot: never across an await.
#[derive(Default)]
pub struct LiveCalls {
    inner: Mutex<Inner>,
}

impl LiveCalls {
    pub fn new() -> LiveCalls {
        LiveCalls::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters a call that was just answered; the task keeps the handle and reads the receiver
    /// in its select loop. Dropping the handle takes the call out (as failed, if it was not
    /// finished properly), so a panicking task never leaves a ghost behind.
    pub fn register(self: &Arc<Self>, identity: CallIdentity) -> (LiveCallHandle, mpsc::Receiver<ControlRequest>) {
        let (tx, rx) = mpsc::channel(8);
        let now = super::events::now_ms();
        let call_id = identity.call_id.clone();
        let snapshot = CallSnapshot {
            identity,
            state: CallState::Answered,
            language: String::new(),
            started_at_ms: now,
            updated_at_ms: now,
            ended_at_ms: None,
            timeline: vec![(CallState::Answered, now)],
            turns: Vec::new(),
            transcript: Vec::new(),
            transcript_dropped: 0,
            decisions: Vec::new(),
            handoff: None,
            agent: None,
            outcome: None,
            end_reason: None,
        };
        self.lock().live.insert(call_id.clone(), LiveEntry { snapshot, control: tx });
        (LiveCallHandle { registry: self.clone(), call_id }, rx)
    }

    /// Sends `command` to the live call and waits for its answer.
    pub async fn control(&self, call_id: &str, command: Control) -> Result<String, ControlRefused> {
        let Some(tx) = self.lock().live.get(call_id).map(|e| e.control.clone()) else {
            return Err(ControlRefused::NotFound(call_id.to_string()));
        };
        let (reply, answer) = oneshot::channel();
        let gone = || ControlRefused::NotFound(call_id.to_string());
        tokio::time::timeout(CONTROL_TIMEOUT, tx.send(ControlRequest { command, reply }))
            .await
            .map_err(|_| ControlRefused::NotNow("the call is busy: try again".into()))?
            .map_err(|_| gone())?;
        match tokio::time::timeout(CONTROL_TIMEOUT, answer).await {
            Ok(Ok(result)) => result,
            // The task ended before answering.
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(ControlRefused::NotNow("the call did not answer in time".into())),
        }
    }

    /// Live calls first (newest first), then finished ones (newest first).
    pub fn list(&self) -> Vec<CallSnapshot> {
        let inner = self.lock();
        let mut live: Vec<CallSnapshot> = inner.live.values().map(|e| e.snapshot.clone()).collect();
        live.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms));
        live.extend(inner.finished.iter().rev().cloned());
        live
    }

    pub fn get(&self, call_id: &str) -> Option<CallSnapshot> {
        let inner = self.lock();
        if let Some(e) = inner.live.get(call_id) {
            return Some(e.snapshot.clone());
        }
        inner.finished.iter().rev().find(|s| s.identity.call_id == call_id).cloned()
    }

    pub fn totals(&self) -> Totals {
        let inner = self.lock();
        let mut active_by_state = BTreeMap::new();
        for e in inner.live.values() {
            *active_by_state.entry(e.snapshot.state).or_insert(0) += 1;
        }
        Totals {
            finished: inner.finished_total,
            outcomes: inner.outcomes.clone(),
            escalations: inner.escalations.clone(),
            recent_turns: inner.recent_turns.iter().cloned().collect(),
            active_by_state,
        }
    }

    /// Changes a live call's snapshot for an event at `at_ms`. A finished call is not
    /// reopened by a late event.
    fn update(&self, call_id: &str, at_ms: u64, f: impl FnOnce(&mut CallSnapshot)) {
        if let Some(e) = self.lock().live.get_mut(call_id) {
            e.snapshot.updated_at_ms = e.snapshot.updated_at_ms.max(at_ms);
            f(&mut e.snapshot);
        }
    }

    fn end(&self, call_id: &str, outcome: &str, reason: &str, at_ms: Option<u64>) {
        let mut inner = self.lock();
        let Some(entry) = inner.live.remove(call_id) else { return };
        let mut snapshot = entry.snapshot;
        let now = at_ms.unwrap_or_else(super::events::now_ms);
        snapshot.updated_at_ms = snapshot.updated_at_ms.max(now);
        snapshot.state = CallState::Ended;
        snapshot.timeline.push((CallState::Ended, now));
        snapshot.ended_at_ms = Some(now);
        snapshot.outcome = Some(outcome.to_string());
        snapshot.end_reason = Some(reason.to_string());
        inner.finished_total += 1;
        *inner.outcomes.entry(outcome.to_string()).or_insert(0) += 1;
        if let Some(code) = snapshot.escalation() {
            let code = code.to_string();
            *inner.escalations.entry(code).or_insert(0) += 1;
        }
        if inner.finished.len() == FINISHED_KEPT {
            inner.finished.pop_front();
        }
        inner.finished.push_back(snapshot);
    }
}

/// The call task's side of its registry entry: the entry lives as long as the task holds it.
/// What the entry shows is kept up to date by [`LiveCalls::observe`] from the call's events;
/// dropping the handle of a call that never reported its end (a panicking task) takes it out
/// as failed, so no ghost stays behind.
pub struct LiveCallHandle {
    registry: Arc<LiveCalls>,
    call_id: String,
}

impl Drop for LiveCallHandle {
    fn drop(&mut self) {
        // A no-op when the call's `Ended` event already moved it to the finished calls.
        self.registry.end(&self.call_id, "failed", "call task ended without finishing", None);
    }
}

impl LiveCalls {
    /// Folds one call event into the read model that Ops and the console share.
    pub fn observe(&self, event: &CallEvent) {
        let (call_id, at_ms) = (event.call_id(), event.at_ms());
        match event {
            CallEvent::State { state, .. } => {
                let Some(state) = CallState::parse(state) else { return };
                self.update(call_id, at_ms, |s| {
                    if s.state != state {
                        s.state = state;
                        s.timeline.push((state, at_ms));
                    }
                });
            }
            CallEvent::Said { speaker, text, language, turn, .. } => {
                let line = LiveLine { turn: *turn, speaker: speaker.clone(), text: text.clone(), at_ms };
                self.update(call_id, at_ms, |s| {
                    if !language.is_empty() {
                        s.language = language.clone();
                    }
                    s.transcript.push(line);
                    if s.transcript.len() > MAX_LINES_PER_CALL {
                        let excess = s.transcript.len() - MAX_LINES_PER_CALL;
                        s.transcript.drain(..excess);
                        s.transcript_dropped += excess;
                    }
                });
            }
            CallEvent::Turn { turn, .. } => {
                let mut inner = self.lock();
                if turn.first_rtp_ms.is_some() {
                    if inner.recent_turns.len() == LATENCY_WINDOW {
                        inner.recent_turns.pop_front();
                    }
                    inner.recent_turns.push_back(turn.clone());
                }
                if let Some(e) = inner.live.get_mut(call_id) {
                    e.snapshot.updated_at_ms = e.snapshot.updated_at_ms.max(at_ms);
                    e.snapshot.turns.push(turn.clone());
                }
            }
            CallEvent::Escalated { packet, decision, .. } => {
                let packet = Arc::new((**packet).clone());
                self.update(call_id, at_ms, |s| {
                    if let Some(d) = decision {
                        s.decisions.push((**d).clone());
                    }
                    if s.language.is_empty() {
                        s.language = packet.language.clone();
                    }
                    s.handoff = Some(packet);
                });
            }
            CallEvent::Bridged { agent, .. } => self.update(call_id, at_ms, |s| s.agent = Some(agent.clone())),
            CallEvent::Ended { outcome, reason, .. } => self.end(call_id, outcome, reason, Some(at_ms)),
            CallEvent::Started { .. }
            | CallEvent::NoInput { .. }
            | CallEvent::AgentDialed { .. }
            | CallEvent::BrainFailed { .. }
            | CallEvent::Recognized { .. } => {}
        }
    }
}

/// Nearest-rank percentiles (`p` in 0..=100) of `values`; 0 for none.
pub fn percentile(values: &mut [u64], p: u32) -> u64 {
    values.sort_unstable();
    crate::stats::percentile(values, f64::from(p) / 100.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: &str) -> CallIdentity {
        CallIdentity { call_id: id.into(), channel: "sip".into(), ..CallIdentity::default() }
    }

    #[test]
    fn a_call_moves_from_live_to_finished_with_its_timeline_and_totals() {
        let reg = Arc::new(LiveCalls::new());
        let (_handle, _rx) = reg.register(identity("c1"));
        let state = |s: &str| CallEvent::State { call_id: "c1".into(), state: s.into(), at_ms: 2 };
        reg.observe(&state("ai"));
        reg.observe(&state("ai"));
        let turn = TurnSummary { number: 1, first_rtp_ms: Some(700), ..TurnSummary::default() };
        reg.observe(&CallEvent::Turn { call_id: "c1".into(), turn, at_ms: 3 });
        reg.observe(&CallEvent::Said { call_id: "c1".into(), speaker: "caller".into(), text: "hi".into(), language: "en".into(), turn: 1, at_ms: 3 });
        assert_eq!(reg.totals().active_by_state.get(&CallState::Ai), Some(&1));
        reg.observe(&CallEvent::Ended { call_id: "c1".into(), reason: "caller-hangup".into(), outcome: "contained".into(), at_ms: 4, summary: None });
        let snap = reg.get("c1").expect("kept after the end");
        let states: Vec<_> = snap.timeline.iter().map(|(s, _)| *s).collect();
        assert_eq!(states, [CallState::Answered, CallState::Ai, CallState::Ended]);
        assert_eq!(snap.turns[0].first_rtp_ms, Some(700));
        assert_eq!((snap.transcript[0].turn, snap.transcript[0].text.as_str()), (1, "hi"));
        let totals = reg.totals();
        assert_eq!((totals.finished, totals.outcomes["contained"]), (1, 1));
        assert!(totals.active_by_state.is_empty());
    }

    #[test]
    fn a_task_that_dies_without_finishing_leaves_no_ghost() {
        let reg = Arc::new(LiveCalls::new());
        drop(reg.register(identity("c2")).0);
        assert_eq!(reg.get("c2").and_then(|s| s.outcome), Some("failed".into()));
        assert!(reg.totals().active_by_state.is_empty());
    }

    #[tokio::test]
    async fn control_reaches_the_task_and_unknown_calls_are_not_found() {
        let reg = Arc::new(LiveCalls::new());
        let (_handle, mut rx) = reg.register(identity("c3"));
        let task = tokio::spawn(async move {
            let req = rx.recv().await.unwrap();
            assert!(matches!(req.command, Control::Hangup { .. }));
            let _ = req.reply.send(Ok("hanging up".into()));
        });
        assert_eq!(reg.control("c3", Control::Hangup { reason: "test".into() }).await, Ok("hanging up".into()));
        task.await.unwrap();
        assert_eq!(
            reg.control("nope", Control::Hangup { reason: String::new() }).await,
            Err(ControlRefused::NotFound("nope".into()))
        );
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&mut v, 50), percentile(&mut v, 90), percentile(&mut v, 99)), (50, 90, 99));
        assert_eq!(percentile(&mut [], 50), 0);
        assert_eq!(percentile(&mut [7], 99), 7);
    }
}
