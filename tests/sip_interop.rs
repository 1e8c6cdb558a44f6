//! Interop with SIP stacks the gateway was not written against: PJSIP (pjsua2, PyPI
//! `pjsua2-python`) and linphone (Debian's `linphone-cli`, belle-sip), over UDP and over TCP,
//! each way of ending a call. The caller must hear the
//! greeting, and every call must end with a BYE that is answered on the transport it came in
//! on (issue 16: TCP callers whose ACK and BYE went to UDP and lingered 32 s).

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs tests/peers/pjsip/call.py; its JSON verdict.
fn pjsip_call(gw: &Gateway, transport: &str, hold_s: f64, wait_for_bye: bool, record: &std::path::Path) -> Value {
    let script = repo_root().join("tests/peers/pjsip/call.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(format!("sip:ivr@127.0.0.1:{}", gw.sip_port()))
        .args(["--transport", transport, "--hold", &hold_s.to_string()])
        .arg("--record")
        .arg(record);
    if wait_for_bye {
        cmd.arg("--wait-for-bye");
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("python3 (scripts/setup.sh installs pjsua2-python)");
    let (_, timed_out) = wait_with_timeout(&mut child, Duration::from_secs(60));
    let out = child.wait_with_output().expect("PJSIP caller output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!timed_out, "the PJSIP caller hung\n{stdout}\n{}", gw.log_tail(30));
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("PJSIP caller printed no verdict ({e}): {stdout}\n{}\n--- gateway ---\n{}", String::from_utf8_lossy(&out.stderr), gw.log_tail(30))
    })
}

fn ended_reason(gw: &Gateway) -> String {
    let ended = gw
        .wait_for(|ev| event_message(ev) == Some("call ended"), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the gateway never ended the call\n{}", gw.log_tail(30)));
    event_field(&ended, "reason").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The caller hangs up: its BYE is answered at once, and the caller heard the greeting.
fn caller_hangs_up(transport: &str) {
    let gw = Gateway::start(&["--language", "en"]);
    let dir = temp_dir("pjsip-");
    let heard = dir.path().join("heard.wav");
    let v = pjsip_call(&gw, transport, 5.0, false, &heard);
    eprintln!("PJSIP over {transport}, caller hangs up: {v}");
    assert_eq!(v["confirmed"], true, "{v}\n{}", gw.log_tail(30));
    assert_eq!(v["hung_up_by"], "local", "{v}");
    assert_eq!(v["final_state"], "DISCONNECTED", "{v}");
    assert_eq!(v["bye_status"], 200, "the BYE was answered 200: {v}\n{}", gw.log_tail(20));
    assert!(v["bye_ms"].as_u64().is_some_and(|ms| ms < 2000), "the BYE was answered in {} ms", v["bye_ms"]);
    assert_eq!(ended_reason(&gw), "caller-hangup");
    // The greeting reached the caller over the negotiated G.711.
    let level = wav_rms_dbfs(&heard);
    assert!(level > -40.0, "the caller heard silence ({level:.1} dBFS)\n{}", gw.log_tail(20));
}

/// The gateway hangs up (the call's time limit): the caller gets the BYE on its transport.
fn gateway_hangs_up(transport: &str) {
    let (dir, gw) = Gateway::with_config("[calls]\nmax_duration_secs = 6\n", &["--language", "en"]);
    let started = Instant::now();
    let v = pjsip_call(&gw, transport, 20.0, true, &dir.path().join("heard.wav"));
    eprintln!("PJSIP over {transport}, gateway hangs up: {v}");
    assert_eq!(v["confirmed"], true, "{v}\n{}", gw.log_tail(30));
    assert_eq!(v["hung_up_by"], "remote", "the caller got the gateway's BYE: {v}\n{}", gw.log_tail(30));
    assert!(v["call_s"].as_f64().is_some_and(|s| (5.0..10.0).contains(&s)), "ended at the 6 s limit: {v}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let reason = ended_reason(&gw);
    assert!(!reason.contains("timeout"), "the gateway's side ended by {reason}, not cleanly\n{}", gw.log_tail(20));
}

#[test]
fn pjsip_over_udp_caller_hangs_up() {
    caller_hangs_up("udp");
}

#[test]
fn pjsip_over_tcp_caller_hangs_up() {
    caller_hangs_up("tcp");
}

#[test]
fn pjsip_over_udp_gateway_hangs_up() {
    gateway_hangs_up("udp");
}

#[test]
fn pjsip_over_tcp_gateway_hangs_up() {
    gateway_hangs_up("tcp");
}

/// linphone (linphonec, with no sound card here) calls over `transport`, stays a few seconds and
/// hangs up: the gateway answered and spoke, the BYE went on the call's own transport (to the
/// Contact) and was answered 200, and the gateway ended the call for the caller's hang-up.
fn linphone_caller_hangs_up(transport: &str) {
    let gw = Gateway::start(&["--language", "en"]);
    let dir = temp_dir("linphone-");
    std::fs::create_dir_all(dir.path().join(".local/share/linphone")).unwrap();
    let base = free_port_block(4);
    // Only the transport under test listens (-1: off).
    let (udp, tcp) = if transport == "tcp" { (-1, i32::from(base)) } else { (i32::from(base), -1) };
    let rc = dir.path().join("linphonerc");
    std::fs::write(&rc, format!("[sip]\nsip_port={udp}\nsip_tcp_port={tcp}\nsip_tls_port=-1\nuse_ipv6=0\n\n[rtp]\naudio_rtp_port={}\n", base + 2)).unwrap();
    let log_path = dir.path().join("linphone.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut linphone = Command::new("linphonec")
        .arg("-c")
        .arg(&rc)
        .args(["-d", "6"])
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("linphonec (scripts/setup.sh --for-tests installs linphone-cli)");
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // linphonec reads its commands on stdin and quits at its end: they are fed one at a time.
    let mut commands = linphone.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !log_text().contains("Creating listening point") {
        assert!(Instant::now() < deadline, "linphonec did not start:\n{}", log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    writeln!(commands, "call sip:ivr@127.0.0.1:{};transport={transport}", gw.sip_port()).unwrap();
    gw.wait_for(|ev| event_message(ev) == Some("turn"), Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the gateway never greeted linphone\n{}\n--- linphone ---\n{}", gw.log_tail(30), log_text()));
    std::thread::sleep(Duration::from_secs(4));
    writeln!(commands, "terminate").unwrap();
    let ended = gw
        .wait_for(|ev| event_message(ev) == Some("call ended"), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the gateway never ended the call\n{}\n--- linphone ---\n{}", gw.log_tail(30), log_text()));
    assert_eq!(event_field(&ended, "reason").and_then(Value::as_str), Some("caller-hangup"), "{ended}");
    assert!(event_field(&ended, "packets_sent").and_then(Value::as_u64).is_some_and(|n| n > 100), "the greeting went out as RTP: {ended}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_text().contains("LinphoneCallEnd to LinphoneCallReleased") {
        assert!(Instant::now() < deadline, "linphone's call never ended cleanly:\n{}", log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = writeln!(commands, "quit");
    drop(commands);
    let (_, hung) = wait_with_timeout(&mut linphone, Duration::from_secs(10));
    let text = log_text();
    assert!(!hung, "linphonec did not quit:\n{text}");
    assert!(text.contains("LinphoneCallStreamsRunning"), "the call was established:\n{text}");
    let bye = text.lines().find(|l| l.starts_with("BYE sip:")).unwrap_or_else(|| panic!("linphone sent no BYE:\n{text}"));
    assert!(bye.to_lowercase().contains(&format!("transport={transport}")) || transport == "udp", "BYE to the Contact on {transport}: {bye}");
    assert!(text.contains("Client BYE transaction") && text.contains("receiving call response [200], dialog is") && text.contains("BELLE_SIP_DIALOG_TERMINATED"), "the BYE was answered 200:\n{text}");
}

#[test]
fn linphone_over_udp_caller_hangs_up() {
    linphone_caller_hangs_up("udp");
}

#[test]
fn linphone_over_tcp_caller_hangs_up() {
    linphone_caller_hangs_up("tcp");
}
