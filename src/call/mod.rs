//! One task per call, and the shared services every call uses.
//!
//! The edge (SIP or WebRTC) answers the call and hands over a running media driver; from then
//! on the call's task owns the call. Its decisions live in [`core::CallCore`], sans-IO (turn
//! taking, barge-in, deadlines and their fallbacks, no-input, keypad collection, handoff, the
//! end); [`driver`] is the thin tokio task that carries them out: it listens, sends utterances
//! to the whisper pool, talks to the brain over the gRPC `Dialog` stream, speaks, and dials
//! agents. Other tasks talk to it only through channels ([`SignalEvent`] in, [`LegCommand`]
//! out). What happens is published once as [`events::CallEvent`]s to the [`observe`]rs.

pub mod config;
pub mod core;
mod driver;
pub mod events;
mod listener;
pub mod observe;
pub mod prompts;
pub mod registry;
mod speaker;
pub mod survey;
mod turn;
pub mod turn_taking;

pub use driver::spawn;

use crate::dialog::DialogClient;
use crate::media::session::{MediaHandle, MediaParams};
use crate::speech::stt::SttPool;
use crate::speech::tts::Tts;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use crate::handoff::{AgentPool, AgentTarget};
use crate::records::recording::RecordingConfig;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Whether the gateway takes new calls, and how long the ones in progress may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Taking calls.
    Serving,
    /// No new calls; calls in progress go on to their end, or until the instant, then hear a
    /// goodbye and get a BYE.
    Until(Instant),
    /// Stopping now: every call ends with a BYE at once.
    Now,
}

/// What every call shares: its settings, the recognition pool, the synthesizer, the brain,
/// and the way out to a human agent. Whoever assembles the configuration hands over the
/// sections calls run on; `call` reads no configuration file of its own.
pub struct CallServices {
    /// What every call decides with, built once from the configuration.
    pub settings: Arc<config::CallSettings>,
    /// `[calls]`: admission, drain, and the Retry-After the edges send when refusing.
    pub calls: config::CallsConfig,
    /// The language each new call starts in, for the edges to set.
    pub languages: config::CallLanguages,
    /// `[recording]`: whether and where each call is recorded.
    pub recording: RecordingConfig,
    pub stt: SttPool,
    pub tts: Tts,
    pub brain: DialogClient,
    /// The edges that place calls to agents, each set once its edge is up.
    pub dialers: AgentDialers,
    /// Which agent rings next; shared by every call so round-robin and least-busy hold.
    pub agents: Arc<Mutex<AgentPool>>,
    pub events: events::CallEvents,
    /// Calls in progress, their state, and the way to steer one (the Ops API).
    pub live: Arc<registry::LiveCalls>,
    /// Durable call records (SQLite): every call's CDR, turns, decisions and packet.
    pub records: crate::records::RecordStore,
    active: AtomicUsize,
    drain: watch::Sender<Drain>,
}

/// A call to place to an agent for a warm handoff.
#[derive(Debug, Clone)]
pub struct AgentDial {
    pub call_id: String,
    pub target: String,
    /// Context headers (already encoded) the agent's phone or desktop can show.
    pub headers: Vec<(String, String)>,
    pub ring_timeout: Duration,
}

/// How the call to the agent went.
pub enum DialOutcome {
    Answered(AgentLeg),
    /// `status` is the SIP final response (486, 603, ...) when one came; none when the agent
    /// never answered in time or could not be reached.
    Failed { status: Option<u16>, reason: String },
}

/// A live call leg to an agent.
pub struct AgentLeg {
    pub media: MediaHandle,
    pub media_events: crate::media::session::MediaEvents,
    /// Ask the edge to hang the agent up (BYE).
    pub hangup: tokio::sync::mpsc::Sender<()>,
    /// Resolves when the agent's side ended (their BYE, or after our hang-up).
    pub ended: tokio::sync::oneshot::Receiver<String>,
    pub codec: String,
}

/// Places calls to agents: implemented by the SIP edge (desk phones) and the WebRTC edge
/// (agents on the console page), so the call task, shared by every edge, can bridge a caller
/// to an agent without knowing how the agent is reached.
pub trait AgentDialer: Send + Sync {
    fn dial(&self, request: AgentDial) -> Pin<Box<dyn Future<Output = DialOutcome> + Send + '_>>;
}

/// One dialer per kind of agent target ([`AgentTarget`]).
#[derive(Default)]
pub struct AgentDialers {
    pub sip: OnceLock<Arc<dyn AgentDialer>>,
    pub console: OnceLock<Arc<dyn AgentDialer>>,
}

impl AgentDialers {
    /// The dialer for `target`; none while (or when) its edge is not running.
    pub fn for_target(&self, target: &str) -> Option<Arc<dyn AgentDialer>> {
        match AgentTarget::of(target) {
            AgentTarget::Sip(_) | AgentTarget::Registered(_) => self.sip.get().cloned(),
            AgentTarget::Console(_) => self.console.get().cloned(),
        }
    }
}

impl CallServices {
    pub fn new(
        sections: config::CallSections<'_>,
        languages: config::CallLanguages,
        recording: RecordingConfig,
        stt: SttPool,
        tts: Tts,
        brain: DialogClient,
        records: crate::records::RecordStore,
    ) -> Self {
        let agents = Arc::new(Mutex::new(AgentPool::new(sections.handoff.agents.clone(), sections.handoff.strategy)));
        let calls = sections.calls.clone();
        CallServices {
            settings: Arc::new(config::CallSettings::new(sections)),
            calls,
            languages,
            recording,
            stt,
            tts,
            brain,
            dialers: AgentDialers::default(),
            agents,
            events: events::CallEvents::new(),
            live: Arc::new(registry::LiveCalls::new()),
            records,
            active: AtomicUsize::new(0),
            drain: watch::Sender::new(Drain::Serving),
        }
    }

    /// Why a new call must be refused right now, if it must. Checked before answering, so a
    /// caller hears a fast 503 instead of a slow, degraded bot.
    pub fn admission_refusal(&self) -> Option<String> {
        if self.is_draining() {
            return Some("draining: not taking new calls".into());
        }
        let active = self.active.load(Ordering::Relaxed);
        if active >= self.calls.max_concurrent {
            return Some(format!("at capacity: {active} calls in progress"));
        }
        let depth = self.stt.queue_depth();
        if depth >= self.stt.queue_capacity() {
            return Some(format!("speech recognition overloaded: {depth} utterances waiting"));
        }
        None
    }

    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn is_draining(&self) -> bool {
        *self.drain.borrow() != Drain::Serving
    }

    /// Ops `SetDraining`: on, no new calls and live calls go on for up to
    /// `calls.drain_timeout_secs`; off, serving again and the calls' deadline is lifted (a
    /// second SIGTERM's "end now" stands).
    pub fn set_draining(&self, on: bool) {
        let timeout = Duration::from_secs(self.calls.drain_timeout_secs);
        self.drain.send_if_modified(|drain| match (on, *drain) {
            (true, Drain::Serving) => {
                *drain = Drain::Until(Instant::now() + timeout);
                true
            }
            (false, Drain::Until(_)) => {
                *drain = Drain::Serving;
                true
            }
            _ => false,
        });
    }

    /// A second stop signal: every call ends now, with a BYE.
    pub fn stop_all_calls(&self) {
        self.drain.send_replace(Drain::Now);
    }

    /// Where the drain stands, for each new call task to follow.
    pub fn drain_watch(&self) -> watch::Receiver<Drain> {
        self.drain.subscribe()
    }

    /// Resolves once no call is in progress.
    pub async fn calls_ended(&self) {
        while self.active_calls() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The observers every call's events go to.
    pub fn observers(&self) -> observe::Observers {
        observe::Observers { records: self.records.clone(), live: self.live.clone(), bus: self.events.clone() }
    }

    pub fn agent_pool(&self) -> Arc<Mutex<AgentPool>> {
        self.agents.clone()
    }

    /// A call that was never answered (the caller cancelled during the ring time) still leaves
    /// a line in the log.
    pub fn log_unanswered(&self, call_id: &str, reason: &str) {
        let now = crate::clock::now_ms();
        self.records.unanswered(crate::records::Cdr {
            call_id: call_id.to_string(),
            started_at_ms: now,
            ended_at_ms: Some(now),
            outcome: Some(crate::records::Outcome::Abandoned),
            reason: reason.to_string(),
            ..Default::default()
        });
        tracing::info!(call_id, reason, outcome = "abandoned", "call ended");
    }

    fn enter(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(self.clone())
    }
}

/// Keeps the active-call count right however a call task ends (even by panic or abort).
struct ActiveGuard(Arc<CallServices>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call the edge has answered, with its media already flowing.
pub struct NewCall {
    /// Who calls whom, over what (`recording` is the call task's to fill).
    pub info: core::CallInfo,
    pub media: MediaHandle,
    pub media_events: crate::media::session::MediaEvents,
}

/// From the edge to the call.
#[derive(Debug)]
pub enum SignalEvent {
    /// The caller hung up (BYE), cancelled, or the signaling failed.
    Hangup { reason: String },
    /// A re-INVITE changed the media (hold, resume, new address).
    Media(MediaParams),
    /// How a cold transfer (REFER) is going: the status of the transferee's call to the
    /// target, from the NOTIFYs (RFC 3515), or the REFER's own rejection.
    Transfer { status: u16, done: bool },
    /// A keypad digit carried by signaling (SIP INFO) rather than by the media.
    Dtmf { digit: char, duration_ms: u32 },
}

/// From the call to the edge.
#[derive(Debug)]
pub enum LegCommand {
    /// End the call from our side (BYE), with a reason for the Reason header and the logs.
    Hangup { reason: String },
    /// Cold handoff: ask the caller's side to call `target` itself (REFER).
    Refer { target: String },
}
