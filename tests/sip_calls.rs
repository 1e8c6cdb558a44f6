//! The first real call, end to end: the real gateway binary answers real SIP peers (sipp,
//! baresip), recognizes their speech with whisper, asks the embedded brain over gRPC, and
//! speaks the reply as RTP. Assertions are on what a caller or operator would notice: the
//! words recognized, the digits received, the reply audible in what the peer recorded, and
//! the SIP answers on the wire.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Long enough for whisper on a loaded 2-core machine, short enough to keep CI brisk.
const REPLY_MS: u64 = 10_000;

fn text_field(ev: &Value, name: &str) -> String {
    event_field(ev, name).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn u64_field(ev: &Value, name: &str) -> u64 {
    event_field(ev, name).and_then(Value::as_u64).unwrap_or_default()
}

/// Streams `speech` from sipp as `codec` (sending `dtmf` afterwards, if any) and returns
/// the gateway with its events and sipp's result.
fn sipp_call(speech: &Path, codec: &str, dtmf: Option<&str>) -> (Gateway, SippResult) {
    sipp_call_with(speech, codec, dtmf, &[])
}

/// `sipp_call` with `extra_args` for sipp.
fn sipp_call_with(speech: &Path, codec: &str, dtmf: Option<&str>, extra_args: &[&str]) -> (Gateway, SippResult) {
    let gw = Gateway::start(&[]);
    let dir = temp_dir("sipp-audio-");
    let (pt, file) = match codec {
        "PCMU" => ("0", dir.path().join("speech.ulaw")),
        _ => ("8", dir.path().join("speech.alaw")),
    };
    match codec {
        "PCMU" => to_ulaw(speech, &file),
        _ => to_alaw(speech, &file),
    }
    let audio_ms = g711_duration(&file).as_millis().to_string();
    let mut vars = vec![
        ("AUDIO".to_string(), file.display().to_string()),
        ("PT".to_string(), pt.to_string()),
        ("CODEC".to_string(), codec.to_string()),
        ("AUDIO_MS".to_string(), audio_ms),
        ("REPLY_MS".to_string(), REPLY_MS.to_string()),
    ];
    let scenario = match dtmf {
        Some(d) => {
            vars.push(("DTMF".to_string(), d.to_string()));
            "uac_stream_dtmf.xml"
        }
        None => "uac_stream.xml",
    };
    let result = run_sipp_with(
        &sipp_scenario(scenario),
        gw.sip_port(),
        SippOptions { vars, capture_rx: true, extra_args: extra_args.iter().map(|a| a.to_string()).collect(), ..SippOptions::default() },
    );
    assert!(result.success(), "sipp call failed:\n{}\n--- gateway ---\n{}", result.report(), gw.log_tail(40));
    (gw, result)
}

fn ended(gw: &Gateway) -> Value {
    gw.wait_for_message("call ended", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no \"call ended\" event\n{}", gw.log_tail(40)))
}

#[test]
fn sipp_pcmu_call_is_recognized_answered_and_takes_dtmf() {
    let (gw, sipp) = sipp_call(&fixture("en_balance.wav"), "PCMU", Some("19#"));
    let end = ended(&gw);

    let recognized = gw.events("recognized");
    let said = recognized.first().map(|e| text_field(e, "text")).unwrap_or_default();
    let wer = word_error_rate("What is my account balance?", &said);
    assert!(wer <= 0.2, "recognized {said:?} (WER {wer:.2})\n{}", gw.log_tail(40));
    assert_eq!(recognized.first().map(|e| text_field(e, "language")).as_deref(), Some("en"));

    let digits: String = gw.events("dtmf").iter().map(|e| text_field(e, "digit")).collect();
    assert_eq!(digits, "19#", "DTMF digits as the gateway received them");

    let turn = gw
        .events("turn")
        .into_iter()
        .find(|t| !text_field(t, "heard").is_empty() && !text_field(t, "heard").starts_with("DTMF"))
        .unwrap_or_else(|| panic!("no turn for the spoken question\n{}", gw.log_tail(40)));
    assert!(text_field(&turn, "reply").to_lowercase().contains("balance"), "reply: {}", text_field(&turn, "reply"));

    assert_eq!(text_field(&end, "reason"), "caller-hangup");
    assert!(u64_field(&end, "packets_sent") > 100, "reply audio went out as RTP: {end}");
    assert_eq!(u64_field(&end, "packets_ignored"), 20, "sipp's 20 PT-97 filler packets are ignored, nothing else");

    // What sipp received: real, audible speech, not silence.
    let rx = sipp.rx_wav.as_ref().expect("sipp received RTP from the gateway");
    assert!(wav_rms_dbfs(rx) > -40.0, "the reply is audible: {:.1} dBFS", wav_rms_dbfs(rx));
}

/// A dual-stack SBC or PBX signaling over IPv4 may offer IPv6 media: the gateway (listening on
/// every address) answers with its own IPv6 address, hears the caller and is heard.
#[test]
fn ipv6_media_offered_over_ipv4_signaling_is_heard_and_answered() {
    // A host (or container) without IPv6 cannot place this call at all.
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this host has no IPv6 loopback (::1), so no IPv6 media can be offered");
        return;
    }
    let (gw, sipp) = sipp_call_with(&fixture("en_balance.wav"), "PCMU", None, &["-mi", "::1"]);
    let end = ended(&gw);
    let said = gw.events("recognized").first().map(|e| text_field(e, "text")).unwrap_or_default();
    assert!(word_error_rate("What is my account balance?", &said) <= 0.4, "recognized {said:?}\n{}", gw.log_tail(30));
    assert_eq!(text_field(&end, "reason"), "caller-hangup", "{end}");
    assert!(u64_field(&end, "packets_sent") > 100 && u64_field(&end, "packets_received") > 100, "RTP both ways over IPv6: {end}");
    let rx = sipp.rx_wav.as_ref().expect("sipp received RTP from the gateway");
    assert!(wav_rms_dbfs(rx) > -40.0, "the reply is audible: {:.1} dBFS", wav_rms_dbfs(rx));
}

/// A caller recognized in the wrong language chooses theirs on the keypad (RFC 4733): 8 gives
/// Mandarin for the rest of the call, recognition included, and the greeting again in it.
#[test]
fn the_keypad_chooses_the_language_for_the_rest_of_the_call() {
    let (gw, _sipp) = sipp_call(&fixture("en_balance.wav"), "PCMU", Some("8"));
    ended(&gw);
    let chose = gw
        .wait_for_message("caller chose the language", Duration::from_secs(1))
        .unwrap_or_else(|| panic!("the key did not set the language\n{}", gw.log_tail(40)));
    assert_eq!(text_field(&chose, "language"), "zh");
    let keyed = gw
        .events("turn")
        .into_iter()
        .find(|t| text_field(t, "heard") == "DTMF 8")
        .unwrap_or_else(|| panic!("no turn for the key\n{}", gw.log_tail(40)));
    assert!(text_field(&keyed, "reply").contains("您好"), "the greeting again, in Mandarin: {}", text_field(&keyed, "reply"));
    assert_eq!(text_field(&keyed, "language"), "zh", "{keyed}");
}

/// Real recorded speech (a LibriVox reader), not synthesized: the caller is a person.
const LIBRIVOX_CLIP: &str = "librivox/sense_and_sensibility_01_austen_64kb-0880.wav";

#[test]
fn sipp_pcma_call_with_real_speech_is_recognized_in_pcma() {
    let (gw, sipp) = sipp_call(&real_fixture(LIBRIVOX_CLIP), "PCMA", None);
    ended(&gw);
    let started = gw.wait_for_message("call started", Duration::from_secs(1)).expect("call started");
    assert_eq!(text_field(&started, "codec"), "PCMA");
    let said = gw.events("recognized").first().map(|e| text_field(e, "text")).unwrap_or_default();
    let reference = real_transcript(LIBRIVOX_CLIP);
    let wer = word_error_rate(&reference, &said);
    assert!(wer <= 0.2, "recognized {said:?} for {reference:?} (WER {wer:.2})");
    let turn = gw.events("turn").into_iter().find(|t| !text_field(t, "heard").is_empty()).expect("a turn");
    assert!(!text_field(&turn, "reply").is_empty(), "the bot answered");
    let rx = sipp.rx_wav.as_ref().expect("sipp received RTP");
    assert!(wav_rms_dbfs(rx) > -40.0);
}

#[test]
fn baresip_caller_hears_the_spoken_reply() {
    let gw = Gateway::start(&["--language", "en"]);
    let call = run_baresip_call(gw.sip_port(), &fixture("en_balance.wav"), Duration::from_secs(16));
    assert!(call.established(), "baresip call was not answered:\n{}", call.log);
    ended(&gw);
    let turn = gw
        .events("turn")
        .into_iter()
        .find(|t| u64_field(t, "turn") >= 1)
        .unwrap_or_else(|| panic!("no answered turn\n{}", gw.log_tail(40)));
    let reply = text_field(&turn, "reply");
    // Close the loop on real audio: transcribe what baresip recorded with the same model.
    let heard = transcribe_recording(call.heard(), "en");
    let reference = reference_rendering(&reply, "en");
    let (share, expected) = (heard_share(&reply, &heard), heard_share(&reply, &reference));
    assert!(
        share >= 0.25 && share >= expected - 0.25,
        "reply {reply:?}: baresip heard {heard:?} ({:.0}% of the words); the same audio off the network gives {reference:?} ({:.0}%)",
        share * 100.0,
        expected * 100.0
    );
}

#[test]
fn mandarin_caller_is_understood_and_answered_in_mandarin() {
    let gw = Gateway::start(&[]);
    // Long enough for the whole reply even when Kokoro synthesizes slowly (a loaded machine).
    let call = run_baresip_call(gw.sip_port(), &fixture("zh_balance.wav"), Duration::from_secs(28));
    assert!(call.established(), "baresip call was not answered:\n{}", call.log);
    ended(&gw);
    let recognized = gw.events("recognized");
    let first = recognized.first().unwrap_or_else(|| panic!("nothing recognized\n{}", gw.log_tail(40)));
    assert_eq!(text_field(first, "language"), "zh", "language detected per utterance");
    let said = text_field(first, "text");
    assert!(said.contains("余额") || char_error_rate("我想查一下话费余额", &said) <= 0.5, "recognized {said:?}");
    let turn = gw.events("turn").into_iter().find(|t| u64_field(t, "turn") >= 1).expect("an answered turn");
    let reply = text_field(&turn, "reply");
    assert!(reply.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "reply in Mandarin: {reply:?}");
    // The Mandarin voice (Kokoro) is intelligible to whisper: what baresip heard, transcribed,
    // must hold most of the reply's characters in order (the greeting may come before them).
    let heard = transcribe_recording(call.heard(), "zh");
    let kept = in_order_share(&reply, &heard);
    eprintln!("zh caller heard: {heard} ({:.0}% of the reply's characters, in order)", kept * 100.0);
    assert!(kept >= 0.5, "the reply {reply:?} was not heard: {heard:?}");
}

/// The share of `said`'s Chinese characters found in `heard` in the same order (longest common
/// subsequence): how much of a line a listener got, whatever else they heard around it.
fn in_order_share(said: &str, heard: &str) -> f64 {
    let cjk = |s: &str| -> Vec<char> { s.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).collect() };
    let (a, b) = (cjk(said), cjk(heard));
    if a.is_empty() {
        return 0.0;
    }
    let mut row = vec![0usize; b.len() + 1];
    for x in &a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diagonal + 1 } else { row[j + 1].max(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()] as f64 / a.len() as f64
}

#[test]
fn an_offer_without_a_usable_codec_gets_488() {
    let gw = Gateway::start(&[]);
    let result = run_sipp(&sipp_scenario("uac_g729_488.xml"), gw.sip_port(), &[]);
    assert!(result.success(), "expected 488:\n{}", result.report());
    assert!(gw.events("call started").is_empty());
}

#[test]
fn cancel_while_ringing_ends_the_attempt_with_a_record() {
    let gw = Gateway::start(&["--answer-delay-ms", "3000"]);
    let result = run_sipp(&sipp_scenario("uac_cancel.xml"), gw.sip_port(), &[]);
    assert!(result.success(), "CANCEL flow failed:\n{}", result.report());
    assert!(result.logs.contains("outcome=cancelled"), "the CANCEL won the race: {}", result.logs);
    let ended = gw.wait_for_message("call ended", Duration::from_secs(5)).expect("the abandoned call is logged");
    assert_eq!(text_field(&ended, "outcome"), "abandoned");
    assert!(gw.events("call started").is_empty(), "no call was started");
}

#[test]
fn hold_and_resume_by_reinvite_and_in_dialog_options() {
    let gw = Gateway::start(&[]);
    let result = run_sipp(&sipp_scenario("uac_hold.xml"), gw.sip_port(), &[]);
    assert!(result.success(), "hold/resume failed:\n{}\n{}", result.report(), gw.log_tail(30));
    let reinvites = gw.events("re-INVITE");
    let directions: Vec<String> = reinvites.iter().map(|e| text_field(e, "direction")).collect();
    assert_eq!(directions, ["RecvOnly", "SendRecv"], "what the gateway answered to hold and resume");
    let end = ended(&gw);
    assert_eq!(text_field(&end, "reason"), "caller-hangup");
}

#[test]
fn calls_over_tcp_get_a_tcp_contact_and_end_at_the_callers_bye() {
    let gw = Gateway::start(&["--language", "en"]);
    // sipp checks the 200's Contact names TCP.
    let opts = SippOptions { extra_args: vec!["-t".into(), "t1".into()], ..SippOptions::default() };
    let result = run_sipp_with(&sipp_scenario("uac_tcp_call.xml"), gw.sip_port(), opts);
    assert!(result.success(), "sipp over TCP:\n{}\n{}", result.report(), gw.log_tail(30));
    assert!(result.logs.to_lowercase().contains("contact over tcp: transport=tcp"), "{}", result.logs);
    assert_eq!(text_field(&ended(&gw), "reason"), "caller-hangup");

    // baresip follows the Contact: its ACK and BYE reach the gateway only if it says TCP.
    let opts = BaresipCallOptions {
        hangup_after: Duration::from_secs(6),
        uri_params: ";transport=tcp".into(),
        ..BaresipCallOptions::default()
    };
    let call = run_baresip_call_with(gw.sip_port(), &fixture("en_balance.wav"), opts);
    assert!(call.established(), "baresip over TCP was not answered:\n{}", call.log);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gw.events("call ended").len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ends = gw.events("call ended");
    assert_eq!(ends.len(), 2, "the baresip call ended within seconds of its BYE\n{}", gw.log_tail(30));
    assert_eq!(text_field(&ends[1], "reason"), "caller-hangup", "{}", ends[1]);
}

#[test]
fn keys_pressed_by_sip_info_reach_the_call_like_rfc4733_digits() {
    let gw = Gateway::start(&["--language", "en"]);
    let result = run_sipp(&sipp_scenario("uac_info_dtmf.xml"), gw.sip_port(), &[]);
    assert!(result.success(), "INFO flow (200 for DTMF, 415 for other types):\n{}\n{}", result.report(), gw.log_tail(30));
    let end = ended(&gw);
    let digits: String = gw.events("dtmf").iter().map(|e| text_field(e, "digit")).collect();
    assert_eq!(digits, "19#", "digits as the call received them\n{}", gw.log_tail(30));
    assert_eq!(text_field(&end, "reason"), "caller-hangup");
}

#[test]
fn options_garbage_and_malformed_sdp_get_protocol_answers() {
    let gw = Gateway::start(&[]);
    let port = gw.sip_port();

    // Garbage is dropped (RFC 3261 §18.3 allows it) and must not disturb the gateway.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"\x00\x01 not SIP at all \xff\xfe\r\n\r\n", ("127.0.0.1", port)).unwrap();
    sock.send_to(b"INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n", ("127.0.0.1", port)).unwrap();

    let reply = udp_exchange(port, sip_request("OPTIONS", port, "UDP", "", "").as_bytes()).expect("OPTIONS answered");
    assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
    assert!(reply.contains("INVITE") && reply.to_lowercase().contains("allow:"), "OPTIONS lists what we allow: {reply}");

    let bad_sdp = "v=0\r\nthis is not sdp\r\n";
    let extra = "Content-Type: application/sdp\r\n";
    let reply = udp_exchange(port, sip_request("INVITE", port, "UDP", bad_sdp, extra).as_bytes()).expect("INVITE answered");
    assert!(reply.starts_with("SIP/2.0 400"), "malformed SDP gets 400: {reply}");
    assert!(reply.contains("Warning:"), "with a reason: {reply}");

    // Over TCP too.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("SIP over TCP");
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    tcp.write_all(sip_request("OPTIONS", port, "TCP", "", "").as_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let n = tcp.read(&mut buf).expect("TCP reply");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"));

    assert!(gw.exited().is_none(), "the gateway survived bad input");
}

#[test]
fn startup_errors_name_the_problem_and_the_fix() {
    let out = Command::new(frontline_bin())
        .args(["serve", "--sip-port", "0", "--models", "/nonexistent-models"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-models") && err.contains("frontline models install"), "{err}");

    let out = Command::new(frontline_bin())
        .args(["serve", "--sip-port", "0", "--brain", "http://127.0.0.1:9"])
        .arg("--models")
        .arg(models_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the brain") && err.contains("127.0.0.1:9"), "{err}");

    let dir = temp_dir("cfg-");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[speech]\nlanguag = \"en\"\n").unwrap();
    let out = Command::new(frontline_bin()).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("languag"), "{err}");
}

#[test]
fn a_brain_lost_mid_call_gets_the_caller_an_apology_and_a_clean_hang_up() {
    // The brain runs as its own process, as an external one would, and dies mid-call.
    let brain_port = free_udp_port();
    let mut brain = Command::new(frontline_bin())
        .args(["brain", "--listen", &format!("127.0.0.1:{brain_port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start frontline brain");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", brain_port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "brain did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gw = Gateway::start(&["--brain", &format!("http://127.0.0.1:{brain_port}"), "--language", "en"]);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let _ = brain.kill();
        let _ = brain.wait();
    });
    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(25), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &fixture("en_balance.wav"), opts);
    killer.join().unwrap();
    assert!(call.established(), "{}", call.log);
    let end = ended(&gw);
    assert_eq!(text_field(&end, "reason"), "brain-unavailable", "{end}");
    assert_eq!(text_field(&end, "outcome"), "failed");
    assert!(!text_field(&end, "failure").is_empty(), "the reason is logged: {end}");
    assert!(call.log.contains("closed") || call.log.to_lowercase().contains("terminated"), "the gateway hung up on baresip:\n{}", call.log);
    let heard = transcribe_recording(call.heard(), "en");
    for word in ["difficulties", "call again"] {
        assert!(heard.to_lowercase().contains(word), "the caller heard the apology: {heard:?}");
    }
}
