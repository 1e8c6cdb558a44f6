//! The call task: owns one call from answer to hang-up.
//!
//! Every input (caller audio frames, DTMF, playout progress, transcripts, brain actions,
//! signaling) arrives on a channel; the task handles one at a time, so no state is shared.
//! The protocol-level pieces it drives (VAD, endpointing, turn timings) are sans-IO cores.

mod control;
mod handoff;
mod records;

use super::listener::{Heard, Listener};
use super::speaker::{SayJob, Speaker, SpeakerEvent};
use super::turn::Turn;
use super::turn_taking::{heard_split, silence_wait, BargeIn as BargeInPolicy, DecodeKind, Streaming, VoiceAction, WaitKind};
use super::events::{now_ms, CallEvent};
use super::registry::{CallIdentity, CallState, ControlRequest, LiveCallHandle};
use super::{CallServices, DialOutcome, LegCommand, NewCall, SignalEvent};
use crate::dialog::{DialogError, DialogStream};
use crate::handoff::TranscriptLine;
use crate::media::session::{MediaCommand, MediaEvent, MediaStats, FRAME_16K};
use crate::triage::{Triage, UtteranceInput};
use crate::proto::dialog::{bot_action, caller_event, BargeIn, BotAction, CallEnd, CallStart, Dtmf, TurnTimings, Utterance};
use crate::speech::stt::{SttError, Transcript};
use crate::speech::tts::Lang;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::sleep_until;

/// Starts the task that owns `call`. The returned handle finishes when the call has ended
/// and its final log line is written.
pub fn spawn(
    services: Arc<CallServices>,
    call: NewCall,
    signals: mpsc::Receiver<SignalEvent>,
    leg: mpsc::Sender<LegCommand>,
) -> tokio::task::JoinHandle<()> {
    let guard = services.enter();
    tokio::spawn(async move {
        let _guard = guard;
        CallTask::new(services, call, leg).run(signals).await;
    })
}

/// Whose words a transcript holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Agent,
}

/// Everything that can wake the call task, gathered so each is handled with `&mut self`.
enum Input {
    Media(Option<MediaEvent>),
    Signal(Option<SignalEvent>),
    Brain(Option<Result<BotAction, DialogError>>),
    Recognized(Side, u32, Result<Transcript, SttError>),
    /// A decode of the utterance still in progress (see `turn_taking::streaming`).
    Streamed(StreamedDecode),
    AgentDialed(DialOutcome),
    Agent(handoff::AgentInput),
    Speaker(SpeakerEvent),
    /// A supervisor's command (Ops API).
    Control(ControlRequest),
    ReplyOverdue,
    HangupOverdue,
    MaxDuration,
}

/// Audio a partial must cover before its detected language is trusted for the rest of
/// the utterance.
const LANGUAGE_AFTER_MS: u32 = 1_000;

/// The result of a partial or early decode of utterance number `utterance`.
struct StreamedDecode {
    utterance: u32,
    kind: DecodeKind,
    result: Result<Transcript, SttError>,
}

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
    /// The preview transcript sent to the brain.
    heard: String,
    /// The preview's Say chunks in order: words, voice and their audio being synthesized.
    chunks: std::collections::VecDeque<(String, Lang, tokio::sync::oneshot::Receiver<Vec<i16>>)>,
}

/// What the bot is saying right now.
#[derive(Default)]
struct BotVoice {
    speaking: bool,
    interruptible: bool,
    /// The brain has sent the whole reply and the speaker queued all of it.
    fully_queued: bool,
    last_tag: Option<u64>,
    /// Text of each queued chunk by tag, to tell the brain what the caller actually heard.
    chunks: BTreeMap<u64, String>,
    heard: Vec<String>,
    /// Audio length of each queued chunk by tag.
    durations: BTreeMap<u64, Duration>,
    /// The chunk on the wire and when it started; for the part of it the caller heard.
    playing: Option<(u64, Instant)>,
    /// Time the playing chunk spent paused (a barge-in onset that proved to be noise).
    paused_for: Duration,
    paused_at: Option<Instant>,
}

struct CallTask {
    services: Arc<CallServices>,
    call_id: String,
    caller: String,
    callee: String,
    channel: crate::proto::dialog::Channel,
    codec: String,
    sip_call_id: String,
    fixed_language: Option<String>,
    language: String,
    media_commands: mpsc::Sender<MediaCommand>,
    media_events: mpsc::Receiver<MediaEvent>,
    /// Held, never read: dropping it stops the media driver, whatever way the task ends.
    _media: crate::media::session::MediaHandle,
    leg: mpsc::Sender<LegCommand>,

    listener: Listener,
    streaming: Streaming,
    in_progress: InProgress,
    streamed_tx: mpsc::Sender<StreamedDecode>,
    streamed_rx: mpsc::Receiver<StreamedDecode>,
    barge: BargeInPolicy,
    speculation: Option<Speculation>,

    tags: Arc<AtomicU64>,
    speaker: Speaker,
    speaker_tx: mpsc::Sender<SpeakerEvent>,
    speaker_rx: mpsc::Receiver<SpeakerEvent>,
    voice: BotVoice,

    brain: Option<DialogStream>,
    stt_tx: mpsc::Sender<(Side, u32, Result<Transcript, SttError>)>,
    stt_rx: mpsc::Receiver<(Side, u32, Result<Transcript, SttError>)>,
    triage: Triage,
    /// What was said so far, by whom: the transcript in the handoff packet.
    history: Vec<TranscriptLine>,
    intent: String,
    slots: BTreeMap<String, String>,
    sentiments: Vec<String>,
    handoff: handoff::Handoff,
    hold_loops: u32,
    /// Cold handoff waiting for the bridging line to finish: the REFER target.
    refer_pending: Option<String>,
    dial_tx: mpsc::Sender<DialOutcome>,
    dial_rx: mpsc::Receiver<DialOutcome>,
    turns_started: u32,
    recognizing: BTreeMap<u32, Turn>,
    answering: Option<Turn>,
    /// Tags above this belong to the reply of `answering`.
    reply_tag_floor: u64,
    reply_deadline: Option<(Instant, bool)>,
    hangup_pending: Option<(String, Instant)>,
    escalated: Option<String>,
    /// The brain's own summary, when it proposed an escalation.
    brain_summary: String,
    failure: Option<String>,
    started: Instant,
    turns_completed: u32,
    /// This call's entry in the live-call registry, and the commands sent to it.
    live: LiveCallHandle,
    control_rx: mpsc::Receiver<ControlRequest>,
    /// The call's WAV (`[recording]`), fed the caller's frames and, through a tap on the media
    /// commands, what the gateway plays.
    recording: Option<crate::records::recording::CallRecording>,
}

impl CallTask {
    fn new(services: Arc<CallServices>, call: NewCall, leg: mpsc::Sender<LegCommand>) -> CallTask {
        let listener = Listener::new(services.config.endpointing);
        let streaming = Streaming::new(&services.config.endpointing);
        let (streamed_tx, streamed_rx) = mpsc::channel(8);
        let triage = Triage::new(Arc::new(services.config.triage.clone()), &call.caller);
        let (dial_tx, dial_rx) = mpsc::channel(2);
        let tags = Arc::new(AtomicU64::new(0));
        let (speaker_tx, speaker_rx) = mpsc::channel(64);
        let media_handle = call.media;
        let recording = records::start_recording(&services, &call.call_id);
        let media_commands = match &recording {
            Some(r) => r.tap(media_handle.commands.clone()),
            None => media_handle.commands.clone(),
        };
        let media_events = call.media_events;
        let speaker = Speaker::spawn(services.tts.clone(), media_commands.clone(), speaker_tx.clone(), tags.clone());
        let (stt_tx, stt_rx) = mpsc::channel(8);
        let language = call.language.clone().unwrap_or_else(|| "en".into());
        let (live, control_rx) = services.live.register(CallIdentity {
            call_id: call.call_id.clone(),
            channel: format!("{:?}", call.channel).to_lowercase(),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            codec: call.codec.clone(),
        });
        CallTask {
            call_id: call.call_id,
            caller: call.caller,
            callee: call.callee,
            channel: call.channel,
            codec: call.codec,
            sip_call_id: call.sip_call_id,
            fixed_language: call.language,
            language,
            media_commands,
            media_events,
            _media: media_handle,
            leg,
            listener,
            streaming,
            in_progress: InProgress::default(),
            streamed_tx,
            streamed_rx,
            barge: BargeInPolicy::default(),
            speculation: None,
            tags,
            speaker,
            speaker_tx,
            speaker_rx,
            voice: BotVoice::default(),
            brain: None,
            stt_tx,
            stt_rx,
            triage,
            history: Vec::new(),
            intent: String::new(),
            slots: BTreeMap::new(),
            sentiments: Vec::new(),
            handoff: handoff::Handoff::Idle,
            hold_loops: 0,
            refer_pending: None,
            dial_tx,
            dial_rx,
            turns_started: 0,
            recognizing: BTreeMap::new(),
            answering: None,
            reply_tag_floor: 0,
            reply_deadline: None,
            hangup_pending: None,
            escalated: None,
            brain_summary: String::new(),
            failure: None,
            started: Instant::now(),
            turns_completed: 0,
            live,
            control_rx,
            recording,
            services,
        }
    }

    async fn run(mut self, mut signals: mpsc::Receiver<SignalEvent>) {
        tracing::info!(
            call_id = %self.call_id, sip_call_id = %self.sip_call_id, caller = %self.caller,
            callee = %self.callee, codec = %self.codec, channel = ?self.channel,
            language = self.fixed_language.as_deref().unwrap_or("auto"), "call started"
        );
        self.services.events.publish(CallEvent::Started {
            call_id: self.call_id.clone(),
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            channel: format!("{:?}", self.channel).to_lowercase(),
            at_ms: now_ms(),
        });
        self.live.set_state(CallState::Ai);
        self.record_start();
        self.open_brain().await;
        let vip = self.triage.on_call_start();
        self.on_triage(vip, false).await;
        let max_end = self.started + Duration::from_secs(self.services.config.calls.max_duration_secs);
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let end_reason = loop {
            let reply_due = self.reply_deadline.map(|(t, _)| t).unwrap_or(far);
            let hangup_due = self.hangup_pending.as_ref().map(|(_, t)| *t).unwrap_or(far);
            let input = tokio::select! {
                ev = self.media_events.recv() => Input::Media(ev),
                sig = signals.recv() => Input::Signal(sig),
                act = next_brain_action(&mut self.brain) => Input::Brain(act),
                Some((who, turn, result)) = self.stt_rx.recv() => Input::Recognized(who, turn, result),
                Some(decode) = self.streamed_rx.recv() => Input::Streamed(decode),
                Some(outcome) = self.dial_rx.recv() => Input::AgentDialed(outcome),
                agent = handoff::next_agent_input(&mut self.handoff) => Input::Agent(agent),
                Some(ev) = self.speaker_rx.recv() => Input::Speaker(ev),
                Some(req) = self.control_rx.recv() => Input::Control(req),
                _ = sleep_until(reply_due.into()) => Input::ReplyOverdue,
                _ = sleep_until(hangup_due.into()) => Input::HangupOverdue,
                _ = sleep_until(max_end.into()) => Input::MaxDuration,
            };
            if let Some(end) = self.handle(input).await {
                break end;
            }
        };
        self.finish(end_reason).await;
    }

    async fn open_brain(&mut self) {
        let start = CallStart {
            call_id: self.call_id.clone(),
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            language: self.fixed_language.clone().unwrap_or_default(),
            channel: self.channel as i32,
            metadata: [("sip_call_id".to_string(), self.sip_call_id.clone()), ("codec".to_string(), self.codec.clone())]
                .into_iter()
                .collect(),
        };
        // The greeting is turn 0: its latency is measured from the moment the call started.
        let mut greeting = Turn::new(0, Instant::now(), 0);
        greeting.transcript_at = Some(greeting.speech_end);
        self.answering = Some(greeting);
        self.reply_deadline = Some((Instant::now() + self.reply_timeout(), false));
        match self.services.brain.open(start).await {
            Ok(stream) => self.brain = Some(stream),
            Err(e) => {
                tracing::error!(call_id = %self.call_id, error = %e, "brain unreachable at call start");
                self.brain_lost(format!("brain unreachable: {e}")).await;
            }
        }
    }

    fn reply_timeout(&self) -> Duration {
        Duration::from_millis(self.services.config.brain.reply_timeout_ms)
    }

    /// Handles one input; returns the end reason when the call is over.
    async fn handle(&mut self, input: Input) -> Option<String> {
        match input {
            Input::Media(Some(ev)) => return self.on_media(ev).await,
            Input::Media(None) => return Some("media-stopped".into()),
            Input::Signal(Some(SignalEvent::Hangup { reason })) => return Some(reason),
            Input::Signal(Some(SignalEvent::Transfer { status, done })) => {
                if let Some(end) = self.on_transfer(status, done).await {
                    return Some(end);
                }
            }
            Input::Signal(Some(SignalEvent::Media(params))) => {
                let _ = self.media_commands.send(MediaCommand::Update(params)).await;
            }
            // The edge dropped its side: the dialog is gone.
            Input::Signal(None) => return Some("signaling-gone".into()),
            Input::Brain(Some(Ok(action))) => self.on_brain_action(action).await,
            Input::Brain(Some(Err(e))) => {
                tracing::error!(call_id = %self.call_id, error = %e, "brain stream failed mid-call");
                self.brain_lost(format!("brain stream failed: {e}")).await;
            }
            Input::Brain(None) => {
                // The brain closed the stream. After a hang-up that is expected; otherwise
                // the caller must not be left in silence.
                self.brain = None;
                if self.hangup_pending.is_none() {
                    self.brain_lost("brain closed the conversation".into()).await;
                }
            }
            Input::Recognized(Side::Caller, turn, result) => self.on_transcript(turn, result).await,
            Input::Recognized(Side::Agent, _, result) => self.on_agent_transcript(result),
            Input::Streamed(decode) => self.on_streamed(decode).await,
            Input::AgentDialed(outcome) => self.on_agent_dialed(outcome).await,
            Input::Agent(input) => {
                if let Some(end) = self.on_agent_input(input).await {
                    return Some(end);
                }
            }
            Input::Speaker(ev) => self.on_speaker(ev),
            Input::Control(req) => {
                if let Some(end) = self.on_control(req).await {
                    return Some(end);
                }
            }
            Input::ReplyOverdue => self.on_reply_overdue().await,
            Input::HangupOverdue => {
                let reason = self.hangup_pending.take().map(|(r, _)| r).unwrap_or_default();
                return Some(reason);
            }
            Input::MaxDuration => {
                self.failure.get_or_insert_with(|| "max-duration".into());
                return Some("max-duration".into());
            }
        }
        self.log_ready_turn();
        None
    }

    async fn on_media(&mut self, ev: MediaEvent) -> Option<String> {
        match ev {
            MediaEvent::Frame(frame) => self.on_frame(frame).await,
            MediaEvent::Dtmf { digit, duration_ms } => {
                tracing::info!(call_id = %self.call_id, digit = %digit, duration_ms, "dtmf");
                if !self.handoff.is_idle() {
                    return None; // keypad presses during a handoff are the agent's business
                }
                self.turns_started += 1;
                let mut turn = Turn::new(self.turns_started, Instant::now(), duration_ms);
                turn.transcript_at = Some(turn.speech_end);
                turn.heard = format!("DTMF {digit}");
                turn.language = self.language.clone();
                let decision = self.triage.on_dtmf(turn.number, digit);
                self.start_answering(turn);
                self.on_triage(decision, false).await;
                self.send_brain(caller_event::Event::Dtmf(Dtmf { digits: digit.to_string(), duration_ms })).await;
            }
            MediaEvent::PlayoutStarted { tag, at } => {
                self.voice.playing = Some((tag, at));
                self.voice.paused_for = Duration::ZERO;
                if tag > self.reply_tag_floor {
                    if let Some(turn) = self.answering.as_mut() {
                        turn.on_first_packet(at);
                    }
                }
            }
            MediaEvent::PlayoutFinished { tag, .. } => {
                if let Some(text) = self.voice.chunks.remove(&tag) {
                    self.on_playout_finished_handoff(&text).await;
                    self.voice.heard.push(text);
                }
                if self.voice.fully_queued && self.voice.last_tag == Some(tag) {
                    self.reply_finished_playing();
                }
            }
            MediaEvent::Timeout => {
                self.failure.get_or_insert_with(|| "rtp-timeout".into());
                tracing::warn!(call_id = %self.call_id, "no RTP from the caller: ending the call");
                return Some("rtp-timeout".into());
            }
            MediaEvent::Stopped(_) => return Some("media-stopped".into()),
        }
        self.log_ready_turn();
        None
    }

    async fn on_frame(&mut self, frame: Box<[i16; FRAME_16K]>) {
        if let Some(recording) = &self.recording {
            recording.caller(&frame);
        }
        self.relay_to_agent(&frame);
        let interruptible = self.voice.speaking && self.voice.interruptible && self.handoff.is_idle();
        match self.listener.push(frame) {
            Some(Heard::Onset) => {
                let action = self.barge.on_onset(interruptible);
                self.voice_action(action).await;
            }
            Some(Heard::Noise) => {
                let action = self.barge.on_noise();
                self.voice_action(action).await;
            }
            Some(Heard::Started) => {
                self.speculation = None;
                if let Some((turn_no, audio)) = self.in_progress.awaiting_early.take() {
                    // The caller speaks again before the last utterance's early decode is back;
                    // that result will be dropped as stale, so decode the utterance on its own.
                    self.transcribe(Side::Caller, turn_no, audio);
                }
                self.streaming.start();
                self.in_progress = InProgress { number: self.in_progress.number + 1, ..InProgress::default() };
                let action = self.barge.on_speech(interruptible);
                self.voice_action(action).await;
            }
            Some(Heard::Finished(u)) => {
                let speech_end = Instant::now() - Duration::from_millis(u.ended_ms_ago);
                let mut turn = Turn::new(0, speech_end, u.speech_ms);
                turn.loudness_dbfs = Some(u.loudness_dbfs);
                turn.silence_before_ms = u.silence_before_ms;
                if self.streaming.early_covers(u.end_ms) {
                    // Nothing was said after the early decode: it is this utterance's transcript.
                    if let Some((_, transcript)) = self.in_progress.early.take() {
                        let turn_no = self.start_recognizing(turn);
                        self.on_transcript(turn_no, Ok(transcript)).await;
                        return;
                    }
                    if self.streaming.early_pending() {
                        let turn_no = self.start_recognizing(turn);
                        self.in_progress.awaiting_early = Some((turn_no, u.audio));
                        return;
                    }
                }
                self.recognize(u.audio, turn);
            }
            None => self.poll_streaming(),
        }
    }

    /// Carries out a barge-in decision on the bot's voice.
    async fn voice_action(&mut self, action: Option<VoiceAction>) {
        match action {
            Some(VoiceAction::Pause) => {
                let _ = self.media_commands.send(MediaCommand::Pause).await;
                self.voice.paused_at = Some(Instant::now());
                tracing::debug!(call_id = %self.call_id, "caller onset: reply paused");
            }
            Some(VoiceAction::Resume) => {
                let _ = self.media_commands.send(MediaCommand::Resume).await;
                if let Some(at) = self.voice.paused_at.take() {
                    self.voice.paused_for += at.elapsed();
                }
                tracing::info!(call_id = %self.call_id, "caller noise, not speech: reply resumed");
            }
            Some(VoiceAction::Stop) => self.barge_in().await,
            None => {}
        }
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
        let samples = to_f32(audio);
        let language = if self.services.stt.is_multilingual() {
            self.fixed_language.clone().or_else(|| self.in_progress.language.clone())
        } else {
            Some("en".into())
        };
        let stt = self.services.stt.clone();
        let tx = self.streamed_tx.clone();
        let utterance = self.in_progress.number;
        tokio::spawn(async move {
            let result = match kind {
                DecodeKind::Partial => stt.transcribe_partial(samples, language).await,
                DecodeKind::Early { .. } => stt.transcribe(samples, language).await,
            };
            let _ = tx.send(StreamedDecode { utterance, kind, result }).await;
        });
    }

    async fn on_streamed(&mut self, decode: StreamedDecode) {
        if decode.utterance != self.in_progress.number {
            return; // its utterance is over and was recognized on its own
        }
        let early = matches!(decode.kind, DecodeKind::Early { .. });
        match decode.kind {
            DecodeKind::Partial => self.streaming.partial_done(),
            DecodeKind::Early { .. } => self.streaming.early_done(),
        }
        let transcript = match decode.result {
            Ok(t) => t,
            Err(e) => {
                if let Some((turn_no, audio)) = self.in_progress.awaiting_early.take_if(|_| early) {
                    // The early decode was to be the final: decode the utterance after all.
                    tracing::debug!(call_id = %self.call_id, error = %e, "early decode failed: decoding again");
                    self.transcribe(Side::Caller, turn_no, audio);
                }
                return;
            }
        };
        // Language identification needs a second or so of speech: a short first partial
        // of Mandarin is often taken for English, and fixing that for the whole utterance
        // would decode it in the wrong language. Until then each decode detects on its own.
        if early || transcript.audio_ms >= LANGUAGE_AFTER_MS {
            self.in_progress.language.get_or_insert_with(|| transcript.language.clone());
        }
        // Only the early decode is the awaited final: a partial (started before it, and slower
        // under load) holds only the first words.
        if let Some((turn_no, _)) = self.in_progress.awaiting_early.take_if(|_| early) {
            self.on_transcript(turn_no, Ok(transcript)).await;
            return;
        }
        if self.listener.speech_mark_ms().is_none() {
            return; // the utterance is over: a late partial steers nothing
        }
        let cfg = *self.listener.config();
        match decode.kind {
            DecodeKind::Early { speech_mark_ms } => {
                if self.listener.speech_mark_ms() != Some(speech_mark_ms) {
                    return; // the caller went on speaking: this was not the whole utterance
                }
                let (kind, wait_ms) = silence_wait(&transcript.text, &cfg);
                tracing::debug!(call_id = %self.call_id, text = %transcript.text, ?kind, wait_ms, decode_ms = transcript.decode_ms, "early transcript");
                self.listener.set_end_silence_ms(wait_ms);
                self.send_preview(&transcript).await;
                self.in_progress.early = Some((speech_mark_ms, transcript));
            }
            DecodeKind::Partial => {
                // A partial ends some way before the speech does: it can only tell that more
                // is coming (digits, a filler), never that the caller is done.
                let (kind, _) = silence_wait(&transcript.text, &cfg);
                tracing::debug!(call_id = %self.call_id, text = %transcript.text, ?kind, decode_ms = transcript.decode_ms, "partial transcript");
                if self.in_progress.early.is_none() {
                    let wait = if kind == WaitKind::Hesitant { cfg.hesitant_silence_ms } else { cfg.end_silence_ms };
                    self.listener.set_end_silence_ms(wait);
                }
            }
        }
    }

    /// Sends the early transcript to the brain as a preview, so a brain that supports it
    /// answers ahead and the reply can be synthesized before the utterance is even over.
    async fn send_preview(&mut self, transcript: &Transcript) {
        let text = clean_transcript(&transcript.text);
        if text.is_empty() || self.brain.is_none() || !self.handoff.is_idle() {
            return;
        }
        self.speculation = Some(Speculation { heard: text.clone(), chunks: Default::default() });
        self.send_brain(caller_event::Event::Utterance(Utterance {
            text,
            is_final: false,
            confidence: transcript.confidence,
            language: transcript.language.clone(),
            timings: None,
            turn: self.turns_started + 1,
        }))
        .await;
    }

    /// A Say chunk answering the preview: synthesize it now, play it only if confirmed.
    fn on_preview_say(&mut self, text: String, language: &str) {
        let Some(speculation) = self.speculation.as_mut() else { return }; // already dropped
        let lang = if language.is_empty() { self.language.as_str() } else { language }.parse::<Lang>().unwrap_or(Lang::En);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (tts, words) = (self.services.tts.clone(), text.clone());
        tokio::spawn(async move {
            if let Ok(pcm) = tts.synthesize(&words, lang).await {
                let _ = tx.send(pcm);
            }
        });
        speculation.chunks.push_back((text, lang, rx));
    }

    /// The audio synthesized ahead for a final Say chunk, if the preview had exactly these
    /// words next and their audio is ready. Anything else ends the speculation.
    fn take_speculated(&mut self, text: &str, lang: Lang) -> Option<Vec<i16>> {
        let spec = self.speculation.as_mut()?;
        let pcm = match spec.chunks.pop_front() {
            Some((words, l, mut rx)) if words == text && l == lang => rx.try_recv().ok(),
            _ => None,
        };
        if pcm.is_none() || spec.chunks.is_empty() {
            self.speculation = None;
        }
        pcm
    }

    /// Numbers a caller utterance's turn and keeps it until its transcript arrives.
    fn start_recognizing(&mut self, mut turn: Turn) -> u32 {
        self.turns_started += 1;
        turn.number = self.turns_started;
        self.recognizing.insert(turn.number, turn);
        self.turns_started
    }

    fn recognize(&mut self, audio: Vec<i16>, turn: Turn) {
        let turn_no = self.start_recognizing(turn);
        self.transcribe(Side::Caller, turn_no, audio);
    }

    /// Sends one side's utterance to the recognizer; the result comes back as an input.
    fn transcribe(&mut self, who: Side, turn: u32, audio: Vec<i16>) {
        let language = if !self.services.stt.is_multilingual() {
            Some("en".into())
        } else if who == Side::Caller {
            // The utterance's partials already found its language: no second detection.
            self.fixed_language.clone().or_else(|| self.in_progress.language.clone())
        } else {
            self.fixed_language.clone()
        };
        let stt = self.services.stt.clone();
        let tx = self.stt_tx.clone();
        if let Some(dir) = std::env::var_os("FRONTLINE_UTTERANCE_DIR") {
            // Diagnostics: exactly what the recognizer hears, one WAV per utterance.
            let path = std::path::Path::new(&dir).join(format!("{}-{who:?}-{turn}.wav", self.call_id));
            if let Err(e) = crate::media::wav::write_16k_mono(&path, &audio) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write utterance");
            }
        }
        let samples = to_f32(&audio);
        tokio::spawn(async move {
            let result = stt.transcribe(samples, language).await;
            let _ = tx.send((who, turn, result)).await;
        });
    }

    async fn on_transcript(&mut self, turn_no: u32, result: Result<Transcript, SttError>) {
        let Some(mut turn) = self.recognizing.remove(&turn_no) else { return };
        let transcript = match result {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, turn = turn_no, error = %e, "recognition failed");
                return;
            }
        };
        let text = clean_transcript(&transcript.text);
        if text.is_empty() {
            tracing::info!(call_id = %self.call_id, turn = turn_no, raw = %transcript.text, "no words recognized");
            return;
        }
        if self.speculation.as_ref().is_some_and(|s| s.heard != text) {
            self.speculation = None; // prepared for other words
        }
        turn.transcript_at = Some(Instant::now());
        self.record_recognition(&transcript);
        // Card and ID numbers are masked in everything but what the brain is sent.
        let shown = crate::redact::redact(&text, &self.services.config.redaction).into_owned();
        turn.heard = shown.clone();
        turn.language = transcript.language.clone();
        turn.confidence = transcript.confidence;
        self.language = transcript.language.clone();
        self.said("caller", turn_no, &text);
        if !self.handoff.is_idle() {
            // Handed over (or being handed over): the AI only keeps the record now.
            tracing::info!(call_id = %self.call_id, speaker = "caller", text = %shown, "transcript");
            return;
        }
        let recognized_ms = turn.timings().transcript_ms.unwrap_or(0) as u32;
        tracing::info!(
            call_id = %self.call_id, turn = turn_no, language = %transcript.language, text = %shown,
            confidence = transcript.confidence, decode_ms = transcript.decode_ms, "recognized"
        );
        let speech_ms = turn.speech_ms;
        let decision = self.triage.on_utterance(&UtteranceInput {
            turn: turn_no,
            text: &text,
            language: &transcript.language,
            confidence: transcript.confidence,
            loudness_dbfs: turn.loudness_dbfs,
            silence_before_ms: turn.silence_before_ms,
        });
        self.start_answering(turn);
        self.send_brain(caller_event::Event::Utterance(Utterance {
            text,
            is_final: true,
            confidence: transcript.confidence,
            language: transcript.language,
            timings: Some(TurnTimings { speech_ms, recognized_ms }),
            turn: turn_no,
        }))
        .await;
        // The brain still hears the utterance (its annotations and summary feed the handoff
        // packet); the caller is handed over after the bridging line.
        self.on_triage(decision, false).await;
    }

    fn on_agent_transcript(&mut self, result: Result<Transcript, SttError>) {
        match result {
            Ok(t) => {
                let text = crate::redact::redact(&clean_transcript(&t.text), &self.services.config.redaction).into_owned();
                if !text.is_empty() {
                    tracing::info!(call_id = %self.call_id, speaker = "agent", text = %text, "transcript");
                    self.said("agent", self.turns_started, &text);
                }
            }
            Err(e) => tracing::warn!(call_id = %self.call_id, error = %e, "agent speech not recognized"),
        }
    }

    /// Records words said on the call, for the handoff packet and whoever watches the call.
    fn said(&mut self, speaker: &str, turn: u32, text: &str) {
        let text = &*crate::redact::redact(text, &self.services.config.redaction);
        self.history.push(TranscriptLine { turn, speaker: speaker.into(), text: text.into() });
        self.live.said(&self.history[self.history.len() - 1]);
        self.services.events.publish(CallEvent::Said {
            call_id: self.call_id.clone(),
            speaker: speaker.into(),
            text: text.into(),
            language: self.language.clone(),
            at_ms: now_ms(),
        });
    }

    /// The caller has said (or keyed) something the brain must answer: that becomes the turn
    /// whose reply is being timed.
    fn start_answering(&mut self, turn: Turn) {
        // A reply still owed for an earlier turn is superseded: log it as it stands.
        if let Some(mut previous) = self.answering.take() {
            if previous.mark_logged() {
                log_turn(&self.call_id, &previous);
                self.live.turn(&previous);
                records::turn_done(&self.services, &self.call_id, &previous);
            }
        }
        self.reply_tag_floor = self.tags.load(Ordering::Relaxed);
        self.answering = Some(turn);
        self.turns_completed += 1;
        // With the brain gone the call is already saying goodbye: no reply is owed.
        if self.brain.is_some() {
            self.reply_deadline = Some((Instant::now() + self.reply_timeout(), false));
        }
    }

    async fn on_brain_action(&mut self, action: BotAction) {
        let Some(action) = action.action else { return };
        match action {
            bot_action::Action::Say(say) if say.preview => self.on_preview_say(say.text, &say.language),
            bot_action::Action::Say(say) if !self.handoff.is_idle() => {
                tracing::debug!(call_id = %self.call_id, text = %say.text, "brain speaks during a handoff: not played");
            }
            bot_action::Action::Say(say) => {
                self.reply_deadline = None;
                let lang_code = if say.language.is_empty() { self.language.clone() } else { say.language.clone() };
                let lang = lang_code.parse::<Lang>().unwrap_or(Lang::En);
                if let Some(turn) = self.answering.as_mut() {
                    turn.on_reply_text(&say.text, say.last, Instant::now());
                }
                if !say.text.trim().is_empty() {
                    if !self.voice.speaking {
                        self.voice = BotVoice { speaking: true, interruptible: say.interruptible, ..BotVoice::default() };
                    }
                    self.voice.fully_queued = false;
                }
                let job = match self.take_speculated(&say.text, lang) {
                    Some(pcm) => SayJob { audio: Some(pcm), ..SayJob::speak(say.text, lang, say.last) },
                    None => SayJob::speak(say.text, lang, say.last),
                };
                self.speaker.say(job).await;
            }
            bot_action::Action::Hangup(h) => {
                let reason = if h.reason.is_empty() { "bot-hangup".to_string() } else { h.reason };
                tracing::info!(call_id = %self.call_id, %reason, "brain ends the call");
                // Let the goodbye finish playing, but never wait forever.
                let grace = if self.voice.speaking { Duration::from_secs(20) } else { Duration::from_millis(300) };
                self.hangup_pending = Some((reason, Instant::now() + grace));
            }
            bot_action::Action::Escalate(e) => {
                tracing::info!(
                    call_id = %self.call_id, reason = %e.reason, summary = %e.summary, priority = e.priority,
                    "brain proposes escalation"
                );
                self.brain_summary = e.summary.clone();
                let decision = self.triage.on_brain_escalate(self.turns_started, &e.reason, &e.summary);
                // The brain announced the transfer in its own reply.
                self.on_triage(decision, true).await;
            }
            bot_action::Action::Transfer(t) => {
                tracing::info!(call_id = %self.call_id, target = %t.target, "transfer requested");
            }
            bot_action::Action::CollectDigits(c) => {
                tracing::debug!(call_id = %self.call_id, max = c.max_digits, "brain collects digits");
            }
            bot_action::Action::Annotate(a) => {
                tracing::info!(call_id = %self.call_id, intent = %a.intent, sentiment = %a.sentiment, "annotation");
                let decision = self.triage.on_brain(self.turns_started, &a.intent, &a.sentiment);
                if !a.intent.is_empty() {
                    self.intent = a.intent.clone();
                }
                if !a.sentiment.is_empty() {
                    self.sentiments.push(a.sentiment.clone());
                }
                self.slots.extend(a.slots);
                self.on_triage(decision, false).await;
            }
        }
    }

    fn on_speaker(&mut self, ev: SpeakerEvent) {
        match ev {
            SpeakerEvent::Queued { tag, text, at, samples } => {
                self.voice.chunks.insert(tag, text);
                self.voice.durations.insert(tag, Duration::from_millis((samples / (FRAME_16K / 20)) as u64));
                if tag > self.reply_tag_floor {
                    if let Some(turn) = self.answering.as_mut() {
                        turn.on_audio_synthesized(at);
                    }
                }
            }
            SpeakerEvent::ReplyQueued { last_tag } => {
                self.voice.fully_queued = true;
                self.voice.last_tag = last_tag.or(self.voice.last_tag);
                if self.voice.last_tag.is_none() || self.voice.chunks.is_empty() {
                    self.reply_finished_playing();
                }
            }
            SpeakerEvent::Failed(e) => tracing::error!(call_id = %self.call_id, error = %e, "speech synthesis failed"),
        }
    }

    fn reply_finished_playing(&mut self) {
        self.voice.speaking = false;
        self.barge.reset();
        self.send_pending_refer();
        if let Some((reason, _)) = self.hangup_pending.take() {
            // Hang up right after the last word, not after the grace period.
            self.hangup_pending = Some((reason, Instant::now()));
        }
    }

    /// The caller spoke over the bot: stop talking at once and tell the brain what was heard.
    /// Drops whatever the speaker had not queued yet, by starting a fresh one.
    fn replace_speaker(&mut self) {
        self.speaker = Speaker::spawn(self.services.tts.clone(), self.media_commands.clone(), self.speaker_tx.clone(), self.tags.clone());
    }

    async fn barge_in(&mut self) {
        let stopped_at = self.voice.paused_at.unwrap_or_else(Instant::now);
        let _ = self.media_commands.send(MediaCommand::Flush).await;
        self.replace_speaker();
        // Finished chunks were heard whole; of the one on the wire, the part played before
        // the pause (or now); the rest was not heard.
        let mut heard = self.voice.heard.clone();
        let mut unheard = Vec::new();
        for (tag, text) in &self.voice.chunks {
            match self.voice.playing {
                Some((playing, started)) if playing == *tag => {
                    let total = self.voice.durations.get(tag).copied().unwrap_or_default();
                    let played = stopped_at.saturating_duration_since(started).saturating_sub(self.voice.paused_for);
                    let fraction = if total.is_zero() { 0.0 } else { played.as_secs_f32() / total.as_secs_f32() };
                    let (h, u) = heard_split(text, fraction);
                    heard.extend((!h.is_empty()).then_some(h));
                    unheard.extend((!u.is_empty()).then_some(u));
                }
                _ => unheard.push(text.clone()),
            }
        }
        let (heard, unheard) = (heard.join(" "), unheard.join(" "));
        tracing::info!(call_id = %self.call_id, heard = %heard, unheard = %unheard, "barge-in");
        self.voice = BotVoice::default();
        self.send_brain(caller_event::Event::BargeIn(BargeIn { heard_text: heard, unheard_text: unheard })).await;
    }

    async fn on_reply_overdue(&mut self) {
        let Some((_, filler_played)) = self.reply_deadline else { return };
        if !filler_played {
            // Principle: never dead air. A filler buys the brain one more period.
            let filler = super::prompts::filler(&self.language);
            tracing::warn!(call_id = %self.call_id, "brain is slow: playing a filler");
            self.say_local(filler, false).await;
            self.reply_deadline = Some((Instant::now() + self.reply_timeout(), true));
        } else {
            self.reply_deadline = None;
            self.brain_lost("brain did not answer in time".into()).await;
        }
    }

    /// The brain is gone or silent: apologize and end the call cleanly, with the reason logged.
    async fn brain_lost(&mut self, why: String) {
        self.brain = None;
        metrics::counter!("frontline_brain_errors_total").increment(1);
        if self.hangup_pending.is_some() {
            // Already saying goodbye (the brain hung up, or an earlier failure): once is enough.
            tracing::warn!(call_id = %self.call_id, reason = %why, "brain lost while the call is ending");
            return;
        }
        self.failure.get_or_insert(why.clone());
        self.reply_deadline = None;
        let apology = super::prompts::apology(&self.language);
        self.say_local(apology, true).await;
        self.hangup_pending = Some(("brain-unavailable".into(), Instant::now() + Duration::from_secs(20)));
        tracing::warn!(call_id = %self.call_id, reason = %why, "apologizing and hanging up");
    }

    /// Speaks a line the gateway itself owns (filler, apology), outside any brain reply.
    async fn say_local(&mut self, text: &str, ends_reply: bool) {
        let lang = self.language.parse::<Lang>().unwrap_or(Lang::En);
        if !self.voice.speaking {
            self.voice = BotVoice { speaking: true, interruptible: false, ..BotVoice::default() };
        }
        self.voice.fully_queued = false;
        self.speaker.say(SayJob::speak(text, lang, ends_reply)).await;
        // The gateway's own lines (bridging, hold, no agent, apology) are part of what the
        // caller heard: the agent's transcript and the record show them too.
        self.said("bot", self.turns_started, text);
    }

    async fn send_brain(&mut self, event: caller_event::Event) {
        let Some(brain) = self.brain.as_ref() else { return };
        if let Err(e) = brain.send(event).await {
            tracing::error!(call_id = %self.call_id, error = %e, "cannot reach the brain");
            self.brain_lost(format!("brain send failed: {e}")).await;
        }
    }

    fn log_ready_turn(&mut self) {
        if let Some(turn) = self.answering.as_mut() {
            if turn.take_ready_to_log() {
                log_turn(&self.call_id, turn);
                self.live.turn(turn);
                records::turn_done(&self.services, &self.call_id, turn);
                let (number, reply) = (turn.number, turn.reply.clone());
                if !reply.is_empty() {
                    self.said("bot", number, &reply);
                }
            }
        }
    }

    async fn finish(mut self, reason: String) {
        self.release_agent().await;
        let caller_hung_up = matches!(reason.as_str(), "caller-hangup" | "caller-cancel" | "signaling-gone");
        if !caller_hung_up {
            let _ = self.leg.send(LegCommand::Hangup { reason: reason.clone() }).await;
        }
        if let Some(brain) = self.brain.take() {
            let _ = brain.send(caller_event::Event::End(CallEnd { reason: reason.clone() })).await;
        }
        if let Some(mut turn) = self.answering.take() {
            if turn.mark_logged() && (!turn.heard.is_empty() || !turn.reply.is_empty()) {
                log_turn(&self.call_id, &turn);
                self.live.turn(&turn);
                records::turn_done(&self.services, &self.call_id, &turn);
            }
        }
        let _ = self.media_commands.send(MediaCommand::Stop).await;
        let stats = collect_media_stats(&mut self.media_events).await;
        let outcome = if self.escalated.is_some() {
            "escalated"
        } else if self.failure.is_some() {
            "failed"
        } else if self.turns_completed == 0 && caller_hung_up {
            "abandoned"
        } else {
            "contained"
        };
        self.record_end(outcome, &reason, &stats).await;
        tracing::info!(
            call_id = %self.call_id, reason = %reason, outcome, turns = self.turns_completed,
            duration_ms = self.started.elapsed().as_millis() as u64,
            escalation = self.escalated.as_deref().unwrap_or(""), failure = self.failure.as_deref().unwrap_or(""),
            packets_sent = stats.packets_sent, packets_received = stats.packets_received,
            packets_ignored = stats.packets_ignored, packets_lost = stats.jitter.lost,
            "call ended"
        );
        self.services.events.publish(CallEvent::Ended {
            call_id: self.call_id.clone(),
            reason: reason.clone(),
            outcome: outcome.to_string(),
            at_ms: now_ms(),
        });
        self.live.finish(outcome, &reason);
    }
}

async fn next_brain_action(brain: &mut Option<DialogStream>) -> Option<Result<BotAction, DialogError>> {
    match brain {
        Some(b) => b.next_action().await,
        None => std::future::pending().await,
    }
}

/// Waits (briefly: the driver stops within one 20 ms tick) for the driver's final counters.
async fn collect_media_stats(events: &mut mpsc::Receiver<MediaEvent>) -> MediaStats {
    let deadline = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(MediaEvent::Stopped(stats)) => return stats,
                Some(_) => continue,
                None => return MediaStats::default(),
            },
            _ = &mut deadline => return MediaStats::default(),
        }
    }
}

/// The structured line a person running the gateway reads to follow the conversation.
fn log_turn(call_id: &str, turn: &Turn) {
    let t = turn.timings();
    tracing::info!(
        call_id, turn = turn.number, language = %turn.language, heard = %turn.heard, reply = %turn.reply,
        confidence = turn.confidence, speech_ms = turn.speech_ms,
        transcript_ms = t.transcript_ms.unwrap_or(0), brain_ms = t.brain_ms.unwrap_or(0),
        tts_ms = t.tts_ms.unwrap_or(0), first_rtp_ms = t.first_rtp_ms.unwrap_or(0),
        "turn"
    );
}

/// 16-bit PCM as whisper's float samples.
fn to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|&s| s as f32 / 32768.0).collect()
}

/// Whisper marks non-speech as "[BLANK_AUDIO]", "(music)" and the like; those are no words.
fn clean_transcript(raw: &str) -> String {
    let text = raw.trim();
    let bracketed = |open: char, close: char| text.starts_with(open) && text.ends_with(close);
    if text.is_empty() || bracketed('[', ']') || bracketed('(', ')') || bracketed('*', '*') {
        return String::new();
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::clean_transcript;

    #[test]
    fn non_speech_markers_are_not_words() {
        assert_eq!(clean_transcript(" [BLANK_AUDIO] "), "");
        assert_eq!(clean_transcript("(music)"), "");
        assert_eq!(clean_transcript(" What is my balance? "), "What is my balance?");
        assert_eq!(clean_transcript("我想查话费"), "我想查话费");
    }
}
