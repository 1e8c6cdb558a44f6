//! The `[speech]` section (the recognizer, its workers, and the callers' languages) and the
//! `[tts]` section (the voices replies are spoken in).

use super::models::{ModelDir, ModelError, WhisperModel};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SpeechConfig {
    /// Where `frontline models install` puts the models.
    pub models_dir: PathBuf,
    /// Whisper model: "base" (multilingual, Mandarin and English) or "tiny.en", with f16
    /// weights or quantized by `frontline models install` ("base-q8_0", "base-q5_1").
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

impl SpeechConfig {
    /// The model `model` names.
    pub fn whisper_model(&self) -> Result<WhisperModel, ModelError> {
        self.model.parse()
    }

    /// Where `frontline models install` puts that model.
    pub fn whisper_path(&self) -> Result<PathBuf, ModelError> {
        Ok(ModelDir::new(&self.models_dir).whisper(self.whisper_model()?))
    }
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            models_dir: PathBuf::from("models"),
            // q8_0: a quarter faster than f16 with the same real-speech WER and CER on this
            // 2-core kind of machine (`frontline bench weights`, docs/benchmarks.md).
            model: "base-q8_0".into(),
            workers: 1,
            threads_per_worker: 2,
            queue: 4,
            language: "auto".into(),
            trim_encoder: true,
            language_by_number: BTreeMap::new(),
        }
    }
}

/// The `[tts]` section. (The synthesizer itself runs on [`super::tts::TtsConfig`], built from
/// this and the installed models by [`VoicesConfig::tts_config`].)
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VoicesConfig {
    /// Speaking rate in words per minute (espeak-ng's default is 175).
    pub rate_wpm: u32,
    /// English voice: "auto" (the neural Piper voice when installed, else espeak-ng),
    /// "piper" (missing files are a startup error) or "espeak".
    pub english_voice: super::tts::EnglishVoice,
    /// onnxruntime threads for one Piper sentence.
    pub piper_threads: usize,
    /// Mandarin voice: "auto" (the neural Kokoro voice when installed, else espeak-ng),
    /// "kokoro" (missing files are a startup error) or "espeak".
    pub mandarin_voice: super::tts::MandarinVoice,
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

impl VoicesConfig {
    /// The synthesizer's settings: these voices, with the models installed in `models`.
    pub fn tts_config(&self, models: &super::models::ModelDir) -> super::tts::TtsConfig {
        super::tts::TtsConfig {
            rate_wpm: Some(self.rate_wpm),
            english_voice: self.english_voice,
            piper: Some(models.piper_config(self.piper_threads)),
            mandarin_voice: self.mandarin_voice,
            kokoro: Some(self.kokoro(models)),
            disk_cache: Some(models.tts_cache()),
            ..super::tts::TtsConfig::from_install_dir(&models.espeak_dir())
        }
    }

    /// The Kokoro voice these settings ask for, with files from `models` unless
    /// `kokoro_model` names the model.
    pub fn kokoro(&self, models: &super::models::ModelDir) -> super::tts::KokoroConfig {
        let mut cfg = models.kokoro_config(&self.kokoro_voice, self.kokoro_speed, self.kokoro_threads);
        if let Some(model) = self.kokoro_model.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            cfg.model_path = model.clone();
        }
        cfg
    }
}

impl Default for VoicesConfig {
    fn default() -> Self {
        VoicesConfig {
            rate_wpm: 165,
            english_voice: super::tts::EnglishVoice::Auto,
            piper_threads: 1,
            mandarin_voice: super::tts::MandarinVoice::Auto,
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
