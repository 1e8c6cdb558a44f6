//! The call core from outside, against real sipp callers: no dead air on a silent line, a
//! sentence said with pauses answered as one turn, and a deploy (SIGTERM) that lets the calls
//! in progress finish instead of cutting them.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn text_field(ev: &Value, name: &str) -> String {
    event_field(ev, name).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn u64_field(ev: &Value, name: &str) -> u64 {
    event_field(ev, name).and_then(Value::as_u64).unwrap_or(0)
}

/// `seconds` of 8 kHz μ-law silence, as a phone line with nobody speaking sends it.
fn silence_ulaw(dir: &Path, seconds: u32) -> PathBuf {
    let out = dir.join("silence.ulaw");
    let status = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-t", "ul"])
        .arg(&out)
        .args(["trim", "0", &seconds.to_string()])
        .status()
        .expect("sox");
    assert!(status.success());
    out
}

/// A caller who says nothing after the greeting: they hear a reprompt within 8 s of the
/// greeting's end, then another reprompt or a goodbye, and then the gateway hands the call
/// over or hangs up (here no agent is configured: a callback is taken and the call ends).
fn silent_caller_is_never_left_in_dead_air(language: &str) {
    let dir = temp_dir("silent-caller-");
    let callbacks = dir.path().join("callbacks.jsonl");
    let gw = Gateway::start(&["--language", language, "--config", &write_config(dir.path(), &callbacks)]);
    let audio = silence_ulaw(dir.path(), 60);
    let sipp = run_sipp_with(
        &sipp_scenario("uac_until_bye.xml"),
        gw.sip_port(),
        SippOptions {
            vars: vec![
                ("AUDIO".into(), audio.display().to_string()),
                ("PT".into(), "0".into()),
                ("CODEC".into(), "PCMU".into()),
                ("WAIT_MS".into(), "58000".into()),
            ],
            capture_rx: true,
            timeout: Duration::from_secs(75),
            ..SippOptions::default()
        },
    );
    assert!(sipp.success(), "the gateway ended the silent call with a BYE:\n{}\n--- gateway ---\n{}", sipp.report(), gw.log_tail(40));

    // What the caller heard, from the RTP on the wire.
    let heard = sipp.rx_wav.as_ref().expect("the gateway sent audio");
    let spans = speech_spans(heard, 900);
    assert!(spans.len() >= 3, "greeting, a reprompt, then more (a reprompt or a goodbye): {spans:?}\n{}", gw.log_tail(40));
    let (greeting_end, reprompt_start) = (spans[0].1, spans[1].0);
    let gap = reprompt_start - greeting_end;
    eprintln!("{language}: what the caller heard (ms): {spans:?}; greeting end → reprompt {gap} ms");
    assert!(gap <= 8_000, "reprompt {gap} ms after the greeting's end: {spans:?}");

    let no_inputs = gw.events("no input from the caller");
    assert!(no_inputs.len() >= 2, "two no-inputs told to the brain and triage\n{}", gw.log_tail(40));
    assert!((5_900..=6_500).contains(&u64_field(&no_inputs[0], "silence_ms")), "{}", no_inputs[0]);
    let end = gw.wait_for_message("call ended", Duration::from_secs(10)).expect("call ended");
    assert_ne!(text_field(&end, "reason"), "caller-hangup", "the gateway ended it: {end}");
    assert!(["handoff-fallback", "silence"].contains(&text_field(&end, "reason").as_str()), "{end}");
    let reprompts: Vec<String> = gw.events("turn").iter().map(|t| text_field(t, "reply")).filter(|r| !r.is_empty()).collect();
    let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    assert!(reprompts.iter().skip(1).all(|r| cjk(r) == (language == "zh")), "reprompts in the caller's language: {reprompts:?}");
}

/// A configuration that keeps the test's callbacks in its own folder.
fn write_config(dir: &Path, callbacks: &Path) -> String {
    let path = dir.join("frontline.toml");
    std::fs::write(&path, format!("[handoff]\ncallbacks_file = {:?}\n", callbacks.display().to_string())).unwrap();
    path.display().to_string()
}

#[test]
fn a_silent_english_caller_is_reprompted_then_the_call_ends_cleanly() {
    silent_caller_is_never_left_in_dead_air("en");
}

#[test]
fn a_silent_mandarin_caller_is_reprompted_in_mandarin_then_the_call_ends_cleanly() {
    silent_caller_is_never_left_in_dead_air("zh");
}

/// Three questions with pauses between them, as one G.711 stream.
/// The pieces of one sentence in the gateway's own English voice (`frontline say`), with
/// `pause` seconds between them, after 5 s for the greeting, as 8 kHz μ-law.
fn said_with_pauses(dir: &Path, pieces: &[&str], pause: f32) -> PathBuf {
    let mut parts = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let spoken = dir.join(format!("piece{i}.wav"));
        let models = repo_root().join("models");
        let status = Command::new(frontline_bin())
            .args(["say", "--language", "en", "--models"])
            .arg(&models)
            .arg("--out")
            .arg(&spoken)
            .arg(piece)
            .stdout(Stdio::null())
            .status()
            .expect("frontline say");
        assert!(status.success(), "frontline say {piece:?}");
        let before = if i == 0 { 5.0 } else { 0.0 };
        let after = if i + 1 == pieces.len() { 8.0 } else { pause };
        parts.push((spoken, before, after));
    }
    padded_and_joined(dir, "sentence", &parts)
}

/// WAV files, each padded with (before, after) seconds of silence, joined as one caller's
/// 8 kHz μ-law stream `dir/NAME.ulaw`.
fn padded_and_joined(dir: &Path, name: &str, parts: &[(PathBuf, f32, f32)]) -> PathBuf {
    let mut padded = Vec::new();
    for (i, (wav, before, after)) in parts.iter().enumerate() {
        let out = dir.join(format!("{name}-part{i}.wav"));
        let status = Command::new("sox").arg(wav).args(["-r", "16000", "-c", "1"]).arg(&out).args(["pad", &before.to_string(), &after.to_string()]).status().expect("sox");
        assert!(status.success(), "sox {}", wav.display());
        padded.push(out);
    }
    let joined = dir.join(format!("{name}.wav"));
    let status = Command::new("sox").args(&padded).arg(&joined).status().expect("sox");
    assert!(status.success());
    let ulaw = dir.join(format!("{name}.ulaw"));
    to_ulaw(&joined, &ulaw);
    ulaw
}

/// A caller who stops twice mid-sentence, for under a second each time, before hearing any
/// reply: each piece alone means nothing to the playbook, and three misses in a row are its
/// handoff for "not understood". The gateway hears one sentence: the brain gets it whole, and
/// the caller is asked to say it again instead of being handed over.
#[test]
fn a_sentence_said_with_pauses_is_one_turn_not_three_misunderstandings() {
    let dir = temp_dir("pauses-");
    let gw = Gateway::start(&["--language", "en"]);
    let audio = said_with_pauses(dir.path(), &["My neighbour's old cat.", "Every single night.", "Sleeps on the roof of my car."], 0.9);
    let vars = pcmu_stream_vars(&audio, 2000);
    let sipp = run_sipp_with(&sipp_scenario("uac_stream.xml"), gw.sip_port(), SippOptions { vars, timeout: Duration::from_secs(90), ..SippOptions::default() });
    assert!(sipp.success(), "{}\n--- gateway ---\n{}", sipp.report(), gw.log_tail(40));
    let end = gw.wait_for_message("call ended", Duration::from_secs(10)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));

    assert!(gw.events("escalation").is_empty(), "handed over for pauses:\n{}", gw.log_tail(40));
    assert_eq!(text_field(&end, "outcome"), "contained", "{end}");
    let went_on = gw.events("the caller went on with their sentence");
    assert!(!went_on.is_empty(), "the pieces were taken as separate turns:\n{}", gw.log_tail(40));
    // The last turn the brain answered holds the sentence from its first piece to its last.
    let turns = gw.events("turn");
    let last = turns.last().unwrap_or_else(|| panic!("no turn logged\n{}", gw.log_tail(40)));
    let heard = text_field(last, "heard").to_lowercase();
    assert!(heard.contains("cat") && heard.contains("car"), "the last turn answered {heard:?}");
}

/// Three questions, each asked a couple of seconds after the answer to the one before ends.
/// The pause must stay well under the 6 s no-input prompt on a fast machine too: a pause that
/// only fits because the reply starts late would turn into two silences and an escalation.
fn three_questions(dir: &Path) -> PathBuf {
    let parts: Vec<(PathBuf, f32, f32)> = ["en_balance.wav", "en_data.wav", "en_balance.wav"].iter().map(|name| (fixture(name), 0.0, 7.5)).collect();
    padded_and_joined(dir, "questions", &parts)
}

#[test]
fn sigterm_lets_the_call_in_progress_finish_and_refuses_new_ones() {
    let dir = temp_dir("drain-");
    let gw = Gateway::start(&["--language", "en"]);
    let port = gw.sip_port();
    let audio = three_questions(dir.path());
    let caller = {
        let vars = pcmu_stream_vars(&audio, 6000);
        let scenario = sipp_scenario("uac_stream.xml");
        thread::spawn(move || run_sipp_with(&scenario, port, SippOptions { vars, timeout: Duration::from_secs(90), ..SippOptions::default() }))
    };

    // The first question is answered: now the deploy begins.
    let first = gw.wait_for(|ev| event_message(ev) == Some("turn") && u64_field(ev, "turn") == 1, Duration::from_secs(30));
    assert!(first.is_some(), "the first question was answered\n{}", gw.log_tail(40));
    let sigterm_at = Instant::now();
    gw.send_signal("TERM");
    gw.wait_for_message("draining: no new calls; calls in progress go on", Duration::from_secs(5)).expect("the drain starts");

    // New calls and a proxy's probe are refused with 503, so they go to another gateway.
    let options = udp_exchange(port, sip_request("OPTIONS", port, "UDP", "", "").as_bytes()).expect("OPTIONS answered while draining");
    assert!(options.starts_with("SIP/2.0 503"), "{options}");
    assert!(options.contains("Retry-After"), "{options}");
    let invite = sip_request("INVITE", port, "UDP", &pcmu_offer(40_000), "Content-Type: application/sdp\r\n");
    let refused = udp_exchange(port, invite.as_bytes()).expect("INVITE answered while draining");
    assert!(refused.starts_with("SIP/2.0 503"), "{refused}");

    let sipp = caller.join().expect("sipp thread");
    assert!(sipp.success(), "the call went on to its natural end:\n{}\n--- gateway ---\n{}", sipp.report(), gw.log_tail(40));
    let ended_at = sigterm_at.elapsed();
    let status = gw.wait_exit(Duration::from_secs(15)).unwrap_or_else(|| panic!("the gateway exits once its call ended\n{}", gw.log_tail(30)));
    let exited_at = sigterm_at.elapsed();
    assert!(status.success(), "exit status {status}\n{}", gw.log_tail(20));

    let answered: Vec<Value> = gw.events("turn").into_iter().filter(|t| u64_field(t, "turn") >= 2 && !text_field(t, "reply").is_empty()).collect();
    assert!(answered.len() >= 2, "the second and third questions were answered after SIGTERM: {answered:?}\n{}", gw.log_tail(40));
    let end = gw.events("call ended").into_iter().next().expect("call ended");
    assert_eq!(text_field(&end, "reason"), "caller-hangup", "{end}");
    assert_eq!(text_field(&end, "outcome"), "contained", "{end}");
    eprintln!("drain timeline: SIGTERM → caller's BYE handled {} ms → process exit {} ms", ended_at.as_millis(), exited_at.as_millis());
}

#[test]
fn a_second_sigterm_ends_the_calls_at_once_with_a_bye() {
    let dir = temp_dir("drain-now-");
    let gw = Gateway::start(&["--language", "en"]);
    let port = gw.sip_port();
    let audio = silence_ulaw(dir.path(), 60);
    let caller = {
        let vars = vec![
            ("AUDIO".to_string(), audio.display().to_string()),
            ("PT".to_string(), "0".to_string()),
            ("CODEC".to_string(), "PCMU".to_string()),
            ("WAIT_MS".to_string(), "50000".to_string()),
        ];
        let scenario = sipp_scenario("uac_until_bye.xml");
        thread::spawn(move || run_sipp_with(&scenario, port, SippOptions { vars, timeout: Duration::from_secs(70), ..SippOptions::default() }))
    };
    gw.wait_for_message("call started", Duration::from_secs(20)).expect("the call started");
    thread::sleep(Duration::from_secs(2));
    gw.send_signal("TERM");
    gw.wait_for_message("draining: no new calls; calls in progress go on", Duration::from_secs(5)).expect("the drain starts");
    let second = Instant::now();
    gw.send_signal("TERM");
    let sipp = caller.join().expect("sipp thread");
    assert!(sipp.success(), "the caller got a BYE:\n{}\n--- gateway ---\n{}", sipp.report(), gw.log_tail(30));
    let status = gw.wait_exit(Duration::from_secs(15)).expect("the gateway exits");
    assert!(status.success(), "exit status {status}");
    assert!(second.elapsed() < Duration::from_secs(10), "ended at once, not at the drain timeout");
    let end = gw.events("call ended").into_iter().next().expect("call ended");
    assert_eq!(text_field(&end, "reason"), "gateway-shutdown", "{end}");
}
