//! The call core in virtual time: no sockets, no models, no clock. Each test plays a call as a
//! list of inputs at chosen instants and checks the effects a caller would notice.

use super::*;
use crate::call::config::{CallSections, CallsConfig};
use crate::call::survey::{line as survey_line, AnsweredBy, SurveyConfig, SurveyLine};
use crate::handoff::{AgentStrategy, HandoffConfig};
use crate::proto::dialog::{Annotate, CollectDigits, Escalate, Hangup, Say};
use std::path::Path;

const GREETING: &str = "Hello, how can I help?";

struct Call {
    core: CallCore,
    t0: Instant,
    now: Instant,
    /// Everything the core asked for so far, oldest first.
    log: Vec<Effect>,
    tags: Arc<AtomicU64>,
}

fn settings(edit: impl FnOnce(&mut CallsConfig, &mut HandoffConfig)) -> Arc<CallSettings> {
    settings_with_survey(SurveyConfig::default(), edit)
}

fn settings_with_survey(survey: SurveyConfig, edit: impl FnOnce(&mut CallsConfig, &mut HandoffConfig)) -> Arc<CallSettings> {
    let mut calls = CallsConfig::default();
    let mut handoff = HandoffConfig::default();
    edit(&mut calls, &mut handoff);
    Arc::new(CallSettings::new(CallSections {
        calls: &calls,
        endpointing: Default::default(),
        brain_reply_timeout_ms: 4000,
        handoff: &handoff,
        triage: &Default::default(),
        redaction: &Default::default(),
        survey: &survey,
        multilingual: true,
    }))
}

impl Call {
    fn new(settings: Arc<CallSettings>) -> Call {
        let t0 = Instant::now();
        let agents = Arc::new(Mutex::new(AgentPool::new(settings.handoff.agents.clone(), AgentStrategy::RoundRobin)));
        let tags = Arc::new(AtomicU64::new(0));
        let info = CallInfo { call_id: "c1".into(), caller: "+15550100".into(), callee: "ivr".into(), ..CallInfo::default() };
        let core = CallCore::new(settings, info, agents, tags.clone(), t0);
        let mut call = Call { core, t0, now: t0, log: Vec::new(), tags };
        call.drain();
        call
    }

    /// A call whose greeting has been spoken and heard whole, at t = 2 s.
    fn greeted(settings: Arc<CallSettings>) -> Call {
        let mut call = Call::new(settings);
        call.at(300).brain_says(GREETING, true);
        call.at(2000).speaker_plays_all();
        call
    }

    fn drain(&mut self) -> Vec<&Effect> {
        let from = self.log.len();
        while let Some(e) = self.core.poll_effect() {
            self.log.push(e);
        }
        self.log[from..].iter().collect()
    }

    /// Moves virtual time to `ms` after the start, firing the timers due on the way, in order.
    fn at(&mut self, ms: u64) -> &mut Self {
        let target = self.t0 + Duration::from_millis(ms);
        while let Some(due) = self.core.poll_timeout().filter(|due| *due <= target) {
            self.now = due.max(self.now);
            self.core.handle_timeout(self.now);
            self.drain();
        }
        self.now = target.max(self.now);
        self
    }

    fn input(&mut self, input: Input) -> &mut Self {
        self.core.handle(input, self.now);
        self.drain();
        self
    }

    fn brain(&mut self, action: bot_action::Action) -> &mut Self {
        self.input(Input::Brain(BotAction { action: Some(action) }))
    }

    fn brain_says(&mut self, text: &str, last: bool) -> &mut Self {
        self.brain(bot_action::Action::Say(Say { text: text.into(), last, interruptible: true, ..Say::default() }))
    }

    /// The speaker synthesizes and the media plays every line asked for and not yet played.
    fn speaker_plays_all(&mut self) -> &mut Self {
        let says: Vec<(String, bool)> = self
            .log
            .iter()
            .filter_map(|e| match e {
                Effect::Say { text, ends_reply, .. } => Some((text.clone(), *ends_reply)),
                Effect::PlayHold { .. } => Some((HOLD.to_string(), false)),
                _ => None,
            })
            .collect();
        let played = self.played_count();
        for (text, ends_reply) in says.into_iter().skip(played) {
            let tag = self.tags.fetch_add(1, Ordering::Relaxed) + 1;
            self.input(Input::AudioQueued { tag, text, samples: 16_000 });
            if ends_reply {
                self.input(Input::ReplyQueued { last_tag: Some(tag) });
            }
            let at = self.now;
            self.input(Input::PlayoutStarted { tag, at });
            self.input(Input::PlayoutFinished { tag });
        }
        self
    }

    fn played_count(&self) -> usize {
        self.tags.load(Ordering::Relaxed) as usize
    }

    fn said_lines(&self) -> Vec<String> {
        self.log.iter().filter_map(|e| if let Effect::Say { text, .. } = e { Some(text.clone()) } else { None }).collect()
    }

    fn to_brain(&self) -> Vec<&caller_event::Event> {
        self.log.iter().filter_map(|e| if let Effect::ToBrain(ev) = e { Some(ev) } else { None }).collect()
    }

    fn silences(&self) -> usize {
        self.to_brain().iter().filter(|e| matches!(e, caller_event::Event::Silence(_))).count()
    }

    fn finished(&self) -> Option<(&str, &str)> {
        self.log.iter().find_map(|e| if let Effect::Finish { reason, outcome } = e { Some((reason.as_str(), *outcome)) } else { None })
    }

    fn events(&self) -> Vec<&CallEvent> {
        self.log.iter().filter_map(|e| if let Effect::Event(ev) = e { Some(ev) } else { None }).collect()
    }

    fn utterance(&mut self, turn: u32, text: &str) -> &mut Self {
        self.heard(turn, text, 0.9)
    }

    fn heard(&mut self, turn: u32, text: &str, confidence: f32) -> &mut Self {
        self.heard_in(turn, text, "en", confidence)
    }

    fn heard_in(&mut self, turn: u32, text: &str, language: &str, confidence: f32) -> &mut Self {
        let transcript = Transcript { text: text.into(), language: language.into(), confidence, audio_ms: 1500, decode_ms: 200 };
        self.core.recognizing.insert(turn, Turn::new(turn, self.now, 1200));
        self.core.turns_started = self.core.turns_started.max(turn);
        self.input(Input::Recognized { side: Side::Caller, turn, result: Ok(transcript) })
    }
}

/// Silent frames, then the English fixture, as the media driver hands them over.
fn spoken_frames() -> Vec<Box<[i16; FRAME_16K]>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/en_balance.wav");
    let pcm = crate::media::wav::read_16k_mono(&path).expect("fixture");
    let mut frames: Vec<_> = pcm.chunks_exact(FRAME_16K).map(|c| Box::new(<[i16; FRAME_16K]>::try_from(c).unwrap())).collect();
    frames.extend((0..60).map(|_| Box::new([0i16; FRAME_16K])));
    frames
}

impl Call {
    /// Feeds frames 20 ms apart from now on.
    fn speak(&mut self, frames: Vec<Box<[i16; FRAME_16K]>>) -> &mut Self {
        for frame in frames {
            self.now += Duration::from_millis(20);
            self.core.handle_timeout(self.now);
            self.input(Input::CallerFrame(frame));
        }
        self
    }
}

#[test]
fn the_greeting_opens_the_brain_and_is_timed_as_turn_zero() {
    let call = Call::new(settings(|_, _| {}));
    assert!(matches!(call.log.iter().find(|e| matches!(e, Effect::OpenBrain(_))), Some(Effect::OpenBrain(s)) if s.call_id == "c1"));
    let kinds: Vec<&str> = call.events().iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["started", "state", "state"]);
    assert_eq!(call.core.timeline.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["answered", "ai"]);
    assert_eq!(call.core.timers.get(Timer::Reply), Some(call.t0 + Duration::from_millis(4000)));
}

#[test]
fn a_silent_caller_is_reprompted_then_handed_over_or_told_goodbye() {
    // No agent configured: the second no-input escalates (ambiguity-silence) and the fallback
    // takes a callback and says goodbye.
    let mut call = Call::greeted(settings(|_, h| h.callbacks_file = std::env::temp_dir().join("frontline-core-test-callbacks.jsonl")));
    assert_eq!(call.silences(), 0);
    call.at(7_900);
    assert_eq!(call.silences(), 0, "6 s counts from the end of the greeting (2 s)");
    call.at(8_000);
    assert_eq!(call.silences(), 1, "the brain is told at 6 s of silence");
    assert!(call.events().iter().any(|e| matches!(e, CallEvent::NoInput { count: 1, silence_ms: 6000, .. })));
    // The brain reprompts; the silence is counted again from the reprompt's end.
    call.at(8_300).brain_says("Are you still there?", true);
    call.at(9_500).speaker_plays_all();
    call.at(15_400);
    assert_eq!(call.silences(), 1);
    call.at(15_500);
    assert_eq!(call.silences(), 2);
    let escalation = call.events().iter().find_map(|e| match e {
        CallEvent::Escalated { decision: Some(d), .. } => Some(d.code.clone()),
        _ => None,
    });
    assert_eq!(escalation.as_deref(), Some("ambiguity-silence"));
    let store = call.log.iter().find_map(|e| if let Effect::StoreCallback(r) = e { Some(r.number.clone()) } else { None });
    assert_eq!(store.as_deref(), Some("+15550100"));
    call.input(Input::CallbackStored(Ok(())));
    let lines = call.said_lines();
    assert!(lines.contains(&crate::handoff::line(crate::handoff::LineKind::NoAgent, "en").to_string()), "{lines:?}");
    assert!(lines.contains(&crate::handoff::line(crate::handoff::LineKind::CallbackTaken, "en").to_string()), "{lines:?}");
    assert_eq!(call.finished(), None, "the goodbye plays first");
    call.at(16_500).speaker_plays_all();
    call.at(16_600);
    assert_eq!(call.finished(), Some(("handoff-fallback", "escalated")));
    assert!(call.log.iter().any(|e| matches!(e, Effect::Leg(LegCommand::Hangup { .. }))), "a BYE is sent");
}

#[test]
fn no_input_waits_while_the_bot_speaks_or_a_reply_is_owed() {
    let mut call = Call::new(settings(|_, _| {}));
    // The brain is slow with the greeting: a filler plays, but no reprompt is sent.
    call.at(4_000);
    assert_eq!(call.said_lines(), [super::super::prompts::filler("en")]);
    call.at(4_500).brain_says(GREETING, true);
    call.at(10_000);
    assert_eq!(call.silences(), 0, "the greeting never finished playing");
    call.speaker_plays_all();
    call.at(15_999);
    assert_eq!(call.silences(), 0);
    call.at(16_000);
    assert_eq!(call.silences(), 1);
}

#[test]
fn a_caller_who_answers_over_the_bot_has_no_silence_before_their_words() {
    let mut call = Call::new(settings(|_, _| {}));
    call.at(300).brain_says(GREETING, true);
    // Still speaking: the floor is not the caller's.
    assert_eq!(call.core.caller_silence_before(call.now), 0);
    call.at(2_000).speaker_plays_all();
    call.at(3_500);
    assert_eq!(call.core.caller_silence_before(call.now), 1_500, "only the silence after the bot finished counts");
}

#[test]
fn speech_is_recognized_and_a_stuck_recognizer_gets_a_line_not_silence() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.speak(spoken_frames());
    // The whole utterance goes to the recognizer: as a final decode, or as the early decode
    // that stands for it when the caller said nothing after it.
    let samples = call.log.iter().rev().find_map(|e| match e {
        Effect::Transcribe { side: Side::Caller, turn: 1, audio, .. } => Some(audio.len()),
        Effect::Decode { kind: DecodeKind::Early { .. }, audio, .. } => Some(audio.len()),
        _ => None,
    });
    let samples = samples.expect("the utterance goes to the recognizer");
    assert!(samples > 16_000, "{samples} samples");
    assert_eq!(call.core.recognizing.keys().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(call.silences(), 0, "speaking is not silence");
    // No transcript comes back within the recognition deadline.
    let due = call.core.timers.get(Timer::Recognition).expect("a recognition deadline");
    let ms = (due - call.t0).as_millis() as u64;
    call.at(ms - 1);
    assert!(!call.said_lines().contains(&super::super::prompts::not_heard("en").to_string()));
    call.at(ms);
    assert!(call.said_lines().contains(&super::super::prompts::not_heard("en").to_string()), "{:?}", call.said_lines());
    // The late transcript is dropped, however it comes: its turn was given up.
    let late = || Ok(Transcript { text: "What is my balance?".into(), language: "en".into(), confidence: 0.9, audio_ms: 1500, decode_ms: 9000 });
    call.input(Input::Streamed { utterance: 1, kind: DecodeKind::Early { speech_mark_ms: 0 }, result: late() });
    call.input(Input::Recognized { side: Side::Caller, turn: 1, result: late() });
    assert!(!call.to_brain().iter().any(|e| matches!(e, caller_event::Event::Utterance(_))));
}

#[test]
fn a_slow_brain_gets_a_filler_then_an_apology_and_a_clean_end() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).utterance(1, "What is my balance?");
    assert!(call.to_brain().iter().any(|e| matches!(e, caller_event::Event::Utterance(u) if u.is_final && u.turn == 1)));
    call.at(7_000);
    assert_eq!(call.said_lines().last().map(String::as_str), Some(super::super::prompts::filler("en")));
    call.at(11_000);
    assert_eq!(call.said_lines().last().map(String::as_str), Some(super::super::prompts::apology("en")));
    assert!(call.events().iter().any(|e| matches!(e, CallEvent::BrainFailed { .. })));
    call.speaker_plays_all();
    call.at(11_100);
    assert_eq!(call.finished(), Some(("brain-unavailable", "failed")));
}

#[test]
fn a_stuck_synthesizer_gets_a_cached_line_then_the_call_ends() {
    let mut call = Call::new(settings(|_, _| {}));
    call.at(300).brain_says(GREETING, true);
    call.at(6_299);
    assert_eq!(call.said_lines(), [GREETING]);
    call.at(6_300);
    assert!(call.log.iter().any(|e| matches!(e, Effect::Hush)));
    assert_eq!(call.said_lines().last().map(String::as_str), Some(super::super::prompts::filler("en")));
    call.at(12_300);
    assert_eq!(call.finished(), Some(("synthesis-stuck", "failed")));
}

#[test]
fn barge_in_stops_the_bot_and_tells_the_brain_what_was_heard() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).brain_says("Your balance is forty two dollars and the due date is the fifth.", true);
    let tag = call.tags.fetch_add(1, Ordering::Relaxed) + 1;
    call.input(Input::AudioQueued { tag, text: "Your balance is forty two dollars and the due date is the fifth.".into(), samples: 16_000 * 4 });
    call.input(Input::ReplyQueued { last_tag: Some(tag) });
    let at = call.now;
    call.input(Input::PlayoutStarted { tag, at });
    call.speak(spoken_frames());
    assert!(call.log.iter().any(|e| matches!(e, Effect::Media(MediaCommand::Pause))), "paused at the onset");
    assert!(call.log.iter().any(|e| matches!(e, Effect::Hush)), "flushed once speech is confirmed");
    let barge = call.to_brain().into_iter().find_map(|e| if let caller_event::Event::BargeIn(b) = e { Some(b.clone()) } else { None });
    let barge = barge.expect("the brain hears of the barge-in");
    assert!(barge.heard_text.starts_with("Your"), "{barge:?}");
    assert!(barge.unheard_text.ends_with("fifth."), "{barge:?}");
}

#[test]
fn collected_digits_go_to_the_brain_as_one_entry() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.brain(bot_action::Action::CollectDigits(CollectDigits { max_digits: 6, terminator: "#".into(), timeout_ms: 0 }));
    for (i, d) in ['1', '0', '2'].into_iter().enumerate() {
        call.at(3_000 + i as u64 * 500).input(Input::Dtmf { digit: d, duration_ms: 100 });
    }
    assert!(!call.events().iter().any(|e| matches!(e, CallEvent::Escalated { .. })), "0 is a digit here, not 'an agent'");
    call.at(4_000 + 4_999);
    assert!(!call.to_brain().iter().any(|e| matches!(e, caller_event::Event::Dtmf(_))));
    call.at(4_000 + 5_000);
    let keyed: Vec<String> = call.to_brain().iter().filter_map(|e| if let caller_event::Event::Dtmf(d) = e { Some(d.digits.clone()) } else { None }).collect();
    assert_eq!(keyed, ["102"], "the inter-digit timeout ends the entry");
    // A terminator ends the next entry at once; a full entry needs none.
    call.brain(bot_action::Action::CollectDigits(CollectDigits { max_digits: 2, terminator: "#".into(), timeout_ms: 0 }));
    call.input(Input::Dtmf { digit: '7', duration_ms: 100 }).input(Input::Dtmf { digit: '#', duration_ms: 100 });
    call.brain(bot_action::Action::CollectDigits(CollectDigits { max_digits: 2, terminator: String::new(), timeout_ms: 0 }));
    call.input(Input::Dtmf { digit: '4', duration_ms: 100 }).input(Input::Dtmf { digit: '5', duration_ms: 100 });
    let keyed: Vec<String> = call.to_brain().iter().filter_map(|e| if let caller_event::Event::Dtmf(d) = e { Some(d.digits.clone()) } else { None }).collect();
    assert_eq!(keyed, ["102", "7", "45"]);
}

#[test]
fn keying_nothing_when_asked_for_digits_is_a_no_input() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.brain(bot_action::Action::CollectDigits(CollectDigits { max_digits: 4, terminator: "#".into(), timeout_ms: 10_000 }));
    call.at(2_000 + 9_999);
    assert_eq!(call.silences(), 0);
    call.at(2_000 + 10_000);
    assert_eq!(call.silences(), 1, "the overall timeout with no digits tells the brain the caller is silent");
}

fn two_agents() -> Arc<CallSettings> {
    settings(|_, h| {
        h.agents = vec!["sip:7001@pbx".into(), "sip:7002@pbx".into()];
        h.ring_timeout_secs = 10;
    })
}

#[test]
fn a_handoff_rings_the_next_agent_when_one_declines_and_bridges_the_one_who_answers() {
    let mut call = Call::greeted(two_agents());
    call.at(3_000).input(Input::Dtmf { digit: '0', duration_ms: 120 });
    call.speaker_plays_all();
    assert!(call.events().iter().any(|e| matches!(e, CallEvent::Escalated { .. })));
    assert_eq!(call.said_lines().last().map(String::as_str), Some(crate::handoff::line(crate::handoff::LineKind::Bridging, "en")));
    assert!(call.log.iter().any(|e| matches!(e, Effect::PlayHold { .. })), "hold audio while it rings");
    let dials = |call: &Call| -> Vec<(u32, String)> {
        call.log.iter().filter_map(|e| if let Effect::Dial { attempt, request } = e { Some((*attempt, request.target.clone())) } else { None }).collect()
    };
    assert_eq!(dials(&call), [(1, "sip:7001@pbx".to_string())]);
    call.at(5_000).input(Input::AgentDialed(DialResult::Failed { attempt: 1, status: Some(486), reason: "busy".into() }));
    assert_eq!(dials(&call), [(1, "sip:7001@pbx".to_string()), (2, "sip:7002@pbx".to_string())]);
    // No silence is counted while the caller is on hold.
    call.at(19_000);
    assert_eq!(call.silences(), 0);
    call.input(Input::AgentDialed(DialResult::Answered { attempt: 2, codec: "PCMU".into() }));
    assert!(call.log.iter().any(|e| matches!(e, Effect::Bridge { attempt: 2 })));
    assert!(call.core.is_bridged());
    assert!(call.events().iter().any(|e| matches!(e, CallEvent::Bridged { agent, .. } if agent == "sip:7002@pbx")));
    call.at(60_000).input(Input::AgentLegEnded("agent-hangup".into()));
    assert_eq!(call.finished(), Some(("agent-hangup", "escalated")));
}

#[test]
fn an_agent_phone_that_never_reports_counts_as_unanswered_and_its_late_answer_is_released() {
    let mut call = Call::greeted(two_agents());
    call.at(3_000).input(Input::Dtmf { digit: '0', duration_ms: 120 });
    call.speaker_plays_all();
    // Ring time 10 s plus the margin: the second agent is rung.
    call.at(3_000 + 15_000);
    assert!(call.log.iter().any(|e| matches!(e, Effect::Dial { attempt: 2, .. })), "{:#?}", &call.log[call.log.len() - 6..]);
    call.input(Input::AgentDialed(DialResult::Answered { attempt: 1, codec: "PCMU".into() }));
    assert!(call.log.iter().any(|e| matches!(e, Effect::ReleaseDialed { attempt: 1 })), "the stale answer is hung up");
    assert!(!call.core.is_bridged());
}

#[test]
fn the_handoff_fallback_can_return_the_caller_to_the_ai() {
    let mut call = Call::greeted(settings(|_, h| {
        h.agents = vec!["sip:7001@pbx".into()];
        h.fallback = crate::handoff::Fallback::Ai;
    }));
    call.at(3_000).input(Input::Dtmf { digit: '0', duration_ms: 120 });
    call.input(Input::AgentDialed(DialResult::Failed { attempt: 1, status: None, reason: "no answer".into() }));
    assert_eq!(call.said_lines().last().map(String::as_str), Some(crate::handoff::line(crate::handoff::LineKind::BackToAi, "en")));
    assert_eq!(call.finished(), None);
    call.speaker_plays_all();
    // Back with the AI, the caller's silence counts again.
    let ms = (call.now - call.t0).as_millis() as u64;
    call.at(ms + 6_000);
    assert_eq!(call.silences(), 1);
}

#[test]
fn a_cold_handoff_refers_after_the_line_and_ends_when_the_transfer_succeeds() {
    let mut call = Call::greeted(settings(|_, h| {
        h.agents = vec!["sip:7001@pbx".into()];
        h.mode = crate::handoff::HandoffMode::Cold;
    }));
    call.at(3_000).input(Input::Dtmf { digit: '0', duration_ms: 120 });
    assert!(!call.log.iter().any(|e| matches!(e, Effect::Leg(LegCommand::Refer { .. }))), "not before the line is heard");
    call.speaker_plays_all();
    assert!(call.log.iter().any(|e| matches!(e, Effect::Leg(LegCommand::Refer { target }) if target == "sip:7001@pbx")));
    call.input(Input::Transfer { status: 180, done: false });
    assert_eq!(call.finished(), None);
    call.input(Input::Transfer { status: 200, done: true });
    assert_eq!(call.finished(), Some(("transferred", "escalated")));
}

#[test]
fn the_brain_hanging_up_lets_the_goodbye_play_first() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).utterance(1, "That's all, thanks.");
    call.brain_says("Goodbye!", true);
    call.brain(bot_action::Action::Hangup(Hangup { reason: "done".into() }));
    call.at(4_000);
    assert_eq!(call.finished(), None);
    call.speaker_plays_all();
    call.at(4_001);
    assert_eq!(call.finished(), Some(("done", "contained")));
}

fn surveyed(edit: impl FnOnce(&mut CallsConfig, &mut HandoffConfig)) -> Arc<CallSettings> {
    settings_with_survey(SurveyConfig { enabled: true, ..SurveyConfig::default() }, edit)
}

/// A contained call: one question answered, then the brain says goodbye and hangs up.
fn contained_and_hung_up(settings: Arc<CallSettings>) -> Call {
    let mut call = Call::greeted(settings);
    call.at(3_000).utterance(1, "What's my balance?");
    call.brain_says("Your balance is 5 dollars.", true);
    call.at(4_000).speaker_plays_all();
    call.at(6_000).utterance(2, "That's all, thanks.");
    call.brain_says("Goodbye!", true);
    call.brain(bot_action::Action::Hangup(Hangup { reason: "done".into() }));
    call.at(7_000).speaker_plays_all();
    call.at(7_001);
    call
}

#[test]
fn a_contained_call_asks_for_a_rating_and_stores_a_keypad_answer() {
    let mut call = contained_and_hung_up(surveyed(|_, _| {}));
    assert_eq!(call.finished(), None, "asked first, not hung up");
    assert_eq!(call.said_lines().last().map(String::as_str), Some(survey_line(SurveyLine::Question, "en")));
    call.speaker_plays_all();
    // The question has played: the caller's silence is no no-input for the brain.
    call.at(7_001 + 5_000);
    assert_eq!(call.silences(), 0);
    call.input(Input::Dtmf { digit: '4', duration_ms: 100 });
    assert_eq!(call.said_lines().last().map(String::as_str), Some(survey_line(SurveyLine::Thanks, "en")));
    assert!(!call.to_brain().iter().any(|e| matches!(e, caller_event::Event::Dtmf(_))), "the rating is not the brain's");
    call.speaker_plays_all();
    call.at(12_100);
    assert_eq!(call.finished(), Some(("done", "contained")));
    assert_eq!(call.core.rating, Some(Rating { score: 4, by: AnsweredBy::Keypad }));
}

#[test]
fn a_spoken_rating_counts_and_an_unclear_answer_is_asked_once_more() {
    let mut call = contained_and_hung_up(surveyed(|_, _| {}));
    call.speaker_plays_all();
    call.at(9_000).utterance(3, "Hmm, what?");
    assert_eq!(call.said_lines().last().map(String::as_str), Some(survey_line(SurveyLine::Again, "en")));
    call.speaker_plays_all();
    call.at(11_000).utterance(4, "I'd say five.");
    assert_eq!(call.said_lines().last().map(String::as_str), Some(survey_line(SurveyLine::Thanks, "en")));
    call.speaker_plays_all();
    call.at(11_100);
    assert_eq!(call.finished(), Some(("done", "contained")));
    assert_eq!(call.core.rating, Some(Rating { score: 5, by: AnsweredBy::Voice }));
    assert!(!call.to_brain().iter().any(|e| matches!(e, caller_event::Event::Utterance(u) if u.text.contains("five"))));
}

#[test]
fn no_answer_gets_a_goodbye_and_a_caller_who_hangs_up_is_not_kept() {
    let mut call = contained_and_hung_up(surveyed(|_, _| {}));
    call.speaker_plays_all();
    call.at(7_001 + 8_000);
    assert_eq!(call.said_lines().last().map(String::as_str), Some(survey_line(SurveyLine::Goodbye, "en")));
    call.speaker_plays_all();
    call.at(15_100);
    assert_eq!(call.finished(), Some(("done", "contained")));
    assert_eq!(call.core.rating, None);

    let mut call = contained_and_hung_up(surveyed(|_, _| {}));
    call.input(Input::CallerHungUp { reason: "caller-hangup".into() });
    assert_eq!(call.finished(), Some(("caller-hangup", "contained")));
    assert_eq!(call.core.rating, None);
}

#[test]
fn without_the_survey_or_after_a_failure_the_call_just_ends() {
    let call = contained_and_hung_up(settings(|_, _| {}));
    assert_eq!(call.finished(), Some(("done", "contained")));
    // The brain ending a call nobody was helped in (no turn answered) asks nothing either.
    let mut call = Call::greeted(surveyed(|_, _| {}));
    call.brain(bot_action::Action::Hangup(Hangup { reason: "done".into() }));
    call.at(3_000);
    assert_eq!(call.finished(), Some(("done", "contained")));
    assert!(!call.said_lines().iter().any(|l| l == survey_line(SurveyLine::Question, "en")));
}

#[test]
fn a_drain_deadline_during_the_survey_says_goodbye_once_and_ends() {
    let mut call = contained_and_hung_up(surveyed(|_, _| {}));
    call.speaker_plays_all();
    let t = call.now;
    call.input(Input::Drain { deadline: t });
    call.at(7_100);
    let goodbye = crate::handoff::line(crate::handoff::LineKind::Goodbye, "en");
    assert_eq!(call.said_lines().last().map(String::as_str), Some(goodbye));
    call.speaker_plays_all();
    call.at(30_000);
    assert_eq!(call.finished(), Some(("drain-timeout", "contained")));
    assert_eq!(call.said_lines().iter().filter(|l| l.as_str() == goodbye || l.as_str() == survey_line(SurveyLine::Goodbye, "en")).count(), 1);
}

#[test]
fn after_the_agent_hangs_up_the_caller_rates_the_call() {
    let mut call = Call::greeted(surveyed(|_, h| h.agents = vec!["sip:7001@pbx".into()]));
    call.at(3_000).input(Input::Dtmf { digit: '0', duration_ms: 120 });
    call.speaker_plays_all();
    call.input(Input::AgentDialed(DialResult::Answered { attempt: 1, codec: "PCMU".into() }));
    assert!(call.core.is_bridged());
    call.at(60_000).input(Input::AgentLegEnded("agent-hangup".into()));
    assert_eq!(call.finished(), None);
    assert!(call.log.iter().any(|e| matches!(e, Effect::ReleaseAgent)));
    assert!(!call.core.is_bridged());
    assert_eq!(call.said_lines().last().map(String::as_str), Some(survey_line(SurveyLine::Question, "en")));
    call.speaker_plays_all();
    call.at(61_000).input(Input::Dtmf { digit: '2', duration_ms: 100 });
    call.speaker_plays_all();
    call.at(61_100);
    assert_eq!(call.finished(), Some(("agent-hangup", "escalated")));
    assert_eq!(call.core.rating, Some(Rating { score: 2, by: AnsweredBy::Keypad }));
}

#[test]
fn a_brain_unreachable_at_the_start_gets_an_apology_and_a_bye() {
    let mut call = Call::new(settings(|_, _| {}));
    call.input(Input::BrainLost("brain unreachable: connection refused".into()));
    assert_eq!(call.said_lines(), [super::super::prompts::apology("en")]);
    call.speaker_plays_all();
    call.at(2_000);
    assert_eq!(call.finished(), Some(("brain-unavailable", "failed")));
    assert!(!call.to_brain().iter().any(|e| matches!(e, caller_event::Event::End(_))), "nothing is sent to a brain that is gone");
}

#[test]
fn a_drain_lets_the_call_go_on_then_says_goodbye_at_the_deadline() {
    let mut call = Call::greeted(settings(|c, _| c.no_input_ms = 0));
    let deadline = call.t0 + Duration::from_secs(60);
    call.at(2_500).input(Input::Drain { deadline });
    call.at(30_000).utterance(1, "What is my balance?");
    call.brain_says("Forty two dollars.", true);
    call.speaker_plays_all();
    assert_eq!(call.finished(), None, "turns go on while draining");
    call.at(60_000);
    assert_eq!(call.said_lines().last().map(String::as_str), Some(crate::handoff::line(crate::handoff::LineKind::Goodbye, "en")));
    call.speaker_plays_all();
    call.at(60_001);
    assert_eq!(call.finished(), Some(("drain-timeout", "contained")));
}

#[test]
fn a_drain_called_off_leaves_the_call_without_a_deadline() {
    let mut call = Call::greeted(settings(|c, _| c.no_input_ms = 0));
    let deadline = call.t0 + Duration::from_secs(60);
    call.at(1_000).input(Input::Drain { deadline });
    call.at(5_000).input(Input::DrainLifted);
    call.at(120_000);
    assert_eq!(call.finished(), None, "no goodbye at the old deadline");
    assert!(call.said_lines().iter().all(|l| l != crate::handoff::line(crate::handoff::LineKind::Goodbye, "en")));
}

#[test]
fn a_shutdown_ends_the_call_at_once_with_a_bye() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.input(Input::Shutdown);
    assert_eq!(call.finished(), Some(("gateway-shutdown", "contained")));
    assert!(call.log.iter().any(|e| matches!(e, Effect::Leg(LegCommand::Hangup { reason }) if reason == "gateway-shutdown")));
    assert!(call.to_brain().iter().any(|e| matches!(e, caller_event::Event::End(_))));
    assert_eq!(call.core.poll_timeout(), None, "an ended call waits on nothing");
}

#[test]
fn a_call_is_ended_at_its_maximum_duration() {
    let mut call = Call::greeted(settings(|c, _| {
        c.max_duration_secs = 30;
        c.no_input_ms = 0;
    }));
    call.at(29_999);
    assert_eq!(call.finished(), None);
    call.at(30_000);
    assert_eq!(call.finished(), Some(("max-duration", "failed")));
}

#[test]
fn an_operator_can_speak_escalate_and_hang_up() {
    let mut call = Call::greeted(settings(|_, _| {}));
    assert_eq!(call.core.control(Control::Say { text: "A supervisor here.".into(), language: None }, call.now), Ok("speaking".into()));
    call.drain();
    assert_eq!(call.said_lines().last().map(String::as_str), Some("A supervisor here."));
    let refused = call.core.control(Control::Say { text: "x".into(), language: Some("fr".into()) }, call.now);
    assert!(matches!(refused, Err(ControlRefused::NotNow(_))));
    assert!(call.core.control(Control::Escalate { reason: "vip".into() }, call.now).is_ok());
    call.drain();
    assert!(call.core.control(Control::Escalate { reason: "again".into() }, call.now).is_err(), "only once");
    assert!(call.core.control(Control::Hangup { reason: String::new() }, call.now).is_ok());
    call.drain();
    assert_eq!(call.finished().map(|f| f.0), Some("ops-hangup"));
}

#[test]
fn annotations_feed_triage_and_the_handoff_packet() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).utterance(1, "I want to cancel my contract.");
    call.brain(bot_action::Action::Annotate(Annotate { intent: "cancel".into(), sentiment: "angry".into(), ..Annotate::default() }));
    let packet = call.events().iter().find_map(|e| if let CallEvent::Escalated { packet, .. } = e { Some(packet.clone()) } else { None });
    let packet = packet.expect("a cancellation threat is a risk");
    assert_eq!(packet.caller, "+15550100");
    assert!(packet.transcript.iter().any(|l| l.speaker == "caller" && l.text.contains("cancel")));
}


#[test]
fn an_unsure_risk_word_gets_a_clarifying_question_and_a_yes_hands_over() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).heard(1, "My phone was still in an hour ago, I need to block the line.", 0.63);
    let asked = call.said_lines().last().cloned().unwrap_or_default();
    assert!(asked.contains("stolen"), "the caller is asked, not answered: {asked}");
    // The brain's answer to the misheard words is not played over the question.
    call.brain_says("Sorry, I didn't catch that.", true);
    assert_eq!(call.said_lines().last(), Some(&asked));
    call.speaker_plays_all();
    call.at(5_000).heard(2, "Yes.", 0.9);
    let code = call.events().iter().find_map(|e| match e {
        CallEvent::Escalated { decision: Some(d), .. } => Some(d.code.clone()),
        _ => None,
    });
    assert_eq!(code.as_deref(), Some("risk-lost-phone"));
}

#[test]
fn a_transfer_the_brain_announced_and_triage_overruled_is_withdrawn_not_left_hanging() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).utterance(1, "Is there an authorized agent store near the station?");
    // The brain took "agent" for a request: it announces the transfer, then proposes it.
    call.brain_says("Sure, I'll connect you with a colleague now. Please hold.", true);
    call.brain(bot_action::Action::Escalate(Escalate { reason: "explicit-request".into(), summary: "s".into(), priority: 0 }));
    // Triage sees a mention: no handoff, the announcement is cut, and the caller is asked.
    assert!(!call.events().iter().any(|e| matches!(e, CallEvent::Escalated { .. })), "no handoff for a mention");
    let log = &call.log;
    let hush = log.iter().rposition(|e| matches!(e, Effect::Hush)).expect("the announcement is dropped");
    let asked = log.iter().rposition(|e| matches!(e, Effect::Say { text, .. } if text.contains("misunderstood"))).expect("the caller is asked");
    assert!(hush < asked, "dropped first, then asked");
    assert!(call.to_brain().iter().any(|e| matches!(e, caller_event::Event::Declined(d) if d.reason == "explicit-request")), "the brain is told");
    // A later brain line for the same turn is not played over it.
    call.brain_says("Please hold.", true);
    assert!(call.said_lines().last().is_some_and(|l| l.contains("misunderstood")), "{:?}", call.said_lines());
}

/// A miss the brain reports for the latest turn, with its reply.
fn brain_misses(call: &mut Call) {
    call.brain(bot_action::Action::Annotate(Annotate { intent: "fallback".into(), sentiment: "neutral".into(), ..Annotate::default() }));
    call.brain_says("Sorry, I did not catch that.", true);
}

fn escalation_code(call: &Call) -> Option<String> {
    call.events().iter().find_map(|e| match e {
        CallEvent::Escalated { decision: Some(d), .. } => Some(d.code.clone()),
        _ => None,
    })
}

fn utterances_to_brain(call: &Call) -> Vec<(String, bool)> {
    call.to_brain()
        .iter()
        .filter_map(|e| match e {
            caller_event::Event::Utterance(u) if u.is_final => Some((u.text.clone(), u.continues)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sentence_cut_by_pauses_is_answered_whole_and_its_pieces_are_no_misunderstandings() {
    // Three pieces of one sentence, each begun 0.8 s after the last ended (each `heard` is
    // 1.2 s of speech ending now). Each piece alone is a miss for the brain.
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).utterance(1, "If you are not happy with the result,");
    brain_misses(&mut call);
    call.at(5_000).utterance(2, "I can put you through");
    brain_misses(&mut call);
    call.at(7_000).utterance(3, "to the billing team.");
    brain_misses(&mut call);
    assert_eq!(
        utterances_to_brain(&call),
        [
            ("If you are not happy with the result,".to_string(), false),
            ("If you are not happy with the result, I can put you through".to_string(), true),
            ("If you are not happy with the result, I can put you through to the billing team.".to_string(), true),
        ]
    );
    assert_eq!(escalation_code(&call), None, "one sentence, one miss: no handoff for not being understood");

    // The same three misses as separate turns, each after the reply was heard, hand over.
    let mut call = Call::greeted(settings(|_, _| {}));
    let misses = ["Blue kettles dream in maroon.", "Seven lanterns argue softly.", "The parsnip votes on Tuesday."];
    for (i, (at, said)) in [3_000, 8_000, 13_000].into_iter().zip(misses).enumerate() {
        call.at(at).utterance(i as u32 + 1, said);
        brain_misses(&mut call);
        call.at(at + 2_000).speaker_plays_all();
    }
    assert!(utterances_to_brain(&call).iter().all(|(_, continues)| !continues));
    assert_eq!(escalation_code(&call).as_deref(), Some("ambiguity-not-understood"));
}

#[test]
fn speech_after_the_reply_was_heard_or_after_a_long_pause_is_a_new_turn() {
    let mut call = Call::greeted(settings(|_, _| {}));
    call.at(3_000).utterance(1, "What is my balance?");
    call.brain_says("Your balance is 20 dollars.", true);
    call.at(3_500).speaker_plays_all();
    // Begun 0.8 s after the last words ended, but the answer was heard in between.
    call.at(5_000).utterance(2, "And my data?");
    // Begun 2.8 s after the last words ended, with no reply yet.
    call.at(9_000).utterance(3, "Hello?");
    assert_eq!(
        utterances_to_brain(&call),
        [("What is my balance?".to_string(), false), ("And my data?".to_string(), false), ("Hello?".to_string(), false)]
    );
}

#[test]
fn the_language_the_caller_was_surely_heard_in_is_what_unsure_readings_lean_on() {
    let mut call = Call::greeted(settings(|_, _| {}));
    assert_eq!(call.core.decode_language(Side::Caller).leaning, None, "nothing heard yet: detect freely");
    call.heard_in(1, "My broadband has been really slow since Monday.", "en", 0.8);
    assert_eq!(call.core.decode_language(Side::Caller).leaning.as_deref(), Some("en"));
    // A partial of the next utterance heard as Mandarin does not fix that utterance's language
    // (its final detects again, on all of it); one that confirms English does.
    let n = call.core.in_progress.number;
    let partial = |language: &str| Ok(Transcript { text: "好吗".into(), language: language.into(), confidence: 0.68, audio_ms: 1500, decode_ms: 90 });
    call.input(Input::Streamed { utterance: n, kind: DecodeKind::Partial, result: partial("zh") });
    assert_eq!(call.core.decode_language(Side::Caller).language, None);
    call.input(Input::Streamed { utterance: n, kind: DecodeKind::Partial, result: partial("en") });
    assert_eq!(call.core.decode_language(Side::Caller).language.as_deref(), Some("en"));
    call.core.in_progress.language = None;
    // A garbled line read as Mandarin at low confidence does not move the call.
    call.heard_in(2, "好吗?您先上海上去吧?", "zh", 0.14);
    assert_eq!(call.core.decode_language(Side::Caller).leaning.as_deref(), Some("en"));
    // A caller who clearly switches does.
    call.heard_in(3, "我想查一下话费余额", "zh", 0.85);
    assert_eq!(call.core.decode_language(Side::Caller).leaning.as_deref(), Some("zh"));
    assert_eq!(call.core.decode_language(Side::Agent).leaning, None, "the agent's words lean on nothing");
}
