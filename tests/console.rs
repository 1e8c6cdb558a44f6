//! The agent console in a real browser: headless Debian chromium (driven by playwright-core,
//! `tests/console/console.mjs`) has the console open while a baresip caller asks for a person;
//! the page must show the live call's handoff packet without a reload. Also the JSON API the
//! page is built on, over plain HTTP.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn console_dir() -> PathBuf {
    repo_root().join("tests/console")
}

fn driver_ready() {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian chromium is missing: run scripts/setup.sh");
    assert!(
        console_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing in tests/console/node_modules: run scripts/setup.sh"
    );
}

#[test]
fn the_console_shows_the_handoff_packet_of_a_live_call() {
    driver_ready();
    let dir = temp_dir("console-");
    let agent = BaresipAgent::start(&fixture("en_data.wav"));
    let gw = Gateway::start(&["--language", "en", "--agent", &agent.uri()]);
    let url = format!("{}/console", gw.http_url());

    // The API before any call: an empty list, the page itself, and a clear 404.
    let (status, body) = http_get(&gw.http_url(), "/api/calls");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["calls"], serde_json::json!([]));
    let (status, page) = http_get(&gw.http_url(), "/console");
    assert!(status == 200 && page.contains("agent console"), "{status} {page}");
    let (status, body) = http_get(&gw.http_url(), "/api/calls/nope/handoff");
    assert_eq!(status, 404);
    assert!(body.contains("no call nope"), "{body}");

    let screenshot = dir.path().join("console.png");
    let mut browser = Command::new("node")
        .arg(console_dir().join("console.mjs"))
        .arg(&url)
        .arg(&screenshot)
        .arg("90000")
        .current_dir(console_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node (run scripts/setup.sh)");
    // The page must be open (its event stream live) before the call starts: what it shows
    // then comes over SSE, not from a fresh load.
    let (tx, rx) = mpsc::channel();
    let stderr = browser.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("console loaded") {
                let _ = tx.send(None);
            }
            all.push_str(&line);
            all.push('\n');
        }
        let _ = tx.send(Some(all));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(None) => {}
        other => {
            let _ = browser.kill();
            panic!("the console did not load in chromium: {other:?}");
        }
    }

    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(24), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &fixture("en_agent.wav"), opts);
    assert!(call.established(), "{}", call.log);

    let mut stdout = String::new();
    browser.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = browser.wait().unwrap();
    let driver_log = rx.recv_timeout(Duration::from_secs(5)).ok().flatten().unwrap_or_default();
    assert!(status.success(), "console driver failed: {driver_log}\n--- gateway ---\n{}", gw.log_tail(30));
    let shown: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    eprintln!("the console showed: {shown:#}");
    eprintln!("screenshot: {}", screenshot.display());
    if let Ok(keep) = std::env::var("FRONTLINE_CONSOLE_SCREENSHOT") {
        let _ = std::fs::copy(&screenshot, keep);
    }

    // The packet of the live call, shown as it happened.
    assert_ne!(shown["stage_when_shown"], "ended", "the packet appeared only after the call: {shown}");
    assert_eq!(shown["code"], "explicit-request", "{shown}");
    assert_eq!(shown["calls"].as_array().map(Vec::len), Some(1), "{shown}");
    let evidence = shown["evidence"].to_string().to_lowercase();
    let summary = shown["summary"].as_str().unwrap_or_default().to_lowercase();
    assert!(evidence.contains("person") && summary.contains("person"), "the caller's words are on the page: {shown}");
    let transcript = shown["transcript"].as_array().unwrap();
    assert!(
        transcript.iter().any(|l| l["speaker"] == "caller" && l["text"].as_str().unwrap_or_default().to_lowercase().contains("real person")),
        "{shown}"
    );
    // What the gateway itself told the caller is there too, so the agent knows what was promised.
    assert!(transcript.iter().any(|l| l["speaker"] == "bot" && l["text"].as_str().unwrap_or_default().contains("connect you with a colleague")), "{shown}");
    assert!(shown["errors"].as_array().unwrap().is_empty(), "the page logged errors: {shown}");
    assert!(std::fs::metadata(&screenshot).map(|m| m.len() > 10_000).unwrap_or(false), "no screenshot");

    // The same packet over the API, and the call's end recorded for the wrap-up.
    gw.wait_for_message("call ended", Duration::from_secs(15)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));
    let call_id = shown["calls"][0]["call_id"].as_str().unwrap().to_string();
    let (status, body) = http_get(&gw.http_url(), &format!("/api/calls/{call_id}/handoff"));
    assert_eq!(status, 200, "{body}");
    let packet: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(packet["code"], "explicit-request");
    assert_eq!(packet["call_id"], call_id.as_str());
    let (_, body) = http_get(&gw.http_url(), "/api/calls");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["calls"][0]["stage"], "ended", "{list}");
    let (status, body) = http_get(&gw.http_url(), &format!("/api/calls/{call_id}/suggestions"));
    assert!(status == 200 || status == 501, "suggestions: {status} {body}");
    drop(agent);
}
