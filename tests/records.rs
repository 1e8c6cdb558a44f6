//! Call records, recordings and metrics, end to end: a finished sipp call leaves a whole record
//! and its metrics; a gateway killed (-9) mid-call leaves the finished record intact, the
//! cut-off call marked interrupted at the next start, and a WAV of it that sox can read; a
//! caller back about the same thing gets their history to a person; surveys, `frontline
//! report` and `frontline review` on real calls.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn sox(args: &[&str]) -> String {
    let out = Command::new("sox").args(args).output().expect("run sox (scripts/setup.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sox {args:?} failed:\n{text}");
    text
}

/// The value of a `sox ... stats` line such as "RMS lev dB".
fn stat(stats: &str, name: &str) -> f64 {
    let line = stats.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name:?} in\n{stats}"));
    let v = line[name.len()..].split_whitespace().next().unwrap_or("");
    v.parse().unwrap_or(f64::NEG_INFINITY)
}

fn sipp_options(ulaw: &Path, reply_ms: u64, timeout: Duration) -> SippOptions {
    let audio_ms = g711_duration(ulaw).as_millis().to_string();
    let vars = [("AUDIO", ulaw.display().to_string()), ("PT", "0".into()), ("CODEC", "PCMU".into()), ("AUDIO_MS", audio_ms), ("REPLY_MS", reply_ms.to_string())];
    SippOptions { vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), timeout, ..SippOptions::default() }
}

#[test]
fn records_survive_a_kill_and_the_cut_off_call_is_interrupted_with_a_playable_recording() {
    let dir = temp_dir("records-");
    let db = dir.path().join("records.db");
    let recordings = dir.path().join("recordings");
    let ulaw = dir.path().join("balance.ulaw");
    to_ulaw(&fixture("en_balance.wav"), &ulaw);
    let args = ["--records", db.to_str().unwrap(), "--record-to", recordings.to_str().unwrap(), "--ops-port", "0"];

    let gw = Gateway::start(&args);
    // One whole call: speaks, hears the answer, hangs up.
    let done = run_sipp_with(&sipp_scenario("uac_stream.xml"), gw.sip_port(), sipp_options(&ulaw, 12_000, Duration::from_secs(45)));
    assert!(done.success(), "first call failed:\n{}\n{}", done.report(), gw.log_tail(30));
    let ended = gw.wait_for_message("call ended", Duration::from_secs(15)).expect("first call ended");
    let finished_id = event_field(&ended, "call_id").and_then(Value::as_str).unwrap().to_string();

    // The record is committed before "call ended" is logged: readable right now.
    let record = calls_json(&db, &["show", &finished_id]);
    assert_eq!(record["cdr"]["outcome"], "contained", "{record:#}");

    // Metrics after a call.
    let metrics = Command::new("curl").args(["-sf", &format!("{}/metrics", gw.http_url())]).output().expect("curl");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    for name in ["frontline_calls_total{outcome=\"contained\"}", "frontline_calls_active{state=\"ai\"}", "frontline_turn_stage_seconds_bucket{stage=\"first_rtp\"", "frontline_recognition_rtf_bucket", "frontline_rtp_jitter_ms_bucket", "frontline_records_write_seconds_bucket"] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    // The record writes of a real call, for the report: mean queue + commit time per kind.
    for line in metrics.lines().filter(|l| l.starts_with("frontline_records_write_seconds_sum") || l.starts_with("frontline_records_write_seconds_count")) {
        println!("{line}");
    }

    // A second, long call: killed once the caller has spoken and the gateway has answered.
    let long_call = {
        let (port, opts) = (gw.sip_port(), sipp_options(&ulaw, 15_000, Duration::from_secs(30)));
        std::thread::spawn(move || run_sipp_with(&sipp_scenario("uac_stream.xml"), port, opts))
    };
    let second_turn = gw.wait_for(|ev| event_message(ev) == Some("turn") && event_field(ev, "call_id").and_then(Value::as_str) != Some(finished_id.as_str()) && event_field(ev, "turn").and_then(Value::as_u64) == Some(1), Duration::from_secs(40));
    let second_turn = second_turn.unwrap_or_else(|| panic!("the second call never answered\n{}", gw.log_tail(30)));
    let cut_id = event_field(&second_turn, "call_id").and_then(Value::as_str).unwrap().to_string();
    // Past the next header update of the WAV (every second).
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill").args(["-9", &gw.pid().to_string()]).status().expect("kill");
    assert!(killed.success());
    drop(gw);

    let gw = Gateway::start(&args);
    let cut = calls_json(&db, &["show", &cut_id]);
    assert_eq!(cut["cdr"]["outcome"], "interrupted", "{cut:#}");
    assert!(!cut["turns"].as_array().unwrap().is_empty(), "the turn written before the kill is kept: {cut:#}");
    let finished = calls_json(&db, &["show", &finished_id]);
    assert_eq!(finished["cdr"]["outcome"], "contained");
    assert_eq!(finished, record, "the finished record is intact");
    let turns = finished["turns"].as_array().unwrap();
    assert!(turns.iter().any(|t| t["heard"].as_str().unwrap_or("").to_lowercase().contains("account")), "{finished:#}");
    assert!(turns.iter().any(|t| t["first_rtp_ms"].as_u64().is_some()), "{finished:#}");
    let states: Vec<&str> = finished["timeline"].as_array().unwrap().iter().filter_map(|s| s["state"].as_str()).collect();
    assert_eq!(states.first().copied(), Some("answered"));
    assert_eq!(states.last().copied(), Some("ended"));

    let listed = calls_json(&db, &["list", "--outcome", "interrupted"]);
    assert_eq!(listed.as_array().unwrap().iter().filter_map(|c| c["call_id"].as_str()).collect::<Vec<_>>(), [cut_id.as_str()]);
    let text = Command::new(frontline_bin()).args(["calls", "show", &finished_id, "--records"]).arg(&db).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("outcome   contained") && text.contains("turns ("), "{text}");

    // The cut-off call's WAV: sox reads it, two channels, the caller's side has speech.
    let wav = cut["cdr"]["recording"].as_str().expect("recording path").to_string();
    let info = sox(&["--i", &wav]);
    assert!(info.contains("Channels       : 2"), "{info}");
    let caller = sox(&[&wav, "-n", "remix", "1", "stats"]);
    let level = stat(&caller, "RMS lev dB");
    assert!(level > -45.0, "caller channel is silent ({level} dBFS):\n{caller}");
    let seconds = stat(&sox(&[&wav, "-n", "stats"]), "Length s");
    assert!(seconds >= 2.0, "only {seconds} s recorded");
    drop(gw);
    let _ = long_call.join();
}

/// Issue 19's caller history: a caller who calls back about the same thing within the window is
/// handed to a person for it (`repeat-contact`), and the agent's packet shows the earlier call,
/// what it was about and what the caller said; the record keeps what each call was about. The
/// second call comes from another number with the same CRM id in its INVITE (`[sip]
/// customer_id_header`): the customer, not the phone, is who called back.
#[test]
fn a_caller_back_about_the_same_thing_goes_to_a_person_with_their_history() {
    let dir = temp_dir("history-");
    let db = dir.path().join("records.db");
    // The default leaves a balance check out of the signal (checking twice is no problem that
    // came back); a deployment that counts it lists no ignored intents.
    let config = dir.path().join("frontline.toml");
    std::fs::write(&config, "[sip]\ncustomer_id_header = \"X-Customer-Id\"\n\n[triage.repeat_contact]\nignore_intents = []\n").unwrap();
    // The stock caller scenario with the CRM's header and a calling number of our choosing.
    let scenario_from = |number: &str| {
        let stock = std::fs::read_to_string(sipp_scenario("uac_stream.xml")).unwrap();
        assert!(stock.contains("Max-Forwards: 70\n") && stock.contains("From: sipp <sip:sipp@"));
        let text = stock
            .replace("Max-Forwards: 70\n", "Max-Forwards: 70\nX-Customer-Id: CRM-4471\n")
            .replace("From: sipp <sip:sipp@", &format!("From: <sip:{number}@"));
        let path = dir.path().join(format!("uac_stream_{number}.xml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    // The caller, in the gateway's own English voice, after the greeting.
    let spoken = dir.path().join("balance.wav");
    let said = Command::new(frontline_bin()).args(["say", "--language", "en", "--models"]).arg(models_dir()).arg("-o").arg(&spoken).arg("I would like to check my balance, please.").output().expect("frontline say");
    assert!(said.status.success(), "say failed: {}", String::from_utf8_lossy(&said.stderr));
    let ulaw = dir.path().join("balance.ulaw");
    let padded = Command::new("sox").arg(&spoken).args(["-r", "8000", "-c", "1", "-t", "ul"]).arg(&ulaw).args(["pad", "5", "6"]).status().expect("sox");
    assert!(padded.success());
    let gw = Gateway::start(&["--records", db.to_str().unwrap(), "--config", config.to_str().unwrap(), "--language", "en", "--ops-port", "0"]);

    let call = |number: &str| run_sipp_with(&scenario_from(number), gw.sip_port(), sipp_options(&ulaw, 10_000, Duration::from_secs(45)));
    let done = call("13800138000");
    assert!(done.success(), "first call failed:\n{}\n{}", done.report(), gw.log_tail(30));
    let ended = gw.wait_for_message("call ended", Duration::from_secs(15)).expect("first call ended");
    let first = event_field(&ended, "call_id").and_then(Value::as_str).unwrap().to_string();
    let record = calls_json(&db, &["show", &first]);
    assert_eq!(record["cdr"]["outcome"], "contained", "{record:#}");
    assert_eq!(record["intents"], serde_json::json!(["balance"]), "{record:#}");
    assert!(record["summary"].as_str().unwrap_or("").to_lowercase().contains("balance"), "{record:#}");
    assert_eq!(record["cdr"]["customer_id"], "CRM-4471", "{record:#}");

    let _ = call("13911112222");
    let ended = gw
        .wait_for(|ev| event_message(ev) == Some("call ended") && event_field(ev, "call_id").and_then(Value::as_str) != Some(first.as_str()), Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the second call never ended\n{}", gw.log_tail(30)));
    let second = event_field(&ended, "call_id").and_then(Value::as_str).unwrap().to_string();
    let record = calls_json(&db, &["show", &second]);
    assert_eq!(record["decisions"][0]["code"], "repeat-contact", "{record:#}");
    assert_eq!(record["decisions"][0]["priority"], "high", "{record:#}");
    assert_eq!((record["cdr"]["caller"].as_str(), record["cdr"]["customer_id"].as_str()), (Some("13911112222"), Some("CRM-4471")), "{record:#}");
    assert_eq!(record["handoff_packet"]["customer_id"], "CRM-4471", "{record:#}");
    let history = &record["handoff_packet"]["history"];
    assert_eq!(history[0]["call_id"], first.as_str(), "{record:#}");
    assert_eq!(history[0]["intents"], serde_json::json!(["balance"]), "{record:#}");
    assert_eq!(history[0]["outcome"], "contained", "{record:#}");
}

/// A caller in the gateway's own English voice: each line, then the silence after it (s),
/// after 5 s of silence for the greeting; headerless 8 kHz μ-law for sipp.
fn caller_lines(dir: &Path, name: &str, lines: &[(&str, f64)]) -> std::path::PathBuf {
    let mut pieces = Vec::new();
    for (i, (text, pause_s)) in lines.iter().enumerate() {
        let wav = dir.join(format!("{name}-{i}.wav"));
        let said = Command::new(frontline_bin()).args(["say", "--language", "en", "--models"]).arg(models_dir()).arg("-o").arg(&wav).arg(text).output().expect("frontline say");
        assert!(said.status.success(), "say failed: {}", String::from_utf8_lossy(&said.stderr));
        let padded = dir.join(format!("{name}-{i}-padded.wav"));
        sox(&[wav.to_str().unwrap(), padded.to_str().unwrap(), "pad", "0", &pause_s.to_string()]);
        pieces.push(padded.display().to_string());
    }
    let ulaw = dir.join(format!("{name}.ulaw"));
    let mut args: Vec<&str> = pieces.iter().map(String::as_str).collect();
    args.extend(["-r", "8000", "-c", "1", "-t", "ul", ulaw.to_str().unwrap(), "pad", "5", "0"]);
    sox(&args);
    ulaw
}

/// The service loop on real calls: two callers rate their call (keypad, words) and the rating
/// is kept; `frontline report` reads the calls back; `frontline review` lists the question the
/// playbook missed, teaches it to the playbook, and `frontline chat` then understands it.
#[test]
fn real_calls_are_rated_reported_and_their_misses_taught_to_the_playbook() {
    let dir = temp_dir("survey-");
    let db = dir.path().join("records.db");
    let config = dir.path().join("frontline.toml");
    std::fs::write(&config, "[survey]\nenabled = true\n").unwrap();
    let gw = Gateway::start(&["--records", db.to_str().unwrap(), "--config", config.to_str().unwrap(), "--language", "en", "--ops-port", "0"]);
    // A question, a goodbye (the brain ends the call), then time for the goodbye and the
    // survey's question to play before the answer.
    let conversation = [("I would like to check my balance, please.", 9.0), ("That's all, thank you. Goodbye.", 16.0)];

    // On the keypad: 5, after the conversation, in which one question was not understood.
    let mut keyed = conversation.to_vec();
    keyed.insert(1, ("What do I owe you this month?", 9.0));
    let ulaw = caller_lines(dir.path(), "keypad", &keyed);
    let audio_ms = g711_duration(&ulaw).as_millis().to_string();
    let vars = [("AUDIO", ulaw.display().to_string()), ("PT", "0".into()), ("CODEC", "PCMU".into()), ("AUDIO_MS", audio_ms), ("DTMF", "5".into()), ("WAIT_MS", "20000".into())];
    let opts = SippOptions { vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), timeout: Duration::from_secs(90), ..SippOptions::default() };
    let done = run_sipp_with(&sipp_scenario("uac_stream_dtmf_until_bye.xml"), gw.sip_port(), opts);
    assert!(done.success(), "the keypad caller's call failed (no BYE after the rating?):\n{}\n{}", done.report(), gw.log_tail(40));
    let ended = gw.wait_for_message("call ended", Duration::from_secs(15)).expect("first call ended");
    let first = event_field(&ended, "call_id").and_then(Value::as_str).unwrap().to_string();
    let record = calls_json(&db, &["show", &first]);
    assert_eq!(record["cdr"]["outcome"], "contained", "{record:#}");
    assert_eq!(record["survey"], serde_json::json!({"score": 5, "by": "keypad"}), "{record:#}\n{}", gw.log_tail(40));

    // In words: "four", said after the question.
    let mut spoken = conversation.to_vec();
    spoken.push(("I would say four.", 1.0));
    let ulaw = caller_lines(dir.path(), "voice", &spoken);
    let vars = [("AUDIO", ulaw.display().to_string()), ("PT", "0".into()), ("CODEC", "PCMU".into()), ("WAIT_MS", "75000".into())];
    let opts = SippOptions { vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), timeout: Duration::from_secs(90), ..SippOptions::default() };
    let done = run_sipp_with(&sipp_scenario("uac_until_bye.xml"), gw.sip_port(), opts);
    assert!(done.success(), "the speaking caller's call failed:\n{}\n{}", done.report(), gw.log_tail(40));
    let ended = gw
        .wait_for(|ev| event_message(ev) == Some("call ended") && event_field(ev, "call_id").and_then(Value::as_str) != Some(first.as_str()), Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the second call never ended\n{}", gw.log_tail(30)));
    let second = event_field(&ended, "call_id").and_then(Value::as_str).unwrap().to_string();
    let record = calls_json(&db, &["show", &second]);
    assert_eq!(record["survey"], serde_json::json!({"score": 4, "by": "voice"}), "{record:#}\n{}", gw.log_tail(40));
    // `frontline calls show` says it.
    let text = Command::new(frontline_bin()).args(["calls", "show", &second, "--records"]).arg(&db).output().expect("calls show");
    assert!(String::from_utf8_lossy(&text.stdout).contains("survey    4/5 (voice)"), "{}", String::from_utf8_lossy(&text.stdout));

    // `frontline report` over these real calls: tables, report.md and its plots.
    let out = dir.path().join("report");
    let report = Command::new(frontline_bin()).args(["report", "--records"]).arg(&db).arg("--out").arg(&out).output().expect("frontline report");
    let tables = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "report failed: {}", String::from_utf8_lossy(&report.stderr));
    assert!(tables.contains("**Containment: 100.0 %**"), "{tables}");
    assert!(tables.contains("2 answers from 2 handled calls (100.0 %); average **4.50**"), "{tables}");
    assert!(tables.contains("| balance | 2 | 4.50 |"), "satisfaction by intent:\n{tables}");
    assert!(tables.contains("| en | "), "the caller turns' confidence:\n{tables}");
    assert!(tables.contains("| fallback | 1 |"), "the question not understood:\n{tables}");
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("![satisfaction_by_intent.svg]"));
    for plot in ["outcomes_by_day.svg", "handoff_reasons.svg", "satisfaction_by_intent.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap_or_else(|e| panic!("{plot}: {e}"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{plot}");
    }

    // The console's report page: the same figures from the running gateway, in chromium.
    let (status, body) = http_get(&gw.http_url(), "/api/report");
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert!(api["html"].as_str().unwrap_or_default().contains("<strong>Containment: 100.0 %</strong>"), "{api}");
    assert_eq!(api["plots"].as_array().map(Vec::len), Some(3), "{api}");
    let (status, body) = http_get(&gw.http_url(), "/api/report?since=2026-13-01");
    assert!(status == 400 && body.contains("YYYY-MM-DD"), "a bad date gets 400 with the reason: {status} {body}");
    let page = Command::new("node")
        .arg(repo_root().join("tests/console/report.mjs"))
        .arg(format!("{}/console/report", gw.http_url()))
        .current_dir(repo_root().join("tests/console"))
        .output()
        .expect("node (scripts/setup.sh installs it)");
    let stdout = String::from_utf8_lossy(&page.stdout);
    assert!(page.status.success(), "report page driver: {}\n{stdout}", String::from_utf8_lossy(&page.stderr));
    let shown: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(shown["state"], "live", "{shown}");
    assert!(shown["containment"].to_string().contains("Containment: 100.0 %"), "{shown}");
    let rows = shown["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r[0] == "balance" && r[2] == "4.50"), "satisfaction by intent on the page: {shown}");
    assert!(rows.iter().any(|r| r[0] == "fallback" && r[1] == "1"), "the failed turn on the page: {shown}");
    let plots = shown["plots"].as_array().unwrap();
    assert!(plots.len() == 3 && plots.iter().all(|p| p["width"].as_u64() > Some(0)), "the plots load as images: {shown}");
    // The trainer's view on the same page: the question the playbook missed, in its group.
    let missed = shown["missed"].as_array().unwrap();
    assert!(missed.len() == 1 && missed[0].as_str().unwrap_or_default().contains("1 time(s), en:"), "the missed question on the page: {shown}");
    assert_eq!(shown["errors"], serde_json::json!([]), "{shown}");

    // `frontline review`: the question the playbook missed, taught to it, then understood.
    let review = |args: &[&str]| {
        let out = Command::new(frontline_bin()).arg("review").args(args).arg("--records").arg(&db).output().expect("frontline review");
        assert!(out.status.success(), "review {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let listed = review(&["list"]);
    // The question as the recognizer heard it ("What do I owe you this month?", give or take
    // a word): the first listed utterance of group 1.
    let heard = listed
        .lines()
        .find_map(|l| l.trim_start().starts_with("fl-").then(|| l.split_once(": ").map(|(_, h)| h.trim().to_string())).flatten())
        .unwrap_or_else(|| panic!("no missed utterance listed:\n{listed}"));
    assert!(listed.contains("#1  ") && listed.contains(", en: \""), "{listed}");
    let playbook = dir.path().join("playbook.toml");
    std::fs::copy(repo_root().join("assets/playbook.toml"), &playbook).unwrap();
    let chat = |line: &str| {
        let mut child = Command::new(frontline_bin())
            .args(["chat", "--lang", "en", "--playbook"])
            .arg(&playbook)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("frontline chat");
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(format!("{line}\n").as_bytes()).unwrap();
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).to_string()
    };
    assert!(chat(&heard).contains("didn't catch that"), "not understood before: {heard}");
    review(&["add", "--group", "1", "--intent", "bill", "--playbook", playbook.to_str().unwrap()]);
    let after = chat(&heard);
    assert!(after.contains("bill was"), "the bill intent answers {heard:?} now:\n{after}");
}
