//! `CallCore`: every decision of one call, sans-IO (the shape of str0m's `Rtc` and quinn-proto's
//! `Connection`).
//!
//! Inputs ([`Input`]) are what happened: caller and agent audio frames, keypad digits, playout
//! progress, transcripts, the brain's actions, signaling, an operator's command, a timer's
//! expiry. Each is handed in with the instant it happened; the core answers by queuing
//! [`Effect`]s (play or flush audio, start a decode, send to the brain, dial an agent, end the
//! leg) and [`CallEvent`]s for the observers, and by setting its named timers ([`Timer`]).
//! It never touches a socket, a channel, a clock or a thread: the tokio driver
//! (`call::driver`) executes the effects and feeds the results back, and the unit tests drive
//! it in virtual time.

mod handoff;
mod survey;
pub mod timers;
#[cfg(test)]
mod tests;
mod voice;

pub use handoff::{DialResult, HOLD};
pub use timers::{Timer, TimerTable};

use self::handoff::Handoff;
use self::survey::Survey;
use self::voice::BotVoice;
use super::config::CallSettings;
use super::events::{now_ms, CallEvent, CallSetup, EndSummary};
use super::listener::{Heard, Listener};
use super::registry::{Control, ControlRefused, CallState};
use super::turn::Turn;
use super::turn_taking::{silence_wait, BargeIn as BargeInPolicy, DecodeKind, Streaming, VoiceAction, WaitKind};
use super::LegCommand;
use crate::handoff::{AgentPool, TranscriptLine};
use crate::media::session::{MediaCommand, MediaParams, MediaStats, FRAME_16K};
use crate::proto::dialog::{bot_action, caller_event, BotAction, CallEnd, CallStart, Channel, Dtmf, PastCall, Silence, TurnTimings, Utterance};
use crate::call::survey::Rating;
use crate::speech::stt::{LanguageChoice, Transcript, UNSURE_BELOW};
use crate::speech::tts::Lang;
use crate::triage::{Decision, PastContact, Triage, UtteranceInput};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whose words a transcript holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Caller,
    Agent,
}

/// Who the call is with, known when it is answered.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    pub call_id: String,
    pub sip_call_id: String,
    pub caller: String,
    pub callee: String,
    pub channel: Channel,
    pub codec: String,
    /// Fixed language for this call; `None` detects it per utterance.
    pub language: Option<String>,
    /// The call's WAV, when it is recorded.
    pub recording: Option<String>,
    /// The caller's earlier calls, newest first (read from the records before the call starts).
    pub history: Vec<crate::records::PastCall>,
    /// The caller's id in the contact center's CRM, from a SIP header (`[sip]
    /// customer_id_header`): their history follows it, and the brain is told it.
    pub customer_id: Option<String>,
}

/// What happened, handed to [`CallCore::handle`].
#[derive(Debug)]
pub enum Input {
    /// 20 ms of the caller's audio at 16 kHz.
    CallerFrame(Box<[i16; FRAME_16K]>),
    /// 20 ms of the bridged agent's audio at 16 kHz.
    AgentFrame(Box<[i16; FRAME_16K]>),
    Dtmf { digit: char, duration_ms: u32 },
    PlayoutStarted { tag: u64, at: Instant },
    PlayoutFinished { tag: u64 },
    /// Synthesized audio for `tag` was queued on the media driver (`samples` at 16 kHz).
    AudioQueued { tag: u64, text: String, samples: usize },
    /// Everything of a reply the speaker was given is queued; `last_tag` is its final audio.
    ReplyQueued { last_tag: Option<u64> },
    SynthesisFailed(String),
    /// No RTP from the caller for the configured time.
    MediaTimeout,
    /// The media driver stopped.
    MediaStopped,
    /// The caller hung up, cancelled, or the signaling failed.
    CallerHungUp { reason: String },
    /// A re-INVITE changed the media.
    MediaChanged(MediaParams),
    /// How a cold transfer (REFER) is going.
    Transfer { status: u16, done: bool },
    /// The edge dropped its side of the call.
    SignalingGone,
    Brain(BotAction),
    /// The brain cannot be reached, its stream broke, or it closed the conversation.
    BrainLost(String),
    Recognized { side: Side, turn: u32, result: Result<Transcript, String> },
    /// Words the caller typed (`frontline chat`) or a script gave (`frontline eval`): an
    /// utterance that needs no recognizer. It takes the floor and makes a turn like a spoken one.
    Typed(TypedUtterance),
    /// A partial or early decode of utterance number `utterance` (see `turn_taking::streaming`).
    Streamed { utterance: u32, kind: DecodeKind, result: Result<Transcript, String> },
    AgentDialed(DialResult),
    /// The bridged agent's side ended (their BYE, media timeout).
    AgentLegEnded(String),
    /// Whether the callback request was stored.
    CallbackStored(Result<(), String>),
    /// The gateway drains: the call may go on until `deadline`, then hears a goodbye.
    Drain { deadline: Instant },
    /// The drain was called off (Ops `SetDraining(false)`): no deadline any more.
    DrainLifted,
    /// The gateway stops now (a second SIGTERM): end with a BYE at once.
    Shutdown,
}

/// A caller utterance given as text, with what a recognizer would have said about it.
#[derive(Debug, Clone)]
pub struct TypedUtterance {
    pub text: String,
    /// 0..1, like whisper's mean token probability (1 for typed words).
    pub confidence: f32,
    pub loudness_dbfs: Option<f32>,
    /// Other readings of the same audio (n-best), best first: risk and request words are looked
    /// for in them too.
    pub alternatives: Vec<String>,
}

impl TypedUtterance {
    /// Typed words: heard exactly, at a normal level.
    pub fn exact(text: &str) -> TypedUtterance {
        TypedUtterance { text: text.to_string(), confidence: 1.0, loudness_dbfs: None, alternatives: Vec::new() }
    }
}

/// What the driver must do, in order.
#[derive(Debug)]
pub enum Effect {
    /// Open the brain's Converse stream; a failure comes back as [`Input::BrainLost`].
    OpenBrain(CallStart),
    ToBrain(caller_event::Event),
    /// Speak a line: synthesize `text` (or use audio prepared ahead under `prepared`, if ready).
    Say { text: String, lang: Lang, ends_reply: bool, prepared: Option<u64> },
    /// Queue the hold music.
    PlayHold { lang: Lang },
    /// Synthesize a preview reply's line ahead, kept under `id` until a `Say` names it.
    Prepare { id: u64, text: String, lang: Lang },
    /// Drop everything queued or being synthesized: the bot stops talking at once.
    Hush,
    Media(MediaCommand),
    /// Recognize one side's utterance; the result comes back as [`Input::Recognized`].
    Transcribe { side: Side, turn: u32, audio: Vec<i16>, language: LanguageChoice },
    /// Decode the utterance in progress; the result comes back as [`Input::Streamed`].
    Decode { utterance: u32, kind: DecodeKind, audio: Vec<i16>, language: LanguageChoice },
    /// Call an agent; the outcome comes back as [`Input::AgentDialed`] with the same attempt.
    Dial { attempt: u32, request: super::AgentDial },
    /// Connect the leg answered on `attempt` with the caller, both ways.
    Bridge { attempt: u32 },
    /// Hang up the leg answered on `attempt`: the call no longer wants it.
    ReleaseDialed { attempt: u32 },
    /// Hang up the bridged agent's leg.
    ReleaseAgent,
    /// Append a callback request to the callbacks file; the outcome comes back as
    /// [`Input::CallbackStored`].
    StoreCallback(crate::handoff::CallbackRequest),
    Leg(LegCommand),
    Event(CallEvent),
    /// The call is over: stop the media, collect its counters and emit `Ended` with them.
    Finish { reason: String, outcome: &'static str },
}

/// A supervisor's command, answered at once.
pub type ControlAnswer = Result<String, ControlRefused>;

/// Audio a partial must cover before its detected language is trusted for the rest of
/// the utterance.
const LANGUAGE_AFTER_MS: u32 = 1_000;
/// How long a goodbye (or apology) may take to play before the call ends anyway.
const GOODBYE_GRACE: Duration = Duration::from_secs(20);
/// A hang-up asked for while nothing plays.
const HANGUP_PAUSE: Duration = Duration::from_millis(300);
/// Longest one-line summary of a call kept for the caller's next call, in characters.
const SUMMARY_MAX_CHARS: usize = 160;
/// How long past the dialer's own ring time an agent attempt may go unreported.
const RING_MARGIN: Duration = Duration::from_secs(5);

/// The streaming state of the utterance in progress.
#[derive(Default)]
struct InProgress {
    /// Counts utterances, so a decode that returns after its utterance ended is recognized.
    number: u32,
    /// The language its first partial found: later decodes of it skip detection.
    language: Option<String>,
    /// The early decode's transcript and the speech mark it covers.
    early: Option<(u64, Transcript)>,
    /// The utterance ended while its early decode was running: its turn and audio (in case
    /// that decode fails and a normal one is needed).
    awaiting_early: Option<(u32, Vec<i16>)>,
}

/// A reply synthesized ahead of time for a preview utterance (see the Dialog proto's
/// `Utterance`): played only for final Say chunks with the same words, else dropped.
struct Speculation {
    heard: String,
    /// The preview's Say chunks in order: prepared id, words and voice.
    chunks: VecDeque<(u64, String, Lang)>,
}

/// The caller's last words, while they may still be going on with them (see
/// `EndpointConfig::continuation_ms`).
struct LastWords {
    turn: u32,
    /// Everything said so far in this sentence, fragments joined.
    text: String,
    speech_end: Instant,
}

/// Keypad digits being collected for the brain (`CollectDigits`).
struct Collecting {
    max_digits: usize,
    terminator: Option<char>,
    digits: String,
    gap: Duration,
}

pub struct CallCore {
    settings: Arc<CallSettings>,
    info: CallInfo,
    language: String,
    agents: Arc<Mutex<AgentPool>>,
    /// Tags the speaker gives queued audio; shared so the reply's first tag is known.
    tags: Arc<AtomicU64>,

    listener: Listener,
    streaming: Streaming,
    in_progress: InProgress,
    barge: BargeInPolicy,
    speculation: Option<Speculation>,
    next_prepared: u64,
    voice: BotVoice,

    brain_up: bool,
    triage: Triage,
    history: Vec<TranscriptLine>,
    /// What the call was about: the brain's topic intents, first first, each once.
    topics: Vec<String>,
    intent: String,
    slots: BTreeMap<String, String>,
    sentiments: Vec<String>,
    brain_summary: String,
    handoff: Handoff,
    /// Numbers calls to agents, so a late answer to an abandoned attempt is not bridged.
    dial_attempts: u32,
    hold_loops: u32,
    /// Cold handoff waiting for the bridging line to finish: the REFER target.
    refer_pending: Option<String>,
    /// Endpointing of the bridged agent's audio, for their transcript.
    agent_listener: Option<Listener>,
    /// A cached line already stood in for a stuck synthesis once.
    synthesis_fallback_used: bool,
    survey: Survey,
    /// The caller's answer to the survey.
    rating: Option<Rating>,
    /// The brain ended the call (not a drain, a fallback or an error): a survey may come first.
    brain_hung_up: bool,

    turns_started: u32,
    turns_completed: u32,
    recognizing: BTreeMap<u32, Turn>,
    answering: Option<Turn>,
    /// Tags above this belong to the reply of `answering`.
    reply_tag_floor: u64,
    filler_played: bool,
    /// The gateway answered this turn itself (a clarifying question): the brain's reply to it
    /// is not played.
    reply_replaced: bool,
    /// When the bot last finished speaking and the floor became the caller's; `None` while the
    /// bot speaks, the caller speaks, or the call is not the AI's (handoff).
    floor_since: Option<Instant>,
    no_inputs: u32,
    /// Until the caller hears a reply to them (or the continuation window passes).
    last_words: Option<LastWords>,
    /// The language of the caller's last utterance the recognizer was sure of: what an unsure
    /// reading in the other language is checked against.
    caller_language: Option<String>,
    collecting: Option<Collecting>,

    timers: TimerTable,
    hangup_reason: Option<String>,
    escalated: Option<String>,
    failure: Option<String>,
    started: Instant,
    timeline: Vec<(String, u64)>,
    ended: bool,
    out: VecDeque<Effect>,
}

impl CallCore {
    /// A call just answered, at `now`. The first effects open the brain and announce the call.
    pub fn new(settings: Arc<CallSettings>, info: CallInfo, agents: Arc<Mutex<AgentPool>>, tags: Arc<AtomicU64>, now: Instant) -> CallCore {
        let language = info.language.clone().unwrap_or_else(|| "en".into());
        let mut triage = Triage::new(settings.triage.clone(), &info.caller);
        let window = settings.triage.repeat_contact.window_ms();
        let now_at = now_ms();
        triage.set_past_contacts(
            info.history
                .iter()
                .filter(|p| now_at.saturating_sub(p.started_at_ms) <= window)
                .map(|p| PastContact {
                    call_id: p.call_id.clone(),
                    hours_ago: now_at.saturating_sub(p.started_at_ms) / 3_600_000,
                    intents: p.intents.clone(),
                })
                .collect(),
        );
        let mut core = CallCore {
            listener: Listener::new(settings.endpointing),
            streaming: Streaming::new(&settings.endpointing),
            in_progress: InProgress::default(),
            barge: BargeInPolicy::default(),
            speculation: None,
            next_prepared: 0,
            voice: BotVoice::default(),
            brain_up: true,
            triage,
            history: Vec::new(),
            topics: Vec::new(),
            intent: String::new(),
            slots: BTreeMap::new(),
            sentiments: Vec::new(),
            brain_summary: String::new(),
            handoff: Handoff::Idle,
            dial_attempts: 0,
            hold_loops: 0,
            refer_pending: None,
            agent_listener: None,
            synthesis_fallback_used: false,
            survey: Survey::NotAsked,
            rating: None,
            brain_hung_up: false,
            turns_started: 0,
            turns_completed: 0,
            recognizing: BTreeMap::new(),
            answering: None,
            reply_tag_floor: 0,
            filler_played: false,
            reply_replaced: false,
            floor_since: None,
            no_inputs: 0,
            last_words: None,
            caller_language: None,
            collecting: None,
            timers: TimerTable::default(),
            hangup_reason: None,
            escalated: None,
            failure: None,
            started: now,
            timeline: Vec::new(),
            ended: false,
            out: VecDeque::new(),
            language,
            agents,
            tags,
            info,
            settings,
        };
        core.start(now);
        core
    }

    fn start(&mut self, now: Instant) {
        let info = self.info.clone();
        self.event(CallEvent::Started {
            call_id: info.call_id.clone(),
            caller: info.caller.clone(),
            callee: info.callee.clone(),
            channel: channel_name(info.channel),
            at_ms: now_ms(),
            setup: Some(Box::new(CallSetup {
                sip_call_id: info.sip_call_id.clone(),
                codec: info.codec.clone(),
                recording: info.recording.clone(),
                customer_id: info.customer_id.clone(),
            })),
        });
        // The record's timeline starts where the registry's does: answered, then with the AI.
        self.set_state(CallState::Answered);
        self.set_state(CallState::Ai);
        self.timers.set(Timer::MaxDuration, now + self.settings.max_duration);
        let start = CallStart {
            call_id: self.info.call_id.clone(),
            caller: self.info.caller.clone(),
            callee: self.info.callee.clone(),
            language: self.info.language.clone().unwrap_or_default(),
            channel: self.info.channel as i32,
            metadata: [("sip_call_id".to_string(), self.info.sip_call_id.clone()), ("codec".to_string(), self.info.codec.clone())]
                .into_iter()
                .chain(self.info.customer_id.clone().map(|id| ("customer_id".to_string(), id)))
                .collect(),
            history: self
                .info
                .history
                .iter()
                .map(|p| PastCall {
                    call_id: p.call_id.clone(),
                    started_ms: p.started_at_ms,
                    outcome: p.outcome.clone(),
                    intents: p.intents.clone(),
                    escalation: p.escalation.clone().unwrap_or_default(),
                    summary: p.summary.clone(),
                })
                .collect(),
        };
        // The greeting is turn 0: its latency is measured from the moment the call started.
        let mut greeting = Turn::new(0, now, 0);
        greeting.transcript_at = Some(now);
        self.answering = Some(greeting);
        self.expect_reply(now);
        self.out.push_back(Effect::OpenBrain(start));
        let vip = self.triage.on_call_start();
        self.on_triage(vip, false, now);
    }

    // ------------------------------------------------------------------ the driver's API

    /// The next effect to carry out, in order.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.out.pop_front()
    }

    /// When the core next needs [`CallCore::handle_timeout`]; `None`: only inputs wake it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        self.timers.next()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    /// Caller turns so far (spoken, typed or keyed); the greeting is turn 0.
    pub fn turns(&self) -> u32 {
        self.turns_started
    }

    /// The call's triage, for what it decided, overruled and asked.
    pub fn triage(&self) -> &Triage {
        &self.triage
    }

    /// The bot is quiet, nothing is owed, and the caller's silence is being counted.
    pub fn caller_has_floor(&self) -> bool {
        self.floor_since.is_some()
    }

    /// The brain owes words: a reply not begun (its timer runs), or one begun whose last
    /// sentence has not come (or is not yet with the voice).
    pub fn awaits_brain(&self) -> bool {
        self.timers.is_set(Timer::Reply) || (self.voice.speaking && !self.voice.fully_queued)
    }

    /// Whether the caller's and the agent's audio flow between the legs now.
    pub fn is_bridged(&self) -> bool {
        matches!(self.handoff, Handoff::Bridged { .. })
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while !self.ended {
            let Some(timer) = self.timers.take_expired(now) else { break };
            self.on_timer(timer, now);
        }
    }

    /// One input, at `now`.
    pub fn handle(&mut self, input: Input, now: Instant) {
        if self.ended {
            return;
        }
        match input {
            Input::CallerFrame(frame) => self.on_frame(frame, now),
            Input::AgentFrame(frame) => self.on_agent_frame(frame),
            Input::Dtmf { digit, duration_ms } => self.on_dtmf(digit, duration_ms, now),
            Input::PlayoutStarted { tag, at } => {
                self.voice.on_playout_started(tag, at);
                if tag > self.reply_tag_floor {
                    if let Some(turn) = self.answering.as_mut() {
                        turn.on_first_packet(at);
                    }
                }
            }
            Input::PlayoutFinished { tag } => {
                if let Some(text) = self.voice.on_playout_finished(tag) {
                    self.on_playout_finished_handoff(&text);
                }
                if self.voice.reply_done(tag) {
                    self.reply_finished_playing(now);
                }
            }
            Input::AudioQueued { tag, text, samples } => {
                self.timers.stop(Timer::Synthesis);
                self.voice.on_queued(tag, text, samples);
                if tag > self.reply_tag_floor {
                    if let Some(turn) = self.answering.as_mut() {
                        turn.on_audio_synthesized(now);
                    }
                }
            }
            Input::ReplyQueued { last_tag } => {
                if self.voice.on_reply_queued(last_tag) {
                    self.timers.stop(Timer::Synthesis);
                    self.reply_finished_playing(now);
                }
            }
            Input::SynthesisFailed(e) => tracing::error!(call_id = %self.info.call_id, error = %e, "speech synthesis failed"),
            Input::MediaTimeout => {
                self.failure.get_or_insert_with(|| "rtp-timeout".into());
                tracing::warn!(call_id = %self.info.call_id, "no RTP from the caller: ending the call");
                self.end("rtp-timeout");
            }
            Input::MediaStopped => self.end("media-stopped"),
            Input::CallerHungUp { reason } => self.end(&reason),
            Input::MediaChanged(params) => self.out.push_back(Effect::Media(MediaCommand::Update(params))),
            Input::Transfer { status, done } => self.on_transfer(status, done, now),
            Input::SignalingGone => self.end("signaling-gone"),
            Input::Brain(action) => self.on_brain_action(action, now),
            Input::BrainLost(why) => self.brain_lost(why, now),
            Input::Recognized { side: Side::Caller, turn, result } => self.on_transcript(turn, result, now),
            Input::Recognized { side: Side::Agent, result, .. } => self.on_agent_transcript(result),
            Input::Typed(utterance) => self.on_typed(utterance, now),
            Input::Streamed { utterance, kind, result } => self.on_streamed(utterance, kind, result, now),
            Input::AgentDialed(result) => self.on_agent_dialed(result, now),
            Input::AgentLegEnded(reason) if self.survey_after_agent() => self.agent_hung_up_first(reason, now),
            Input::AgentLegEnded(reason) => self.end(&reason),
            Input::CallbackStored(result) => self.on_callback_stored(result, now),
            Input::Drain { deadline } => self.timers.set(Timer::Drain, deadline.max(now)),
            Input::DrainLifted => self.timers.stop(Timer::Drain),
            Input::Shutdown => self.end("gateway-shutdown"),
        }
        self.log_ready_turn();
    }

    /// A supervisor's command (Ops API): answered at once.
    pub fn control(&mut self, command: Control, now: Instant) -> ControlAnswer {
        tracing::info!(call_id = %self.info.call_id, command = ?command, "ops control");
        let answer = match command {
            Control::Hangup { reason } => {
                let reason = if reason.trim().is_empty() { "ops-hangup".to_string() } else { reason };
                self.end(&reason);
                Ok("hanging up".to_string())
            }
            Control::Escalate { reason } => self.escalate_by_operator(&reason, now),
            Control::Say { text, language } => self.say_by_operator(&text, language.as_deref(), now),
        };
        self.log_ready_turn();
        answer
    }

    // ------------------------------------------------------------------ timers

    fn on_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Reply => self.on_reply_overdue(now),
            Timer::NoInput => self.on_no_input(now),
            Timer::Recognition => self.on_recognition_overdue(now),
            Timer::Synthesis => self.on_synthesis_overdue(now),
            Timer::Ring => {
                let attempt = self.dial_attempts;
                let reason = "the agent's phone did not report in time".to_string();
                self.on_agent_dialed(DialResult::Failed { attempt, status: None, reason }, now);
            }
            Timer::Hangup => {
                let reason = self.hangup_reason.take().unwrap_or_else(|| "bot-hangup".into());
                if self.brain_hung_up && self.survey_after_ai() {
                    self.ask_survey(reason, now);
                } else {
                    self.end(&reason);
                }
            }
            Timer::MaxDuration => {
                self.failure.get_or_insert_with(|| "max-duration".into());
                self.end("max-duration");
            }
            Timer::Drain => self.goodbye("drain-timeout", now),
            Timer::DigitGap | Timer::DigitsOverall => self.finish_collecting(now),
            Timer::SurveyAnswer if self.hangup_reason.is_none() => self.survey_unanswered(now),
            Timer::SurveyAnswer => {} // the call is already ending (a drain's goodbye)
        }
        self.log_ready_turn();
    }

    fn on_reply_overdue(&mut self, now: Instant) {
        if !self.filler_played {
            // Principle: never dead air. A filler buys the brain one more period.
            tracing::warn!(call_id = %self.info.call_id, "brain is slow: playing a filler");
            let filler = super::prompts::filler(&self.language);
            self.say_local(filler, false, now);
            self.filler_played = true;
            self.timers.set(Timer::Reply, now + self.settings.reply_timeout);
        } else {
            self.brain_lost("brain did not answer in time".into(), now);
        }
    }

    /// The caller had the floor and said nothing: the brain reprompts, triage counts it.
    fn on_no_input(&mut self, now: Instant) {
        let Some(since) = self.floor_since.take() else { return };
        if !self.handoff.is_idle() || self.hangup_reason.is_some() {
            return;
        }
        self.no_inputs += 1;
        let silence_ms = now.saturating_duration_since(since).as_millis() as u32;
        self.event(CallEvent::NoInput { call_id: self.info.call_id.clone(), count: self.no_inputs, silence_ms, at_ms: now_ms() });
        let decision = self.triage.on_silence(self.turns_started, silence_ms);
        if self.brain_up {
            // The reprompt is a reply like any other: if the brain stays silent, a filler and
            // then the apology follow, never dead air.
            self.expect_reply(now);
            self.send_brain(caller_event::Event::Silence(Silence { duration_ms: silence_ms }));
        }
        self.on_triage(decision, false, now);
    }

    /// A caller utterance has been with the recognizer too long: ask them to say it again.
    fn on_recognition_overdue(&mut self, now: Instant) {
        let Some((&turn_no, _)) = self.recognizing.iter().next() else { return };
        if let Some(turn) = self.recognizing.remove(&turn_no) {
            tracing::warn!(call_id = %self.info.call_id, turn = turn_no, speech_ms = turn.speech_ms, "recognition is late: asking the caller to repeat");
        }
        self.in_progress.awaiting_early = None;
        if !self.recognizing.is_empty() {
            self.timers.set(Timer::Recognition, now + self.settings.recognition_timeout);
        }
        if self.handoff.is_idle() && self.hangup_reason.is_none() && !self.voice.speaking {
            let line = super::prompts::not_heard(&self.language);
            self.say_local(line, true, now);
        }
    }

    /// A line has been with the synthesizer too long: drop it, say a cached line instead.
    fn on_synthesis_overdue(&mut self, now: Instant) {
        if !self.voice.speaking || self.voice.has_audio() {
            return;
        }
        if std::mem::replace(&mut self.synthesis_fallback_used, true) {
            // Even the cached line did not play: the voice is broken, end cleanly.
            tracing::error!(call_id = %self.info.call_id, "speech synthesis is stuck: ending the call");
            self.failure.get_or_insert_with(|| "speech synthesis stuck".into());
            self.end("synthesis-stuck");
            return;
        }
        tracing::warn!(call_id = %self.info.call_id, "speech synthesis is late: playing a cached line");
        self.out.push_back(Effect::Hush);
        self.voice = BotVoice::default();
        let filler = super::prompts::filler(&self.language);
        self.say_local(filler, true, now);
    }

    // ------------------------------------------------------------------ caller audio

    fn on_frame(&mut self, frame: Box<[i16; FRAME_16K]>, now: Instant) {
        let interruptible = self.voice.speaking && self.voice.interruptible && self.handoff.is_idle();
        match self.listener.push(frame) {
            Some(Heard::Onset) => {
                let action = self.barge.on_onset(interruptible);
                self.voice_action(action, now);
            }
            Some(Heard::Noise) => {
                let action = self.barge.on_noise();
                self.voice_action(action, now);
            }
            Some(Heard::Started) => {
                // The caller took the floor: no reprompt while they speak.
                self.floor_since = None;
                self.timers.stop(Timer::NoInput);
                self.speculation = None;
                if let Some((turn_no, audio)) = self.in_progress.awaiting_early.take() {
                    // The caller speaks again before the last utterance's early decode is back;
                    // that result will be dropped as stale, so decode the utterance on its own.
                    self.transcribe(Side::Caller, turn_no, audio, now);
                }
                self.streaming.start();
                self.in_progress = InProgress { number: self.in_progress.number + 1, ..InProgress::default() };
                let action = self.barge.on_speech(interruptible);
                self.voice_action(action, now);
            }
            Some(Heard::Finished(u)) => {
                let speech_end = now - Duration::from_millis(u.ended_ms_ago);
                let speech_start = speech_end - Duration::from_millis(u64::from(u.speech_ms));
                let mut turn = Turn::new(0, speech_end, u.speech_ms);
                turn.loudness_dbfs = Some(u.loudness_dbfs);
                turn.silence_before_ms = self.caller_silence_before(speech_start);
                if self.streaming.early_covers(u.end_ms) {
                    // Nothing was said after the early decode: it is this utterance's transcript.
                    if let Some((_, transcript)) = self.in_progress.early.take() {
                        let turn_no = self.start_recognizing(turn, now);
                        self.on_transcript(turn_no, Ok(transcript), now);
                        return;
                    }
                    if self.streaming.early_pending() {
                        let turn_no = self.start_recognizing(turn, now);
                        self.in_progress.awaiting_early = Some((turn_no, u.audio));
                        return;
                    }
                }
                let turn_no = self.start_recognizing(turn, now);
                self.transcribe(Side::Caller, turn_no, u.audio, now);
            }
            None => self.poll_streaming(),
        }
    }

    /// How long the caller was silent with the floor before speaking at `speech_start`: only the
    /// time after the bot finished (speaking over the bot, or right after it, is no silence).
    fn caller_silence_before(&self, speech_start: Instant) -> u32 {
        match self.floor_since {
            Some(since) => speech_start.saturating_duration_since(since).as_millis() as u32,
            None => 0,
        }
    }

    /// Carries out a barge-in decision on the bot's voice.
    fn voice_action(&mut self, action: Option<VoiceAction>, now: Instant) {
        match action {
            Some(VoiceAction::Pause) => {
                self.out.push_back(Effect::Media(MediaCommand::Pause));
                self.voice.paused_at = Some(now);
                tracing::debug!(call_id = %self.info.call_id, "caller onset: reply paused");
            }
            Some(VoiceAction::Resume) => {
                self.out.push_back(Effect::Media(MediaCommand::Resume));
                if let Some(at) = self.voice.paused_at.take() {
                    self.voice.paused_for += now.saturating_duration_since(at);
                }
                tracing::info!(call_id = %self.info.call_id, "caller noise, not speech: reply resumed");
            }
            Some(VoiceAction::Stop) => self.barge_in(now),
            None => {}
        }
    }

    /// The caller spoke over the bot: stop talking at once and tell the brain what was heard.
    fn barge_in(&mut self, now: Instant) {
        self.out.push_back(Effect::Hush);
        self.timers.stop(Timer::Synthesis);
        let (heard, unheard) = self.voice.heard_split(now);
        tracing::info!(call_id = %self.info.call_id, heard = %heard, unheard = %unheard, "barge-in");
        self.voice = BotVoice::default();
        self.send_brain(caller_event::Event::BargeIn(crate::proto::dialog::BargeIn { heard_text: heard, unheard_text: unheard }));
    }

    /// Starts a partial or early decode of the utterance in progress when one is due.
    fn poll_streaming(&mut self) {
        if !self.handoff.is_idle() {
            return;
        }
        let (Some(silence_ms), Some(mark)) = (self.listener.silence_ms(), self.listener.speech_mark_ms()) else {
            return;
        };
        if self.in_progress.early.as_ref().is_some_and(|(covered, _)| *covered != mark) {
            // The caller went on after the early decode: its text, the wait it chose and any
            // reply prepared for it are stale.
            self.in_progress.early = None;
            self.speculation = None;
            let wait = self.listener.config().end_silence_ms;
            self.listener.set_end_silence_ms(wait);
        }
        let Some(audio) = self.listener.utterance_audio() else { return };
        let audio_ms = (audio.len() / (FRAME_16K / 20)) as u64;
        let Some(kind) = self.streaming.poll(audio_ms, silence_ms, mark) else { return };
        let audio = audio.to_vec();
        let language = self.decode_language(Side::Caller);
        self.out.push_back(Effect::Decode { utterance: self.in_progress.number, kind, audio, language });
    }

    /// The language a decode is pinned to, or whisper detects it (leaning on the caller's).
    fn decode_language(&self, side: Side) -> LanguageChoice {
        let pinned = if !self.settings.multilingual {
            Some("en".into())
        } else if side == Side::Caller {
            // The utterance's partials already found its language: no second detection.
            self.info.language.clone().or_else(|| self.in_progress.language.clone())
        } else {
            self.info.language.clone()
        };
        let leaning = if side == Side::Caller { self.caller_language.clone() } else { None };
        LanguageChoice { language: pinned, leaning }
    }

    fn on_streamed(&mut self, utterance: u32, kind: DecodeKind, result: Result<Transcript, String>, now: Instant) {
        if utterance != self.in_progress.number {
            return; // its utterance is over and was recognized on its own
        }
        let early = matches!(kind, DecodeKind::Early { .. });
        match kind {
            DecodeKind::Partial => self.streaming.partial_done(),
            DecodeKind::Early { .. } => self.streaming.early_done(),
        }
        let transcript = match result {
            Ok(t) => t,
            Err(e) => {
                if let Some((turn_no, audio)) = self.in_progress.awaiting_early.take_if(|_| early) {
                    // The early decode was to be the final: decode the utterance after all.
                    tracing::debug!(call_id = %self.info.call_id, error = %e, "early decode failed: decoding again");
                    self.transcribe(Side::Caller, turn_no, audio, now);
                }
                return;
            }
        };
        // Language identification needs a second or so of speech: a short first partial
        // of Mandarin is often taken for English, and fixing that for the whole utterance
        // would decode it in the wrong language. Until then each decode detects on its own.
        // Even past a second, a partial only confirms the language the caller has been
        // speaking: on benchmark calls, partials of rough English lines were identified as
        // Mandarin (with confidence up to 0.68) where the whole utterance was not, and pinning
        // them had the final decoded, and answered, in Mandarin. A first utterance, or a
        // switch, is identified on the whole utterance (the early decode or the final).
        let confirms = self.caller_language.as_deref() == Some(transcript.language.as_str());
        if early || (confirms && transcript.audio_ms >= LANGUAGE_AFTER_MS) {
            self.in_progress.language.get_or_insert_with(|| transcript.language.clone());
        }
        // Only the early decode is the awaited final: a partial (started before it, and slower
        // under load) holds only the first words.
        if let Some((turn_no, _)) = self.in_progress.awaiting_early.take_if(|_| early) {
            self.on_transcript(turn_no, Ok(transcript), now);
            return;
        }
        if self.listener.speech_mark_ms().is_none() {
            return; // the utterance is over: a late partial steers nothing
        }
        let cfg = *self.listener.config();
        match kind {
            DecodeKind::Early { speech_mark_ms } => {
                if self.listener.speech_mark_ms() != Some(speech_mark_ms) {
                    return; // the caller went on speaking: this was not the whole utterance
                }
                let (wait, wait_ms) = silence_wait(&transcript.text, &cfg);
                tracing::debug!(call_id = %self.info.call_id, text = %transcript.text, ?wait, wait_ms, decode_ms = transcript.decode_ms, "early transcript");
                self.listener.set_end_silence_ms(wait_ms);
                self.send_preview(&transcript);
                self.in_progress.early = Some((speech_mark_ms, transcript));
            }
            DecodeKind::Partial => {
                // A partial ends some way before the speech does: it can only tell that more
                // is coming (digits, a filler), never that the caller is done.
                let (wait, _) = silence_wait(&transcript.text, &cfg);
                tracing::debug!(call_id = %self.info.call_id, text = %transcript.text, ?wait, decode_ms = transcript.decode_ms, "partial transcript");
                if self.in_progress.early.is_none() {
                    let ms = if wait == WaitKind::Hesitant { cfg.hesitant_silence_ms } else { cfg.end_silence_ms };
                    self.listener.set_end_silence_ms(ms);
                }
            }
        }
    }

    /// Sends the early transcript to the brain as a preview, so a brain that supports it
    /// answers ahead and the reply can be synthesized before the utterance is even over.
    fn send_preview(&mut self, transcript: &Transcript) {
        let text = clean_transcript(&transcript.text);
        if text.is_empty() || !self.brain_up || !self.handoff.is_idle() {
            return;
        }
        self.speculation = Some(Speculation { heard: text.clone(), chunks: VecDeque::new() });
        self.send_brain(caller_event::Event::Utterance(Utterance {
            text,
            is_final: false,
            confidence: transcript.confidence,
            language: transcript.language.clone(),
            timings: None,
            turn: self.turns_started + 1,
            continues: false,
        }));
    }

    /// A Say chunk answering the preview: synthesize it now, play it only if confirmed.
    fn on_preview_say(&mut self, text: String, language: &str) {
        let lang = self.lang_of(language);
        let Some(speculation) = self.speculation.as_mut() else { return }; // already dropped
        self.next_prepared += 1;
        let id = self.next_prepared;
        speculation.chunks.push_back((id, text.clone(), lang));
        self.out.push_back(Effect::Prepare { id, text, lang });
    }

    /// The audio prepared ahead for a final Say chunk, if the preview had exactly these words
    /// next. Anything else ends the speculation.
    fn take_speculated(&mut self, text: &str, lang: Lang) -> Option<u64> {
        let spec = self.speculation.as_mut()?;
        let id = match spec.chunks.pop_front() {
            Some((id, words, l)) if words == text && l == lang => Some(id),
            _ => None,
        };
        if id.is_none() || spec.chunks.is_empty() {
            self.speculation = None;
        }
        id
    }

    /// Numbers a caller utterance's turn and keeps it until its transcript arrives.
    fn start_recognizing(&mut self, mut turn: Turn, now: Instant) -> u32 {
        self.turns_started += 1;
        turn.number = self.turns_started;
        self.recognizing.insert(turn.number, turn);
        if !self.timers.is_set(Timer::Recognition) {
            self.timers.set(Timer::Recognition, now + self.settings.recognition_timeout);
        }
        self.turns_started
    }

    /// Sends one side's utterance to the recognizer; the result comes back as an input.
    fn transcribe(&mut self, side: Side, turn: u32, audio: Vec<i16>, _now: Instant) {
        let language = self.decode_language(side);
        self.out.push_back(Effect::Transcribe { side, turn, audio, language });
    }

    fn on_transcript(&mut self, turn_no: u32, result: Result<Transcript, String>, now: Instant) {
        let Some(turn) = self.recognizing.remove(&turn_no) else { return };
        if self.recognizing.is_empty() {
            self.timers.stop(Timer::Recognition);
        }
        let transcript = match result {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(call_id = %self.info.call_id, turn = turn_no, error = %e, "recognition failed");
                self.yield_floor_if_quiet(now);
                return;
            }
        };
        self.event(CallEvent::Recognized {
            call_id: self.info.call_id.clone(),
            audio_ms: transcript.audio_ms,
            decode_ms: transcript.decode_ms,
            at_ms: now_ms(),
        });
        self.on_caller_words(turn, transcript, &[], true, now);
    }

    /// A typed utterance: the caller takes the floor and is heard at once, word for word.
    fn on_typed(&mut self, typed: TypedUtterance, now: Instant) {
        let since = self.floor_since.take();
        self.timers.stop(Timer::NoInput);
        self.speculation = None;
        let mut turn = Turn::new(0, now, 0);
        turn.loudness_dbfs = typed.loudness_dbfs;
        turn.silence_before_ms = since.map_or(0, |since| now.saturating_duration_since(since).as_millis() as u32);
        self.turns_started += 1;
        turn.number = self.turns_started;
        // A recognizer pinned to the call's language reads it in that language; else it tells
        // Mandarin from English by what it hears, here by the script.
        let language = self.info.language.clone().unwrap_or_else(|| {
            if crate::brain::text::has_cjk(&typed.text) { "zh" } else { "en" }.to_string()
        });
        let transcript = Transcript { text: typed.text, language, confidence: typed.confidence, audio_ms: 0, decode_ms: 0 };
        self.on_caller_words(turn, transcript, &typed.alternatives, false, now);
    }

    /// What the caller said in `turn` is known: it goes to triage, the brain and the record.
    /// `spoken`: heard by the recognizer (typed words come whole, never cut by a pause).
    fn on_caller_words(&mut self, mut turn: Turn, transcript: Transcript, alternatives: &[String], spoken: bool, now: Instant) {
        let turn_no = turn.number;
        let text = clean_transcript(&transcript.text);
        if text.is_empty() {
            tracing::info!(call_id = %self.info.call_id, turn = turn_no, raw = %transcript.text, "no words recognized");
            // A cough or a click: the floor is still the caller's, and the silence goes on.
            self.yield_floor_if_quiet(now);
            return;
        }
        if self.speculation.as_ref().is_some_and(|s| s.heard != text) {
            self.speculation = None; // prepared for other words
        }
        turn.transcript_at = Some(now);
        self.language = transcript.language.clone();
        // The record keeps each piece as it was said; the brain and triage get the sentence.
        self.said("caller", turn_no, &text);
        if self.is_surveying() {
            self.survey_words(&text, now);
            return;
        }
        if !self.handoff.is_idle() {
            return; // handed over (or being handed over): the AI only keeps the record now
        }
        let continued = if spoken { self.continuation_of(&turn) } else { None };
        let text = match &continued {
            Some(earlier) => {
                tracing::info!(call_id = %self.info.call_id, turn = turn_no, continues = earlier.turn, "the caller went on with their sentence");
                self.triage.continued(earlier.turn);
                join_fragments(&earlier.text, &text)
            }
            None => text,
        };
        if spoken {
            self.last_words = Some(LastWords { turn: turn_no, text: text.clone(), speech_end: turn.speech_end });
        }
        // Card and ID numbers are masked in everything but what the brain is sent.
        let shown = crate::redact::redact(&text, &self.settings.redaction).into_owned();
        turn.heard = shown.clone();
        turn.language = transcript.language.clone();
        turn.confidence = transcript.confidence;
        // Only a reading the recognizer was sure of tells the call's language.
        if spoken && transcript.confidence >= UNSURE_BELOW {
            self.caller_language = Some(transcript.language.clone());
        }
        tracing::info!(
            call_id = %self.info.call_id, turn = turn_no, language = %transcript.language, text = %shown,
            confidence = transcript.confidence, decode_ms = transcript.decode_ms, "recognized"
        );
        let recognized_ms = turn.timings().transcript_ms.unwrap_or(0) as u32;
        let speech_ms = turn.speech_ms;
        let decision = self.triage.on_utterance_heard(
            &UtteranceInput {
                turn: turn_no,
                text: &text,
                language: &transcript.language,
                confidence: transcript.confidence,
                loudness_dbfs: turn.loudness_dbfs,
                silence_before_ms: turn.silence_before_ms,
            },
            alternatives,
        );
        self.no_inputs = 0;
        self.start_answering(turn, now);
        self.send_brain(caller_event::Event::Utterance(Utterance {
            text,
            is_final: true,
            confidence: transcript.confidence,
            language: transcript.language,
            timings: Some(TurnTimings { speech_ms, recognized_ms }),
            turn: turn_no,
            continues: continued.is_some(),
        }));
        // The brain still hears the utterance (its annotations and summary feed the handoff
        // packet); the caller is handed over after the bridging line.
        self.on_triage(decision, false, now);
    }

    /// The caller's earlier words this utterance goes on with: they started speaking again
    /// within `continuation_ms` of their last utterance's end, and have heard no reply since.
    fn continuation_of(&mut self, turn: &Turn) -> Option<LastWords> {
        let window = Duration::from_millis(u64::from(self.settings.endpointing.continuation_ms));
        let earlier = self.last_words.take()?;
        let speech_start = turn.speech_end.checked_sub(Duration::from_millis(u64::from(turn.speech_ms))).unwrap_or(turn.speech_end);
        (speech_start.saturating_duration_since(earlier.speech_end) <= window && !window.is_zero()).then_some(earlier)
    }

    fn on_agent_transcript(&mut self, result: Result<Transcript, String>) {
        match result {
            Ok(t) => {
                let text = clean_transcript(&t.text);
                if !text.is_empty() {
                    self.said("agent", self.turns_started, &text);
                }
            }
            Err(e) => tracing::warn!(call_id = %self.info.call_id, error = %e, "agent speech not recognized"),
        }
    }

    // ------------------------------------------------------------------ keypad

    fn on_dtmf(&mut self, digit: char, duration_ms: u32, now: Instant) {
        tracing::info!(call_id = %self.info.call_id, digit = %digit, duration_ms, "dtmf");
        if self.is_surveying() {
            self.survey_key(digit, now);
            return;
        }
        if !self.handoff.is_idle() {
            return; // keypad presses during a handoff are the agent's business
        }
        self.floor_since = None;
        self.timers.stop(Timer::NoInput);
        if let Some(collecting) = self.collecting.as_mut() {
            // Digits the brain asked for (an account number): no menu shortcut, no triage.
            if collecting.terminator == Some(digit) {
                self.finish_collecting(now);
                return;
            }
            collecting.digits.push(digit);
            let gap = collecting.gap;
            if collecting.digits.chars().count() >= collecting.max_digits {
                self.finish_collecting(now);
            } else {
                self.timers.set(Timer::DigitGap, now + gap);
            }
            return;
        }
        self.turns_started += 1;
        let mut turn = Turn::new(self.turns_started, now, duration_ms);
        turn.transcript_at = Some(now);
        turn.heard = format!("DTMF {digit}");
        turn.language = self.language.clone();
        let decision = self.triage.on_dtmf(turn.number, digit);
        self.no_inputs = 0;
        self.start_answering(turn, now);
        self.on_triage(decision, false, now);
        self.send_brain(caller_event::Event::Dtmf(Dtmf { digits: digit.to_string(), duration_ms }));
    }

    /// The brain asked for digits: collect them until the count, the terminator or a timeout.
    fn start_collecting(&mut self, c: crate::proto::dialog::CollectDigits, now: Instant) {
        let overall = if c.timeout_ms > 0 { Duration::from_millis(u64::from(c.timeout_ms)) } else { self.settings.digits_timeout };
        self.collecting = Some(Collecting {
            max_digits: if c.max_digits == 0 { usize::MAX } else { c.max_digits as usize },
            terminator: c.terminator.chars().next(),
            digits: String::new(),
            gap: self.settings.digit_gap,
        });
        self.timers.set(Timer::DigitsOverall, now + overall);
        self.timers.stop(Timer::DigitGap);
        // The keypad timers stand for the no-input while digits are collected.
        self.floor_since = None;
        self.timers.stop(Timer::NoInput);
    }

    /// Sends what was keyed as one entry (empty: the caller keyed nothing, which is silence).
    fn finish_collecting(&mut self, now: Instant) {
        self.timers.stop(Timer::DigitGap);
        self.timers.stop(Timer::DigitsOverall);
        let Some(c) = self.collecting.take() else { return };
        if c.digits.is_empty() {
            self.floor_since.get_or_insert(now);
            self.on_no_input(now);
            return;
        }
        self.turns_started += 1;
        let mut turn = Turn::new(self.turns_started, now, 0);
        turn.transcript_at = Some(now);
        // Keyed numbers are masked like spoken ones.
        turn.heard = format!("DTMF {}", crate::redact::redact(&c.digits, &self.settings.redaction));
        turn.language = self.language.clone();
        self.no_inputs = 0;
        self.start_answering(turn, now);
        self.send_brain(caller_event::Event::Dtmf(Dtmf { digits: c.digits, duration_ms: 0 }));
    }

    // ------------------------------------------------------------------ the brain

    /// The caller has said (or keyed) something the brain must answer: that becomes the turn
    /// whose reply is being timed.
    fn start_answering(&mut self, turn: Turn, now: Instant) {
        // A reply still owed for an earlier turn is superseded: log it as it stands.
        if let Some(mut previous) = self.answering.take() {
            if previous.mark_logged() {
                self.turn_done(&previous);
            }
        }
        self.reply_tag_floor = self.tags.load(Ordering::Relaxed);
        self.reply_replaced = false;
        self.answering = Some(turn);
        self.turns_completed += 1;
        // With the brain gone the call is already saying goodbye: no reply is owed.
        if self.brain_up {
            self.expect_reply(now);
        }
    }

    fn expect_reply(&mut self, now: Instant) {
        self.filler_played = false;
        self.timers.set(Timer::Reply, now + self.settings.reply_timeout);
    }

    fn on_brain_action(&mut self, action: BotAction, now: Instant) {
        let Some(action) = action.action else { return };
        match action {
            bot_action::Action::Say(say) if say.preview => self.on_preview_say(say.text, &say.language),
            bot_action::Action::Say(say) if !self.handoff.is_idle() => {
                tracing::debug!(call_id = %self.info.call_id, text = %say.text, "brain speaks during a handoff: not played");
            }
            bot_action::Action::Say(say) if self.reply_replaced => {
                tracing::debug!(call_id = %self.info.call_id, text = %say.text, "the caller was asked to clarify: brain reply not played");
            }
            bot_action::Action::Say(say) => {
                self.timers.stop(Timer::Reply);
                let lang = self.lang_of(&say.language);
                if let Some(turn) = self.answering.as_mut() {
                    turn.on_reply_text(&say.text, say.last, now);
                }
                if !say.text.trim().is_empty() {
                    self.start_speaking(say.interruptible, now);
                }
                let prepared = self.take_speculated(&say.text, lang);
                self.out.push_back(Effect::Say { text: say.text, lang, ends_reply: say.last, prepared });
            }
            bot_action::Action::SetLanguage(l) => match l.language.parse::<Lang>() {
                // The caller chose it (keypad): recognition reads only this language from now
                // on, as for a call that started with it (no more detection on short turns).
                Ok(lang) => {
                    tracing::info!(call_id = %self.info.call_id, language = lang.as_str(), "caller chose the language");
                    self.info.language = Some(lang.as_str().to_string());
                    self.language = lang.as_str().to_string();
                    // The turn that chose it is answered in it.
                    if let Some(turn) = self.answering.as_mut() {
                        turn.language = self.language.clone();
                    }
                }
                Err(_) => tracing::warn!(call_id = %self.info.call_id, language = %l.language, "brain set a language the gateway cannot recognize; ignored"),
            },
            bot_action::Action::Hangup(h) => {
                let reason = if h.reason.is_empty() { "bot-hangup".to_string() } else { h.reason };
                tracing::info!(call_id = %self.info.call_id, %reason, "brain ends the call");
                self.brain_hung_up = true;
                // Let the goodbye finish playing, but never wait forever.
                let grace = if self.voice.speaking { GOODBYE_GRACE } else { HANGUP_PAUSE };
                self.hang_up_after(reason, grace, now);
            }
            bot_action::Action::Escalate(e) => {
                tracing::info!(
                    call_id = %self.info.call_id, reason = %e.reason, summary = %e.summary, priority = e.priority,
                    "brain proposes escalation"
                );
                self.brain_summary = e.summary.clone();
                let overruled_before = self.triage.overruled().len();
                let decision = self.triage.on_brain_escalate(self.turns_started, &e.reason, &e.summary);
                if self.triage.overruled().len() > overruled_before {
                    self.withdraw_announced_transfer(&e.reason, now);
                } else {
                    // The brain announced the transfer in its own reply.
                    self.on_triage(decision, true, now);
                }
            }
            bot_action::Action::Transfer(t) => {
                tracing::info!(call_id = %self.info.call_id, target = %t.target, "transfer requested");
            }
            bot_action::Action::CollectDigits(c) => {
                tracing::debug!(call_id = %self.info.call_id, max = c.max_digits, "brain collects digits");
                self.start_collecting(c, now);
            }
            bot_action::Action::Annotate(a) => {
                tracing::info!(call_id = %self.info.call_id, intent = %a.intent, sentiment = %a.sentiment, "annotation");
                // Slots known after this reading (a brain may send all of them or only new ones).
                let slots_filled = self.slots.len() + a.slots.keys().filter(|k| !self.slots.contains_key(*k)).count();
                let decision = self.triage.on_brain(self.turns_started, &a.intent, &a.sentiment, slots_filled);
                if !a.intent.is_empty() {
                    self.intent = a.intent.clone();
                }
                if crate::brain::conversation::is_topic(&a.intent) && !self.topics.contains(&a.intent) {
                    self.topics.push(a.intent.clone());
                }
                if !a.sentiment.is_empty() {
                    self.sentiments.push(a.sentiment.clone());
                }
                self.slots.extend(a.slots);
                self.on_triage(decision, false, now);
            }
        }
    }

    /// The brain is gone or silent: apologize and end the call cleanly, with the reason logged.
    fn brain_lost(&mut self, why: String, now: Instant) {
        let was_up = std::mem::replace(&mut self.brain_up, false);
        self.timers.stop(Timer::Reply);
        if was_up {
            self.event(CallEvent::BrainFailed { call_id: self.info.call_id.clone(), reason: why.clone(), at_ms: now_ms() });
        }
        if self.hangup_reason.is_some() {
            // Already saying goodbye (the brain hung up, or an earlier failure): once is enough.
            tracing::debug!(call_id = %self.info.call_id, reason = %why, "brain lost while the call is ending");
            return;
        }
        if !self.handoff.is_idle() {
            return; // the caller is with (or on the way to) a person: they need no brain
        }
        self.failure.get_or_insert(why);
        let apology = super::prompts::apology(&self.language);
        self.say_local(apology, true, now);
        self.hang_up_after("brain-unavailable".into(), GOODBYE_GRACE, now);
    }

    pub(super) fn send_brain(&mut self, event: caller_event::Event) {
        if self.brain_up {
            self.out.push_back(Effect::ToBrain(event));
        }
    }

    // ------------------------------------------------------------------ the bot's voice

    fn start_speaking(&mut self, interruptible: bool, now: Instant) {
        if !self.voice.speaking {
            self.voice = BotVoice::speaking(interruptible);
            self.timers.set(Timer::Synthesis, now + self.settings.synthesis_timeout);
        }
        self.voice.fully_queued = false;
        // The bot holds the floor: no reprompt while it speaks.
        self.floor_since = None;
        self.timers.stop(Timer::NoInput);
    }

    /// Speaks a line the gateway itself owns (filler, apology, handoff lines), outside any
    /// brain reply. These lines are part of what the caller heard: the agent's transcript and
    /// the record show them too.
    fn say_local(&mut self, text: &str, ends_reply: bool, now: Instant) {
        self.start_speaking(false, now);
        let lang = self.lang_of("");
        self.out.push_back(Effect::Say { text: text.to_string(), lang, ends_reply, prepared: None });
        self.said("bot", self.turns_started, text);
    }

    /// The bot finished speaking: the floor is the caller's.
    fn reply_finished_playing(&mut self, now: Instant) {
        self.voice.speaking = false;
        // The caller heard the answer: what they say next is a new turn.
        self.last_words = None;
        self.barge.reset();
        self.send_pending_refer();
        // (A drain's goodbye during the survey ends the call instead: it set a hang-up.)
        if self.is_surveying() && self.hangup_reason.is_none() {
            self.survey_question_played(now);
            return;
        }
        if self.hangup_reason.is_some() {
            // Hang up right after the last word, not after the grace period.
            self.timers.set(Timer::Hangup, now);
            return;
        }
        self.yield_floor_if_quiet(now);
    }

    /// Gives the caller the floor (and starts counting their silence) when nothing else holds
    /// it: the bot is quiet, no reply is owed, no utterance is in progress or being recognized,
    /// and the call is with the AI.
    fn yield_floor_if_quiet(&mut self, now: Instant) {
        let busy = self.voice.speaking
            || self.timers.is_set(Timer::Reply)
            || !self.recognizing.is_empty()
            || self.listener.speech_mark_ms().is_some()
            || !self.handoff.is_idle()
            || self.hangup_reason.is_some()
            || self.collecting.is_some()
            || self.is_surveying();
        if busy {
            return;
        }
        self.floor_since = Some(now);
        if !self.settings.no_input.is_zero() {
            self.timers.set(Timer::NoInput, now + self.settings.no_input);
        }
    }

    fn log_ready_turn(&mut self) {
        let Some(turn) = self.answering.as_mut() else { return };
        if turn.take_ready_to_log() {
            let turn = turn.clone();
            self.turn_done(&turn);
            if !turn.reply.is_empty() {
                self.said("bot", turn.number, &turn.reply);
            }
        }
    }

    fn turn_done(&mut self, turn: &Turn) {
        self.event(CallEvent::Turn { call_id: self.info.call_id.clone(), turn: turn.summary(), at_ms: now_ms() });
    }

    // ------------------------------------------------------------------ operator

    fn escalate_by_operator(&mut self, reason: &str, now: Instant) -> ControlAnswer {
        if self.escalated.is_some() || !self.handoff.is_idle() {
            return Err(ControlRefused::NotNow("the call was already handed over".into()));
        }
        match self.triage.on_operator_escalate(self.turns_started, reason) {
            Decision::Escalate(e) => {
                self.on_triage(Decision::Escalate(e), false, now);
                Ok("handing the caller over to an agent".into())
            }
            _ => Err(ControlRefused::NotNow("the call was already handed over".into())),
        }
    }

    fn say_by_operator(&mut self, text: &str, language: Option<&str>, now: Instant) -> ControlAnswer {
        let text = text.trim();
        if !self.handoff.is_idle() {
            return Err(ControlRefused::NotNow("the caller is with a person: the gateway does not speak now".into()));
        }
        let lang: Lang = match language.filter(|l| !l.is_empty()) {
            Some(l) => l.parse().map_err(|_| ControlRefused::NotNow(format!("language {l:?}: use \"en\" or \"zh\"")))?,
            None => self.lang_of(""),
        };
        self.said("supervisor", self.turns_started, text);
        // A line on its own ends a reply (so a pending hang-up or transfer can follow it); in
        // the middle of the bot's reply it is queued after it without ending it.
        let ends_reply = !self.voice.speaking;
        self.start_speaking(false, now);
        self.out.push_back(Effect::Say { text: text.to_string(), lang, ends_reply, prepared: None });
        Ok("speaking".into())
    }

    // ------------------------------------------------------------------ the end

    /// Ends the call after `grace` (sooner, once the bot's last word has played).
    fn hang_up_after(&mut self, reason: String, grace: Duration, now: Instant) {
        self.hangup_reason = Some(reason);
        self.floor_since = None;
        self.timers.stop(Timer::NoInput);
        let at = now + grace;
        if self.timers.get(Timer::Hangup).is_none_or(|t| t > at) {
            self.timers.set(Timer::Hangup, at);
        }
    }

    /// A short goodbye, then the BYE (the drain's deadline).
    fn goodbye(&mut self, reason: &str, now: Instant) {
        if self.hangup_reason.is_some() {
            return;
        }
        tracing::info!(call_id = %self.info.call_id, reason, "saying goodbye");
        if self.is_bridged() || !self.handoff.is_idle() {
            // The caller is with a person: the gateway does not talk over them.
            self.end(reason);
            return;
        }
        self.out.push_back(Effect::Hush);
        self.voice = BotVoice::default();
        let line = crate::handoff::line(crate::handoff::LineKind::Goodbye, &self.language);
        self.say_local(line, true, now);
        self.hang_up_after(reason.to_string(), GOODBYE_GRACE, now);
    }

    fn end(&mut self, reason: &str) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.timers = TimerTable::default();
        if matches!(self.handoff, Handoff::Bridged { .. } | Handoff::Ringing { .. }) {
            if let Handoff::Bridged { agent } = &self.handoff {
                self.agents.lock().unwrap_or_else(|e| e.into_inner()).free(agent);
            }
            self.out.push_back(Effect::ReleaseAgent);
        }
        self.handoff = Handoff::Over;
        let caller_hung_up = matches!(reason, "caller-hangup" | "caller-cancel" | "signaling-gone");
        if !caller_hung_up {
            self.out.push_back(Effect::Leg(LegCommand::Hangup { reason: reason.to_string() }));
        }
        self.send_brain(caller_event::Event::End(CallEnd { reason: reason.to_string() }));
        if let Some(mut turn) = self.answering.take() {
            if turn.mark_logged() && (!turn.heard.is_empty() || !turn.reply.is_empty()) {
                self.turn_done(&turn);
            }
        }
        let outcome = if self.escalated.is_some() {
            "escalated"
        } else if self.failure.is_some() {
            "failed"
        } else if self.turns_completed == 0 && caller_hung_up {
            "abandoned"
        } else {
            "contained"
        };
        self.out.push_back(Effect::Finish { reason: reason.to_string(), outcome });
    }

    /// The `Ended` event, once the driver has the media's final counters.
    pub fn ended_event(&self, reason: &str, outcome: &str, media: MediaStats, now: Instant) -> CallEvent {
        CallEvent::Ended {
            call_id: self.info.call_id.clone(),
            reason: reason.to_string(),
            outcome: outcome.to_string(),
            at_ms: now_ms(),
            summary: Some(Box::new(EndSummary {
                turns: self.turns_completed,
                duration_ms: now.saturating_duration_since(self.started).as_millis() as u64,
                escalation: self.escalated.clone(),
                failure: self.failure.clone(),
                timeline: self.timeline.clone(),
                media,
                intents: self.topics.clone(),
                survey: self.rating,
                // What the caller came for, in their own first words.
                summary: self
                    .history
                    .iter()
                    .find(|l| l.speaker == "caller")
                    .map(|l| l.text.chars().take(SUMMARY_MAX_CHARS).collect())
                    .unwrap_or_default(),
            })),
        }
    }

    // ------------------------------------------------------------------ helpers

    fn event(&mut self, event: CallEvent) {
        self.out.push_back(Effect::Event(event));
    }

    fn set_state(&mut self, state: CallState) {
        let name = state.as_str().to_string();
        if self.timeline.last().is_some_and(|(s, _)| *s == name) {
            return;
        }
        let at_ms = now_ms();
        self.timeline.push((name.clone(), at_ms));
        self.event(CallEvent::State { call_id: self.info.call_id.clone(), state: name, at_ms });
    }

    /// Records words said on the call, for the handoff packet and whoever watches the call.
    fn said(&mut self, speaker: &str, turn: u32, text: &str) {
        let text = crate::redact::redact(text, &self.settings.redaction).into_owned();
        self.history.push(TranscriptLine { turn, speaker: speaker.into(), text: text.clone() });
        self.event(CallEvent::Said {
            call_id: self.info.call_id.clone(),
            speaker: speaker.into(),
            text,
            language: self.language.clone(),
            turn,
            at_ms: now_ms(),
        });
    }

    /// The voice for `language`, or the call's current language when empty.
    fn lang_of(&self, language: &str) -> Lang {
        let code = if language.is_empty() { self.language.as_str() } else { language };
        code.parse::<Lang>().unwrap_or(Lang::En)
    }
}

pub fn channel_name(channel: Channel) -> String {
    format!("{channel:?}").to_lowercase()
}

/// One sentence from two pieces of it: Chinese runs on without a space.
fn join_fragments(earlier: &str, later: &str) -> String {
    let cjk = |s: &str| crate::brain::text::has_cjk(s);
    if cjk(earlier) && cjk(later) {
        format!("{earlier}{later}")
    } else {
        format!("{earlier} {later}")
    }
}

/// Whisper marks non-speech as "[BLANK_AUDIO]", "(music)" and the like; those are no words.

pub fn clean_transcript(raw: &str) -> String {
    let text = raw.trim();
    let bracketed = |open: char, close: char| text.starts_with(open) && text.ends_with(close);
    if text.is_empty() || bracketed('[', ']') || bracketed('(', ')') || bracketed('*', '*') {
        return String::new();
    }
    text.to_string()
}
