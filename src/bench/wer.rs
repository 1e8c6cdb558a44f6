//! Recognition accuracy through the telephone path: the same whisper model on 16 kHz
//! originals and on the same audio after the path a call takes (down to 8 kHz, G.711 µ-law
//! out and back, the driver's 8→16 kHz resampler frame by frame), in-process with the
//! gateway's own codec and resampler code.

use crate::bench::plot::{bars_svg, Bars};
use crate::bench::report::{Section, Table};
use crate::bench::BenchEnv;
use crate::config::Config;
use crate::media::g711::G711;
use crate::media::resample::{resample_all, Resampler};
use crate::speech::models::{self, ModelDir, WhisperModel};
use crate::speech::score::ErrorCount;
use crate::speech::stt::{SttConfig, SttPool};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

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
    for wav in real_wavs {
        let txt = wav.with_extension("txt");
        let reference = std::fs::read_to_string(&txt).with_context(|| format!("{}: run scripts/fetch-real-speech.sh", txt.display()))?;
        let name = wav.file_stem().unwrap_or_default().to_string_lossy().replace("sense_and_sensibility_01_austen_64kb-", "librivox-");
        out.push(Clip { name, wav, language: "en", reference: reference.trim().to_string(), real: true });
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
    let narrow = resample_all(pcm_16k, 16000, 8000);
    let mut wire = Vec::new();
    G711::Ulaw.encode(&narrow, &mut wire);
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

/// `frontline bench wer`.
pub fn wer(env: &BenchEnv) -> Result<Section> {
    let config = Config::default();
    let model: WhisperModel = config.speech.model.parse().map_err(|e| anyhow::anyhow!("speech.model: {e}"))?;
    let path = ModelDir::new(env.repo.join("models")).whisper(model);
    models::check_whisper(&path)?;
    let stt = SttPool::new(SttConfig {
        workers: 1,
        queue: 64,
        threads_per_worker: config.speech.threads_per_worker,
        trim_encoder: config.speech.trim_encoder,
        ..SttConfig::new(path)
    })?;
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
    // (real English WER, synthesized English WER, Mandarin CER), each (16k, 8k)
    let mut pools = [[ErrorCount::default(); 2]; 3];
    for clip in &clips {
        let pcm = crate::media::wav::read_16k_mono(&clip.wav)?;
        let mut counts = [ErrorCount::default(); 2];
        let mut texts = [String::new(), String::new()];
        for (i, audio) in [pcm.clone(), through_telephone_path(&pcm)].into_iter().enumerate() {
            let samples = audio.iter().map(|&s| s as f32 / 32768.0).collect();
            let t = rt.block_on(stt.transcribe(samples, Some(clip.language.to_string())))?;
            counts[i] = if clip.language == "zh" { ErrorCount::chars(&clip.reference, &t.text) } else { ErrorCount::words(&clip.reference, &t.text) };
            texts[i] = t.text;
        }
        let pool = if clip.language == "zh" { 2 } else if clip.real { 0 } else { 1 };
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
    for (label, pool) in [("**real English speech (pooled WER)**", 0), ("synthesized English (pooled WER)", 1), ("synthesized Mandarin (pooled CER)", 2)] {
        let [a, b] = pools[pool];
        if a.reference_len == 0 {
            continue;
        }
        let ratio = if a.edits == 0 { if b.edits == 0 { "1.00×".to_string() } else { "∞ (16 kHz perfect)".to_string() } } else { format!("{:.2}×", b.rate() / a.rate()) };
        table.row(vec![label.into(), "".into(), format!("ratio {ratio}"), format!("{:.1} %", 100.0 * a.rate()), format!("{:.1} %", 100.0 * b.rate()), "".into(), "".into()]);
    }
    let [a, b] = pools[0];
    let verdict = if b.edits as f64 <= TARGET_RATIO * a.edits as f64 { "meets" } else { "misses" };
    let mut section = Section::new("Recognition accuracy: 8 kHz G.711 path vs 16 kHz", table);
    section.note(format!(
        "Model: the default `{}` with the gateway's default decoding (trimmed encoder: {}), language given per clip. \
         8 kHz path: the gateway's resampler down to 8 kHz, its µ-law codec out and back, its 8→16 kHz resampler in 20 ms \
         frames. Real speech: jfk.wav and the LibriVox clips from Debian pocketsphinx-testdata with their transcriptions; \
         synthesized: the espeak fixtures (texts from audio-fixtures/README.md). Pooled = total edits / total reference \
         words (or characters). Target (real English): 8 kHz WER ≤ 1.2 × 16 kHz WER: {verdict}.",
        config.speech.model, config.speech.trim_encoder
    ));
    section.plot("wer.svg", bars_svg(&chart).map_err(anyhow::Error::msg)?);
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

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
