//! The gateway under test: a `frontline serve` child process with JSON logs, or one already
//! running (`--gateway`), and the turn lines it logs.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The stage timings of one turn as the gateway logs them ("turn" events), in ms after the
/// end of speech as the gateway's endpointer saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedTurn {
    pub call_id: String,
    pub turn: u64,
    pub heard: String,
    pub transcript_ms: f64,
    pub brain_ms: f64,
    pub tts_ms: f64,
    pub first_rtp_ms: f64,
}

/// A caller turn (not the greeting, turn 0) from one JSON log line; None for other lines.
pub fn parse_turn_line(line: &str) -> Option<LoggedTurn> {
    let v: Value = serde_json::from_str(line).ok()?;
    let f = v.get("fields")?;
    if f.get("message")?.as_str()? != "turn" || f.get("turn")?.as_u64()? == 0 {
        return None;
    }
    let ms = |k: &str| f.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    Some(LoggedTurn {
        call_id: f.get("call_id").and_then(Value::as_str).unwrap_or_default().to_string(),
        turn: f.get("turn")?.as_u64()?,
        heard: f.get("heard").and_then(Value::as_str).unwrap_or_default().to_string(),
        transcript_ms: ms("transcript_ms"),
        brain_ms: ms("brain_ms"),
        tts_ms: ms("tts_ms"),
        first_rtp_ms: ms("first_rtp_ms"),
    })
}

/// A gateway the benchmark started; stopped (SIGTERM) when dropped.
pub struct Gateway {
    child: Option<Child>,
    pub pid: Option<u32>,
    pub sip_port: u16,
    pub rtp_ports: (u16, u16),
    /// Each log line with when it was read (the log's own timestamps are text).
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Gateway {
    /// Starts `exe serve` on the given ports with the repo's models and waits for "ready".
    pub fn start(exe: &Path, models: &Path, sip_port: u16, rtp_ports: (u16, u16), extra: &[String]) -> Result<Gateway> {
        let mut child = Command::new(exe)
            .args(["serve", "--log-format", "json", "--brain-port", "0", "--http-port", "0", "--ops-port", "0"])
            .args(["--sip-port", &sip_port.to_string(), "--rtp-ports", &format!("{}-{}", rtp_ports.0, rtp_ports.1)])
            .arg("--models")
            .arg(models)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().context("gateway stdout")?;
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push((Instant::now(), line));
            }
        });
        let gw = Gateway { pid: Some(child.id()), child: Some(child), sip_port, rtp_ports, lines };
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if gw.lines.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|(_, l)| l.contains("\"message\":\"ready\"")) {
                return Ok(gw);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the gateway did not log \"ready\" within 120 s (models missing? run scripts/setup.sh)")
    }

    /// The HTTP port from the "ready" line (the benchmark starts the gateway on port 0).
    pub fn http_port(&self) -> Option<u16> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let ready: Value = lines.iter().find(|(_, l)| l.contains("\"message\":\"ready\"")).and_then(|(_, l)| serde_json::from_str(l).ok())?;
        ready["fields"]["http"].as_str()?.rsplit(':').next()?.parse().ok()
    }

    /// Waits until a log line with this message appears (false when `within` runs out).
    pub fn wait_for_log(&self, message: &str, within: Duration) -> bool {
        let needle = format!("\"message\":\"{message}\"");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.lines.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|(_, l)| l.contains(&needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A gateway someone else runs: its logs are not visible, so only the capture times it.
    pub fn external(sip_port: u16, rtp_ports: (u16, u16)) -> Gateway {
        Gateway { child: None, pid: None, sip_port, rtp_ports, lines: Arc::default() }
    }

    /// How many log lines so far (to read only a later step's turns).
    pub fn log_len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn turns_since(&self, from: usize) -> Vec<LoggedTurn> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().skip(from).filter_map(|(_, l)| parse_turn_line(l)).collect()
    }

    /// The JSON log lines from line `from` on, each with when it was read.
    pub fn lines_since(&self, from: usize) -> Vec<(Instant, Value)> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().skip(from).filter_map(|(t, l)| Some((*t, serde_json::from_str(l).ok()?))).collect()
    }

    /// Keeps the gateway's log lines of one step next to that step's sipp traces and capture.
    pub fn save_log_since(&self, from: usize, path: &Path) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let text: String = lines.iter().skip(from).flat_map(|(_, l)| [l.as_str(), "\n"]).collect();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("bench: cannot write {}: {e}", path.display());
        }
    }

    /// Resident memory now, in KiB (None for an external gateway).
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid?, "VmRSS")
    }
}

/// User + system CPU time a process has used so far, in ms (from /proc/PID/stat).
pub fn proc_cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&hz| hz > 0)?;
    Some(ticks * 1000 / hz)
}

/// Samples a process's resident memory on a thread until [`finish`](Self::finish)ed: for the
/// peak during a step, and the curve of a soak.
pub struct RssSampler {
    running: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Duration, u64)>>,
}

impl RssSampler {
    /// Samples every `every`, the first at once. No process (an external gateway): no samples.
    pub fn start(pid: Option<u32>, every: Duration) -> RssSampler {
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = running.clone();
        let thread = std::thread::spawn(move || {
            let (started, mut samples) = (Instant::now(), Vec::new());
            while flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kib) = pid.and_then(|p| proc_status_kib(p, "VmRSS")) {
                    samples.push((started.elapsed(), kib));
                }
                // Short sleeps, so finish() returns soon even with a long interval.
                let next = Instant::now() + every;
                while flag.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(50).min(every));
                }
            }
            samples
        });
        RssSampler { running, thread }
    }

    /// Every sample: (time since start, KiB).
    pub fn finish(self) -> Vec<(Duration, u64)> {
        self.running.store(false, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: the gateway drains and exits; kill it if it lingers.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_lines_are_parsed_and_the_greeting_skipped() {
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"turn","call_id":"c1","turn":2,"heard":"What is my balance?","transcript_ms":310,"brain_ms":330,"tts_ms":420,"first_rtp_ms":436},"target":"frontline::call::task"}"#;
        let t = parse_turn_line(line).unwrap();
        assert_eq!((t.turn, t.transcript_ms, t.first_rtp_ms, t.call_id.as_str()), (2, 310.0, 436.0, "c1"));
        assert_eq!(parse_turn_line(&line.replace("\"turn\":2", "\"turn\":0")), None);
        assert_eq!(parse_turn_line(r#"{"fields":{"message":"ready"}}"#), None);
        assert_eq!(parse_turn_line("not json"), None);
    }
}
