//! The TOML configuration file and its documented defaults.
//!
//! Every key has a default, so `frontline serve` runs with no file at all. `frontline.toml` at
//! the top of the repository lists every key with its default and what it does; a unit test
//! keeps that file and [`Config::default`] in step. Unknown keys are an error (a typo must not
//! silently fall back to a default), and every error names the file and the key.
//!
//! Each section's type lives with the subsystem it configures (`[sip]` in `edge::sip`, `[calls]`
//! in `call`, ...); this module only assembles them into the file, checks what spans sections,
//! and hands each subsystem its own. It may name every subsystem; none of them names it.

pub use crate::brain::BrainConfig;
pub use crate::call::config::{CallLanguages, CallSections, CallsConfig};
pub use crate::edge::sip::config::SipConfig;
pub use crate::edge::RtpConfig;
pub use crate::http::HttpConfig;
pub use crate::speech::config::{SpeechConfig, VoicesConfig};
use crate::media::endpoint::EndpointConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source} (pass an existing file to --config, or omit it to run on the built-in defaults)")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid { path: PathBuf, key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub speech: SpeechConfig,
    pub tts: VoicesConfig,
    pub brain: BrainConfig,
    pub endpointing: EndpointConfig,
    pub calls: CallsConfig,
    /// When a caller goes to a person: see `crate::triage`.
    pub triage: crate::triage::TriageConfig,
    /// How a caller reaches a person once triage decides: see `crate::handoff`.
    pub handoff: crate::handoff::HandoffConfig,
    /// The HTTP port: the agent console and its JSON/SSE API.
    pub http: HttpConfig,
    /// The Ops gRPC service (live calls, events, stats, control): see `crate::ops`.
    pub ops: crate::ops::OpsConfig,
    /// Card and ID numbers masked in transcripts, records, logs and LLM prompts: see `crate::redact`.
    pub redaction: crate::redact::RedactionConfig,
    /// The post-call satisfaction survey: see `crate::call::survey`.
    pub survey: crate::call::survey::SurveyConfig,
    /// Durable call records (SQLite, or PostgreSQL shared by several gateways): see `crate::records`.
    pub records: crate::records::RecordsConfig,
    /// One stereo WAV per call: see `crate::records::recording`.
    pub recording: crate::records::recording::RecordingConfig,
    /// Prometheus `/metrics` on the HTTP port: see `crate::metrics`.
    pub metrics: crate::metrics::MetricsConfig,
    /// Browser callers: see `crate::edge::webrtc`.
    pub webrtc: crate::edge::webrtc::WebrtcConfig,
}


impl Default for Config {
    fn default() -> Self {
        Config {
            sip: SipConfig::default(),
            rtp: RtpConfig::default(),
            speech: SpeechConfig::default(),
            tts: VoicesConfig::default(),
            brain: BrainConfig::default(),
            endpointing: EndpointConfig::default(),
            calls: CallsConfig::default(),
            triage: crate::triage::TriageConfig::default(),
            handoff: crate::handoff::HandoffConfig::default(),
            http: HttpConfig::default(),
            ops: crate::ops::OpsConfig::default(),
            redaction: crate::redact::RedactionConfig::default(),
            survey: crate::call::survey::SurveyConfig::default(),
            records: crate::records::RecordsConfig::default(),
            recording: crate::records::recording::RecordingConfig::default(),
            metrics: crate::metrics::MetricsConfig::default(),
            webrtc: crate::edge::webrtc::WebrtcConfig::default(),
        }
    }
}


impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let config: Config = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges and the allowed values of string keys.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid { path: path.to_owned(), key, message };
        if self.rtp.port_min == 0 || self.rtp.port_min > self.rtp.port_max {
            return Err(invalid(
                "rtp.port_min",
                format!("the range {}..={} is empty; set 1 <= port_min <= port_max", self.rtp.port_min, self.rtp.port_max),
            ));
        }
        let whisper = self.speech.whisper_model().map_err(|e| invalid("speech.model", e.to_string()))?;
        if !is_language_setting(&self.speech.language) {
            return Err(invalid("speech.language", format!("{:?}: use \"auto\", \"en\" or \"zh\"", self.speech.language)));
        }
        if let Some((number, lang)) =
            self.speech.language_by_number.iter().find(|(_, l)| !matches!(l.as_str(), "en" | "zh"))
        {
            return Err(invalid("speech.language_by_number", format!("number {number:?} has {lang:?}: use \"en\" or \"zh\"")));
        }
        if self.speech.workers == 0 || self.speech.threads_per_worker == 0 {
            return Err(invalid("speech.workers", "workers and threads_per_worker must be at least 1".into()));
        }
        if !whisper.is_multilingual() && (self.speech.language == "zh" || self.speech.language_by_number.values().any(|l| l == "zh")) {
            return Err(invalid("speech.model", format!("{whisper} only understands English, but a Mandarin language is configured; use \"base\"")));
        }
        if let Err(e) = self.triage.validate() {
            return Err(invalid(e.key, e.message));
        }
        if let Err(e) = self.handoff.validate() {
            return Err(invalid(e.key, e.message));
        }
        if !self.records.url.is_empty() && !crate::records::is_postgres_url(&self.records.url) {
            return Err(invalid(
                "records.url",
                "must start with postgres:// or postgresql:// (e.g. \"postgres://frontline:secret@db.example/frontline\"); leave it empty for the SQLite file at records.path".into(),
            ));
        }
        if !(3..=3600).contains(&self.records.node_timeout_secs) {
            return Err(invalid("records.node_timeout_secs", format!("{} is outside 3..=3600", self.records.node_timeout_secs)));
        }
        if self.records.queue_limit == 0 {
            return Err(invalid("records.queue_limit", "must be at least 1 (50000 holds about 40 minutes of 16 calls)".into()));
        }
        if !(1..=16).contains(&self.tts.piper_threads) {
            return Err(invalid("tts.piper_threads", format!("{} is outside 1..=16", self.tts.piper_threads)));
        }
        if !(1..=16).contains(&self.tts.kokoro_threads) {
            return Err(invalid("tts.kokoro_threads", format!("{} is outside 1..=16", self.tts.kokoro_threads)));
        }
        if !(0.5..=2.0).contains(&self.tts.kokoro_speed) {
            return Err(invalid("tts.kokoro_speed", format!("{} is outside 0.5..=2.0", self.tts.kokoro_speed)));
        }
        if self.tts.kokoro_voice.trim().is_empty() {
            return Err(invalid("tts.kokoro_voice", "must name a voice, e.g. \"jm_kumo\"".into()));
        }
        match self.brain.kind.as_str() {
            "playbook" => {}
            // An external brain (url) answers instead: its own settings are its business.
            "llm" if self.brain.url.is_empty() => {
                if let Err((key, message)) = self.brain.llm.validate() {
                    return Err(invalid(key, message));
                }
            }
            "llm" => {}
            other => return Err(invalid("brain.kind", format!("{other:?}: use \"playbook\" or \"llm\""))),
        }
        if let Err((key, message)) = self.webrtc.validate() {
            return Err(invalid(key, message));
        }
        let console_agent = self.handoff.agents.iter().find(|a| matches!(crate::handoff::AgentTarget::of(a), crate::handoff::AgentTarget::Console(_)));
        if let (false, Some(agent)) = (self.webrtc.enabled, console_agent) {
            return Err(invalid("handoff.agents", format!("{agent:?} answers on the agent console over WebRTC, but [webrtc] enabled = false: enable WebRTC or use a SIP agent")));
        }
        let unknown_registered = self.handoff.agents.iter().find(|a| match crate::handoff::AgentTarget::of(a) {
            crate::handoff::AgentTarget::Registered(name) => !self.sip.auth.agents.contains_key(name),
            _ => false,
        });
        if let Some(agent) = unknown_registered {
            return Err(invalid("handoff.agents", format!("{agent:?} rings a registered phone, but [sip.auth] agents has no such name: add it with a password its phone registers with")));
        }
        if let Err((key, message)) = self.ops.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.recording.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.calls.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.survey.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.sip.source_policy(self.calls.max_concurrent) {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = crate::edge::sip::digest::Challenger::new(&self.sip.auth) {
            return Err(invalid(key, message));
        }
        if self.endpointing.end_silence_ms < 100 || self.endpointing.max_utterance_ms < self.endpointing.min_utterance_ms {
            return Err(invalid("endpointing.end_silence_ms", "end_silence_ms must be >= 100 and max_utterance_ms >= min_utterance_ms".into()));
        }
        if self.endpointing.complete_silence_ms < 100 || self.endpointing.hesitant_silence_ms < self.endpointing.complete_silence_ms {
            return Err(invalid("endpointing.complete_silence_ms", "complete_silence_ms must be >= 100 and hesitant_silence_ms >= complete_silence_ms".into()));
        }
        Ok(())
    }

    /// The sections one call decides with, for [`crate::call::CallServices::new`].
    /// `multilingual`: whether the recognizer knows more than English.
    pub fn call_sections(&self, multilingual: bool) -> CallSections<'_> {
        CallSections {
            calls: &self.calls,
            endpointing: self.endpointing,
            brain_reply_timeout_ms: self.brain.reply_timeout_ms,
            handoff: &self.handoff,
            triage: &self.triage,
            redaction: &self.redaction,
            survey: &self.survey,
            multilingual,
        }
    }

    /// Which language each call starts in, from `[speech] language` and `language_by_number`.
    pub fn call_languages(&self) -> CallLanguages {
        let fixed = match self.speech.language.as_str() {
            "auto" => None,
            fixed => Some(fixed.to_string()),
        };
        CallLanguages { fixed, by_number: self.speech.language_by_number.clone() }
    }
}

fn is_language_setting(s: &str) -> bool {
    matches!(s, "auto" | "en" | "zh")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_file_matches_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("frontline.toml");
        let loaded = Config::load(&path).expect("frontline.toml parses");
        assert_eq!(loaded, Config::default(), "frontline.toml drifted from Config::default()");
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_naming_the_key() {
        let err = toml::from_str::<Config>("[sip]\nlisten_addr = \"0.0.0.0:5060\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn invalid_values_name_file_and_key() {
        let mut c = Config::default();
        c.speech.language = "fr".into();
        let err = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("speech.language"), "{err}");
        let mut c = Config::default();
        c.rtp.port_min = 30000;
        c.rtp.port_max = 20000;
        assert!(c.validate(Path::new("x.toml")).unwrap_err().to_string().contains("rtp.port_min"));
    }

    #[test]
    fn a_malformed_triage_table_names_the_key() {
        let err = toml::from_str::<Config>("[triage.ambiguity]\nmax_fallback = 2\n").unwrap_err();
        assert!(err.to_string().contains("max_fallback"), "{err}");
        let mut c: Config = toml::from_str("[triage.ambiguity]\nlow_confidence = 2.0\n").unwrap();
        let err = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("triage.ambiguity.low_confidence"), "{err}");
        c.triage.ambiguity.low_confidence = 0.5;
        assert!(c.validate(Path::new("x.toml")).is_ok());
    }

    #[test]
    fn a_bad_agent_uri_names_file_and_key() {
        let c: Config = toml::from_str("[handoff]\nagents = [\"agent@10.0.0.7\"]\n").unwrap();
        let err = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("handoff.agents") && err.contains("agent@10.0.0.7"), "{err}");
        let err = toml::from_str::<Config>("[handoff]\nmode = \"transfer\"\n").unwrap_err();
        assert!(err.to_string().contains("transfer"), "{err}");
        // A console agent answers over WebRTC: it cannot be configured with WebRTC off.
        let c: Config = toml::from_str("[handoff]\nagents = [\"console:alice\"]\n[webrtc]\nenabled = false\n").unwrap();
        let err = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("handoff.agents") && err.contains("console:alice") && err.contains("enabled = false"), "{err}");
        // A registered agent needs a password to register with.
        let c: Config = toml::from_str("[handoff]\nagents = [\"registered:bob\"]\n").unwrap();
        let err = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("handoff.agents") && err.contains("registered:bob") && err.contains("[sip.auth] agents"), "{err}");
        let c: Config = toml::from_str("[handoff]\nagents = [\"registered:bob\"]\n[sip.auth]\nagents = { bob = \"pw\" }\n").unwrap();
        assert!(c.validate(Path::new("x.toml")).is_ok());
    }

    #[test]
    fn language_per_dialed_number_overrides_the_global_setting() {
        let mut c = Config::default();
        c.speech.language_by_number.insert("4001".into(), "zh".into());
        assert_eq!(c.call_languages().for_number("4001").as_deref(), Some("zh"));
        assert_eq!(c.call_languages().for_number("ivr"), None);
        c.speech.language = "en".into();
        assert_eq!(c.call_languages().for_number("ivr").as_deref(), Some("en"));
    }
}
