//! One call of `frontline chat` or `frontline eval`: the gateway's own [`CallCore`], driven with
//! text instead of audio, in virtual time.
//!
//! Only the I/O is different from a phone call. A typed turn goes in as
//! [`Input::Typed`] where a transcript would; the brain is the real one, over the real gRPC
//! `Dialog` stream; what the core says "plays" for as long as it would take to speak, on a
//! virtual clock, so the no-input, reply, hang-up and every other timer fire exactly as on a
//! call (a script's `{"silence_ms": 8000}` meets the 6 s no-input prompt). Nobody is dialed:
//! the simulation ends where the core hands the caller to a person.

use super::{EvidenceOut, SimError, TurnInput};
use crate::call::config::CallSettings;
use crate::call::core::{CallCore, CallInfo, Effect, Input, TypedUtterance};
use crate::call::events::CallEvent;
use crate::dialog::{DialogClient, DialogStream};
use crate::handoff::AgentPool;
use crate::proto::dialog::{bot_action, BotAction, Channel};
use crate::triage::{Escalation, Evidence};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the brain may take over one action (real time) before the call's own reply timer
/// is let run, with its filler and then its apology.
const ACTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Real time to wait, once a reply is over, for actions that follow it in the same answer (an
/// escalation or a hang-up after the last sentence), so they count for this turn.
const SETTLE: Duration = Duration::from_millis(25);
/// How long a keypad press lasts, and the pause between two presses.
const KEY_PRESS: Duration = Duration::from_millis(150);

/// The simulation's stand-in for the agent queue when the config names none: the call is
/// over for the simulation once a person is chosen, so nobody is ever dialed.
const SIMULATED_AGENT: &str = "sip:agent@simulated.invalid";

/// A call in progress.
pub struct TextCall {
    core: CallCore,
    brain: Option<DialogStream>,
    /// The virtual clock.
    now: Instant,
    /// Tags for the audio "queued", as the speaker numbers its chunks.
    tags: Arc<AtomicU64>,
    /// Lines queued to play, in order: tag and how long it takes to say.
    playing: std::collections::VecDeque<(u64, Duration)>,
    /// What the bot said since the last [`TextCall::take_said`].
    said: String,
    /// The decision that handed the caller over, and the script turn it came in.
    escalation: Option<(Escalation, u32)>,
    /// Core turn numbers where each script turn ended (index: script turn).
    turn_ends: Vec<u32>,
    /// The caller said or keyed something and the brain's reply has not ended yet.
    reply_owed: bool,
    ended: bool,
}

impl TextCall {
    /// Answers a call: the greeting is played (see [`TextCall::take_said`]).
    pub async fn start(client: &DialogClient, settings: Arc<CallSettings>, info: CallInfo) -> Result<TextCall, SimError> {
        let agents = if settings.handoff.agents.is_empty() { vec![SIMULATED_AGENT.to_string()] } else { settings.handoff.agents.clone() };
        let pool = Arc::new(Mutex::new(AgentPool::new(agents, settings.handoff.strategy)));
        let tags = Arc::new(AtomicU64::new(0));
        let now = Instant::now();
        let info = CallInfo { channel: Channel::Text, ..info };
        let core = CallCore::new(settings, info, pool, tags.clone(), now);
        let mut call = TextCall {
            core,
            brain: None,
            now,
            tags,
            playing: Default::default(),
            said: String::new(),
            escalation: None,
            turn_ends: Vec::new(),
            reply_owed: false,
            ended: false,
        };
        call.settle(client).await?;
        Ok(call)
    }

    /// Whether the call still takes turns (it did not end and nobody took it over).
    pub fn is_open(&self) -> bool {
        !self.ended && self.escalation.is_none()
    }

    /// Plays one caller turn of a script (index `i`) and lets the call answer it.
    pub async fn turn(&mut self, client: &DialogClient, i: usize, t: &TurnInput) -> Result<(), SimError> {
        match t {
            TurnInput::Text(text) => self.input(Input::Typed(TypedUtterance::exact(text))),
            TurnInput::Utterance(u) => {
                // The caller kept quiet this long first: the clock runs (a no-input may come).
                if let Some(ms) = u.silence_before_ms {
                    self.wait(client, Duration::from_millis(u64::from(ms))).await?;
                }
                if self.is_open() {
                    self.input(Input::Typed(TypedUtterance {
                        text: u.text.clone(),
                        confidence: u.confidence.unwrap_or(1.0),
                        loudness_dbfs: u.loudness_dbfs,
                        alternatives: u.alternatives.clone(),
                    }));
                }
            }
            TurnInput::Dtmf(d) => {
                for digit in d.dtmf.trim().chars() {
                    if !self.is_open() {
                        break;
                    }
                    self.input(Input::Dtmf { digit, duration_ms: KEY_PRESS.as_millis() as u32 });
                    self.advance(self.now + KEY_PRESS);
                }
            }
            TurnInput::Silence(s) => self.wait(client, Duration::from_millis(u64::from(s.silence_ms))).await?,
        }
        self.settle(client).await?;
        if self.escalation.is_some() {
            self.hear_out_the_brain().await;
        }
        debug_assert_eq!(self.turn_ends.len(), i, "script turns are played in order");
        self.turn_ends.push(self.core.turns());
        Ok(())
    }

    /// The caller hangs up; what the brain still had to say is ignored, as on a call.
    pub async fn hang_up(&mut self, client: &DialogClient) {
        if !self.ended {
            self.input(Input::CallerHungUp { reason: "caller-hangup".into() });
            self.run_effects(client).await;
        }
    }

    /// What the bot said since the last call (the greeting, first).
    pub fn take_said(&mut self) -> String {
        std::mem::take(&mut self.said)
    }

    pub fn escalation(&self) -> Option<&(Escalation, u32)> {
        self.escalation.as_ref()
    }

    /// Triage's evidence, with the core's turn numbers turned into the script's.
    pub fn evidence(&self, v: &Evidence) -> EvidenceOut {
        EvidenceOut { turn: self.script_turn(v.turn), trigger: v.trigger.clone(), text: v.text.clone() }
    }

    pub fn overruled(&self) -> Vec<EvidenceOut> {
        self.core.triage().overruled().iter().map(|v| self.evidence(v)).collect()
    }

    pub fn asked(&self) -> Vec<EvidenceOut> {
        self.core.triage().asked().iter().map(|v| self.evidence(v)).collect()
    }

    /// The script turn (from 0) that made the core's turn `n` (from 1; 0 is the greeting):
    /// a keyed number is one script turn and several core turns.
    fn script_turn(&self, n: u32) -> u32 {
        let i = self.turn_ends.iter().position(|&end| end >= n).unwrap_or(self.turn_ends.len());
        i as u32
    }

    fn input(&mut self, input: Input) {
        match &input {
            Input::Typed(_) | Input::Dtmf { .. } => self.reply_owed = true,
            Input::Brain(BotAction { action: Some(bot_action::Action::Say(say)) }) if say.last && !say.preview => self.reply_owed = false,
            Input::BrainLost(_) => self.reply_owed = false,
            _ => {}
        }
        self.core.handle(input, self.now);
    }

    /// Runs the call until the floor is the caller's again (or the call is over or handed
    /// over): effects carried out, lines played, the brain's answers taken in.
    async fn settle(&mut self, client: &DialogClient) -> Result<(), SimError> {
        loop {
            self.run_effects(client).await;
            if !self.is_open() {
                return Ok(());
            }
            if let Some((tag, length)) = self.playing.pop_front() {
                self.input(Input::PlayoutStarted { tag, at: self.now });
                self.advance(self.now + length);
                self.input(Input::PlayoutFinished { tag });
                continue;
            }
            if self.core.awaits_brain() {
                match self.next_action(ACTION_TIMEOUT).await {
                    Some(input) => self.input(input),
                    // The brain is slow: the call's own timers decide (filler, then apology).
                    None => {
                        self.run_to_next_timer();
                    }
                }
                continue;
            }
            if let Some(input) = self.next_action(SETTLE).await {
                self.input(input);
                continue;
            }
            if self.core.caller_has_floor() {
                return Ok(());
            }
            // Nothing owed and not yet the caller's floor: a hang-up after the goodbye, say.
            if !self.run_to_next_timer() {
                return Ok(());
            }
        }
    }

    /// The caller is being handed over, but on a call the brain still answers the turn: its
    /// reply is not played, while its annotations, escalation proposal and summary go into the
    /// handoff packet. Take that answer in (up to its last sentence) before the simulation ends.
    async fn hear_out_the_brain(&mut self) {
        while self.reply_owed {
            match self.next_action(ACTION_TIMEOUT).await {
                Some(input) => self.input(input),
                None => break,
            }
        }
        // Actions that follow the last sentence (an escalate tool's result, say).
        while let Some(input) = self.next_action(SETTLE).await {
            self.input(input);
        }
    }

    /// Lets the caller stay silent for `length`: timers fire and the call answers them (the
    /// no-input prompt), on the virtual clock.
    async fn wait(&mut self, client: &DialogClient, length: Duration) -> Result<(), SimError> {
        let until = self.now + length;
        while self.is_open() {
            match self.core.poll_timeout() {
                Some(at) if at <= until => {
                    self.advance(at);
                    self.settle(client).await?;
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Moves the clock to the next timer and fires it; false when no timer is set.
    fn run_to_next_timer(&mut self) -> bool {
        match self.core.poll_timeout() {
            Some(at) => {
                self.advance(at);
                true
            }
            None => false,
        }
    }

    /// Moves the clock to `to`, firing the timers due on the way.
    fn advance(&mut self, to: Instant) {
        while let Some(at) = self.core.poll_timeout().filter(|&at| at <= to) {
            self.now = self.now.max(at);
            self.core.handle_timeout(self.now);
        }
        self.now = self.now.max(to);
    }

    /// The brain's next action within `wait` (real time); `None` if it sent nothing by then.
    async fn next_action(&mut self, wait: Duration) -> Option<Input> {
        let stream = self.brain.as_mut()?;
        match tokio::time::timeout(wait, stream.next_action()).await {
            Err(_) => None,
            Ok(Some(Ok(action))) => Some(Input::Brain(action)),
            Ok(Some(Err(e))) => {
                self.brain = None;
                Some(Input::BrainLost(format!("brain stream failed: {e}")))
            }
            Ok(None) => {
                self.brain = None;
                Some(Input::BrainLost("brain closed the conversation".into()))
            }
        }
    }

    /// Carries out what the core asked for, with text for audio.
    async fn run_effects(&mut self, client: &DialogClient) {
        while let Some(effect) = self.core.poll_effect() {
            match effect {
                Effect::OpenBrain(start) => match client.open(start).await {
                    Ok(stream) => self.brain = Some(stream),
                    Err(e) => self.input(Input::BrainLost(format!("brain unreachable: {e}"))),
                },
                Effect::ToBrain(event) => {
                    let sent = match &self.brain {
                        Some(stream) => stream.send(event).await.is_ok(),
                        None => true,
                    };
                    if !sent {
                        self.brain = None;
                        self.input(Input::BrainLost("brain stream closed".into()));
                    }
                }
                Effect::Say { text, ends_reply, .. } => {
                    let tag = self.tags.fetch_add(1, Ordering::Relaxed) + 1;
                    let words = text.trim();
                    if !words.is_empty() {
                        push_line(&mut self.said, words);
                        self.core.handle(Input::AudioQueued { tag, text: words.to_string(), samples: spoken_samples(words) }, self.now);
                        self.playing.push_back((tag, spoken_length(words)));
                    }
                    if ends_reply {
                        let last_tag = (!words.is_empty()).then_some(tag);
                        self.core.handle(Input::ReplyQueued { last_tag }, self.now);
                    }
                }
                // Whatever is queued stops at once.
                Effect::Hush => self.playing.clear(),
                Effect::Event(CallEvent::Escalated { decision: Some(decision), .. }) => {
                    let at = self.turn_ends.len() as u32;
                    self.escalation.get_or_insert((*decision, at));
                }
                Effect::Finish { .. } => self.ended = true,
                // Hold music, audio prepared ahead, media control, recognition: no audio here.
                // Dialing: the simulation ends with the decision to hand over.
                Effect::PlayHold { .. }
                | Effect::Prepare { .. }
                | Effect::Media(_)
                | Effect::Transcribe { .. }
                | Effect::Decode { .. }
                | Effect::Dial { .. }
                | Effect::Bridge { .. }
                | Effect::ReleaseDialed { .. }
                | Effect::ReleaseAgent
                | Effect::StoreCallback(_)
                | Effect::Leg(_)
                | Effect::Event(_) => {}
            }
        }
    }
}

/// Chinese sentences join without a space; English ones need one.
pub fn push_line(buf: &mut String, line: &str) {
    if !buf.is_empty() && !crate::brain::text::has_cjk(line) {
        buf.push(' ');
    }
    buf.push_str(line);
}

/// About how long a line takes to say: 4.5 Chinese characters or 15 other characters a second.
fn spoken_length(text: &str) -> Duration {
    let ms: u64 = text.chars().map(|c| if crate::brain::text::has_cjk(c.encode_utf8(&mut [0; 4])) { 220 } else { 65 }).sum();
    Duration::from_millis(ms.max(300))
}

fn spoken_samples(text: &str) -> usize {
    (spoken_length(text).as_millis() as usize) * 16
}

