//! The TOML configuration file and its documented defaults.
//!
//! Every key has a default, so `frontline serve` runs with no file at all. `frontline.toml` at
//! the top of the repository lists every key with its default and what it does; a unit test
//! keeps that file and [`Config::default`] in step. Unknown keys are an error (a typo must not
//! silently fall back to a default), and every error names the file and the key.

pub use crate::call::config::CallsConfig;
use crate::media::endpoint::EndpointConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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
    pub tts: TtsConfig,
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
    /// Durable call records (SQLite): see `crate::records`.
    pub records: crate::records::RecordsConfig,
    /// One stereo WAV per call: see `crate::records::recording`.
    pub recording: crate::records::recording::RecordingConfig,
    /// Prometheus `/metrics` on the HTTP port: see `crate::metrics`.
    pub metrics: crate::metrics::MetricsConfig,
    /// Browser callers: see `crate::edge::webrtc`.
    pub webrtc: crate::edge::webrtc::WebrtcConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the agent console (HTTP) listens on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Tokens that open the agent console's API and the agents' desks (FRONTLINE_CONSOLE_TOKEN
    /// adds one). Empty: open to whoever reaches the port. The caller page stays public.
    pub console_tokens: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Address SIP listens on, for both UDP and TCP.
    pub listen: SocketAddr,
    /// Address written into SDP and Contact. Empty: the local address that routes to the caller.
    pub public_ip: Option<IpAddr>,
    /// Value of the User-Agent / Server header.
    pub user_agent: String,
    /// Ring time before answering (180 Ringing, then 200 OK after this many milliseconds).
    pub answer_delay_ms: u64,
    /// New calls one source address may start per second, in bursts of up to twice this;
    /// faster attempts get 503 + Retry-After.
    pub max_attempts_per_second: f64,
    /// Calls one source address may hold at once; 0 means half of calls.max_concurrent (at
    /// least 1). Behind a single trunk or SBC, raise it to calls.max_concurrent.
    pub max_calls_per_source: usize,
    /// When not empty, the only networks allowed to call in or send requests outside a call
    /// (the trunks, PBXs or SBC), as addresses or CIDR ("10.0.0.0/8"); every other source gets
    /// 403. Requests inside a call are not judged (an agent phone may be anywhere).
    pub trusted_sources: Vec<String>,
}

impl SipConfig {
    /// The per-source limits, with the defaults resolved against `max_concurrent`.
    pub fn source_policy(&self, max_concurrent: usize) -> Result<crate::edge::sip::limits::Policy, (&'static str, String)> {
        if !(self.max_attempts_per_second > 0.0 && self.max_attempts_per_second.is_finite()) {
            return Err(("sip.max_attempts_per_second", "must be a positive number".into()));
        }
        let trusted = self
            .trusted_sources
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| ("sip.trusted_sources", e))?;
        let calls_per_source = match self.max_calls_per_source {
            0 => (max_concurrent / 2).max(1),
            n => n,
        };
        Ok(crate::edge::sip::limits::Policy {
            attempts_per_second: self.max_attempts_per_second,
            burst: (self.max_attempts_per_second * 2.0).max(1.0),
            calls_per_source,
            trusted,
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// Inclusive range of UDP ports for per-call RTP sockets.
    pub port_min: u16,
    pub port_max: u16,
    /// Hang up when no RTP has arrived for this long (a caller that vanished without a BYE).
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SpeechConfig {
    /// Where `frontline models install` puts the models.
    pub models_dir: PathBuf,
    /// Whisper model: "base" (multilingual, Mandarin and English) or "tiny.en".
    pub model: String,
    /// Recognition worker threads (each decodes one utterance at a time).
    pub workers: usize,
    /// CPU threads each worker gives whisper.
    pub threads_per_worker: usize,
    /// Utterances that may wait for a worker before new calls are refused with 503.
    pub queue: usize,
    /// "auto" detects Mandarin or English per utterance; "en" or "zh" fixes it.
    pub language: String,
    /// Encode only as much of whisper's 30 s window as each utterance needs: several times
    /// faster on short utterances. false runs the full window, as whisper was trained.
    pub trim_encoder: bool,
    /// Dialed number (Request-URI user) → fixed language, e.g. { "4001" = "zh" }.
    pub language_by_number: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TtsConfig {
    /// Speaking rate in words per minute (espeak-ng's default is 175).
    pub rate_wpm: u32,
    /// English voice: "auto" (the neural Piper voice when installed, else espeak-ng),
    /// "piper" (missing files are a startup error) or "espeak".
    pub english_voice: crate::speech::tts::EnglishVoice,
    /// onnxruntime threads for one Piper sentence.
    pub piper_threads: usize,
    /// Mandarin voice: "auto" (the neural Kokoro voice when installed, else espeak-ng),
    /// "kokoro" (missing files are a startup error) or "espeak".
    pub mandarin_voice: crate::speech::tts::MandarinVoice,
    /// Kokoro speaker (a table of voices_ja.npz): jm_kumo, jf_alpha, jf_gongitsune, jf_nezumi,
    /// jf_tebukuro.
    pub kokoro_voice: String,
    /// Kokoro speaking speed, 1.0 = as trained (0.5..=2.0).
    pub kokoro_speed: f32,
    /// The Kokoro ONNX model; empty: `<speech.models_dir>/kokoro/kokoro-v1.0.int8.onnx`.
    pub kokoro_model: Option<PathBuf>,
    /// onnxruntime threads for one Kokoro clause.
    pub kokoro_threads: usize,
}

impl TtsConfig {
    /// The Kokoro voice these settings ask for, with files from `models` unless
    /// `kokoro_model` names the model.
    pub fn kokoro(&self, models: &crate::speech::models::ModelDir) -> crate::speech::tts::KokoroConfig {
        let mut cfg = models.kokoro_config(&self.kokoro_voice, self.kokoro_speed, self.kokoro_threads);
        if let Some(model) = self.kokoro_model.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            cfg.model_path = model.clone();
        }
        cfg
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BrainConfig {
    /// URL of an external brain serving `frontline.dialog.v1.Dialog`. Empty: the embedded
    /// playbook brain, served by this process on `listen` and reached over real gRPC.
    pub url: String,
    /// Where the embedded brain listens. Loopback by default: it is not meant for other hosts.
    pub listen: SocketAddr,
    /// Playbook TOML for the embedded brain. Empty: the built-in telecom demo playbook.
    pub playbook: Option<PathBuf>,
    /// How long to wait for the brain at startup and for each reply before apologizing.
    pub connect_timeout_ms: u64,
    pub reply_timeout_ms: u64,
    /// The embedded brain: "playbook" (offline, the default) or "llm" (see [brain.llm]).
    pub kind: String,
    /// The LLM brain's server and bounds (used when kind = "llm", and by `frontline brain --llm-url`).
    pub llm: crate::brain::llm::LlmConfig,
}


impl Default for Config {
    fn default() -> Self {
        Config {
            sip: SipConfig::default(),
            rtp: RtpConfig::default(),
            speech: SpeechConfig::default(),
            tts: TtsConfig::default(),
            brain: BrainConfig::default(),
            endpointing: EndpointConfig::default(),
            calls: CallsConfig::default(),
            triage: crate::triage::TriageConfig::default(),
            handoff: crate::handoff::HandoffConfig::default(),
            http: HttpConfig::default(),
            ops: crate::ops::OpsConfig::default(),
            redaction: crate::redact::RedactionConfig::default(),
            records: crate::records::RecordsConfig::default(),
            recording: crate::records::recording::RecordingConfig::default(),
            metrics: crate::metrics::MetricsConfig::default(),
            webrtc: crate::edge::webrtc::WebrtcConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: "0.0.0.0:8080".parse().expect("literal address"), console_tokens: Vec::new() }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "0.0.0.0:5060".parse().expect("literal address"),
            public_ip: None,
            user_agent: concat!("frontline/", env!("CARGO_PKG_VERSION")).to_string(),
            answer_delay_ms: 0,
            max_attempts_per_second: 10.0,
            max_calls_per_source: 0,
            trusted_sources: Vec::new(),
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig { port_min: 20000, port_max: 29999, timeout_secs: 30 }
    }
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            models_dir: PathBuf::from("models"),
            model: "base".into(),
            workers: 1,
            threads_per_worker: 2,
            queue: 4,
            language: "auto".into(),
            trim_encoder: true,
            language_by_number: BTreeMap::new(),
        }
    }
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            rate_wpm: 165,
            english_voice: crate::speech::tts::EnglishVoice::Auto,
            piper_threads: 1,
            mandarin_voice: crate::speech::tts::MandarinVoice::Auto,
            // The speaker whisper read back exactly in the first smoke test; the per-speaker
            // comparison in docs/benchmarks.md ("Mandarin voice") is still to be run quietly.
            kokoro_voice: "jm_kumo".into(),
            kokoro_speed: 1.0,
            kokoro_model: None,
            // One core for the voice, the other for the recognizer: on a 2-core host two
            // Kokoro threads left whisper nothing while a reply was synthesized.
            kokoro_threads: 1,
        }
    }
}

impl Default for BrainConfig {
    fn default() -> Self {
        BrainConfig {
            url: String::new(),
            listen: "127.0.0.1:50061".parse().expect("literal address"),
            playbook: None,
            connect_timeout_ms: 5000,
            reply_timeout_ms: 4000,
            kind: "playbook".to_string(),
            llm: crate::brain::llm::LlmConfig::default(),
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
        if !matches!(self.speech.model.as_str(), "base" | "tiny.en") {
            return Err(invalid("speech.model", format!("{:?} is not a model; use \"base\" or \"tiny.en\"", self.speech.model)));
        }
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
        if self.speech.model == "tiny.en" && (self.speech.language == "zh" || self.speech.language_by_number.values().any(|l| l == "zh")) {
            return Err(invalid("speech.model", "tiny.en only understands English, but a Mandarin language is configured; use \"base\"".into()));
        }
        if let Err(e) = self.triage.validate() {
            return Err(invalid(e.key, e.message));
        }
        if let Err(e) = self.handoff.validate() {
            return Err(invalid(e.key, e.message));
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
        if let Err((key, message)) = self.ops.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.recording.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.calls.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.sip.source_policy(self.calls.max_concurrent) {
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

    /// The language fixed for a dialed number, else the global setting; `None` means detect.
    pub fn language_for(&self, dialed: &str) -> Option<String> {
        if let Some(lang) = self.speech.language_by_number.get(dialed) {
            return Some(lang.clone());
        }
        match self.speech.language.as_str() {
            "auto" => None,
            fixed => Some(fixed.to_string()),
        }
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
    }

    #[test]
    fn language_per_dialed_number_overrides_the_global_setting() {
        let mut c = Config::default();
        c.speech.language_by_number.insert("4001".into(), "zh".into());
        assert_eq!(c.language_for("4001").as_deref(), Some("zh"));
        assert_eq!(c.language_for("ivr"), None);
        c.speech.language = "en".into();
        assert_eq!(c.language_for("ivr").as_deref(), Some("en"));
    }
}
