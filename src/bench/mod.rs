//! `frontline bench`: measures issue 7's targets and reports them as tables, SVG plots and
//! docs/benchmarks.md.
//!
//! The analysis cores are sans-IO and unit-tested: [`pcap`] (capture file → UDP datagrams),
//! [`turns`] (RTP on the wire → end of the caller's speech and start of the reply), [`stats`]
//! (percentiles), [`report`] (tables), [`plot`] (SVG). The drivers around them run real peers:
//! [`calls`] (sipp callers + tcpdump against a gateway process), [`media`] (the media driver
//! with loopback UDP peers, in-process), [`wer`] (whisper on the 16 kHz and 8 kHz paths) and
//! [`browser`] (chromium on the caller page over WebRTC).

pub mod browser;
pub mod calls;
pub mod first_audio;
pub mod gateway;
pub mod media;
pub mod pcap;
pub mod plot;
pub mod report;
pub mod requests;
pub mod sip_load;
pub mod sipp;
pub mod stats;
pub mod triage_voice;
pub mod turns;
pub mod wer;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Which {
    /// Every benchmark below, and docs/benchmarks.md.
    All,
    /// Turn latency of one caller, timed from outside with a packet capture.
    Latency,
    /// Concurrent AI calls vs p95 turn latency, and memory per call.
    Capacity,
    /// Bridged media-only calls per CPU core.
    Media,
    /// Word error rate, 16 kHz vs the 8 kHz G.711 path.
    Wer,
    /// Recognizer weights: f16 vs q8_0 vs q5_1 (accuracy on real speech, decode time).
    Weights,
    /// Mandarin voice: CER of the bot's lines through G.711 (espeak-ng vs Kokoro speakers).
    ZhVoice,
    /// Time from an unseen reply's text to its first audio (whole first sentence vs the first
    /// streamed clause), English and Mandarin.
    FirstAudio,
    /// Browser callers over WebRTC: turn latency in the page, gateway CPU per call.
    Browser,
    /// SIP load steps (calls per second): answered, 503 and failed calls, CPU and memory;
    /// `--soak-minutes` adds a steady load and the memory curve.
    SipLoad,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark.
    #[arg(value_enum, default_value = "all")]
    pub which: Which,
    /// Fewer calls, turns and clips: a minute or two instead of about ten.
    #[arg(long)]
    pub quick: bool,
    /// Where the SVG plots go.
    #[arg(long, default_value = "docs/benchmarks")]
    pub plots: PathBuf,
    /// The Markdown report (written by `all`, or by any benchmark when given).
    #[arg(long)]
    pub doc: Option<PathBuf>,
    /// Test a gateway already running on 127.0.0.1 with this SIP port instead of starting one
    /// (its logs are not visible, so only the on-the-wire figures are reported).
    #[arg(long, requires = "gateway_rtp_ports")]
    pub gateway: Option<u16>,
    /// That gateway's RTP port range (rtp.port_min-rtp.port_max), for the capture filter.
    #[arg(long)]
    pub gateway_rtp_ports: Option<String>,
    /// Caller silence at the start of each call, while the greeting plays.
    #[arg(long, default_value_t = 11_000)]
    pub lead_ms: u64,
    /// How long a caller listens after each utterance (the reply must fit in it).
    #[arg(long, default_value_t = 8_000)]
    pub reply_ms: u64,
    /// Voices for `zh-voice` (comma-separated: espeak-ng and Kokoro speakers such as jm_kumo);
    /// default: every speaker and espeak-ng (with --quick: the configured speaker and espeak-ng).
    #[arg(long, value_delimiter = ',')]
    pub zh_voices: Vec<String>,
    /// sip-load steps, each RATE/SECONDS/HOLD_S (e.g. 0.5/60/8); default: half the call limit,
    /// the limit, and one and a half times it, offered for 60 s each (30 with --quick).
    #[arg(long, value_delimiter = ',', value_parser = sip_load::LoadStep::parse)]
    pub load_steps: Vec<sip_load::LoadStep>,
    /// sip-load: after the steps, this many minutes at half the call limit, then 2 idle
    /// minutes, with the gateway's memory sampled every 10 s (issue 16 asks for 30).
    #[arg(long, default_value_t = 0)]
    pub soak_minutes: u64,
    /// Extra `frontline serve` arguments for the gateway under test (after `--`).
    #[arg(last = true)]
    pub serve_args: Vec<String>,
}

/// What every benchmark driver needs to know.
#[derive(Clone)]
pub struct BenchEnv {
    /// The repository root (fixtures, models, sipp scenarios).
    pub repo: PathBuf,
    /// This binary, to start the gateway under test.
    pub exe: PathBuf,
    pub quick: bool,
    pub lead_ms: u64,
    pub reply_ms: u64,
    /// An external gateway: (SIP port, RTP range).
    pub gateway: Option<(u16, (u16, u16))>,
    pub serve_args: Vec<String>,
    pub zh_voices: Vec<String>,
    work: PathBuf,
}

impl BenchEnv {
    /// A fresh scratch directory for one benchmark.
    pub fn work_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }
}

/// 16 kHz speech as a G.711 μ-law caller sends it: resampled to 8 kHz and encoded with the
/// gateway's own resampler and codec. Returns the 8 kHz audio and its μ-law bytes.
pub fn ulaw_8k(pcm16: &[i16]) -> (Vec<i16>, Vec<u8>) {
    let pcm8 = crate::media::resample::resample_all(pcm16, 16_000, 8_000);
    let mut ulaw = Vec::with_capacity(pcm8.len());
    crate::media::g711::G711::Ulaw.encode(&pcm8, &mut ulaw);
    (pcm8, ulaw)
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_or(0, |a| a.port())
}

static NEXT_BLOCK: AtomicU16 = AtomicU16::new(0);

/// The first of `count` consecutive free UDP ports, a multiple of 4 (sipp's `-mp N` also binds
/// N+2), from 33000-60000 upward, never handing out the same block twice in one run.
pub fn free_port_block(count: u16) -> u16 {
    let span = count.div_ceil(4) * 4;
    let _ = NEXT_BLOCK.compare_exchange(0, 33_000 + (std::process::id() % 1000) as u16 * 4, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let base = NEXT_BLOCK.fetch_add(span, Ordering::SeqCst);
        if base > 60_000 - span {
            NEXT_BLOCK.store(33_000, Ordering::SeqCst);
            continue;
        }
        if (base..base + span).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
}

fn parse_range(s: &str) -> Result<(u16, u16)> {
    let (a, b) = s.split_once('-').with_context(|| format!("--gateway-rtp-ports {s:?}: expected MIN-MAX"))?;
    Ok((a.trim().parse()?, b.trim().parse()?))
}

/// Runs the chosen benchmarks (blocking: call it off the async runtime).
pub fn run(args: BenchArgs) -> Result<()> {
    let repo = std::env::current_dir()?;
    if !repo.join("audio-fixtures").is_dir() || !repo.join("bench/sipp/uac_turns.xml").is_file() {
        bail!("{}: run `frontline bench` from the repository root (it needs audio-fixtures/, models/ and bench/sipp/)", repo.display());
    }
    let gateway = match (args.gateway, &args.gateway_rtp_ports) {
        (Some(p), Some(r)) => Some((p, parse_range(r)?)),
        _ => None,
    };
    let env = BenchEnv {
        exe: std::env::current_exe()?,
        quick: args.quick,
        lead_ms: args.lead_ms,
        reply_ms: args.reply_ms,
        gateway,
        serve_args: args.serve_args,
        zh_voices: args.zh_voices,
        // Kept after the run (sipp traces, captures) for a look at anything odd; replaced by the next run.
        work: repo.join("target/bench-work"),
        repo,
    };
    let machine = report::machine_description();
    let started = std::time::Instant::now();
    let needs_root = matches!(args.which, Which::All | Which::Latency | Which::Capacity | Which::SipLoad);
    if needs_root && unsafe { libc::geteuid() } != 0 {
        bail!("the call benchmarks need root: sipp's rtp_stream uses raw sockets and tcpdump captures loopback");
    }
    let mut sections = Vec::new();
    let mut run_one = |name: &str, f: &dyn Fn(&BenchEnv) -> Result<Vec<report::Section>>| -> Result<()> {
        eprintln!("bench: {name}…");
        let t = std::time::Instant::now();
        for s in f(&env).with_context(|| format!("benchmark {name}"))? {
            println!("\n## {}\n\n{}", s.title, s.table.markdown());
            for n in &s.notes {
                println!("{n}\n");
            }
            sections.push(s);
        }
        eprintln!("bench: {name} took {:.0} s", t.elapsed().as_secs_f64());
        Ok(())
    };
    // Most benchmarks report one section.
    let one = |f: fn(&BenchEnv) -> Result<report::Section>| move |env: &BenchEnv| f(env).map(|s| vec![s]);
    let all = args.which == Which::All;
    if all || args.which == Which::Latency {
        run_one("latency", &one(calls::latency))?;
    }
    if all || args.which == Which::Capacity {
        run_one("capacity", &one(calls::capacity))?;
    }
    if all || args.which == Which::Media {
        run_one("media", &one(media::media))?;
    }
    if all || args.which == Which::Wer {
        run_one("wer", &one(wer::wer))?;
    }
    if all || args.which == Which::Weights {
        run_one("weights", &one(wer::weights))?;
    }
    if all || args.which == Which::ZhVoice {
        run_one("zh-voice", &one(wer::zh_voice))?;
    }
    if all || args.which == Which::FirstAudio {
        run_one("first-audio", &one(first_audio::first_audio))?;
    }
    if all || args.which == Which::Browser {
        run_one("browser", &one(browser::browser))?;
    }
    if all || args.which == Which::SipLoad {
        run_one("sip-load", &|env| sip_load::sip_load(env, &args.load_steps, args.soak_minutes))?;
    }
    let doc = args.doc.or_else(|| all.then(|| PathBuf::from("docs/benchmarks.md")));
    let load_end = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let header = format!(
        "# Benchmarks\n\nThe latest run of `frontline bench {}{}` ({} s, {}). Regenerate with `sudo target/release/frontline \
         bench all` from the repository root (see README, \"Benchmarks\").\n\n**Machine:** {machine}. Figures are noisy \
         when other work shares the machine; load average at the end: {}.\n\n",
        // The name as typed on the command line ("first-audio", not the variant's "FirstAudio").
        args.which.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string()),
        if env.quick { " --quick" } else { "" },
        started.elapsed().as_secs(),
        utc_now(),
        load_end.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    report::write(&sections, &args.plots, doc.as_deref(), &header)?;
    eprintln!("bench: plots in {}{}", args.plots.display(), doc.map_or(String::new(), |d| format!(", report in {}", d.display())));
    Ok(())
}

/// The current UTC time as "YYYY-MM-DD HH:MM UTC" (civil-from-days, no date crate needed).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

