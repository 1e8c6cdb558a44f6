//! Latency and capacity of AI calls: real sipp callers against a real gateway, timed from
//! outside by a packet capture on loopback (the gateway's own turn log is read alongside, for
//! the per-stage breakdown).

use crate::bench::gateway::{Gateway, LoggedTurn, RssSampler};
use crate::bench::pcap::udp_datagrams;
use crate::bench::plot::{bars_svg, curve_svg, Bars, Curve};
use crate::bench::report::{ms, Section, Table};
use crate::bench::sipp::{fill_turns, start_call, turn_block, write_ulaw, TURNS_SCENARIO};
use crate::bench::stats::Summary;
use crate::bench::turns::{speech_span, wire_turns, WireTurn};
use crate::bench::requests::requests;
use crate::bench::{free_port_block, free_udp_port, BenchEnv};
use crate::speech::models::ModelDir;
use crate::speech::tts::{EnglishVoice, Lang, MandarinVoice, Tts, TtsConfig};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Issue 7's targets (ms).
const P50_TARGET_MS: f64 = 500.0;
const P95_TARGET_MS: f64 = 800.0;
const CAPACITY_P95_MS: f64 = 1500.0;
/// Where the capacity ramp stops if no step has missed by then.
const MAX_STEP: usize = 40;
/// The Kokoro speaker the latency bench's Mandarin callers speak with: not the bot's.
const CALLER_KOKORO_VOICE: &str = "jf_alpha";
/// The capacity bench's callers speak these, in turn: questions the playbook answers itself (en_agent and
/// en_cancel would hand the call to a person and end the AI turn-taking).
const CALLER_FIXTURES: [&str; 2] = ["en_balance.wav", "en_data.wav"];

/// A caller's utterance as sent: 8 kHz PCMU made with the gateway's own resampler and codec.
struct CallerAudio {
    name: String,
    ulaw: PathBuf,
    len_ms: u64,
}

fn prepare_audio(env: &BenchEnv, work: &Path) -> Result<Vec<CallerAudio>> {
    CALLER_FIXTURES
        .iter()
        .map(|name| {
            let wav = env.repo.join("audio-fixtures").join(name);
            let pcm16 = crate::media::wav::read_16k_mono(&wav)?;
            let path = work.join(name).with_extension("ulaw");
            let pcm8 = write_ulaw(&pcm16, &path)?;
            speech_span(&pcm8, 8000).with_context(|| format!("{}: no speech found", wav.display()))?;
            Ok(CallerAudio { name: name.to_string(), ulaw: path, len_ms: pcm8.len() as u64 / 8 })
        })
        .collect()
}

/// tcpdump on loopback for the gateway's RTP range, until stopped.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(file: &Path, ports: (u16, u16)) -> Result<Capture> {
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-s", "256", "-w"])
            .arg(file)
            .arg(format!("udp and portrange {}-{}", ports.0, ports.1))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start tcpdump (scripts/setup.sh installs it; capturing needs root)")?;
        // tcpdump says "listening on lo" once armed; anything earlier would be lost.
        let mut err = BufReader::new(child.stderr.take().context("tcpdump stderr")?);
        let mut line = String::new();
        err.read_line(&mut line)?;
        if !line.contains("listening") {
            bail!("tcpdump did not start capturing: {line}");
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Ok(Capture { child, file: file.to_path_buf() })
    }

    fn finish(mut self) -> Result<Vec<crate::bench::pcap::Datagram>> {
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait()?;
        let bytes = std::fs::read(&self.file).with_context(|| format!("reading {}", self.file.display()))?;
        Ok(udp_datagrams(&bytes).with_context(|| format!("parsing {}", self.file.display()))?)
    }
}

/// What one step (N concurrent calls) produced.
struct StepResult {
    calls: usize,
    failed_calls: usize,
    wire: Vec<WireTurn>,
    logged: Vec<LoggedTurn>,
    rss_before_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
}

/// Places `calls` concurrent calls of `turns` turns each, their starts spread over one turn
/// period so that utterances end at different moments (as real callers' do).
fn run_step(env: &BenchEnv, gw: &Gateway, audio: &[CallerAudio], calls: usize, turns: usize, work: &Path) -> Result<StepResult> {
    let step_dir = work.join(format!("calls-{calls}"));
    std::fs::create_dir_all(&step_dir).with_context(|| format!("creating {}", step_dir.display()))?;
    let reply_ms = env.reply_ms;
    let mut period = 0;
    let mut blocks = String::new();
    for t in 0..turns {
        let a = &audio[t % audio.len()];
        blocks.push_str(&turn_block(&a.ulaw, 0, a.len_ms, reply_ms));
        period += a.len_ms + reply_ms;
    }
    let template = std::fs::read_to_string(env.repo.join(TURNS_SCENARIO))?;
    let scenario = step_dir.join("uac_turns.xml");
    // A number of its own per caller (sipp fills in its process id): on one number, every
    // call after the first is a repeat caller to triage, and one that asks about a topic an
    // earlier call did is handed over as a repeat contact instead of answered.
    std::fs::write(&scenario, fill_turns(&template, "bench-[pid]", env.lead_ms, &blocks)?)?;

    let capture = Capture::start(&step_dir.join("rtp.pcap"), gw.rtp_ports)?;
    let log_from = gw.log_len();
    let rss_before = gw.rss_kib();
    let sampler = RssSampler::start(gw.pid, Duration::from_millis(200));
    let stagger = Duration::from_millis(audio[0].len_ms + reply_ms) / calls.max(1) as u32;
    let mut children = Vec::new();
    for i in 0..calls {
        if i > 0 {
            std::thread::sleep(stagger);
        }
        let dir = step_dir.join(format!("call-{i}"));
        std::fs::create_dir_all(&dir)?;
        children.push(start_call(&scenario, gw.sip_port, free_udp_port(), free_port_block(4), &dir)?);
    }
    let deadline = Instant::now() + Duration::from_millis(env.lead_ms + period + 30_000);
    let mut failed = 0;
    for c in &mut children {
        loop {
            if let Some(status) = c.child.try_wait()? {
                if !status.success() {
                    failed += 1;
                    eprintln!("bench: sipp call on media port {} failed ({status}); see {}", c.media_port, c.dir.display());
                }
                break;
            }
            if Instant::now() > deadline {
                let _ = c.child.kill();
                let _ = c.child.wait();
                failed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let rss_peak = sampler.finish().into_iter().map(|(_, kib)| kib).chain(rss_before).max();
    let datagrams = capture.finish()?;
    let wire = wire_turns(&datagrams, gw.rtp_ports.0..=gw.rtp_ports.1);
    // Give the gateway a moment to write the last calls' turn lines.
    std::thread::sleep(Duration::from_millis(500));
    gw.save_log_since(log_from, &step_dir.join("gateway.log"));
    Ok(StepResult {
        calls,
        failed_calls: failed,
        wire,
        logged: gw.turns_since(log_from),
        rss_before_kib: rss_before,
        rss_peak_kib: rss_peak,
    })
}

fn start_gateway(env: &BenchEnv) -> Result<Gateway> {
    match env.gateway {
        Some((sip, rtp)) => Ok(Gateway::external(sip, rtp)),
        None => {
            let rtp_min = free_port_block(200);
            Gateway::start(&env.exe, &env.repo.join("models"), free_udp_port(), (rtp_min, rtp_min + 199), &env.serve_args)
        }
    }
}

fn latencies(wire: &[WireTurn]) -> Vec<f64> {
    wire.iter().filter_map(WireTurn::latency_ms).collect()
}

/// The latency bench's callers in one language: requests made at run time
/// ([`super::requests`]), spoken by a voice other than the bot's, as PCMU with 0.3 s of
/// silence before and 1 s after, as a caller's phone would send it.
fn prepare_requests(env: &BenchEnv, work: &Path, lang: Lang, count: usize, offset: usize) -> Result<Vec<CallerAudio>> {
    let config = crate::config::Config::default();
    let dir = ModelDir::new(env.repo.join("models"));
    let tts = Tts::new(TtsConfig {
        rate_wpm: Some(config.tts.rate_wpm),
        english_voice: EnglishVoice::Espeak,
        mandarin_voice: MandarinVoice::Kokoro,
        kokoro: Some(dir.kokoro_config(CALLER_KOKORO_VOICE, config.tts.kokoro_speed, config.tts.kokoro_threads)),
        ..TtsConfig::from_install_dir(&dir.espeak_dir())
    })?;
    if lang == Lang::Zh && tts.kokoro().is_none() {
        bail!("the Kokoro voice is not installed: run `frontline models install`");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    requests(lang, count, offset)
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let speech = rt.block_on(tts.synthesize(&text, lang))?;
            let mut pcm16 = vec![0i16; 16 * 300];
            pcm16.extend_from_slice(&speech);
            pcm16.extend(std::iter::repeat_n(0i16, 16 * 1000));
            let path = work.join(format!("{}-{i:02}.ulaw", lang.as_str()));
            let pcm8 = write_ulaw(&pcm16, &path)?;
            speech_span(&pcm8, 8000).with_context(|| format!("{text:?}: no speech synthesized"))?;
            Ok(CallerAudio { name: text, ulaw: path, len_ms: pcm8.len() as u64 / 8 })
        })
        .collect()
}

/// `frontline bench latency`: callers taking turns, timed on the wire, in each language.
pub fn latency(env: &BenchEnv) -> Result<Section> {
    let work = env.work_dir("latency")?;
    let gw = start_gateway(env)?;
    // Several short calls rather than one long one: a caller who keeps repeating questions
    // (misrecognized under load) is escalated and hung up on by the playbook, which would end
    // every later turn with it.
    let (calls, turns_per_call) = if env.quick { (2, 2) } else { (8, 3) };
    let requests_per_language = calls * turns_per_call;
    // A new place in the cycle of templates and slots each run.
    let offset = rand::random::<u16>() as usize;
    let mut table = Table::new(&["language", "stage (ms after the end of the caller's speech)", "n", "p50", "p95", "max", "target"]);
    let mut bars = Bars {
        title: "Turn latency by stage and language (1 call at a time)",
        y_label: "ms after end of speech",
        categories: vec![],
        series: vec![("p50".into(), vec![]), ("p95".into(), vec![])],
        targets: vec![("p50 target 500 ms".into(), P50_TARGET_MS), ("p95 target 800 ms".into(), P95_TARGET_MS)],
    };
    let mut notes = Vec::new();
    for lang in [Lang::En, Lang::Zh] {
        let audio = prepare_requests(env, &work, lang, requests_per_language, offset)?;
        let mut step = StepResult { calls: 0, failed_calls: 0, wire: vec![], logged: vec![], rss_before_kib: None, rss_peak_kib: None };
        for (i, call_audio) in audio.chunks(turns_per_call).enumerate() {
            let one = run_step(env, &gw, call_audio, 1, turns_per_call, &work.join(format!("{}-call-{i}", lang.as_str())))?;
            step.calls += 1;
            step.failed_calls += one.failed_calls;
            step.wire.extend(one.wire);
            step.logged.extend(one.logged);
        }
        let wire_ms = latencies(&step.wire);
        let stage = |f: fn(&LoggedTurn) -> f64| step.logged.iter().map(f).collect::<Vec<f64>>();
        let rows: Vec<(&str, &str, Vec<f64>, &str)> = vec![
            ("transcript ready (gateway log)", "transcript", stage(|t| t.transcript_ms), ""),
            ("first brain reply (gateway log)", "brain", stage(|t| t.brain_ms), ""),
            ("first synthesized audio (gateway log)", "tts", stage(|t| t.tts_ms), ""),
            ("first RTP packet out (gateway log)", "first RTP (log)", stage(|t| t.first_rtp_ms), ""),
            ("**first reply RTP on the wire (capture)**", "on the wire", wire_ms.clone(), "p50 ≤ 500, p95 ≤ 800"),
        ];
        for (label, short, values, target) in rows {
            let Some(s) = Summary::of(&values) else {
                table.row(vec![lang.as_str().into(), label.into(), "0".into(), "-".into(), "-".into(), "-".into(), target.into()]);
                continue;
            };
            table.row(vec![lang.as_str().into(), label.into(), s.n.to_string(), ms(s.p50), ms(s.p95), ms(s.max), target.into()]);
            bars.categories.push(format!("{} {short}", lang.as_str()));
            bars.series[0].1.push(s.p50);
            bars.series[1].1.push(s.p95);
        }
        let verdict = match Summary::of(&wire_ms) {
            Some(s) => format!(
                "p50 {} ms ({}), p95 {} ms ({})",
                ms(s.p50),
                if s.p50 <= P50_TARGET_MS { "meets ≤ 500" } else { "misses ≤ 500" },
                ms(s.p95),
                if s.p95 <= P95_TARGET_MS { "meets ≤ 800" } else { "misses ≤ 800" }
            ),
            None => "no reply was seen on the wire".into(),
        };
        let heard: Vec<String> = step.logged.iter().take(4).map(|t| format!("{:?}", t.heard)).collect();
        notes.push(format!(
            "**{}**: {} calls one after another, {turns_per_call} turns each ({} requests, {} answered on the wire, {} failed calls), spoken by {}. Result on the wire: {verdict}. First requests: {}; the gateway heard: {}.",
            lang.as_str(),
            step.calls,
            audio.len(),
            wire_ms.len(),
            step.failed_calls,
            match lang {
                Lang::En => "espeak-ng".to_string(),
                Lang::Zh => format!("Kokoro {CALLER_KOKORO_VOICE}"),
            },
            audio.iter().take(4).map(|a| format!("{:?}", a.name)).collect::<Vec<_>>().join(", "),
            heard.join(", "),
        ));
    }
    let mut section = Section::new("Turn latency", table);
    section.note(format!(
        "Requests the playbook answers, made at run time from the bench's templates (offset {offset} this run) and spoken \
         by voices other than the bot's, sent by sipp as PCMU. The wire figure runs from the capture time of the caller's \
         last speech packet (20 ms frames louder than -45 dBFS) to the gateway's first speech packet of the next \
         talkspurt; the gateway-log stages start at the end of speech as the gateway's VAD saw it (backdated from the \
         endpointing decision), after its jitter buffer, so the wire figure also contains the network and jitter-buffer \
         delay."
    ));
    for n in notes {
        section.note(n);
    }
    section.plot("latency_by_stage.svg", bars_svg(&bars).map_err(anyhow::Error::msg)?);
    Ok(section)
}

/// `frontline bench capacity`: concurrent calls against p95 turn latency, and memory per call.
pub fn capacity(env: &BenchEnv) -> Result<Section> {
    let work = env.work_dir("capacity")?;
    let audio = prepare_audio(env, &work)?;
    // The default call limit (16) and its per-source share (all the bench's calls come from
    // one address) would answer 503 before the machine runs out of CPU: lift both, so the
    // ramp finds the machine's knee, not the configuration's.
    let gw = match env.gateway {
        Some(_) => start_gateway(env)?,
        None if env.serve_args.iter().any(|a| a == "--config") => start_gateway(env)?,
        None => {
            let config = work.join("capacity.toml");
            std::fs::write(&config, format!("[calls]\nmax_concurrent = {MAX_STEP}\n\n[sip]\nmax_calls_per_source = {MAX_STEP}\n"))?;
            let mut args = vec!["--config".to_string(), config.display().to_string()];
            args.extend(env.serve_args.iter().cloned());
            start_gateway(&BenchEnv { serve_args: args, ..env.clone() })?
        }
    };
    // Past 8, steps of 4, until a step misses (p95 over 1.5 s, or a turn lost).
    let (steps, turns): (Vec<usize>, usize) =
        if env.quick { (vec![1, 2, 4], 2) } else { ([1, 2, 4, 8].into_iter().chain((12..=MAX_STEP).step_by(4)).collect(), 3) };
    let mut table = Table::new(&["concurrent calls", "turns answered", "p50 ms", "p95 ms", "max ms", "failed calls", "RSS before MiB", "RSS peak MiB", "MiB per extra call"]);
    let mut p95s = Vec::new();
    let mut p50s = Vec::new();
    let mut best = None;
    let mut one_call_peak: Option<Option<u64>> = None;
    for &n in &steps {
        let step = run_step(env, &gw, &audio, n, turns, &work)?;
        let lat = latencies(&step.wire);
        let s = Summary::of(&lat);
        // The first call also pays for one-time allocations (whisper and synthesis buffers,
        // thread stacks), so a call's own memory is the growth of the peak beyond one call's.
        let single_peak = *one_call_peak.get_or_insert(step.rss_peak_kib);
        let per_call = match (single_peak, step.rss_peak_kib) {
            (Some(a), Some(b)) if n > 1 => format!("{:.1}", b.saturating_sub(a) as f64 / 1024.0 / (n - 1) as f64),
            _ => "-".into(),
        };
        let mib = |k: Option<u64>| k.map_or("-".into(), |k| format!("{:.0}", k as f64 / 1024.0));
        table.row(vec![
            n.to_string(),
            format!("{}/{}", lat.len(), n * turns),
            s.map_or("-".into(), |s| ms(s.p50)),
            s.map_or("-".into(), |s| ms(s.p95)),
            s.map_or("-".into(), |s| ms(s.max)),
            step.failed_calls.to_string(),
            mib(step.rss_before_kib),
            mib(step.rss_peak_kib),
            per_call,
        ]);
        eprintln!("bench capacity: {n} calls: {:?}", s);
        let Some(s) = s else { break };
        p95s.push((n as f64, s.p95));
        p50s.push((n as f64, s.p50));
        // A call whose turns went unanswered or failed does not count as held.
        if s.p95 <= CAPACITY_P95_MS && lat.len() == n * turns && step.failed_calls == 0 {
            best = Some(n);
        } else if n >= 4 {
            // Past the knee: more calls only take longer. The first steps always run, so a
            // noisy first step still leaves a curve.
            break;
        }
    }
    let mut section = Section::new("Capacity: concurrent AI calls", table);
    section.note(format!(
        "Each call: {turns} turns of English fixtures, {} ms lead for the greeting, {} ms for each reply; call starts \
         spread over one turn period. Latency as in the latency table (capture, end of speech → first reply packet). \
         **Most concurrent calls with p95 ≤ 1.5 s and every turn answered: {}.** Memory per call = (peak RSS with N calls − \
         peak RSS with 1 call) / (N − 1): the first call also pays the one-time allocations.",
        env.lead_ms,
        env.reply_ms,
        best.map_or("none of the steps tried".into(), |n| n.to_string())
    ));
    let curve = Curve {
        title: "Capacity: concurrent calls vs turn latency",
        x_label: "concurrent calls",
        y_label: "turn latency on the wire, ms",
        series: vec![("p95".into(), p95s), ("p50".into(), p50s)],
        targets: vec![("p95 limit 1.5 s".into(), CAPACITY_P95_MS)],
    };
    section.plot("capacity_curve.svg", curve_svg(&curve).map_err(anyhow::Error::msg)?);
    Ok(section)
}
