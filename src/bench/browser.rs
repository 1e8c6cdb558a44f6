//! `frontline bench browser`: browser callers over WebRTC, timed inside the page.
//!
//! Headless Debian chromium opens the caller page (`tests/webrtc/caller.mjs`, "reply" mode)
//! with a speech fixture as its microphone, one call after another. The page notes when its
//! microphone and the bot's audio are audible (Web Audio blocks of 1024 samples, about 21 ms);
//! [`reply_latency_ms`] turns those timelines into the turn latency a browser caller lives
//! with: from the end of their speech to the first reply audio the page plays. Gateway CPU per
//! call comes from /proc, read around each call.

use super::gateway::{proc_cpu_ms, Gateway};
use super::report::{ms, Section, Table};
use super::stats::Summary;
use super::{free_port_block, free_udp_port, BenchEnv};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A pause in the bot's audio at least this long before the reply starts: the end of the
/// greeting (or of a filler) is not taken for the reply's start.
const REPLY_GAP_MS: f64 = 200.0;

/// End of the caller's speech → start of the reply, from the page's loudness timelines (ms,
/// one page clock). The speech end is the last audible microphone block before the caller's
/// words were captioned; the reply starts at the first audible bot block after a pause of at
/// least [`REPLY_GAP_MS`] that comes after that.
pub fn reply_latency_ms(mic_audible: &[f64], bot_audible: &[f64], caller_caption_at: f64) -> Option<f64> {
    let speech_end = mic_audible.iter().copied().filter(|&t| t < caller_caption_at).reduce(f64::max)?;
    let onset = bot_audible
        .windows(2)
        .find(|w| w[1] > speech_end && w[1] - w[0] > REPLY_GAP_MS)
        .map(|w| w[1])
        .or_else(|| bot_audible.iter().copied().find(|&t| t > speech_end))?;
    Some(onset - speech_end)
}

/// [`reply_latency_ms`] from the JSON report `caller.mjs` prints.
pub fn page_reply_latency_ms(page: &Value) -> Option<f64> {
    let times = |key: &str| -> Vec<f64> { page[key].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default() };
    let caption = page["captions"].as_array()?.iter().find(|c| c["speaker"] == "caller")?["at"].as_f64()?;
    reply_latency_ms(&times("mic_audible"), &times("bot_audible"), caption)
}

pub fn browser(env: &BenchEnv) -> Result<Section> {
    let driver = env.repo.join("tests/webrtc/caller.mjs");
    if !Path::new("/usr/bin/chromium").exists() || !env.repo.join("tests/console/node_modules/playwright-core").is_dir() {
        bail!("the browser benchmark needs Debian chromium and playwright-core: run scripts/setup.sh");
    }
    let work = env.work_dir("browser")?;
    // What chromium plays as the microphone: 2 s of quiet while the call connects, the
    // question, then silence (chromium loops the file; the caller must not ask twice).
    let mic = work.join("microphone.wav");
    let sox = Command::new("sox")
        .arg(env.repo.join("audio-fixtures/en_balance.wav"))
        .args(["-r", "48000", "-c", "1", "-b", "16"])
        .arg(&mic)
        .args(["pad", "2", "40"])
        .status()
        .context("running sox")?;
    if !sox.success() {
        bail!("sox could not prepare {}", mic.display());
    }
    let config = work.join("frontline.toml");
    std::fs::write(&config, "[webrtc]\nudp_bind = [\"127.0.0.1:0\"]\n")?;
    let rtp_min = free_port_block(20);
    let mut args = vec!["--config".to_string(), config.display().to_string(), "--language".into(), "en".into()];
    args.extend(env.serve_args.iter().cloned());
    let gw = Gateway::start(&env.exe, &env.repo.join("models"), free_udp_port(), (rtp_min, rtp_min + 19), &args)?;
    let http = gw.http_port().context("the gateway's ready line names no HTTP port")?;
    // The start-up pre-synthesis of fixed prompts runs after "ready"; it is not a call's cost.
    gw.wait_for_log("fixed lines ready", std::time::Duration::from_secs(60));
    let pid = gw.pid.context("the benchmark's own gateway has a pid")?;

    let calls = if env.quick { 2 } else { 6 };
    let (mut latency, mut cpu, mut first_rtp) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = 0;
    for i in 0..calls {
        let out = work.join(format!("call-{i}"));
        std::fs::create_dir_all(&out)?;
        let from = gw.log_len();
        let before = proc_cpu_ms(pid);
        let run = Command::new("node").arg(&driver).arg(format!("http://127.0.0.1:{http}")).arg(&mic).arg(&out).args(["reply", "40000"]).output();
        let after = proc_cpu_ms(pid);
        gw.save_log_since(from, &out.join("gateway.log"));
        let page = match run {
            Ok(o) if o.status.success() => serde_json::from_slice::<Value>(&o.stdout).unwrap_or(Value::Null),
            Ok(o) => {
                eprintln!("bench: browser call {i} failed: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
                failed += 1;
                continue;
            }
            Err(e) => bail!("node {}: {e} (run scripts/setup.sh)", driver.display()),
        };
        match page_reply_latency_ms(&page) {
            Some(l) => latency.push(l),
            None => failed += 1,
        }
        if let (Some(b), Some(a)) = (before, after) {
            cpu.push((a - b) as f64);
        }
        // The spoken turn only: the keypad press gets its own (faster) turn.
        first_rtp.extend(gw.turns_since(from).iter().filter(|t| !t.heard.starts_with("DTMF")).map(|t| t.first_rtp_ms).filter(|v| v.is_finite()));
    }

    let mut table = Table::new(&["measure", "n", "p50", "p95", "max"]);
    let mut row = |label: &str, values: &[f64]| match Summary::of(values) {
        Some(s) => table.row(vec![label.into(), s.n.to_string(), ms(s.p50), ms(s.p95), ms(s.max)]),
        None => table.row(vec![label.into(), "0".into(), "-".into(), "-".into(), "-".into()]),
    };
    row("**reply audio in the browser, ms after the end of the caller's speech (page)**", &latency);
    row("first RTP out, ms after the gateway's end of speech (gateway log)", &first_rtp);
    row("gateway CPU per call, ms (one turn, reply mode: about 11 s)", &cpu);
    let mut section = Section::new("Browser calls (WebRTC)", table);
    section.note(format!(
        "{calls} browser calls one after another ({failed} failed), each: connect, ask \"What is my account balance?\" \
         (the en_balance fixture played as chromium's microphone, echo cancellation, noise suppression and gain control \
         off), hear the reply, press 5, hang up. Opus both ways over loopback ICE (the gateway gathers 127.0.0.1 only). \
         The page's figure includes the browser's capture and jitter buffers and its Web Audio block (about 21 ms); the \
         gateway-log figure starts at the end of speech as the gateway's VAD saw it. CPU is the gateway process's \
         user + system time across the call (whisper, Piper, Opus, SRTP, ICE), read from /proc."
    ));
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_starts_after_a_pause_that_follows_the_callers_speech() {
        // Greeting until 1000, caller speaks 2000-3500, caption at 4200, reply from 4100.
        let mic: Vec<f64> = (0..=75).map(|i| 2000.0 + 20.0 * f64::from(i)).collect();
        let mut bot: Vec<f64> = (0..=50).map(|i| 20.0 * f64::from(i)).collect();
        bot.extend((0..50).map(|i| 4100.0 + 20.0 * f64::from(i)));
        assert_eq!(reply_latency_ms(&mic, &bot, 4200.0), Some(600.0));
        // Microphone blocks after the caption (the caller's echo, a cough) do not move the end.
        let mut late = mic.clone();
        late.push(5000.0);
        assert_eq!(reply_latency_ms(&late, &bot, 4200.0), Some(600.0));
        assert_eq!(reply_latency_ms(&[], &bot, 4200.0), None);
        assert_eq!(reply_latency_ms(&mic, &bot[..40], 4200.0), None, "no bot audio after the speech");
    }

    #[test]
    fn the_page_report_is_read() {
        let page = serde_json::json!({
            "captions": [{"speaker": "bot", "text": "Hello", "at": 500.0}, {"speaker": "caller", "text": "balance?", "at": 3000.0}],
            "mic_audible": [1000.0, 2000.0],
            "bot_audible": [100.0, 2500.0],
        });
        assert_eq!(page_reply_latency_ms(&page), Some(500.0));
    }
}
