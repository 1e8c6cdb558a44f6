//! The `[calls]` section, and the settings one call runs on (built once at start-up from the
//! sections that concern a call, so the call never reads the whole configuration).

use crate::handoff::HandoffConfig;
use crate::media::endpoint::EndpointConfig;
use crate::redact::RedactionConfig;
use crate::triage::TriageConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// Concurrent calls; the next INVITE gets 503 with Retry-After.
    pub max_concurrent: usize,
    /// Seconds suggested in Retry-After when refusing a call.
    pub retry_after_secs: u32,
    /// A call is ended politely after this long.
    pub max_duration_secs: u64,
    /// Caller silence, once the bot has finished and the turn is theirs, before the brain is
    /// told (it reprompts) and triage counts a no-input. 0: never.
    pub no_input_ms: u64,
    /// Longest wait for a caller utterance's transcript before they are asked to repeat.
    pub recognition_timeout_ms: u64,
    /// Longest wait for a reply's first audio before a cached line stands in.
    pub synthesis_timeout_ms: u64,
    /// Keypad collection: longest pause between two digits.
    pub digit_gap_ms: u64,
    /// Keypad collection: longest time for the whole entry, when the brain names none.
    pub digits_timeout_ms: u64,
    /// On SIGTERM, SIGINT or Ops SetDraining: how long live calls may go on before they hear
    /// a goodbye and get a BYE.
    pub drain_timeout_secs: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_concurrent: 16,
            retry_after_secs: 30,
            max_duration_secs: 1800,
            no_input_ms: 6000,
            recognition_timeout_ms: 15_000,
            synthesis_timeout_ms: 6000,
            digit_gap_ms: 5000,
            digits_timeout_ms: 20_000,
            drain_timeout_secs: 900,
        }
    }
}

impl CallsConfig {
    /// What serde cannot check: the key that is wrong and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_concurrent == 0 {
            return Err(("calls.max_concurrent", "must be at least 1".into()));
        }
        let nonzero = [
            ("calls.max_duration_secs", self.max_duration_secs),
            ("calls.recognition_timeout_ms", self.recognition_timeout_ms),
            ("calls.synthesis_timeout_ms", self.synthesis_timeout_ms),
            ("calls.digit_gap_ms", self.digit_gap_ms),
            ("calls.digits_timeout_ms", self.digits_timeout_ms),
        ];
        for (key, value) in nonzero {
            if value == 0 {
                return Err((key, "must be greater than 0".into()));
            }
        }
        if self.no_input_ms > 0 && self.no_input_ms < 1000 {
            return Err(("calls.no_input_ms", format!("{} ms would reprompt callers mid-breath: use 0 (off) or at least 1000", self.no_input_ms)));
        }
        Ok(())
    }
}

/// Which language a call starts in, from `[speech] language` and `language_by_number`: the
/// edges put it in each new call's [`CallInfo`](super::core::CallInfo).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLanguages {
    /// The language every call starts in; none: detected per utterance.
    pub fixed: Option<String>,
    /// Dialed number → the language calls to it start in, whatever `fixed` says.
    pub by_number: BTreeMap<String, String>,
}

impl CallLanguages {
    /// The language fixed for a dialed number, else the global setting; `None` means detect.
    pub fn for_number(&self, dialed: &str) -> Option<String> {
        self.by_number.get(dialed).cloned().or_else(|| self.fixed.clone())
    }
}

/// Everything one call's core needs to decide, fixed for the call's life.
#[derive(Debug, Clone)]
pub struct CallSettings {
    pub endpointing: EndpointConfig,
    pub reply_timeout: Duration,
    pub max_duration: Duration,
    pub no_input: Duration,
    pub recognition_timeout: Duration,
    pub synthesis_timeout: Duration,
    pub digit_gap: Duration,
    pub digits_timeout: Duration,
    pub handoff: HandoffConfig,
    pub triage: Arc<TriageConfig>,
    pub redaction: RedactionConfig,
    pub survey: super::survey::SurveyConfig,
    /// The recognizer knows more than English: language is detected per utterance.
    pub multilingual: bool,
}

/// The sections a call's settings are made of.
pub struct CallSections<'a> {
    pub calls: &'a CallsConfig,
    pub endpointing: EndpointConfig,
    pub brain_reply_timeout_ms: u64,
    pub handoff: &'a HandoffConfig,
    pub triage: &'a TriageConfig,
    pub redaction: &'a RedactionConfig,
    pub survey: &'a super::survey::SurveyConfig,
    pub multilingual: bool,
}

impl CallSettings {
    pub fn new(s: CallSections<'_>) -> CallSettings {
        let ms = Duration::from_millis;
        CallSettings {
            endpointing: s.endpointing,
            reply_timeout: ms(s.brain_reply_timeout_ms),
            max_duration: Duration::from_secs(s.calls.max_duration_secs),
            no_input: ms(s.calls.no_input_ms),
            recognition_timeout: ms(s.calls.recognition_timeout_ms),
            synthesis_timeout: ms(s.calls.synthesis_timeout_ms),
            digit_gap: ms(s.calls.digit_gap_ms),
            digits_timeout: ms(s.calls.digits_timeout_ms),
            handoff: s.handoff.clone(),
            triage: Arc::new(s.triage.clone()),
            redaction: s.redaction.clone(),
            survey: s.survey.clone(),
            multilingual: s.multilingual,
        }
    }
}
