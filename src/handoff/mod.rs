//! Handoff: what happens once triage decides a caller should reach a person.
//!
//! Everything here is sans-IO policy and data the call task acts on (the one exception,
//! [`append_callback`], is a plain blocking file append the task runs off its loop):
//! - [`HandoffConfig`]: the `[handoff]` table (warm B2BUA or cold REFER, the agent URIs, how one
//!   is chosen, ring time, and what the caller gets when nobody answers);
//! - [`AgentPool`]: which agent to ring next, round-robin or least-busy, skipping the ones
//!   already tried on this call;
//! - [`HandoffPacket`]: the caller's context (transcript, summary, intent, slots, sentiment,
//!   triage reason and evidence), as JSON for the console and as SIP headers on the agent INVITE;
//! - [`line`] and [`hold_audio_16k`]: what the caller hears meanwhile, so there is never dead air;
//! - [`CallbackRequest`] / [`append_callback`]: the durable record of the callback fallback.

mod audio;
mod callback;
mod packet;

pub use audio::{hold_audio_16k, line, LineKind};
pub use callback::{append_callback, CallbackRequest};
pub use packet::{percent_decode, percent_encode, HandoffPacket, TranscriptLine};

use serde::Deserialize;
use std::path::PathBuf;

/// How the caller is connected to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandoffMode {
    /// The gateway calls the agent itself and bridges the media (B2BUA): it keeps control of the
    /// call, can play hold audio, fall back when nobody answers, and keep transcribing.
    #[default]
    Warm,
    /// SIP REFER toward the caller's side: for trunks that do their own routing. The gateway
    /// leaves the call once the transfer succeeds.
    Cold,
}

/// How the next agent is chosen from [`HandoffConfig::agents`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentStrategy {
    #[default]
    RoundRobin,
    /// The agent with the fewest bridged calls right now (ties go round-robin).
    LeastBusy,
}

/// What the caller gets when no agent answers in time, all are busy, or none is reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Apologize, record a callback request (number and reason), say goodbye.
    #[default]
    Callback,
    /// Apologize and return the caller to the AI.
    Ai,
    /// Apologize and end the call politely.
    End,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandoffConfig {
    pub mode: HandoffMode,
    /// Agent targets: SIP URIs (`sip:` or `sips:`) of desk phones and softphones, or
    /// `console:NAME` for an agent answering in the browser on the agent console page. Empty:
    /// no handoff target; escalations go straight to the fallback.
    pub agents: Vec<String>,
    pub strategy: AgentStrategy,
    /// How long one agent may ring before the next one is tried (or the fallback runs).
    pub ring_timeout_secs: u64,
    pub fallback: Fallback,
    /// JSON Lines file the callback fallback appends to.
    pub callbacks_file: PathBuf,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        HandoffConfig {
            mode: HandoffMode::Warm,
            agents: Vec::new(),
            strategy: AgentStrategy::RoundRobin,
            ring_timeout_secs: 20,
            fallback: Fallback::Callback,
            callbacks_file: PathBuf::from("var/callbacks.jsonl"),
        }
    }
}

/// A `[handoff]` value serde accepted but the gateway cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct HandoffConfigError {
    /// Full dotted key, e.g. `handoff.agents`.
    pub key: &'static str,
    pub message: String,
}

impl HandoffConfig {
    /// Checks what serde cannot: agent URIs, the ring time, the callbacks file.
    pub fn validate(&self) -> Result<(), HandoffConfigError> {
        let err = |key, message: String| Err(HandoffConfigError { key, message });
        for (i, agent) in self.agents.iter().enumerate() {
            if let Err(why) = check_agent_uri(agent) {
                return err("handoff.agents", format!("entry {i} {agent:?}: {why}"));
            }
            if self.agents[..i].contains(agent) {
                return err("handoff.agents", format!("{agent:?} is listed twice"));
            }
        }
        // An agent phone needs a few seconds to be picked up; past five minutes the caller has
        // long given up on hold music.
        if !(5..=300).contains(&self.ring_timeout_secs) {
            return err("handoff.ring_timeout_secs", format!("{} is out of range; use 5 to 300 seconds", self.ring_timeout_secs));
        }
        if self.fallback == Fallback::Callback && self.callbacks_file.as_os_str().is_empty() {
            return err("handoff.callbacks_file", "must name a file when fallback = \"callback\"".into());
        }
        Ok(())
    }
}

/// Where an agent answers: which edge places the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentTarget<'a> {
    /// A SIP URI: the SIP edge sends an INVITE.
    Sip(&'a str),
    /// `console:NAME`: an agent signed in on the agent console page, answering over WebRTC.
    Console(&'a str),
    /// `registered:NAME`: the phone that agent NAME (`[sip.auth] agents`) registered with this
    /// gateway; the SIP edge sends the INVITE to its contact.
    Registered(&'a str),
}

/// Scheme of console agents in `[handoff] agents`.
pub const CONSOLE_SCHEME: &str = "console:";
/// Scheme of agents whose phones REGISTER here, in `[handoff] agents`.
pub const REGISTERED_SCHEME: &str = "registered:";

impl<'a> AgentTarget<'a> {
    /// Which edge a configured target belongs to (validation happens in [`HandoffConfig::validate`]).
    pub fn of(target: &'a str) -> Self {
        if let Some(name) = target.strip_prefix(CONSOLE_SCHEME) {
            AgentTarget::Console(name)
        } else if let Some(name) = target.strip_prefix(REGISTERED_SCHEME) {
            AgentTarget::Registered(name)
        } else {
            AgentTarget::Sip(target)
        }
    }
}

/// Whether `name` can be a console or registered agent's name: it appears in URLs and logs, so
/// it is kept to letters, digits, `.`, `_` and `-`, at most 64 of them.
pub fn valid_agent_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A usable agent target: a `sip:`/`sips:` URI with a host, `console:NAME` or `registered:NAME`.
fn check_agent_uri(agent: &str) -> Result<(), String> {
    use rsipstack::sip::uri::Scheme;
    if let AgentTarget::Console(name) | AgentTarget::Registered(name) = AgentTarget::of(agent) {
        if !valid_agent_name(name) {
            return Err("an agent's name is 1 to 64 letters, digits, '.', '_' or '-' (e.g. \"console:alice\", \"registered:bob\")".into());
        }
        return Ok(());
    }
    let uri = rsipstack::sip::Uri::try_from(agent).map_err(|e| format!("not a SIP URI ({e})"))?;
    match uri.scheme {
        Some(Scheme::Sip) | Some(Scheme::Sips) => {}
        _ => return Err("the scheme must be sip:, sips:, console: or registered: (e.g. \"sip:agent@10.0.0.7:5060\", \"console:alice\")".into()),
    }
    if uri.host().to_string().trim().is_empty() {
        return Err("the host is empty".into());
    }
    Ok(())
}

/// Which agent to ring. Sans-IO: the call wiring reports bridged calls with [`AgentPool::busy`]
/// and [`AgentPool::free`]; the pool never looks at the network.
#[derive(Debug, Clone)]
pub struct AgentPool {
    agents: Vec<String>,
    /// Bridged calls per agent, same index as `agents`.
    load: Vec<u32>,
    strategy: AgentStrategy,
    /// Index to start the next search from, so consecutive calls spread over the agents.
    cursor: usize,
    /// Bridged calls per agent on the other gateways sharing the records database (as of
    /// their last heartbeat), so least-busy holds across the cluster.
    elsewhere: std::collections::HashMap<String, u32>,
}

impl AgentPool {
    /// Duplicate URIs are dropped (the first keeps its place), so no agent gets a double share.
    pub fn new(agents: Vec<String>, strategy: AgentStrategy) -> Self {
        let mut unique: Vec<String> = Vec::with_capacity(agents.len());
        for a in agents {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        let load = vec![0; unique.len()];
        AgentPool { agents: unique, load, strategy, cursor: 0, elsewhere: Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The next agent to ring, skipping `exclude` (the agents already tried on this call).
    /// `None`: nobody is left, run the fallback.
    pub fn pick(&mut self, exclude: &[String]) -> Option<String> {
        let n = self.agents.len();
        // Candidates in round-robin order from the cursor; least-busy takes the least loaded
        // of them, and the cursor order breaks ties so idle agents share the work.
        let order = (0..n).map(|k| (self.cursor + k) % n).filter(|&i| !exclude.contains(&self.agents[i]));
        let chosen = match self.strategy {
            AgentStrategy::RoundRobin => order.into_iter().next(),
            AgentStrategy::LeastBusy => order.min_by_key(|&i| self.load[i] + self.elsewhere.get(&self.agents[i]).copied().unwrap_or(0)),
        }?;
        self.cursor = (chosen + 1) % n;
        Some(self.agents[chosen].clone())
    }

    /// An agent took a call (bridged). Unknown agents are ignored.
    pub fn busy(&mut self, agent: &str) {
        if let Some(i) = self.index(agent) {
            self.load[i] = self.load[i].saturating_add(1);
        }
    }

    /// A bridged call with this agent ended.
    pub fn free(&mut self, agent: &str) {
        if let Some(i) = self.index(agent) {
            self.load[i] = self.load[i].saturating_sub(1);
        }
    }

    /// Bridged calls this agent has now, on this gateway.
    pub fn load(&self, agent: &str) -> u32 {
        self.index(agent).map_or(0, |i| self.load[i])
    }

    /// This gateway's bridged calls per agent (the agents with any), for the heartbeat.
    pub fn loads(&self) -> Vec<(String, u32)> {
        self.agents.iter().zip(&self.load).filter(|(_, n)| **n > 0).map(|(a, n)| (a.clone(), *n)).collect()
    }

    /// The other gateways' bridged calls per agent (replaces the last figures).
    pub fn set_elsewhere(&mut self, loads: std::collections::HashMap<String, u32>) {
        self.elsewhere = loads;
    }

    fn index(&self, agent: &str) -> Option<usize> {
        self.agents.iter().position(|a| a == agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(strategy: AgentStrategy) -> AgentPool {
        AgentPool::new(vec!["sip:a@h".into(), "sip:b@h".into(), "sip:c@h".into()], strategy)
    }

    #[test]
    fn round_robin_cycles_through_every_agent() {
        let mut p = pool(AgentStrategy::RoundRobin);
        let picks: Vec<_> = (0..4).map(|_| p.pick(&[]).unwrap()).collect();
        assert_eq!(picks, ["sip:a@h", "sip:b@h", "sip:c@h", "sip:a@h"]);
    }

    #[test]
    fn round_robin_skips_agents_already_tried_and_runs_out() {
        let mut p = pool(AgentStrategy::RoundRobin);
        let mut tried = Vec::new();
        while let Some(a) = p.pick(&tried) {
            assert!(!tried.contains(&a), "{a} rung twice on one call");
            tried.push(a);
        }
        assert_eq!(tried.len(), 3);
        assert_eq!(p.pick(&tried), None);
        assert_eq!(AgentPool::new(vec![], AgentStrategy::RoundRobin).pick(&[]), None);
    }

    #[test]
    fn least_busy_picks_the_least_loaded_and_skips_excluded() {
        let mut p = pool(AgentStrategy::LeastBusy);
        p.busy("sip:a@h");
        p.busy("sip:a@h");
        p.busy("sip:b@h");
        assert_eq!(p.pick(&[]).as_deref(), Some("sip:c@h"));
        assert_eq!(p.pick(&["sip:c@h".into()]).as_deref(), Some("sip:b@h"));
        p.free("sip:a@h");
        p.free("sip:a@h");
        p.busy("sip:c@h");
        assert_eq!(p.pick(&[]).as_deref(), Some("sip:a@h"));
        assert_eq!(p.load("sip:b@h"), 1);
        p.free("sip:nobody@h"); // ignored, no panic
    }

    #[test]
    fn least_busy_counts_the_calls_other_gateways_gave_each_agent() {
        let mut p = pool(AgentStrategy::LeastBusy);
        p.busy("sip:b@h");
        p.set_elsewhere([("sip:a@h".to_string(), 2), ("sip:c@h".to_string(), 1)].into());
        // a: 0 here + 2 elsewhere, b: 1 + 0, c: 0 + 1: b and c tie, the cursor order picks b.
        assert_eq!(p.pick(&[]).as_deref(), Some("sip:b@h"));
        assert_eq!(p.pick(&["sip:b@h".to_string()]).as_deref(), Some("sip:c@h"));
        assert_eq!(p.loads(), [("sip:b@h".to_string(), 1)]);
    }

    #[test]
    fn least_busy_spreads_idle_agents() {
        let mut p = pool(AgentStrategy::LeastBusy);
        let picks: Vec<_> = (0..3).map(|_| p.pick(&[]).unwrap()).collect();
        assert_eq!(picks, ["sip:a@h", "sip:b@h", "sip:c@h"]);
    }

    #[test]
    fn config_defaults_validate_and_strings_parse() {
        assert!(HandoffConfig::default().validate().is_ok());
        let c: HandoffConfig = toml::from_str(
            "mode = \"cold\"\nstrategy = \"least-busy\"\nfallback = \"ai\"\nagents = [\"sips:desk@example.com\", \"sip:7001@10.0.0.7:5070;transport=tcp\"]\n",
        )
        .unwrap();
        assert_eq!((c.mode, c.strategy, c.fallback), (HandoffMode::Cold, AgentStrategy::LeastBusy, Fallback::Ai));
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        assert!(toml::from_str::<HandoffConfig>("strategy = \"random\"").unwrap_err().to_string().contains("random"));
        assert!(toml::from_str::<HandoffConfig>("agent = []").unwrap_err().to_string().contains("agent"));
    }

    #[test]
    fn console_and_registered_agents_are_told_apart_from_sip_uris() {
        assert_eq!(AgentTarget::of("console:alice"), AgentTarget::Console("alice"));
        assert_eq!(AgentTarget::of("registered:bob"), AgentTarget::Registered("bob"));
        assert_eq!(AgentTarget::of("sip:7001@10.0.0.7"), AgentTarget::Sip("sip:7001@10.0.0.7"));
        let agents = ["console:alice", "sip:7001@10.0.0.7", "console:desk-2.b_c", "registered:bob"];
        let c = HandoffConfig { agents: agents.iter().map(|a| a.to_string()).collect(), ..Default::default() };
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        assert!(!valid_agent_name(&"x".repeat(65)));
        let c = HandoffConfig { agents: vec!["registered:b b".into()], ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "handoff.agents");
    }

    #[test]
    fn bad_values_name_the_key() {
        for bad in ["http://agent.example.com", "agent@10.0.0.7", "tel:+15551234", "", "console:", "console:al ice", "console:a/b"] {
            let c = HandoffConfig { agents: vec![bad.into()], ..Default::default() };
            let e = c.validate().unwrap_err();
            assert_eq!(e.key, "handoff.agents", "{bad:?}: {e}");
            assert!(e.to_string().contains("handoff.agents"));
        }
        let c = HandoffConfig { agents: vec!["sip:a@h".into(), "sip:a@h".into()], ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "handoff.agents");
        let c = HandoffConfig { ring_timeout_secs: 0, ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "handoff.ring_timeout_secs");
        let c = HandoffConfig { callbacks_file: PathBuf::new(), ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "handoff.callbacks_file");
    }
}
