//! Triage and warm handoff against real peers: a baresip caller asks for a person; the gateway
//! rings a real agent (baresip auto-answering, or sipp playing a busy agent), bridges the
//! media, or falls back when nobody can take the call.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn text_field(ev: &Value, name: &str) -> String {
    event_field(ev, name).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The caller asks for a person, waits through the bridging, then says something the agent
/// must hear: "What is my account balance?".
fn caller_script(dir: &Path) -> PathBuf {
    let out = dir.join("caller.wav");
    let ok = Command::new("sox")
        .arg(fixture("en_agent.wav"))
        .arg("-p")
        .arg("pad")
        .arg("0")
        .arg("9")
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|child| {
            Command::new("sox")
                .args(["-", "-r", "16000"])
                .arg(fixture("en_balance.wav"))
                .arg(&out)
                .stdin(child.stdout.unwrap())
                .status()
        })
        .unwrap()
        .success();
    assert!(ok, "building the caller's script");
    out
}

#[test]
fn a_caller_asking_for_a_person_is_bridged_to_the_agent_who_hears_them() {
    let agent = BaresipAgent::start(&fixture("en_data.wav"));
    let gw = Gateway::start(&["--language", "en", "--agent", &agent.uri()]);
    asks_for_a_person_and_is_heard_by_the_agent(&gw, &agent);
}

/// An agent whose phone registers with the gateway (`registered:alice`) is rung at the
/// address it registered from, after the gateway challenged the REGISTER.
#[test]
fn an_agent_whose_phone_registered_is_rung_where_it_registered() {
    let (_dir, gw) = Gateway::with_config("[sip.auth]\nagents = { alice = \"desk-phone\" }\n", &["--language", "en", "--agent", "registered:alice"]);
    // Without credentials: a challenge, not a binding.
    let register = sip_request("REGISTER", gw.sip_port(), "UDP", "", "Expires: 600\r\n");
    let answer = udp_exchange(gw.sip_port(), register.as_bytes()).expect("REGISTER answered");
    assert!(answer.starts_with("SIP/2.0 401") && answer.contains("WWW-Authenticate: Digest"), "{answer}");

    let registration = Registration { registrar_port: gw.sip_port(), user: "alice", password: "desk-phone" };
    let agent = BaresipAgent::registered(&fixture("en_data.wav"), &registration);
    let bound = gw.wait_for_message("agent registered", Duration::from_secs(15)).unwrap_or_else(|| panic!("{}\n{}", gw.log_tail(20), agent.log()));
    let contact = event_field(&bound, "contact").and_then(Value::as_str).unwrap_or_default().to_string();
    assert!(contact.contains(&format!(":{}", agent.sip_port())), "bound to the phone's own address: {bound}");
    asks_for_a_person_and_is_heard_by_the_agent(&gw, &agent);
}

fn asks_for_a_person_and_is_heard_by_the_agent(gw: &Gateway, agent: &BaresipAgent) {
    let dir = temp_dir("handoff-");
    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(26), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &caller_script(dir.path()), opts);
    assert!(call.established(), "{}", call.log);
    gw.wait_for_message("call ended", Duration::from_secs(15)).expect("call ended");

    let escalation = gw.wait_for_message("escalation", Duration::from_secs(1)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));
    assert_eq!(text_field(&escalation, "category"), "explicit", "{escalation}");
    let bridged = gw.wait_for_message("bridged", Duration::from_secs(1)).unwrap_or_else(|| panic!("not bridged\n{}", gw.log_tail(40)));
    eprintln!("decision to bridge: {} ms", event_field(&bridged, "decision_to_bridge_ms").unwrap());
    assert!(agent.answered(), "the agent answered:\n{}", agent.log());

    // The agent heard the caller's words spoken after the bridge.
    let heard = transcribe_recording(&agent.heard_wav().expect("the agent recorded the call"), "en");
    assert!(word_error_rate("What is my account balance?", &heard) <= 0.5 || heard.to_lowercase().contains("balance"), "agent heard {heard:?}");

    // The handoff packet is stored with the call, with the caller's words and the reason.
    let packet = gw.wait_for_message("handoff packet", Duration::from_secs(1)).expect("packet logged");
    let packet: Value = serde_json::from_str(&text_field(&packet, "packet")).unwrap();
    assert_eq!(packet["code"], "explicit-request");
    assert!(packet["transcript"].as_array().unwrap().iter().any(|l| l["speaker"] == "caller"));
    assert!(!packet["summary"].as_str().unwrap().is_empty());
}

#[test]
fn a_phone_caller_is_bridged_to_an_agent_answering_on_the_console_page() {
    let dir = temp_dir("handoff-desk-");
    let config = loopback_config(dir.path(), "");
    let gw = Gateway::start(&["--language", "en", "--agent", "console:sam", "--config", config.to_str().unwrap()]);
    // Sam answers in chromium on the console page; his microphone says the data line.
    let mic = microphone(dir.path(), &[(&fixture("en_data.wav"), 0.0)], 60);
    let (desk, desk_rx) = start_agent(&gw, "sam", None, &mic, dir.path(), 40_000);
    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(26), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &caller_script(dir.path()), opts);
    assert!(call.established(), "{}", call.log);
    let desk = finish_driver(desk, desk_rx, &gw);
    gw.wait_for_message("call ended", Duration::from_secs(15)).expect("call ended");

    let bridged = gw.wait_for_message("bridged", Duration::from_secs(1)).unwrap_or_else(|| panic!("not bridged\n{}", gw.log_tail(40)));
    assert_eq!(text_field(&bridged, "agent"), "console:sam", "{bridged}");
    // G.711 from the phone, Opus to the browser and back: each heard the other.
    let heard_by_agent = transcribe_recording(&dir.path().join("heard.wav"), "en");
    let wer = word_error_rate("What is my account balance?", &heard_by_agent);
    assert!(wer <= 0.5 || heard_by_agent.to_lowercase().contains("balance"), "Sam heard {heard_by_agent:?} (WER {wer:.2}); desk {desk}");
    // What the caller heard once bridged: the bot's lines and the hold music before it are cut
    // off (whisper on all of it at once can lose the short part that matters).
    let started = gw.wait_for_message("call started", Duration::from_secs(1)).expect("call started");
    let bridged_at = secs_between(&started, &bridged);
    let after_bridge = recording_from(call.heard_wav.as_deref().expect("baresip recorded the call"), bridged_at);
    let heard_by_caller = transcribe_recording(&after_bridge, "en");
    let share = heard_share("How much data do I have left this month?", &heard_by_caller);
    assert!(share >= 0.5, "the caller heard {heard_by_caller:?}: {:.0}% of Sam's words", share * 100.0);
    eprintln!("FIGURE console agent for a phone caller: decision to bridge {} ms; Sam heard {heard_by_agent:?}; the caller heard {heard_by_caller:?}, {:.0}% of Sam's words", event_field(&bridged, "decision_to_bridge_ms").unwrap_or(&Value::Null), share * 100.0);
}

/// sipp as an agent on a fixed port, in the background.
fn sipp_agent(scenario: &str, port: u16, dir: &Path) -> Child {
    Command::new("sipp")
        .arg("-sf")
        .arg(sipp_scenario(scenario))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1", "-nostdin", "-trace_err", "-trace_logs"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp agent")
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_logs(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_logs.log") || e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

#[test]
fn a_busy_agent_gets_the_context_headers_and_the_caller_a_callback() {
    let dir = temp_dir("busy-agent-");
    let agent_port = free_udp_port();
    let mut agent = sipp_agent("uas_agent_busy.xml", agent_port, dir.path());
    let callbacks = dir.path().join("callbacks.jsonl");
    let config = dir.path().join("frontline.toml");
    std::fs::write(&config, format!("[handoff]\nagents = [\"sip:agent@127.0.0.1:{agent_port}\"]\ncallbacks_file = \"{}\"\n", callbacks.display())).unwrap();
    let gw = Gateway::start(&["--language", "en", "--config", config.to_str().unwrap()]);
    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(25), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &fixture("en_agent.wav"), opts);
    assert!(call.established(), "{}", call.log);
    let status = wait_exit(&mut agent, Duration::from_secs(5));
    let logs = read_logs(dir.path());
    assert!(status.is_some_and(|s| s.success()), "the agent's INVITE lacked the context headers ({status:?}):\n{logs}");
    assert!(logs.contains("reason=explicit-request"), "{logs}");

    let end = gw.wait_for_message("call ended", Duration::from_secs(15)).unwrap_or_else(|| panic!("{}", gw.log_tail(40)));
    assert_eq!(text_field(&end, "reason"), "handoff-fallback", "the gateway ended the call politely: {end}");
    assert_eq!(text_field(&end, "outcome"), "escalated");
    let line = std::fs::read_to_string(&callbacks).expect("callback request stored");
    let request: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(request["number"], "caller");
    assert_eq!(request["reason"], "explicit-request");
    let heard = transcribe_recording(call.heard(), "en").to_lowercase();
    assert!(heard.contains("call you back") || heard.contains("busy"), "the caller was told: {heard:?}");
}

#[test]
fn a_cold_handoff_refers_the_caller_who_calls_the_agent_itself() {
    let dir = temp_dir("cold-");
    let agent = BaresipAgent::start(&fixture("en_data.wav"));
    let config = dir.path().join("frontline.toml");
    std::fs::write(&config, format!("[handoff]\nmode = \"cold\"\nagents = [\"{}\"]\n", agent.uri())).unwrap();
    let gw = Gateway::start(&["--language", "en", "--config", config.to_str().unwrap()]);
    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(26), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &caller_script(dir.path()), opts);
    assert!(call.established(), "{}", call.log);
    let transferred = gw.wait_for_message("transferred", Duration::from_secs(5)).unwrap_or_else(|| panic!("no transfer\n{}\n{}", gw.log_tail(30), call.log));
    eprintln!("decision to transfer: {} ms", event_field(&transferred, "decision_to_transfer_ms").unwrap());
    let end = gw.wait_for_message("call ended", Duration::from_secs(5)).expect("call ended");
    assert_eq!(text_field(&end, "reason"), "transferred");
    // The caller's own phone called the agent, who heard the caller (baresip plays its
    // audio file from the start on the new call).
    assert!(agent.answered(), "the agent answered the transferee:\n{}", agent.log());
    let heard = transcribe_recording(&agent.heard_wav().expect("the agent recorded the call"), "en").to_lowercase();
    assert!(heard.contains("person") || heard.contains("account"), "agent heard {heard:?}");
}

#[test]
fn an_agent_who_never_answers_is_cancelled_and_the_caller_returns_to_the_ai() {
    let dir = temp_dir("no-answer-");
    let agent_port = free_udp_port();
    let mut agent = sipp_agent("uas_agent_no_answer.xml", agent_port, dir.path());
    let config = dir.path().join("frontline.toml");
    std::fs::write(&config, format!("[handoff]\nagents = [\"sip:agent@127.0.0.1:{agent_port}\"]\nring_timeout_secs = 5\nfallback = \"ai\"\n")).unwrap();
    let gw = Gateway::start(&["--language", "en", "--config", config.to_str().unwrap()]);
    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(22), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &fixture("en_agent.wav"), opts);
    assert!(call.established(), "{}", call.log);
    let status = wait_exit(&mut agent, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "the agent's INVITE was not CANCELled cleanly ({status:?}):\n{}", read_logs(dir.path()));
    let fallback = gw.wait_for_message("handoff fallback", Duration::from_secs(5)).unwrap_or_else(|| panic!("{}", gw.log_tail(30)));
    assert!(text_field(&fallback, "reason").contains("no answer"), "{fallback}");
    let end = gw.wait_for_message("call ended", Duration::from_secs(15)).expect("call ended");
    assert_eq!(text_field(&end, "reason"), "caller-hangup", "the call stayed with the AI until the caller left: {end}");
    let heard = transcribe_recording(call.heard(), "en").to_lowercase();
    let way_back = heard.contains("meantime") || heard.contains("help you myself");
    assert!(heard.contains("colleagues") && way_back, "the caller heard the apology and the way back: {heard:?}");
}

#[test]
fn an_agent_phone_stops_ringing_when_the_caller_hangs_up_first() {
    let dir = temp_dir("caller-left-");
    let agent_port = free_udp_port();
    let mut agent = sipp_agent("uas_agent_no_answer.xml", agent_port, dir.path());
    let config = dir.path().join("frontline.toml");
    std::fs::write(&config, format!("[handoff]\nagents = [\"sip:agent@127.0.0.1:{agent_port}\"]\nring_timeout_secs = 60\n")).unwrap();
    let gw = Gateway::start(&["--language", "en", "--config", config.to_str().unwrap()]);
    // The caller asks for a person and gives up while the agent's phone rings (60 s ring time).
    let opts = BaresipCallOptions { hangup_after: Duration::from_secs(10), ..BaresipCallOptions::default() };
    let call = run_baresip_call_with(gw.sip_port(), &fixture("en_agent.wav"), opts);
    assert!(call.established(), "{}", call.log);
    gw.wait_for_message("ringing agent", Duration::from_secs(1)).unwrap_or_else(|| panic!("the agent was never rung\n{}", gw.log_tail(30)));
    // The agent's INVITE is CANCELled within moments of the caller's BYE, not after 60 s.
    let status = wait_exit(&mut agent, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "the agent's phone rang on ({status:?}):\n{}", read_logs(dir.path()));
    gw.wait_for_message("the caller left while the agent rang: cancelled", Duration::from_secs(2)).unwrap_or_else(|| panic!("{}", gw.log_tail(30)));
}

#[test]
fn a_sipp_caller_goes_through_a_warm_transfer_and_hangs_up_on_the_agent() {
    let agent = BaresipAgent::start(&fixture("en_data.wav"));
    let gw = Gateway::start(&["--language", "en", "--agent", &agent.uri()]);
    let dir = temp_dir("sipp-warm-");
    let audio = dir.path().join("request.ulaw");
    to_ulaw(&fixture("en_agent.wav"), &audio);
    let vars = vec![
        ("AUDIO".to_string(), audio.display().to_string()),
        ("PT".to_string(), "0".to_string()),
        ("CODEC".to_string(), "PCMU".to_string()),
        ("AUDIO_MS".to_string(), g711_duration(&audio).as_millis().to_string()),
        ("REPLY_MS".to_string(), "12000".to_string()),
    ];
    let sipp = run_sipp_with(&sipp_scenario("uac_stream.xml"), gw.sip_port(), SippOptions { vars, capture_rx: true, ..SippOptions::default() });
    assert!(sipp.success(), "{}\n{}", sipp.report(), gw.log_tail(30));
    let bridged = gw.wait_for_message("bridged", Duration::from_secs(1)).unwrap_or_else(|| panic!("not bridged\n{}", gw.log_tail(30)));
    assert_eq!(text_field(&bridged, "codec"), "PCMU");
    let at = |msg: &str| gw.wait_for_message(msg, Duration::from_secs(1)).map(|e| e["timestamp"].as_str().unwrap_or_default().to_string());
    eprintln!("escalation {:?}, INVITE to the agent {:?}, bridged {:?}", at("escalation"), at("ringing agent"), bridged["timestamp"]);
    let end = gw.wait_for_message("call ended", Duration::from_secs(10)).expect("call ended");
    assert_eq!(text_field(&end, "reason"), "caller-hangup");
    assert_eq!(text_field(&end, "outcome"), "escalated");
    // While bridged, sipp heard the agent (baresip plays its fixture to the caller).
    let rx = sipp.rx_wav.as_ref().expect("sipp received audio");
    let heard = transcribe_recording(rx, "en").to_lowercase();
    assert!(heard.contains("data") || heard.contains("month"), "the caller heard the agent: {heard:?}");
}
