//! The core's side of a warm handoff: from the triage decision to the bridged agent, or to the
//! fallback when no agent can take the call.
//!
//! Escalated → bridging line → hold audio while the agent's phone rings (INVITE with the
//! context headers) → agent answers → media bridged both ways, the AI silent but still
//! transcribing both sides; or no agent → the configured fallback. Never dead air.

use super::{CallCore, Effect, Side, Timer, RING_MARGIN};
use crate::call::events::{now_ms, CallEvent};
use crate::call::listener::{Heard, Listener};
use crate::call::registry::CallState;
use crate::call::{AgentDial, LegCommand};
use crate::handoff::{line, CallbackRequest, Fallback, HandoffMode, HandoffPacket, LineKind};
use crate::media::session::FRAME_16K;
use crate::proto::dialog::{caller_event, EscalationDeclined};
use crate::triage::{Decision, Escalation};
use std::time::{Duration, Instant};

/// Label of queued hold audio, to recognise its playout events.
pub const HOLD: &str = "(hold audio)";
/// How long the callback or goodbye line may take before the call ends anyway.
const FALLBACK_GRACE: Duration = Duration::from_secs(30);

pub(super) enum Handoff {
    Idle,
    Ringing { agent: String, tried: Vec<String>, decided_at: Instant, headers: Vec<(String, String)>, attempt: u32 },
    Bridged { agent: String },
    /// Cold handoff: the caller's side was asked (REFER) to call the agent itself.
    Transferring { agent: String, decided_at: Instant },
    /// The fallback ran (or the call ended); no other handoff follows.
    Over,
}

impl Handoff {
    pub(super) fn is_idle(&self) -> bool {
        matches!(self, Handoff::Idle | Handoff::Over)
    }
}

/// How one call to an agent went, as the driver reports it.
#[derive(Debug)]
pub enum DialResult {
    Answered { attempt: u32, codec: String },
    /// `status` is the SIP final response (486, 603, ...) when one came; none when the agent
    /// never answered in time or could not be reached.
    Failed { attempt: u32, status: Option<u16>, reason: String },
}

impl DialResult {
    fn attempt(&self) -> u32 {
        match self {
            DialResult::Answered { attempt, .. } | DialResult::Failed { attempt, .. } => *attempt,
        }
    }

    fn metric(&self) -> String {
        match self {
            DialResult::Answered { .. } => "answered".into(),
            DialResult::Failed { status: Some(status), .. } => status.to_string(),
            DialResult::Failed { status: None, .. } => "none".into(),
        }
    }
}

impl CallCore {
    pub(super) fn on_triage(&mut self, decision: Decision, brain_announced: bool, now: Instant) {
        match decision {
            Decision::Escalate(e) => self.escalate(e, brain_announced, now),
            Decision::Clarify(c) => self.clarify(c, now),
            Decision::Continue | Decision::AlreadyEscalated => {}
        }
    }

    /// Triage is unsure it heard a risk or a request for a person ("Did you say your phone was
    /// stolen?"): the caller is asked, instead of the brain's reply to words that may be
    /// misheard; their answer confirms or not.
    fn clarify(&mut self, c: crate::triage::Clarification, now: Instant) {
        if !self.handoff.is_idle() || self.hangup_reason.is_some() {
            return;
        }
        tracing::info!(call_id = %self.info.call_id, code = %c.code, strength = c.strength, question = %c.question, "clarifying question");
        self.say_instead_of_brain(&c.question, &c.language, c.turn, false, now);
        self.triage.clarification_asked(&c);
    }

    /// The gateway's own line is this turn's reply: a brain line for the turn that comes after
    /// it is not played over it.
    fn say_instead_of_brain(&mut self, text: &str, language: &str, turn: u32, interruptible: bool, now: Instant) {
        self.timers.stop(Timer::Reply);
        self.reply_replaced = true;
        let lang = self.lang_of(language);
        self.start_speaking(interruptible, now);
        self.out.push_back(Effect::Say { text: text.to_string(), lang, ends_reply: true, prepared: None });
        self.said("bot", turn, text);
    }

    /// Triage overruled the handoff the brain proposed (a mention of a person, a declined
    /// one), and the brain's reply announced it: that announcement must not stand. It is
    /// dropped, and the caller is asked what they need; one who did want a person says so
    /// again, and triage hears it.
    pub(super) fn withdraw_announced_transfer(&mut self, reason: &str, now: Instant) {
        if !self.handoff.is_idle() || self.hangup_reason.is_some() {
            return;
        }
        // The brain learns its proposal was declined, so it does not go on as if handing over.
        self.send_brain(caller_event::Event::Declined(EscalationDeclined { reason: reason.to_string() }));
        let text = super::super::prompts::transfer_withdrawn(&self.language);
        tracing::info!(call_id = %self.info.call_id, line = text, "brain's handoff overruled: its announcement withdrawn");
        self.out.push_back(Effect::Hush);
        let language = self.language.clone();
        self.say_instead_of_brain(text, &language, self.turns_started, true, now);
    }

    /// Builds the handoff packet from everything the call has learned so far.
    fn packet(&self, esc: &Escalation) -> HandoffPacket {
        let mut packet = HandoffPacket {
            call_id: self.info.call_id.clone(),
            caller: self.info.caller.clone(),
            callee: self.info.callee.clone(),
            customer_id: self.info.customer_id.clone(),
            language: self.language.clone(),
            channel: super::channel_name(self.info.channel),
            transcript: self.history.clone(),
            summary: self.brain_summary.clone(),
            intent: self.intent.clone(),
            slots: self.slots.clone(),
            sentiment_trend: self.sentiments.clone(),
            created_at_ms: now_ms(),
            history: self.info.history.clone(),
            ..HandoffPacket::default()
        };
        packet.set_escalation(esc);
        packet.extractive_summary();
        packet
    }

    fn escalate(&mut self, esc: Escalation, brain_announced: bool, now: Instant) {
        if !matches!(self.handoff, Handoff::Idle) {
            return;
        }
        self.escalated = Some(esc.code.clone());
        self.timers.stop(Timer::Reply);
        self.timers.stop(Timer::NoInput);
        self.floor_since = None;
        self.collecting = None;
        let packet = self.packet(&esc);
        let headers = packet.sip_headers();
        self.event(CallEvent::Escalated {
            call_id: self.info.call_id.clone(),
            packet: Box::new(packet),
            at_ms: now_ms(),
            decision: Some(Box::new(esc)),
        });
        self.set_state(CallState::HandingOver);
        let agent = self.agents.lock().unwrap_or_else(|e| e.into_inner()).pick(&[]);
        let Some(agent) = agent else {
            self.fallback("no agent is configured (handoff.agents, --agent)", now);
            return;
        };
        let cold = self.settings.handoff.mode == HandoffMode::Cold;
        if !brain_announced {
            // A cold transfer waits for this line to finish playing, so it ends a reply.
            self.say_local(line(LineKind::Bridging, &self.language), cold, now);
        }
        if cold {
            // The trunk routes the call itself: REFER once the caller has heard the line.
            self.handoff = Handoff::Transferring { agent: agent.clone(), decided_at: now };
            self.refer_pending = Some(agent);
            if !self.voice.speaking {
                self.send_pending_refer();
            }
            return;
        }
        // The caller hears that a person is coming, then hold audio until one answers.
        self.out.push_back(Effect::PlayHold { lang: self.lang_of("") });
        self.dial_attempts += 1;
        self.handoff = Handoff::Ringing { agent: agent.clone(), tried: vec![agent.clone()], decided_at: now, headers, attempt: self.dial_attempts };
        self.dial(agent, now);
    }

    fn dial(&mut self, agent: String, now: Instant) {
        let Handoff::Ringing { headers, attempt, .. } = &self.handoff else { return };
        let ring_timeout = Duration::from_secs(self.settings.handoff.ring_timeout_secs);
        let request = AgentDial { call_id: self.info.call_id.clone(), target: agent, headers: headers.clone(), ring_timeout };
        self.out.push_back(Effect::Dial { attempt: *attempt, request });
        self.timers.set(Timer::Ring, now + ring_timeout + RING_MARGIN);
    }

    /// Hold audio that finished playing while the agent still rings is played again, with a
    /// reassuring line every other time.
    pub(super) fn on_playout_finished_handoff(&mut self, text: &str) {
        if text != HOLD || !matches!(self.handoff, Handoff::Ringing { .. }) {
            return;
        }
        self.hold_loops += 1;
        let lang = self.lang_of("");
        if self.hold_loops % 2 == 0 {
            let text = line(LineKind::Hold, &self.language).to_string();
            self.out.push_back(Effect::Say { text, lang, ends_reply: false, prepared: None });
        }
        self.out.push_back(Effect::PlayHold { lang });
    }

    pub(super) fn on_agent_dialed(&mut self, result: DialResult, now: Instant) {
        let current = match &self.handoff {
            Handoff::Ringing { agent, attempt, .. } if *attempt == result.attempt() => Some(agent.clone()),
            _ => None,
        };
        let Some(agent) = current else {
            // The caller left, or this attempt was given up on, while the agent's phone rang:
            // release that agent at once.
            if let DialResult::Answered { attempt, .. } = result {
                self.out.push_back(Effect::ReleaseDialed { attempt });
            }
            return;
        };
        self.timers.stop(Timer::Ring);
        self.event(CallEvent::AgentDialed { call_id: self.info.call_id.clone(), agent: agent.clone(), result: result.metric(), at_ms: now_ms() });
        match result {
            DialResult::Answered { attempt, codec } => {
                let Handoff::Ringing { decided_at, .. } = &self.handoff else { return };
                let bridge_ms = now.saturating_duration_since(*decided_at).as_millis() as u64;
                tracing::info!(call_id = %self.info.call_id, %agent, %codec, decision_to_bridge_ms = bridge_ms, "bridged");
                // Stop the hold audio and the AI's voice: from here the people talk.
                self.out.push_back(Effect::Hush);
                self.voice = super::BotVoice::default();
                self.agents.lock().unwrap_or_else(|e| e.into_inner()).busy(&agent);
                self.out.push_back(Effect::Bridge { attempt });
                self.set_state(CallState::Bridged);
                self.event(CallEvent::Bridged { call_id: self.info.call_id.clone(), agent: agent.clone(), at_ms: now_ms() });
                self.agent_listener = Some(Listener::new(self.settings.endpointing));
                self.handoff = Handoff::Bridged { agent };
            }
            DialResult::Failed { status, reason, .. } => {
                tracing::warn!(call_id = %self.info.call_id, agent = %agent, status = status.unwrap_or(0), %reason, "agent did not take the call");
                let Handoff::Ringing { tried, .. } = &self.handoff else { return };
                let next = self.agents.lock().unwrap_or_else(|e| e.into_inner()).pick(tried);
                match next {
                    Some(next) => {
                        self.dial_attempts += 1;
                        let attempt = self.dial_attempts;
                        if let Handoff::Ringing { agent, tried, attempt: a, .. } = &mut self.handoff {
                            tried.push(next.clone());
                            *agent = next.clone();
                            *a = attempt;
                        }
                        self.dial(next, now);
                    }
                    None => self.fallback(&reason, now),
                }
            }
        }
    }

    /// The bridged agent's audio: transcribed for the record and the console.
    pub(super) fn on_agent_frame(&mut self, frame: Box<[i16; FRAME_16K]>) {
        let Some(listener) = self.agent_listener.as_mut() else { return };
        if let Some(Heard::Finished(u)) = listener.push(frame) {
            let turn = self.turns_started;
            let language = self.decode_language(Side::Agent);
            self.out.push_back(Effect::Transcribe { side: Side::Agent, turn, audio: u.audio, language });
        }
    }

    /// No agent took the call: what the configuration says, and never silence.
    fn fallback(&mut self, why: &str, now: Instant) {
        tracing::warn!(call_id = %self.info.call_id, reason = %why, fallback = ?self.settings.handoff.fallback, "handoff fallback");
        self.handoff = Handoff::Over;
        self.timers.stop(Timer::Ring);
        // Back with the AI (to say goodbye, take a callback, or go on, as configured).
        self.set_state(CallState::Ai);
        self.out.push_back(Effect::Hush);
        self.voice = super::BotVoice::default();
        let lang = self.language.clone();
        self.say_local(line(LineKind::NoAgent, &lang), false, now);
        match self.settings.handoff.fallback {
            Fallback::Callback => {
                self.out.push_back(Effect::StoreCallback(CallbackRequest {
                    call_id: self.info.call_id.clone(),
                    number: self.info.caller.clone(),
                    reason: self.escalated.clone().unwrap_or_default(),
                    language: lang,
                    requested_at_ms: now_ms(),
                }));
            }
            Fallback::Ai => self.say_local(line(LineKind::BackToAi, &lang), true, now),
            Fallback::End => {
                self.say_local(line(LineKind::Goodbye, &lang), true, now);
                self.hang_up_after("handoff-fallback".into(), FALLBACK_GRACE, now);
            }
        }
    }

    pub(super) fn on_callback_stored(&mut self, result: Result<(), String>, now: Instant) {
        let kind = match result {
            Ok(()) => LineKind::CallbackTaken,
            Err(e) => {
                tracing::error!(call_id = %self.info.call_id, error = %e, "cannot store the callback request");
                LineKind::Goodbye
            }
        };
        self.say_local(line(kind, &self.language.clone()), true, now);
        self.hang_up_after("handoff-fallback".into(), FALLBACK_GRACE, now);
    }

    pub(super) fn send_pending_refer(&mut self) {
        if let Some(target) = self.refer_pending.take() {
            self.out.push_back(Effect::Leg(LegCommand::Refer { target }));
        }
    }

    pub(super) fn on_transfer(&mut self, status: u16, done: bool, now: Instant) {
        let Handoff::Transferring { agent, decided_at } = &self.handoff else { return };
        let elapsed_ms = now.saturating_duration_since(*decided_at).as_millis() as u64;
        match status {
            200..=299 if done => {
                tracing::info!(call_id = %self.info.call_id, agent = %agent, status, decision_to_transfer_ms = elapsed_ms, "transferred");
                self.end("transferred");
            }
            100..=299 => tracing::info!(call_id = %self.info.call_id, agent = %agent, status, "transfer in progress"),
            _ => {
                let reason = format!("transfer to {agent} failed with {status}");
                self.fallback(&reason, now);
            }
        }
    }
}
