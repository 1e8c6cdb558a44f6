//! The slice of espeak-ng's public C API (speak_lib.h) that synthesis needs, bound at runtime
//! with libloading so the binary runs (and tests skip) without the library installed, and so
//! the 1.52 build from the models directory is used instead of whatever the system has.
//!
//! espeak-ng keeps all of its state in process globals and is not thread-safe: an [`Espeak`]
//! must be created, used and dropped on one thread, and only one may exist per process. The
//! parent module guarantees both by owning it from a single dedicated worker thread.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_short, c_uint, c_void, CString};
use std::path::{Path, PathBuf};

use libloading::Library;

use super::TtsError;

// espeak_AUDIO_OUTPUT: synthesize on the calling thread, handing samples to the callback.
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
// espeak_Initialize option: report errors instead of calling exit() (the default on failure).
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
// espeak_PARAMETER
const PARAM_RATE: c_int = 1;
// espeak_POSITION_TYPE
const POS_CHARACTER: c_int = 1;
// espeak_Synth flags: UTF-8 input, and keep the sentence-final pause so consecutive sentence
// chunks do not run into each other. SSML is deliberately off: brain text is plain text.
const CHARS_UTF8: c_uint = 1;
const ENDPAUSE: c_uint = 0x1000;
/// Callback buffer length in ms; only affects how often the callback runs.
const BUFFER_MS: c_int = 200;

type SynthCallback = unsafe extern "C" fn(*mut c_short, c_int, *mut c_void) -> c_int;
type FnInitialize = unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int;
type FnSetSynthCallback = unsafe extern "C" fn(Option<SynthCallback>);
type FnSetVoiceByName = unsafe extern "C" fn(*const c_char) -> c_int;
type FnSetParameter = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type FnSynth = unsafe extern "C" fn(
    *const c_void,
    usize,
    c_uint,
    c_int,
    c_uint,
    c_uint,
    *mut c_uint,
    *mut c_void,
) -> c_int;
type FnSynchronize = unsafe extern "C" fn() -> c_int;
type FnTextToPhonemes = unsafe extern "C" fn(*mut *const c_void, c_int, c_int) -> *const c_char;
// espeak_TextToPhonemes phonememode: bit 1 set = IPA as UTF-8 (what piper voices are trained on).
const PHONEMES_IPA: c_int = 0x02;

thread_local! {
    /// Samples delivered by the synth callback. In synchronous mode espeak calls the callback
    /// on the thread that called espeak_Synth, so a thread-local needs no locking.
    static COLLECTED: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn collect_samples(wav: *mut c_short, n: c_int, _events: *mut c_void) -> c_int {
    if wav.is_null() || n <= 0 {
        return 0; // end of synthesis or an events-only call
    }
    // SAFETY: espeak passes `n` valid samples at `wav` for the duration of the call.
    let samples = unsafe { std::slice::from_raw_parts(wav as *const i16, n as usize) };
    // Must not panic across the C boundary: try_* and ignore the (impossible) failures.
    let _ = COLLECTED.try_with(|buf| {
        if let Ok(mut buf) = buf.try_borrow_mut() {
            buf.extend_from_slice(samples);
        }
    });
    0 // 0 = keep going
}

pub(super) struct Espeak {
    set_voice_by_name: FnSetVoiceByName,
    set_parameter: FnSetParameter,
    synth: FnSynth,
    synchronize: FnSynchronize,
    text_to_phonemes: FnTextToPhonemes,
    sample_rate: u32,
    current_voice: Option<&'static str>,
    lib_path: PathBuf,
    // Kept last and never unloaded early: the function pointers above point into it.
    _lib: Library,
}

fn symbol<T: Copy>(lib: &Library, lib_path: &Path, name: &'static str) -> Result<T, TtsError> {
    // SAFETY: T is the fn-pointer type declared above from speak_lib.h for this symbol.
    unsafe { lib.get::<T>(name) }
        .map(|s| *s)
        .map_err(|source| TtsError::MissingSymbol {
            symbol: name,
            path: lib_path.to_path_buf(),
            source,
        })
}

impl Espeak {
    /// Load the library, initialize it with `data_path` (the espeak-ng-data directory) and
    /// install the sample-collecting callback.
    pub(super) fn load(lib_path: &Path, data_path: &Path) -> Result<Espeak, TtsError> {
        // SAFETY: loading runs the library's initializers; libespeak-ng has none with
        // preconditions beyond a normal C runtime.
        let lib = unsafe { Library::new(lib_path) }.map_err(|source| TtsError::LoadLibrary {
            path: lib_path.to_path_buf(),
            source,
        })?;
        let initialize: FnInitialize = symbol(&lib, lib_path, "espeak_Initialize")?;
        let set_callback: FnSetSynthCallback = symbol(&lib, lib_path, "espeak_SetSynthCallback")?;
        let mut engine = Espeak {
            set_voice_by_name: symbol(&lib, lib_path, "espeak_SetVoiceByName")?,
            set_parameter: symbol(&lib, lib_path, "espeak_SetParameter")?,
            synth: symbol(&lib, lib_path, "espeak_Synth")?,
            synchronize: symbol(&lib, lib_path, "espeak_Synchronize")?,
            text_to_phonemes: symbol(&lib, lib_path, "espeak_TextToPhonemes")?,
            sample_rate: 0,
            current_voice: None,
            lib_path: lib_path.to_path_buf(),
            _lib: lib,
        };
        let data = path_cstring(data_path)?;
        // SAFETY: valid NUL-terminated path; DONT_EXIT makes failures return instead of exit().
        let rate = unsafe {
            initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                BUFFER_MS,
                data.as_ptr(),
                INITIALIZE_DONT_EXIT,
            )
        };
        if rate <= 0 {
            return Err(TtsError::Initialize {
                data_path: data_path.to_path_buf(),
                code: rate,
            });
        }
        engine.sample_rate = rate as u32;
        // SAFETY: the callback has the signature espeak expects and never unwinds.
        unsafe { set_callback(Some(collect_samples)) };
        Ok(engine)
    }

    pub(super) fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Select a voice by espeak name ("en-us", "cmn"); a no-op when it is already selected,
    /// because switching reloads the voice's dictionary (cmn_dict is 1.5 MB).
    pub(super) fn set_voice(&mut self, voice: &'static str) -> Result<(), TtsError> {
        if self.current_voice == Some(voice) {
            return Ok(());
        }
        let name = CString::new(voice).map_err(|_| TtsError::VoiceUnavailable {
            voice: voice.to_string(),
            code: -1,
            lib_path: self.lib_path.clone(),
        })?;
        // SAFETY: valid NUL-terminated string; called on the owning thread.
        let code = unsafe { (self.set_voice_by_name)(name.as_ptr()) };
        if code != 0 {
            self.current_voice = None;
            return Err(TtsError::VoiceUnavailable {
                voice: voice.to_string(),
                code,
                lib_path: self.lib_path.clone(),
            });
        }
        self.current_voice = Some(voice);
        Ok(())
    }

    /// Synthesize `text` with the current voice at `rate_wpm`; returns PCM at
    /// [`sample_rate`](Espeak::sample_rate).
    pub(super) fn synthesize(&mut self, text: &str, rate_wpm: u32) -> Result<Vec<i16>, TtsError> {
        // Interior NULs would truncate the C string; they carry no speech anyway.
        let text = CString::new(text.replace('\0', "")).unwrap_or_default();
        let bytes = text.as_bytes_with_nul();
        COLLECTED.with(|b| b.borrow_mut().clear());
        // SAFETY: plain integer parameter call on the owning thread.
        let code = unsafe { (self.set_parameter)(PARAM_RATE, rate_wpm as c_int, 0) };
        if code != 0 {
            return Err(TtsError::Synthesis { code });
        }
        // SAFETY: `bytes` is NUL-terminated UTF-8 that outlives the (synchronous) call; the
        // unique-id and user-data pointers are optional and passed as null.
        let code = unsafe {
            (self.synth)(
                bytes.as_ptr() as *const c_void,
                bytes.len(),
                0,
                POS_CHARACTER,
                0,
                CHARS_UTF8 | ENDPAUSE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        // SAFETY: no arguments; returns once all audio has gone through the callback.
        unsafe { (self.synchronize)() };
        let pcm = COLLECTED.with(|b| std::mem::take(&mut *b.borrow_mut()));
        if code != 0 {
            return Err(TtsError::Synthesis { code });
        }
        Ok(pcm)
    }
}

impl Espeak {
    /// IPA phonemes of `text` with the current voice, words separated by spaces. espeak hands
    /// back one clause per call and advances the text pointer (null at the end); its clause
    /// punctuation is lost, so callers pass one clause at a time and keep their own.
    pub(super) fn phonemize_ipa(&mut self, text: &str) -> String {
        let text = CString::new(text.replace('\0', "")).unwrap_or_default();
        let mut cursor: *const c_void = text.as_ptr() as *const c_void;
        let mut out = String::new();
        // Bounded: espeak always advances, but a library bug must not hang the TTS thread.
        for _ in 0..=text.as_bytes().len() {
            if cursor.is_null() {
                break;
            }
            // SAFETY: `cursor` points into `text` (NUL-terminated, alive for the loop); espeak
            // returns a pointer to its own static buffer, valid until the next call, copied at once.
            let piece = unsafe { (self.text_to_phonemes)(&mut cursor, CHARS_UTF8 as c_int, PHONEMES_IPA) };
            if piece.is_null() {
                break;
            }
            // SAFETY: espeak returns a NUL-terminated string.
            let piece = unsafe { std::ffi::CStr::from_ptr(piece) }.to_string_lossy();
            let piece = piece.trim();
            if !piece.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(piece);
            }
        }
        out
    }
}

fn path_cstring(path: &Path) -> Result<CString, TtsError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| TtsError::DataMissing {
        path: path.to_path_buf(),
    })
}
