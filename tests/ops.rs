//! The Ops gRPC service against real clients during real calls: grpcurl 1.8 (reflection
//! v1alpha) lists and reads; a Python grpcio client generated from proto/ steers a live call
//! (say, escalate to a real baresip agent, hang up); draining refuses a new INVITE with 503
//! while the call in progress completes; ten watchers during a call, measured.

mod common;

use common::ops::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = OPS_TOKEN;

/// A gateway whose Ops port accepts [`TOKEN`] (from a config file, as in production).
fn ops_gateway(dir: &Path, extra: &[&str]) -> Gateway {
    let config = dir.join("ops.toml");
    std::fs::write(&config, format!("[ops]\ntokens = [\"{TOKEN}\"]\n")).unwrap();
    let mut args = vec!["--config", config.to_str().unwrap(), "--language", "en"];
    args.extend_from_slice(extra);
    Gateway::start(&args)
}

/// One sipp call of `scenario` in the background.
fn sipp_in_background(gw: &Gateway, scenario: &str, vars: Vec<(String, String)>) -> std::thread::JoinHandle<SippResult> {
    let (scenario, port) = (sipp_scenario(scenario), gw.sip_port());
    std::thread::spawn(move || run_sipp_with(&scenario, port, SippOptions { vars, ..SippOptions::default() }))
}

#[test]
fn grpcurl_reads_a_live_call_and_draining_refuses_new_calls_while_it_completes() {
    let dir = temp_dir("ops-grpcurl-");
    let gw = ops_gateway(dir.path(), &[]);
    let target = gw.ops_target();

    // Discovery by reflection (grpcurl 1.8.6 speaks v1alpha), no token needed; health too.
    let list = grpcurl(&[&target, "list"]);
    let services = String::from_utf8_lossy(&list.stdout);
    for s in ["frontline.ops.v1.Ops", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"] {
        assert!(services.lines().any(|l| l == s), "{s} not listed: {services}\n{}", String::from_utf8_lossy(&list.stderr));
    }
    let health = Command::new("grpcurl").args(["-plaintext", &target, "grpc.health.v1.Health/Check"]).output().unwrap();
    assert!(String::from_utf8_lossy(&health.stdout).contains("SERVING"), "{health:?}");
    let anonymous = Command::new("grpcurl").args(["-plaintext", &target, "frontline.ops.v1.Ops/GetStats"]).output().unwrap();
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("Unauthenticated"), "{anonymous:?}");

    let (mut watcher, watch_file) = grpcurl_watch(&gw, dir.path(), "{}");
    wait_for_watchers(&gw, 1);
    let vars = caller_vars(&fixture("en_balance.wav"), dir.path(), &[("REPLY_MS", "7000".into())]);
    let first = sipp_in_background(&gw, "uac_stream.xml", vars);
    let call_id = started_call(&gw, 0);

    let live = grpcurl_call(&gw, "ListCalls", r#"{"state": "live", "channel": "sip"}"#);
    let calls = live["calls"].as_array().unwrap_or_else(|| panic!("no live calls: {live}"));
    assert_eq!(calls.len(), 1, "{live}");
    assert_eq!(calls[0]["callId"], call_id.as_str());
    assert_eq!(calls[0]["state"], "CALL_STATE_AI", "{live}");
    let stats = grpcurl_call(&gw, "GetStats", "{}");
    assert_eq!(stats["activeCalls"], 1, "{stats}");
    assert_eq!(stats["activeByState"]["ai"], 1, "{stats}");
    assert_eq!(stats["models"]["recognizer"], "whisper base-q8_0", "{stats}");
    assert!(stats["models"]["recognizerPath"].as_str().is_some_and(|p| p.ends_with("ggml-base-q8_0.bin")), "{stats}");

    // Draining: the next INVITE gets 503 + Retry-After, the call in progress goes on.
    let drain = grpcurl_call(&gw, "SetDraining", r#"{"draining": true}"#);
    assert_eq!(drain["draining"], true, "{drain}");
    // A load balancer's health check sees the gateway stop taking calls; the Ops service
    // itself stays up to undo it.
    let health = |service: &str| {
        let out = Command::new("grpcurl").args(["-plaintext", "-d", &format!(r#"{{"service": "{service}"}}"#), &target, "grpc.health.v1.Health/Check"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(health("").contains("NOT_SERVING"), "{}", health(""));
    assert!(health("frontline.ops.v1.Ops").contains("\"SERVING\""), "{}", health("frontline.ops.v1.Ops"));
    let refused = run_sipp(&sipp_scenario("uac_expect_503.xml"), gw.sip_port(), &[]);
    assert!(refused.success(), "a new call while draining must get 503:\n{}", refused.report());
    let first = first.join().unwrap();
    assert!(first.success(), "the call in progress completes while draining:\n{}\n{}", first.report(), gw.log_tail(30));
    let end = ended_event(&gw, &call_id);
    assert_eq!(field(&end, "outcome"), "contained", "{end}");
    grpcurl_call(&gw, "SetDraining", r#"{"draining": false}"#);
    assert!(health("").contains("\"SERVING\""), "{}", health(""));

    // The finished call, read back.
    let call = &grpcurl_call(&gw, "GetCall", &format!(r#"{{"call_id": "{call_id}"}}"#))["call"];
    let timeline: Vec<&str> = call["timeline"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(timeline, ["CALL_STATE_ANSWERED", "CALL_STATE_AI", "CALL_STATE_ENDED"], "{call}");
    let turns = call["turns"].as_array().unwrap_or_else(|| panic!("no turns: {call}"));
    // What was recognized is the recognizer's business (tests/sip_calls.rs); here: it is kept.
    assert!(turns.iter().any(|t| !t["heard"].as_str().unwrap_or("").is_empty()), "{call}");
    assert!(turns.iter().all(|t| t["firstRtpMs"].as_u64().unwrap_or(0) > 0), "every turn has its latency: {call}");
    let stats = grpcurl_call(&gw, "GetStats", "{}");
    assert_eq!((stats["callsFinished"].as_str(), stats["containmentRate"].as_f64()), (Some("1"), Some(1.0)), "{stats}");
    assert!(stats["firstRtp"]["p50Ms"].as_u64().unwrap_or(0) > 0, "{stats}");

    // The watcher saw the call from start to end.
    std::thread::sleep(Duration::from_millis(300));
    let _ = watcher.kill();
    let _ = watcher.wait();
    let text = std::fs::read_to_string(&watch_file).unwrap();
    let events: Vec<Value> = serde_json::Deserializer::from_str(&text).into_iter::<Value>().map(|v| v.unwrap()).collect();
    let kinds: Vec<&str> = events.iter().filter(|e| e["callId"] == call_id.as_str()).map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"ended"), "{kinds:?}");
    assert!(kinds.contains(&"said"), "{kinds:?}");
}

/// Stubs for the Python client, generated from proto/ the way any client team would.
fn python_stubs(dir: &Path) -> PathBuf {
    let out = dir.join("stubs");
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new("python3")
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(repo_root().join("proto"))
        .arg(format!("--python_out={}", out.display()))
        .arg(format!("--grpc_python_out={}", out.display()))
        .arg(repo_root().join("proto/frontline/ops/v1/ops.proto"))
        .status()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(status.success(), "grpc_tools.protoc failed (scripts/setup.sh installs grpcio-tools)");
    out
}

fn python_client(stubs: &Path, gw: &Gateway, args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(repo_root().join("tests/ops/ops_client.py"))
        .arg(stubs)
        .arg(gw.ops_target())
        .arg(TOKEN)
        .args(args)
        .output()
        .expect("run the python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python client {args:?}: {stdout}\n{}\n{}", String::from_utf8_lossy(&out.stderr), gw.log_tail(40));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn a_supervisor_client_says_escalates_to_a_real_agent_and_hangs_up() {
    let dir = temp_dir("ops-python-");
    let stubs = python_stubs(dir.path());
    let agent = BaresipAgent::start(&fixture("en_data.wav"));
    let gw = ops_gateway(dir.path(), &["--agent", &agent.uri()]);
    let vars = caller_vars(&fixture("en_balance.wav"), dir.path(), &[("WAIT_MS", "60000".into())]);
    let caller = sipp_in_background(&gw, "uac_until_bye.xml", vars);
    let out = python_client(&stubs, &gw, &["control"]);
    eprintln!("python client: {out}");

    // The caller got the gateway's BYE.
    let caller = caller.join().unwrap();
    assert!(caller.success(), "the caller is hung up on:\n{}", caller.report());
    let call_id = out["call_id"].as_str().unwrap();
    for refused in ["no_token", "wrong_token"] {
        assert!(out[refused].as_str().is_some(), "{refused}: {out}");
    }
    assert!(out["bad_state"].as_str().unwrap().starts_with("state:"), "{out}");
    assert!(out["bad_channel"].as_str().unwrap().starts_with("channel:"), "{out}");
    assert!(out["bad_event_type"].as_str().unwrap().starts_with("types:"), "{out}");

    // GetCall: the handoff happened through triage, then the supervisor's hang-up ended it.
    let timeline: Vec<&str> = out["timeline"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(
        timeline,
        ["CALL_STATE_ANSWERED", "CALL_STATE_AI", "CALL_STATE_HANDING_OVER", "CALL_STATE_BRIDGED", "CALL_STATE_ENDED"],
        "{out}"
    );
    assert_eq!(out["outcome"], "escalated", "{out}");
    assert_eq!(out["end_reason"], "supervisor-ended", "{out}");
    assert_eq!(out["decisions"][0]["code"], "operator-request", "{out}");
    assert_eq!(out["decisions"][0]["evidence"][0], "caller sounds confused", "{out}");
    assert_eq!(out["packet"]["code"], "operator-request", "the agent got the packet: {out}");
    assert!(out["transcript_speakers"].as_array().unwrap().iter().any(|s| s == "supervisor"), "{out}");
    assert_eq!(out["stats"]["escalation_rate_by_reason"]["operator-request"], 1.0, "{out}");

    // And the gateway's log says the same.
    let escalation = gw.wait_for_message("escalation", Duration::from_secs(1)).expect("escalation logged");
    assert_eq!((field(&escalation, "call_id"), field(&escalation, "code")), (call_id, "operator-request"));
    assert!(gw.wait_for_message("bridged", Duration::from_secs(1)).is_some(), "{}", gw.log_tail(30));
    assert!(agent.answered(), "the agent answered:\n{}", agent.log());
    let end = ended_event(&gw, call_id);
    assert_eq!((field(&end, "reason"), field(&end, "outcome")), ("supervisor-ended", "escalated"), "{end}");
}

/// User + system CPU time of a process so far, from /proc (clock ticks of 10 ms on Linux).
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) * 10
}

#[test]
fn ten_watchers_see_every_call_event_without_slowing_calls() {
    let dir = temp_dir("ops-watchers-");
    let stubs = python_stubs(dir.path());
    let gw = ops_gateway(dir.path(), &[]);
    let vars = caller_vars(&fixture("en_balance.wav"), dir.path(), &[("REPLY_MS", "6000".into())]);
    let mut figures = Vec::new();
    let mut subscribed = 0;
    // Alternating, so a trend on this shared machine (other builds) does not look like an effect.
    for (i, watchers) in [0usize, 10, 0, 10].into_iter().enumerate() {
        let cpu_before = cpu_ms(gw.pid());
        let client = (watchers > 0).then(|| {
            let (stubs, target) = (stubs.clone(), gw.ops_target());
            std::thread::spawn(move || {
                let out = Command::new("python3")
                    .arg(repo_root().join("tests/ops/ops_client.py"))
                    .args([stubs.to_str().unwrap(), &target, TOKEN, "watch", &watchers.to_string(), "14"])
                    .output()
                    .unwrap();
                serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
            })
        });
        subscribed += watchers;
        wait_for_watchers(&gw, subscribed);
        let call = sipp_in_background(&gw, "uac_stream.xml", vars.clone()).join().unwrap();
        assert!(call.success(), "{}", call.report());
        let call_id = started_call(&gw, i);
        ended_event(&gw, &call_id);
        let cpu = cpu_ms(gw.pid()) - cpu_before;
        let turns: Vec<u64> = gw
            .events("turn")
            .iter()
            .filter(|t| field(t, "call_id") == call_id)
            .filter_map(|t| event_field(t, "first_rtp_ms").and_then(Value::as_u64))
            .collect();
        if let Some(client) = client {
            let out = client.join().unwrap();
            assert_eq!(out["errors"].as_array().unwrap().len(), 0, "{out}");
            let counts: Vec<u64> = out["events"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
            // started, said (caller, bot, ...), ended: every watcher got all of them.
            assert!(counts.iter().all(|&c| c >= 4 && c == counts[0]), "{out}");
        }
        // Recognition dominates both figures: its decode time shows how busy the machine was.
        let decode_ms: Vec<u64> = gw
            .events("recognized")
            .iter()
            .filter(|t| field(t, "call_id") == call_id)
            .filter_map(|t| event_field(t, "decode_ms").and_then(Value::as_u64))
            .collect();
        eprintln!("OPS-FIGURES watchers={watchers} gateway_cpu_ms={cpu} turn_first_rtp_ms={turns:?} decode_ms={decode_ms:?}");
        figures.push((watchers, cpu, turns));
    }
    assert!(figures.iter().all(|(_, _, turns)| !turns.is_empty()), "{figures:?}");
}
