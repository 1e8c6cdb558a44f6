//! The neural voices (Piper en_US-joe-medium for English, Kokoro for Mandarin) against
//! espeak-ng: how well the gateway's own recognizer understands each, at 16 kHz and after the
//! G.711 8 kHz path callers hear; the fallback to espeak-ng; the prompt cache; and the
//! synthesis figures (printed).
//!
//! Needs `frontline models install` (scripts/setup.sh runs it); without the Piper or Kokoro
//! files those tests say so and skip, like the other model tests.

mod common;

use common::*;
use frontline::media::g711::G711;
use frontline::media::resample::resample_all;
use frontline::speech::models::ModelDir;
use frontline::speech::tts::{EnglishVoice, KokoroConfig, Lang, MandarinVoice, PiperConfig, ReplyPace, Tts, TtsConfig, TtsError};
use std::path::Path;
use std::time::{Duration, Instant};

/// Lines of the kind the bot says. No numbers: whisper writes "forty two" as "42", and the
/// WER would measure number formatting instead of how clearly the voice speaks.
const SENTENCES: [&str; 6] = [
    "Thank you for calling. How can I help you today?",
    "Your payment has been received and your account is up to date.",
    "Your next bill is due at the end of the month.",
    "I can help you change your plan or report a problem with your service.",
    "Please say yes to confirm, or no to cancel.",
    "Let me connect you with a colleague who can help.",
];

/// A typical two-sentence reply for the speed figures; `{}` differs per run so that no
/// sentence comes from the cache.
fn reply(run: usize) -> String {
    let name = ["Alice", "Robert", "Maria", "Daniel"][run % 4];
    format!(
        "Thanks {name}, your payment has been received and your account is up to date. \
         I can help you change your plan or report a problem with your service, {name}."
    )
}

fn models() -> ModelDir {
    ModelDir::new(models_dir())
}

fn config(voice: EnglishVoice, piper: PiperConfig) -> TtsConfig {
    TtsConfig {
        rate_wpm: Some(frontline::config::Config::default().tts.rate_wpm),
        english_voice: voice,
        piper: Some(piper),
        ..TtsConfig::from_install_dir(&models().espeak_dir())
    }
}

/// espeak-ng alone (English and Mandarin).
fn espeak() -> Tts {
    Tts::new(config(EnglishVoice::Espeak, models().piper_config(1))).expect("espeak-ng installed: run `frontline models install`")
}

/// Piper for English, or `None` (reason printed) when its files are not installed.
fn piper() -> Option<Tts> {
    let cfg = models().piper_config(1);
    if let Err(e) = cfg.check_files() {
        eprintln!("skipping Piper test: {e}");
        return None;
    }
    let tts = Tts::new(config(EnglishVoice::Piper, cfg)).expect("Piper voice loads");
    assert!(tts.piper().is_some(), "installed Piper voice fell back to espeak: see the warning above");
    Some(tts)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// All sentences, each followed by half a second of silence, as one 16 kHz clip.
fn speak_all(rt: &tokio::runtime::Runtime, tts: &Tts) -> Vec<i16> {
    let mut clip = Vec::new();
    for s in SENTENCES {
        clip.extend(rt.block_on(tts.synthesize(s, Lang::En)).unwrap());
        clip.extend(std::iter::repeat_n(0i16, 8000));
    }
    clip
}

/// What a caller hears: 16 kHz → 8 kHz → G.711 µ-law → back, with the gateway's own
/// resampler and codec.
fn through_g711(pcm_16k: &[i16]) -> Vec<i16> {
    let narrow = resample_all(pcm_16k, 16_000, 8_000);
    let (mut bytes, mut decoded) = (Vec::new(), Vec::new());
    G711::Ulaw.encode(&narrow, &mut bytes);
    G711::Ulaw.decode(&bytes, &mut decoded);
    resample_all(&decoded, 8_000, 16_000)
}

fn wer_of(clip: &[i16], dir: &Path, name: &str) -> (f64, String) {
    let wav = dir.join(format!("{name}.wav"));
    frontline::media::wav::write_16k_mono(&wav, clip).unwrap();
    let heard = transcribe_recording(&wav, "en");
    (word_error_rate(&SENTENCES.join(" "), &heard), heard)
}

#[test]
fn piper_is_understood_at_16k_and_through_g711_better_than_espeak() {
    let Some(piper) = piper() else { return };
    let rt = runtime();
    let dir = temp_dir("voice-wer-");
    let mut wers = Vec::new();
    for (voice, tts) in [("piper", &piper), ("espeak", &espeak())] {
        let clip = speak_all(&rt, tts);
        for (path, audio) in [("16k", clip.clone()), ("g711", through_g711(&clip))] {
            let (wer, heard) = wer_of(&audio, dir.path(), &format!("{voice}-{path}"));
            eprintln!("WER {voice} {path}: {:.1}%  heard: {heard}", wer * 100.0);
            wers.push(((voice, path), wer));
        }
    }
    let wer = |voice, path| wers.iter().find(|(k, _)| *k == (voice, path)).unwrap().1;
    assert!(wer("piper", "16k") <= 0.05, "{wers:?}");
    assert!(wer("piper", "g711") <= 0.05, "{wers:?}");
    assert!(wer("piper", "g711") <= wer("espeak", "g711"), "the neural voice should not be harder to understand: {wers:?}");
}

#[test]
fn english_falls_back_to_espeak_when_piper_is_not_configured_or_installed() {
    let rt = runtime();
    let missing = PiperConfig {
        model_path: "/nonexistent/piper/en_US-joe-medium.onnx".into(),
        onnxruntime_path: models().onnxruntime_lib(),
        threads: 1,
    };
    // "auto" without the files: espeak speaks, and says so in its cache identity.
    let auto = Tts::new(config(EnglishVoice::Auto, missing.clone())).unwrap();
    assert!(auto.piper().is_none());
    assert!(auto.voice_id(Lang::En).starts_with("espeak:"), "{}", auto.voice_id(Lang::En));
    let pcm = rt.block_on(auto.synthesize("Please hold the line.", Lang::En)).unwrap();
    assert!(pcm.len() > 8000, "{} samples", pcm.len());

    // "piper" required but missing: a startup error naming the file and the fix.
    let err = Tts::new(config(EnglishVoice::Piper, missing)).unwrap_err();
    assert!(matches!(err, TtsError::Piper(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/piper/en_US-joe-medium.onnx") && msg.contains("frontline models install"), "{msg}");

    // Installed but unloadable (a corrupt model): espeak stands in rather than failing startup.
    let dir = temp_dir("voice-corrupt-");
    let model = dir.path().join("en_US-joe-medium.onnx");
    std::fs::write(&model, b"not an onnx model").unwrap();
    let json = models().piper_config(1).config_path();
    if json.is_file() && models().onnxruntime_lib().is_file() {
        std::fs::copy(&json, dir.path().join("en_US-joe-medium.onnx.json")).unwrap();
        let corrupt = PiperConfig { model_path: model, onnxruntime_path: models().onnxruntime_lib(), threads: 1 };
        let tts = Tts::new(config(EnglishVoice::Piper, corrupt)).unwrap();
        assert!(tts.piper().is_none());
        assert!(rt.block_on(tts.synthesize("Goodbye.", Lang::En)).unwrap().len() > 4000);
    }

    // Installed and loaded, but synthesis fails (ids the model has no embedding for): the
    // sentence is spoken by espeak instead.
    if models().piper_config(1).is_installed() {
        let dir = temp_dir("voice-badids-");
        let model = dir.path().join("en_US-joe-medium.onnx");
        std::os::unix::fs::symlink(models().piper_voice(), &model).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(models().piper_config(1).config_path()).unwrap()).unwrap();
        for (symbol, ids) in json["phoneme_id_map"].as_object_mut().unwrap() {
            if !["_", "^", "$"].contains(&symbol.as_str()) {
                *ids = serde_json::json!([100_000]);
            }
        }
        std::fs::write(dir.path().join("en_US-joe-medium.onnx.json"), json.to_string()).unwrap();
        let failing = PiperConfig { model_path: model, onnxruntime_path: models().onnxruntime_lib(), threads: 1 };
        let tts = Tts::new(config(EnglishVoice::Piper, failing)).unwrap();
        assert!(tts.piper().is_some(), "the model itself loads");
        let text = "Please hold the line.";
        let fallback = rt.block_on(tts.synthesize(text, Lang::En)).unwrap();
        let espeak_pcm = rt.block_on(espeak().synthesize(text, Lang::En)).unwrap();
        let ratio = fallback.len() as f64 / espeak_pcm.len() as f64;
        assert!((0.98..=1.02).contains(&ratio), "fallback {} vs espeak {} samples", fallback.len(), espeak_pcm.len());
    }

    // Mandarin is espeak's whatever the English voice.
    if let Some(piper) = piper() {
        assert!(piper.voice_id(Lang::Zh).starts_with("espeak:cmn"), "{}", piper.voice_id(Lang::Zh));
        assert!(piper.voice_id(Lang::En).starts_with("piper:en_US-joe-medium"));
        let zh = rt.block_on(piper.synthesize("请稍等。", Lang::Zh)).unwrap();
        assert!(zh.len() > 4000, "{} samples", zh.len());
    }
}

/// A restart reads the lines rendered before from disk instead of synthesizing them again, and
/// they sound exactly as they did; another voice renders its own.
#[test]
fn lines_rendered_ahead_are_read_back_from_disk_at_the_next_start() {
    let rt = runtime();
    let dir = temp_dir("tts-disk-");
    let cache_dir = dir.path().join("tts-cache");
    let with_disk = |voice: EnglishVoice| Tts::new(TtsConfig { disk_cache: Some(cache_dir.clone()), ..config(voice, models().piper_config(1)) });
    let lines = [(Lang::En, "Thanks for waiting."), (Lang::Zh, "感谢您的耐心等待。")];

    let first = with_disk(EnglishVoice::Auto).expect("voices load");
    let rendered = rt.block_on(first.prewarm(&lines, false, |_, _| {}));
    assert_eq!((rendered.synthesized, rendered.from_disk), (2, 0), "{rendered:?}");
    let audio: Vec<Vec<i16>> = lines.iter().map(|&(lang, text)| rt.block_on(first.synthesize(text, lang)).unwrap()).collect();

    // The next start: same voices, nothing synthesized.
    let mut seen = Vec::new();
    let again = with_disk(EnglishVoice::Auto).expect("voices load");
    let read = rt.block_on(again.prewarm(&lines, false, |done, all| seen.push((done, all))));
    assert_eq!((read.synthesized, read.from_disk), (0, 2), "{read:?}");
    assert_eq!(seen.last(), Some(&(2, 2)), "progress ends at all of them: {seen:?}");
    for (&(lang, text), before) in lines.iter().zip(&audio) {
        assert_eq!(&rt.block_on(again.synthesize(text, lang)).unwrap(), before, "{text}: not the audio rendered before");
    }

    // espeak for English is another voice: its English line is rendered anew.
    let espeak_start = with_disk(EnglishVoice::Espeak).expect("espeak loads");
    let other = rt.block_on(espeak_start.prewarm(&lines, false, |_, _| {}));
    if first.piper().is_some() {
        assert_eq!((other.synthesized, other.from_disk), (1, 1), "{other:?}");
    }
}

#[test]
fn prewarmed_prompts_play_from_the_cache_at_once_and_unchanged() {
    let rt = runtime();
    let tts = piper().unwrap_or_else(espeak);
    let prompts = [(Lang::En, "One moment, please."), (Lang::Zh, "请稍等。")];
    let t = Instant::now();
    let done = rt.block_on(tts.prewarm(&prompts, false, |_, _| {}));
    eprintln!("prewarm of {} prompts ({}): {:?}", done.synthesized, tts.voice_id(Lang::En), t.elapsed());
    let (lines, samples, hits_before, _) = tts.cache_stats();
    assert!(lines >= 2 && samples > 16_000, "{lines} lines, {samples} samples");

    for (lang, text) in prompts {
        let first = rt.block_on(tts.synthesize(text, lang)).unwrap();
        // The call path: a reply streamed sentence by sentence.
        let t = Instant::now();
        let mut chunks = tts.synthesize_stream(text, lang, &ReplyPace::new());
        let chunk = rt.block_on(chunks.recv()).unwrap().unwrap();
        let took = t.elapsed();
        eprintln!("cached {lang} prompt {text:?}: first chunk in {took:?}");
        assert!(took < Duration::from_millis(5), "{took:?}: not served from the cache");
        assert_eq!(chunk.pcm_16k, first, "cached audio differs");
        assert!(rt.block_on(chunks.recv()).is_none());
    }
    assert!(tts.cache_stats().2 >= hits_before + 4);

    // A line said for the first time is cached after it: the second time is instant too.
    let line = "Your appointment is confirmed for Tuesday.";
    let t = Instant::now();
    let once = rt.block_on(tts.synthesize(line, Lang::En)).unwrap();
    let cold = t.elapsed();
    let t = Instant::now();
    let twice = rt.block_on(tts.synthesize(line, Lang::En)).unwrap();
    let warm = t.elapsed();
    eprintln!("uncached line: {cold:?}, then {warm:?}");
    assert_eq!(once, twice);
    assert!(warm < Duration::from_millis(5) && warm < cold, "{warm:?} vs {cold:?}");
}

/// The figures for the report (printed; the machine is shared, so they are noisy): model load,
/// memory added, synthesis time and real-time factor of a typical reply, first-chunk latency.
#[test]
fn reports_piper_speed_and_memory() {
    let rss_before = rss_kb();
    let t = Instant::now();
    let Some(piper) = piper() else { return };
    let load = t.elapsed();
    let rss_after = rss_kb();
    let rt = runtime();
    let voice = piper.piper().unwrap();
    eprintln!(
        "piper load: {} ms (model, this handle {:?}); RSS {} MB -> {} MB",
        voice.load_ms,
        load,
        rss_before / 1024,
        rss_after / 1024
    );
    rt.block_on(piper.synthesize("Warm up.", Lang::En)).unwrap();
    let espeak = espeak();
    for (name, tts) in [("piper", &piper), ("espeak", &espeak)] {
        let runs = 3;
        let (mut wall, mut audio, mut first) = (0.0, 0.0, 0.0);
        for i in 0..runs {
            let text = reply(i);
            let t = Instant::now();
            let mut chunks = tts.synthesize_stream(&text, Lang::En, &ReplyPace::new());
            let mut got_first = false;
            while let Some(chunk) = rt.block_on(chunks.recv()) {
                if !got_first {
                    first += t.elapsed().as_secs_f64();
                    got_first = true;
                }
                audio += chunk.unwrap().pcm_16k.len() as f64 / 16_000.0;
            }
            wall += t.elapsed().as_secs_f64();
        }
        let n = runs as f64;
        eprintln!(
            "{name}: reply of {:.2} s audio synthesized in {:.0} ms (RTF {:.3}), first chunk after {:.0} ms",
            audio / n,
            wall * 1000.0 / n,
            wall / audio,
            first * 1000.0 / n
        );
        assert!(wall / audio < 1.0, "{name} slower than real time: RTF {:.2}", wall / audio);
    }
}

/// Peak memory of `frontline say` with each voice, each in a fresh process: what loading the
/// Piper voice adds to a gateway (the in-process figure above is 0 once another test loaded it).
#[test]
fn reports_memory_added_by_the_piper_voice() {
    if !models().piper_config(1).is_installed() {
        eprintln!("skipping: Piper voice not installed");
        return;
    }
    let dir = temp_dir("voice-rss-");
    let mut peaks = Vec::new();
    for voice in ["espeak", "piper"] {
        let mut child = std::process::Command::new(frontline_bin())
            .args(["say", "--voice", voice, "--models"])
            .arg(models_dir())
            .arg("-o")
            .arg(dir.path().join(format!("{voice}.wav")))
            .arg("Thank you for calling. How can I help you today?")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // VmHWM is the child's own high-water mark (getrusage's maxrss would include this
        // test process, which the child was spawned from); sampled until the child exits.
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak_kb = 0;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            peak_kb = peak_kb.max(status_kb(&status_file, "VmHWM:"));
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(status.success(), "frontline say --voice {voice} failed");
        peaks.push((voice, peak_kb));
    }
    eprintln!("peak RSS of `frontline say`: {peaks:?} (KB); Piper adds {} MB", (peaks[1].1 - peaks[0].1) / 1024);
    assert!(peaks[1].1 > peaks[0].1);
}

fn rss_kb() -> u64 {
    status_kb("/proc/self/status", "VmRSS:")
}

/// A "Key:   123 kB" line of a /proc status file, in KB (0 when unreadable).
fn status_kb(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Mandarin spoken by `voice`; Kokoro with the configured speaker.
fn mandarin_config(voice: MandarinVoice, kokoro: KokoroConfig) -> TtsConfig {
    TtsConfig { mandarin_voice: voice, kokoro: Some(kokoro), ..config(EnglishVoice::Espeak, models().piper_config(1)) }
}

fn default_kokoro() -> KokoroConfig {
    frontline::config::Config::default().tts.kokoro(&models())
}

/// Kokoro for Mandarin, or `None` (reason printed) when its files are not installed.
fn kokoro() -> Option<Tts> {
    let cfg = default_kokoro();
    if let Err(e) = cfg.check_files() {
        eprintln!("skipping Kokoro test: {e}");
        return None;
    }
    let tts = Tts::new(mandarin_config(MandarinVoice::Kokoro, cfg)).expect("Kokoro voice loads");
    assert!(tts.kokoro().is_some(), "installed Kokoro voice fell back to espeak: see the warning above");
    Some(tts)
}

/// Bot lines a Mandarin caller hears (the first is issue 14's smoke-test sentence), one with an
/// amount written in digits.
const MANDARIN_LINES: [&str; 3] = ["好的，正在为您转接人工客服，请稍候。", "您的话费余额是42元。还有什么可以帮您？", "很抱歉没能帮到您，我为您转接人工客服。"];

/// A caller on a G.711 line understands the neural Mandarin voice: whisper, standing in for
/// the caller's ear, reads the lines back through 8 kHz µ-law with few character errors, and
/// with fewer than espeak-ng's. The bar (20 %) is a regression guard, not issue 14's 5 %
/// target: `frontline bench zh-voice` measures that on every playbook line (docs/benchmarks.md);
/// a broken G2P or symbol table reads back as 60-90 %, like espeak-ng.
#[test]
fn kokoro_mandarin_is_understood_through_g711_better_than_espeak() {
    let Some(kokoro) = kokoro() else { return };
    let espeak = Tts::new(mandarin_config(MandarinVoice::Espeak, default_kokoro())).unwrap();
    let rt = runtime();
    let dir = temp_dir("voice-cer-");
    let mut cers = Vec::new();
    for (voice, tts) in [("kokoro", &kokoro), ("espeak", &espeak)] {
        let mut total = frontline::speech::score::ErrorCount::default();
        for (i, line) in MANDARIN_LINES.iter().enumerate() {
            let pcm = rt.block_on(tts.synthesize(line, Lang::Zh)).unwrap();
            assert!(pcm.len() > 16_000, "{voice}: {} samples for {line}", pcm.len());
            let wav = dir.path().join(format!("{voice}-{i}.wav"));
            frontline::media::wav::write_16k_mono(&wav, &through_g711(&pcm)).unwrap();
            let heard = transcribe_recording(&wav, "zh");
            let c = frontline::bench::wer::zh_cer(line, &heard);
            eprintln!("{voice}: {}/{} wrong: {line} → {heard}", c.edits, c.reference_len);
            total.add(c);
        }
        cers.push((voice, total.rate()));
    }
    eprintln!("pooled CER through G.711: {cers:?}");
    assert!(cers[0].1 <= 0.20, "Kokoro's Mandarin is hard to understand through G.711: {cers:?}");
    assert!(cers[0].1 < cers[1].1, "Kokoro should be clearer than espeak-ng: {cers:?}");
}

/// Without the Kokoro files, "auto" speaks Mandarin with espeak-ng and says so in the cache
/// identity; "kokoro" required but missing is a startup error naming the file.
#[test]
fn mandarin_falls_back_to_espeak_when_kokoro_is_not_installed() {
    let missing = KokoroConfig { model_path: "/nonexistent/kokoro/kokoro-v1.0.int8.onnx".into(), ..default_kokoro() };
    let auto = Tts::new(mandarin_config(MandarinVoice::Auto, missing.clone())).unwrap();
    assert!(auto.kokoro().is_none());
    assert!(auto.voice_id(Lang::Zh).starts_with("espeak:cmn"), "{}", auto.voice_id(Lang::Zh));
    let pcm = runtime().block_on(auto.synthesize("请稍等。", Lang::Zh)).unwrap();
    assert!(pcm.len() > 4000, "{} samples", pcm.len());
    let err = Tts::new(mandarin_config(MandarinVoice::Kokoro, missing)).unwrap_err();
    assert!(matches!(err, TtsError::Kokoro(_)), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/kokoro/kokoro-v1.0.int8.onnx"), "{err}");
}
