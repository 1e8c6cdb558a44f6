//! Speech synthesis with the espeak-ng C library, on its own worker thread.
//!
//! espeak-ng keeps its state in process globals and is not thread-safe, so exactly one OS
//! thread per process owns the library. Every [`Tts`] handle (clones, and handles from later
//! [`Tts::new`] calls with the same files) talks to that thread over a bounded queue; the async
//! side only enqueues and awaits, it never blocks. The worker serves jobs one sentence at a
//! time, round-robin, so one long reply cannot starve the other calls' first sentences.
//!
//! espeak speaks at its native rate (22,050 Hz); audio is resampled to the gateway's 16 kHz.
//! The library and data are espeak-ng 1.52 from the PyPI wheel `espeakng-loader` (Debian's 1.51
//! reads Chinese characters wrongly), installed by `frontline models install`.
//!
//! English can instead be spoken by a neural Piper voice ([`piper`]). Its phonemes come from
//! espeak-ng, so it runs on the same thread; when it fails, the sentence is spoken by espeak
//! (logged once). Mandarin is spoken by the neural Kokoro voice ([`kokoro`]) with phonemes from
//! the Rust G2P ([`zh_g2p`]), on the same thread, clause by clause (replies are split at
//! ，。？！；), with espeak as the fallback the same way.
//! Every sentence's audio goes through a bounded [`cache`], pre-filled with the fixed prompts.

mod cache;
pub mod disk;
mod ffi;
pub mod kokoro;
mod pace;
pub mod phoneme_ids;
pub mod piper;
mod split;
pub mod zh_g2p;
pub mod zh_normalize;

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::media::level::trim_silence;
use crate::media::resample::{ResampleError, Resampler};

pub use cache::{AudioCache, CacheKey};
pub use kokoro::{KokoroConfig, KokoroError, KokoroVoice};
pub use piper::{PiperConfig, PiperError, PiperVoice};
pub use pace::ReplyPace;
pub use split::{split_for_speech, split_sentences};

/// Output sample rate of synthesis: the gateway's internal rate.
pub const OUTPUT_RATE_HZ: u32 = 16_000;
/// espeak's default speaking rate; set explicitly on every job so handles with different
/// rates sharing the one engine do not leak settings into each other.
pub const DEFAULT_RATE_WPM: u32 = 175;
/// espeak accepts 80..=450 words per minute.
pub const RATE_RANGE_WPM: std::ops::RangeInclusive<u32> = 80..=450;
/// Longest text accepted in one request (characters). A reply longer than this is a bug
/// upstream, and synthesizing it would hold the engine for minutes.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Jobs waiting for the engine before new requests are refused with [`TtsError::Busy`].
const QUEUE_DEPTH: usize = 64;
/// Jobs the worker interleaves at once; further jobs wait in the bounded queue.
const MAX_ACTIVE_JOBS: usize = 16;
/// espeak copies its data path into a fixed buffer; longer paths would be cut silently.
const MAX_DATA_PATH_BYTES: usize = 150;
/// Audio the cache keeps beyond the pinned prompts: 4 minutes at 16 kHz (7.7 MB).
const CACHE_BUDGET_SAMPLES: usize = 4 * 60 * OUTPUT_RATE_HZ as usize;

const INSTALL_HINT: &str = "run `frontline models install`";

/// Languages the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// Short code: "en" or "zh".
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The espeak-ng voice used for this language.
    pub fn espeak_voice(self) -> &'static str {
        match self {
            Lang::En => "en-us",
            Lang::Zh => "cmn",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = TtsError;

    /// Accepts BCP-47-ish tags ("en", "en-US", "en_GB", "zh", "zh-CN", "zh-Hans", "cmn",
    /// "cmn-Hans-CN") and the English names, case-insensitively.
    fn from_str(s: &str) -> Result<Lang, TtsError> {
        let lower = s.trim().to_ascii_lowercase();
        let primary = lower.split(['-', '_']).next().unwrap_or("");
        match primary {
            "en" | "eng" | "english" => Ok(Lang::En),
            "zh" | "cmn" | "zho" | "chi" | "mandarin" | "chinese" => Ok(Lang::Zh),
            _ => Err(TtsError::UnsupportedLanguage(s.to_string())),
        }
    }
}

/// Which voice speaks English (config key `tts.english_voice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnglishVoice {
    /// Piper when its files are installed, else espeak-ng (with a log line saying so).
    Auto,
    /// Piper; missing files are a startup error naming the file.
    Piper,
    /// espeak-ng only.
    Espeak,
}

/// Which voice speaks Mandarin (config key `tts.mandarin_voice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MandarinVoice {
    /// Kokoro when its files are installed, else espeak-ng (with a log line saying so).
    Auto,
    /// Kokoro; missing files are a startup error naming the file.
    Kokoro,
    /// espeak-ng only.
    Espeak,
}

/// Where espeak-ng lives and how fast it speaks.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsConfig {
    /// Path of `libespeak-ng.so` (1.52).
    pub lib_path: PathBuf,
    /// Path of the `espeak-ng-data` directory.
    pub data_path: PathBuf,
    /// Speaking rate in words per minute (80..=450); `None` for espeak's default (175).
    /// espeak only: Piper speaks at the pace it was trained on.
    pub rate_wpm: Option<u32>,
    /// The English voice. `Piper`/`Auto` need `piper`.
    pub english_voice: EnglishVoice,
    pub piper: Option<PiperConfig>,
    /// The Mandarin voice. `Kokoro`/`Auto` need `kokoro`.
    pub mandarin_voice: MandarinVoice,
    pub kokoro: Option<KokoroConfig>,
    /// Where fixed lines rendered ahead are kept between starts ([`disk::DiskCache`]);
    /// `None` keeps them in memory only.
    pub disk_cache: Option<PathBuf>,
}

impl TtsConfig {
    /// The layout `frontline models install` produces: the `espeakng-loader` wheel unpacked
    /// into `espeak_dir` (normally `models/espeak-ng`).
    pub fn from_install_dir(espeak_dir: &Path) -> TtsConfig {
        let pkg = espeak_dir.join("espeakng_loader");
        TtsConfig {
            lib_path: pkg.join("libespeak-ng.so"),
            data_path: pkg.join("espeak-ng-data"),
            rate_wpm: None,
            english_voice: EnglishVoice::Espeak,
            piper: None,
            mandarin_voice: MandarinVoice::Espeak,
            kokoro: None,
            disk_cache: None,
        }
    }
}

/// Why synthesis could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("espeak-ng library not found at {}; {INSTALL_HINT}", path.display())]
    LibraryMissing { path: PathBuf },
    #[error("espeak-ng data not found at {}; {INSTALL_HINT}", path.display())]
    DataMissing { path: PathBuf },
    #[error("espeak-ng data path {} is too long for espeak ({MAX_DATA_PATH_BYTES} bytes at most); install the models in a shorter directory", path.display())]
    DataPathTooLong { path: PathBuf },
    #[error("cannot load espeak-ng library {}: {source}; {INSTALL_HINT}", path.display())]
    LoadLibrary {
        path: PathBuf,
        source: libloading::Error,
    },
    #[error("{} does not export {symbol} (not an espeak-ng library?): {source}", path.display())]
    MissingSymbol {
        symbol: &'static str,
        path: PathBuf,
        source: libloading::Error,
    },
    #[error("espeak-ng failed to initialize with data {} (code {code}); {INSTALL_HINT}", data_path.display())]
    Initialize { data_path: PathBuf, code: i32 },
    #[error("espeak-ng voice {voice:?} is unavailable in {} (code {code}); {INSTALL_HINT}", lib_path.display())]
    VoiceUnavailable {
        voice: String,
        code: i32,
        lib_path: PathBuf,
    },
    #[error("espeak-ng is already running in this process with {} and {}; it is process-global, so a second library or data set ({}) cannot be loaded", running_lib.display(), running_data.display(), requested.display())]
    EngineConflict {
        running_lib: PathBuf,
        running_data: PathBuf,
        requested: PathBuf,
    },
    #[error("speaking rate {0} wpm is outside espeak's range 80..=450")]
    InvalidRate(u32),
    #[error("unsupported language {0:?} (supported: en, zh)")]
    UnsupportedLanguage(String),
    #[error("text of {len} characters is too long to synthesize (max {MAX_TEXT_CHARS})")]
    TextTooLong { len: usize },
    #[error("speech synthesis queue is full; try again shortly")]
    Busy,
    #[error("the espeak-ng worker thread has stopped")]
    EngineStopped,
    #[error("cannot start the espeak-ng worker thread: {0}")]
    Spawn(std::io::Error),
    #[error("espeak-ng synthesis failed (code {code})")]
    Synthesis { code: i32 },
    #[error("cannot resample espeak output to 16 kHz: {0}")]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Piper(#[from] PiperError),
    #[error("tts.english_voice = \"piper\" needs the Piper model paths (internal: TtsConfig.piper is None)")]
    PiperNotConfigured,
    #[error(transparent)]
    Kokoro(#[from] KokoroError),
    #[error("tts.mandarin_voice = \"kokoro\" needs the Kokoro model paths (internal: TtsConfig.kokoro is None)")]
    KokoroNotConfigured,
}

/// One synthesized sentence of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsChunk {
    /// The sentence as it appeared in the input (with its trailing whitespace).
    pub text: String,
    /// 16 kHz mono PCM.
    pub pcm_16k: Vec<i16>,
}

/// Handle to the process's espeak-ng engine. Cheap to clone; all clones share the worker.
#[derive(Clone)]
pub struct Tts {
    jobs: std_mpsc::SyncSender<Job>,
    voices: Arc<Voices>,
}

impl fmt::Debug for Tts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tts")
            .field("rate_wpm", &self.voices.rate_wpm)
            .field("english", &self.voices.english_id)
            .finish_non_exhaustive()
    }
}

/// What [`Tts::prewarm`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Prewarmed {
    /// Pieces synthesized now (and kept on disk).
    pub synthesized: usize,
    /// Pieces read back from the disk cache.
    pub from_disk: usize,
}

/// What one [`Tts`] handle speaks with, shared with the worker through its jobs: the espeak
/// rate, the neural voices (Piper for English, Kokoro for Mandarin, when used) and the audio cache.
struct Voices {
    rate_wpm: u32,
    piper: Option<Arc<PiperVoice>>,
    kokoro: Option<Arc<KokoroVoice>>,
    /// Cache identities of the voice that speaks each language.
    english_id: Arc<str>,
    mandarin_id: Arc<str>,
    /// espeak's identities, for sentences a neural voice failed on.
    english_espeak_id: Arc<str>,
    mandarin_espeak_id: Arc<str>,
    /// [`disk::fingerprint`] of the model files behind each language's voice.
    english_model: String,
    mandarin_model: String,
    cache: Mutex<AudioCache>,
    disk: Option<disk::DiskCache>,
    /// How fast each language's voice synthesizes (English, Mandarin), for pacing replies.
    speed: Mutex<[pace::Speed; 2]>,
}

impl Voices {
    fn new(cfg: &TtsConfig, rate_wpm: u32, piper: Option<Arc<PiperVoice>>, kokoro: Option<Arc<KokoroVoice>>) -> Voices {
        let espeak_id = |lang: Lang| -> Arc<str> { format!("espeak:{}@{rate_wpm}", lang.espeak_voice()).into() };
        let espeak_model = || disk::fingerprint(&[&cfg.lib_path, &cfg.data_path.join("phondata")]);
        let english_model = match (&piper, &cfg.piper) {
            (Some(_), Some(p)) => disk::fingerprint(&[&p.model_path, &p.config_path()]),
            _ => espeak_model(),
        };
        let mandarin_model = match (&kokoro, &cfg.kokoro) {
            (Some(_), Some(k)) => disk::fingerprint(&[&k.model_path, &k.voices_path, &k.vocab_path]),
            _ => espeak_model(),
        };
        Voices {
            english_model,
            mandarin_model,
            disk: cfg.disk_cache.clone().map(disk::DiskCache::new),
            rate_wpm,
            english_id: piper.as_ref().map_or_else(|| espeak_id(Lang::En), |p| format!("piper:{}", p.name()).into()),
            mandarin_id: kokoro.as_ref().map_or_else(|| espeak_id(Lang::Zh), |k| k.config().voice_id().into()),
            english_espeak_id: espeak_id(Lang::En),
            mandarin_espeak_id: espeak_id(Lang::Zh),
            piper,
            kokoro,
            cache: Mutex::new(AudioCache::new(CACHE_BUDGET_SAMPLES)),
            speed: Mutex::default(),
        }
    }

    fn speed(&self, lang: Lang) -> Option<f64> {
        self.speed.lock().unwrap_or_else(|p| p.into_inner())[lang as usize].secs_per_weight()
    }

    fn record_speed(&self, lang: Lang, text: &str, secs: f64) {
        self.speed.lock().unwrap_or_else(|p| p.into_inner())[lang as usize].record(text, secs);
    }

    fn key(&self, lang: Lang, text: &str) -> CacheKey {
        let voice = match lang {
            Lang::En => &self.english_id,
            Lang::Zh => &self.mandarin_id,
        };
        CacheKey::new(voice.clone(), lang, text)
    }

    /// The key of audio espeak spoke in place of the language's neural voice.
    fn espeak_key(&self, lang: Lang, text: &str) -> CacheKey {
        let voice = match lang {
            Lang::En => &self.english_espeak_id,
            Lang::Zh => &self.mandarin_espeak_id,
        };
        CacheKey::new(voice.clone(), lang, text)
    }

    fn has_neural(&self, lang: Lang) -> bool {
        match lang {
            Lang::En => self.piper.is_some(),
            Lang::Zh => self.kokoro.is_some(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, AudioCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, lang: Lang, text: &str) -> Option<Vec<i16>> {
        self.cache().get(&self.key(lang, text)).map(|pcm| pcm.to_vec())
    }

    /// What the on-disk cache keys `lang`'s lines by, besides their text.
    fn rendering(&self, lang: Lang) -> disk::Rendering<'_> {
        let (voice, model) = match lang {
            Lang::En => (&self.english_id, &self.english_model),
            Lang::Zh => (&self.mandarin_id, &self.mandarin_model),
        };
        disk::Rendering { voice, model, lang }
    }
}

/// Logged once per process and language: a failing neural voice on every sentence would
/// flood the log.
static PIPER_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);
static KOKORO_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// The neural voices loaded by an earlier [`Tts::new`] with the same files: one model in
/// memory however many handles exist.
static LOADED_PIPER: Mutex<Option<(PiperConfig, Arc<PiperVoice>)>> = Mutex::new(None);
static LOADED_KOKORO: Mutex<Option<(KokoroConfig, Arc<KokoroVoice>)>> = Mutex::new(None);

/// A language's neural voice, asked for as `Some(true)` (required), `Some(false)` (if
/// installed) or `None` (not at all). A required voice whose files are missing is an error
/// naming the file; one that is installed but fails to load falls back to espeak with a
/// warning, so a broken runtime never takes the gateway down.
fn neural_voice<C: Clone + PartialEq, V>(
    wanted: Option<bool>,
    cfg: Option<&C>,
    not_configured: TtsError,
    check_files: impl Fn(&C) -> Result<(), TtsError>,
    loaded: &Mutex<Option<(C, Arc<V>)>>,
    load: impl Fn(&C) -> Result<V, String>,
    what: &str,
) -> Result<Option<Arc<V>>, TtsError> {
    let cfg = match (wanted, cfg) {
        (None, _) | (Some(false), None) => return Ok(None),
        (Some(true), None) => return Err(not_configured),
        (Some(false), Some(c)) => match check_files(c) {
            Ok(()) => c,
            Err(e) => {
                tracing::info!(reason = %e, "{what} is spoken by espeak-ng: the neural voice is not installed");
                return Ok(None);
            }
        },
        (Some(true), Some(c)) => {
            check_files(c)?;
            c
        }
    };
    let mut slot = loaded.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((c, voice)) = slot.as_ref() {
        if c == cfg {
            return Ok(Some(voice.clone()));
        }
    }
    match load(cfg) {
        Ok(v) => {
            let v = Arc::new(v);
            *slot = Some((cfg.clone(), v.clone()));
            Ok(Some(v))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the neural voice; {what} falls back to espeak-ng");
            Ok(None)
        }
    }
}

/// Decides who speaks English: see [`EnglishVoice`] and [`neural_voice`].
fn english_piper(cfg: &TtsConfig) -> Result<Option<Arc<PiperVoice>>, TtsError> {
    let wanted = match cfg.english_voice {
        EnglishVoice::Espeak => None,
        EnglishVoice::Auto => Some(false),
        EnglishVoice::Piper => Some(true),
    };
    let load = |c: &PiperConfig| -> Result<PiperVoice, String> {
        let v = PiperVoice::load(c).map_err(|e| e.to_string())?;
        if !v.config().espeak_voice.eq_ignore_ascii_case(Lang::En.espeak_voice()) {
            return Err(format!("Piper voice {} is not an en-us voice (espeak voice {})", v.name(), v.config().espeak_voice));
        }
        tracing::info!(voice = v.name(), load_ms = v.load_ms, "Piper voice ready for English");
        Ok(v)
    };
    let check = |c: &PiperConfig| c.check_files().map_err(TtsError::from);
    neural_voice(wanted, cfg.piper.as_ref(), TtsError::PiperNotConfigured, check, &LOADED_PIPER, load, "English")
}

/// Decides who speaks Mandarin: see [`MandarinVoice`] and [`neural_voice`].
fn mandarin_kokoro(cfg: &TtsConfig) -> Result<Option<Arc<KokoroVoice>>, TtsError> {
    let wanted = match cfg.mandarin_voice {
        MandarinVoice::Espeak => None,
        MandarinVoice::Auto => Some(false),
        MandarinVoice::Kokoro => Some(true),
    };
    let load = |c: &KokoroConfig| -> Result<KokoroVoice, String> {
        let v = KokoroVoice::load(c).map_err(|e| e.to_string())?;
        tracing::info!(voice = %c.voice, speed = c.speed, load_ms = v.load_ms, "Kokoro voice ready for Mandarin");
        Ok(v)
    };
    let check = |c: &KokoroConfig| c.check_files().map_err(TtsError::from);
    neural_voice(wanted, cfg.kokoro.as_ref(), TtsError::KokoroNotConfigured, check, &LOADED_KOKORO, load, "Mandarin")
}

enum Job {
    Whole {
        text: String,
        lang: Lang,
        voices: Arc<Voices>,
        reply: oneshot::Sender<Result<Vec<i16>, TtsError>>,
    },
    Stream {
        sentences: VecDeque<String>,
        lang: Lang,
        voices: Arc<Voices>,
        chunks: mpsc::Sender<Result<TtsChunk, TtsError>>,
        pace: ReplyPace,
    },
}

/// The one engine of this process, started by the first successful [`Tts::new`].
struct Engine {
    lib_path: PathBuf,
    data_path: PathBuf,
    jobs: std_mpsc::SyncSender<Job>,
}

static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);

impl Tts {
    /// Load espeak-ng (once per process), initialize it with the data directory and check
    /// that the English ("en-us") and Mandarin ("cmn") voices load. Blocks briefly the first
    /// time; call it at startup, not on the hot path.
    pub fn new(cfg: TtsConfig) -> Result<Tts, TtsError> {
        let rate_wpm = cfg.rate_wpm.unwrap_or(DEFAULT_RATE_WPM);
        if !RATE_RANGE_WPM.contains(&rate_wpm) {
            return Err(TtsError::InvalidRate(rate_wpm));
        }
        check_files(&cfg.lib_path, &cfg.data_path)?;
        let voices = Arc::new(Voices::new(&cfg, rate_wpm, english_piper(&cfg)?, mandarin_kokoro(&cfg)?));
        // Canonical paths so "models/x" and "/work/main/models/x" count as the same engine.
        let lib_path = cfg
            .lib_path
            .canonicalize()
            .unwrap_or_else(|_| cfg.lib_path.clone());
        let data_path = cfg
            .data_path
            .canonicalize()
            .unwrap_or_else(|_| cfg.data_path.clone());
        if data_path.as_os_str().len() > MAX_DATA_PATH_BYTES {
            return Err(TtsError::DataPathTooLong { path: data_path });
        }

        // Held across startup so concurrent first calls initialize the library only once.
        let mut engine = ENGINE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(running) = engine.as_ref() {
            if running.lib_path == lib_path && running.data_path == data_path {
                return Ok(Tts {
                    jobs: running.jobs.clone(),
                    voices,
                });
            }
            return Err(TtsError::EngineConflict {
                running_lib: running.lib_path.clone(),
                running_data: running.data_path.clone(),
                requested: if running.lib_path != lib_path {
                    lib_path
                } else {
                    data_path
                },
            });
        }

        let (jobs_tx, jobs_rx) = std_mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<(), TtsError>>();
        let (lib, data) = (lib_path.clone(), data_path.clone());
        std::thread::Builder::new()
            .name("espeak-ng".into())
            .spawn(move || {
                match start_engine(&lib, &data) {
                    Ok((espeak, resampler)) => {
                        let _ = ready_tx.send(Ok(()));
                        run_worker(Synth { espeak, resampler, piper_resampler: None, kokoro_resampler: None }, jobs_rx);
                    }
                    // The library (if loaded) stays mapped: unloading a half-initialized
                    // espeak is not something its API supports.
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(TtsError::Spawn)?;
        ready_rx.recv().map_err(|_| TtsError::EngineStopped)??;
        tracing::info!(lib = %lib_path.display(), data = %data_path.display(), "espeak-ng ready");
        *engine = Some(Engine {
            lib_path,
            data_path,
            jobs: jobs_tx.clone(),
        });
        Ok(Tts {
            jobs: jobs_tx,
            voices,
        })
    }

    /// This handle's speaking rate in words per minute.
    pub fn rate_wpm(&self) -> u32 {
        self.voices.rate_wpm
    }

    /// The Piper voice speaking English, if English is neural.
    pub fn piper(&self) -> Option<&Arc<PiperVoice>> {
        self.voices.piper.as_ref()
    }

    /// The Kokoro voice speaking Mandarin, if Mandarin is neural.
    pub fn kokoro(&self) -> Option<&Arc<KokoroVoice>> {
        self.voices.kokoro.as_ref()
    }

    /// The cache identity of the voice speaking `lang` ("piper:en_US-joe-medium",
    /// "espeak:cmn@165").
    pub fn voice_id(&self, lang: Lang) -> Arc<str> {
        self.voices.key(lang, "").voice
    }

    /// (lines, samples, hits, misses) of this handle's audio cache.
    pub fn cache_stats(&self) -> (usize, usize, u64, u64) {
        let c = self.voices.cache();
        (c.len(), c.samples(), c.hits, c.misses)
    }

    /// Forgets the audio of everything said at run time (the pre-rendered prompts stay), so a
    /// benchmark's next reply is synthesized however much of its wording came before.
    pub fn forget_spoken(&self) {
        self.voices.cache().forget_unpinned();
    }

    /// Renders fixed lines ahead and pins them in the cache, so they later play with no
    /// synthesis delay. Each line is cached piece by piece ([`split_for_speech`]), the unit
    /// replies are spoken in. A piece rendered at an earlier start is read from the disk cache;
    /// a new one is synthesized and kept there. `half_duty` paces synthesis for a gateway that
    /// already takes calls. `progress` gets (pieces done, pieces in all). Failures are logged,
    /// not fatal (the line is then synthesized when it is first said).
    pub async fn prewarm(&self, lines: &[(Lang, &str)], half_duty: bool, mut progress: impl FnMut(usize, usize)) -> Prewarmed {
        let pieces: Vec<(Lang, &str)> = lines.iter().flat_map(|&(lang, text)| split_for_speech(text).into_iter().map(move |s| (lang, s))).collect();
        let mut done = Prewarmed::default();
        for (i, &(lang, piece)) in pieces.iter().enumerate() {
            progress(i, pieces.len());
            if piece.trim().is_empty() || self.voices.cached(lang, piece).is_some() {
                continue;
            }
            let rendering = self.voices.rendering(lang);
            if let Some(pcm) = self.voices.disk.as_ref().and_then(|d| d.load(rendering, piece)) {
                self.voices.cache().insert(self.voices.key(lang, piece), pcm.into(), true);
                done.from_disk += 1;
                continue;
            }
            let started = std::time::Instant::now();
            if let Err(e) = self.synthesize_uncached(piece, lang).await {
                tracing::warn!(error = %e, text = piece, "cannot pre-synthesize a prompt");
                continue;
            }
            // Found under the language's own voice only when that voice spoke it: espeak
            // standing in for a failing neural voice is neither pinned nor kept on disk.
            let spoken = self.voices.cache().get(&self.voices.key(lang, piece)); // the lock ends here
            if let Some(pcm) = spoken {
                if let Some(disk) = &self.voices.disk {
                    if let Err(e) = disk.store(rendering, piece, &pcm) {
                        tracing::warn!(error = %e, dir = %disk.dir().display(), "cannot keep a pre-rendered line on disk");
                    }
                }
                self.voices.cache().insert(self.voices.key(lang, piece), pcm, true);
                done.synthesized += 1;
            }
            if half_duty {
                // A neural voice rendering at start-up must not starve the first calls'
                // recognizer of the CPU (on 2 cores Kokoro's prewarm took whisper's turn for
                // tens of seconds).
                tokio::time::sleep(started.elapsed()).await;
            }
        }
        progress(pieces.len(), pieces.len());
        done
    }

    /// Synthesize `text` in one piece: 16 kHz mono PCM. Empty text gives empty audio.
    /// Served from the cache when the same voice has said the same text before.
    pub async fn synthesize(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError> {
        check_text(text)?;
        if let Some(pcm) = self.voices.cached(lang, text) {
            return Ok(pcm);
        }
        self.synthesize_uncached(text, lang).await
    }

    async fn synthesize_uncached(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError> {
        check_text(text)?;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let (reply, result) = oneshot::channel();
        self.submit(Job::Whole {
            text: text.to_string(),
            lang,
            voices: self.voices.clone(),
            reply,
        })?;
        result.await.map_err(|_| TtsError::EngineStopped)?
    }

    /// Synthesize `text` piece by piece (see [`split_for_speech`]: sentences, a long one cut
    /// after its first clause). Chunks arrive in order as each is ready, so playback can start
    /// after the first. `pace` is the reply's (one per reply, shared by its messages): a piece
    /// not in the cache is cut further at a phrase boundary when making it whole would keep
    /// the caller in silence (see [`pace`]). Dropping the receiver (barge-in) cancels the
    /// sentences not yet synthesized. Errors arrive as the last item.
    pub fn synthesize_stream(
        &self,
        text: &str,
        lang: Lang,
        pace: &ReplyPace,
    ) -> mpsc::Receiver<Result<TtsChunk, TtsError>> {
        let mut sentences: VecDeque<String> = split_for_speech(text)
            .into_iter()
            .map(str::to_string)
            .collect();
        // One slot per piece (plus one for an error): the worker never waits on a slow reader.
        // Pacing may cut a sentence into phrases, each at least half the opening's weight.
        let most_pieces = sentences.len() + split::weight(text) / (split::OPENING_TARGET_WEIGHT / 2) + 1;
        let (tx, rx) = mpsc::channel(most_pieces);
        if let Err(e) = check_text(text) {
            let _ = tx.try_send(Err(e));
            return rx;
        }
        // Cached leading sentences (a greeting, a prompt) are ready now, without queueing
        // behind other calls' synthesis; the worker still checks the rest one by one.
        while let Some(pcm) = sentences.front().and_then(|s| self.voices.cached(lang, s)) {
            let text = sentences.pop_front().unwrap_or_default();
            pace.handed_out(seconds(&pcm), std::time::Instant::now());
            let _ = tx.try_send(Ok(TtsChunk { text, pcm_16k: pcm }));
        }
        if sentences.is_empty() {
            return rx; // closed once the cached chunks are read (or at once: nothing to say)
        }
        let job = Job::Stream {
            sentences,
            lang,
            voices: self.voices.clone(),
            chunks: tx.clone(),
            pace: pace.clone(),
        };
        if let Err(e) = self.submit(job) {
            let _ = tx.try_send(Err(e));
        }
        rx
    }

    fn submit(&self, job: Job) -> Result<(), TtsError> {
        self.jobs.try_send(job).map_err(|e| match e {
            std_mpsc::TrySendError::Full(_) => TtsError::Busy,
            std_mpsc::TrySendError::Disconnected(_) => TtsError::EngineStopped,
        })
    }
}

/// Seconds of 16 kHz audio.
fn seconds(pcm: &[i16]) -> f64 {
    pcm.len() as f64 / f64::from(OUTPUT_RATE_HZ)
}

fn check_text(text: &str) -> Result<(), TtsError> {
    let len = text.chars().count();
    if len > MAX_TEXT_CHARS {
        return Err(TtsError::TextTooLong { len });
    }
    Ok(())
}

/// Fail early with the exact missing file, before dlopen or espeak report something vaguer
/// (espeak may even "initialize" without its phoneme tables and then speak nothing).
/// Files of espeak-ng-data that both voices need. Checked before `espeak_Initialize`, which
/// exits the whole process when its data is missing instead of returning an error.
const REQUIRED_DATA_FILES: [&str; 8] =
    ["phontab", "phonindex", "phondata", "intonations", "en_dict", "cmn_dict", "lang/gmw/en-US", "lang/sit/cmn"];

fn check_files(lib_path: &Path, data_path: &Path) -> Result<(), TtsError> {
    if !lib_path.is_file() {
        return Err(TtsError::LibraryMissing {
            path: lib_path.to_path_buf(),
        });
    }
    if !data_path.is_dir() {
        return Err(TtsError::DataMissing {
            path: data_path.to_path_buf(),
        });
    }
    for file in REQUIRED_DATA_FILES {
        let path = data_path.join(file);
        if !path.is_file() {
            return Err(TtsError::DataMissing { path });
        }
    }
    Ok(())
}

fn start_engine(lib: &Path, data: &Path) -> Result<(ffi::Espeak, Resampler), TtsError> {
    let mut espeak = ffi::Espeak::load(lib, data)?;
    // Both voices must load now, not on a caller's first Mandarin sentence.
    espeak.set_voice(Lang::Zh.espeak_voice())?;
    espeak.set_voice(Lang::En.espeak_voice())?;
    let resampler = Resampler::new(espeak.sample_rate(), OUTPUT_RATE_HZ)?;
    Ok((espeak, resampler))
}

/// What the worker thread owns: espeak and the resamplers to the gateway's rate.
struct Synth {
    espeak: ffi::Espeak,
    resampler: Resampler,
    /// From the Piper voice's rate; built on its first sentence.
    piper_resampler: Option<Resampler>,
    /// From Kokoro's 24 kHz; built on its first sentence.
    kokoro_resampler: Option<Resampler>,
}

/// The worker: owns espeak for the life of the process.
fn run_worker(mut synth: Synth, jobs: std_mpsc::Receiver<Job>) {
    let mut active: VecDeque<Job> = VecDeque::new();
    loop {
        if active.is_empty() {
            match jobs.recv() {
                Ok(job) => active.push_back(job),
                Err(_) => return, // every handle dropped and the registry cleared
            }
        } else if active.len() < MAX_ACTIVE_JOBS {
            // Admit at most one waiting job per sentence spoken: fair, and the bounded queue
            // (not this list) stays the place where overload shows up.
            if let Ok(job) = jobs.try_recv() {
                active.push_back(job);
            }
        }
        let Some(job) = active.pop_front() else {
            continue;
        };
        match job {
            Job::Whole {
                text,
                lang,
                voices,
                reply,
            } => {
                if reply.is_closed() {
                    continue; // the caller gave up (call ended, barge-in)
                }
                let _ = reply.send(synth.speak_cached(&text, lang, &voices));
            }
            Job::Stream {
                mut sentences,
                lang,
                voices,
                chunks,
                pace,
            } => {
                if chunks.is_closed() {
                    continue; // listener gone: drop the sentences nobody will hear
                }
                let Some(mut text) = sentences.pop_front() else {
                    continue;
                };
                if voices.cached(lang, &text).is_none() {
                    let ahead = pace.audio_ahead(std::time::Instant::now());
                    if let Some((now, later)) = pace::next_piece(&text, ahead, voices.speed(lang)) {
                        let (now, later) = (now.to_string(), later.to_string());
                        sentences.push_front(later);
                        text = now;
                    }
                }
                let result = synth.speak_cached(&text, lang, &voices);
                let failed = result.is_err();
                if let Ok(pcm) = &result {
                    pace.handed_out(seconds(pcm), std::time::Instant::now());
                }
                // The channel has a slot for every piece pacing can cut (`synthesize_stream`).
                let _ = chunks.try_send(result.map(|pcm_16k| TtsChunk { text, pcm_16k }));
                if !failed && !sentences.is_empty() {
                    active.push_back(Job::Stream {
                        sentences,
                        lang,
                        voices,
                        chunks,
                        pace,
                    });
                }
            }
        }
    }
}

impl Synth {
    /// A sentence from the cache, or synthesized and then cached under the voice that
    /// actually spoke it (espeak's identity when Piper failed and espeak stood in).
    fn speak_cached(&mut self, text: &str, lang: Lang, voices: &Voices) -> Result<Vec<i16>, TtsError> {
        if let Some(pcm) = voices.cached(lang, text) {
            return Ok(pcm);
        }
        let started = std::time::Instant::now();
        let (pcm, neural) = self.speak(text, lang, voices)?;
        if neural || !voices.has_neural(lang) {
            voices.record_speed(lang, text, started.elapsed().as_secs_f64());
        }
        let key = if voices.has_neural(lang) && !neural { voices.espeak_key(lang, text) } else { voices.key(lang, text) };
        if !pcm.is_empty() {
            voices.cache().insert(key, pcm.as_slice().into(), false);
        }
        Ok(pcm)
    }

    /// 16 kHz audio of `text`, and whether the neural voice spoke it.
    fn speak(&mut self, text: &str, lang: Lang, voices: &Voices) -> Result<(Vec<i16>, bool), TtsError> {
        if let (Lang::En, Some(piper)) = (lang, voices.piper.as_ref()) {
            match self.speak_piper(text, piper) {
                Ok(pcm) => return Ok((pcm, true)),
                Err(e) => {
                    if !PIPER_FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, voice = piper.name(), "Piper synthesis failed; espeak-ng speaks instead (logged once)");
                    }
                }
            }
        }
        if let (Lang::Zh, Some(kokoro)) = (lang, voices.kokoro.as_ref()) {
            match self.speak_kokoro(text, kokoro) {
                Ok(pcm) => return Ok((pcm, true)),
                Err(e) => {
                    if !KOKORO_FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, voice = %kokoro.config().voice, "Kokoro synthesis failed; espeak-ng speaks instead (logged once)");
                    }
                }
            }
        }
        self.espeak.set_voice(lang.espeak_voice())?;
        let native = self.espeak.synthesize(text, voices.rate_wpm)?;
        Ok((resample_clip(&mut self.resampler, &native), false))
    }

    /// Text → clauses → espeak IPA → piper ids → model → 16 kHz.
    fn speak_piper(&mut self, text: &str, piper: &PiperVoice) -> Result<Vec<i16>, TtsError> {
        self.espeak.set_voice(Lang::En.espeak_voice())?;
        let clauses: Vec<(String, Option<char>)> = phoneme_ids::split_clauses(text)
            .into_iter()
            .map(|c| (self.espeak.phonemize_ipa(c.text), c.punctuation))
            .collect();
        let phonemes = phoneme_ids::join_clause_phonemes(&clauses);
        if phonemes.is_empty() {
            return Ok(Vec::new()); // punctuation or symbols only: nothing to say
        }
        let (ids, skipped) = piper.config().ids(&phonemes);
        if skipped > 0 {
            tracing::debug!(skipped, phonemes = %phonemes, "phonemes without a Piper id were skipped");
        }
        let native = piper.synthesize_ids(ids)?;
        let rate = piper.config().sample_rate;
        let resampler = match &mut self.piper_resampler {
            Some(r) if r.from_hz() == rate => r,
            slot => slot.insert(Resampler::new(rate, OUTPUT_RATE_HZ)?),
        };
        Ok(resample_clip(resampler, &native))
    }
}

impl Synth {
    /// Text → clauses → Rust G2P → Kokoro ids → model → 16 kHz. Replies arrive here clause by
    /// clause already; longer text (a whole `synthesize`) is cut at clause ends so no clause
    /// runs past the model's input length, and its audio is joined.
    fn speak_kokoro(&mut self, text: &str, kokoro: &KokoroVoice) -> Result<Vec<i16>, TtsError> {
        let mut native = Vec::new();
        for clause in split_sentences(text) {
            let phonemes = zh_g2p::phonemes(clause);
            let (ids, skipped) = kokoro.ids(&phonemes);
            if skipped > 0 {
                tracing::debug!(skipped, phonemes = %phonemes, "phonemes without a Kokoro id were skipped");
            }
            if ids.len() > kokoro::MAX_TOKENS {
                tracing::warn!(tokens = ids.len(), clause, "clause too long for Kokoro; its end is cut");
            }
            // Kokoro pads every clause with about 0.3 s of silence before and 0.45 s after:
            // a caller would wait that long for the first word, and hear 0.75 s gaps at every
            // comma. Keep a breath before, and a clause's pause after.
            let clause_audio = kokoro.synthesize_ids(ids)?;
            native.extend_from_slice(trim_silence(&clause_audio, kokoro::SAMPLE_RATE_HZ, KOKORO_LEAD_MS, KOKORO_TAIL_MS));
        }
        let resampler = match &mut self.kokoro_resampler {
            Some(r) => r,
            slot => slot.insert(Resampler::new(kokoro::SAMPLE_RATE_HZ, OUTPUT_RATE_HZ)?),
        };
        Ok(resample_clip(resampler, &native))
    }
}

/// Silence kept before a Kokoro clause's first sound, and after its last.
const KOKORO_LEAD_MS: u32 = 30;
const KOKORO_TAIL_MS: u32 = 200;

/// One whole clip through a streaming resampler, leaving it ready for the next clip.
fn resample_clip(resampler: &mut Resampler, native: &[i16]) -> Vec<i16> {
    let expected = (native.len() as u64 * OUTPUT_RATE_HZ as u64).div_ceil(resampler.from_hz().max(1) as u64);
    let mut out = Vec::with_capacity(expected as usize);
    resampler.process(native, &mut out);
    resampler.flush(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The installed espeak-ng, or `None` (with the reason printed) so tests skip cleanly on
    /// machines where `frontline models install` has not run.
    fn installed() -> Option<Tts> {
        match Tts::new(TtsConfig::from_install_dir(&espeak_dir())) {
            Ok(tts) => Some(tts),
            Err(e @ (TtsError::LibraryMissing { .. } | TtsError::DataMissing { .. })) => {
                eprintln!("skipping espeak-ng test: {e}");
                None
            }
            Err(e) => panic!("espeak-ng is installed but does not start: {e}"),
        }
    }

    /// `models/espeak-ng` of this checkout, or `$FRONTLINE_ESPEAK_DIR`.
    fn espeak_dir() -> PathBuf {
        std::env::var_os("FRONTLINE_ESPEAK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/espeak-ng"))
    }

    fn secs(pcm: &[i16]) -> f64 {
        pcm.len() as f64 / OUTPUT_RATE_HZ as f64
    }

    fn rms(pcm: &[i16]) -> f64 {
        (pcm.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
    }

    #[tokio::test]
    async fn english_sentence_is_audible_speech_of_plausible_length() {
        let Some(tts) = installed() else { return };
        let pcm = tts
            .synthesize("Thank you for calling. How can I help you today?", Lang::En)
            .await
            .unwrap();
        let (d, r) = (secs(&pcm), rms(&pcm));
        assert!((1.0..=4.0).contains(&d), "duration {d:.2} s");
        assert!(r > 1000.0, "rms {r:.0}: too quiet to be speech");
    }

    #[tokio::test]
    async fn mandarin_characters_are_spoken_as_mandarin() {
        let Some(tts) = installed() else { return };
        let t0 = Instant::now();
        let pcm = tts
            .synthesize("您好，请问有什么可以帮您？", Lang::Zh)
            .await
            .unwrap();
        let (d, r) = (secs(&pcm), rms(&pcm));
        // 12 syllables: ~2-3 s. Characters missing from the dictionary would be read out as
        // names or code points and run far longer.
        assert!((1.2..=4.0).contains(&d), "duration {d:.2} s");
        assert!(r > 1000.0, "rms {r:.0}");
        eprintln!("zh: {d:.2} s of audio in {:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn streamed_chunks_arrive_in_order_and_rejoin_the_text() {
        let Some(tts) = installed() else { return };
        let text =
            "您好，请问有什么可以帮您？Your bill is 35.5 dollars. Would you like to pay now?";
        let mut rx = tts.synthesize_stream(text, Lang::Zh, &ReplyPace::new());
        let mut texts = Vec::new();
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.unwrap();
            assert!(
                secs(&chunk.pcm_16k) > 0.3,
                "chunk {:?} is nearly empty",
                chunk.text
            );
            texts.push(chunk.text);
        }
        assert_eq!(texts.len(), 4, "{texts:?}");
        assert_eq!(texts.concat(), text);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_engine_safely() {
        let Some(tts) = installed() else { return };
        let mut tasks = Vec::new();
        for i in 0..6 {
            let tts = tts.clone();
            let (text, lang) = if i % 2 == 0 {
                ("Please hold the line.", Lang::En)
            } else {
                ("请稍等。", Lang::Zh)
            };
            tasks.push(tokio::spawn(
                async move { tts.synthesize(text, lang).await },
            ));
        }
        let mut lens = Vec::new();
        for t in tasks {
            lens.push(t.await.unwrap().unwrap().len());
        }
        // Same text, same length (espeak adds slight random variation, well under 2%), and the
        // English and Mandarin lines stay distinct: interleaving must not mix voices or samples.
        let close = |a: usize, b: usize| (a as f64 - b as f64).abs() < 0.02 * a as f64;
        assert!(
            close(lens[0], lens[2]) && close(lens[0], lens[4]),
            "{lens:?}"
        );
        assert!(
            close(lens[1], lens[3]) && close(lens[1], lens[5]),
            "{lens:?}"
        );
        assert!(!close(lens[0], lens[1]), "{lens:?}");
        assert!(lens.iter().all(|&n| n > 8000), "{lens:?}");
    }

    #[tokio::test]
    async fn faster_rate_gives_shorter_audio() {
        let Some(tts) = installed() else { return };
        let fast = Tts::new(TtsConfig {
            rate_wpm: Some(300),
            ..TtsConfig::from_install_dir(&espeak_dir())
        })
        .unwrap();
        let text = "Your payment has been received, thank you.";
        let normal = tts.synthesize(text, Lang::En).await.unwrap();
        let quick = fast.synthesize(text, Lang::En).await.unwrap();
        assert!(
            secs(&quick) < secs(&normal) * 0.8,
            "{} vs {}",
            secs(&quick),
            secs(&normal)
        );
    }

    #[tokio::test]
    async fn empty_text_gives_no_audio_and_no_chunks() {
        let Some(tts) = installed() else { return };
        assert!(tts.synthesize("   ", Lang::En).await.unwrap().is_empty());
        assert!(tts.synthesize_stream("", Lang::Zh, &ReplyPace::new()).recv().await.is_none());
    }

    #[tokio::test]
    async fn reports_synthesis_time_and_real_time_factor() {
        let Some(tts) = installed() else { return };
        for (text, lang) in [
            ("Thank you for calling. How can I help you today?", Lang::En),
            ("您好，请问有什么可以帮您？", Lang::Zh),
        ] {
            tts.synthesize(text, lang).await.unwrap(); // warm: voice switch, page cache
            let runs = 5;
            let t0 = Instant::now();
            let mut audio = 0.0;
            for _ in 0..runs {
                audio += secs(&tts.synthesize(text, lang).await.unwrap());
            }
            let wall = t0.elapsed().as_secs_f64();
            let rtf = wall / audio;
            eprintln!(
                "tts {lang}: {:.1} ms per sentence, {:.2} s audio, RTF {rtf:.3}",
                wall * 1000.0 / runs as f64,
                audio / runs as f64
            );
            assert!(
                rtf < 0.5,
                "synthesis slower than half real time: RTF {rtf:.3}"
            );
        }
    }

    #[test]
    fn missing_library_error_names_the_path_and_the_fix() {
        let cfg = TtsConfig {
            lib_path: PathBuf::from("/nonexistent/espeak/libespeak-ng.so"),
            data_path: PathBuf::from("/nonexistent/espeak/espeak-ng-data"),
            rate_wpm: None,
            english_voice: EnglishVoice::Espeak,
            piper: None,
            mandarin_voice: MandarinVoice::Espeak,
            kokoro: None,
            disk_cache: None,
        };
        let msg = Tts::new(cfg).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/espeak/libespeak-ng.so"), "{msg}");
        assert!(msg.contains("frontline models install"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_a_library_is_a_load_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libespeak-ng.so");
        std::fs::write(&lib, b"not an ELF file").unwrap();
        let data = dir.path().join("espeak-ng-data");
        for f in REQUIRED_DATA_FILES {
            let p = data.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        let err = Tts::new(TtsConfig {
            lib_path: lib.clone(),
            data_path: data,
            rate_wpm: None,
            english_voice: EnglishVoice::Espeak,
            piper: None,
            mandarin_voice: MandarinVoice::Espeak,
            kokoro: None,
            disk_cache: None,
        })
        .unwrap_err();
        // Either refused as a second engine (another test started the real one first) or
        // refused by dlopen; both must name the file.
        assert!(
            err.to_string()
                .contains(&*lib.canonicalize().unwrap().to_string_lossy()),
            "{err}"
        );
    }

    #[test]
    fn missing_voice_data_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libespeak-ng.so");
        std::fs::write(&lib, b"").unwrap();
        let data = dir.path().join("espeak-ng-data");
        std::fs::create_dir_all(&data).unwrap();
        let msg = Tts::new(TtsConfig {
            lib_path: lib,
            data_path: data.clone(),
            rate_wpm: None,
            english_voice: EnglishVoice::Espeak,
            piper: None,
            mandarin_voice: MandarinVoice::Espeak,
            kokoro: None,
            disk_cache: None,
        })
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains(&*data.join("phontab").to_string_lossy()),
            "{msg}"
        );
    }

    #[test]
    fn rate_outside_espeak_range_is_rejected() {
        let cfg = TtsConfig {
            lib_path: "/x".into(),
            data_path: "/y".into(),
            rate_wpm: Some(1000),
            english_voice: EnglishVoice::Espeak,
            piper: None,
            mandarin_voice: MandarinVoice::Espeak,
            kokoro: None,
            disk_cache: None,
        };
        assert!(matches!(Tts::new(cfg), Err(TtsError::InvalidRate(1000))));
    }

    #[test]
    fn language_tags_parse() {
        for s in ["en", "EN", "en-US", "en_GB", "english"] {
            assert_eq!(s.parse::<Lang>().unwrap(), Lang::En, "{s}");
        }
        for s in ["zh", "zh-CN", "zh-Hans", "cmn", "cmn-Hans-CN", "Mandarin"] {
            assert_eq!(s.parse::<Lang>().unwrap(), Lang::Zh, "{s}");
        }
        assert!(matches!(
            "fr".parse::<Lang>(),
            Err(TtsError::UnsupportedLanguage(_))
        ));
        assert_eq!(Lang::Zh.as_str(), "zh");
        assert_eq!(Lang::En.to_string(), "en");
    }
}
