//! Triage: the policy that decides when a caller should leave the AI for a person.
//!
//! Sans-IO: one [`Triage`] per call is fed what happened (the caller's words with their
//! recognition confidence and loudness, keypad digits, silences, the brain's annotations and
//! escalation proposals) and answers [`Decision::Continue`] or [`Decision::Escalate`]. It never
//! reads a clock or a socket; durations arrive as milliseconds. The call task (or `frontline
//! chat`) owns the I/O and acts on the decision.
//!
//! Triggers, each switchable and tunable in `[triage]` ([`TriageConfig`]):
//! - **explicit**: the caller asks for a person (words or the keypad); a declined request ("不用
//!   转人工") or a mere mention ("an authorized agent store") does not count;
//! - **risk**: the caller's demand conflicts with company rules (disputed charges, services never
//!   ordered, cancel/port threats, complaints, regulators, legal threats, fraud, a lost phone, a
//!   vulnerable caller). A question about a bill is not a risk: explaining bills is the AI's job;
//! - **emotion**: anger or distress words, the brain's sentiment over several turns, refusals in
//!   a row, shouting (loudness well above the caller's own earlier level);
//! - **ambiguity**: the brain not understanding N times, the same intent looping, low-confidence
//!   recognition K times in a row, the caller repeating themselves, long silences;
//! - **other**: the brain's own escalation, a cap on AI turns, VIP numbers;
//! - **repeat contact** (reported as risk): the brain reads an intent the caller already called
//!   about recently ([`Triage::set_past_contacts`], from the records).
//!
//! Risk and explicit-request words survive recognition slips: they are matched by sound too
//! (`sound.rs`), in the transcript and in the recognizer's alternatives, and each hit is
//! weighed against the recognizer's confidence ([`ClarifyConfig`]). A strong hit hands over; a
//! weaker one answers [`Decision::Clarify`] with a question for the caller ("Did you say your
//! phone was stolen?"), and the caller's next words confirm it or not. A question *about* the
//! human desk ("人工服务时间是几点到几点？") is not a request for it, and a caller saying the
//! problem is gone ("it works now") resets the ambiguity counters.
//!
//! When one utterance fires several triggers, the reason is picked in the order risk, emotion,
//! explicit, ambiguity (routing to the risk desk matters more than how the caller asked), and the
//! evidence lists all of them. A call escalates once; later events answer
//! [`Decision::AlreadyEscalated`].

pub mod config;
mod lexicon;

pub use config::{
    AmbiguityConfig, BrainProposalConfig, ClarifyConfig, EmotionConfig, ExplicitConfig, NegationConfig,
    RepeatContactConfig, RiskConfig, TriageConfig, TriageConfigError, Words,
};

use crate::brain::text::NegationWindow;
use lexicon::{Found, Kw, Negation, Scan};
use std::sync::Arc;

/// The family of reasons, as routing and the eval see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Explicit,
    Emotion,
    Ambiguity,
    Risk,
    Other,
}

impl Category {
    pub const ALL: [Category; 5] =
        [Category::Explicit, Category::Emotion, Category::Ambiguity, Category::Risk, Category::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Explicit => "explicit",
            Category::Emotion => "emotion",
            Category::Ambiguity => "ambiguity",
            Category::Risk => "risk",
            Category::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The category of a reason code the brain sent ("explicit-request", "risk-dispute",
    /// "no-understanding", ...).
    pub fn of_brain_reason(reason: &str) -> Category {
        let r = reason.trim().to_ascii_lowercase();
        if r.starts_with("explicit") {
            Category::Explicit
        } else if r.starts_with("risk") {
            Category::Risk
        } else if r.starts_with("emotion") {
            Category::Emotion
        } else if r.starts_with("ambiguity") || r == "no-understanding" {
            Category::Ambiguity
        } else {
            Category::Other
        }
    }
}

/// How soon an agent should pick the call up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// The same priority in the dialog contract.
    pub fn to_proto(self) -> crate::proto::dialog::Priority {
        use crate::proto::dialog::Priority as P;
        match self {
            Priority::Low => P::Low,
            Priority::Normal => P::Normal,
            Priority::High => P::High,
            Priority::Urgent => P::Urgent,
        }
    }
}

/// One thing that contributed to a decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    /// The turn it happened in, as numbered by whoever feeds the triage.
    pub turn: u32,
    /// What fired: a trigger name and, for words, the word (`risk-dispute: 退款`).
    pub trigger: String,
    /// The caller's words around it (the normalized clause), the digit, or the silence.
    pub text: String,
}

/// A decision to hand the caller to a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub category: Category,
    /// Reason code: "explicit-request", "risk-dispute", "emotion-anger", "vip", ...
    pub code: String,
    pub priority: Priority,
    /// The turn the decision was taken in.
    pub turn: u32,
    pub evidence: Vec<Evidence>,
}

/// The AI should ask the caller whether they said what triage half-heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Clarification {
    /// The turn the unsure words were heard in.
    pub turn: u32,
    /// What to ask, in `language`.
    pub question: String,
    /// "en" or "zh": the caller's language as recognized, else the script of their words.
    pub language: String,
    /// What a "yes" would hand over for.
    pub category: Category,
    pub code: String,
    /// How strongly the words pointed there (0..1), below [`ClarifyConfig::escalate_at`].
    pub strength: f32,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Continue,
    Escalate(Escalation),
    /// Ask the caller [`Clarification::question`] and say so ([`Triage::clarification_asked`]);
    /// their next utterance confirms or not. A driver that does not ask treats it as Continue.
    Clarify(Clarification),
    /// This call was already handed over (see [`Triage::escalation`]); nothing new is decided.
    AlreadyEscalated,
}

/// One of the caller's earlier calls, within [`RepeatContactConfig::window_hours`].
#[derive(Debug, Clone, PartialEq)]
pub struct PastContact {
    pub call_id: String,
    /// How long before this call it started, in hours (for the evidence).
    pub hours_ago: u64,
    pub intents: Vec<String>,
}

/// One final recognition result.
#[derive(Debug, Clone, Copy)]
pub struct UtteranceInput<'a> {
    pub turn: u32,
    pub text: &'a str,
    /// Recognized language tag ("en", "zh", or ""). Matching does not depend on it.
    pub language: &'a str,
    /// Recognition confidence 0..1.
    pub confidence: f32,
    /// Mean loudness of the utterance in dBFS, when the gateway measured it.
    pub loudness_dbfs: Option<f32>,
    /// Silence between the end of the bot's turn and this utterance.
    pub silence_before_ms: u32,
}

/// A recognizer's alternative reading counts this much of the transcript's weight.
const ALTERNATIVE_WEIGHT: f32 = 0.85;
/// The keyword itself counts fully from this recognition confidence up, less below.
const EXACT_FULL_CONFIDENCE: f32 = 0.5;
/// From this confidence up the recognizer is sure: a sound-alike is what the caller said.
const SURE_CONFIDENCE: f32 = 0.9;
/// Below `SURE_CONFIDENCE - SLIP_RANGE` a sound-alike counts fully (times its quality).
const SLIP_RANGE: f32 = 0.3;

/// How much one hit of a keyword says the caller meant it, given the recognizer's confidence.
fn hit_strength(quality: f32, confidence: f32) -> f32 {
    let c = if confidence.is_finite() { confidence.clamp(0.0, 1.0) } else { 1.0 };
    if quality >= 1.0 {
        (c / EXACT_FULL_CONFIDENCE).min(1.0)
    } else if quality >= crate::brain::sound::JOINED {
        // The keyword's own letters, split differently ("re fund"): as good as the keyword.
        quality * (c / EXACT_FULL_CONFIDENCE).min(1.0)
    } else {
        quality * ((SURE_CONFIDENCE - c) / SLIP_RANGE).clamp(0.0, 1.0)
    }
}

/// A lexicon's best hits over the transcript and its alternatives, combined as independent
/// evidence (noisy-or), with the hit to show.
#[derive(Debug, Clone)]
struct Heard {
    strength: f32,
    best: Found,
    /// The best hit came from an alternative reading.
    from_alternative: bool,
}

impl Heard {
    fn trigger(&self, code: &str) -> String {
        let mut t = format!("{code}: {}", self.best.kw);
        if let Some(h) = &self.best.heard {
            t.push_str(&format!(" (heard \"{h}\", sounds alike {:.2})", self.best.quality));
        }
        if self.from_alternative {
            t.push_str(" (in the recognizer's alternative)");
        }
        if self.strength < 1.0 {
            t.push_str(&format!(" strength {:.2}", self.strength));
        }
        t
    }
}

/// A clarifying question offered and not yet answered.
#[derive(Debug, Clone)]
struct Pending {
    /// The driver put the question to the caller ([`Triage::clarification_asked`]); a question
    /// never asked is never answered, whatever the caller says next.
    asked: bool,
    turn: u32,
    category: Category,
    code: &'static str,
    priority: Priority,
    evidence: Vec<Evidence>,
}

/// A risk lexicon and what it is reported as.
#[derive(Debug)]
struct RiskLexicon {
    code: &'static str,
    priority: Priority,
    kws: Vec<Kw>,
}

/// The config's word lists, normalized once per call.
#[derive(Debug)]
struct Lexicons {
    negation: Negation,
    explicit: Vec<Kw>,
    explicit_not: Vec<Kw>,
    explicit_inquiry: Vec<Kw>,
    resolved: Vec<Kw>,
    resolved_not: Vec<Kw>,
    courtesy: Vec<Kw>,
    affirm: Vec<Kw>,
    anger: Vec<Kw>,
    distress: Vec<Kw>,
    distress_not: Vec<Kw>,
    refusals: Vec<Kw>,
    refusals_not: Vec<Kw>,
    anger_not: Vec<Kw>,
    take_back: Vec<Kw>,
    third_party: Vec<Kw>,
    own: Vec<Kw>,
    confused: Vec<Kw>,
    /// Cues that decline a feeling word right after them ("我不生气").
    feeling_negation: Negation,
    risks: Vec<RiskLexicon>,
    risk_not: Vec<Kw>,
    dispute_inquiry: Vec<Kw>,
    hypothetical: Vec<Kw>,
    hypothetical_threat: Vec<Kw>,
    supposing: Vec<Kw>,
    speaker: Vec<Kw>,
    refund_arrived: Vec<Kw>,
    not_yet: Vec<Kw>,
    past_complaint: Vec<Kw>,
    restating: Vec<Kw>,
    business: Vec<Kw>,
}

impl Lexicons {
    fn new(c: &TriageConfig) -> Self {
        use lexicon::*;
        let m = |builtin: &[&'static [&'static str]], extra: &Words| compile(c.merged(builtin, extra));
        let r = &c.risk;
        let risk = |code, priority, builtin: &[&'static [&'static str]], extra: &Words| RiskLexicon {
            code,
            priority,
            kws: m(builtin, extra),
        };
        Lexicons {
            negation: Negation {
                cues: m(&[NEGATION_EN, NEGATION_ZH], &c.negation.words).into_iter().map(|k| k.norm).collect(),
                window: NegationWindow { words: c.negation.window_words, chars: c.negation.window_chars },
            },
            explicit: m(&[EXPLICIT_EN, EXPLICIT_ZH], &c.explicit.words),
            explicit_not: m(&[EXPLICIT_NOT_EN, EXPLICIT_NOT_ZH], &c.explicit.not_words),
            explicit_inquiry: m(&[EXPLICIT_INQUIRY_EN, EXPLICIT_INQUIRY_ZH], &c.explicit.inquiry_words),
            resolved: m(&[RESOLVED_EN, RESOLVED_ZH], &Words::default()),
            resolved_not: m(&[RESOLVED_NOT], &Words::default()),
            courtesy: m(&[COURTESY], &Words::default()),
            affirm: m(&[AFFIRM_EN, AFFIRM_ZH], &Words::default()),
            anger: m(&[ANGER_EN, ANGER_ZH], &c.emotion.anger),
            distress: m(&[DISTRESS_EN, DISTRESS_ZH], &c.emotion.distress),
            distress_not: m(&[DISTRESS_NOT_EN, DISTRESS_NOT_ZH], &Words::default()),
            refusals: m(&[REFUSAL_EN, REFUSAL_ZH], &c.emotion.refusals),
            refusals_not: m(&[REFUSAL_NOT], &Words::default()),
            anger_not: m(&[ANGER_NOT], &Words::default()),
            take_back: m(&[TAKE_BACK], &Words::default()),
            third_party: m(&[THIRD_PARTY], &Words::default()),
            own: m(&[OWN], &Words::default()),
            confused: m(&[CONFUSED_EN, CONFUSED_ZH], &Words::default()),
            feeling_negation: Negation {
                cues: compile(FEELING_NEGATION_ZH.iter().copied()).into_iter().map(|k| k.norm).collect(),
                window: NegationWindow { words: 0, chars: FEELING_NEGATION_GAP },
            },
            // Listed from the most to the least specific: the first that fires names the reason.
            risks: vec![
                risk("risk-fraud", Priority::Urgent, &[RISK_FRAUD_EN, RISK_FRAUD_ZH], &r.fraud),
                risk("risk-lost-phone", Priority::Urgent, &[RISK_LOST_EN, RISK_LOST_ZH], &r.lost_phone),
                risk("risk-vulnerable", Priority::High, &[RISK_VULNERABLE_EN, RISK_VULNERABLE_ZH], &r.vulnerable),
                risk("risk-legal", Priority::Urgent, &[RISK_LEGAL_EN, RISK_LEGAL_ZH], &r.legal),
                risk("risk-regulator", Priority::Urgent, &[RISK_REGULATOR_EN, RISK_REGULATOR_ZH], &r.regulator),
                risk("risk-unordered", Priority::High, &[RISK_UNORDERED_EN, RISK_UNORDERED_ZH], &r.unordered),
                risk("risk-dispute", Priority::High, &[RISK_DISPUTE_EN, RISK_DISPUTE_ZH], &r.dispute),
                risk("risk-cancel", Priority::High, &[RISK_CANCEL_EN, RISK_CANCEL_ZH], &r.cancel),
                risk("risk-complaint", Priority::High, &[RISK_COMPLAINT_EN, RISK_COMPLAINT_ZH], &r.complaint),
            ],
            risk_not: m(&[RISK_NOT_EN, RISK_NOT_ZH], &r.not_words),
            dispute_inquiry: m(&[DISPUTE_INQUIRY], &Words::default()),
            hypothetical: m(&[HYPOTHETICAL], &Words::default()),
            hypothetical_threat: m(&[HYPOTHETICAL_THREAT], &Words::default()),
            supposing: m(&[SUPPOSING], &Words::default()),
            speaker: m(&[OWN, SPEAKER], &Words::default()),
            refund_arrived: m(&[REFUND_ARRIVED], &Words::default()),
            not_yet: m(&[NOT_YET], &Words::default()),
            past_complaint: m(&[PAST_COMPLAINT], &Words::default()),
            restating: m(&[RESTATING], &Words::default()),
            business: m(&[BUSINESS_PROCUREMENT], &Words::default()),
        }
    }
}

/// What triage's own word detectors concluded about one turn, kept so a brain proposal for the
/// same turn can be double-checked.
#[derive(Debug, Clone, Copy)]
struct TurnVerdict {
    turn: u32,
    explicit: bool,
    risk: bool,
}

/// One call's triage state.
#[derive(Debug)]
pub struct Triage {
    cfg: Arc<TriageConfig>,
    lex: Lexicons,
    caller: String,
    decided: Vec<Escalation>,
    overruled: Vec<Evidence>,
    caller_turns: u32,
    last_verdict: Option<TurnVerdict>,
    // emotion
    upset: Vec<Evidence>,
    refusals: Vec<Evidence>,
    loudness_sum: f32,
    loudness_n: u32,
    // ambiguity
    fallbacks: Vec<Evidence>,
    same_intent: Option<(String, Vec<Evidence>)>,
    low_confidence: Vec<Evidence>,
    /// Each counted sentence's words, by turn.
    history: Vec<(u32, Vec<String>)>,
    repeats: Vec<Evidence>,
    /// Turns in which the caller said they do not follow.
    confused: Vec<Evidence>,
    long_silences: Vec<Evidence>,
    /// A turn whose brain reading says nothing about understanding (the caller said the problem
    /// was gone, thanked, or answered a clarifying question): its intent neither counts toward a
    /// loop or a misunderstanding nor resets them.
    uncounted_turn: Option<u32>,
    /// Slots the brain had filled at its last reading: more on the same intent is a flow
    /// moving on (the caller answered its question), not a loop.
    slots_filled: usize,
    /// The caller's earlier calls within the repeat-contact window.
    past: Vec<PastContact>,
    // clarifying questions
    pending: Option<Pending>,
    asked: Vec<Evidence>,
    unconfirmed: Vec<Evidence>,
}

/// A trigger that fired, before it becomes (part of) an escalation.
#[derive(Debug)]
struct Fired {
    category: Category,
    code: &'static str,
    priority: Priority,
    evidence: Vec<Evidence>,
}

impl Triage {
    pub fn new(cfg: Arc<TriageConfig>, caller_number: &str) -> Triage {
        Triage {
            lex: Lexicons::new(&cfg),
            cfg,
            caller: caller_number.to_string(),
            decided: Vec::new(),
            overruled: Vec::new(),
            caller_turns: 0,
            last_verdict: None,
            upset: Vec::new(),
            refusals: Vec::new(),
            loudness_sum: 0.0,
            loudness_n: 0,
            fallbacks: Vec::new(),
            same_intent: None,
            low_confidence: Vec::new(),
            history: Vec::new(),
            repeats: Vec::new(),
            confused: Vec::new(),
            long_silences: Vec::new(),
            uncounted_turn: None,
            slots_filled: 0,
            past: Vec::new(),
            pending: None,
            asked: Vec::new(),
            unconfirmed: Vec::new(),
        }
    }

    /// The caller's earlier calls that fall within `repeat_contact.window_hours` (the driver
    /// reads them from the records and leaves out older ones: triage reads no clock).
    pub fn set_past_contacts(&mut self, past: Vec<PastContact>) {
        self.past = past;
    }

    /// The driver asked the caller the question of the [`Decision::Clarify`] answered for
    /// `turn`; the caller's next utterance answers it.
    pub fn clarification_asked(&mut self, c: &Clarification) {
        if let Some(p) = self.pending.as_mut().filter(|p| p.turn == c.turn) {
            p.asked = true;
            let trigger = c.evidence.first().map(|e| e.trigger.clone()).unwrap_or_default();
            self.asked.push(Evidence { turn: c.turn, trigger, text: c.question.clone() });
        }
    }

    /// Clarifying questions put to the caller: the unsure trigger and the question.
    pub fn asked(&self) -> &[Evidence] {
        &self.asked
    }

    /// Clarifying questions the caller did not confirm, for the record.
    pub fn unconfirmed(&self) -> &[Evidence] {
        &self.unconfirmed
    }

    /// Escalations decided on this call (at most one), for the call record.
    pub fn decisions(&self) -> &[Escalation] {
        &self.decided
    }

    /// The escalation of this call, once decided.
    pub fn escalation(&self) -> Option<&Escalation> {
        self.decided.first()
    }

    /// Brain proposals triage overruled (a mention or a declined request the brain took for a
    /// request), for the record.
    pub fn overruled(&self) -> &[Evidence] {
        &self.overruled
    }

    /// Call start: VIP numbers go to a person at once.
    pub fn on_call_start(&mut self) -> Decision {
        if !self.decided.is_empty() {
            return Decision::AlreadyEscalated;
        }
        if self.cfg.enabled && self.cfg.is_vip(&self.caller) {
            let ev = Evidence { turn: 0, trigger: "vip".into(), text: self.caller.clone() };
            return self.decide(0, vec![Fired { category: Category::Other, code: "vip", priority: Priority::High, evidence: vec![ev] }]);
        }
        Decision::Continue
    }

    /// A final recognition result.
    pub fn on_utterance(&mut self, u: &UtteranceInput) -> Decision {
        self.on_utterance_heard(u, &[])
    }

    /// A final recognition result with the recognizer's other readings of the same audio
    /// (n-best or segment alternatives, best first); risk and explicit words are looked for in
    /// them too.
    pub fn on_utterance_heard(&mut self, u: &UtteranceInput, alternatives: &[String]) -> Decision {
        if !self.decided.is_empty() {
            return Decision::AlreadyEscalated;
        }
        if !self.cfg.enabled {
            return Decision::Continue;
        }
        self.caller_turns += 1;
        let clauses = lexicon::clauses(u.text);
        let alt_clauses: Vec<Vec<String>> = alternatives.iter().map(|a| lexicon::clauses(a)).collect();
        let mut fired = Vec::new();
        let mut unsure: Vec<(Category, &'static str, Priority, Heard)> = Vec::new();
        let turn = u.turn;
        let ev = |trigger: String, text: &str| Evidence { turn, trigger, text: text.to_string() };
        let neg = &self.lex.negation;

        // The answer to a clarifying question asked after the previous turn.
        if let Some(p) = self.pending.take().filter(|p| p.asked) {
            self.uncounted_turn = Some(turn);
            if self.affirms(&clauses) {
                let mut evidence = p.evidence;
                evidence.push(ev("clarify-confirmed".into(), u.text.trim()));
                fired.push(Fired { category: p.category, code: p.code, priority: p.priority, evidence });
            } else {
                self.unconfirmed.extend(p.evidence);
            }
        }

        // The caller says the problem is gone: what led there was not a loop, and a complaint
        // they made about it before is settled.
        let resolved = !lexicon::scan(&clauses, &self.lex.resolved, &self.lex.resolved_not, Some(neg)).found.is_empty();

        // Risk.
        let mut risk_found = false;
        if self.cfg.risk.enabled {
            for r in &self.lex.risks {
                // A refund asked about (or thanked for) is a question for the AI; only a demand is a
                // dispute. A complaint made before and settled is history; a risk supposed ("how
                // would I block my SIM if it happened to me?") a question.
                let about = |c: &str| {
                    (r.code == "risk-dispute" && (self.refund_inquiry(&clauses, c) || self.refund_arrived(c)))
                        || (r.code == "risk-complaint" && resolved && lexicon::contains_any(c, &self.lex.past_complaint))
                        || self.supposed(c, &self.lex.supposing)
                        || self.in_someone_elses_story(&clauses, c)
                };
                let Some(h) = self.heard(&clauses, &alt_clauses, &r.kws, &self.lex.risk_not, about, u.confidence) else {
                    continue;
                };
                if h.strength >= self.cfg.clarify.escalate_at {
                    risk_found = true;
                    let evidence = vec![ev(h.trigger(r.code), &h.best.clause)];
                    fired.push(Fired { category: Category::Risk, code: r.code, priority: r.priority, evidence });
                } else {
                    unsure.push((Category::Risk, r.code, r.priority, h));
                }
            }
        }

        // Emotion.
        if self.cfg.emotion.enabled {
            let e = &self.cfg.emotion;
            let s = self.felt(lexicon::scan(&clauses, &self.lex.distress, &self.lex.distress_not, Some(neg)));
            if !s.found.is_empty() {
                fired.push(words_fired(Category::Emotion, "emotion-distress", Priority::Urgent, &s, turn));
            }
            let s = self.felt(lexicon::scan(&clauses, &self.lex.anger, &self.lex.anger_not, Some(neg)));
            if !s.found.is_empty() {
                fired.push(words_fired(Category::Emotion, "emotion-anger", Priority::High, &s, turn));
            }
            if let Some(db) = u.loudness_dbfs.filter(|d| d.is_finite()) {
                let baseline = (self.loudness_n > 0).then(|| self.loudness_sum / self.loudness_n as f32);
                match baseline {
                    Some(b) if e.shout_db > 0.0 && self.loudness_n >= e.shout_baseline_turns.max(1) && db >= b + e.shout_db => {
                        let text = format!("{db:.1} dBFS vs the caller's usual {b:.1} dBFS: {}", u.text.trim());
                        fired.push(Fired {
                            category: Category::Emotion,
                            code: "emotion-shouting",
                            priority: Priority::High,
                            evidence: vec![ev("emotion-shouting".into(), &text)],
                        });
                    }
                    // Shouting is not folded into the baseline: the next shout must still stand out.
                    _ => {
                        self.loudness_sum += db;
                        self.loudness_n += 1;
                    }
                }
            }
            if e.max_refusals > 0 {
                let s = lexicon::scan(&clauses, &self.lex.refusals, &self.lex.refusals_not, None);
                match s.found.first() {
                    Some(f) => self.refusals.push(ev(format!("emotion-refusals: {}", f.kw), &f.clause)),
                    None => self.refusals.clear(),
                }
                if self.refusals.len() as u32 >= e.max_refusals {
                    fired.push(Fired {
                        category: Category::Emotion,
                        code: "emotion-refusals",
                        priority: Priority::Normal,
                        evidence: self.refusals.clone(),
                    });
                }
            }
        }

        // Explicit request. A clause asking about the desk (its hours) asks for nothing.
        let mut explicit_found = false;
        if self.cfg.explicit.enabled {
            let l = &self.lex;
            let about = |c: &str| {
                lexicon::contains_any(c, &l.explicit_inquiry) || self.taken_back(&clauses, c) || self.in_someone_elses_story(&clauses, c)
            };
            if let Some(h) = self.heard(&clauses, &alt_clauses, &l.explicit, &l.explicit_not, about, u.confidence) {
                if h.strength >= self.cfg.clarify.escalate_at {
                    explicit_found = true;
                    let evidence = vec![ev(h.trigger("explicit-request"), &h.best.clause)];
                    fired.push(Fired { category: Category::Explicit, code: "explicit-request", priority: Priority::Normal, evidence });
                } else {
                    unsure.push((Category::Explicit, "explicit-request", Priority::Normal, h));
                }
            }
        }
        self.last_verdict = Some(TurnVerdict { turn, explicit: explicit_found, risk: risk_found });

        // Business for someone with authority to sign: a tender, a stamped quote.
        let business = lexicon::scan(&clauses, &self.lex.business, &[], Some(neg));
        if !business.found.is_empty() {
            fired.push(words_fired(Category::Other, "other-business", Priority::Normal, &business, turn));
        }

        if !lexicon::scan(&clauses, &self.lex.courtesy, &[], Some(neg)).found.is_empty() {
            self.uncounted_turn = Some(turn);
        }
        if resolved {
            self.uncounted_turn = Some(turn);
            self.fallbacks.clear();
            self.same_intent = None;
            self.low_confidence.clear();
            self.repeats.clear();
            self.confused.clear();
            self.history.clear();
        }

        // Ambiguity.
        if self.cfg.ambiguity.enabled && !resolved {
            let a = &self.cfg.ambiguity;
            if u.confidence < a.low_confidence {
                self.low_confidence.push(ev(format!("ambiguity-low-confidence: {:.2}", u.confidence), u.text.trim()));
            } else {
                self.low_confidence.clear();
            }
            if a.max_low_confidence > 0 && self.low_confidence.len() as u32 >= a.max_low_confidence {
                fired.push(Fired {
                    category: Category::Ambiguity,
                    code: "ambiguity-low-confidence",
                    priority: Priority::Normal,
                    evidence: self.low_confidence.clone(),
                });
            }
            let toks = lexicon::tokens(&clauses);
            // Short answers ("yes", "不是") repeat naturally; only sentences count.
            if toks.len() >= 3 {
                let best = self.history.iter().map(|(_, h)| lexicon::similarity(&toks, h)).fold(0.0f32, f32::max);
                if best >= a.repeat_similarity {
                    self.repeats.push(ev(format!("ambiguity-repeat: {:.2}", best), u.text.trim()));
                } else if let Some(f) = lexicon::scan(&clauses, &self.lex.restating, &[], None).found.first().filter(|_| self.caller_turns > 1) {
                    // Said again in other words, and the caller says so.
                    self.repeats.push(ev(format!("ambiguity-repeat: {}", f.kw), u.text.trim()));
                }
                self.history.push((turn, toks));
            }
            if a.max_repeats > 0 && self.repeats.len() as u32 >= a.max_repeats {
                fired.push(Fired {
                    category: Category::Ambiguity,
                    code: "ambiguity-repeat",
                    priority: Priority::Normal,
                    evidence: self.repeats.clone(),
                });
            }
            // Confusion said before the bot has answered is about the caller's problem ("a
            // letter I don't understand"), not about what the bot said.
            let confused = lexicon::scan(&clauses, &self.lex.confused, &[], Some(neg));
            if let Some(f) = confused.found.first().filter(|_| self.caller_turns > 1) {
                self.confused.push(ev(format!("ambiguity-confused: {}", f.kw), u.text.trim()));
            }
            if a.max_confused > 0 && self.confused.len() as u32 >= a.max_confused {
                fired.push(Fired {
                    category: Category::Ambiguity,
                    code: "ambiguity-confused",
                    priority: Priority::Normal,
                    evidence: self.confused.clone(),
                });
            }
            if let Some(f) = self.long_silence(turn, u.silence_before_ms) {
                fired.push(f);
            }
        }

        if let Some(f) = self.turn_cap(turn, u.text) {
            fired.push(f);
        }
        if fired.is_empty() && self.cfg.clarify.enabled {
            // The strongest unsure hit, routed in the same order as a decision.
            unsure.sort_by(|a, b| b.3.strength.total_cmp(&a.3.strength));
            if let Some((category, code, priority, h)) = unsure.into_iter().find(|x| x.3.strength >= self.cfg.clarify.ask_at) {
                let language = match u.language {
                    "en" | "zh" => u.language.to_string(),
                    _ if crate::brain::text::has_cjk(u.text) => "zh".into(),
                    _ => "en".into(),
                };
                let evidence = vec![ev(format!("clarify {}", h.trigger(code)), &h.best.clause)];
                self.pending = Some(Pending { asked: false, turn, category, code, priority, evidence: evidence.clone() });
                return Decision::Clarify(Clarification {
                    turn,
                    question: question(code, &language).to_string(),
                    language,
                    category,
                    code: code.to_string(),
                    strength: h.strength,
                    evidence,
                });
            }
        }
        self.decide(turn, fired)
    }

    /// A feeling word declined by a bare 不/没 right before it ("我不生气") is not felt.
    fn felt(&self, mut s: Scan) -> Scan {
        let (declined, found) = s.found.into_iter().partition(|f| lexicon::negated(f, &self.lex.feeling_negation));
        s.found = found;
        s.declined.extend::<Vec<Found>>(declined);
        s
    }

    /// A request taken back in a later clause of the same utterance ("Can I speak to a person?
    /// Actually no, never mind").
    fn taken_back(&self, utterance: &[String], clause: &str) -> bool {
        let Some(at) = utterance.iter().position(|c| c == clause) else { return false };
        utterance[at + 1..].iter().any(|c| lexicon::contains_any(c, &self.lex.take_back))
    }

    /// The clause tells a friend's, a colleague's or a neighbour's story and does not come back
    /// to the caller after naming them.
    fn someone_elses_story(&self, clause: &str) -> bool {
        self.lex.third_party.iter().any(|k| {
            crate::brain::text::find_all(clause, &k.norm)
                .first()
                .is_some_and(|&at| !lexicon::contains_any(&clause[at + k.norm.len()..], &self.lex.own))
        })
    }

    /// The clause belongs to somebody else's story: it tells one itself, or it goes on with the
    /// one told in the clauses right before it without coming back to the caller ("我同事跟别的
    /// 运营商吵起来了，说要去工信部告他们"; "I was scammed too" comes back).
    fn in_someone_elses_story(&self, utterance: &[String], clause: &str) -> bool {
        // A clause of the recognizer's other readings stands alone.
        let Some(at) = utterance.iter().position(|c| c == clause) else { return self.someone_elses_story(clause) };
        for earlier in utterance[..=at].iter().rev() {
            if self.someone_elses_story(earlier) {
                return true;
            }
            if lexicon::contains_any(earlier, &self.lex.speaker) {
                return false;
            }
        }
        false
    }

    /// The refund has come ("landed this morning", "今天到账了"), and not "hasn't arrived".
    fn refund_arrived(&self, clause: &str) -> bool {
        lexicon::contains_any(clause, &self.lex.refund_arrived) && !lexicon::contains_any(clause, &self.lex.not_yet)
    }

    /// The clause supposes in one of `forms` ("if I…", "how would I…"), and is not a condition
    /// on the company refusing ("不退钱的话").
    fn supposed(&self, clause: &str, forms: &[Kw]) -> bool {
        lexicon::contains_any(clause, forms) && !lexicon::contains_any(clause, &self.lex.hypothetical_threat)
    }

    /// The caller asks about refunds rather than demanding one: an inquiry word anywhere in the
    /// utterance ("just asking", "policy", "我就问问"), or a hypothetical about their own doing in
    /// the same clause as the refund ("if I stop it halfway", "没用完的话") that is not a
    /// condition on the company refusing ("不退钱的话").
    fn refund_inquiry(&self, utterance: &[String], clause: &str) -> bool {
        let l = &self.lex;
        utterance.iter().any(|c| lexicon::contains_any(c, &l.dispute_inquiry)) || self.supposed(clause, &l.hypothetical)
    }

    /// A lexicon's hits in the transcript and the alternatives, weighed; None when nothing
    /// counts. Hits in a clause that is `about` the thing (a question about it) are mentions.
    fn heard(
        &self,
        clauses: &[String],
        alternatives: &[Vec<String>],
        kws: &[Kw],
        not: &[Kw],
        about: impl Fn(&str) -> bool,
        confidence: f32,
    ) -> Option<Heard> {
        let neg = Some(&self.lex.negation);
        let mut miss = 1.0f32;
        let mut best: Option<(f32, Found, bool)> = None;
        let readings = std::iter::once((clauses, 1.0, false)).chain(alternatives.iter().map(|a| (&a[..], ALTERNATIVE_WEIGHT, true)));
        for (cl, weight, alt) in readings {
            let s = lexicon::scan_heard(cl, kws, not, neg);
            let top = s
                .found
                .into_iter()
                .filter(|f| !about(&f.clause))
                .map(|f| (weight * hit_strength(f.quality, confidence), f))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((st, f)) = top {
                miss *= 1.0 - st;
                if best.as_ref().is_none_or(|b| st > b.0) {
                    best = Some((st, f, alt));
                }
            }
        }
        let (_, found, from_alternative) = best?;
        let strength = 1.0 - miss;
        (strength > 0.0).then_some(Heard { strength, best: found, from_alternative })
    }

    /// The caller's words open with a yes ("yes", "对", "是的").
    fn affirms(&self, clauses: &[String]) -> bool {
        let Some(first) = clauses.first() else { return false };
        self.lex.affirm.iter().any(|k| match first.strip_prefix(k.norm.as_str()) {
            None => false,
            // "对不起", "是不是": a yes followed by a no is not one.
            Some(rest) if k.cjk => !rest.starts_with('不'),
            Some(rest) => rest.is_empty() || rest.starts_with(' '),
        })
    }

    /// The caller's utterance in `turn` was the first part of a sentence they went on with
    /// before hearing a reply (a pause mid-sentence cut it in two); the next turn brings the
    /// whole sentence. What was read from the fragment alone is withdrawn (the brain's "not
    /// understood", a low confidence, the sentence later "repeating" it), and the two count as
    /// one caller turn. Triggers that fired on the fragment stand: its words were said.
    pub fn continued(&mut self, turn: u32) {
        self.caller_turns = self.caller_turns.saturating_sub(1);
        self.fallbacks.retain(|e| e.turn != turn);
        self.low_confidence.retain(|e| e.turn != turn);
        self.repeats.retain(|e| e.turn != turn);
        self.confused.retain(|e| e.turn != turn);
        self.history.retain(|(t, _)| *t != turn);
        if let Some((_, evs)) = &mut self.same_intent {
            evs.retain(|e| e.turn != turn);
            if evs.is_empty() {
                self.same_intent = None;
            }
        }
    }

    /// A keypad digit.
    pub fn on_dtmf(&mut self, turn: u32, digit: char) -> Decision {
        if !self.decided.is_empty() {
            return Decision::AlreadyEscalated;
        }
        if !self.cfg.enabled {
            return Decision::Continue;
        }
        self.caller_turns += 1;
        // A key is not an answer to a spoken question.
        if let Some(p) = self.pending.take() {
            self.unconfirmed.extend(p.evidence);
        }
        let mut fired = Vec::new();
        let explicit = self.cfg.explicit.enabled && self.cfg.explicit.dtmf.contains(digit);
        self.last_verdict = Some(TurnVerdict { turn, explicit, risk: false });
        if explicit {
            fired.push(Fired {
                category: Category::Explicit,
                code: "explicit-request",
                priority: Priority::Normal,
                evidence: vec![Evidence { turn, trigger: "explicit-dtmf".into(), text: format!("keypad {digit}") }],
            });
        }
        if let Some(f) = self.turn_cap(turn, &format!("keypad {digit}")) {
            fired.push(f);
        }
        self.decide(turn, fired)
    }

    /// The caller said nothing for `ms` after the bot's turn.
    pub fn on_silence(&mut self, turn: u32, ms: u32) -> Decision {
        if !self.decided.is_empty() {
            return Decision::AlreadyEscalated;
        }
        if !self.cfg.enabled || !self.cfg.ambiguity.enabled {
            return Decision::Continue;
        }
        let fired = self.long_silence(turn, ms).into_iter().collect();
        self.decide(turn, fired)
    }

    /// The brain's reading of a turn (Annotate): the intent it matched, the caller's mood and
    /// how many slots of the conversation it has filled so far.
    pub fn on_brain(&mut self, turn: u32, intent: &str, sentiment: &str, slots_filled: usize) -> Decision {
        if !self.decided.is_empty() {
            return Decision::AlreadyEscalated;
        }
        if !self.cfg.enabled {
            return Decision::Continue;
        }
        let slot_filled = slots_filled > self.slots_filled;
        self.slots_filled = slots_filled;
        let mut fired = Vec::new();
        // The brain's reading of the turn a question was just asked about: its own sense of a
        // request or a dispute, or an upset caller, settles the question without asking it.
        if self.pending.as_ref().is_some_and(|p| p.turn == turn) {
            let upset = self.cfg.emotion.brain_sentiments.iter().any(|s| s == sentiment);
            if upset || self.cfg.clarify.confirming_intents.iter().any(|i| i == intent) {
                let p = self.pending.take().expect("checked above");
                let mut evidence = p.evidence;
                evidence.push(Evidence { turn, trigger: format!("clarify-brain: {intent}/{sentiment}"), text: intent.to_string() });
                fired.push(Fired { category: p.category, code: p.code, priority: p.priority, evidence });
            }
        }
        let e = &self.cfg.emotion;
        if e.enabled && e.brain_sentiment_turns > 0 && e.brain_sentiments.iter().any(|s| s == sentiment) {
            self.upset.push(Evidence { turn, trigger: "emotion-brain-sentiment".into(), text: sentiment.to_string() });
            if self.upset.len() as u32 >= e.brain_sentiment_turns {
                fired.push(Fired {
                    category: Category::Emotion,
                    code: "emotion-brain-sentiment",
                    priority: Priority::High,
                    evidence: self.upset.clone(),
                });
            }
        }
        let rc = &self.cfg.repeat_contact;
        if rc.enabled && crate::brain::conversation::is_topic(intent) && !rc.ignore_intents.iter().any(|i| i == intent) {
            if let Some(p) = self.past.iter().find(|p| p.intents.iter().any(|i| i == intent)) {
                let text = format!("called about {intent} {} h ago (call {})", p.hours_ago, p.call_id);
                let evidence = vec![Evidence { turn, trigger: format!("repeat-contact: {intent}"), text }];
                fired.push(Fired { category: Category::Risk, code: "repeat-contact", priority: Priority::High, evidence });
            }
        }
        let a = &self.cfg.ambiguity;
        // A silence reprompt says nothing about understanding; it neither counts nor resets.
        // Nor does a turn of thanks, of "it works now", or an answer to a clarifying question.
        if a.enabled && intent != "silence" && self.uncounted_turn != Some(turn) {
            let ev = Evidence { turn, trigger: format!("brain intent: {intent}"), text: intent.to_string() };
            if intent == a.fallback_intent {
                self.fallbacks.push(ev);
                self.same_intent = None;
                if a.max_fallbacks > 0 && self.fallbacks.len() as u32 >= a.max_fallbacks {
                    fired.push(Fired {
                        category: Category::Ambiguity,
                        code: "ambiguity-not-understood",
                        priority: Priority::Normal,
                        evidence: self.fallbacks.clone(),
                    });
                }
            } else {
                self.fallbacks.clear();
                match &mut self.same_intent {
                    // The caller answered the intent's question: the flow moved on.
                    Some((name, _)) if name == intent && slot_filled => {}
                    Some((name, evs)) if name == intent => evs.push(ev),
                    _ => self.same_intent = Some((intent.to_string(), vec![ev])),
                }
                if let Some((_, evs)) = &self.same_intent {
                    if a.max_same_intent > 0 && evs.len() as u32 >= a.max_same_intent {
                        fired.push(Fired {
                            category: Category::Ambiguity,
                            code: "ambiguity-intent-loop",
                            priority: Priority::Normal,
                            evidence: evs.clone(),
                        });
                    }
                }
            }
        }
        self.decide(turn, fired)
    }

    /// The brain proposed a handoff (its Escalate action).
    pub fn on_brain_escalate(&mut self, turn: u32, reason: &str, summary: &str) -> Decision {
        if !self.decided.is_empty() {
            return Decision::AlreadyEscalated;
        }
        if !self.cfg.brain.follow {
            return Decision::Continue;
        }
        let category = Category::of_brain_reason(reason);
        let ev = Evidence { turn, trigger: format!("brain escalate: {reason}"), text: summary.to_string() };
        // The brain spots keywords; triage also knows mentions and declines. When triage read the
        // same turn and found no such request, the brain's proposal is overruled.
        if self.cfg.enabled && self.cfg.brain.overrule.iter().any(|r| r == reason) {
            if let Some(v) = self.last_verdict.filter(|v| v.turn == turn) {
                let own = match category {
                    Category::Explicit if self.cfg.explicit.enabled => Some(v.explicit),
                    Category::Risk if self.cfg.risk.enabled => Some(v.risk),
                    Category::Ambiguity if self.cfg.ambiguity.enabled && self.uncounted_turn == Some(turn) => Some(false),
                    _ => None,
                };
                if own == Some(false) {
                    self.overruled.push(ev);
                    return Decision::Continue;
                }
            }
        }
        let priority = match category {
            Category::Risk => Priority::High,
            _ => Priority::Normal,
        };
        let code: &'static str = match category {
            Category::Explicit => "explicit-request",
            Category::Risk => "risk-brain",
            Category::Emotion => "emotion-brain",
            Category::Ambiguity => "ambiguity-not-understood",
            Category::Other => "brain-proposed",
        };
        self.decide(turn, vec![Fired { category, code, priority, evidence: vec![ev] }])
    }

    /// A supervisor forced a handoff (the Ops API's Escalate). Decided whatever the detectors'
    /// configuration says: a person chose it, and their words are the evidence.
    pub fn on_operator_escalate(&mut self, turn: u32, reason: &str) -> Decision {
        if !self.decided.is_empty() {
            return Decision::AlreadyEscalated;
        }
        let ev = Evidence { turn, trigger: "operator".into(), text: reason.trim().to_string() };
        self.decide(turn, vec![Fired { category: Category::Other, code: "operator-request", priority: Priority::High, evidence: vec![ev] }])
    }

    fn long_silence(&mut self, turn: u32, ms: u32) -> Option<Fired> {
        let a = &self.cfg.ambiguity;
        if a.max_long_silences == 0 || ms < a.long_silence_ms {
            return None;
        }
        self.long_silences.push(Evidence { turn, trigger: "ambiguity-silence".into(), text: format!("{ms} ms of silence") });
        (self.long_silences.len() as u32 >= a.max_long_silences).then(|| Fired {
            category: Category::Ambiguity,
            code: "ambiguity-silence",
            priority: Priority::Normal,
            evidence: self.long_silences.clone(),
        })
    }

    fn turn_cap(&self, turn: u32, text: &str) -> Option<Fired> {
        let cap = self.cfg.max_ai_turns;
        (cap > 0 && self.caller_turns >= cap).then(|| Fired {
            category: Category::Other,
            code: "max-ai-turns",
            priority: Priority::Normal,
            evidence: vec![Evidence { turn, trigger: format!("max-ai-turns: {cap}"), text: text.trim().to_string() }],
        })
    }

    /// Picks the reason among what fired this turn; keeps everyone's evidence.
    fn decide(&mut self, turn: u32, mut fired: Vec<Fired>) -> Decision {
        if fired.is_empty() {
            return Decision::Continue;
        }
        let rank = |c: Category| match c {
            Category::Risk => 0,
            Category::Emotion => 1,
            Category::Explicit => 2,
            Category::Ambiguity => 3,
            Category::Other => 4,
        };
        // Stable: within a category the first detector listed wins.
        fired.sort_by_key(|f| rank(f.category));
        let upset = fired.iter().any(|f| f.category == Category::Emotion);
        let first = &fired[0];
        let mut priority = fired.iter().map(|f| f.priority).max().unwrap_or(first.priority);
        // An upset caller should not wait in the normal queue, whatever the reason.
        if upset {
            priority = priority.max(Priority::High);
        }
        let esc = Escalation {
            category: first.category,
            code: first.code.to_string(),
            priority,
            turn,
            evidence: fired.iter().flat_map(|f| f.evidence.iter().cloned()).collect(),
        };
        self.decided.push(esc.clone());
        Decision::Escalate(esc)
    }
}

/// The clarifying question for a reason code.
fn question(code: &str, language: &str) -> &'static str {
    let (en, zh) = match code {
        "explicit-request" => ("Would you like me to put you through to a person?", "您是需要转人工客服吗？"),
        "risk-lost-phone" => ("Did you say your phone was lost or stolen?", "您是说手机丢了或者被偷了吗？"),
        "risk-dispute" => ("Did you say you want a refund?", "您是说要退款吗？"),
        "risk-complaint" => ("Did you say you want to make a complaint?", "您是说要投诉吗？"),
        "risk-cancel" => ("Did you say you want to cancel or leave us?", "您是说要销户或者转网吗？"),
        "risk-fraud" => ("Did you say someone used your account or identity?", "您是说有人冒用了您的账户或身份吗？"),
        "risk-unordered" => ("Did you say you never ordered this?", "您是说您没有订过这个业务吗？"),
        "risk-legal" => ("Did you say you want to take legal action?", "您是说要走法律途径吗？"),
        "risk-regulator" => ("Did you say you want to report this to the regulator?", "您是说要向监管部门反映吗？"),
        _ => ("Did I understand that you need some extra help from us?", "请问您是需要我们特别协助吗？"),
    };
    if language == "zh" {
        zh
    } else {
        en
    }
}

fn words_fired(category: Category, code: &'static str, priority: Priority, s: &Scan, turn: u32) -> Fired {
    Fired {
        category,
        code,
        priority,
        evidence: s
            .found
            .iter()
            .map(|f| Evidence { turn, trigger: format!("{code}: {}", f.kw), text: f.clause.clone() })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
