//! `frontline eval triage FILE --voice`: the labelled dialogs as real SIP calls.
//!
//! Each dialog's caller turns are spoken by the gateway's own voices (Piper for English, Kokoro
//! for Mandarin), sent from sipp as 8 kHz PCMU to a gateway started for the run, several calls
//! at a time, and triage is read back from the gateway's log. So recognition slips, language
//! detection, endpointing and silence timing all take part, as on a real call; the text eval
//! (`frontline eval triage FILE`) leaves all of them out.
//!
//! - A typed turn is synthesized; an utterance turn's text too (its confidence and alternatives
//!   are the recognizer's to find now). A keypad turn is RFC 4733 DTMF, a silence turn a pause.
//! - After each spoken or keyed turn the caller listens for `--reply-ms` before the next, as a
//!   caller waits for the bot; a silence turn is its own length only. A gateway that hangs up
//!   (a handoff with no agent) ends the call early.
//! - The turn a call escalated at is the turn whose audio was the last to start before the
//!   gateway logged the escalation, so an utterance the endpointer cut in two still counts once.
//! - Scoring is the text eval's ([`crate::sim::eval::score`]); both tables are printed.

use crate::bench::gateway::Gateway;
use crate::bench::sipp::{fill_turns, start_call, turn_block, write_ulaw, SippCall, TURNS_SCENARIO};
use crate::bench::{free_port_block, free_udp_port};
use crate::config::Config;
use crate::sim::{score, EvalReport};
use crate::sim::{labelled, read_script, Dialog, EvalArgs, Outcome, Simulator, TurnInput};
use crate::speech::models::ModelDir;
use crate::speech::tts::{Lang, Tts};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// RFC 4733 digits as sipp plays them.
const DTMF_MS: u64 = 160;
/// Tries per dialog before a call the gateway keeps refusing is left out of the score.
const MAX_ATTEMPTS: u32 = 3;

/// What a dialog's caller does, in order: the sipp blocks and when each turn starts.
struct Script {
    /// Silence before the first turn, while the greeting plays.
    lead_ms: u64,
    /// sipp scenario lines for the turns.
    blocks: String,
    /// Start of each turn's audio (or pause), in ms after the call is answered.
    turn_starts_ms: Vec<u64>,
    /// The whole scenario, answer to BYE.
    total_ms: u64,
}

/// One dialog placed as a call.
struct Placed {
    dialog: Dialog,
    caller: String,
    script: Script,
    /// When its (last) call was placed: a caller number two dialogs share (a VIP) is matched
    /// to the call that started after it.
    placed_at: Instant,
}

/// Runs the voice eval and prints the speech and text tables.
pub async fn eval(args: &EvalArgs) -> Result<()> {
    if args.playbook.is_some() {
        bail!("--playbook: with --voice the gateway's playbook is the config's ([brain] playbook in --config FILE)");
    }
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let repo = std::env::current_dir()?;
    let models = repo.join("models");
    let work = std::env::temp_dir().join(format!("frontline-eval-voice-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let dialogs = labelled(read_script(&args.file)?, args.limit);
    eprintln!("eval --voice: {} dialogs, voices from {}; work files in {}", dialogs.len(), models.display(), work.display());

    let tts = Tts::new(config.tts.tts_config(&ModelDir::new(&models))).context("the gateway's voices (run scripts/setup.sh)")?;
    let mut placed = Vec::new();
    let started = Instant::now();
    for (i, d) in dialogs.iter().enumerate() {
        let dir = work.join(format!("d{i:03}"));
        std::fs::create_dir_all(&dir)?;
        let script = voice_dialog(&tts, d, &dir, args.lead_ms, args.reply_ms).await.with_context(|| format!("voicing {}", d.id))?;
        // A unique caller per call, so the log tells the calls apart (a VIP keeps its number).
        let caller = d.caller.clone().unwrap_or_else(|| format!("1390000{i:04}"));
        placed.push(Placed { dialog: d.clone(), caller, script, placed_at: Instant::now() });
        eprint!("\reval --voice: voiced {}/{} dialogs ({:.0} s)", i + 1, dialogs.len(), started.elapsed().as_secs_f64());
    }
    eprintln!();
    drop(tts);

    let concurrency = args.calls.max(1);
    let extra: Vec<String> = {
        let mut v = vec!["--records".to_string(), work.join("records.db").display().to_string()];
        if let Some(c) = &args.config {
            v.extend(["--config".to_string(), c.display().to_string()]);
        }
        v
    };
    let exe = std::env::current_exe()?;
    let speech_pairs = tokio::task::spawn_blocking(move || place_calls(&exe, &models, &work, &extra, placed, concurrency)).await??;
    let speech = score(&speech_pairs);

    let sim = Simulator::from_paths(None, args.config.as_deref()).await?;
    let text = crate::sim::run_eval(&sim, &dialogs).await?;
    println!("{}", report(&args.file, &speech, &text, concurrency));
    if args.verbose {
        for w in &speech.wrong {
            println!("speech {w}");
        }
    }
    if let Some(path) = &args.confusion {
        std::fs::write(path, speech.confusion_table()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn report(file: &Path, speech: &EvalReport, text: &EvalReport, concurrency: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "triage eval by voice: {} (real SIP calls, {concurrency} at a time, the gateway's voices)\n", file.display());
    let _ = writeln!(s, "{}", speech.table());
    let _ = writeln!(s, "the same dialogs as text:\n");
    let _ = writeln!(s, "{}", text.table());
    let _ = writeln!(s, "precision / recall, speech vs text:");
    for (lang, sp) in &speech.langs {
        if let Some(tx) = text.get(lang) {
            let _ = writeln!(
                s,
                "{lang:<5} speech P {:.3} R {:.3} F1 {:.3} | text P {:.3} R {:.3} F1 {:.3}",
                sp.precision(),
                sp.recall(),
                sp.f1(),
                tx.precision(),
                tx.recall(),
                tx.f1()
            );
        }
    }
    s
}

/// Synthesizes the dialog's turns into 8 kHz μ-law files in `dir` and lays out the scenario.
async fn voice_dialog(tts: &Tts, d: &Dialog, dir: &Path, lead_ms: u64, reply_ms: u64) -> Result<Script> {
    let lang = match d.lang.as_deref() {
        Some("zh") => Lang::Zh,
        _ => Lang::En,
    };
    let mut script = Script { lead_ms, blocks: String::new(), turn_starts_ms: Vec::new(), total_ms: lead_ms };
    for (i, turn) in d.turns.iter().enumerate() {
        script.turn_starts_ms.push(script.total_ms);
        let text = match turn {
            TurnInput::Text(t) => t.as_str(),
            TurnInput::Utterance(u) => u.text.as_str(),
            TurnInput::Dtmf(k) => {
                let digits: String = k.dtmf.chars().filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#')).collect();
                let ms = DTMF_MS * 2 * digits.len() as u64 + reply_ms;
                let _ = write!(script.blocks, "  <nop><action><exec play_dtmf=\"{digits},{DTMF_MS}\"/></action></nop>\n  <pause milliseconds=\"{ms}\"/>\n");
                script.total_ms += ms;
                continue;
            }
            TurnInput::Silence(s) => {
                // The caller's silence is counted from the end of the bot's reply, which the
                // previous turn's listening time already waited out in part: adding another
                // listening time here would make a 9 s pause an 18 s one.
                let ms = u64::from(s.silence_ms);
                let _ = writeln!(script.blocks, "  <pause milliseconds=\"{ms}\"/>");
                script.total_ms += ms;
                continue;
            }
        };
        let pcm16 = tts.synthesize(text, lang).await?;
        let path = dir.join(format!("turn{i}.ulaw"));
        let len_ms = write_ulaw(&pcm16, &path)?.len() as u64 / 8;
        script.blocks.push_str(&turn_block(&path, 0, len_ms, reply_ms));
        script.total_ms += len_ms + reply_ms;
    }
    Ok(script)
}

/// Places every dialog as a call, `concurrency` at a time, against a gateway started here, and
/// reads each call's outcome from its log.
fn place_calls(exe: &Path, models: &Path, work: &Path, extra: &[String], mut placed: Vec<Placed>, concurrency: usize) -> Result<Vec<(Dialog, Outcome)>> {
    let rtp_min = free_port_block(200);
    let gw = Gateway::start(exe, models, free_udp_port(), (rtp_min, rtp_min + 199), extra)?;
    let template = std::fs::read_to_string(TURNS_SCENARIO).with_context(|| format!("{TURNS_SCENARIO} (run from the repository)"))?;
    // Each dialog is tried up to MAX_ATTEMPTS times: a call the gateway refused (503 while its
    // recognizer is saturated) says nothing about triage.
    let mut queue: std::collections::VecDeque<(usize, u32)> = (0..placed.len()).map(|i| (i, 1)).collect();
    let mut running: Vec<(usize, u32, SippCall, Instant)> = Vec::new();
    let mut refused = vec![false; placed.len()];
    let started = Instant::now();
    let mut done = 0;
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < concurrency {
            let Some((i, attempt)) = queue.pop_front() else { break };
            let p = &placed[i];
            let dir = work.join(format!("d{i:03}"));
            let scenario = dir.join("call.xml");
            std::fs::write(&scenario, fill_turns(&template, &p.caller, p.script.lead_ms, &p.script.blocks)?)?;
            let deadline = Instant::now() + Duration::from_millis(p.script.total_ms + 30_000);
            placed[i].placed_at = Instant::now();
            let call = start_call(&scenario, gw.sip_port, free_udp_port(), free_port_block(4), &dir)?;
            running.push((i, attempt, call, deadline));
            // Spread the starts, so the callers' turns do not all end at the same moment.
            std::thread::sleep(Duration::from_millis(700));
        }
        let mut finished = Vec::new();
        running.retain_mut(|(i, attempt, call, deadline)| {
            let over = match call.child.try_wait() {
                Ok(Some(_)) => true,
                _ if Instant::now() > *deadline => {
                    let _ = call.child.kill();
                    let _ = call.child.wait();
                    true
                }
                _ => false,
            };
            if over {
                finished.push((*i, *attempt));
            }
            !over
        });
        let lines = if finished.is_empty() { Vec::new() } else { gw.lines_since(0) };
        for (i, attempt) in finished {
            if call_started(&lines, &placed[i]).is_some() {
                done += 1;
            } else if attempt < MAX_ATTEMPTS {
                std::thread::sleep(Duration::from_secs(5));
                queue.push_back((i, attempt + 1));
            } else {
                refused[i] = true;
                done += 1;
            }
            eprint!("\reval --voice: {done}/{} calls done ({:.0} s)", placed.len(), started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!();
    // The last calls' end lines.
    std::thread::sleep(Duration::from_secs(2));
    gw.save_log_since(0, &work.join("gateway.log"));
    let lines = gw.lines_since(0);
    let not_placed: Vec<&str> = placed.iter().zip(&refused).filter(|(_, r)| **r).map(|(p, _)| p.dialog.id.as_str()).collect();
    if !not_placed.is_empty() {
        eprintln!("eval --voice: {} dialogs not scored, the gateway refused their calls {MAX_ATTEMPTS} times: {}", not_placed.len(), not_placed.join(", "));
    }
    Ok(placed
        .into_iter()
        .zip(refused)
        .filter(|(_, refused)| !refused)
        .map(|(p, _)| {
            let outcome = outcome_from_log(&lines, &p);
            (p.dialog, outcome)
        })
        .collect())
}

/// When the dialog's call was answered, and its id, from the gateway's log.
fn call_started(lines: &[(Instant, Value)], p: &Placed) -> Option<(Instant, String)> {
    lines.iter().filter(|(t, _)| *t >= p.placed_at).find_map(|(t, v)| {
        let f = &v["fields"];
        (f["message"] == "call started" && f["caller"].as_str().is_some_and(|c| c.contains(&p.caller)))
            .then(|| (*t, f["call_id"].as_str().unwrap_or_default().to_string()))
    })
}

/// Reads one call's triage from the gateway's log lines (each with when it was read).
fn outcome_from_log(lines: &[(Instant, Value)], p: &Placed) -> Outcome {
    let lang = p.dialog.lang.clone().unwrap_or_else(|| "en".into());
    let mut out = Outcome { id: p.dialog.id.clone(), lang, ..Outcome::default() };
    let Some((answered, call_id)) = call_started(lines, p) else {
        eprintln!("eval --voice: {}: the call never started (see gateway.log)", p.dialog.id);
        return out;
    };
    for (t, v) in lines {
        let f = &v["fields"];
        if f["call_id"].as_str() != Some(call_id.as_str()) {
            continue;
        }
        match f["message"].as_str().unwrap_or_default() {
            "escalation" if out.escalated_at.is_none() => {
                let after_ms = t.saturating_duration_since(answered).as_millis() as u64;
                let turn = p.script.turn_starts_ms.iter().rposition(|&s| s <= after_ms).unwrap_or(0);
                out.escalated_at = Some(turn as u32);
                out.reason = f["category"].as_str().map(str::to_string);
                out.code = f["code"].as_str().map(str::to_string);
                out.priority = f["priority"].as_str().map(str::to_string);
                out.evidence = serde_json::from_str::<Vec<Value>>(f["evidence"].as_str().unwrap_or("[]"))
                    .unwrap_or_default()
                    .iter()
                    .map(|e| crate::sim::EvidenceOut {
                        turn: e["turn"].as_u64().unwrap_or(0) as u32,
                        trigger: e["trigger"].as_str().unwrap_or_default().to_string(),
                        text: e["text"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect();
            }
            "turn" => {
                if let Some(reply) = f["reply"].as_str().filter(|r| !r.is_empty()) {
                    out.replies.push(reply.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn placed(turn_starts_ms: Vec<u64>, placed_at: Instant) -> Placed {
        let dialog: Dialog = serde_json::from_value(json!({"id": "d1", "lang": "zh", "turns": ["a", "b", "c"], "expect": {"escalate_at": 1}})).unwrap();
        Placed { dialog, caller: "13900000001".into(), script: Script { lead_ms: 0, blocks: String::new(), turn_starts_ms, total_ms: 0 }, placed_at }
    }

    fn line(message: &str, fields: Value) -> Value {
        let mut f = fields;
        f["message"] = json!(message);
        json!({ "fields": f })
    }

    #[test]
    fn the_escalation_counts_for_the_turn_whose_audio_started_last_before_it() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let lines = vec![
            (at(0), line("call started", json!({"call_id": "other", "caller": "sip:13900000002@127.0.0.1"}))),
            (at(10), line("call started", json!({"call_id": "c1", "caller": "sip:13900000001@127.0.0.1"}))),
            (at(9000), line("escalation", json!({"call_id": "other", "category": "risk", "code": "risk-fraud"}))),
            (at(14_500), line("turn", json!({"call_id": "c1", "reply": "您好"}))),
            (at(16_010), line("escalation", json!({"call_id": "c1", "category": "explicit", "code": "explicit-request", "priority": "normal", "evidence": "[{\"turn\":2,\"trigger\":\"人工\",\"text\":\"转人工\"}]"}))),
            (at(30_000), line("escalation", json!({"call_id": "c1", "category": "risk", "code": "risk-fraud"}))),
        ];
        // Turns start 11 s, 15 s and 26 s after the answer: 16 s is in the second (index 1),
        // even though the gateway numbered it 2 (it cut the first utterance in two).
        let o = outcome_from_log(&lines, &placed(vec![11_000, 15_000, 26_000], t0));
        assert_eq!((o.escalated_at, o.reason.as_deref(), o.code.as_deref()), (Some(1), Some("explicit"), Some("explicit-request")));
        assert_eq!(o.evidence.len(), 1);
        assert_eq!((o.lang.as_str(), o.replies.len()), ("zh", 1));
    }

    #[test]
    fn a_call_that_never_started_is_not_escalated() {
        let o = outcome_from_log(&[], &placed(vec![0], Instant::now()));
        assert_eq!(o.escalated_at, None);
        // A call from the same number before this dialog was placed is another dialog's.
        let t0 = Instant::now();
        let earlier = vec![(t0, line("call started", json!({"call_id": "c0", "caller": "13900000001"})))];
        let later = placed(vec![0], t0 + Duration::from_millis(5));
        assert_eq!(outcome_from_log(&earlier, &later).escalated_at, None);
        assert!(call_started(&earlier, &later).is_none());
    }
}
