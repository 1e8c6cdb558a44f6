//! `frontline bench sip-load`: steps of sipp callers (calls per second × how long each stays)
//! against a real gateway, each step's answered, 503 and failed calls with the gateway's CPU
//! and memory; and with `--soak-minutes N` a steady load for N minutes, memory sampled every
//! 10 s, then two idle minutes: does resident memory come back to where it was before the load
//! (issue 16: within 5%)?
//!
//! Every call says one thing (recognized, answered by the brain, spoken back), so the load is
//! AI calls, not bare signaling. The gateway is configured as behind one trunk (every call
//! comes from 127.0.0.1, so its per-source share is lifted to the whole call limit): steps past
//! `calls.max_concurrent` show its 503s.
//!
//! The sans-IO parts ([`LoadStep`] parsing, [`Outcomes`] from sipp's log, [`memory_verdict`])
//! are unit-tested; the driver needs root (rtp_stream) and sipp.

use crate::bench::gateway::{proc_cpu_ms, Gateway, RssSampler};
use crate::bench::plot::{curve_svg, Curve};
use crate::bench::report::{Section, Table};
use crate::bench::sipp::{fill, write_ulaw};
use crate::bench::{free_port_block, free_udp_port, BenchEnv};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const SCENARIO: &str = "bench/sipp/uac_load.xml";
/// What the load callers say: a question the playbook answers itself, so every call stays
/// with the AI (a hand-over would ring an agent that is not there).
const CALLER_FIXTURE: &str = "en_data.wav";
/// The gateway's call limit in this benchmark (the default, `calls.max_concurrent`).
const MAX_CONCURRENT: usize = 16;
/// How far resident memory may stay above its level before the load (issue 16).
pub const MEMORY_TOLERANCE: f64 = 0.05;
const SOAK_SAMPLE: Duration = Duration::from_secs(10);
const IDLE_AFTER_SOAK: Duration = Duration::from_secs(120);

/// One step: new calls per second, for how long, each call held this long after speaking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStep {
    pub calls_per_second: f64,
    pub seconds: u64,
    pub hold_ms: u64,
}

impl LoadStep {
    /// `RATE/SECONDS/HOLD_S`, e.g. `0.5/60/8`: 0.5 calls a second for 60 s, each held 8 s
    /// after the caller speaks.
    pub fn parse(s: &str) -> Result<LoadStep, String> {
        let parts: Vec<&str> = s.split('/').map(str::trim).collect();
        let [rate, secs, hold] = parts[..] else { return Err(format!("{s:?}: want RATE/SECONDS/HOLD_S, e.g. 0.5/60/8")) };
        let calls_per_second: f64 = rate.parse().map_err(|_| format!("{s:?}: rate {rate:?} is not a number"))?;
        let seconds: u64 = secs.parse().map_err(|_| format!("{s:?}: seconds {secs:?} is not a whole number"))?;
        let hold: u64 = hold.parse().map_err(|_| format!("{s:?}: hold {hold:?} is not a whole number of seconds"))?;
        if !(calls_per_second > 0.0 && calls_per_second <= 100.0) || seconds == 0 {
            return Err(format!("{s:?}: the rate must be in (0, 100] calls a second and the step at least 1 s"));
        }
        Ok(LoadStep { calls_per_second, seconds, hold_ms: hold * 1000 })
    }

    /// Calls the step places.
    pub fn calls(&self) -> u64 {
        (self.calls_per_second * self.seconds as f64).round().max(1.0) as u64
    }

    /// sipp's `-r 1 -rp PERIOD_MS`: one call every period.
    fn period_ms(&self) -> u64 {
        (1000.0 / self.calls_per_second).round().max(1.0) as u64
    }

    /// Calls up at once in the steady state (Little's law), for a call that lasts `call_ms`.
    pub fn offered_concurrency(&self, call_ms: u64) -> f64 {
        self.calls_per_second * call_ms as f64 / 1000.0
    }
}

/// The default steps, each call held `hold_ms` after speaking and lasting `call_ms` in all:
/// below the call limit, at it, and well past it.
pub fn default_steps(quick: bool, call_ms: u64, hold_ms: u64) -> Vec<LoadStep> {
    let call_s = call_ms as f64 / 1000.0;
    // Offered concurrency of half the limit, the limit, and one and a half times it.
    let secs = if quick { 30 } else { 60 };
    [0.5, 1.0, 1.5]
        .into_iter()
        .map(|share| LoadStep { calls_per_second: (share * MAX_CONCURRENT as f64 / call_s * 100.0).round() / 100.0, seconds: secs, hold_ms })
        .collect()
}

/// How the calls of a step ended, from the `<log>` lines of bench/sipp/uac_load.xml.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Outcomes {
    /// Answered, held and hung up with the BYE answered.
    pub completed: u64,
    /// 503 (the gateway was full).
    pub refused: u64,
}

impl Outcomes {
    pub fn from_sipp_log(text: &str) -> Outcomes {
        let count = |word: &str| text.lines().filter(|l| l.trim_start().starts_with(word)).count() as u64;
        Outcomes { completed: count("completed "), refused: count("refused ") }
    }

    /// Calls that neither completed nor got a 503: no answer, another error, a lost BYE.
    pub fn failed(&self, placed: u64) -> u64 {
        placed.saturating_sub(self.completed + self.refused)
    }
}

/// How much resident memory stayed above its level before the load (a fraction), and whether
/// that is within [`MEMORY_TOLERANCE`].
pub fn memory_verdict(before_kib: u64, after_kib: u64) -> (f64, bool) {
    let growth = (after_kib as f64 - before_kib as f64) / before_kib.max(1) as f64;
    (growth, growth <= MEMORY_TOLERANCE)
}

/// The utterance as the callers send it, and its length.
fn caller_audio(env: &BenchEnv, work: &Path) -> Result<(std::path::PathBuf, u64)> {
    let wav = env.repo.join("audio-fixtures").join(CALLER_FIXTURE);
    let pcm16 = crate::media::wav::read_16k_mono(&wav)?;
    let path = work.join("caller.ulaw");
    let pcm8 = write_ulaw(&pcm16, &path)?;
    Ok((path, pcm8.len() as u64 / 8))
}

struct StepRun {
    placed: u64,
    outcomes: Outcomes,
    /// Caller turns the gateway recognized and answered (its "turn" log lines).
    turns_answered: usize,
    cpu_percent: Option<f64>,
    rss: Vec<(Duration, u64)>,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
}

/// Places a step's calls with one sipp process and waits for them all to end.
fn run_step(env: &BenchEnv, gw: &Gateway, step: &LoadStep, audio: &Path, speech_ms: u64, dir: &Path, sample: Duration) -> Result<StepRun> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let template = std::fs::read_to_string(env.repo.join(SCENARIO)).with_context(|| format!("reading {SCENARIO}"))?;
    let scenario = dir.join("uac_load.xml");
    let hold = speech_ms + step.hold_ms;
    let text = fill(&template, &[("LEAD_MS", env.lead_ms.to_string()), ("AUDIO", audio.display().to_string()), ("HOLD_MS", hold.to_string())])
        .map_err(|e| anyhow::anyhow!("{SCENARIO}: {e}"))?;
    std::fs::write(&scenario, text)?;
    let (cpu_before, rss_before, started) = (gw.pid.and_then(proc_cpu_ms), gw.rss_kib(), Instant::now());
    let log_from = gw.log_len();
    let sampler = RssSampler::start(gw.pid, sample);
    let placed = step.calls();
    let mut sipp = Command::new("sipp")
        .arg(format!("127.0.0.1:{}", gw.sip_port))
        .arg("-sf")
        .arg(&scenario)
        .args(["-s", "ivr", "-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &free_port_block(4).to_string()])
        .args(["-r", "1", "-rp", &step.period_ms().to_string(), "-m", &placed.to_string(), "-l", &placed.to_string()])
        .args(["-nostdin", "-trace_logs", "-trace_err"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start sipp (scripts/setup.sh installs sip-tester)")?;
    let deadline = started + Duration::from_secs(step.seconds) + Duration::from_millis(env.lead_ms + hold) + Duration::from_secs(60);
    loop {
        if sipp.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = sipp.kill();
            let _ = sipp.wait();
            eprintln!("bench sip-load: sipp overran its step; see {}", dir.display());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let wall_ms = started.elapsed().as_millis() as f64;
    let cpu_percent = match (cpu_before, gw.pid.and_then(proc_cpu_ms)) {
        (Some(a), Some(b)) => Some((b - a) as f64 / wall_ms * 100.0),
        _ => None,
    };
    let rss = sampler.finish();
    // The gateway ends its side of the last calls (records, buffers) a moment after the BYE.
    std::thread::sleep(Duration::from_secs(2));
    let log = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("uac_load_") && n.ends_with("_logs.log")));
    let outcomes = log.map(|p| Outcomes::from_sipp_log(&std::fs::read_to_string(p).unwrap_or_default())).unwrap_or_default();
    gw.save_log_since(log_from, &dir.join("gateway.log"));
    let turns_answered = gw.turns_since(log_from).iter().filter(|t| !t.heard.trim().is_empty()).count();
    Ok(StepRun { placed, outcomes, turns_answered, cpu_percent, rss, rss_before, rss_after: gw.rss_kib() })
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

/// `frontline bench sip-load`.
pub fn sip_load(env: &BenchEnv, steps: &[LoadStep], soak_minutes: u64) -> Result<Vec<Section>> {
    if env.gateway.is_some() {
        bail!("sip-load reads the gateway's CPU and memory: it starts its own gateway (drop --gateway)");
    }
    let work = env.work_dir("sip-load")?;
    let (audio, speech_ms) = caller_audio(env, &work)?;
    // As behind one trunk: every call comes from 127.0.0.1, so its share is the whole limit.
    let config = work.join("sip-load.toml");
    std::fs::write(
        &config,
        format!("[calls]\nmax_concurrent = {MAX_CONCURRENT}\n\n[sip]\nmax_calls_per_source = {MAX_CONCURRENT}\nmax_attempts_per_second = 100.0\n"),
    )?;
    let mut args = vec!["--config".to_string(), config.display().to_string(), "--language".into(), "en".into()];
    args.extend(env.serve_args.iter().cloned());
    let rtp_min = free_port_block(400);
    let gw = Gateway::start(&env.exe, &env.repo.join("models"), free_udp_port(), (rtp_min, rtp_min + 399), &args)?;
    let rss_start = gw.rss_kib();
    let hold_default = env.reply_ms;
    let call_ms = |s: &LoadStep| env.lead_ms + speech_ms + s.hold_ms;
    let steps: Vec<LoadStep> =
        if steps.is_empty() { default_steps(env.quick, env.lead_ms + speech_ms + hold_default, hold_default) } else { steps.to_vec() };

    // One call first: the one-time allocations (recognizer and voice buffers, thread stacks)
    // are not the load's.
    let warm = LoadStep { calls_per_second: 1.0, seconds: 1, hold_ms: hold_default };
    let warm_run = run_step(env, &gw, &warm, &audio, speech_ms, &work.join("warm-up"), Duration::from_millis(500))?;
    if warm_run.outcomes.completed != 1 {
        bail!("the warm-up call did not complete (see {}); is the gateway healthy?", work.join("warm-up").display());
    }
    let rss_warm = gw.rss_kib();

    let mut table = Table::new(&[
        "calls/s × call length",
        "offered concurrent",
        "calls placed",
        "completed",
        "503",
        "failed",
        "caller turns answered",
        "gateway CPU % (of one core)",
        "RSS before MiB",
        "RSS peak MiB",
        "RSS after MiB",
    ]);
    for (i, step) in steps.iter().enumerate() {
        eprintln!("bench sip-load: step {}: {} calls/s for {} s", i + 1, step.calls_per_second, step.seconds);
        let run = run_step(env, &gw, step, &audio, speech_ms, &work.join(format!("step-{}", i + 1)), Duration::from_millis(500))?;
        table.row(vec![
            format!("{} × {:.1} s", step.calls_per_second, call_ms(step) as f64 / 1000.0),
            format!("{:.1}", step.offered_concurrency(call_ms(step))),
            run.placed.to_string(),
            run.outcomes.completed.to_string(),
            run.outcomes.refused.to_string(),
            run.outcomes.failed(run.placed).to_string(),
            run.turns_answered.to_string(),
            run.cpu_percent.map_or("-".into(), |c| format!("{c:.0}")),
            mib(run.rss_before),
            mib(run.rss.iter().map(|(_, k)| *k).max()),
            mib(run.rss_after),
        ]);
    }
    let mut load = Section::new("SIP load: calls per second against answered, 503 and failed calls", table);
    load.note(format!(
        "Every call: {} ms of silence while the greeting plays, then the caller asks how much data they have left ({} ms of audio, \
         recognized, answered and spoken back), stays on for the hold, and hangs up. One sipp process places a step's calls \
         (`-r 1 -rp PERIOD`), all from 127.0.0.1, against a gateway with calls.max_concurrent = {MAX_CONCURRENT} and the \
         per-source share lifted to it (as behind one trunk). 503 = the gateway was full and said so (Retry-After); failed = \
         no answer, an unexpected response, or a BYE not answered. Caller turns answered = \
         utterances the gateway recognized and replied to (its log), one per completed call when all is well. Offered concurrent = calls/s × call length. CPU is the \
         gateway process's user + system time over the step's wall time (this machine has {} cores). RSS at start: {} MiB; \
         after one warm-up call: {} MiB.",
        env.lead_ms,
        speech_ms,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mib(rss_start),
        mib(rss_warm),
    ));
    let mut sections = vec![load];

    if soak_minutes > 0 {
        sections.push(soak(env, &gw, &audio, speech_ms, soak_minutes, rss_warm, &work)?);
    }
    Ok(sections)
}

/// A steady load at half the call limit for `minutes`, then idle: the memory curve.
fn soak(env: &BenchEnv, gw: &Gateway, audio: &Path, speech_ms: u64, minutes: u64, rss_before: Option<u64>, work: &Path) -> Result<Section> {
    let call_ms = env.lead_ms + speech_ms + env.reply_ms;
    let rate = (MAX_CONCURRENT as f64 / 2.0 / (call_ms as f64 / 1000.0) * 100.0).round() / 100.0;
    let step = LoadStep { calls_per_second: rate, seconds: minutes * 60, hold_ms: env.reply_ms };
    eprintln!("bench sip-load: soak: {rate} calls/s for {minutes} min, then {} s idle", IDLE_AFTER_SOAK.as_secs());
    let run = run_step(env, gw, &step, audio, speech_ms, &work.join("soak"), SOAK_SAMPLE)?;
    let idle = RssSampler::start(gw.pid, SOAK_SAMPLE);
    std::thread::sleep(IDLE_AFTER_SOAK);
    let idle_samples = idle.finish();
    let rss_after = gw.rss_kib();
    let load_end = run.rss.last().map_or(Duration::ZERO, |(t, _)| *t);
    let minutes_of = |t: Duration| t.as_secs_f64() / 60.0;
    let curve: Vec<(f64, f64)> = run
        .rss
        .iter()
        .map(|(t, k)| (minutes_of(*t), *k as f64 / 1024.0))
        .chain(idle_samples.iter().map(|(t, k)| (minutes_of(load_end + *t), *k as f64 / 1024.0)))
        .collect();

    let mut table = Table::new(&["minute", "RSS MiB", "phase"]);
    // One row a minute (the plot has every 10 s sample).
    let mut next_minute = 0.0;
    for &(minute, mib_now) in &curve {
        if minute + 1e-9 >= next_minute {
            let phase = if minute <= minutes_of(load_end) { "load" } else { "idle" };
            table.row(vec![format!("{minute:.1}"), format!("{mib_now:.0}"), phase.into()]);
            next_minute = minute.floor() + 1.0;
        }
    }
    let verdict = match (rss_before, rss_after) {
        (Some(b), Some(a)) => {
            let (growth, ok) = memory_verdict(b, a);
            format!(
                "**Before the load (after one warm-up call): {} MiB; peak {} MiB; after {} s idle: {} MiB: {:+.1}% ({} the {:.0}% limit).**",
                mib(Some(b)),
                mib(run.rss.iter().map(|(_, k)| *k).max()),
                IDLE_AFTER_SOAK.as_secs(),
                mib(Some(a)),
                growth * 100.0,
                if ok { "within" } else { "over" },
                MEMORY_TOLERANCE * 100.0
            )
        }
        _ => "RSS could not be read.".into(),
    };
    let mut section = Section::new(&format!("Soak: {minutes} minutes at half the call limit, memory"), table);
    section.note(format!(
        "{rate} calls/s, each {:.1} s long (about {} calls up at once), {} calls placed: {} completed, {} got 503, {} failed; {} caller turns \
         answered. Gateway CPU {} % of one core. {verdict}",
        call_ms as f64 / 1000.0,
        MAX_CONCURRENT / 2,
        run.placed,
        run.outcomes.completed,
        run.outcomes.refused,
        run.outcomes.failed(run.placed),
        run.turns_answered,
        run.cpu_percent.map_or("-".into(), |c| format!("{c:.0}")),
    ));
    let before = rss_before.map_or(0.0, |k| k as f64 / 1024.0);
    let chart = Curve {
        title: "Soak: gateway resident memory",
        x_label: "minutes",
        y_label: "RSS, MiB",
        series: vec![("RSS".into(), curve)],
        targets: vec![("before the load".into(), before), ("+5%".into(), before * (1.0 + MEMORY_TOLERANCE))],
    };
    section.plot("soak_rss.svg", curve_svg(&chart).map_err(anyhow::Error::msg)?);
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_bad_ones_say_why() {
        let s = LoadStep::parse("0.5/60/8").unwrap();
        assert_eq!((s.calls(), s.period_ms(), s.hold_ms), (30, 2000, 8000));
        assert!((s.offered_concurrency(20_000) - 10.0).abs() < 1e-9);
        assert!(LoadStep::parse("0.5/60").unwrap_err().contains("RATE/SECONDS/HOLD_S"));
        assert!(LoadStep::parse("fast/60/8").unwrap_err().contains("not a number"));
        assert!(LoadStep::parse("0/60/8").is_err() && LoadStep::parse("1/0/8").is_err());
        // The defaults offer half the limit, the limit and one and a half times it.
        let steps = default_steps(false, 20_000, 8_000);
        let offered: Vec<f64> = steps.iter().map(|s| s.offered_concurrency(20_000)).collect();
        assert_eq!(offered, vec![8.0, 16.0, 24.0]);
    }

    #[test]
    fn outcomes_are_counted_from_the_callers_log() {
        let log = "completed 1-42@127.0.0.1\nrefused 2-42@127.0.0.1\ncompleted 3-42@127.0.0.1\nsomething else\n";
        let o = Outcomes::from_sipp_log(log);
        assert_eq!((o.completed, o.refused, o.failed(5)), (2, 1, 2));
    }

    #[test]
    fn memory_comes_back_within_five_percent_or_not() {
        assert!(memory_verdict(400 * 1024, 410 * 1024).1);
        let (growth, ok) = memory_verdict(400 * 1024, 435 * 1024);
        assert!(!ok && (growth - 0.0875).abs() < 1e-9);
        assert!(memory_verdict(400, 380).1, "less memory after is fine");
    }
}
