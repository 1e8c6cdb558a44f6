//! Loading and checking the playbook a service designer writes (`assets/playbook.toml`).
//!
//! The TOML is parsed into raw serde structs, then validated and compiled into [`Playbook`]:
//! placeholders are filled in, keywords normalized, and every text checked to exist in every
//! language. A designer's mistake is reported at start-up with the file, the key and the problem,
//! never discovered mid-call as a silent or half-translated answer.

use super::text::{self, NegationWindow};
use crate::proto::dialog::Priority;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The playbook compiled into the binary, used when no `--playbook` file is given.
pub const EMBEDDED_PLAYBOOK: &str = include_str!("../../assets/playbook.toml");

/// Why a playbook could not be used. Every variant names where the playbook came from.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read playbook {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("playbook {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("playbook {origin}: key `{key}`: {problem}")]
    Invalid { origin: String, key: String, problem: String },
}

// ------------------------------------------------------------------ raw TOML shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    settings: RawSettings,
    #[serde(default)]
    account: BTreeMap<String, BTreeMap<String, String>>,
    prompts: RawPrompts,
    negation: RawNegation,
    #[serde(default)]
    sentiment: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    intents: Vec<RawIntent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    languages: Vec<String>,
    default_language: String,
    max_fallbacks: u32,
    max_silences: u32,
    /// Keypad keys that choose the call's language ("9" = "en").
    #[serde(default)]
    language_keys: BTreeMap<String, String>,
}

type RawText = BTreeMap<String, String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompts {
    greeting: RawText,
    fallback: RawText,
    no_understanding: RawText,
    reprompt: RawText,
    silence_goodbye: RawText,
    declined: RawText,
    menu: RawText,
    after_handoff: RawText,
    /// Optional: playbooks written before it answer thanks with `declined`.
    #[serde(default)]
    thanks: Option<RawText>,
    /// Optional: without it, a call of unknown language hears the whole greeting in each.
    #[serde(default)]
    opening: Option<RawText>,
    /// Optional: how to choose each language by keypad, said in that language after a miss.
    #[serde(default)]
    language_hint: Option<RawText>,
}

// Not deny_unknown_fields: the language keys are open-ended (flattened), and a misspelt window
// key still fails because its value is not a list of strings.
#[derive(Deserialize)]
struct RawNegation {
    window_words: usize,
    window_chars: usize,
    #[serde(flatten)]
    cues: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawAction {
    #[default]
    Answer,
    Escalate,
    Hangup,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    keywords: BTreeMap<String, Vec<String>>,
    answer: RawText,
    dtmf: Option<String>,
    #[serde(default)]
    negatable: bool,
    declined: Option<RawText>,
    #[serde(default)]
    action: RawAction,
    reason: Option<String>,
    priority: Option<String>,
    slot: Option<RawSlot>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlot {
    name: String,
    retry: RawText,
    options: Vec<RawOption>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    value: String,
    keywords: BTreeMap<String, Vec<String>>,
    dtmf: Option<String>,
    answer: RawText,
}

// ------------------------------------------------------------------ compiled playbook

/// A spoken text in every language of the playbook, placeholders already filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(BTreeMap<String, String>);

impl Text {
    /// The text in `lang`. Validation guarantees every playbook language is present; an unknown
    /// language falls back to the first one rather than saying nothing.
    pub fn get(&self, lang: &str) -> &str {
        self.0
            .get(lang)
            .or_else(|| self.0.values().next())
            .map_or("", String::as_str)
    }

    /// The text in every language it is written in.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }
}

/// A normalized keyword and the language it was written for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    pub norm: String,
    pub cjk: bool,
    pub lang: String,
    /// What a Mandarin keyword of two characters or more sounds like, for a caller the
    /// recognizer wrote down in homophones (宽待 for 宽带).
    pub(crate) sound: Option<super::sound::Sound>,
}

/// What happens after an intent's answer has been said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentAction {
    Answer,
    Escalate { reason: String, priority: Priority },
    Hangup { reason: String },
}

#[derive(Debug, Clone)]
pub struct SlotOption {
    pub value: String,
    pub keywords: Vec<Keyword>,
    pub dtmf: Option<String>,
    pub answer: Text,
}

/// A one-question flow: the intent's answer asks, the next turn picks an option.
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub retry: Text,
    pub options: Vec<SlotOption>,
}

#[derive(Debug, Clone)]
pub struct Intent {
    pub name: String,
    pub keywords: Vec<Keyword>,
    pub answer: Text,
    pub dtmf: Option<String>,
    pub negatable: bool,
    pub declined: Option<Text>,
    pub action: IntentAction,
    pub slot: Option<Slot>,
}

/// Texts not tied to an intent.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub greeting: Text,
    pub fallback: Text,
    pub no_understanding: Text,
    pub reprompt: Text,
    pub silence_goodbye: Text,
    pub declined: Text,
    pub menu: Text,
    pub after_handoff: Text,
    /// The answer to thanks (or praise) that asks for nothing: not a misunderstanding.
    pub thanks: Text,
    /// Said in every language, one after the other, instead of the greeting when the call's
    /// language is not known: short, so the second language starts within seconds.
    pub opening: Option<Text>,
    /// "For English, press 9": after a miss on a call whose language was detected, said in each
    /// other language that has a key, so a caller recognized in the wrong one can switch.
    pub language_hint: Option<Text>,
}

/// Moods in the order they are checked: the strongest signal wins.
pub const MOODS: [&str; 4] = ["distressed", "angry", "negative", "positive"];

/// A validated, compiled playbook. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Playbook {
    origin: String,
    languages: Vec<String>,
    default_language: String,
    max_fallbacks: u32,
    max_silences: u32,
    /// Keypad key → language, in key order.
    language_keys: Vec<(String, String)>,
    prompts: Prompts,
    negation_cues: Vec<String>,
    negation_window: NegationWindow,
    sentiment: Vec<(&'static str, Vec<Keyword>)>,
    intents: Vec<Intent>,
    /// The demo account ([account.<language>]): what lookups (the LLM brain's CRM tools) answer.
    account: BTreeMap<String, BTreeMap<String, String>>,
}

impl Playbook {
    /// Parses and validates a playbook held in memory; errors call it `<inline>`.
    pub fn from_toml_str(s: &str) -> Result<Self, PlaybookError> {
        Self::parse(s, "<inline>")
    }

    /// Reads, parses and validates the playbook at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PlaybookError> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&s, &path.display().to_string())
    }

    /// The playbook compiled into the binary (`assets/playbook.toml`).
    pub fn embedded() -> Result<Self, PlaybookError> {
        Self::parse(EMBEDDED_PLAYBOOK, "assets/playbook.toml (embedded)")
    }

    /// The designer's playbook at `path` when one is given, else the embedded one.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<Self, PlaybookError> {
        match path {
            Some(p) => Self::load(p),
            None => Self::embedded(),
        }
    }

    /// Parses `s`, naming it `origin` in errors.
    pub fn parse(s: &str, origin: &str) -> Result<Self, PlaybookError> {
        let raw: RawPlaybook = toml::from_str(s).map_err(|e| PlaybookError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Compiler { origin }.compile(raw)
    }

    /// Where this playbook came from (a path, `<inline>` or the embedded asset).
    pub fn origin(&self) -> &str {
        &self.origin
    }
    pub fn languages(&self) -> &[String] {
        &self.languages
    }
    pub fn default_language(&self) -> &str {
        &self.default_language
    }
    pub fn supports(&self, lang: &str) -> bool {
        self.languages.iter().any(|l| l == lang)
    }
    pub fn max_fallbacks(&self) -> u32 {
        self.max_fallbacks
    }
    pub fn max_silences(&self) -> u32 {
        self.max_silences
    }
    /// The language a keypad key chooses, if it is one of `settings.language_keys`.
    pub fn language_of_key(&self, digits: &str) -> Option<&str> {
        self.language_keys.iter().find(|(k, _)| k == digits).map(|(_, l)| l.as_str())
    }
    /// The languages that have a keypad key.
    pub fn keyed_languages(&self) -> impl Iterator<Item = &str> {
        self.language_keys.iter().map(|(_, l)| l.as_str())
    }
    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }
    /// Every line the playbook can say, with its language: what a voice can render ahead.
    /// Texts have their placeholders filled at load, so these are the words callers hear.
    pub fn spoken_lines(&self) -> Vec<(&str, &str)> {
        let p = &self.prompts;
        let mut texts: Vec<&Text> = vec![
            &p.greeting, &p.fallback, &p.no_understanding, &p.reprompt, &p.silence_goodbye, &p.declined, &p.menu, &p.after_handoff,
            &p.thanks,
        ];
        texts.extend(&p.opening);
        texts.extend(&p.language_hint);
        for intent in &self.intents {
            texts.push(&intent.answer);
            texts.extend(&intent.declined);
            if let Some(slot) = &intent.slot {
                texts.push(&slot.retry);
                texts.extend(slot.options.iter().map(|o| &o.answer));
            }
        }
        texts.iter().flat_map(|t| t.0.iter().map(|(lang, line)| (lang.as_str(), line.as_str()))).filter(|(_, line)| !line.trim().is_empty()).collect()
    }

    pub fn intents(&self) -> &[Intent] {
        &self.intents
    }
    pub fn intent(&self, name: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.name == name)
    }
    pub fn negation_cues(&self) -> &[String] {
        &self.negation_cues
    }
    pub fn negation_window(&self) -> NegationWindow {
        self.negation_window
    }
    /// A demo account value as it is spoken in `lang` (e.g. "balance" → "forty-two yuan fifty").
    pub fn account_field(&self, lang: &str, field: &str) -> Option<&str> {
        self.account.get(lang).and_then(|a| a.get(field)).map(String::as_str)
    }
    pub fn sentiment_lexicon(&self) -> &[(&'static str, Vec<Keyword>)] {
        &self.sentiment
    }
}

/// Reduces a BCP 47 tag ("en-US", "zh_CN", "cmn") to the primary tag the playbook uses.
pub fn primary_language(tag: &str) -> String {
    let primary = tag
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match primary.as_str() {
        // Whisper and some carriers use ISO 639-2/3 codes.
        "cmn" | "zho" | "chi" => "zh".to_string(),
        "eng" => "en".to_string(),
        _ => primary,
    }
}

struct Compiler<'a> {
    origin: &'a str,
}

impl Compiler<'_> {
    fn err(&self, key: impl Into<String>, problem: impl Into<String>) -> PlaybookError {
        PlaybookError::Invalid {
            origin: self.origin.to_string(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    fn compile(&self, raw: RawPlaybook) -> Result<Playbook, PlaybookError> {
        let s = &raw.settings;
        if s.languages.is_empty() {
            return Err(self.err("settings.languages", "list at least one language, e.g. [\"en\", \"zh\"]"));
        }
        let mut seen = BTreeSet::new();
        for (i, l) in s.languages.iter().enumerate() {
            if l.is_empty() || primary_language(l) != *l {
                return Err(self.err(
                    format!("settings.languages[{i}]"),
                    format!("`{l}` is not a lowercase primary language tag such as \"en\" or \"zh\""),
                ));
            }
            if !seen.insert(l.as_str()) {
                return Err(self.err(format!("settings.languages[{i}]"), format!("`{l}` is listed twice")));
            }
        }
        let langs = s.languages.clone();
        if !langs.contains(&s.default_language) {
            return Err(self.err(
                "settings.default_language",
                format!("`{}` is not one of settings.languages {:?}", s.default_language, langs),
            ));
        }
        if s.max_fallbacks == 0 {
            return Err(self.err("settings.max_fallbacks", "must be 1 or more"));
        }

        for lang in raw.account.keys() {
            if !langs.contains(lang) {
                return Err(self.err(format!("account.{lang}"), format!("language `{lang}` is not in settings.languages")));
            }
        }
        let text = |key: &str, t: &RawText| self.text(key, t, &langs, &raw.account);
        let p = &raw.prompts;
        let prompts = Prompts {
            greeting: text("prompts.greeting", &p.greeting)?,
            fallback: text("prompts.fallback", &p.fallback)?,
            no_understanding: text("prompts.no_understanding", &p.no_understanding)?,
            reprompt: text("prompts.reprompt", &p.reprompt)?,
            silence_goodbye: text("prompts.silence_goodbye", &p.silence_goodbye)?,
            declined: text("prompts.declined", &p.declined)?,
            menu: text("prompts.menu", &p.menu)?,
            after_handoff: text("prompts.after_handoff", &p.after_handoff)?,
            thanks: match &p.thanks {
                Some(t) => text("prompts.thanks", t)?,
                None => text("prompts.declined", &p.declined)?,
            },
            opening: p.opening.as_ref().map(|t| text("prompts.opening", t)).transpose()?,
            language_hint: p.language_hint.as_ref().map(|t| text("prompts.language_hint", t)).transpose()?,
        };

        let mut negation_cues = Vec::new();
        for (lang, cues) in &raw.negation.cues {
            if !langs.contains(lang) {
                return Err(self.err(format!("negation.{lang}"), format!("language `{lang}` is not in settings.languages")));
            }
            for kw in self.keywords(&format!("negation.{lang}"), lang, cues)? {
                negation_cues.push(kw.norm);
            }
        }

        let mut sentiment = Vec::new();
        for (mood, by_lang) in &raw.sentiment {
            let Some(m) = MOODS.iter().find(|m| **m == mood.as_str()) else {
                return Err(self.err(format!("sentiment.{mood}"), format!("unknown mood; use one of {MOODS:?}")));
            };
            let mut kws = Vec::new();
            for (lang, words) in by_lang {
                if !langs.contains(lang) {
                    return Err(self.err(format!("sentiment.{mood}.{lang}"), format!("language `{lang}` is not in settings.languages")));
                }
                kws.extend(self.keywords(&format!("sentiment.{mood}.{lang}"), lang, words)?);
            }
            sentiment.push((*m, kws));
        }
        sentiment.sort_by_key(|(m, _)| MOODS.iter().position(|x| x == m));

        if raw.intents.is_empty() {
            return Err(self.err("intents", "define at least one [[intents]] block"));
        }
        let mut intents = Vec::new();
        let mut names = BTreeSet::new();
        let mut digits: BTreeMap<String, String> = BTreeMap::new();
        for (i, ri) in raw.intents.iter().enumerate() {
            let key = format!("intents[{i}]");
            if ri.name.trim().is_empty() {
                return Err(self.err(format!("{key}.name"), "must not be empty"));
            }
            let key = format!("intents[{i}] ({})", ri.name);
            if !names.insert(ri.name.clone()) {
                return Err(self.err(format!("{key}.name"), "another intent has the same name"));
            }
            let keywords = self.keyword_table(&format!("{key}.keywords"), &ri.keywords, &langs)?;
            let answer = text(&format!("{key}.answer"), &ri.answer)?;
            let declined = match &ri.declined {
                Some(d) => {
                    if !ri.negatable {
                        return Err(self.err(format!("{key}.declined"), "only a `negatable = true` intent can be declined"));
                    }
                    Some(text(&format!("{key}.declined"), d)?)
                }
                None => None,
            };
            if let Some(d) = &ri.dtmf {
                self.check_dtmf(&format!("{key}.dtmf"), d)?;
                if let Some(other) = digits.insert(d.clone(), ri.name.clone()) {
                    return Err(self.err(format!("{key}.dtmf"), format!("digit(s) `{d}` already select intent `{other}`")));
                }
            }
            let reason = ri.reason.as_deref().map(str::trim).unwrap_or("");
            let action = match ri.action {
                RawAction::Answer => {
                    if ri.reason.is_some() || ri.priority.is_some() {
                        return Err(self.err(format!("{key}.reason"), "`reason` and `priority` only apply to action = \"escalate\" or \"hangup\""));
                    }
                    IntentAction::Answer
                }
                RawAction::Escalate => {
                    if reason.is_empty() {
                        return Err(self.err(format!("{key}.reason"), "an escalate intent needs a reason code, e.g. \"explicit-request\""));
                    }
                    let priority = match ri.priority.as_deref().unwrap_or("normal") {
                        "low" => Priority::Low,
                        "normal" => Priority::Normal,
                        "high" => Priority::High,
                        "urgent" => Priority::Urgent,
                        other => {
                            return Err(self.err(format!("{key}.priority"), format!("`{other}` is not one of low, normal, high, urgent")))
                        }
                    };
                    IntentAction::Escalate { reason: reason.to_string(), priority }
                }
                RawAction::Hangup => {
                    if reason.is_empty() {
                        return Err(self.err(format!("{key}.reason"), "a hangup intent needs a reason code, e.g. \"caller-goodbye\""));
                    }
                    if ri.priority.is_some() {
                        return Err(self.err(format!("{key}.priority"), "`priority` only applies to action = \"escalate\""));
                    }
                    IntentAction::Hangup { reason: reason.to_string() }
                }
            };
            let slot = match &ri.slot {
                None => None,
                Some(rs) => {
                    if ri.action != RawAction::Answer {
                        return Err(self.err(format!("{key}.slot"), "a slot flow needs action = \"answer\": the call must continue to hear the reply"));
                    }
                    Some(self.slot(&format!("{key}.slot"), rs, &langs, &text)?)
                }
            };
            // A homophone may pick an answer, never a handover or a hang-up: those act on the
            // caller's words as written (triage asks back when it is unsure of them).
            let keywords = match action {
                IntentAction::Answer => keywords,
                _ => keywords.into_iter().map(|k| Keyword { sound: None, ..k }).collect(),
            };
            intents.push(Intent {
                name: ri.name.clone(),
                keywords,
                answer,
                dtmf: ri.dtmf.clone(),
                negatable: ri.negatable,
                declined,
                action,
                slot,
            });
        }

        let mut language_keys = Vec::new();
        for (d, lang) in &s.language_keys {
            let key = format!("settings.language_keys.\"{d}\"");
            self.check_dtmf(&key, d)?;
            if !langs.contains(lang) {
                return Err(self.err(key, format!("language `{lang}` is not one of settings.languages {langs:?}")));
            }
            if let Some(intent) = digits.get(d) {
                return Err(self.err(key, format!("digit(s) `{d}` already select intent `{intent}`")));
            }
            language_keys.push((d.clone(), lang.clone()));
        }

        Ok(Playbook {
            origin: self.origin.to_string(),
            languages: langs,
            default_language: s.default_language.clone(),
            max_fallbacks: s.max_fallbacks,
            max_silences: s.max_silences,
            language_keys,
            prompts,
            negation_cues,
            negation_window: NegationWindow {
                words: raw.negation.window_words,
                chars: raw.negation.window_chars,
            },
            sentiment,
            intents,
            account: raw.account.clone(),
        })
    }

    fn slot(
        &self,
        key: &str,
        rs: &RawSlot,
        langs: &[String],
        text: &dyn Fn(&str, &RawText) -> Result<Text, PlaybookError>,
    ) -> Result<Slot, PlaybookError> {
        if rs.name.trim().is_empty() {
            return Err(self.err(format!("{key}.name"), "must not be empty"));
        }
        if rs.options.len() < 2 {
            return Err(self.err(format!("{key}.options"), "a slot needs at least two options"));
        }
        let retry = text(&format!("{key}.retry"), &rs.retry)?;
        let mut options = Vec::new();
        let mut digits = BTreeSet::new();
        for (j, ro) in rs.options.iter().enumerate() {
            let okey = format!("{key}.options[{j}]");
            if ro.value.trim().is_empty() {
                return Err(self.err(format!("{okey}.value"), "must not be empty"));
            }
            if let Some(d) = &ro.dtmf {
                self.check_dtmf(&format!("{okey}.dtmf"), d)?;
                if !digits.insert(d.clone()) {
                    return Err(self.err(format!("{okey}.dtmf"), format!("digit(s) `{d}` already select another option")));
                }
            }
            options.push(SlotOption {
                value: ro.value.clone(),
                keywords: self.keyword_table(&format!("{okey}.keywords"), &ro.keywords, langs)?,
                dtmf: ro.dtmf.clone(),
                answer: text(&format!("{okey}.answer"), &ro.answer)?,
            });
        }
        Ok(Slot { name: rs.name.clone(), retry, options })
    }

    fn check_dtmf(&self, key: &str, d: &str) -> Result<(), PlaybookError> {
        let ok = !d.is_empty() && d.chars().all(|c| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'));
        if ok {
            Ok(())
        } else {
            Err(self.err(key, format!("`{d}` is not made of keypad keys 0-9 * # A-D")))
        }
    }

    fn keywords(&self, key: &str, lang: &str, words: &[String]) -> Result<Vec<Keyword>, PlaybookError> {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let norm = text::normalize_keyword(w)
                    .ok_or_else(|| self.err(format!("{key}[{i}]"), format!("`{w}` has nothing left to match once punctuation is removed")))?;
                let cjk = text::has_cjk(&norm);
                // English sound-alikes are left to triage: a consonant key matches other
                // everyday words too often to pick an answer by it.
                let sound = if cjk { super::sound::Sound::of(&norm, true) } else { None };
                Ok(Keyword { cjk, norm, lang: lang.to_string(), sound })
            })
            .collect()
    }

    /// Keywords per language: every playbook language needs at least one, so a caller is never
    /// impossible to understand in a language the bot greets in.
    fn keyword_table(
        &self,
        key: &str,
        table: &BTreeMap<String, Vec<String>>,
        langs: &[String],
    ) -> Result<Vec<Keyword>, PlaybookError> {
        for lang in table.keys() {
            if !langs.contains(lang) {
                return Err(self.err(format!("{key}.{lang}"), format!("language `{lang}` is not in settings.languages")));
            }
        }
        let mut out = Vec::new();
        for lang in langs {
            match table.get(lang) {
                Some(words) if !words.is_empty() => out.extend(self.keywords(&format!("{key}.{lang}"), lang, words)?),
                _ => return Err(self.err(format!("{key}.{lang}"), "missing: list at least one keyword in this language")),
            }
        }
        Ok(out)
    }

    fn text(
        &self,
        key: &str,
        t: &RawText,
        langs: &[String],
        account: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Text, PlaybookError> {
        let empty = BTreeMap::new();
        for lang in t.keys() {
            if !langs.contains(lang) {
                return Err(self.err(format!("{key}.{lang}"), format!("language `{lang}` is not in settings.languages")));
            }
        }
        let mut out = BTreeMap::new();
        for lang in langs {
            let Some(template) = t.get(lang) else {
                return Err(self.err(format!("{key}.{lang}"), "missing: every text needs one entry per language"));
            };
            if template.trim().is_empty() {
                return Err(self.err(format!("{key}.{lang}"), "must not be empty"));
            }
            let rendered = render(template, account.get(lang).unwrap_or(&empty))
                .map_err(|problem| self.err(format!("{key}.{lang}"), problem))?;
            out.insert(lang.clone(), rendered.trim().to_string());
        }
        Ok(Text(out))
    }
}

/// Fills `{name}` placeholders from `vars`; `{{` and `}}` are literal braces.
fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => name.push(ch),
                        None => return Err(format!("placeholder `{{{name}` is not closed with `}}`")),
                    }
                }
                let name = name.trim();
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                        return Err(format!("unknown placeholder `{{{name}}}`; the account table for this language has {known:?}"));
                    }
                }
            }
            '}' => return Err("a lone `}` (write `}}` for a literal brace)".to_string()),
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
[settings]
languages = ["en", "zh"]
default_language = "en"
max_fallbacks = 2
max_silences = 1
[account.en]
balance = "ten yuan"
[account.zh]
balance = "十元"
[prompts]
greeting = { en = "Hi.", zh = "您好。" }
fallback = { en = "Sorry?", zh = "抱歉？" }
no_understanding = { en = "Connecting.", zh = "转接。" }
reprompt = { en = "Still there?", zh = "还在吗？" }
silence_goodbye = { en = "Bye.", zh = "再见。" }
declined = { en = "OK.", zh = "好的。" }
menu = { en = "Press one.", zh = "请按一。" }
after_handoff = { en = "Hold on.", zh = "请稍候。" }
[negation]
window_words = 3
window_chars = 2
en = ["dont"]
zh = ["不用"]
[[intents]]
name = "balance"
keywords = { en = ["balance"], zh = ["余额"] }
answer = { en = "You have {balance}.", zh = "您有{balance}。" }
"#;

    #[test]
    fn embedded_playbook_is_valid_and_bilingual() {
        let pb = Playbook::embedded().expect("the shipped playbook must load");
        assert_eq!(pb.languages(), ["en", "zh"]);
        for name in ["balance", "bill", "data_left", "data_pack", "plans", "broadband", "roaming", "hours", "agent", "goodbye"] {
            assert!(pb.intent(name).is_some(), "intent {name} missing");
        }
        // Placeholders are filled in at load time: no braces reach the speech synthesizer.
        for i in pb.intents() {
            for l in pb.languages() {
                assert!(!i.answer.get(l).contains('{'), "{} {l}: {}", i.name, i.answer.get(l));
            }
        }
        assert!(pb.intent("balance").unwrap().answer.get("en").contains("forty-two yuan fifty"));
    }

    #[test]
    fn minimal_playbook_renders_placeholders() {
        let pb = Playbook::from_toml_str(MINI).unwrap();
        assert_eq!(pb.intent("balance").unwrap().answer.get("zh"), "您有十元。");
        assert_eq!(pb.max_fallbacks(), 2);
    }

    fn invalid(src: &str) -> String {
        match Playbook::from_toml_str(src) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn unknown_placeholder_names_the_key() {
        let e = invalid(&MINI.replace("You have {balance}.", "You have {balanse}."));
        assert!(e.contains("intents[0] (balance).answer.en"), "{e}");
        assert!(e.contains("{balanse}"), "{e}");
    }

    #[test]
    fn missing_translation_is_an_error() {
        let e = invalid(&MINI.replace(r#"fallback = { en = "Sorry?", zh = "抱歉？" }"#, r#"fallback = { en = "Sorry?" }"#));
        assert!(e.contains("prompts.fallback.zh"), "{e}");
    }

    #[test]
    fn typo_in_a_key_is_reported_with_its_name() {
        let e = invalid(&MINI.replace("keywords = {", "keywrds = {"));
        assert!(e.contains("keywrds"), "{e}");
        assert!(e.contains("<inline>"), "{e}");
    }

    #[test]
    fn escalate_without_reason_and_bad_default_language_are_rejected() {
        let e = invalid(&MINI.replace("name = \"balance\"", "name = \"balance\"\naction = \"escalate\""));
        assert!(e.contains("reason"), "{e}");
        let e = invalid(&MINI.replace("default_language = \"en\"", "default_language = \"fr\""));
        assert!(e.contains("settings.default_language"), "{e}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pb.toml");
        std::fs::write(&path, MINI.replace("max_fallbacks = 2", "max_fallbacks = 0")).unwrap();
        let e = Playbook::load(&path).unwrap_err().to_string();
        assert!(e.contains("pb.toml") && e.contains("settings.max_fallbacks"), "{e}");
        let e = Playbook::load(dir.path().join("nope.toml")).unwrap_err().to_string();
        assert!(e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn language_tags_reduce_to_primary() {
        assert_eq!(primary_language("zh-CN"), "zh");
        assert_eq!(primary_language("EN_us"), "en");
        assert_eq!(primary_language("cmn"), "zh");
    }
}
