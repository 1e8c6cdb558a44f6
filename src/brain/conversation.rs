//! The sans-IO conversation core: one per call, fed caller events, returning bot actions.
//!
//! No sockets, clocks or tasks here: the gRPC server (or a test) owns the I/O and calls
//! [`Conversation::on_event`] for every event. Everything the caller hears comes from the
//! [`Playbook`]; this module decides *which* text, in *which* language, and what follows it
//! (a slot question, a handoff, a hang-up).

use super::playbook::{primary_language, Intent, IntentAction, Keyword, Playbook, Text};
use super::sound;
use super::text;
use crate::proto::dialog::{
    bot_action::Action, caller_event::Event, Annotate, BotAction, CallStart, CallerEvent, Escalate,
    Hangup, PastCall, Priority, Say, SetLanguage, Utterance,
};
use std::collections::{BTreeMap, VecDeque};

/// Intent name reported when nothing in the playbook matched.
pub const FALLBACK_INTENT: &str = "fallback";
/// The intent annotated for thanks or praise that matched no intent of the playbook.
pub const THANKS_INTENT: &str = "thanks";
/// Intent name reported for a silence reprompt.
pub const SILENCE_INTENT: &str = "silence";
/// The intent reported when the caller chose their language on the keypad.
pub const LANGUAGE_INTENT: &str = "language";

/// Whether an intent says what the call was about (for the record and the caller's next call),
/// rather than how a turn went: a miss, thanks, a silence, a language key, a declined action.
pub fn is_topic(intent: &str) -> bool {
    !intent.is_empty() && ![FALLBACK_INTENT, THANKS_INTENT, SILENCE_INTENT, LANGUAGE_INTENT].contains(&intent) && !intent.ends_with("-declined")
}
/// Reason codes this core sends on its own (the playbook supplies the others).
pub const REASON_NO_UNDERSTANDING: &str = "no-understanding";
pub const REASON_SILENCE: &str = "silence";

/// How many recent caller lines go into an escalation summary.
const SUMMARY_LINES: usize = 3;

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Active,
    /// The bot said goodbye and asked the gateway to hang up; nothing more will be said.
    HungUp,
    /// The gateway reported the end of the call.
    Ended,
}

/// One call's dialog state.
/// Cloned to answer a preview utterance without touching the real state.
#[derive(Debug, Clone)]
pub struct Conversation<'p> {
    pb: &'p Playbook,
    call_id: String,
    caller: String,
    /// The language fixed at call start, if the gateway knew it.
    fixed_language: Option<String>,
    /// The language of the last thing the caller said (or the fixed/default one).
    language: String,
    phase: Phase,
    fallbacks: u32,
    /// The last utterance was a miss that counted in `fallbacks`: withdrawn if the caller turns
    /// out to have been mid-sentence (`Utterance.continues`).
    last_was_miss: bool,
    silences: u32,
    /// Index of the intent whose slot question is waiting for an answer.
    pending_slot: Option<usize>,
    slots: BTreeMap<String, String>,
    topics: Vec<String>,
    recent: VecDeque<String>,
    last_sentiment: &'static str,
    /// What the caller actually heard of the last interrupted reply.
    last_heard: Option<String>,
    escalated: bool,
    /// The caller's earlier calls, as the gateway sent them in CallStart.
    past_calls: Vec<PastCall>,
}

/// The best keyword hit of one candidate (an intent or a slot option).
#[derive(Debug, Clone, Copy)]
struct Hit<'a> {
    index: usize,
    /// Length in characters of the matched keyword: longer is more specific.
    len: usize,
    lang: &'a str,
}

impl<'p> Conversation<'p> {
    pub fn new(playbook: &'p Playbook, start: &CallStart) -> Self {
        let fixed = Some(primary_language(&start.language)).filter(|l| playbook.supports(l));
        Conversation {
            pb: playbook,
            call_id: start.call_id.clone(),
            caller: start.caller.clone(),
            language: fixed.clone().unwrap_or_else(|| playbook.default_language().to_string()),
            fixed_language: fixed,
            phase: Phase::Active,
            fallbacks: 0,
            last_was_miss: false,
            silences: 0,
            pending_slot: None,
            slots: BTreeMap::new(),
            topics: Vec::new(),
            recent: VecDeque::new(),
            last_sentiment: "neutral",
            last_heard: None,
            escalated: false,
            past_calls: start.history.clone(),
        }
    }

    /// The language the bot currently speaks.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// True once the bot hung up or the call ended: no further actions will come.
    pub fn is_finished(&self) -> bool {
        self.phase != Phase::Active
    }

    /// True once the call has been handed to a person.
    pub fn escalated(&self) -> bool {
        self.escalated
    }

    /// The caller's earlier calls (CallStart.history), newest first.
    pub fn past_calls(&self) -> &[PastCall] {
        &self.past_calls
    }

    /// Slot values collected so far.
    pub fn slots(&self) -> &BTreeMap<String, String> {
        &self.slots
    }

    /// The opening line. When the call's language is unknown the short opening (or, without
    /// one, the greeting) is said in every playbook language, so the caller can answer in
    /// theirs and recognition picks it up.
    pub fn greeting(&mut self) -> Vec<BotAction> {
        if self.is_finished() {
            return Vec::new();
        }
        let prompts = self.pb.prompts();
        match &self.fixed_language {
            Some(lang) => say(&prompts.greeting, lang),
            None => {
                let opening = prompts.opening.as_ref().unwrap_or(&prompts.greeting);
                say_in_turn(self.pb.languages().iter().map(|lang| (opening, lang.as_str())))
            }
        }
    }

    /// The caller chose their language on the keypad: it holds for the rest of the call, in
    /// recognition (the gateway pins it on SetLanguage) and in every reply, which starts again
    /// with the greeting in it. Misses heard in the wrong language no longer count.
    fn choose_language(&mut self, lang: &str) -> Vec<BotAction> {
        self.fixed_language = Some(lang.to_string());
        self.language = lang.to_string();
        self.fallbacks = 0;
        self.pending_slot = None;
        let mut out = vec![
            annotate(LANGUAGE_INTENT, "neutral", 1.0, self.slot_map()),
            action(Action::SetLanguage(SetLanguage { language: lang.to_string() })),
        ];
        out.extend(say(&self.pb.prompts().greeting, lang));
        out
    }

    /// Handles one caller event and returns what the bot does, in order.
    pub fn on_event(&mut self, ev: &CallerEvent) -> Vec<BotAction> {
        let Some(event) = &ev.event else {
            return Vec::new();
        };
        if let Event::End(_) = event {
            self.phase = Phase::Ended;
            return Vec::new();
        }
        if self.is_finished() {
            return Vec::new();
        }
        match event {
            // A repeated start is a gateway quirk, not something to answer twice.
            Event::Start(_) | Event::End(_) => Vec::new(),
            Event::Utterance(u) => self.on_utterance(u),
            Event::Dtmf(d) => self.on_dtmf(d.digits.trim()),
            Event::BargeIn(b) => {
                // Nothing to say: the caller's own words follow as an utterance. Keep what they
                // heard so a handoff summary reflects what the caller was actually told.
                let heard = b.heard_text.trim();
                self.last_heard = (!heard.is_empty()).then(|| heard.to_string());
                Vec::new()
            }
            Event::Silence(_) => self.on_silence(),
            // The gateway kept the call: the next request for a person is a new proposal, and
            // a miss is answered as a miss, not with "you are being connected".
            Event::Declined(_) => {
                self.escalated = false;
                Vec::new()
            }
        }
    }

    fn on_silence(&mut self) -> Vec<BotAction> {
        self.silences += 1;
        let lang = self.language.clone();
        if self.silences > self.pb.max_silences() {
            self.phase = Phase::HungUp;
            let mut out = vec![annotate(SILENCE_INTENT, "neutral", 0.0, self.slot_map())];
            out.extend(say(&self.pb.prompts().silence_goodbye, &lang));
            out.push(action(Action::Hangup(Hangup { reason: REASON_SILENCE.to_string() })));
            return out;
        }
        // While a slot question is open, repeating the question helps more than a generic prompt.
        let text = match self.pending_slot.and_then(|i| self.pb.intents()[i].slot.as_ref()) {
            Some(slot) => &slot.retry,
            None => &self.pb.prompts().reprompt,
        };
        let mut out = vec![annotate(SILENCE_INTENT, "neutral", 0.0, self.slot_map())];
        out.extend(say(text, &lang));
        out
    }

    fn on_dtmf(&mut self, digits: &str) -> Vec<BotAction> {
        if digits.is_empty() {
            return Vec::new();
        }
        self.silences = 0;
        self.remember(&format!("[keypad {digits}]"));
        let lang = self.language.clone();
        if let Some(i) = self.pending_slot {
            let intent = &self.pb.intents()[i];
            if let Some(slot) = &intent.slot {
                if let Some(j) = slot.options.iter().position(|o| o.dtmf.as_deref() == Some(digits)) {
                    return self.fill_slot(i, j, &lang, 1.0, "neutral");
                }
            }
        }
        let pb = self.pb;
        if let Some(lang) = pb.language_of_key(digits) {
            return self.choose_language(lang);
        }
        match self.pb.intents().iter().position(|it| it.dtmf.as_deref() == Some(digits)) {
            Some(i) => {
                self.pending_slot = None;
                self.run_intent(i, &lang, 1.0, "neutral")
            }
            None => {
                let mut out = vec![annotate(FALLBACK_INTENT, "neutral", 0.0, self.slot_map())];
                out.extend(say(&self.pb.prompts().menu, &lang));
                out
            }
        }
    }

    fn on_utterance(&mut self, u: &Utterance) -> Vec<BotAction> {
        // A preview (the caller fell silent but may go on): answered on a copy of the
        // conversation, so nothing is committed, and with words only, marked as a preview; the
        // gateway synthesizes them ahead and plays them if the final utterance confirms.
        if !u.is_final {
            let final_u = Utterance { is_final: true, ..u.clone() };
            return self
                .clone()
                .on_utterance(&final_u)
                .into_iter()
                .filter_map(|a| match a.action {
                    Some(Action::Say(s)) => Some(action(Action::Say(Say { preview: true, ..s }))),
                    _ => None,
                })
                .collect();
        }
        self.silences = 0;
        if u.continues {
            // The caller paused mid-sentence: the piece answered before was no misunderstanding,
            // and the whole sentence replaces it in what the agent is told.
            if std::mem::take(&mut self.last_was_miss) {
                self.fallbacks = self.fallbacks.saturating_sub(1);
            }
            if self.recent.back().is_some_and(|piece| u.text.trim().starts_with(piece.as_str())) {
                self.recent.pop_back();
            }
        }
        self.last_was_miss = false;
        let clauses = text::normalize(&u.text);
        if !clauses.is_empty() {
            self.remember(u.text.trim());
        }
        let sentiment = self.sentiment(&clauses);
        self.last_sentiment = sentiment;
        let total_chars: usize = clauses.iter().map(|c| c.chars().filter(|ch| *ch != ' ').count()).sum();
        let coverage = |len: usize| {
            if total_chars == 0 {
                0.0
            } else {
                0.5 + 0.5 * (len as f32 / total_chars as f32).min(1.0)
            }
        };

        // 1. An open slot question: the answer is most likely one of its options.
        if let Some(i) = self.pending_slot {
            if let Some(slot) = &self.pb.intents()[i].slot {
                let cands = slot.options.iter().map(|o| (&o.keywords[..], false));
                if let (Some(hit), _) = best_hit(&clauses, cands, self.pb) {
                    let lang = self.reply_language(u, Some(hit.lang));
                    return self.fill_slot(i, hit.index, &lang, coverage(hit.len), sentiment);
                }
            }
        }

        // 2. The intents.
        let cands = self.pb.intents().iter().map(|it| (&it.keywords[..], it.negatable));
        let (plain, declined) = best_hit(&clauses, cands, self.pb);
        if let Some(hit) = plain {
            let lang = self.reply_language(u, Some(hit.lang));
            self.pending_slot = None;
            return self.run_intent(hit.index, &lang, coverage(hit.len), sentiment);
        }
        if let Some(hit) = declined {
            // "不用转人工": understood, so not a fallback, and certainly not an escalation.
            let lang = self.reply_language(u, Some(hit.lang));
            self.fallbacks = 0;
            let intent = &self.pb.intents()[hit.index];
            let text = intent.declined.as_ref().unwrap_or(&self.pb.prompts().declined);
            let mut out = vec![annotate(&format!("{}-declined", intent.name), sentiment, coverage(hit.len), self.slot_map())];
            out.extend(say(text, &lang));
            return out;
        }

        // 3. Nothing matched. Thanks or praise alone ("Great, thank you.") asks for nothing:
        // it is answered, and it is not a misunderstanding that counts towards a handoff.
        let lang = self.reply_language(u, None);
        if sentiment == "positive" && !self.escalated {
            self.fallbacks = 0;
            let mut out = vec![annotate(THANKS_INTENT, sentiment, coverage(total_chars), self.slot_map())];
            out.extend(say(&self.pb.prompts().thanks, &lang));
            return out;
        }
        self.fallback(&lang, sentiment)
    }

    fn fallback(&mut self, lang: &str, sentiment: &'static str) -> Vec<BotAction> {
        if self.escalated {
            // Already on the way to a person: keep the caller informed instead of counting misses.
            let mut out = vec![annotate(FALLBACK_INTENT, sentiment, 0.0, self.slot_map())];
            out.extend(say(&self.pb.prompts().after_handoff, lang));
            return out;
        }
        self.fallbacks += 1;
        self.last_was_miss = true;
        let mut out = vec![annotate(FALLBACK_INTENT, sentiment, 0.0, self.slot_map())];
        if self.fallbacks >= self.pb.max_fallbacks() {
            self.fallbacks = 0;
            self.pending_slot = None;
            out.extend(say(&self.pb.prompts().no_understanding, lang));
            out.push(self.escalate(REASON_NO_UNDERSTANDING, Priority::Normal, lang));
            return out;
        }
        let text = match self.pending_slot.and_then(|i| self.pb.intents()[i].slot.as_ref()) {
            Some(slot) => &slot.retry,
            None => &self.pb.prompts().fallback,
        };
        // A caller recognized in the wrong language hears how to choose theirs, in theirs.
        let hint = self.pb.prompts().language_hint.as_ref().filter(|_| self.fixed_language.is_none());
        let others = hint.into_iter().flat_map(|h| self.pb.keyed_languages().filter(|l| *l != lang).map(move |l| (h, l)));
        out.extend(say_in_turn(std::iter::once((text, lang)).chain(others)));
        out
    }

    fn fill_slot(&mut self, intent: usize, option: usize, lang: &str, conf: f32, sentiment: &'static str) -> Vec<BotAction> {
        let it: &'p Intent = &self.pb.intents()[intent];
        let Some(slot) = &it.slot else {
            return Vec::new();
        };
        let opt = &slot.options[option];
        self.pending_slot = None;
        self.fallbacks = 0;
        self.slots.insert(slot.name.clone(), opt.value.clone());
        if let Some(t) = self.topics.iter_mut().rev().find(|t| t.as_str() == it.name) {
            *t = format!("{} ({}={})", it.name, slot.name, opt.value);
        }
        let mut out = vec![annotate(&it.name, sentiment, conf, self.slot_map())];
        out.extend(say(&opt.answer, lang));
        out
    }

    fn run_intent(&mut self, i: usize, lang: &str, conf: f32, sentiment: &'static str) -> Vec<BotAction> {
        let it: &'p Intent = &self.pb.intents()[i];
        self.fallbacks = 0;
        if self.topics.last() != Some(&it.name) {
            self.topics.push(it.name.clone());
        }
        let mut out = vec![annotate(&it.name, sentiment, conf, self.slot_map())];
        match &it.action {
            IntentAction::Answer => {
                out.extend(say(&it.answer, lang));
                if it.slot.is_some() {
                    self.pending_slot = Some(i);
                }
            }
            IntentAction::Escalate { reason, priority } => {
                if self.escalated {
                    out.extend(say(&self.pb.prompts().after_handoff, lang));
                } else {
                    out.extend(say(&it.answer, lang));
                    // An upset caller should not wait in the normal queue.
                    let p = if matches!(sentiment, "angry" | "distressed") {
                        (*priority).max(Priority::High)
                    } else {
                        *priority
                    };
                    out.push(self.escalate(reason, p, lang));
                }
            }
            IntentAction::Hangup { reason } => {
                out.extend(say(&it.answer, lang));
                out.push(action(Action::Hangup(Hangup { reason: reason.clone() })));
                self.phase = Phase::HungUp;
            }
        }
        out
    }

    fn escalate(&mut self, reason: &str, priority: Priority, lang: &str) -> BotAction {
        self.escalated = true;
        action(Action::Escalate(Escalate {
            reason: reason.to_string(),
            summary: self.summary(reason, lang),
            priority: priority as i32,
        }))
    }

    /// One paragraph for the agent, in English (the agent desk's working language), so they never
    /// have to ask the caller to start again.
    fn summary(&self, reason: &str, lang: &str) -> String {
        let who = if self.caller.is_empty() { "unknown number" } else { &self.caller };
        let lang_name = match lang {
            "zh" => "Mandarin",
            "en" => "English",
            other => other,
        };
        let mut s = format!("Handoff ({reason}): caller {who} on call {}, speaking {lang_name}.", self.call_id);
        if self.topics.is_empty() {
            s.push_str(" No topic identified yet.");
        } else {
            s.push_str(&format!(" Topics: {}.", self.topics.join(", ")));
        }
        if self.last_sentiment != "neutral" {
            s.push_str(&format!(" Mood: {}.", self.last_sentiment));
        }
        if !self.recent.is_empty() {
            let lines: Vec<String> = self.recent.iter().map(|l| format!("\"{l}\"")).collect();
            s.push_str(&format!(" Caller said: {}.", lines.join(", then ")));
        }
        if let Some(h) = &self.last_heard {
            s.push_str(&format!(" Caller interrupted the bot after hearing: \"{h}\"."));
        }
        s
    }

    fn remember(&mut self, line: &str) {
        if self.recent.len() == SUMMARY_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line.to_string());
    }

    fn slot_map(&self) -> BTreeMap<String, String> {
        let mut m = self.slots.clone();
        m.insert("language".to_string(), self.language.clone());
        m
    }

    fn sentiment(&self, clauses: &[String]) -> &'static str {
        for (mood, kws) in self.pb.sentiment_lexicon() {
            if kws.iter().any(|k| clauses.iter().any(|c| !text::find_all(c, &k.norm).is_empty())) {
                return mood;
            }
        }
        "neutral"
    }

    /// Picks the reply language: the script of the words first (whisper's language tag can be
    /// wrong on short utterances, the characters cannot), then the recognizer's tag, then the
    /// language of the keyword that matched, then whatever the call was already using.
    fn reply_language(&mut self, u: &Utterance, kw_lang: Option<&str>) -> String {
        let tagged = Some(primary_language(&u.language)).filter(|l| self.pb.supports(l));
        let lang = if text::has_cjk(&u.text) && self.pb.supports("zh") {
            "zh".to_string()
        } else if let Some(t) = tagged.filter(|t| t != "zh") {
            t
        } else if let Some(k) = kw_lang {
            k.to_string()
        } else if u.text.chars().any(|c| c.is_ascii_alphabetic()) && self.pb.supports("en") {
            "en".to_string()
        } else {
            self.language.clone()
        };
        self.language = lang.clone();
        lang
    }
}

/// Finds the best candidate for `clauses`: the one with the longest matching keyword, the first
/// listed on a tie. Returns the best plain hit and, separately, the best hit whose every
/// occurrence was negated (only for negatable candidates). Only when no keyword is written
/// out does a Mandarin homophone count (宽待老是断线 is about 宽带): a slip of the recognizer
/// is a weaker reading than words it got right.
fn best_hit<'k>(
    clauses: &[String],
    candidates: impl Iterator<Item = (&'k [Keyword], bool)> + Clone,
    pb: &Playbook,
) -> (Option<Hit<'k>>, Option<Hit<'k>>) {
    let exact = best_hit_by(clauses, candidates.clone(), pb, |clause, kw| text::find_all(clause, &kw.norm));
    if exact.0.is_some() || exact.1.is_some() {
        return exact;
    }
    best_hit_by(clauses, candidates, pb, |clause, kw| match &kw.sound {
        Some(s) => sound::find(clause, &kw.norm, s).into_iter().filter(|h| h.quality >= sound::HOMOPHONE).map(|h| h.start).collect(),
        None => Vec::new(),
    })
}

/// [`best_hit`] with one way of finding a keyword in a clause (byte offsets of its starts).
fn best_hit_by<'k>(
    clauses: &[String],
    candidates: impl Iterator<Item = (&'k [Keyword], bool)>,
    pb: &Playbook,
    find: impl Fn(&str, &Keyword) -> Vec<usize>,
) -> (Option<Hit<'k>>, Option<Hit<'k>>) {
    let mut plain: Option<Hit> = None;
    let mut negated: Option<Hit> = None;
    for (index, (keywords, negatable)) in candidates.enumerate() {
        for kw in keywords {
            let len = kw.norm.chars().filter(|c| *c != ' ').count();
            for clause in clauses {
                for at in find(clause, kw) {
                    let neg = negatable
                        && text::is_negated(clause, at, kw.cjk, pb.negation_cues(), pb.negation_window());
                    let slot = if neg { &mut negated } else { &mut plain };
                    if slot.is_none_or(|h| len > h.len) {
                        *slot = Some(Hit { index, len, lang: &kw.lang });
                    }
                }
            }
        }
    }
    (plain, negated)
}

fn action(a: Action) -> BotAction {
    BotAction { action: Some(a) }
}

fn annotate(intent: &str, sentiment: &str, confidence: f32, slots: BTreeMap<String, String>) -> BotAction {
    action(Action::Annotate(Annotate {
        intent: intent.to_string(),
        sentiment: sentiment.to_string(),
        intent_confidence: confidence,
        slots: slots.into_iter().collect(),
    }))
}

/// A reply as sentence chunks; `last` is set on the final one.
/// Several texts said one after the other as one turn: only the very last chunk ends it.
fn say_in_turn<'t>(parts: impl IntoIterator<Item = (&'t Text, &'t str)>) -> Vec<BotAction> {
    let mut out: Vec<BotAction> = parts.into_iter().flat_map(|(t, lang)| say(t, lang)).collect();
    let n = out.len();
    for (i, c) in out.iter_mut().enumerate() {
        if let Some(Action::Say(s)) = &mut c.action {
            s.last = i + 1 == n;
        }
    }
    out
}

fn say(t: &Text, lang: &str) -> Vec<BotAction> {
    let chunks = text::sentences(t.get(lang));
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            action(Action::Say(Say {
                text: c,
                language: lang.to_string(),
                interruptible: true,
                last: i + 1 == n,
                preview: false,
            }))
        })
        .collect()
}
