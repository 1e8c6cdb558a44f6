//! The `[triage]` table: every trigger's switch, thresholds and extra words.
//!
//! Same conventions as the rest of the file ([`crate::config`]): every key has a default,
//! unknown keys are an error, and [`TriageConfig::validate`] names the key that is wrong.
//! Word lists here are *added* to the built-in lexicons (`lexicon.rs`); `builtin_lexicons = false`
//! drops the built-ins for a deployment that wants to write its own from scratch.

use super::lexicon;
use serde::Deserialize;

/// A configuration value serde accepted but triage cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct TriageConfigError {
    /// Full dotted key, e.g. `triage.ambiguity.low_confidence`.
    pub key: &'static str,
    pub message: String,
}

/// Words per language. Matching does not depend on the call's language (whisper's language tag
/// is often wrong on short utterances), so the split only keeps lists readable.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Words {
    pub en: Vec<String>,
    pub zh: Vec<String>,
}

impl Words {
    fn iter(&self) -> impl Iterator<Item = &str> {
        self.en.iter().chain(self.zh.iter()).map(String::as_str)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TriageConfig {
    /// Master switch: false never escalates on triage's own account (the brain's escalations
    /// still reach the gateway through its own path).
    pub enabled: bool,
    /// Use the built-in Mandarin and English lexicons in addition to the words configured here.
    pub builtin_lexicons: bool,
    /// Caller numbers that go straight to a person (digits compared; "+86 138..." == "138...").
    pub vip_numbers: Vec<String>,
    /// Hand over after this many caller turns without resolution. 0: no cap.
    pub max_ai_turns: u32,
    pub negation: NegationConfig,
    pub explicit: ExplicitConfig,
    pub emotion: EmotionConfig,
    pub ambiguity: AmbiguityConfig,
    pub risk: RiskConfig,
    pub brain: BrainProposalConfig,
    pub clarify: ClarifyConfig,
    pub repeat_contact: RepeatContactConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RepeatContactConfig {
    pub enabled: bool,
    /// An earlier call about the same intent at most this long ago is a repeat contact.
    pub window_hours: u32,
    /// Intents that are no problem coming back (a balance check, goodbye).
    pub ignore_intents: Vec<String>,
}

impl Default for RepeatContactConfig {
    fn default() -> Self {
        RepeatContactConfig {
            enabled: true,
            window_hours: 72,
            ignore_intents: ["balance", "data_left", "hours", "goodbye", "agent"].map(String::from).to_vec(),
        }
    }
}

impl RepeatContactConfig {
    pub fn window_ms(&self) -> u64 {
        u64::from(self.window_hours) * 3_600_000
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NegationConfig {
    /// An English cue declines a trigger word at most this many words after it.
    pub window_words: usize,
    /// A Chinese cue declines a trigger word at most this many characters after it.
    pub window_chars: usize,
    /// Extra cues ("I don't need", "不用").
    pub words: Words,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExplicitConfig {
    pub enabled: bool,
    /// Keypad digit that asks for a person. Empty: none.
    pub dtmf: String,
    /// Extra words asking for a person.
    pub words: Words,
    /// Extra phrases that contain such a word without asking ("an authorized agent store").
    pub not_words: Words,
    /// Extra words that make a clause naming the human desk a question about it ("几点", "hours").
    pub inquiry_words: Words,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmotionConfig {
    pub enabled: bool,
    /// Extra anger words; one is enough to hand over.
    pub anger: Words,
    /// Extra distress words; one is enough to hand over, urgently.
    pub distress: Words,
    /// The brain's sentiments (Annotate.sentiment) that count as upset.
    pub brain_sentiments: Vec<String>,
    /// Turns the brain must report an upset sentiment before triage hands over. 0: ignore it.
    pub brain_sentiment_turns: u32,
    /// Extra refusal words ("no", "不对").
    pub refusals: Words,
    /// Refusals in a row that hand over. 0: off.
    pub max_refusals: u32,
    /// Loudness above the caller's own mean of earlier turns that counts as shouting, in dB.
    /// 0: off.
    pub shout_db: f32,
    /// Earlier utterances with a loudness needed before shouting can be judged.
    pub shout_baseline_turns: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AmbiguityConfig {
    pub enabled: bool,
    /// The intent name the brain reports when it did not understand.
    pub fallback_intent: String,
    /// Consecutive not-understood turns that hand over. 0: off.
    pub max_fallbacks: u32,
    /// The same intent this many turns in a row means its answer is not helping. 0: off.
    pub max_same_intent: u32,
    /// Recognition confidence below this is "low".
    pub low_confidence: f32,
    /// Low-confidence recognitions in a row that hand over. 0: off.
    pub max_low_confidence: u32,
    /// Token overlap (0..1) above which an utterance repeats an earlier one.
    pub repeat_similarity: f32,
    /// Repeats that hand over (the caller said the same thing this many extra times). 0: off.
    pub max_repeats: u32,
    /// Turns in which the caller says they do not follow ("I'm confused", "听不懂") that hand
    /// over; their first turn (before any reply) does not count. 0: off.
    pub max_confused: u32,
    /// A silence at least this long counts as a long silence.
    pub long_silence_ms: u32,
    /// Long silences in one call that hand over. 0: off.
    pub max_long_silences: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    pub enabled: bool,
    /// Extra words per risk, each reported with its own reason code (`risk-<name>`).
    pub dispute: Words,
    pub unordered: Words,
    pub cancel: Words,
    pub complaint: Words,
    pub regulator: Words,
    pub legal: Words,
    pub fraud: Words,
    pub lost_phone: Words,
    pub vulnerable: Words,
    /// Extra phrases that sound risky but are ordinary questions.
    pub not_words: Words,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BrainProposalConfig {
    /// Follow the brain's own escalate actions.
    pub follow: bool,
    /// Brain reasons triage double-checks: when triage's own detector for that reason saw the
    /// same turn and found no request (a mention, a declined one), the proposal is overruled;
    /// "no-understanding" is overruled on a turn that needed no understanding (thanks, "it
    /// works now", the answer to a clarifying question).
    pub overrule: Vec<String>,
}

/// How risk and explicit-request words are weighed when the recognizer may have misheard them.
///
/// Each hit gets a strength in 0..1: the keyword itself counts fully once the recognizer's
/// confidence is at least 0.5; a sound-alike ("still in" for "stolen", 退宽 for 退款) counts
/// only as far as the recognizer was unsure (nothing at confidence 0.9 or more), times how much
/// it sounds like the keyword. The recognizer's alternatives add their own hits (at 0.85 of the
/// weight), combined as independent evidence.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClarifyConfig {
    /// Ask instead of guessing. Off: a hit that would ask is ignored.
    pub enabled: bool,
    /// Strength at which a hit hands over on its own.
    pub escalate_at: f32,
    /// Strength at which a weaker hit makes the AI ask ("Did you say your phone was stolen?").
    pub ask_at: f32,
    /// The brain's intents that confirm an unsure hit in the same turn (its own reading of a
    /// request or a dispute).
    pub confirming_intents: Vec<String>,
}

impl Default for ClarifyConfig {
    fn default() -> Self {
        ClarifyConfig {
            enabled: true,
            escalate_at: 0.75,
            ask_at: 0.4,
            confirming_intents: vec!["agent".into(), "dispute".into()],
        }
    }
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            enabled: true,
            builtin_lexicons: true,
            vip_numbers: Vec::new(),
            max_ai_turns: 15,
            negation: NegationConfig::default(),
            explicit: ExplicitConfig::default(),
            emotion: EmotionConfig::default(),
            ambiguity: AmbiguityConfig::default(),
            risk: RiskConfig::default(),
            brain: BrainProposalConfig::default(),
            clarify: ClarifyConfig::default(),
            repeat_contact: RepeatContactConfig::default(),
        }
    }
}

impl Default for NegationConfig {
    fn default() -> Self {
        NegationConfig { window_words: 5, window_chars: 3, words: Words::default() }
    }
}

impl Default for ExplicitConfig {
    fn default() -> Self {
        ExplicitConfig {
            enabled: true,
            dtmf: "0".into(),
            words: Words::default(),
            not_words: Words::default(),
            inquiry_words: Words::default(),
        }
    }
}

impl Default for EmotionConfig {
    fn default() -> Self {
        EmotionConfig {
            enabled: true,
            anger: Words::default(),
            distress: Words::default(),
            brain_sentiments: vec!["angry".into(), "distressed".into()],
            brain_sentiment_turns: 2,
            refusals: Words::default(),
            max_refusals: 3,
            shout_db: 12.0,
            shout_baseline_turns: 1,
        }
    }
}

impl Default for AmbiguityConfig {
    fn default() -> Self {
        AmbiguityConfig {
            enabled: true,
            fallback_intent: "fallback".into(),
            max_fallbacks: 3,
            max_same_intent: 3,
            low_confidence: 0.5,
            max_low_confidence: 3,
            repeat_similarity: 0.7,
            max_repeats: 2,
            max_confused: 2,
            long_silence_ms: 6000,
            max_long_silences: 2,
        }
    }
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            enabled: true,
            dispute: Words::default(),
            unordered: Words::default(),
            cancel: Words::default(),
            complaint: Words::default(),
            regulator: Words::default(),
            legal: Words::default(),
            fraud: Words::default(),
            lost_phone: Words::default(),
            vulnerable: Words::default(),
            not_words: Words::default(),
        }
    }
}

impl Default for BrainProposalConfig {
    fn default() -> Self {
        BrainProposalConfig {
            follow: true,
            overrule: vec!["explicit-request".into(), "risk-dispute".into(), "no-understanding".into()],
        }
    }
}

const SENTIMENTS: &[&str] = &["positive", "neutral", "negative", "angry", "distressed"];

impl TriageConfig {
    /// Checks what serde cannot. Errors carry the full dotted key.
    pub fn validate(&self) -> Result<(), TriageConfigError> {
        let err = |key, message: String| Err(TriageConfigError { key, message });
        if self.repeat_contact.enabled && self.repeat_contact.window_hours == 0 {
            return err("triage.repeat_contact.window_hours", "must be 1 or more; set enabled = false to switch the signal off".into());
        }
        if let Some(bad) = self.vip_numbers.iter().find(|n| digits(n).is_empty()) {
            return err("triage.vip_numbers", format!("{bad:?} has no digits"));
        }
        if !self.explicit.dtmf.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
            return err("triage.explicit.dtmf", format!("{:?}: use keypad digits 0-9, * or #", self.explicit.dtmf));
        }
        if let Some(s) = self.emotion.brain_sentiments.iter().find(|s| !SENTIMENTS.contains(&s.as_str())) {
            return err("triage.emotion.brain_sentiments", format!("{s:?} is not a sentiment; use one of {SENTIMENTS:?}"));
        }
        if !self.emotion.shout_db.is_finite() || self.emotion.shout_db < 0.0 {
            return err("triage.emotion.shout_db", format!("{}: must be a number >= 0 (0 turns it off)", self.emotion.shout_db));
        }
        let a = &self.ambiguity;
        if !(0.0..=1.0).contains(&a.low_confidence) {
            return err("triage.ambiguity.low_confidence", format!("{}: must be within 0..1", a.low_confidence));
        }
        if !(a.repeat_similarity > 0.0 && a.repeat_similarity <= 1.0) {
            return err("triage.ambiguity.repeat_similarity", format!("{}: must be within (0, 1]", a.repeat_similarity));
        }
        if a.fallback_intent.trim().is_empty() {
            return err("triage.ambiguity.fallback_intent", "must name the brain's not-understood intent".into());
        }
        if a.max_long_silences > 0 && a.long_silence_ms == 0 {
            return err("triage.ambiguity.long_silence_ms", "must be > 0 while max_long_silences is on".into());
        }
        let c = &self.clarify;
        if !(c.escalate_at > 0.0 && c.escalate_at <= 1.0) {
            return err("triage.clarify.escalate_at", format!("{}: must be within (0, 1]", c.escalate_at));
        }
        if !(c.ask_at > 0.0 && c.ask_at <= c.escalate_at) {
            return err("triage.clarify.ask_at", format!("{}: must be within (0, escalate_at]", c.ask_at));
        }
        let lists: [(&'static str, &Words); 17] = [
            ("triage.negation.words", &self.negation.words),
            ("triage.explicit.words", &self.explicit.words),
            ("triage.explicit.not_words", &self.explicit.not_words),
            ("triage.explicit.inquiry_words", &self.explicit.inquiry_words),
            ("triage.emotion.anger", &self.emotion.anger),
            ("triage.emotion.distress", &self.emotion.distress),
            ("triage.emotion.refusals", &self.emotion.refusals),
            ("triage.risk.dispute", &self.risk.dispute),
            ("triage.risk.unordered", &self.risk.unordered),
            ("triage.risk.cancel", &self.risk.cancel),
            ("triage.risk.complaint", &self.risk.complaint),
            ("triage.risk.regulator", &self.risk.regulator),
            ("triage.risk.legal", &self.risk.legal),
            ("triage.risk.fraud", &self.risk.fraud),
            ("triage.risk.lost_phone", &self.risk.lost_phone),
            ("triage.risk.vulnerable", &self.risk.vulnerable),
            ("triage.risk.not_words", &self.risk.not_words),
        ];
        for (key, words) in lists {
            // A word that normalizes to nothing would silently never match.
            if let Some(bad) = words.iter().find(|w| lexicon::compile([*w]).is_empty()) {
                return err(key, format!("{bad:?} has nothing to match (only punctuation or spaces)"));
            }
        }
        Ok(())
    }

    /// True when `number` is one of the VIP numbers. Digits only are compared, and a configured
    /// national number matches the same number with a country code in front.
    pub fn is_vip(&self, number: &str) -> bool {
        let n = digits(number);
        if n.is_empty() {
            return false;
        }
        self.vip_numbers.iter().map(|v| digits(v)).any(|v| {
            v == n || (v.len() >= 7 && n.len() >= 7 && (n.ends_with(&v) || v.ends_with(&n)))
        })
    }

    /// Built-in plus configured words.
    pub(crate) fn merged<'a>(&'a self, builtin: &[&'static [&'static str]], extra: &'a Words) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        if self.builtin_lexicons {
            for list in builtin {
                out.extend(list.iter().copied());
            }
        }
        out.extend(extra.iter());
        out
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}
