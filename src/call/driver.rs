//! The tokio driver of one call: owns its channels, sockets' handles and worker jobs, feeds
//! everything that happens into the [`CallCore`] and carries out the effects it returns, in
//! order. No decision is made here: when something must be decided, it is an input.

use super::core::{CallCore, DialResult, Effect, Input, Side, HOLD};
use super::observe::Observers;
use super::registry::{CallIdentity, ControlRequest, LiveCallHandle};
use super::speaker::{SayJob, Speaker, SpeakerEvent};
use super::{AgentLeg, CallServices, DialOutcome, Drain, LegCommand, NewCall, SignalEvent};
use crate::dialog::DialogStream;
use crate::handoff::{append_callback, hold_audio_16k};
use crate::media::session::{MediaCommand, MediaEvent, MediaStats};
use crate::proto::dialog::{caller_event, BotAction};
use crate::speech::tts::Lang;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Starts the task that owns `call`. The returned handle finishes when the call has ended,
/// its record is committed and its final log line is written.
pub fn spawn(
    services: Arc<CallServices>,
    call: NewCall,
    signals: mpsc::Receiver<SignalEvent>,
    leg: mpsc::Sender<LegCommand>,
) -> tokio::task::JoinHandle<()> {
    let guard = services.enter();
    tokio::spawn(async move {
        let _guard = guard;
        let mut call = call;
        // A CRM id or a phone number says who is calling again; a browser caller is anonymous.
        if call.info.channel == crate::proto::dialog::Channel::Sip {
            let customer_id = call.info.customer_id.clone().unwrap_or_default();
            call.info.history = services.records.recent_calls(&call.info.caller, &customer_id).await;
        }
        Driver::new(services, call, leg).run(signals).await;
    })
}

/// A call to an agent that ended, with the leg when they answered.
struct Dialed {
    attempt: u32,
    outcome: DialOutcome,
}

/// Whether an effect ended the call (the driver then stops the media and emits `Ended`).
enum CallOver {
    No,
    Yes { reason: String, outcome: &'static str },
}

struct Driver {
    services: Arc<CallServices>,
    core: CallCore,
    call_id: String,
    observers: Observers,
    media_commands: mpsc::Sender<MediaCommand>,
    media_events: crate::media::session::MediaEvents,
    /// Held, never read: dropping it stops the media driver, whatever way the task ends.
    _media: crate::media::session::MediaHandle,
    leg: mpsc::Sender<LegCommand>,
    tags: Arc<AtomicU64>,
    speaker: Speaker,
    speaker_tx: mpsc::Sender<SpeakerEvent>,
    speaker_rx: mpsc::Receiver<SpeakerEvent>,
    brain: Option<DialogStream>,
    /// Results of the recognizer and of prepared speech, reported by the jobs the driver spawns.
    results_tx: mpsc::Sender<Input>,
    results_rx: mpsc::Receiver<Input>,
    dialed_tx: mpsc::Sender<Dialed>,
    dialed_rx: mpsc::Receiver<Dialed>,
    /// Replies synthesized ahead for a preview, by the core's id.
    prepared: HashMap<u64, oneshot::Receiver<Vec<i16>>>,
    /// Agents' legs answered but not (yet) bridged, by dial attempt.
    answered: HashMap<u32, AgentLeg>,
    /// The bridged agent's leg.
    agent: Option<AgentLeg>,
    control_rx: mpsc::Receiver<ControlRequest>,
    /// This call's entry in the live-call registry: it lives as long as the task.
    _live: LiveCallHandle,
    drain: watch::Receiver<Drain>,
    /// The call's WAV (`[recording]`), fed the caller's frames and, through a tap on the media
    /// commands, what the gateway plays.
    recording: Option<crate::records::recording::CallRecording>,
}

impl Driver {
    fn new(services: Arc<CallServices>, call: NewCall, leg: mpsc::Sender<LegCommand>) -> Driver {
        let NewCall { mut info, media: media_handle, media_events } = call;
        let recording = start_recording(&services, &info.call_id);
        let media_commands = match &recording {
            Some(r) => r.tap(media_handle.commands.clone()),
            None => media_handle.commands.clone(),
        };
        let tags = Arc::new(AtomicU64::new(0));
        let (speaker_tx, speaker_rx) = mpsc::channel(64);
        let speaker = Speaker::spawn(services.tts.clone(), media_commands.clone(), speaker_tx.clone(), tags.clone());
        let (results_tx, results_rx) = mpsc::channel(16);
        let (dialed_tx, dialed_rx) = mpsc::channel(4);
        let (live, control_rx) = services.live.register(CallIdentity {
            call_id: info.call_id.clone(),
            channel: super::core::channel_name(info.channel),
            caller: info.caller.clone(),
            callee: info.callee.clone(),
            codec: info.codec.clone(),
        });
        info.recording = recording.as_ref().map(|r| r.path().display().to_string());
        let call_id = info.call_id.clone();
        let core = CallCore::new(services.settings.clone(), info, services.agent_pool(), tags.clone(), Instant::now());
        Driver {
            call_id,
            observers: services.observers(),
            drain: services.drain_watch(),
            core,
            media_commands,
            media_events,
            _media: media_handle,
            leg,
            tags,
            speaker,
            speaker_tx,
            speaker_rx,
            brain: None,
            results_tx,
            results_rx,
            dialed_tx,
            dialed_rx,
            prepared: HashMap::new(),
            answered: HashMap::new(),
            agent: None,
            control_rx,
            _live: live,
            recording,
            services,
        }
    }

    async fn run(mut self, mut signals: mpsc::Receiver<SignalEvent>) {
        // A call answered while the gateway already drains hears the same deadline.
        let drain = *self.drain.borrow_and_update();
        self.on_drain(drain);
        loop {
            while let Some(effect) = self.core.poll_effect() {
                if let CallOver::Yes { reason, outcome } = self.execute(effect).await {
                    self.finish(&reason, outcome).await;
                    return;
                }
            }
            let wake = self.core.poll_timeout();
            let input = tokio::select! {
                // Control first: an operator's hang-up or a drain never waits behind audio.
                biased;
                Some(req) = self.control_rx.recv() => {
                    let answer = self.core.control(req.command, Instant::now());
                    // The gRPC caller may have given up waiting: the command stands anyway.
                    let _ = req.reply.send(answer);
                    continue;
                }
                Ok(()) = self.drain.changed() => {
                    let drain = *self.drain.borrow_and_update();
                    self.on_drain(drain);
                    continue;
                }
                sig = signals.recv() => match sig {
                    Some(SignalEvent::Hangup { reason }) => Input::CallerHungUp { reason },
                    Some(SignalEvent::Media(params)) => Input::MediaChanged(params),
                    Some(SignalEvent::Transfer { status, done }) => Input::Transfer { status, done },
                    Some(SignalEvent::Dtmf { digit, duration_ms }) => Input::Dtmf { digit, duration_ms },
                    None => Input::SignalingGone,
                },
                Some(ev) = self.speaker_rx.recv() => match ev {
                    SpeakerEvent::Queued { tag, text, samples, .. } => Input::AudioQueued { tag, text, samples },
                    SpeakerEvent::ReplyQueued { last_tag } => Input::ReplyQueued { last_tag },
                    SpeakerEvent::Failed(e) => Input::SynthesisFailed(e),
                },
                act = next_brain_action(&mut self.brain) => match act {
                    Some(Ok(action)) => Input::Brain(action),
                    Some(Err(e)) => {
                        self.brain = None;
                        Input::BrainLost(format!("brain stream failed: {e}"))
                    }
                    None => {
                        self.brain = None;
                        Input::BrainLost("brain closed the conversation".into())
                    }
                },
                Some(input) = self.results_rx.recv() => input,
                Some(dialed) = self.dialed_rx.recv() => self.on_dialed(dialed),
                agent = next_agent_input(&mut self.agent) => match agent {
                    Some(Input::AgentFrame(frame)) => {
                        // The people talk: the agent's audio goes straight to the caller (and,
                        // through the tap, into the recording); the core transcribes it.
                        let _ = self.media_commands.try_send(MediaCommand::Live(frame.clone()));
                        Input::AgentFrame(frame)
                    }
                    Some(input) => input,
                    None => continue,
                },
                ev = self.media_events.recv() => match ev {
                    Some(MediaEvent::Frame(frame)) => {
                        if let Some(recording) = &self.recording {
                            recording.caller(&frame);
                        }
                        if let Some(agent) = &self.agent {
                            let _ = agent.media.commands.try_send(MediaCommand::Live(frame.clone()));
                        }
                        Input::CallerFrame(frame)
                    }
                    Some(MediaEvent::Dtmf { digit, duration_ms }) => Input::Dtmf { digit, duration_ms },
                    Some(MediaEvent::PlayoutStarted { tag, at }) => Input::PlayoutStarted { tag, at },
                    Some(MediaEvent::PlayoutFinished { tag, .. }) => Input::PlayoutFinished { tag },
                    Some(MediaEvent::Timeout) => Input::MediaTimeout,
                    Some(MediaEvent::Stopped(_)) | None => Input::MediaStopped,
                },
                _ = sleep_until(wake) => {
                    self.core.handle_timeout(Instant::now());
                    continue;
                }
            };
            self.core.handle(input, Instant::now());
        }
    }

    fn on_drain(&mut self, drain: Drain) {
        let now = Instant::now();
        match drain {
            Drain::Serving => self.core.handle(Input::DrainLifted, now),
            Drain::Until(deadline) => self.core.handle(Input::Drain { deadline }, now),
            Drain::Now => self.core.handle(Input::Shutdown, now),
        }
    }

    fn on_dialed(&mut self, dialed: Dialed) -> Input {
        let attempt = dialed.attempt;
        Input::AgentDialed(match dialed.outcome {
            DialOutcome::Answered(leg) => {
                let codec = leg.codec.clone();
                self.answered.insert(attempt, leg);
                DialResult::Answered { attempt, codec }
            }
            DialOutcome::Failed { status, reason } => DialResult::Failed { attempt, status, reason },
        })
    }

    /// Carries out one effect; the last one says the call is over.
    async fn execute(&mut self, effect: Effect) -> CallOver {
        match effect {
            Effect::OpenBrain(start) => match self.services.brain.open(start).await {
                Ok(stream) => self.brain = Some(stream),
                Err(e) => {
                    tracing::error!(call_id = %self.call_id, error = %e, "brain unreachable at call start");
                    self.core.handle(Input::BrainLost(format!("brain unreachable: {e}")), Instant::now());
                }
            },
            Effect::ToBrain(event) => self.to_brain(event).await,
            Effect::Say { text, lang, ends_reply, prepared } => {
                let audio = prepared.and_then(|id| self.prepared.remove(&id)).and_then(|mut rx| rx.try_recv().ok());
                self.speaker.say(SayJob { text, lang, ends_reply, audio }).await;
            }
            Effect::PlayHold { lang } => {
                self.speaker.say(SayJob { text: HOLD.into(), lang, ends_reply: false, audio: Some(hold_audio_16k()) }).await;
            }
            Effect::Prepare { id, text, lang } => self.prepare(id, text, lang),
            Effect::Hush => {
                let _ = self.media_commands.send(MediaCommand::Flush).await;
                // Drops whatever the speaker had not queued yet, by starting a fresh one.
                self.speaker = Speaker::spawn(self.services.tts.clone(), self.media_commands.clone(), self.speaker_tx.clone(), self.tags.clone());
                self.prepared.clear();
            }
            Effect::Media(command) => {
                let _ = self.media_commands.send(command).await;
            }
            Effect::Transcribe { side, turn, audio, language } => self.transcribe(side, turn, audio, language),
            Effect::Decode { utterance, kind, audio, language } => {
                let (stt, tx) = (self.services.stt.clone(), self.results_tx.clone());
                let samples = to_f32(&audio);
                tokio::spawn(async move {
                    let result = match kind {
                        super::turn_taking::DecodeKind::Partial => stt.transcribe_partial(samples, language).await,
                        super::turn_taking::DecodeKind::Early { .. } => stt.transcribe(samples, language).await,
                    };
                    let _ = tx.send(Input::Streamed { utterance, kind, result: result.map_err(|e| e.to_string()) }).await;
                });
            }
            Effect::Dial { attempt, request } => self.dial(attempt, request),
            Effect::Bridge { attempt } => self.agent = self.answered.remove(&attempt),
            Effect::ReleaseDialed { attempt } => {
                if let Some(leg) = self.answered.remove(&attempt) {
                    let _ = leg.hangup.send(()).await;
                }
            }
            Effect::ReleaseAgent => {
                if let Some(leg) = self.agent.take() {
                    let _ = leg.hangup.send(()).await;
                }
            }
            Effect::StoreCallback(request) => {
                let file = &self.services.settings.handoff.callbacks_file;
                let result = append_callback(file, &request).map_err(|e| format!("{}: {e}", file.display()));
                if result.is_ok() {
                    tracing::info!(call_id = %self.call_id, number = %request.number, file = %file.display(), "callback requested");
                }
                self.core.handle(Input::CallbackStored(result), Instant::now());
            }
            Effect::Leg(command) => {
                if self.leg.send(command).await.is_err() {
                    tracing::debug!(call_id = %self.call_id, "signaling is gone: leg command dropped");
                }
            }
            Effect::Event(event) => self.observers.emit(event).await,
            Effect::Finish { reason, outcome } => return CallOver::Yes { reason, outcome },
        }
        CallOver::No
    }

    async fn to_brain(&mut self, event: caller_event::Event) {
        let Some(brain) = self.brain.as_ref() else { return };
        if let Err(e) = brain.send(event).await {
            tracing::error!(call_id = %self.call_id, error = %e, "cannot reach the brain");
            self.brain = None;
            self.core.handle(Input::BrainLost(format!("brain send failed: {e}")), Instant::now());
        }
    }

    fn prepare(&mut self, id: u64, text: String, lang: Lang) {
        let (tx, rx) = oneshot::channel();
        let tts = self.services.tts.clone();
        tokio::spawn(async move {
            if let Ok(pcm) = tts.synthesize(&text, lang).await {
                let _ = tx.send(pcm);
            }
        });
        self.prepared.insert(id, rx);
    }

    /// Sends one side's utterance to the recognizer; the result comes back as an input.
    fn transcribe(&self, side: Side, turn: u32, audio: Vec<i16>, language: crate::speech::stt::LanguageChoice) {
        if let Some(dir) = std::env::var_os("FRONTLINE_UTTERANCE_DIR") {
            // Diagnostics: exactly what the recognizer hears, one WAV per utterance.
            let path = std::path::Path::new(&dir).join(format!("{}-{side:?}-{turn}.wav", self.call_id));
            if let Err(e) = crate::media::wav::write_16k_mono(&path, &audio) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write utterance");
            }
        }
        let (stt, tx) = (self.services.stt.clone(), self.results_tx.clone());
        let samples = to_f32(&audio);
        tokio::spawn(async move {
            let result = stt.transcribe(samples, language).await.map_err(|e| e.to_string());
            let _ = tx.send(Input::Recognized { side, turn, result }).await;
        });
    }

    fn dial(&self, attempt: u32, request: super::AgentDial) {
        let results = self.dialed_tx.clone();
        let Some(dialer) = self.services.dialers.for_target(&request.target) else {
            // Its edge is not running (SIP failed to start, WebRTC is off): like an unreachable
            // phone, so the next agent or the fallback takes over.
            let reason = format!("no edge is running to reach {}", request.target);
            tokio::spawn(async move { results.send(Dialed { attempt, outcome: DialOutcome::Failed { status: None, reason } }).await });
            return;
        };
        tokio::spawn(async move {
            let outcome = dialer.dial(request).await;
            if let Err(mpsc::error::SendError(Dialed { outcome: DialOutcome::Answered(leg), .. })) = results.send(Dialed { attempt, outcome }).await {
                // The call ended while the agent's phone rang: release the agent at once.
                let _ = leg.hangup.send(()).await;
            }
        });
    }

    async fn finish(mut self, reason: &str, outcome: &'static str) {
        for (_, leg) in self.answered.drain() {
            let _ = leg.hangup.send(()).await;
        }
        let _ = self.media_commands.send(MediaCommand::Stop).await;
        let stats = collect_media_stats(&mut self.media_events).await;
        let ended = self.core.ended_event(reason, outcome, stats, Instant::now());
        self.observers.emit(ended).await;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn next_brain_action(brain: &mut Option<DialogStream>) -> Option<Result<BotAction, crate::dialog::DialogError>> {
    match brain {
        Some(b) => b.next_action().await,
        None => std::future::pending().await,
    }
}

/// The next input from the bridged agent's leg; `None` for events the core does not need.
async fn next_agent_input(agent: &mut Option<AgentLeg>) -> Option<Input> {
    let Some(leg) = agent.as_mut() else { return std::future::pending().await };
    tokio::select! {
        ev = leg.media_events.recv() => match ev {
            Some(MediaEvent::Frame(frame)) => Some(Input::AgentFrame(frame)),
            Some(MediaEvent::Timeout) => Some(Input::AgentLegEnded("agent-media-timeout".into())),
            Some(MediaEvent::Stopped(_)) | None => Some(Input::AgentLegEnded("agent-media-stopped".into())),
            Some(_) => None,
        },
        r = &mut leg.ended => Some(Input::AgentLegEnded(r.unwrap_or_else(|_| "signaling-gone".into()))),
    }
}

/// Waits (briefly: the driver stops within one 20 ms tick) for the media driver's final counters.
async fn collect_media_stats(events: &mut crate::media::session::MediaEvents) -> MediaStats {
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

/// Starts the call's WAV when recording is on. A failure (disk full, folder gone) is logged
/// and the call goes on unrecorded.
fn start_recording(services: &CallServices, call_id: &str) -> Option<crate::records::recording::CallRecording> {
    let config = &services.recording;
    if !config.enabled {
        return None;
    }
    match crate::records::recording::CallRecording::start(config, call_id) {
        Ok(r) => Some(r),
        Err(e) => {
            metrics::counter!("frontline_recording_errors_total").increment(1);
            tracing::error!(call_id, dir = %config.dir.display(), error = %e, "cannot record the call; it goes on unrecorded");
            None
        }
    }
}

/// 16-bit PCM as whisper's float samples.
fn to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|&s| s as f32 / 32768.0).collect()
}
