//! From the gateway's own types to the Ops contract's messages, and the request filters
//! checked on the way in (bad values get INVALID_ARGUMENT naming the field).

use crate::call::events::CallEvent;
use crate::call::registry::{CallSnapshot, CallState, LiveLine};
use crate::proto::ops as pb;
use tonic::Status;

/// Event types a watcher may ask for: the `type` of [`CallEvent`]'s JSON form.
pub const EVENT_TYPES: [&str; 11] = crate::call::events::EVENT_KINDS;

pub fn state(s: CallState) -> pb::CallState {
    match s {
        CallState::Ringing => pb::CallState::Ringing,
        CallState::Answered => pb::CallState::Answered,
        CallState::Ai => pb::CallState::Ai,
        CallState::HandingOver => pb::CallState::HandingOver,
        CallState::Bridged => pb::CallState::Bridged,
        CallState::Ended => pb::CallState::Ended,
    }
}

/// `scope`: "" or "node" for this gateway, "cluster" for every gateway sharing its records.
fn parse_scope(scope: &str) -> Result<bool, Status> {
    match scope.trim() {
        "" | "node" => Ok(false),
        "cluster" => Ok(true),
        s => Err(Status::invalid_argument(format!("scope: {s:?}: use node (this gateway) or cluster (every gateway sharing its records)"))),
    }
}

/// ListCalls' filters, parsed.
pub struct CallFilter {
    /// None: any state. `live` is every state but ended.
    pub states: Option<Vec<CallState>>,
    pub channel: Option<String>,
    pub limit: usize,
    /// Every gateway sharing the records database, not only this one.
    pub cluster: bool,
}

impl CallFilter {
    pub fn parse(req: &pb::ListCallsRequest) -> Result<CallFilter, Status> {
        let states = match req.state.trim() {
            "" => None,
            "live" => Some(CallState::ALL.into_iter().filter(|s| *s != CallState::Ended).collect()),
            s => Some(vec![CallState::parse(s).ok_or_else(|| {
                let names: Vec<&str> = CallState::ALL.iter().map(|s| s.as_str()).collect();
                Status::invalid_argument(format!("state: {s:?} is not a call state; use live, {}", names.join(", ")))
            })?]),
        };
        let channel = match req.channel.trim() {
            "" => None,
            c @ ("sip" | "webrtc") => Some(c.to_string()),
            c => return Err(Status::invalid_argument(format!("channel: {c:?} is not a channel; use sip or webrtc"))),
        };
        let limit = match req.limit {
            0 => 100,
            n if n > 1000 => return Err(Status::invalid_argument(format!("limit: {n} is over the maximum of 1000"))),
            n => n as usize,
        };
        Ok(CallFilter { states, channel, limit, cluster: parse_scope(&req.scope)? })
    }

    pub fn matches(&self, state: CallState, channel: &str) -> bool {
        self.states.as_ref().is_none_or(|s| s.contains(&state)) && self.channel.as_deref().is_none_or(|c| c == channel)
    }
}

pub fn summary(s: &CallSnapshot) -> pb::CallSummary {
    pb::CallSummary {
        call_id: s.identity.call_id.clone(),
        state: state(s.state) as i32,
        channel: s.identity.channel.clone(),
        caller: s.identity.caller.clone(),
        callee: s.identity.callee.clone(),
        started_at_ms: s.started_at_ms,
        ended_at_ms: s.ended_at_ms.unwrap_or(0),
        outcome: s.outcome.clone().unwrap_or_default(),
        escalation: s.escalation().unwrap_or_default().to_string(),
        turns: s.turns.len() as u32,
        // The service names its own node.
        node: String::new(),
    }
}

pub fn record(s: &CallSnapshot) -> pb::CallRecord {
    let ms = |v: Option<u64>| v.unwrap_or(0) as u32;
    pb::CallRecord {
        summary: Some(summary(s)),
        end_reason: s.end_reason.clone().unwrap_or_default(),
        codec: s.identity.codec.clone(),
        timeline: s.timeline.iter().map(|(st, at)| pb::StateChange { state: state(*st) as i32, at_ms: *at }).collect(),
        turns: s
            .turns
            .iter()
            .map(|t| pb::Turn {
                number: t.number,
                heard: t.heard.clone(),
                reply: t.reply.clone(),
                language: t.language.clone(),
                confidence: t.confidence,
                speech_ms: t.speech_ms,
                transcript_ms: ms(t.transcript_ms),
                brain_ms: ms(t.brain_ms),
                tts_ms: ms(t.tts_ms),
                first_rtp_ms: ms(t.first_rtp_ms),
            })
            .collect(),
        decisions: s
            .decisions
            .iter()
            .map(|d| pb::TriageDecision {
                category: d.category.as_str().into(),
                code: d.code.clone(),
                priority: d.priority.as_str().into(),
                turn: d.turn,
                evidence: d.evidence.iter().map(|e| pb::Evidence { turn: e.turn, trigger: e.trigger.clone(), text: e.text.clone() }).collect(),
            })
            .collect(),
        transcript: s.transcript.iter().map(|l| pb::TranscriptLine { turn: l.turn, speaker: l.speaker.clone(), text: l.text.clone() }).collect(),
        handoff_packet_json: s.handoff.as_ref().map(|p| p.to_json()).unwrap_or_default(),
    }
}

/// A finished call as the record store keeps it.
pub fn stored_summary(s: &crate::records::CallSummary) -> pb::CallSummary {
    pb::CallSummary {
        call_id: s.cdr.call_id.clone(),
        // Not ended: live on the node that took it (or its record not yet finished).
        state: if s.cdr.outcome.is_some() { pb::CallState::Ended } else { pb::CallState::Answered } as i32,
        channel: s.cdr.channel.clone(),
        caller: s.cdr.caller.clone(),
        callee: s.cdr.callee.clone(),
        started_at_ms: s.cdr.started_at_ms,
        ended_at_ms: s.cdr.ended_at_ms.unwrap_or(0),
        outcome: s.cdr.outcome.map(|o| o.as_str().to_string()).unwrap_or_default(),
        escalation: s.escalation.clone().unwrap_or_default(),
        turns: s.turns,
        node: s.cdr.node.clone(),
    }
}

/// A stored record in the contract's shape. The store keeps turns rather than a transcript:
/// the transcript is rebuilt from them (caller's words, then the reply).
pub fn stored_record(r: &crate::records::CallRecord) -> pb::CallRecord {
    let summary = crate::records::CallSummary {
        cdr: r.cdr.clone(),
        turns: r.turns.len() as u32,
        escalation: r.decisions.first().map(|d| d.code.clone()),
    };
    let snapshot = CallSnapshot {
        identity: crate::call::registry::CallIdentity {
            call_id: r.cdr.call_id.clone(),
            channel: r.cdr.channel.clone(),
            caller: r.cdr.caller.clone(),
            callee: r.cdr.callee.clone(),
            codec: r.cdr.codec.clone(),
        },
        state: CallState::Ended,
        language: r.turns.iter().rev().map(|t| t.language.clone()).find(|l| !l.is_empty()).unwrap_or_default(),
        started_at_ms: r.cdr.started_at_ms,
        updated_at_ms: r.cdr.ended_at_ms.unwrap_or(r.cdr.started_at_ms),
        ended_at_ms: r.cdr.ended_at_ms,
        timeline: r.timeline.iter().filter_map(|c| Some((CallState::parse(&c.state)?, c.at_ms))).collect(),
        turns: r.turns.clone(),
        transcript: r
            .turns
            .iter()
            .flat_map(|t| {
                // The store keeps no time per line.
                let line = |speaker: &str, text: &str| LiveLine { turn: t.number, speaker: speaker.into(), text: text.into(), at_ms: 0 };
                [line("caller", &t.heard), line("bot", &t.reply)].into_iter().filter(|l| !l.text.is_empty())
            })
            .collect(),
        transcript_dropped: 0,
        decisions: Vec::new(),
        // The store keeps the packet as it was recorded (masked): it is passed on as is.
        handoff: None,
        agent: None,
        outcome: r.cdr.outcome.map(|o| o.as_str().to_string()),
        end_reason: Some(r.cdr.reason.clone()),
    };
    let mut record = record(&snapshot);
    record.handoff_packet_json = r.handoff_packet.as_ref().map(|p| p.to_string()).unwrap_or_default();
    record.summary = Some(stored_summary(&summary));
    record.decisions = r
        .decisions
        .iter()
        .map(|d| pb::TriageDecision {
            category: d.category.clone(),
            code: d.code.clone(),
            priority: d.priority.clone(),
            turn: d.turn,
            evidence: serde_json::from_value::<Vec<StoredEvidence>>(d.evidence.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|e| pb::Evidence { turn: e.turn, trigger: e.trigger, text: e.text })
                .collect(),
        })
        .collect();
    record
}

/// `crate::triage::Evidence` as the store keeps it (JSON).
#[derive(serde::Deserialize)]
struct StoredEvidence {
    #[serde(default)]
    turn: u32,
    #[serde(default)]
    trigger: String,
    #[serde(default)]
    text: String,
}

/// WatchEvents' filter, parsed.
pub struct EventFilter {
    pub call_id: Option<String>,
    pub types: Vec<String>,
    /// Every gateway sharing the records database, not only this one.
    pub cluster: bool,
}

impl EventFilter {
    pub fn parse(req: &pb::WatchEventsRequest) -> Result<EventFilter, Status> {
        if let Some(t) = req.types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
            return Err(Status::invalid_argument(format!("types: {t:?} is not an event type; use {}", EVENT_TYPES.join(", "))));
        }
        let call_id = Some(req.call_id.trim().to_string()).filter(|c| !c.is_empty());
        Ok(EventFilter { call_id, types: req.types.clone(), cluster: parse_scope(&req.scope)? })
    }

    fn wants(&self, call_id: &str, kind: &str) -> bool {
        self.call_id.as_deref().is_none_or(|c| c == call_id) && (self.types.is_empty() || self.types.iter().any(|t| t == kind))
    }

    /// Another node's event, if the watcher wants it.
    pub fn pass_relayed(&self, event: &crate::records::relay::RelayedEvent) -> Option<pb::CallEvent> {
        self.wants(&event.call_id, &event.kind).then(|| pb::CallEvent {
            call_id: event.call_id.clone(),
            r#type: event.kind.clone(),
            at_ms: event.at_ms,
            json: event.json.clone(),
            node: event.node.clone(),
        })
    }

    /// This node's event as the contract sends it (`node`: this node's name), if the watcher
    /// wants it.
    pub fn pass(&self, event: &CallEvent, node: &str) -> Option<pb::CallEvent> {
        if !self.wants(event.call_id(), event.kind()) {
            return None;
        }
        Some(pb::CallEvent {
            call_id: event.call_id().to_string(),
            at_ms: event.at_ms(),
            r#type: event.kind().to_string(),
            json: serde_json::to_string(event).ok()?,
            node: node.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_name_the_field() {
        let req = pb::ListCallsRequest { state: "flying".into(), ..Default::default() };
        let err = CallFilter::parse(&req).err().unwrap();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with("state:"), "{}", err.message());
        let req = pb::ListCallsRequest { channel: "fax".into(), ..Default::default() };
        assert!(CallFilter::parse(&req).err().unwrap().message().starts_with("channel:"));
        let req = pb::ListCallsRequest { scope: "galaxy".into(), ..Default::default() };
        assert!(CallFilter::parse(&req).err().unwrap().message().starts_with("scope:"));
        let req = pb::WatchEventsRequest { types: vec!["ended".into(), "exploded".into()], ..Default::default() };
        assert!(EventFilter::parse(&req).err().unwrap().message().starts_with("types:"));
    }

    #[test]
    fn filters_select_by_state_channel_call_and_type() {
        let f = CallFilter::parse(&pb::ListCallsRequest { state: "live".into(), channel: "sip".into(), ..Default::default() }).unwrap();
        assert!(f.matches(CallState::Bridged, "sip"));
        assert!(!f.matches(CallState::Ended, "sip"));
        assert!(!f.matches(CallState::Ai, "webrtc"));
        let f = EventFilter::parse(&pb::WatchEventsRequest { call_id: "a".into(), types: vec!["ended".into()], ..Default::default() }).unwrap();
        let ended = |id: &str| CallEvent::Ended { call_id: id.into(), reason: "r".into(), outcome: "contained".into(), at_ms: 5, summary: None };
        let ev = f.pass(&ended("a"), "gw-a").expect("passes");
        assert_eq!((ev.r#type.as_str(), ev.at_ms), ("ended", 5));
        assert!(f.pass(&ended("b"), "gw-a").is_none());
        let started = CallEvent::Started { call_id: "a".into(), caller: String::new(), callee: String::new(), channel: "sip".into(), at_ms: 1, setup: None };
        assert!(f.pass(&started, "gw-a").is_none());
    }
}
