//! Harness for integration tests that run the real `frontline` binary against real peers
//! (sipp 3.6.1, baresip 1.0.0) on loopback.
//!
//! Use from a test crate with `mod common;`. Everything here may panic: a failed set-up is a
//! failed test, and the panic message carries what is needed to see why (log tails, sipp's
//! error log, the command line).
//!
//! Ports: every test picks its own, so `cargo test` can run tests in parallel. Single ports
//! come from the kernel (bind port 0, release); blocks (RTP ranges, sipp's media port pair)
//! come from a per-process cursor below the Linux ephemeral range (32768+), so they never
//! collide with kernel-chosen ports and rarely with another test process.
//!
//! Peers need root: sipp's `rtp_stream`/`play_dtmf` use raw sockets, tcpdump captures on `lo`.
//! `scripts/setup.sh` installs everything; `scripts/fetch-real-speech.sh` fetches real speech.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod ops;
pub mod pages;
// Not every test crate drives a browser.
#[allow(unused_imports)]
pub use pages::*;

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// The crate root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The gateway binary cargo built for this test run.
pub fn frontline_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_frontline"))
}

/// `models/` (whisper ggml files, espeak-ng data) as installed by the model scripts.
pub fn models_dir() -> PathBuf {
    repo_root().join("models")
}

/// A committed fixture, e.g. `fixture("en_balance.wav")`.
pub fn fixture(name: &str) -> PathBuf {
    let p = repo_root().join("audio-fixtures").join(name);
    assert!(p.is_file(), "fixture {} missing (scripts/make-fixtures.sh makes it)", p.display());
    p
}

/// A fetched real-speech file, e.g. `real_fixture("jfk.wav")` or
/// `real_fixture("librivox/sense_and_sensibility_01_austen_64kb-0880.wav")`.
pub fn real_fixture(rel: &str) -> PathBuf {
    let p = repo_root().join("audio-fixtures/real").join(rel);
    assert!(
        p.is_file(),
        "real-speech fixture {} missing: run scripts/fetch-real-speech.sh",
        p.display()
    );
    p
}

/// The transcript kept next to a fetched real-speech file (`NAME.txt` beside `NAME.wav`).
pub fn real_transcript(rel_wav: &str) -> String {
    let wav = real_fixture(rel_wav);
    let txt = wav.with_extension("txt");
    fs::read_to_string(&txt)
        .unwrap_or_else(|e| panic!("transcript {} unreadable: {e}", txt.display()))
        .trim()
        .to_string()
}

/// `tests/peers/` (sipp scenarios, baresip config templates).
pub fn peers_dir() -> PathBuf {
    repo_root().join("tests/peers")
}

/// A sipp scenario shipped with the tests, e.g. `sipp_scenario("uac_stream_dtmf.xml")`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    let p = peers_dir().join("sipp").join(name);
    assert!(p.is_file(), "sipp scenario {} missing", p.display());
    p
}

/// A fresh temporary directory that is removed when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir")
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// A UDP port on 127.0.0.1 that was free a moment ago (kernel-chosen, then released).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

const BLOCK_LOW: u32 = 20_000;
const BLOCK_HIGH: u32 = 32_000; // below the default ephemeral range (32768-60999)
static BLOCK_CURSOR: AtomicU32 = AtomicU32::new(0);

fn port_free(port: u16) -> bool {
    // Both protocols: SIP peers may listen on TCP as well (baresip binds TCP port+1 for TLS).
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The first of `count` consecutive ports on 127.0.0.1, all free (UDP and TCP) right now.
/// The base is a multiple of 4, because sipp's `-mp N` also binds N+2.
pub fn free_port_block(count: u16) -> u16 {
    let span = (u32::from(count.max(1)) + 3) / 4 * 4;
    // Start at a pid-dependent offset so two test binaries running at once (cargo runs test
    // crates one after another, but a developer may run two) rarely walk the same ports.
    let _ = BLOCK_CURSOR.compare_exchange(
        0,
        (std::process::id() * 64) % (BLOCK_HIGH - BLOCK_LOW) / 4 * 4,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..2_000 {
        // One modulus for every block size, and no block across the end of the range: blocks
        // handed out in one process never overlap until the cursor has gone all the way round.
        let off = BLOCK_CURSOR.fetch_add(span, Ordering::SeqCst) % (BLOCK_HIGH - BLOCK_LOW) / 4 * 4;
        if off + span > BLOCK_HIGH - BLOCK_LOW {
            continue;
        }
        let base = (BLOCK_LOW + off) as u16;
        if (base..base + span as u16).all(port_free) {
            return base;
        }
    }
    panic!("no block of {count} free ports between {BLOCK_LOW} and {BLOCK_HIGH}");
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// Sends a signal by pid with the `kill` utility (no libc dependency in the tests).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Waits up to `timeout` for `child` to exit; kills it if it does not. `(status, timed_out)`.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> (ExitStatus, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return (st, false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return (child.wait().expect("wait after kill"), true);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn run_checked(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/setup.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tail_of(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct LogState {
    /// Every stdout line parsed as JSON, in order.
    events: Vec<Value>,
    /// The last lines of stdout and stderr as text (JSON or not), for failure reports.
    tail: VecDeque<String>,
}

const TAIL_LINES: usize = 200;

struct Logs {
    state: Mutex<LogState>,
    changed: Condvar,
}

impl Logs {
    fn push(&self, line: String, stream: &str) {
        let mut st = self.state.lock().unwrap();
        if stream == "stdout" {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                st.events.push(v);
            }
        }
        if st.tail.len() == TAIL_LINES {
            st.tail.pop_front();
        }
        st.tail.push_back(format!("[{stream}] {line}"));
        drop(st);
        self.changed.notify_all();
    }
}

fn pump(src: impl Read + Send + 'static, logs: Arc<Logs>, stream: &'static str) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(src).lines() {
            match line {
                Ok(l) => logs.push(l, stream),
                Err(_) => break,
            }
        }
    })
}

/// `fields.message` of a tracing JSON event.
pub fn event_message(ev: &Value) -> Option<&str> {
    ev.get("fields")?.get("message")?.as_str()
}

/// A field of a tracing JSON event (`fields.<name>`), e.g. `event_field(&ev, "call_id")`.
pub fn event_field<'a>(ev: &'a Value, name: &str) -> Option<&'a Value> {
    ev.get("fields")?.get(name)
}

/// A running `frontline serve`, killed on drop.
pub struct Gateway {
    child: Mutex<Child>,
    sip_port: u16,
    rtp_ports: (u16, u16),
    logs: Arc<Logs>,
    pumps: Vec<JoinHandle<()>>,
    args: Vec<String>,
    /// The agent console's address, from the "ready" event.
    http_addr: Option<std::net::SocketAddr>,
    /// The Ops gRPC port's address, from the "ready" event.
    ops_addr: Option<std::net::SocketAddr>,
}

/// How long to wait for the "ready" event: model loading dominates start-up.
/// Override with FRONTLINE_TEST_READY_SECS on a slow machine.
fn ready_timeout() -> Duration {
    let secs = std::env::var("FRONTLINE_TEST_READY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    Duration::from_secs(secs)
}

impl Gateway {
    /// Starts `frontline serve --sip-port P --rtp-ports A-B --log-format json --models
    /// <repo>/models [extra_args]` on fresh ports and waits for its "ready" event.
    /// `--models` / `--log-format` in `extra_args` replace the defaults.
    pub fn start(extra_args: &[&str]) -> Gateway {
        // Below the ephemeral range and free on both protocols: the gateway listens on TCP too,
        // and a kernel-chosen UDP port can be some test's outgoing TCP port at the same time.
        let sip_port = free_port_block(1);
        // 64 ports: 32 RTP/RTCP pairs, plenty for one test's calls.
        let rtp_min = free_port_block(64);
        let rtp_ports = (rtp_min, rtp_min + 63);

        let mut args: Vec<String> = vec![
            "serve".into(),
            "--sip-port".into(),
            sip_port.to_string(),
            "--rtp-ports".into(),
            format!("{}-{}", rtp_ports.0, rtp_ports.1),
        ];
        if !extra_args.contains(&"--log-format") {
            args.extend(["--log-format".into(), "json".into()]);
        }
        // The embedded brain's default port is fixed; tests run gateways side by side.
        if !extra_args.contains(&"--brain-port") && !extra_args.contains(&"--brain") {
            args.extend(["--brain-port".into(), "0".into()]);
        }
        if !extra_args.contains(&"--models") {
            args.extend(["--models".into(), models_dir().display().to_string()]);
        }
        // The console's default port 8080 is fixed too.
        if !extra_args.contains(&"--http-port") {
            args.extend(["--http-port".into(), "0".into()]);
        }
        // And the Ops gRPC port's 50051.
        if !extra_args.contains(&"--ops-port") {
            args.extend(["--ops-port".into(), "0".into()]);
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));

        let mut child = Command::new(frontline_bin())
            .args(&args)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", frontline_bin().display()));

        let logs = Arc::new(Logs {
            state: Mutex::new(LogState::default()),
            changed: Condvar::new(),
        });
        let pumps = vec![
            pump(child.stdout.take().unwrap(), logs.clone(), "stdout"),
            pump(child.stderr.take().unwrap(), logs.clone(), "stderr"),
        ];
        let mut gw = Gateway {
            child: Mutex::new(child),
            sip_port,
            rtp_ports,
            logs,
            pumps,
            args,
            http_addr: None,
            ops_addr: None,
        };

        let timeout = ready_timeout();
        if let Some(ready) = gw.wait_for(|ev| event_message(ev) == Some("ready"), timeout) {
            gw.http_addr = event_field(&ready, "http").and_then(Value::as_str).and_then(|s| s.parse().ok());
            gw.ops_addr = event_field(&ready, "ops").and_then(Value::as_str).and_then(|s| s.parse().ok());
        } else {
            let exited = gw.child.lock().unwrap().try_wait().ok().flatten();
            panic!(
                "frontline did not log \"ready\" within {timeout:?} ({}); args: {:?}\n--- last log lines ---\n{}",
                match exited {
                    Some(st) => format!("it exited: {st}"),
                    None => "still running".to_string(),
                },
                gw.args,
                gw.log_tail(60)
            );
        }
        gw
    }

    /// A gateway started with this configuration (written to a file in the returned folder,
    /// which must outlive it) and `extra_args`.
    pub fn with_config(toml: &str, extra_args: &[&str]) -> (tempfile::TempDir, Gateway) {
        let dir = temp_dir("config-");
        let path = dir.path().join("frontline.toml");
        std::fs::write(&path, toml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut args = vec!["--config", path.to_str().expect("a UTF-8 temp path")];
        args.extend_from_slice(extra_args);
        let gw = Gateway::start(&args);
        (dir, gw)
    }

    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// `http://127.0.0.1:PORT` of the agent console (the address from the "ready" event, with
    /// an unspecified listen address replaced by loopback).
    pub fn http_url(&self) -> String {
        let addr = self.http_addr.unwrap_or_else(|| panic!("the \"ready\" event had no http address\n{}", self.log_tail(20)));
        let ip = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
        format!("http://{ip}:{}", addr.port())
    }

    /// `127.0.0.1:PORT` of the Ops gRPC service (from the "ready" event).
    pub fn ops_target(&self) -> String {
        let addr = self.ops_addr.unwrap_or_else(|| panic!("the \"ready\" event had no ops address\n{}", self.log_tail(20)));
        format!("127.0.0.1:{}", addr.port())
    }

    /// The RTP port range given to the gateway (inclusive).
    pub fn rtp_ports(&self) -> (u16, u16) {
        self.rtp_ports
    }

    /// `sip:USER@127.0.0.1:PORT` for this gateway.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.sip_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// The first event (past or future) for which `pred` holds, waiting up to `timeout`.
    /// Returns None on timeout, or early if the gateway exits without such an event.
    pub fn wait_for(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        let mut st = self.logs.state.lock().unwrap();
        loop {
            if let Some(ev) = st.events[seen..].iter().find(|ev| pred(ev)) {
                return Some(ev.clone());
            }
            seen = st.events.len();
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Wake at least every 200 ms to notice an exited child (its pipes close first,
            // but a crash report may still be draining).
            let wait = (deadline - now).min(Duration::from_millis(200));
            st = self.logs.changed.wait_timeout(st, wait).unwrap().0;
            if st.events.len() == seen && self.exited().is_some() {
                drop(st);
                // Let the pump threads drain what the process wrote before it died.
                thread::sleep(Duration::from_millis(100));
                st = self.logs.state.lock().unwrap();
                return st.events[seen..].iter().find(|ev| pred(ev)).cloned();
            }
        }
    }

    /// Waits for an event whose `fields.message` is `message`.
    pub fn wait_for_message(&self, message: &str, timeout: Duration) -> Option<Value> {
        self.wait_for(|ev| event_message(ev) == Some(message), timeout)
    }

    /// All events so far whose `fields.message` is `message`.
    pub fn events(&self, message: &str) -> Vec<Value> {
        self.logs
            .state
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|ev| event_message(ev) == Some(message))
            .cloned()
            .collect()
    }

    /// Every JSON event so far.
    pub fn all_events(&self) -> Vec<Value> {
        self.logs.state.lock().unwrap().events.clone()
    }

    /// The last `n` output lines (stdout and stderr, JSON or not).
    pub fn log_tail(&self, n: usize) -> String {
        let st = self.logs.state.lock().unwrap();
        let skip = st.tail.len().saturating_sub(n);
        st.tail.iter().skip(skip).cloned().collect::<Vec<_>>().join("\n")
    }

    /// The exit status if the process has ended.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// Sends the gateway a signal ("TERM", "INT", "KILL") and returns at once.
    pub fn send_signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Waits up to `timeout` for the gateway to exit on its own; `None` if it is still running.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the gateway to stop (SIGTERM) and waits up to `timeout` for it to exit; kills it
    /// after that. Returns the exit status and whether it had to be killed.
    pub fn terminate(&self, timeout: Duration) -> (ExitStatus, bool) {
        let mut child = self.child.lock().unwrap();
        signal(child.id(), "TERM");
        wait_with_timeout(&mut child, timeout)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap();
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
        }
        let _ = child.wait();
        drop(child);
        for p in self.pumps.drain(..) {
            let _ = p.join();
        }
        if thread::panicking() {
            eprintln!(
                "--- frontline (sip {}, rtp {}-{}) last log lines ---\n{}\n--- end of frontline log ---",
                self.sip_port,
                self.rtp_ports.0,
                self.rtp_ports.1,
                self.log_tail(80)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Audio helpers (sox)
// ---------------------------------------------------------------------------------------------

/// Headerless 8 kHz mono mu-law (what sipp's rtp_stream sends as PCMU).
pub fn to_ulaw(wav: &Path, out: &Path) {
    run_checked(Command::new("sox").arg(wav).args(["-r", "8000", "-c", "1", "-t", "ul"]).arg(out));
}

/// Headerless 8 kHz mono A-law (what sipp's rtp_stream sends as PCMA).
pub fn to_alaw(wav: &Path, out: &Path) {
    run_checked(Command::new("sox").arg(wav).args(["-r", "8000", "-c", "1", "-t", "al"]).arg(out));
}

/// 8 kHz mono 16-bit WAV (baresip's aufile source for G.711 calls).
pub fn to_8k_wav(wav: &Path, out: &Path) {
    run_checked(
        Command::new("sox")
            .arg(wav)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(out),
    );
}

/// 16 kHz mono 16-bit WAV (what the recognizer is fed), from any format sox reads.
pub fn to_16k_wav(input: &Path, out: &Path) {
    run_checked(
        Command::new("sox")
            .arg(input)
            .args(["-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(out),
    );
}

/// Playing time of a headerless 8 kHz G.711 file (one byte per sample).
pub fn g711_duration(path: &Path) -> Duration {
    let len = fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    Duration::from_millis(len / 8)
}

/// The variables of `uac_stream.xml` for a caller who sends `ulaw` (8 kHz μ-law) as PCMU and
/// then listens `reply_ms` before hanging up.
pub fn pcmu_stream_vars(ulaw: &Path, reply_ms: u64) -> Vec<(String, String)> {
    vec![
        ("AUDIO".to_string(), ulaw.display().to_string()),
        ("PT".to_string(), "0".to_string()),
        ("CODEC".to_string(), "PCMU".to_string()),
        ("AUDIO_MS".to_string(), g711_duration(ulaw).as_millis().to_string()),
        ("REPLY_MS".to_string(), reply_ms.to_string()),
    ]
}

/// Playing time of a PCM WAV.
pub fn wav_duration(path: &Path) -> Duration {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    Duration::from_secs_f64(r.duration() as f64 / f64::from(spec.sample_rate))
}

/// RMS level of a 16-bit PCM WAV in dBFS (-inf for digital silence): tells "heard the bot"
/// from "heard nothing" without a recognizer.
/// Loudness of each 20 ms of a WAV, in dBFS (floored at -60).
pub fn loudness_envelope(wav: &Path) -> Vec<f64> {
    let mut r = hound::WavReader::open(wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
    let spec = r.spec();
    let samples: Vec<f64> = r.samples::<i16>().map(|s| s.unwrap() as f64 / 32768.0).collect();
    let block = (spec.sample_rate as usize / 50) * spec.channels as usize;
    samples
        .chunks(block)
        .map(|c| (10.0 * (c.iter().map(|x| x * x).sum::<f64>() / c.len() as f64 + 1e-6).log10()).max(-60.0))
        .collect()
}

/// Stretches of a WAV where something is said, as (start ms, end ms): 20 ms blocks louder
/// than -40 dBFS, joined across pauses shorter than `join_ms` (the gaps between words and
/// sentences), at least 200 ms long.
pub fn speech_spans(wav: &Path, join_ms: u64) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for (i, db) in loudness_envelope(wav).into_iter().enumerate() {
        if db < -40.0 {
            continue;
        }
        let (start, end) = (i as u64 * 20, i as u64 * 20 + 20);
        match spans.last_mut() {
            Some(last) if start <= last.1 + join_ms => last.1 = end,
            _ => spans.push((start, end)),
        }
    }
    spans.retain(|(a, b)| b - a >= 200);
    spans
}

pub fn wav_rms_dbfs(path: &Path) -> f64 {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut sum, mut n) = (0f64, 0u64);
    for s in r.samples::<i16>() {
        let v = f64::from(s.expect("wav sample")) / 32768.0;
        sum += v * v;
        n += 1;
    }
    if n == 0 || sum == 0.0 {
        return f64::NEG_INFINITY;
    }
    10.0 * (sum / n as f64).log10()
}

// ---------------------------------------------------------------------------------------------
// sipp
// ---------------------------------------------------------------------------------------------

/// Options for [`run_sipp_with`].
#[derive(Clone, Debug)]
pub struct SippOptions {
    /// `@NAME@` placeholders to fill in the scenario (NAME without the @s).
    pub vars: Vec<(String, String)>,
    /// The Request-URI user (`-s`, sipp's `[service]`).
    pub service: String,
    /// Kill sipp after this long.
    pub timeout: Duration,
    /// Capture the RTP the gateway sends to sipp's media port and decode it to a WAV
    /// (sipp cannot record; tcpdump + tshark do). Needs root.
    pub capture_rx: bool,
    /// Extra sipp arguments (e.g. `["-t", "t1"]` for TCP).
    pub extra_args: Vec<String>,
}

impl Default for SippOptions {
    fn default() -> Self {
        SippOptions {
            vars: Vec::new(),
            service: "ivr".into(),
            timeout: Duration::from_secs(60),
            capture_rx: false,
            extra_args: Vec::new(),
        }
    }
}

/// What a sipp run left behind.
#[derive(Debug)]
pub struct SippResult {
    /// sipp's exit status; 0 means every call followed the scenario.
    pub status: ExitStatus,
    pub timed_out: bool,
    /// sipp's screen output (statistics).
    pub stdout: String,
    pub stderr: String,
    /// The `-trace_err` log: unexpected messages, timeouts, aborts.
    pub errors: String,
    /// The `-trace_logs` log: lines written by the scenario's `<log>` actions.
    pub logs: String,
    pub local_port: u16,
    pub media_port: u16,
    /// With `capture_rx`: what sipp received on its media port, as an 8 kHz WAV (audio of
    /// the PT that carried the most bytes; G.711 only). None if nothing was received.
    pub rx_wav: Option<PathBuf>,
    /// Working directory with the filled scenario, logs and capture (kept with the result).
    pub dir: tempfile::TempDir,
}

impl SippResult {
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// Everything useful for an assertion message.
    pub fn report(&self) -> String {
        format!(
            "sipp exit {} (timed out: {}), local port {}, media port {}\n--- sipp errors ---\n{}\n--- sipp stderr ---\n{}\n--- sipp screen (tail) ---\n{}",
            self.status,
            self.timed_out,
            self.local_port,
            self.media_port,
            self.errors.trim(),
            self.stderr.trim(),
            tail_of(&self.stdout, 30)
        )
    }
}

/// Runs one sipp call (`-m 1 -l 1`) of `scenario` against the gateway on 127.0.0.1, with
/// `@NAME@` placeholders replaced from `vars`; a 60 s limit.
pub fn run_sipp(scenario: &Path, gateway_sip_port: u16, vars: &[(&str, &str)]) -> SippResult {
    run_sipp_with(
        scenario,
        gateway_sip_port,
        SippOptions {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..SippOptions::default()
        },
    )
}

/// [`run_sipp`] with every knob.
pub fn run_sipp_with(scenario: &Path, gateway_sip_port: u16, opts: SippOptions) -> SippResult {
    let dir = temp_dir("sipp-");
    let mut text = fs::read_to_string(scenario)
        .unwrap_or_else(|e| panic!("scenario {}: {e}", scenario.display()));
    for (k, v) in &opts.vars {
        text = text.replace(&format!("@{k}@"), v);
    }
    if let Some(left) = find_placeholder(&text) {
        panic!("scenario {} still has placeholder @{left}@ (pass it in vars)", scenario.display());
    }
    let filled = dir.path().join(scenario.file_name().expect("scenario file name"));
    fs::write(&filled, text).expect("write scenario");

    let local_port = free_udp_port();
    let media_port = free_port_block(4);

    let capture = if opts.capture_rx {
        Some(RtpCapture::start(dir.path(), media_port))
    } else {
        None
    };

    let stdout_path = dir.path().join("sipp.stdout");
    let stderr_path = dir.path().join("sipp.stderr");
    let mut cmd = Command::new("sipp");
    cmd.arg(format!("127.0.0.1:{gateway_sip_port}"))
        .arg("-sf")
        .arg(&filled)
        .args(["-s", &opts.service])
        .args(["-i", "127.0.0.1", "-p", &local_port.to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
        .args(["-m", "1", "-l", "1", "-nostdin", "-trace_err", "-trace_logs"])
        .args(&opts.extra_args)
        // Trace files are written to the working directory; keep them in ours.
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("sipp stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("sipp stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sipp: {e} (run scripts/setup.sh)"));
    let (status, timed_out) = wait_with_timeout(&mut child, opts.timeout);

    let rx_wav = capture.and_then(|c| c.finish());

    let read_matching = |suffix: &str| -> String {
        let mut out = String::new();
        if let Ok(rd) = fs::read_dir(dir.path()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(suffix) {
                    out.push_str(&fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    };
    SippResult {
        status,
        timed_out,
        stdout: fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
        errors: read_matching("_errors.log"),
        logs: read_matching("_logs.log"),
        local_port,
        media_port,
        rx_wav,
        dir,
    }
}

// One placeholder scanner for the tests and `frontline bench`.
use frontline::bench::sipp::first_placeholder as find_placeholder;

/// tcpdump on `lo` for UDP to one port, decoded to audio with tshark + sox afterwards.
struct RtpCapture {
    capture: LoopbackCapture,
    pcap: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// A tcpdump capture on `lo` into a pcap file, armed when `start` returns.
pub struct LoopbackCapture {
    child: Child,
    pub pcap: PathBuf,
}

impl LoopbackCapture {
    /// Captures the packets matching the pcap `filter` (e.g. "udp and dst port 4000"). Needs root.
    pub fn start(pcap: &Path, filter: &str) -> LoopbackCapture {
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-w"])
            .arg(pcap)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tcpdump: {e} (run scripts/setup.sh)"));
        // tcpdump says "listening on lo" once the capture is armed; traffic before that is lost.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let armed = err.read_line(&mut line).is_ok() && line.contains("listening");
        assert!(armed, "tcpdump did not start capturing (root needed): {line}");
        // Keep draining stderr so tcpdump never blocks on a full pipe.
        thread::spawn(move || {
            let mut sink = String::new();
            let _ = err.read_to_string(&mut sink);
        });
        LoopbackCapture { child, pcap: pcap.to_path_buf() }
    }

    /// Stops the capture once late packets are in; the pcap file is complete afterwards.
    pub fn stop(mut self) -> PathBuf {
        // Late packets are still in flight right after the BYE.
        thread::sleep(Duration::from_millis(300));
        signal(self.child.id(), "INT");
        let _ = wait_with_timeout(&mut self.child, Duration::from_secs(5));
        self.pcap
    }
}

impl RtpCapture {
    fn start(dir: &Path, port: u16) -> RtpCapture {
        let pcap = dir.join("rx.pcap");
        let capture = LoopbackCapture::start(&pcap, &format!("udp and dst port {port}"));
        RtpCapture { capture, pcap, dir: dir.to_path_buf(), port }
    }

    /// Stops the capture and returns the received audio as a WAV, if any arrived.
    fn finish(self) -> Option<PathBuf> {
        self.capture.stop();
        let mut best: Option<(Vec<u8>, &str)> = None;
        for (pt, sox_type) in [(0u8, "ul"), (8u8, "al")] {
            let payload = rtp_payload(&self.pcap, self.port, pt);
            if !payload.is_empty() && best.as_ref().map_or(true, |(b, _)| payload.len() > b.len()) {
                best = Some((payload, sox_type));
            }
        }
        let (bytes, sox_type) = best?;
        let raw = self.dir.join(format!("rx.{sox_type}"));
        fs::write(&raw, bytes).expect("write rx audio");
        let wav = self.dir.join("rx.wav");
        run_checked(
            Command::new("sox")
                .args(["-t", sox_type, "-r", "8000", "-c", "1"])
                .arg(&raw)
                .args(["-b", "16", "-e", "signed-integer"])
                .arg(&wav),
        );
        Some(wav)
    }
}

/// Concatenated RTP payloads of one payload type sent to `port`, in capture order.
pub fn rtp_payload(pcap: &Path, port: u16, pt: u8) -> Vec<u8> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-d", &format!("udp.port=={port},rtp")])
        .args(["-Y", &format!("rtp && udp.dstport=={port} && rtp.p_type=={pt}")])
        .args(["-T", "fields", "-e", "rtp.payload"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark: {e} (run scripts/setup.sh)"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut bytes = Vec::new();
    for line in text.lines() {
        let hex: Vec<u8> = line.bytes().filter(u8::is_ascii_hexdigit).collect();
        for pair in hex.chunks_exact(2) {
            let s = std::str::from_utf8(pair).expect("hex digits are ASCII");
            bytes.push(u8::from_str_radix(s, 16).expect("hex pair"));
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// baresip
// ---------------------------------------------------------------------------------------------

/// Ports and files of one baresip instance made from a template in tests/peers/baresip/.
struct BaresipSetup {
    dir: tempfile::TempDir,
    sip_port: u16,
    cons_port: u16,
    record_dir: PathBuf,
}

/// An account that registers with a registrar: its port, the user name and the password.
pub struct Registration<'a> {
    pub registrar_port: u16,
    pub user: &'a str,
    pub password: &'a str,
}

/// Fills tests/peers/baresip/<role>/{config,accounts} into a fresh directory. `speech` is
/// converted to 8 kHz mono and padded: `lead_s` of silence before, `tail_s` after (baresip
/// hangs up when its source file ends). An agent answers at `agent@` its own port, or
/// registers as `registration` says.
fn baresip_setup(role: &str, speech: &Path, lead_s: f64, tail_s: f64, codecs: &str, registration: Option<&Registration>) -> BaresipSetup {
    let dir = temp_dir(&format!("baresip-{role}-"));
    let record_dir = dir.path().join("rec");
    fs::create_dir_all(&record_dir).expect("record dir");
    let source = dir.path().join("source.wav");
    run_checked(
        Command::new("sox")
            .arg(speech)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(&source)
            .args(["pad", &format!("{lead_s}"), &format!("{tail_s}")]),
    );
    // SIP on base (UDP, and TCP base+1 for its TLS listener), console on base+2,
    // RTP in its own block.
    let base = free_port_block(4);
    let (sip_port, cons_port) = (base, base + 2);
    let rtp = free_port_block(20);
    let (account, registering) = match registration {
        Some(r) => (format!("{}@127.0.0.1:{}", r.user, r.registrar_port), format!("auth_pass={};regint=600;", r.password)),
        None => (format!("agent@127.0.0.1:{sip_port}"), "regint=0;".to_string()),
    };
    let vars = [
        ("ACCOUNT", account),
        ("REGISTRATION", registering),
        ("SIP_PORT", sip_port.to_string()),
        ("CONS_PORT", cons_port.to_string()),
        ("RTP_MIN", rtp.to_string()),
        ("RTP_MAX", (rtp + 19).to_string()),
        ("AUDIO_WAV", source.display().to_string()),
        ("RECORD_DIR", record_dir.display().to_string()),
        ("CODECS", codecs.to_string()),
    ];
    for file in ["config", "accounts"] {
        let tpl = peers_dir().join("baresip").join(role).join(file);
        let mut text =
            fs::read_to_string(&tpl).unwrap_or_else(|e| panic!("template {}: {e}", tpl.display()));
        for (k, v) in &vars {
            text = text.replace(&format!("@{k}@"), v);
        }
        assert!(find_placeholder(&text).is_none(), "unfilled placeholder in {}", tpl.display());
        fs::write(dir.path().join(file), text).expect("write baresip config");
    }
    BaresipSetup { dir, sip_port, cons_port, record_dir }
}

/// baresip's log without the once-a-tick "[0:00:03] audio=64000/64000 (bit/s)" status
/// line, which it rewrites with carriage returns and which would bury everything else.
fn baresip_log(setup: &BaresipSetup) -> String {
    let raw = fs::read_to_string(setup.dir.path().join("baresip.log")).unwrap_or_default();
    raw.lines()
        .map(|line| {
            line.split('\r')
                .filter(|part| !(part.trim_start().starts_with('[') && part.contains("audio=")))
                .collect::<Vec<_>>()
                .join("")
        })
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn baresip_command(setup: &BaresipSetup) -> Command {
    let mut cmd = Command::new("baresip");
    cmd.arg("-f")
        .arg(setup.dir.path())
        .current_dir(setup.dir.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(setup.dir.path().join("baresip.log")).expect("baresip log"))
        .stderr(Stdio::from(
            fs::File::options()
                .append(true)
                .open(setup.dir.path().join("baresip.log"))
                .expect("baresip log"),
        ));
    cmd
}

/// Sends a console command (e.g. "/hangup") to a baresip cons module.
pub fn baresip_command_udp(cons_port: u16, command: &str) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    // The console takes a line per datagram, like `echo "/hangup" > /dev/udp/...` sends.
    let line = format!("{}\n", command.trim_end());
    let _ = sock.send_to(line.as_bytes(), ("127.0.0.1", cons_port));
}

/// Finds `dump-*-<kind>.wav` (kind "dec" = heard, "enc" = sent) in a sndfile record dir.
fn find_dump(record_dir: &Path, kind: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(record_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.starts_with("dump-") && n.ends_with(&format!("-{kind}.wav"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Options for [`run_baresip_call_with`].
#[derive(Clone, Debug)]
pub struct BaresipCallOptions {
    /// Request-URI user dialled at the gateway.
    pub user: String,
    /// Silence before the speech starts (after the call is answered).
    pub lead_silence: Duration,
    /// Hang up this long after dialling.
    pub hangup_after: Duration,
    /// `audio_codecs` of the account, e.g. "PCMU,PCMA" or "PCMA".
    pub codecs: String,
    /// URI parameters on the dialled target, e.g. ";transport=tcp".
    pub uri_params: String,
}

impl Default for BaresipCallOptions {
    fn default() -> Self {
        BaresipCallOptions {
            user: "ivr".into(),
            lead_silence: Duration::from_millis(500),
            hangup_after: Duration::from_secs(15),
            codecs: "PCMU,PCMA".into(),
            uri_params: String::new(),
        }
    }
}

/// What a baresip call left behind.
#[derive(Debug)]
pub struct BaresipCall {
    /// What baresip heard (the gateway's audio), 8 kHz 16-bit WAV. None if no call audio ran.
    pub heard_wav: Option<PathBuf>,
    /// What baresip sent.
    pub sent_wav: Option<PathBuf>,
    /// baresip's stdout/stderr (with "Call established", "closed: ..." lines).
    pub log: String,
    pub status: ExitStatus,
    /// Had to be killed after asking it to quit.
    pub killed: bool,
    pub dir: tempfile::TempDir,
}

impl BaresipCall {
    /// True if baresip reports the call was answered.
    pub fn established(&self) -> bool {
        self.log.contains("Call established")
    }

    pub fn heard(&self) -> &Path {
        self.heard_wav
            .as_deref()
            .unwrap_or_else(|| panic!("baresip recorded nothing; its log:\n{}", tail_of(&self.log, 40)))
    }
}

/// Calls `sip:ivr@127.0.0.1:<gateway_sip_port>` with baresip, plays `speech` (any WAV sox
/// reads; made 8 kHz mono, 0.5 s of silence in front) and hangs up after `hangup_after`.
/// Returns the recording of what baresip heard.
pub fn run_baresip_call(gateway_sip_port: u16, speech: &Path, hangup_after: Duration) -> BaresipCall {
    run_baresip_call_with(
        gateway_sip_port,
        speech,
        BaresipCallOptions { hangup_after, ..BaresipCallOptions::default() },
    )
}

/// [`run_baresip_call`] with every knob.
pub fn run_baresip_call_with(gateway_sip_port: u16, speech: &Path, opts: BaresipCallOptions) -> BaresipCall {
    // Pad well past the hang-up, so the file never ends (and baresip never hangs up) first.
    let tail = opts.hangup_after.as_secs_f64() + 30.0;
    let setup = baresip_setup("caller", speech, opts.lead_silence.as_secs_f64(), tail, &opts.codecs, None);
    let target = format!("sip:{}@127.0.0.1:{gateway_sip_port}{}", opts.user, opts.uri_params);
    let mut child = baresip_command(&setup)
        .args(["-e", &format!("/dial {target}")])
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start baresip: {e} (run scripts/setup.sh)"));

    let deadline = Instant::now() + opts.hangup_after;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Hang up (BYE) first, then quit: quitting alone can skip the BYE on some versions, and
    // sndfile finalizes its WAV headers when the call's audio closes.
    baresip_command_udp(setup.cons_port, "/hangup");
    thread::sleep(Duration::from_millis(700));
    baresip_command_udp(setup.cons_port, "/quit");
    let (status, killed) = wait_with_timeout(&mut child, Duration::from_secs(5));

    let log = baresip_log(&setup);
    BaresipCall {
        heard_wav: find_dump(&setup.record_dir, "dec"),
        sent_wav: find_dump(&setup.record_dir, "enc"),
        log,
        status,
        killed,
        dir: setup.dir,
    }
}

/// A baresip "human agent" that auto-answers at `sip:agent@127.0.0.1:<port>`, plays
/// `speech` as the agent's voice and records what it hears. Killed on drop.
pub struct BaresipAgent {
    child: Child,
    setup: BaresipSetup,
}

impl BaresipAgent {
    pub fn start(speech: &Path) -> BaresipAgent {
        BaresipAgent::start_with(speech, None)
    }

    /// An agent whose phone registers with the gateway (its REGISTER goes out at start).
    pub fn registered(speech: &Path, registration: &Registration) -> BaresipAgent {
        BaresipAgent::start_with(speech, Some(registration))
    }

    fn start_with(speech: &Path, registration: Option<&Registration>) -> BaresipAgent {
        let setup = baresip_setup("agent", speech, 0.5, 120.0, "PCMU,PCMA", registration);
        let child = baresip_command(&setup)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start baresip agent: {e} (run scripts/setup.sh)"));
        let agent = BaresipAgent { child, setup };
        // Ready once its SIP socket is bound: until then the port is still free.
        let deadline = Instant::now() + Duration::from_secs(10);
        while UdpSocket::bind(("127.0.0.1", agent.setup.sip_port)).is_ok() {
            assert!(Instant::now() < deadline, "baresip agent did not bind its SIP port:\n{}", agent.log());
            thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    pub fn sip_port(&self) -> u16 {
        self.setup.sip_port
    }

    /// `sip:agent@127.0.0.1:PORT`, the URI to transfer or bridge callers to.
    pub fn uri(&self) -> String {
        format!("sip:agent@127.0.0.1:{}", self.setup.sip_port)
    }

    /// What the agent heard so far (the caller bridged to it), if a call ran.
    pub fn heard_wav(&self) -> Option<PathBuf> {
        find_dump(&self.setup.record_dir, "dec")
    }

    pub fn log(&self) -> String {
        baresip_log(&self.setup)
    }

    /// True once the agent reports an answered call.
    pub fn answered(&self) -> bool {
        self.log().contains("Call established")
    }

    /// Sends a console command, e.g. "/hangup".
    pub fn command(&self, cmd: &str) {
        baresip_command_udp(self.setup.cons_port, cmd);
    }
}

impl Drop for BaresipAgent {
    fn drop(&mut self) {
        self.command("/quit");
        let _ = wait_with_timeout(&mut self.child, Duration::from_secs(3));
        if thread::panicking() {
            eprintln!("--- baresip agent log (tail) ---\n{}", tail_of(&self.log(), 40));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recognition scoring
// ---------------------------------------------------------------------------------------------

// The scoring itself lives in the library, shared with `frontline bench wer`.
#[allow(unused_imports)] // each test crate uses a different subset
pub use frontline::speech::score::{char_error_rate, word_error_rate};

/// Runs the gateway's own recognizer on a recording (what a peer heard), utterance by utterance
/// as the gateway cuts a caller's speech (a recording of greeting, pauses and reply decoded in
/// one piece makes whisper stop early), with whisper's full encoder window: the most accurate
/// decode is the fairest judge of what was audible.
pub fn transcribe_recording(wav: &Path, language: &str) -> String {
    let out = Command::new(frontline_bin())
        .args(["transcribe", "--full-encoder", "--language", language, "--models"])
        .arg(models_dir())
        .arg(wav)
        .output()
        .expect("run frontline transcribe");
    assert!(out.status.success(), "transcribe failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("transcribe prints JSON");
    v["text"].as_str().unwrap_or_default().to_string()
}

/// Shared by the call tests that judge a reply by ear (SIP and WebRTC callers).
pub fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// What the reply's own audio sounds like to whisper when it never crossed the network: our
/// voice renders it, G.711 µ-law encodes and decodes it, and the same model transcribes it.
/// A listener on the call should do about as well; how well depends on espeak and whisper,
/// not on the gateway, so the tests compare against this instead of a fixed bar.
pub fn reference_rendering(reply: &str, language: &str) -> String {
    let dir = temp_dir("reference-");
    let spoken = dir.path().join("spoken.wav");
    let out = Command::new(frontline_bin())
        .args(["say", "--models"])
        .arg(models_dir())
        .args(["--language", language, "-o"])
        .arg(&spoken)
        .arg(reply)
        .output()
        .expect("run frontline say");
    assert!(out.status.success(), "say failed: {}", String::from_utf8_lossy(&out.stderr));
    let telephone = dir.path().join("telephone.wav");
    let sox = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sox '{}' -r 8000 -e mu-law -t wav - | sox - -e signed -b 16 '{}'",
            spoken.display(),
            telephone.display()
        ))
        .status()
        .expect("run sox");
    assert!(sox.success());
    transcribe_recording(&telephone, language)
}

/// Share of the reply's words that a listener's transcript contains.
/// Seconds from log event `a` to log event `b` (their `timestamp`s, same UTC day).
pub fn secs_between(a: &Value, b: &Value) -> f64 {
    let secs = |ev: &Value| -> f64 {
        let ts = ev["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp in {ev}"));
        let time = ts.split('T').nth(1).unwrap_or_default().trim_end_matches('Z');
        time.split(':').fold(0.0, |acc, part| acc * 60.0 + part.parse::<f64>().unwrap_or(0.0))
    };
    secs(b) - secs(a)
}

/// The part of a recording from `from_secs` on (a new file next to it), e.g. what a caller
/// heard once bridged, without the bot's lines and the hold music before.
pub fn recording_from(wav: &Path, from_secs: f64) -> PathBuf {
    let out = wav.with_file_name(format!("{}-from-{from_secs:.1}s.wav", wav.file_stem().unwrap().to_string_lossy()));
    run_checked(Command::new("sox").arg(wav).arg(&out).args(["trim", &format!("{:.2}", from_secs.max(0.0))]));
    out
}

pub fn heard_share(reply: &str, transcript: &str) -> f64 {
    let reply_words = words(reply);
    let heard = words(transcript);
    let found = reply_words.iter().filter(|w| heard.contains(w)).count();
    found as f64 / reply_words.len().max(1) as f64
}

/// `frontline calls ARGS --records DB --json`, parsed (DB: a SQLite file or a postgres:// URL).
pub fn calls_json(records: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Value {
    let out = Command::new(frontline_bin()).arg("calls").args(args).arg("--records").arg(records).arg("--json").output().expect("run frontline calls");
    assert!(out.status.success(), "frontline calls {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("calls {args:?} JSON: {e}\n{}", String::from_utf8_lossy(&out.stdout)))
}

#[cfg(test)]
mod harness_tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_email_like_text_is_not() {
        assert_eq!(find_placeholder("rtp_stream=\"@AUDIO@,1,@PT@\"").as_deref(), Some("AUDIO"));
        assert_eq!(find_placeholder("sip:ivr@127.0.0.1:5060 and a@b"), None);
        assert_eq!(find_placeholder("x @lower@ y"), None);
    }

    #[test]
    fn port_blocks_are_free_aligned_and_distinct() {
        let a = free_port_block(64);
        let b = free_port_block(4);
        assert_eq!(a % 4, 0);
        assert_eq!(b % 4, 0);
        assert!(b >= a + 64 || b + 4 <= a, "blocks overlap: {a} and {b}");
        assert!(u32::from(a) >= BLOCK_LOW && u32::from(a) + 64 <= BLOCK_HIGH);
        assert!(free_udp_port() > 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made SIP requests, for probes a peer would not send on its own.

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A request to the gateway on 127.0.0.1:`port` with a fresh branch and Call-ID (reusing one
/// would make it a retransmission of an earlier transaction, RFC 3261 §17.2.3).
pub fn sip_request(method: &str, port: u16, transport: &str, body: &str, extra: &str) -> String {
    format!(
        "{method} sip:ivr@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK-{method}-{nonce}\r\n\
         From: <sip:probe@127.0.0.1:5999>;tag=probe{nonce}\r\n\
         To: <sip:ivr@127.0.0.1:{port}>\r\n\
         Call-ID: probe-{nonce}@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:probe@127.0.0.1:5999>\r\n\
         Max-Forwards: 70\r\n{extra}\
         Content-Length: {len}\r\n\r\n{body}",
        nonce = std::process::id() as u64 * 1000 + NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        len = body.len()
    )
}

/// Sends `request` over UDP and returns the first final response (provisional ones skipped).
pub fn udp_exchange(port: u16, request: &[u8]) -> Option<String> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(request, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.starts_with("SIP/2.0 1") {
            return Some(text);
        }
    }
}

/// A minimal G.711 offer, as a phone would send in an INVITE.
pub fn pcmu_offer(media_port: u16) -> String {
    format!(
        "v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// A minimal HTTP/1.1 GET (the test needs no HTTP client crate): status and body.
pub fn http_get(base: &str, path: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(body) } else { body.to_string() })
}

pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
