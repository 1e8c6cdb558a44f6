//! Browser callers over WebRTC, end to end: headless Debian chromium (driven by playwright-core,
//! `tests/webrtc/caller.mjs`) opens the gateway's caller page with a speech fixture as its
//! microphone. The gateway must recognize the words, the page must hear the spoken reply, a
//! caller asking for a person must reach a SIP agent who hears them, and bad offers, a full
//! gateway and a vanished browser must get the protocol's own answers. All traffic stays on
//! loopback: the gateway gathers only 127.0.0.1 candidates (`[webrtc] udp_bind`), chromium
//! runs with `--allow-loopback-in-peer-connection`.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn text_field(ev: &Value, name: &str) -> String {
    event_field(ev, name).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The gateway's CPU time so far, in ms.
fn cpu_ms(pid: u32) -> u64 {
    frontline::bench::gateway::proc_cpu_ms(pid).expect("the gateway's /proc/PID/stat")
}

/// A minimal HTTP/1.1 request (the test needs no HTTP client crate): status, head, body.
fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn post_sdp(gw: &Gateway, sdp: &str) -> (u16, String, String) {
    http(&gw.http_url(), "POST", "/webrtc/calls", &[("Content-Type", "application/sdp")], sdp)
}

/// An offer as Chromium writes it (audio only, Opus and telephone-event), enough for the
/// gateway to negotiate; nobody will answer its ICE checks.
const BROWSER_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 1D:9D:33:50:33:8B:06:B8:4C:56:40:6D:68:B0:F0:5E:0F:A4:4C:3F:7D:FD:2D:6E:27:B6:29:4D:C8:E0:2D:3C\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:110 telephone-event/48000\r\n";

#[test]
fn a_browser_caller_is_understood_hears_the_reply_and_uses_the_keypad() {
    let dir = temp_dir("webrtc-");
    let config = loopback_config(dir.path(), "");
    let gw = Gateway::start(&["--language", "en", "--config", config.to_str().unwrap()]);
    let mic = microphone(dir.path(), &[(&fixture("en_balance.wav"), 0.0)], 40);
    // The call's CPU figure should not include the start-up's pre-synthesis of fixed prompts,
    // which runs in the background after "ready".
    let _ = gw.wait_for_message("fixed lines ready", Duration::from_secs(30));
    let cpu_before = cpu_ms(gw.pid());
    let (child, rx) = start_caller(&gw, &mic, dir.path(), "reply", 40_000);
    let page = finish_driver(child, rx, &gw);
    let ended = gw.wait_for_message("call ended", Duration::from_secs(15)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));
    let cpu = cpu_ms(gw.pid()) - cpu_before;

    // The gateway understood the browser's words...
    let recognized = gw.wait_for_message("recognized", Duration::from_secs(1)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));
    let said = text_field(&recognized, "text");
    let wer = word_error_rate("What is my account balance?", &said);
    assert!(wer <= 0.4, "recognized {said:?} (WER {wer:.2})");
    // ...as a WebRTC call, and the page showed both sides as captions.
    let started = gw.wait_for_message("call started", Duration::from_secs(1)).unwrap();
    assert!(text_field(&started, "channel").eq_ignore_ascii_case("webrtc"), "{started}");
    assert_eq!(text_field(&started, "codec"), "opus", "{started}");
    let captions = page["captions"].as_array().unwrap();
    assert!(captions.iter().any(|c| c["speaker"] == "caller" && c["text"].as_str().unwrap().to_lowercase().contains("balance")), "{page}");

    // The page heard the spoken reply: whisper on what the browser played out should find
    // about as many of the reply's words as in the same reply rendered off the network.
    let turn = gw.events("turn").into_iter().find(|t| event_field(t, "turn").and_then(Value::as_u64).unwrap_or(0) >= 1).unwrap_or_else(|| panic!("no turn\n{}", gw.log_tail(40)));
    let reply = text_field(&turn, "reply");
    let heard_wav = dir.path().join("heard.wav");
    let heard = transcribe_recording(&heard_wav, "en");
    let reference = reference_rendering(&reply, "en");
    let (share, expected) = (heard_share(&reply, &heard), heard_share(&reply, &reference));
    assert!(
        share >= 0.25 && share >= expected - 0.25,
        "reply {reply:?}: the page heard {heard:?} ({:.0}%); off the network {reference:?} ({:.0}%)",
        share * 100.0,
        expected * 100.0
    );

    // The keypad: RFC 4733 from RTCDTMFSender reached the call as a digit.
    let dtmf = gw.wait_for_message("dtmf", Duration::from_secs(3)).unwrap_or_else(|| panic!("no DTMF\n{}", gw.log_tail(30)));
    assert_eq!(text_field(&dtmf, "digit"), "5");

    // The page's hang-up (DELETE) ended the call like a BYE.
    assert_eq!(text_field(&ended, "reason"), "caller-hangup", "{ended}");
    assert!(event_field(&ended, "packets_received").and_then(Value::as_u64).unwrap_or(0) > 100, "{ended}");

    // Figures for the report (noisy: other builds share this machine).
    // (The same reckoning as `frontline bench browser`.)
    let reply_latency = frontline::bench::browser::page_reply_latency_ms(&page);
    if let Some(latency) = reply_latency {
        eprintln!(
            "FIGURE webrtc turn latency (end of caller speech -> first reply audio in the browser): {latency:.1} ms; gateway turn line: speech_ms={} transcript_ms={} brain_ms={} tts_ms={} first_rtp_ms={}",
            event_field(&turn, "speech_ms").unwrap_or(&Value::Null),
            event_field(&turn, "transcript_ms").unwrap_or(&Value::Null),
            event_field(&turn, "brain_ms").unwrap_or(&Value::Null),
            event_field(&turn, "tts_ms").unwrap_or(&Value::Null),
            event_field(&turn, "first_rtp_ms").unwrap_or(&Value::Null),
        );
    }
    let duration_ms = event_field(&ended, "duration_ms").and_then(Value::as_u64).unwrap_or(0);
    eprintln!("FIGURE gateway CPU for one webrtc call: {cpu} ms over a {duration_ms} ms call (whisper, TTS, Opus, DTLS/SRTP together)");
}

#[test]
fn a_browser_caller_asking_for_a_person_reaches_a_sip_agent_who_hears_them() {
    let dir = temp_dir("webrtc-handoff-");
    let agent = BaresipAgent::start(&fixture("en_data.wav"));
    let config = loopback_config(dir.path(), "");
    let gw = Gateway::start(&["--language", "en", "--agent", &agent.uri(), "--config", config.to_str().unwrap()]);
    // Ask for a person, wait through the bridging, then say something the agent must hear.
    let mic = microphone(dir.path(), &[(&fixture("en_agent.wav"), 9.0), (&fixture("en_balance.wav"), 0.0)], 40);
    let (child, rx) = start_caller(&gw, &mic, dir.path(), "stay", 26_000);
    let page = finish_driver(child, rx, &gw);
    gw.wait_for_message("call ended", Duration::from_secs(15)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));

    let escalation = gw.wait_for_message("escalation", Duration::from_secs(1)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));
    assert_eq!(text_field(&escalation, "category"), "explicit", "{escalation}");
    gw.wait_for_message("bridged", Duration::from_secs(1)).unwrap_or_else(|| panic!("not bridged\n{}", gw.log_tail(40)));
    assert!(agent.answered(), "the agent answered:\n{}", agent.log());
    // Opus from the browser, G.711 to the agent: the agent heard the caller's words (the
    // same bar as the SIP caller's handoff test).
    let heard = transcribe_recording(&agent.heard_wav().expect("the agent recorded the call"), "en");
    let wer = word_error_rate("What is my account balance?", &heard);
    assert!(wer <= 0.5 || heard.to_lowercase().contains("balance"), "agent heard {heard:?} (WER {wer:.2}); captions: {}", page["captions"]);
}

#[test]
fn a_browser_caller_reaches_an_agent_answering_on_the_console_page_and_they_hear_each_other() {
    let dir = temp_dir("webrtc-desk-");
    let (caller_dir, agent_dir) = (dir.path().join("caller"), dir.path().join("agent"));
    std::fs::create_dir_all(&caller_dir).unwrap();
    std::fs::create_dir_all(&agent_dir).unwrap();
    // The console asks agents for a token; the caller page stays public.
    let config = loopback_config(dir.path(), "[http]\nconsole_tokens = [\"desk-token-7\"]\n");
    let gw = Gateway::start(&["--language", "en", "--agent", "console:alice", "--config", config.to_str().unwrap()]);
    for path in ["/api/calls", "/webrtc/agents/alice/events"] {
        let (status, head, body) = http(&gw.http_url(), "GET", path, &[], "");
        assert_eq!(status, 401, "{path}: {body}");
        assert!(head.to_lowercase().contains("www-authenticate: bearer") && body.contains("console_tokens"), "{path}: {head}{body}");
    }
    let (status, _, body) = http(&gw.http_url(), "GET", "/api/calls", &[("Authorization", "Bearer desk-token-7")], "");
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http(&gw.http_url(), "POST", "/console/session", &[("Content-Type", "application/json")], r#"{"token": "guess"}"#);
    assert_eq!(status, 401, "{body}");

    // Alice signs in on the console page; her microphone says the data line two seconds
    // after she answers.
    let agent_mic = microphone(&agent_dir, &[(&fixture("en_data.wav"), 0.0)], 60);
    let (agent, agent_rx) = start_agent(&gw, "alice", Some("desk-token-7"), &agent_mic, &agent_dir, 45_000);
    // The caller asks for a person, waits through the bridging, then says something Alice
    // must hear.
    let caller_mic = microphone(&caller_dir, &[(&fixture("en_agent.wav"), 9.0), (&fixture("en_balance.wav"), 0.0)], 40);
    let (caller, caller_rx) = start_caller(&gw, &caller_mic, &caller_dir, "stay", 26_000);
    let page = finish_driver(caller, caller_rx, &gw);
    let desk = finish_driver(agent, agent_rx, &gw);
    let ended = gw.wait_for_message("call ended", Duration::from_secs(15)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));

    // Triage handed the caller over, and the gateway bridged them to Alice's browser.
    let escalation = gw.wait_for_message("escalation", Duration::from_secs(1)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));
    assert_eq!(text_field(&escalation, "category"), "explicit", "{escalation}");
    let bridged = gw.wait_for_message("bridged", Duration::from_secs(1)).unwrap_or_else(|| panic!("not bridged\n{}", gw.log_tail(40)));
    assert_eq!(text_field(&bridged, "agent"), "console:alice", "{bridged}");
    assert_eq!(text_field(&bridged, "codec"), "opus", "{bridged}");
    assert_eq!(desk["call_id"], page["call_id"], "the desk rang for the caller's call: {desk}");
    let states: Vec<&str> = desk["states"].as_array().unwrap().iter().filter_map(|s| s["state"].as_str()).collect();
    assert!(states.windows(2).any(|w| w == ["ringing", "answering"]), "{states:?}");
    assert!(states.contains(&"on_call") && states.last() == Some(&"waiting"), "the desk ends back waiting for calls: {states:?}");

    // Alice heard the caller's words (Opus both ways, through the gateway)...
    let heard_by_agent = transcribe_recording(&agent_dir.join("heard.wav"), "en");
    let wer = word_error_rate("What is my account balance?", &heard_by_agent);
    assert!(wer <= 0.5 || heard_by_agent.to_lowercase().contains("balance"), "Alice heard {heard_by_agent:?} (WER {wer:.2})");
    // ...and the caller heard Alice: the gateway transcribed her side, and the caller's page
    // played her words.
    // (whisper base on espeak's voice after Opus, and G.711 for a phone: runs hear 6 to 9 of
    // the 9 words, so the bar is half of them; a silent or garbled path gets none.)
    const ALICE: &str = "How much data do I have left this month?";
    let agent_lines: Vec<String> = gw.events("transcript").iter().filter(|e| text_field(e, "speaker") == "agent").map(|e| text_field(e, "text")).collect();
    // (The share of her words, not the WER: runs that read "data do I have left this month"
    // as "did I do? I can't lift this man" keep 5 of her 9 words but score a WER of 0.67.)
    assert!(agent_lines.iter().any(|l| heard_share(ALICE, l) >= 0.5), "agent side transcribed as {agent_lines:?}");
    // (From the bridge on, as in the phone caller's test: the page starts recording when the
    // bot's track arrives, about when the gateway starts the call.)
    let started = gw.wait_for_message("call started", Duration::from_secs(1)).expect("call started");
    let after_bridge = recording_from(&caller_dir.join("heard.wav"), secs_between(&started, &bridged) - 0.5);
    let heard_by_caller = transcribe_recording(&after_bridge, "en");
    let share = heard_share(ALICE, &heard_by_caller);
    assert!(share >= 0.5, "the caller heard {heard_by_caller:?}: {:.0}% of Alice's words", share * 100.0);

    // The caller's hang-up ended the call for both, with Alice freed for the next one.
    assert_eq!(text_field(&ended, "reason"), "caller-hangup", "{ended}");
    gw.wait_for_message("console agent leg ended", Duration::from_secs(5)).unwrap_or_else(|| panic!("{}", gw.log_tail(30)));
    assert!(desk["errors"].as_array().unwrap().is_empty(), "console page errors: {}", desk["errors"]);
    let (_, _, metrics) = http(&gw.http_url(), "GET", "/metrics", &[], "");
    assert!(metrics.contains(r#"frontline_agent_dials_total{kind="console",result="answered"} 1"#), "{metrics}");
    eprintln!(
        "FIGURE console agent: decision to bridge {} ms (the test's agent waits 0.8 s before answering); Alice heard {heard_by_agent:?}; the gateway heard Alice as {agent_lines:?}; the caller heard {:.0}% of Alice's words",
        event_field(&bridged, "decision_to_bridge_ms").unwrap_or(&Value::Null),
        share * 100.0
    );
}

/// Signs in as a console agent with a bare HTTP client holding the desk's event stream open;
/// yields each desk event as (name, data).
fn desk_events(gw: &Gateway, agent: &str) -> mpsc::Receiver<(String, Value)> {
    let host = gw.http_url().trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&host).unwrap();
    write!(s, "GET /webrtc/agents/{agent}/events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(s).lines().map_while(Result::ok) {
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let _ = tx.send((event.clone(), serde_json::from_str(data).unwrap()));
            }
        }
    });
    rx
}

/// The next desk event called `name`, skipping others.
fn next_desk_event(events: &mpsc::Receiver<(String, Value)>, name: &str, within: Duration, gw: &Gateway) -> Value {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok((event, data)) if event == name => return data,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no {name:?} desk event within {within:?}\n{}", gw.log_tail(30));
}

/// A gateway with console agent bob signed in (by [`desk_events`]) and a baresip caller, in
/// the background, asking for a person and hanging up after `hangup_after`; returns once bob's
/// desk rings, with the ring event.
struct BobRung {
    _dir: tempfile::TempDir,
    gw: Gateway,
    desk: mpsc::Receiver<(String, Value)>,
    caller: std::thread::JoinHandle<BaresipCall>,
    ring: Value,
}

fn bob_rung_by_a_phone_caller(extra_config: &str, hangup_after: Duration) -> BobRung {
    let dir = temp_dir("webrtc-desk-bob-");
    let config = loopback_config(dir.path(), extra_config);
    let gw = Gateway::start(&["--language", "en", "--agent", "console:bob", "--config", config.to_str().unwrap()]);
    let desk = desk_events(&gw, "bob");
    assert_eq!(next_desk_event(&desk, "ready", Duration::from_secs(5), &gw)["agent"], "bob");
    let port = gw.sip_port();
    let caller = std::thread::spawn(move || {
        let opts = BaresipCallOptions { hangup_after, ..BaresipCallOptions::default() };
        run_baresip_call_with(port, &fixture("en_agent.wav"), opts)
    });
    let ring = next_desk_event(&desk, "ring", Duration::from_secs(20), &gw);
    BobRung { _dir: dir, gw, desk, caller, ring }
}

#[test]
fn a_desk_stops_ringing_when_the_caller_hangs_up_first() {
    let BobRung { gw, desk, caller, ring, .. } = bob_rung_by_a_phone_caller("", Duration::from_secs(10));
    // Nobody answers; the caller gives up long before the 20 s ring time.
    let stopped = next_desk_event(&desk, "ring_stopped", Duration::from_secs(15), &gw);
    assert_eq!(stopped["call_id"], ring["call_id"], "{stopped}");
    assert_eq!(stopped["reason"], "caller-left", "{stopped}");
    assert!(caller.join().unwrap().established());
}

#[test]
fn a_console_agent_who_answers_but_never_connects_does_not_strand_the_caller() {
    // A phone caller asks for a person; bob's "browser" answers with an offer whose ICE
    // nobody will ever answer (a network that blocks UDP, a crashed tab).
    let BobRung { gw, caller, ring, .. } = bob_rung_by_a_phone_caller("[handoff]\nfallback = \"ai\"\n", Duration::from_secs(30));
    let call_id = ring["call_id"].as_str().unwrap();
    let path = format!("/webrtc/agents/bob/calls/{call_id}");
    let (status, head, body) = http(&gw.http_url(), "POST", &path, &[("Content-Type", "application/sdp")], BROWSER_OFFER);
    assert_eq!(status, 201, "{head}{body}");
    // Answering twice is a conflict: the ring is taken.
    let (status, _, _) = http(&gw.http_url(), "POST", &path, &[("Content-Type", "application/sdp")], BROWSER_OFFER);
    assert_eq!(status, 409);

    // After the connect timeout the caller is not left on hold: the fallback takes over (back
    // to the AI, as configured), bob's desk is free again, and the call still ends normally.
    let fallback = gw.wait_for_message("handoff fallback", Duration::from_secs(20)).unwrap_or_else(|| panic!("{}", gw.log_tail(30)));
    assert!(text_field(&fallback, "reason").contains("could not connect"), "{fallback}");
    let leg = gw.wait_for_message("console agent leg ended", Duration::from_secs(2)).unwrap_or_else(|| panic!("{}", gw.log_tail(30)));
    assert_eq!(text_field(&leg, "reason"), "agent-webrtc-timeout", "{leg}");
    let call = caller.join().unwrap();
    assert!(call.established(), "{}", call.log);
    let ended = gw.wait_for_message("call ended", Duration::from_secs(15)).unwrap_or_else(|| panic!("{}", gw.log_tail(30)));
    assert_eq!(text_field(&ended, "reason"), "caller-hangup", "{ended}");
    assert!(gw.events("bridged").is_empty(), "never bridged to a browser that never connected");
}

#[test]
fn bad_offers_a_full_gateway_and_a_vanished_browser_get_protocol_answers() {
    let dir = temp_dir("webrtc-bad-");
    let config = loopback_config(dir.path(), "disconnect_grace_ms = 2000\n[calls]\nmax_concurrent = 1\nretry_after_secs = 7\n");
    let gw = Gateway::start(&["--language", "en", "--agent", "console:alice", "--config", config.to_str().unwrap()]);

    // Malformed SDP: 400 with the reason.
    let (status, _, body) = post_sdp(&gw, "this is not SDP");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed SDP") && body.contains("line 1"), "{body}");
    // No audio / no Opus: 422 saying which.
    let video = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n";
    let (status, _, body) = post_sdp(&gw, video);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("no audio"), "{body}");
    let pcmu = BROWSER_OFFER.replace("111 110", "0 110").replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000").replace("a=fmtp:111 minptime=10;useinbandfec=1\r\n", "");
    let (status, _, body) = post_sdp(&gw, &pcmu);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("no Opus") && body.contains("PCMU/8000"), "{body}");
    // Not SDP at all, another site's page, an unknown session.
    let (status, _, body) = http(&gw.http_url(), "POST", "/webrtc/calls", &[("Content-Type", "application/json")], "{}");
    assert_eq!(status, 415, "{body}");
    let (status, _, body) = http(&gw.http_url(), "POST", "/webrtc/calls", &[("Content-Type", "application/sdp"), ("Origin", "http://evil.example")], BROWSER_OFFER);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("allowed_origin"), "{body}");
    let (status, _, _) = http(&gw.http_url(), "DELETE", "/webrtc/calls/0123", &[], "");
    assert_eq!(status, 404);
    // Captions come per session: a made-up session id sees nothing.
    let (status, _, _) = http(&gw.http_url(), "GET", "/webrtc/calls/0123/events", &[], "");
    assert_eq!(status, 404);
    // The agent desk: only configured console agents sign in, and an answer or a decline for
    // a call that is not ringing is a conflict, each with the reason.
    let (status, _, body) = http(&gw.http_url(), "GET", "/webrtc/agents/mallory/events", &[], "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("console:mallory") && body.contains("[handoff] agents"), "{body}");
    let (status, _, body) = http(&gw.http_url(), "GET", "/webrtc/agents/a%20b/events", &[], "");
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = http(&gw.http_url(), "POST", "/webrtc/agents/alice/calls/fl-1-w9", &[("Content-Type", "application/sdp")], BROWSER_OFFER);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not ringing"), "{body}");
    let (status, _, body) = http(&gw.http_url(), "POST", "/webrtc/agents/alice/calls/fl-1-w9/decline", &[], "");
    assert_eq!(status, 409, "{body}");
    let (status, _, body) = http(&gw.http_url(), "POST", "/webrtc/agents/alice/calls/fl-1-w9", &[("Content-Type", "text/plain")], "hi");
    assert_eq!(status, 415, "{body}");
    // The page is served at /.
    let (status, _, page) = http(&gw.http_url(), "GET", "/", &[], "");
    assert!(status == 200 && page.contains("caller.js"), "{status} {page}");

    // A browser takes the only call slot; the next offer is refused like a SIP INVITE: 503
    // with Retry-After.
    let mic = microphone(dir.path(), &[(&fixture("en_balance.wav"), 0.0)], 40);
    let (child, rx) = start_caller(&gw, &mic, dir.path(), "vanish", 30_000);
    let (status, head, body) = post_sdp(&gw, BROWSER_OFFER);
    assert_eq!(status, 503, "{body}");
    assert!(head.to_lowercase().contains("retry-after: 7"), "{head}");
    assert!(body.contains("capacity"), "{body}");

    // Then the browser freezes (SIGSTOP): ICE consent checks go unanswered, and the call ends
    // within the ICE timeout plus the configured grace, with its record.
    let frozen_at = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line == "frozen" => break Instant::now(),
            Ok(_) => {}
            Err(e) => panic!("the browser was not frozen: {e}"),
        }
    };
    let ended = gw.wait_for_message("call ended", Duration::from_secs(40)).unwrap_or_else(|| panic!("the call outlived its browser\n{}", gw.log_tail(40)));
    let took = frozen_at.elapsed();
    eprintln!("FIGURE vanished browser: call ended {took:?} after the freeze ({})", text_field(&ended, "reason"));
    assert!(text_field(&ended, "reason").starts_with("webrtc-"), "{ended}");
    let _ = finish_driver(child, rx, &gw);
}
