//! Browser pages as peers: headless Debian chromium driven by playwright-core scripts
//! (`tests/webrtc/caller.mjs`, the caller page; `tests/webrtc/agent.mjs`, an agent on the
//! console page), each with a speech fixture as its microphone.

use super::{repo_root, Gateway};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A config keeping WebRTC on loopback, plus `extra` TOML.
pub fn loopback_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("frontline.toml");
    std::fs::write(&path, format!("[webrtc]\nudp_bind = [\"127.0.0.1:0\"]\n{extra}")).unwrap();
    path
}

pub fn driver_ready() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian chromium is missing: run scripts/setup.sh");
    assert!(
        repo_root().join("tests/console/node_modules/playwright-core").exists(),
        "playwright-core is missing in tests/console/node_modules: run scripts/setup.sh"
    );
}

/// The fake microphone: two seconds of quiet (chromium starts the file at getUserMedia, before
/// the call is connected), `parts` joined (16-bit, 48 kHz), then `tail_secs` of silence,
/// because chromium loops the file and the caller must not repeat itself.
pub fn microphone(dir: &Path, parts: &[(&Path, f32)], tail_secs: u32) -> PathBuf {
    let out = dir.join("microphone.wav");
    let mut inputs = Vec::new();
    for (i, (wav, pad_after)) in parts.iter().enumerate() {
        let part = dir.join(format!("part{i}.wav"));
        let ok = Command::new("sox")
            .arg(wav)
            .args(["-r", "48000", "-c", "1", "-b", "16"])
            .arg(&part)
            .args(["pad", if i == 0 { "2" } else { "0" }, &pad_after.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "sox {}", wav.display());
        inputs.push(part);
    }
    let ok = Command::new("sox").args(&inputs).arg(&out).args(["pad", "0", &tail_secs.to_string()]).status().unwrap().success();
    assert!(ok, "joining the microphone script");
    out
}

/// Starts the caller page's driver; returns once the browser's call is connected.
pub fn start_caller(gw: &Gateway, mic: &Path, out: &Path, mode: &str, timeout_ms: u64) -> (Child, mpsc::Receiver<String>) {
    let (script, url, timeout) = (repo_root().join("tests/webrtc/caller.mjs"), gw.http_url(), timeout_ms.to_string());
    start_driver(gw, &[script.as_os_str(), url.as_ref(), mic.as_os_str(), out.as_os_str(), mode.as_ref(), timeout.as_ref()], "connected", &[])
}

/// Starts an agent on the console page (`tests/webrtc/agent.mjs`); returns once signed in.
/// `console_token`: the token the page signs in to the console with, when the gateway has one.
pub fn start_agent(gw: &Gateway, agent: &str, console_token: Option<&str>, mic: &Path, out: &Path, timeout_ms: u64) -> (Child, mpsc::Receiver<String>) {
    let (script, url, timeout) = (repo_root().join("tests/webrtc/agent.mjs"), gw.http_url(), timeout_ms.to_string());
    let args = [script.as_os_str(), url.as_ref(), agent.as_ref(), mic.as_os_str(), out.as_os_str(), timeout.as_ref()];
    start_driver(gw, &args, "signed in", &[("CONSOLE_TOKEN", console_token.unwrap_or_default())])
}

/// Runs `node ARGS` with `envs`; returns once the driver prints `ready` on stderr.
pub fn start_driver(gw: &Gateway, args: &[&std::ffi::OsStr], ready: &str, envs: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    driver_ready();
    let mut node = Command::new("node");
    node.args(args).envs(envs.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = node.spawn().expect("start node (run scripts/setup.sh)");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen = String::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line == ready => return (child, rx),
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    panic!("the browser page never got to {ready:?}:\n{seen}\n--- gateway ---\n{}", gw.log_tail(40));
}

/// Waits for a page driver and returns its JSON report.
pub fn finish_driver(mut child: Child, rx: mpsc::Receiver<String>, gw: &Gateway) -> Value {
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    let log: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "page driver failed: {}\n--- gateway ---\n{}", log.join("\n"), gw.log_tail(40));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}
