//! What the agent console knows about calls, built only from [`CallEvent`]s (sans-IO: no
//! clock, no sockets; every time comes from the events themselves).
//!
//! The console must show a call's whole story even to an agent who opens the page after the
//! handoff, so the state keeps each call's transcript as it was said, its handoff packet and
//! how it ended. It is bounded: a gateway runs for months, and ended calls are only kept as
//! "recent" history.

use crate::call::events::CallEvent;
use crate::handoff::HandoffPacket;
use serde::Serialize;
use std::collections::HashMap;

/// Calls kept (live and recently ended). Beyond it the oldest ended call is forgotten first.
pub const MAX_CALLS: usize = 200;
/// Transcript lines kept per call: a 30-minute call at a turn every few seconds fits; a call
/// stuck in a loop does not grow the gateway's memory without end.
pub const MAX_LINES_PER_CALL: usize = 1000;

/// Where a call stands, as an agent thinks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStage {
    /// The AI is talking with the caller.
    Ai,
    /// Triage decided to hand over; an agent is being rung.
    HandingOver,
    /// An agent answered and is talking with the caller.
    Bridged,
    Ended,
}

/// One line of the live transcript, either side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveLine {
    /// "caller", "bot" or "agent".
    pub speaker: String,
    pub text: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub channel: String,
    pub stage: CallStage,
    /// The language the call is going on in, as last reported ("en", "zh"); empty until known.
    pub language: String,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
    /// The agent's URI once bridged.
    pub agent: Option<String>,
    pub handoff: Option<HandoffPacket>,
    pub transcript: Vec<LiveLine>,
    /// Lines dropped from the front of `transcript` to stay within [`MAX_LINES_PER_CALL`].
    pub transcript_dropped: usize,
    pub end_reason: Option<String>,
    pub outcome: Option<String>,
    /// Order of first sight, to keep the list stable and evict the oldest.
    #[serde(skip)]
    seq: u64,
}

impl CallView {
    fn new(call_id: &str, at_ms: u64, seq: u64) -> Self {
        CallView {
            call_id: call_id.to_string(),
            caller: String::new(),
            callee: String::new(),
            channel: String::new(),
            stage: CallStage::Ai,
            language: String::new(),
            started_at_ms: at_ms,
            updated_at_ms: at_ms,
            agent: None,
            handoff: None,
            transcript: Vec::new(),
            transcript_dropped: 0,
            end_reason: None,
            outcome: None,
            seq,
        }
    }

    pub fn is_live(&self) -> bool {
        self.stage != CallStage::Ended
    }
}

/// Why a call has no handoff packet to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoHandoff {
    #[error("no call {0} among the live and the last {MAX_CALLS} calls")]
    UnknownCall(String),
    #[error("call {0} has not been handed over to a person: the AI handled it")]
    NotHandedOver(String),
}

#[derive(Debug, Default)]
pub struct ConsoleState {
    calls: HashMap<String, CallView>,
    next_seq: u64,
    /// Events a lagging subscription missed: the views may be incomplete, and the page says so.
    missed_events: u64,
}

impl ConsoleState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event into the views. Events for a call never seen starting (the console
    /// subscribed late, or missed events) still create it, so nothing handed over is invisible.
    pub fn apply(&mut self, event: &CallEvent) {
        let at = event_time(event);
        let view = self.view_mut(event.call_id(), at);
        view.updated_at_ms = view.updated_at_ms.max(at);
        match event {
            CallEvent::Started { caller, callee, channel, at_ms, .. } => {
                view.caller = caller.clone();
                view.callee = callee.clone();
                view.channel = channel.clone();
                view.started_at_ms = *at_ms;
            }
            CallEvent::Said { speaker, text, language, at_ms, .. } => {
                if !language.is_empty() {
                    view.language = language.clone();
                }
                view.transcript.push(LiveLine { speaker: speaker.clone(), text: text.clone(), at_ms: *at_ms });
                if view.transcript.len() > MAX_LINES_PER_CALL {
                    let excess = view.transcript.len() - MAX_LINES_PER_CALL;
                    view.transcript.drain(..excess);
                    view.transcript_dropped += excess;
                }
            }
            CallEvent::Escalated { packet, .. } => {
                // The packet knows the caller even when the start was missed.
                if view.caller.is_empty() {
                    view.caller = packet.caller.clone();
                    view.callee = packet.callee.clone();
                    view.channel = packet.channel.clone();
                }
                if view.language.is_empty() {
                    view.language = packet.language.clone();
                }
                if view.stage == CallStage::Ai {
                    view.stage = CallStage::HandingOver;
                }
                view.handoff = Some((**packet).clone());
            }
            CallEvent::Bridged { agent, .. } => {
                if view.stage != CallStage::Ended {
                    view.stage = CallStage::Bridged;
                }
                view.agent = Some(agent.clone());
            }
            CallEvent::Ended { reason, outcome, .. } => {
                view.stage = CallStage::Ended;
                view.end_reason = Some(reason.clone());
                view.outcome = Some(outcome.clone());
            }
            // The console's stages follow the handoff; turns and timings are the Ops API's.
            CallEvent::State { .. }
            | CallEvent::Turn { .. }
            | CallEvent::NoInput { .. }
            | CallEvent::AgentDialed { .. }
            | CallEvent::BrainFailed { .. }
            | CallEvent::Recognized { .. } => {}
        }
        self.evict();
    }

    /// A subscription fell behind and `missed` events were lost.
    pub fn note_missed(&mut self, missed: u64) {
        self.missed_events += missed;
    }

    pub fn missed_events(&self) -> u64 {
        self.missed_events
    }

    /// Every kept call, newest first.
    pub fn calls(&self) -> Vec<&CallView> {
        let mut v: Vec<&CallView> = self.calls.values().collect();
        v.sort_by(|a, b| b.seq.cmp(&a.seq));
        v
    }

    pub fn call(&self, call_id: &str) -> Option<&CallView> {
        self.calls.get(call_id)
    }

    pub fn handoff(&self, call_id: &str) -> Result<&HandoffPacket, NoHandoff> {
        let view = self.calls.get(call_id).ok_or_else(|| NoHandoff::UnknownCall(call_id.to_string()))?;
        view.handoff.as_ref().ok_or_else(|| NoHandoff::NotHandedOver(call_id.to_string()))
    }

    fn view_mut(&mut self, call_id: &str, at_ms: u64) -> &mut CallView {
        if !self.calls.contains_key(call_id) {
            self.next_seq += 1;
            self.calls.insert(call_id.to_string(), CallView::new(call_id, at_ms, self.next_seq));
        }
        self.calls.get_mut(call_id).expect("inserted above")
    }

    /// Forgets the oldest ended calls first; live calls go only if more than [`MAX_CALLS`] are
    /// live at once (their end events were missed), oldest first.
    fn evict(&mut self) {
        while self.calls.len() > MAX_CALLS {
            let victim = self
                .calls
                .values()
                .filter(|c| !c.is_live())
                .min_by_key(|c| c.seq)
                .or_else(|| self.calls.values().min_by_key(|c| c.seq))
                .map(|c| c.call_id.clone());
            match victim {
                Some(id) => {
                    self.calls.remove(&id);
                }
                None => break,
            }
        }
    }
}

fn event_time(event: &CallEvent) -> u64 {
    event.at_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(id: &str, at: u64) -> CallEvent {
        CallEvent::Started { call_id: id.into(), caller: "+15550100".into(), callee: "ivr".into(), channel: "sip".into(), at_ms: at, setup: None }
    }

    fn said(id: &str, speaker: &str, text: &str, at: u64) -> CallEvent {
        CallEvent::Said { call_id: id.into(), speaker: speaker.into(), text: text.into(), language: "en".into(), turn: 1, at_ms: at }
    }

    fn escalated(id: &str, at: u64) -> CallEvent {
        let packet = HandoffPacket {
            call_id: id.into(),
            caller: "+15550100".into(),
            callee: "ivr".into(),
            language: "en".into(),
            channel: "sip".into(),
            reason: "explicit".into(),
            code: "explicit-request".into(),
            priority: "normal".into(),
            ..HandoffPacket::default()
        };
        CallEvent::Escalated { call_id: id.into(), packet: Box::new(packet), at_ms: at, decision: None }
    }

    fn ended(id: &str, at: u64) -> CallEvent {
        CallEvent::Ended { call_id: id.into(), reason: "caller-bye".into(), outcome: "escalated".into(), at_ms: at, summary: None }
    }

    #[test]
    fn a_handed_over_call_shows_its_packet_transcript_agent_and_end() {
        let mut s = ConsoleState::new();
        s.apply(&started("c1", 1000));
        s.apply(&said("c1", "caller", "I want to speak to a real person.", 2000));
        s.apply(&said("c1", "bot", "Connecting you now.", 2500));
        assert_eq!(s.call("c1").unwrap().stage, CallStage::Ai);
        assert_eq!(s.handoff("c1").unwrap_err(), NoHandoff::NotHandedOver("c1".into()));

        s.apply(&escalated("c1", 2600));
        assert_eq!(s.call("c1").unwrap().stage, CallStage::HandingOver);
        assert_eq!(s.handoff("c1").unwrap().code, "explicit-request");

        s.apply(&CallEvent::Bridged { call_id: "c1".into(), agent: "sip:agent@10.0.0.7".into(), at_ms: 5000 });
        s.apply(&said("c1", "agent", "Hi, this is Sam, how can I help?", 6000));
        let v = s.call("c1").unwrap();
        assert_eq!(v.stage, CallStage::Bridged);
        assert_eq!(v.agent.as_deref(), Some("sip:agent@10.0.0.7"));
        let speakers: Vec<&str> = v.transcript.iter().map(|l| l.speaker.as_str()).collect();
        assert_eq!(speakers, ["caller", "bot", "agent"]);
        assert_eq!(v.caller, "+15550100");
        assert_eq!(v.updated_at_ms, 6000);

        s.apply(&ended("c1", 9000));
        let v = s.call("c1").unwrap();
        assert_eq!(v.stage, CallStage::Ended);
        assert_eq!(v.outcome.as_deref(), Some("escalated"));
        // The packet stays fetchable after the call, for the agent's wrap-up.
        assert!(s.handoff("c1").is_ok());
    }

    #[test]
    fn a_call_first_seen_at_its_escalation_still_shows_who_called() {
        let mut s = ConsoleState::new();
        s.apply(&escalated("late", 4000));
        let v = s.call("late").unwrap();
        assert_eq!(v.caller, "+15550100");
        assert_eq!(v.language, "en");
        assert_eq!(v.stage, CallStage::HandingOver);
        assert_eq!(s.handoff("nope").unwrap_err(), NoHandoff::UnknownCall("nope".into()));
    }

    #[test]
    fn a_late_bridge_does_not_reopen_an_ended_call() {
        let mut s = ConsoleState::new();
        s.apply(&started("c", 1));
        s.apply(&ended("c", 5));
        s.apply(&CallEvent::Bridged { call_id: "c".into(), agent: "sip:a@h".into(), at_ms: 4 });
        assert_eq!(s.call("c").unwrap().stage, CallStage::Ended);
        assert_eq!(s.call("c").unwrap().updated_at_ms, 5);
    }

    #[test]
    fn the_list_is_newest_first_and_bounded_forgetting_ended_calls_before_live_ones() {
        let mut s = ConsoleState::new();
        s.apply(&started("live-oldest", 0));
        for i in 0..MAX_CALLS + 10 {
            let id = format!("c{i}");
            s.apply(&started(&id, i as u64 + 1));
            s.apply(&ended(&id, i as u64 + 2));
        }
        let calls = s.calls();
        assert_eq!(calls.len(), MAX_CALLS);
        assert_eq!(calls[0].call_id, format!("c{}", MAX_CALLS + 9));
        // The oldest call is still live: the ended ones after it went first.
        assert!(s.call("live-oldest").is_some());
        assert!(s.call("c0").is_none());
    }

    #[test]
    fn a_long_transcript_keeps_its_latest_lines_and_counts_the_dropped() {
        let mut s = ConsoleState::new();
        for i in 0..MAX_LINES_PER_CALL + 5 {
            s.apply(&said("c", "caller", &format!("line {i}"), i as u64));
        }
        let v = s.call("c").unwrap();
        assert_eq!(v.transcript.len(), MAX_LINES_PER_CALL);
        assert_eq!(v.transcript_dropped, 5);
        assert_eq!(v.transcript[0].text, "line 5");
        s.note_missed(3);
        assert_eq!(s.missed_events(), 3);
    }

    #[test]
    fn the_json_names_stage_packet_and_lines_as_the_page_reads_them() {
        let mut s = ConsoleState::new();
        s.apply(&started("c1", 1));
        s.apply(&escalated("c1", 2));
        s.apply(&said("c1", "caller", "hello", 3));
        let json = serde_json::to_value(s.call("c1").unwrap()).unwrap();
        assert_eq!(json["stage"], "handing_over");
        assert_eq!(json["handoff"]["code"], "explicit-request");
        assert_eq!(json["transcript"][0]["speaker"], "caller");
        assert!(json.get("seq").is_none());
    }
}
