//! The simulator end to end: embedded brain over real gRPC, triage, scoring.

use super::*;

async fn sim() -> Simulator {
    Simulator::start(Playbook::embedded().unwrap(), &Config::default()).await.unwrap()
}

fn eval_file(name: &str) -> Vec<Dialog> {
    read_script(&Path::new(env!("CARGO_MANIFEST_DIR")).join("eval").join(name)).unwrap()
}

#[test]
fn scripts_accept_text_keypad_silence_and_annotated_turns() {
    let text = r#"
// a comment line
{"id": "a", "lang": "en", "turns": ["Hi.", {"dtmf": "0"}, {"silence_ms": 8000}, {"text": "hm", "confidence": 0.2, "loudness_dbfs": -20}], "expect": {"escalate_at": 1, "reason": "explicit"}}
"#;
    let d = parse_script(text, Path::new("x.jsonl")).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].turns[1], TurnInput::Dtmf(DtmfTurn { dtmf: "0".into() }));
    assert_eq!(d[0].turns[2], TurnInput::Silence(SilenceTurn { silence_ms: 8000 }));
    assert!(matches!(&d[0].turns[3], TurnInput::Utterance(u) if u.confidence == Some(0.2)));
    let err = parse_script("\n{\"id\": \"b\", \"turns\": [], \"expect\": {\"escalate_at\": 0, \"reason\": \"anger\"}}", Path::new("x.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("x.jsonl:2") && err.contains("anger"), "{err}");
}

#[tokio::test]
async fn the_issue_examples_run_through_the_real_pipeline() {
    let s = sim().await;
    let text = r#"{"id": "zh-dispute-1", "lang": "zh", "turns": ["为什么多扣了我二十块？", "我根本没有订这个业务，必须退给我。"], "expect": {"escalate_at": 1, "reason": "risk"}}
{"id": "en-dtmf", "lang": "en", "turns": ["Hi there.", {"dtmf": "0"}], "expect": {"escalate_at": 1, "reason": "explicit"}}
{"id": "en-quiet", "lang": "en", "turns": ["Hello?", {"silence_ms": 8000}, "Sorry, what is my balance?"], "expect": {"escalate_at": null}}"#;
    let d = parse_script(text, Path::new("x")).unwrap();
    let o = s.run(&d[0], "1").await.unwrap();
    assert_eq!((o.escalated_at, o.reason.as_deref()), (Some(1), Some("risk")));
    assert!(o.evidence.iter().all(|e| e.turn == 1) && !o.evidence.is_empty());
    let o = s.run(&d[1], "1").await.unwrap();
    assert_eq!((o.escalated_at, o.reason.as_deref()), (Some(1), Some("explicit")));
    assert!(o.replies[1].contains("colleague"), "{:?}", o.replies);
    let o = s.run(&d[2], "1").await.unwrap();
    assert_eq!(o.escalated_at, None);
    assert_eq!(o.replies.len(), 3);
    assert!(o.replies[2].contains("forty-two yuan fifty"), "{:?}", o.replies);
    // The JSON line has the fields the issue names.
    let v: serde_json::Value = serde_json::to_value(&o).unwrap();
    for k in ["id", "escalated_at", "reason", "evidence", "replies"] {
        assert!(v.get(k).is_some(), "{k}");
    }
}

#[tokio::test]
async fn the_brain_mistaking_a_mention_for_a_request_is_overruled() {
    let s = sim().await;
    let d: Dialog = serde_json::from_str(r#"{"id": "m", "lang": "en", "turns": ["Where is the nearest authorized agent store?"]}"#).unwrap();
    let o = s.run(&d, "1").await.unwrap();
    assert_eq!(o.escalated_at, None);
    assert_eq!(o.overruled.len(), 1, "{o:?}");
}

#[tokio::test]
async fn unknown_language_falls_back_to_the_default() {
    let s = sim().await;
    assert_eq!(s.language(Some("fr")), "en");
    assert_eq!(s.language(Some("zh")), "zh");
    let d: Dialog = serde_json::from_str(r#"{"id": "f", "lang": "fr", "turns": ["What is my balance?"]}"#).unwrap();
    let o = s.run(&d, "1").await.unwrap();
    assert_eq!(o.lang, "en");
    assert!(o.replies[0].contains("balance"));
}

#[tokio::test]
async fn vip_callers_escalate_before_the_first_turn() {
    let mut cfg = Config::default();
    cfg.triage.vip_numbers = vec!["13900000000".into()];
    let s = Simulator::start(Playbook::embedded().unwrap(), &cfg).await.unwrap();
    let d: Dialog = serde_json::from_str(r#"{"id": "v", "lang": "zh", "caller": "+86 139 0000 0000", "turns": ["查余额"]}"#).unwrap();
    let o = s.run(&d, "1").await.unwrap();
    assert_eq!((o.escalated_at, o.code.as_deref()), (Some(0), Some("vip")));
}

/// The splits never tuned on, each with a floor a margin below what it scored:
/// - holdout3 (written by the engineer before round 4; after round 7: en P 1.000 R 0.500 F1
///   0.667, zh P 1.000 R 0.750 F1 0.857);
/// - ext-d (80 dialogs written by an outside author who read neither the policy nor the other
///   splits, sealed; after round 7: en P 0.750 R 0.750, zh P 0.846 R 0.917 F1 0.880; after
///   round 8: en P 0.818 R 0.750 F1 0.783, zh P 0.917 R 0.917 F1 0.917).
#[tokio::test]
async fn held_out_splits_score_above_their_floor() {
    let s = sim().await;
    for (file, floor) in [("triage-holdout3.jsonl", [0.6, 0.6]), ("triage-ext-d.jsonl", [0.65, 0.8])] {
        let dialogs = eval_file(file);
        assert!(dialogs.len() >= 30);
        let r = run_eval(&s, &dialogs).await.unwrap();
        let table = r.table();
        for (lang, floor) in ["en", "zh"].into_iter().zip(floor) {
            assert!(r.get(lang).unwrap().f1() >= floor, "{file} {lang}\n{table}");
        }
        assert!(r.get("all").unwrap().turn_accuracy() >= 0.9, "{file}\n{table}");
    }
}

/// The splits the lexicons and thresholds were tuned on, round by round (dev, then test,
/// holdout and holdout2 once each had been scored as held out, then the outside-written ext-a,
/// ext-c, ext-b and ext-e): they must stay where tuning left them, or a change broke something it was
/// shown to handle. The engineer's own splits are at 1.000. The outside splits keep three
/// Mandarin handovers one turn early where their author labelled the next turn (a grievance,
/// "从来没开过", said before the refund demand the label waits for): 0.8 leaves room for them.
#[tokio::test]
async fn tuned_splits_keep_their_score() {
    let s = sim().await;
    let own = ["triage-dev.jsonl", "triage-test.jsonl", "triage-holdout.jsonl", "triage-holdout2.jsonl"].map(|f| (f, 0.95));
    let outside = ["triage-ext-a.jsonl", "triage-ext-b.jsonl", "triage-ext-c.jsonl", "triage-ext-e.jsonl"].map(|f| (f, 0.8));
    for (file, floor) in own.into_iter().chain(outside) {
        let r = run_eval(&s, &eval_file(file)).await.unwrap();
        let table = r.table();
        for lang in ["en", "zh"] {
            let l = r.get(lang).unwrap();
            assert!(l.precision() >= floor && l.recall() >= floor, "{file} {lang}\n{table}");
        }
    }
}

#[tokio::test]
async fn dev_split_is_balanced_as_the_issue_asks() {
    let mut all = eval_file("triage-dev.jsonl");
    for file in [
        "triage-test.jsonl",
        "triage-holdout.jsonl",
        "triage-holdout2.jsonl",
        "triage-holdout3.jsonl",
        "triage-ext-a.jsonl",
        "triage-ext-b.jsonl",
        "triage-ext-c.jsonl",
        "triage-ext-d.jsonl",
        "triage-ext-e.jsonl",
    ] {
        all.extend(eval_file(file));
    }
    assert!(all.len() >= 150);
    let zh = all.iter().filter(|d| d.lang.as_deref() == Some("zh")).count();
    let escalating = all.iter().filter(|d| d.expect.as_ref().is_some_and(|e| e.escalate_at.is_some())).count();
    assert!((zh as f64 / all.len() as f64 - 0.5).abs() < 0.05, "zh {zh} of {}", all.len());
    let share = escalating as f64 / all.len() as f64;
    assert!((0.2..=0.3).contains(&share), "{share}");
}

#[test]
fn scoring_counts_premature_late_and_the_next_turn() {
    let d = |id: &str, at: Option<u32>| Dialog {
        id: id.into(),
        lang: Some("en".into()),
        caller: None,
        turns: vec![],
        expect: Some(Expect { escalate_at: at, reason: Some("risk".into()) }),
        note: None,
    };
    let o = |id: &str, at: Option<u32>| Outcome {
        id: id.into(),
        lang: "en".into(),
        escalated_at: at,
        reason: at.map(|_| "risk".into()),
        code: None,
        priority: None,
        evidence: vec![],
        replies: vec![],
        overruled: vec![],
        asked: vec![],
    };
    let pairs = vec![
        (d("exact", Some(2)), o("exact", Some(2))),
        (d("next", Some(2)), o("next", Some(3))),
        (d("early", Some(2)), o("early", Some(1))),
        (d("late", Some(2)), o("late", Some(4))),
        (d("miss", Some(2)), o("miss", None)),
        (d("fa", None), o("fa", Some(0))),
        (d("tn", None), o("tn", None)),
    ];
    let r = score(&pairs);
    let en = r.get("en").unwrap();
    assert_eq!((en.correct, en.premature, en.late, en.missed, en.false_alarm), (2, 1, 1, 1, 1));
    assert_eq!((en.expected, en.escalated), (5, 5));
    assert!((en.precision() - 0.4).abs() < 1e-9 && (en.recall() - 0.4).abs() < 1e-9);
    // Turn accuracy: of the 4 expected escalations made, 2 came on time.
    assert_eq!(en.escalated_expected, 4);
    assert!((en.turn_accuracy() - 0.5).abs() < 1e-9);
    // Per reason: 5 risk escalations given, 2 right; 5 expected.
    let (p, r, _) = en.reason_prf(crate::triage::Category::Risk);
    assert!((p - 0.4).abs() < 1e-9 && (r - 0.4).abs() < 1e-9, "{p} {r}");
    let table = r_table(&r_confusion(&pairs));
    assert!(table.contains("[en]"), "{table}");
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().map(str::to_string).collect::<Vec<_>>();
    // Columns: none explicit emotion ambiguity risk other wrong-turn.
    assert_eq!(row("risk")[1..], ["1", "0", "0", "0", "2", "0", "2"].map(String::from));
    assert_eq!(row("none")[1..], ["1", "0", "0", "0", "1", "0", "0"].map(String::from));
}

fn r_confusion(pairs: &[(Dialog, Outcome)]) -> EvalReport {
    let mut r = score(pairs);
    r.langs.retain(|k, _| k == "en");
    r
}

fn r_table(r: &EvalReport) -> String {
    r.confusion_table()
}

#[tokio::test]
async fn an_unsure_risk_word_is_asked_about_and_the_next_turn_confirms() {
    let s = sim().await;
    let text = r#"{"id": "q", "lang": "en", "turns": [{"text": "My phone was still in an hour ago, I need to block the line.", "confidence": 0.63}, "Yes."]}
{"id": "n", "lang": "en", "turns": [{"text": "My phone was still on an hour ago and now there's no signal.", "confidence": 0.66}, "No, I mean it was switched on.", "Okay, thanks."]}
{"id": "a", "lang": "zh", "turns": [{"text": "帮我转认工", "confidence": 0.45, "alternatives": ["帮我转人工"]}]}
{"id": "h", "lang": "zh", "turns": ["人工服务时间是几点到几点？", "好的，谢谢"]}"#;
    let d = parse_script(text, Path::new("x")).unwrap();
    let o = s.run(&d[0], "1").await.unwrap();
    assert_eq!((o.escalated_at, o.code.as_deref()), (Some(1), Some("risk-lost-phone")), "{o:?}");
    assert_eq!(o.asked.len(), 1);
    assert!(o.replies[0].contains("stolen"), "the question replaces the bot's answer: {:?}", o.replies);
    assert!(o.evidence.iter().any(|e| e.trigger.contains("heard \"phone was still in\"")), "{:?}", o.evidence);
    let o = s.run(&d[1], "1").await.unwrap();
    assert_eq!(o.escalated_at, None, "{o:?}");
    assert_eq!(o.asked.len(), 1);
    let o = s.run(&d[2], "1").await.unwrap();
    assert_eq!((o.escalated_at, o.reason.as_deref()), (Some(0), Some("explicit")), "{o:?}");
    // The brain takes 人工服务 for a request; triage, seeing a question about the desk, overrules it.
    let o = s.run(&d[3], "1").await.unwrap();
    assert_eq!(o.escalated_at, None, "{o:?}");
}

/// `chat` and `eval` run the gateway's own call core on a virtual clock: a silent caller hears
/// the no-input prompt once `no_input_ms` (6 s) has passed with the floor theirs, not before,
/// and the second no-input hands them over, as on a phone call.
#[tokio::test]
async fn a_silent_caller_in_a_script_meets_the_calls_no_input_prompt() {
    let s = sim().await;
    let d: Dialog = serde_json::from_str(
        r#"{"id": "s", "lang": "en", "turns": [{"silence_ms": 5000}, {"silence_ms": 7000}, {"silence_ms": 7000}, "What is my balance?"]}"#,
    )
    .unwrap();
    let o = s.run(&d, "1").await.unwrap();
    assert_eq!(o.replies[0], "", "5 s is less than no_input_ms: {o:?}");
    assert!(o.replies[1].contains("still there"), "the brain's reprompt: {o:?}");
    assert_eq!((o.escalated_at, o.code.as_deref()), (Some(2), Some("ambiguity-silence")), "{o:?}");
    assert!(o.replies[2].contains("colleague"), "the handoff line: {o:?}");
    assert_eq!(o.replies.len(), 3, "nothing is played after the handoff: {o:?}");
}

/// A keyed number is one script turn and several calls turns: outcomes count script turns.
#[tokio::test]
async fn keyed_digits_count_as_one_script_turn() {
    let s = sim().await;
    let d: Dialog = serde_json::from_str(r#"{"id": "k", "lang": "en", "turns": [{"dtmf": "12"}, "I want to speak to a person."]}"#).unwrap();
    let o = s.run(&d, "1").await.unwrap();
    assert_eq!((o.escalated_at, o.reason.as_deref()), (Some(1), Some("explicit")), "{o:?}");
    assert!(o.evidence.iter().all(|e| e.turn == 1), "{o:?}");
}
