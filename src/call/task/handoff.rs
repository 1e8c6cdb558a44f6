//! The call task's side of a warm handoff: from the triage decision to the bridged agent, or
//! to the fallback when no agent can take the call.
//!
//! Escalated → bridging line → hold audio while the agent's phone rings (INVITE with the
//! context headers) → agent answers → media bridged both ways, the AI silent but still
//! transcribing both sides; or no agent → the configured fallback. Never dead air.

use super::{CallTask, Side};
use crate::call::events::{now_ms, CallEvent};
use crate::call::listener::{Heard, Listener};
use crate::call::speaker::SayJob;
use crate::call::{AgentDial, AgentLeg, DialOutcome};
use crate::call::LegCommand;
use crate::call::registry::CallState;
use crate::handoff::{append_callback, hold_audio_16k, line, AgentTarget, CallbackRequest, Fallback, HandoffMode, HandoffPacket, LineKind};
use crate::media::session::{MediaCommand, MediaEvent, FRAME_16K};
use crate::speech::tts::Lang;
use crate::triage::{Decision, Escalation};
use std::time::{Duration, Instant};

/// Label of queued hold audio, to recognise its playout events.
const HOLD: &str = "(hold audio)";

pub(in crate::call) enum Handoff {
    Idle,
    Ringing { agent: String, tried: Vec<String>, decided_at: Instant, headers: Vec<(String, String)> },
    Bridged(Box<Bridge>),
    /// Cold handoff: the caller's side was asked (REFER) to call the agent itself.
    Transferring { agent: String, decided_at: Instant },
    /// The fallback ran; the call ends or stays with the AI without another handoff.
    Over,
}

pub(in crate::call) struct Bridge {
    agent: String,
    leg: AgentLeg,
    listener: Listener,
}

impl Handoff {
    pub(in crate::call) fn is_idle(&self) -> bool {
        matches!(self, Handoff::Idle | Handoff::Over)
    }
}

pub(in crate::call) enum AgentInput {
    Media(Option<MediaEvent>),
    Ended(String),
}

/// The next event of the bridged agent leg; pending while there is none.
pub(in crate::call) async fn next_agent_input(handoff: &mut Handoff) -> AgentInput {
    match handoff {
        Handoff::Bridged(bridge) => tokio::select! {
            ev = bridge.leg.media_events.recv() => AgentInput::Media(ev),
            r = &mut bridge.leg.ended => AgentInput::Ended(r.unwrap_or_else(|_| "signaling-gone".into())),
        },
        _ => std::future::pending().await,
    }
}

impl CallTask {
    pub(super) async fn on_triage(&mut self, decision: Decision, brain_announced: bool) {
        match decision {
            Decision::Escalate(e) => self.escalate(e, brain_announced).await,
            // Asking the caller is wired with the call core; until then the call goes on.
            Decision::Continue | Decision::AlreadyEscalated | Decision::Clarify(_) => {}
        }
    }

    fn lang(&self) -> Lang {
        self.language.parse().unwrap_or(Lang::En)
    }

    /// Builds the handoff packet from everything the call has learned so far.
    fn packet(&self, esc: &Escalation) -> HandoffPacket {
        let mut packet = HandoffPacket {
            call_id: self.call_id.clone(),
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            language: self.language.clone(),
            channel: format!("{:?}", self.channel).to_lowercase(),
            transcript: self.history.clone(),
            summary: self.brain_summary.clone(),
            intent: self.intent.clone(),
            slots: self.slots.clone(),
            sentiment_trend: self.sentiments.clone(),
            created_at_ms: now_ms(),
            ..HandoffPacket::default()
        };
        packet.set_escalation(esc);
        packet.extractive_summary();
        packet
    }

    async fn escalate(&mut self, esc: Escalation, brain_announced: bool) {
        if !matches!(self.handoff, Handoff::Idle) {
            return;
        }
        let evidence = serde_json::to_string(&esc.evidence).unwrap_or_default();
        tracing::info!(
            call_id = %self.call_id, category = esc.category.as_str(), code = %esc.code, priority = esc.priority.as_str(),
            turn = esc.turn, evidence = %evidence, "escalation"
        );
        self.escalated = Some(esc.code.clone());
        self.reply_deadline = None;
        let packet = self.packet(&esc);
        self.store_packet(&esc, &packet);
        self.live.escalated(&esc, packet.to_json());
        self.live.set_state(CallState::HandingOver);
        self.services.events.publish(CallEvent::Escalated { call_id: self.call_id.clone(), packet: Box::new(packet.clone()), at_ms: now_ms() });
        let agent = self.services.agents.lock().expect("agent pool lock").pick(&[]);
        let Some(agent) = agent else {
            self.fallback("no agent is configured (handoff.agents, --agent)").await;
            return;
        };
        let lang = self.lang();
        let cold = self.services.config.handoff.mode == HandoffMode::Cold;
        if !brain_announced {
            // A cold transfer waits for this line to finish playing, so it ends a reply.
            self.say_local(line(LineKind::Bridging, &self.language), cold).await;
        }
        if cold {
            // The trunk routes the call itself: REFER once the caller has heard the line.
            self.handoff = Handoff::Transferring { agent: agent.clone(), decided_at: Instant::now() };
            self.refer_pending = Some(agent);
            if !self.voice.speaking {
                self.send_pending_refer();
            }
            return;
        }
        // The caller hears that a person is coming, then hold audio until one answers.
        self.queue_hold(lang).await;
        let headers = packet.sip_headers();
        self.handoff = Handoff::Ringing { agent: agent.clone(), tried: vec![agent.clone()], decided_at: Instant::now(), headers };
        self.dial(agent);
    }

    fn dial(&self, agent: String) {
        let Handoff::Ringing { headers, .. } = &self.handoff else { return };
        let results = self.dial_tx.clone();
        let Some(dialer) = self.services.dialers.for_target(&agent) else {
            // Its edge is not running (SIP failed to start, WebRTC is off): like an unreachable
            // phone, so the next agent or the fallback takes over.
            let reason = format!("no edge is running to reach {agent}");
            tokio::spawn(async move { results.send(DialOutcome::Failed { status: None, reason }).await });
            return;
        };
        let request = AgentDial {
            call_id: self.call_id.clone(),
            target: agent,
            headers: headers.clone(),
            ring_timeout: Duration::from_secs(self.services.config.handoff.ring_timeout_secs),
        };
        tokio::spawn(async move {
            let outcome = dialer.dial(request).await;
            let _ = results.send(outcome).await;
        });
    }

    async fn queue_hold(&mut self, lang: Lang) {
        self.speaker.say(SayJob { text: HOLD.into(), lang, ends_reply: false, audio: Some(hold_audio_16k()) }).await;
    }

    /// Hold audio that finished playing while the agent still rings is played again, with a
    /// reassuring line every other time.
    pub(super) async fn on_playout_finished_handoff(&mut self, text: &str) {
        if text != HOLD || !matches!(self.handoff, Handoff::Ringing { .. }) {
            return;
        }
        self.hold_loops += 1;
        if self.hold_loops % 2 == 0 {
            let lang = self.lang();
            self.speaker.say(SayJob::speak(line(LineKind::Hold, &self.language), lang, false)).await;
        }
        self.queue_hold(self.lang()).await;
    }

    pub(super) async fn on_agent_dialed(&mut self, outcome: DialOutcome) {
        if let Handoff::Ringing { agent, .. } = &self.handoff {
            count_dial(agent, &outcome);
        }
        let Handoff::Ringing { agent, tried, decided_at, .. } = &mut self.handoff else {
            // The caller left while the agent's phone rang: release the agent at once.
            if let DialOutcome::Answered(leg) = outcome {
                let _ = leg.hangup.send(()).await;
            }
            return;
        };
        match outcome {
            DialOutcome::Answered(leg) => {
                let agent = agent.clone();
                let bridge_ms = decided_at.elapsed().as_millis() as u64;
                tracing::info!(call_id = %self.call_id, %agent, codec = %leg.codec, decision_to_bridge_ms = bridge_ms, "bridged");
                // Stop the hold audio and the AI's voice: from here the people talk.
                let _ = self.media_commands.send(MediaCommand::Flush).await;
                self.replace_speaker();
                self.services.agents.lock().expect("agent pool lock").busy(&agent);
                self.live.set_state(CallState::Bridged);
                self.services.events.publish(CallEvent::Bridged { call_id: self.call_id.clone(), agent: agent.clone(), at_ms: now_ms() });
                let listener = Listener::new(self.services.config.endpointing);
                self.handoff = Handoff::Bridged(Box::new(Bridge { agent, leg, listener }));
            }
            DialOutcome::Failed { status, reason } => {
                tracing::warn!(call_id = %self.call_id, agent = %agent, status = status.unwrap_or(0), %reason, "agent did not take the call");
                let next = self.services.agents.lock().expect("agent pool lock").pick(tried);
                match next {
                    Some(next) => {
                        tried.push(next.clone());
                        *agent = next.clone();
                        self.dial(next);
                    }
                    None => self.fallback(&reason).await,
                }
            }
        }
    }

    /// Returns the end reason when the agent's side ended the call.
    pub(super) async fn on_agent_input(&mut self, input: AgentInput) -> Option<String> {
        let Handoff::Bridged(bridge) = &mut self.handoff else { return None };
        match input {
            AgentInput::Media(Some(MediaEvent::Frame(frame))) => {
                let _ = self.media_commands.try_send(MediaCommand::Live(frame.clone()));
                if let Some(Heard::Finished(u)) = bridge.listener.push(frame) {
                    let turn = self.turns_started;
                    self.transcribe(Side::Agent, turn, u.audio);
                }
                None
            }
            AgentInput::Media(Some(MediaEvent::Timeout)) => Some("agent-media-timeout".into()),
            AgentInput::Media(Some(_)) => None,
            AgentInput::Media(None) => Some("agent-media-stopped".into()),
            AgentInput::Ended(reason) => Some(reason),
        }
    }

    /// Caller audio goes to the agent while bridged.
    pub(super) fn relay_to_agent(&mut self, frame: &[i16; FRAME_16K]) {
        if let Handoff::Bridged(bridge) = &self.handoff {
            let _ = bridge.leg.media.commands.try_send(MediaCommand::Live(Box::new(*frame)));
        }
    }

    /// No agent took the call: what the configuration says, and never silence.
    async fn fallback(&mut self, why: &str) {
        tracing::warn!(call_id = %self.call_id, reason = %why, fallback = ?self.services.config.handoff.fallback, "handoff fallback");
        self.handoff = Handoff::Over;
        // Back with the AI (to say goodbye, take a callback, or go on, as configured).
        self.live.set_state(CallState::Ai);
        let _ = self.media_commands.send(MediaCommand::Flush).await;
        self.replace_speaker();
        let lang = self.language.clone();
        self.say_local(line(LineKind::NoAgent, &lang), false).await;
        match self.services.config.handoff.fallback {
            Fallback::Callback => {
                let request = CallbackRequest {
                    call_id: self.call_id.clone(),
                    number: self.caller.clone(),
                    reason: self.escalated.clone().unwrap_or_default(),
                    language: lang.clone(),
                    requested_at_ms: now_ms(),
                };
                let file = &self.services.config.handoff.callbacks_file;
                match append_callback(file, &request) {
                    Ok(()) => {
                        tracing::info!(call_id = %self.call_id, number = %request.number, file = %file.display(), "callback requested");
                        self.say_local(line(LineKind::CallbackTaken, &lang), true).await;
                    }
                    Err(e) => {
                        tracing::error!(call_id = %self.call_id, file = %file.display(), error = %e, "cannot store the callback request");
                        self.say_local(line(LineKind::Goodbye, &lang), true).await;
                    }
                }
                self.hangup_pending = Some(("handoff-fallback".into(), Instant::now() + Duration::from_secs(30)));
            }
            Fallback::Ai => {
                self.say_local(line(LineKind::BackToAi, &lang), true).await;
            }
            Fallback::End => {
                self.say_local(line(LineKind::Goodbye, &lang), true).await;
                self.hangup_pending = Some(("handoff-fallback".into(), Instant::now() + Duration::from_secs(30)));
            }
        }
    }

    pub(super) fn send_pending_refer(&mut self) {
        if let Some(target) = self.refer_pending.take() {
            if self.leg.try_send(LegCommand::Refer { target }).is_err() {
                tracing::error!(call_id = %self.call_id, "signaling is gone: cannot transfer");
            }
        }
    }

    /// Returns the end reason once the transfer succeeded.
    pub(super) async fn on_transfer(&mut self, status: u16, done: bool) -> Option<String> {
        let Handoff::Transferring { agent, decided_at } = &self.handoff else { return None };
        let elapsed_ms = decided_at.elapsed().as_millis() as u64;
        match status {
            200..=299 if done => {
                tracing::info!(call_id = %self.call_id, agent = %agent, status, decision_to_transfer_ms = elapsed_ms, "transferred");
                Some("transferred".into())
            }
            100..=299 => {
                tracing::info!(call_id = %self.call_id, agent = %agent, status, "transfer in progress");
                None
            }
            _ => {
                let reason = format!("transfer to {agent} failed with {status}");
                self.fallback(&reason).await;
                None
            }
        }
    }

    /// Ends the agent's leg with the call.
    pub(super) async fn release_agent(&mut self) {
        if let Handoff::Bridged(bridge) = std::mem::replace(&mut self.handoff, Handoff::Over) {
            let _ = bridge.leg.hangup.send(()).await;
            self.services.agents.lock().expect("agent pool lock").free(&bridge.agent);
        }
    }
}

/// `frontline_agent_dials_total{kind, result}`: how calls to each kind of agent go.
fn count_dial(agent: &str, outcome: &DialOutcome) {
    let kind = match AgentTarget::of(agent) {
        AgentTarget::Sip(_) => "sip",
        AgentTarget::Console(_) => "console",
    };
    let result = match outcome {
        DialOutcome::Answered(_) => "answered".to_string(),
        DialOutcome::Failed { status: Some(status), .. } => status.to_string(),
        DialOutcome::Failed { status: None, .. } => "none".to_string(),
    };
    metrics::counter!("frontline_agent_dials_total", "kind" => kind, "result" => result).increment(1);
}
