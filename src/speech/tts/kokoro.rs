//! The neural Mandarin voice: Kokoro-82M v1.0 (int8 ONNX) run with the onnxruntime loaded for
//! Piper.
//!
//! The model takes symbol ids (`tokens` i64 [1, n], padded with 0 at both ends), a speaker
//! style (`style` f32 [1, 256]: row n of the voice's table, so the style depends on the
//! utterance's length) and a `speed` (f32 [1]), and returns 24 kHz audio. Mandarin text →
//! symbols is [`zh_g2p`](super::zh_g2p); the voice tables are the `.npy` arrays inside
//! `voices_ja.npz` (read here: a zip of .npy files, each a small header and raw little-endian
//! f32), the symbol ids are `vocab.json`. All installed by `frontline models install`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use ort::session::Session;
use ort::value::Tensor;

use super::piper::{onnx_session, to_pcm, OnnxLoadError};

/// The model's output rate.
pub const SAMPLE_RATE_HZ: u32 = 24_000;
/// Width of one style vector.
const STYLE_DIM: usize = 256;
/// The model's longest input: 512 positions including the two pads.
pub const MAX_TOKENS: usize = 510;
const INSTALL_HINT: &str = "run `frontline models install`, or set tts.mandarin_voice = \"espeak\" in frontline.toml";

/// Where the model, its voices and vocabulary are, and how it speaks.
#[derive(Debug, Clone, PartialEq)]
pub struct KokoroConfig {
    pub model_path: PathBuf,
    /// `voices_ja.npz`: one (510, 1, 256) f32 style table per voice.
    pub voices_path: PathBuf,
    /// `vocab.json`: {"vocab": {symbol: id}}.
    pub vocab_path: PathBuf,
    /// `libonnxruntime.so` (the one Piper uses).
    pub onnxruntime_path: PathBuf,
    /// Voice name in the npz ("jm_kumo").
    pub voice: String,
    /// 1.0 is the trained pace; higher is faster.
    pub speed: f32,
    /// onnxruntime intra-op threads for one clause.
    pub threads: usize,
}

impl KokoroConfig {
    /// The first missing file, named with the fix.
    pub fn check_files(&self) -> Result<(), KokoroError> {
        for path in [&self.onnxruntime_path, &self.model_path, &self.voices_path, &self.vocab_path] {
            if !path.is_file() {
                return Err(KokoroError::Missing { path: path.clone() });
            }
        }
        Ok(())
    }

    /// The cache identity of what this voice says: a change of voice or speed is new audio.
    pub fn voice_id(&self) -> String {
        format!("kokoro:{}@{}", self.voice, self.speed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KokoroError {
    #[error("Kokoro file {} is missing; {INSTALL_HINT}", path.display())]
    Missing { path: PathBuf },
    #[error("cannot load onnxruntime from {}: {detail}; {INSTALL_HINT}", path.display())]
    Runtime { path: PathBuf, detail: String },
    #[error("cannot load the Kokoro model {}: {detail}; {INSTALL_HINT}", path.display())]
    Model { path: PathBuf, detail: String },
    #[error("cannot read Kokoro voice {voice:?} from {}: {detail}", path.display())]
    Voice { path: PathBuf, voice: String, detail: String },
    #[error("cannot read the Kokoro vocabulary {}: {detail}", path.display())]
    Vocab { path: PathBuf, detail: String },
    #[error("Kokoro synthesis failed: {0}")]
    Inference(String),
}

/// A loaded Kokoro voice. `Send + Sync`; runs are serialized (the TTS thread drives it).
pub struct KokoroVoice {
    config: KokoroConfig,
    vocab: HashMap<char, i64>,
    /// The voice's style table, row-major (MAX_TOKENS rows of STYLE_DIM).
    styles: Vec<f32>,
    session: Mutex<Session>,
    /// How long loading took (startup figure for the logs and the report).
    pub load_ms: u64,
}

impl std::fmt::Debug for KokoroVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KokoroVoice").field("voice", &self.config.voice).finish_non_exhaustive()
    }
}

impl KokoroVoice {
    /// Load onnxruntime (once per process), the vocabulary, the voice's styles and the model.
    /// Blocks for a second or two: call it at startup.
    pub fn load(cfg: &KokoroConfig) -> Result<KokoroVoice, KokoroError> {
        cfg.check_files()?;
        let started = Instant::now();
        let vocab_err = |detail: String| KokoroError::Vocab { path: cfg.vocab_path.clone(), detail };
        let text = std::fs::read_to_string(&cfg.vocab_path).map_err(|e| vocab_err(e.to_string()))?;
        let vocab = parse_vocab(&text).map_err(vocab_err)?;
        let styles = read_voice(&cfg.voices_path, &cfg.voice)
            .map_err(|detail| KokoroError::Voice { path: cfg.voices_path.clone(), voice: cfg.voice.clone(), detail })?;
        let session = onnx_session(&cfg.onnxruntime_path, &cfg.model_path, cfg.threads, &["tokens", "style", "speed"]).map_err(|e| match e {
            OnnxLoadError::Runtime(detail) => KokoroError::Runtime { path: cfg.onnxruntime_path.clone(), detail },
            OnnxLoadError::Model(detail) => KokoroError::Model { path: cfg.model_path.clone(), detail },
        })?;
        Ok(KokoroVoice { config: cfg.clone(), vocab, styles, session: Mutex::new(session), load_ms: started.elapsed().as_millis() as u64 })
    }

    pub fn config(&self) -> &KokoroConfig {
        &self.config
    }

    /// Symbol ids of a phoneme string; symbols the model does not know are skipped (counted).
    pub fn ids(&self, phonemes: &str) -> (Vec<i64>, usize) {
        symbol_ids(&self.vocab, phonemes)
    }

    /// 24 kHz audio for symbol ids (at most [`MAX_TOKENS`]; longer input is cut there).
    pub fn synthesize_ids(&self, mut ids: Vec<i64>) -> Result<Vec<i16>, KokoroError> {
        ids.truncate(MAX_TOKENS);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let err = |e: ort::Error| KokoroError::Inference(e.to_string());
        let row = ids.len().min(MAX_TOKENS - 1);
        let style = self.styles[row * STYLE_DIM..(row + 1) * STYLE_DIM].to_vec();
        let mut padded = Vec::with_capacity(ids.len() + 2);
        padded.push(0);
        padded.extend(ids);
        padded.push(0);
        let n = padded.len();
        let tokens = Tensor::from_array(([1usize, n], padded)).map_err(err)?;
        let style = Tensor::from_array(([1usize, STYLE_DIM], style)).map_err(err)?;
        let speed = Tensor::from_array(([1usize], vec![self.config.speed])).map_err(err)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs!["tokens" => tokens, "style" => style, "speed" => speed]).map_err(err)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        Ok(to_pcm(audio))
    }
}

/// `{"vocab": {"a": 43, ...}}` → symbol → id. Every key must be one character.
fn parse_vocab(text: &str) -> Result<HashMap<char, i64>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let map = v.get("vocab").and_then(|m| m.as_object()).ok_or("no \"vocab\" object")?;
    let mut out = HashMap::with_capacity(map.len());
    for (k, id) in map {
        let mut chars = k.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(format!("symbol {k:?} is not one character"));
        };
        out.insert(c, id.as_i64().ok_or_else(|| format!("id of {k:?} is not an integer"))?);
    }
    Ok(out)
}

fn symbol_ids(vocab: &HashMap<char, i64>, phonemes: &str) -> (Vec<i64>, usize) {
    let mut skipped = 0;
    let ids = phonemes
        .chars()
        .filter_map(|c| {
            let id = vocab.get(&c).copied();
            skipped += usize::from(id.is_none());
            id
        })
        .collect();
    (ids, skipped)
}

/// The style table of `voice` from the npz, checked to be f32 (MAX_TOKENS, 1, STYLE_DIM).
fn read_voice(npz: &Path, voice: &str) -> Result<Vec<f32>, String> {
    let file = File::open(npz).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let names: Vec<String> = zip.file_names().filter_map(|n| n.strip_suffix(".npy")).map(str::to_string).collect();
    let mut entry = zip.by_name(&format!("{voice}.npy")).map_err(|_| format!("no such voice; the file has {names:?}"))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let (shape, data) = parse_npy_f32(&bytes)?;
    let rows = shape.first().copied().unwrap_or(0);
    if shape.iter().product::<usize>() != rows * STYLE_DIM || rows < MAX_TOKENS || shape.last() != Some(&STYLE_DIM) {
        return Err(format!("shape {shape:?}, expected ({MAX_TOKENS}, 1, {STYLE_DIM})"));
    }
    Ok(data)
}

/// A version 1-3 .npy holding little-endian f32 in C order → (shape, values).
pub fn parse_npy_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    let magic = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != magic {
        return Err("not a .npy array".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!(".npy version {v} is not supported")),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| ".npy header is not text")?;
    let field = |name: &str| -> Option<&str> {
        let at = header.find(&format!("'{name}'"))?;
        Some(header[at + name.len() + 2..].trim_start_matches([':', ' ']))
    };
    if !field("descr").is_some_and(|d| d.starts_with("'<f4'")) {
        return Err(format!("dtype is not little-endian f32: {header}"));
    }
    if !field("fortran_order").is_some_and(|d| d.starts_with("False")) {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let shape_text = field("shape").and_then(|s| s.strip_prefix('(')).and_then(|s| s.split(')').next()).ok_or("no shape")?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad shape {shape_text:?}")))
        .collect::<Result<_, _>>()?;
    let count: usize = shape.iter().product();
    let data = &bytes[start + header_len..];
    if data.len() != count * 4 {
        return Err(format!("{} data bytes for shape {shape:?}", data.len()));
    }
    Ok((shape, data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, values: &[f32]) -> Vec<u8> {
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        values.iter().for_each(|v| out.extend(v.to_le_bytes()));
        out
    }

    #[test]
    fn npy_arrays_are_read_with_their_shape() {
        let bytes = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 3), }", &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        let (shape, data) = parse_npy_f32(&bytes).unwrap();
        assert_eq!(shape, vec![2, 1, 3]);
        assert_eq!(data, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        let f64s = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", &[0.0, 0.0]);
        assert!(parse_npy_f32(&f64s).unwrap_err().contains("f32"));
        assert!(parse_npy_f32(b"PK\x03\x04").is_err());
        let short = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", &[1.0]);
        assert!(parse_npy_f32(&short).is_err());
    }

    #[test]
    fn vocabulary_maps_symbols_and_skips_unknown_ones() {
        let vocab = parse_vocab(r#"{"vocab": {"a": 43, "↓": 169, " ": 16}}"#).unwrap();
        assert_eq!(symbol_ids(&vocab, "a↓ a#"), (vec![43, 169, 16, 43], 1));
        assert!(parse_vocab(r#"{"vocab": {"ab": 1}}"#).is_err());
        assert!(parse_vocab("[]").is_err());
    }

    #[test]
    fn missing_files_are_named_with_the_fix() {
        let cfg = crate::speech::models::ModelDir::new("/nonexistent").kokoro_config("jm_kumo", 1.0, 1);
        let msg = KokoroVoice::load(&cfg).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/") && msg.contains("frontline models install"), "{msg}");
        assert_eq!(cfg.voice_id(), "kokoro:jm_kumo@1");
    }
}
