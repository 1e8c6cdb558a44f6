use super::*;

fn store(dir: &Path) -> RecordStore {
    let config = RecordsConfig { path: dir.join("records.db"), retention_days: 30 };
    RecordStore::open(&config, RedactionConfig::default()).expect("open the records")
}

fn start(call_id: &str, started_at_ms: u64) -> Cdr {
    Cdr {
        call_id: call_id.into(),
        sip_call_id: format!("sip-{call_id}"),
        caller: "+8613800000000".into(),
        callee: "100".into(),
        channel: "sip".into(),
        codec: "PCMU".into(),
        started_at_ms,
        ..Cdr::default()
    }
}

fn unanswered(call_id: &str, started_at_ms: u64, outcome: Outcome, reason: &str) -> Cdr {
    Cdr { ended_at_ms: Some(started_at_ms), outcome: Some(outcome), reason: reason.into(), ..start(call_id, started_at_ms) }
}

fn turn(number: u32, heard: &str) -> TurnSummary {
    TurnSummary {
        number,
        heard: heard.into(),
        reply: "Thank you.".into(),
        language: "en".into(),
        confidence: 0.9,
        speech_ms: 1200,
        transcript_ms: Some(310),
        brain_ms: Some(40),
        tts_ms: Some(90),
        first_rtp_ms: Some(120),
    }
}

fn end(call_id: &str, outcome: Outcome) -> CallEnd {
    CallEnd {
        call_id: call_id.into(),
        ended_at_ms: crate::clock::now_ms(),
        outcome,
        reason: "caller-hangup".into(),
        timeline: vec![StateChange { state: "ai".into(), at_ms: 1 }, StateChange { state: "ended".into(), at_ms: 2 }],
        media: Some(serde_json::json!({"packets_lost": 0})),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_call_is_stored_whole_with_card_numbers_masked() {
    let dir = tempfile::tempdir().unwrap();
    let records = store(dir.path());
    let now = crate::clock::now_ms();
    records.begin(start("c1", now));
    records.turn("c1", &turn(1, "my card is 4111 1111 1111 1111"));
    records.turn("c1", &turn(2, "four one one one one one one one one one one one one one one one please"));
    let decision = DecisionRecord {
        turn: 2,
        category: "explicit".into(),
        code: "explicit-request".into(),
        priority: "normal".into(),
        evidence: serde_json::json!([{"trigger": "explicit: agent", "turn": 2, "text": "agent please"}]),
        at_ms: now,
    };
    records.decision("c1", decision.clone());
    let raw = crate::handoff::HandoffPacket {
        call_id: "c1".into(),
        transcript: vec![crate::handoff::TranscriptLine { turn: 1, speaker: "caller".into(), text: "card 4111111111111111".into() }],
        // A Luhn-valid 13-digit timestamp: a number of the packet, not the caller's words.
        created_at_ms: 4_111_111_111_119,
        ..Default::default()
    };
    assert!(crate::redact::redact("4111111111119", &crate::redact::RedactionConfig::default()).contains('*'));
    records.handoff("c1", &raw);
    records.finish(end("c1", Outcome::Escalated)).await.expect("CDR committed");

    let r = records.get("c1").unwrap().expect("stored");
    assert_eq!(r.cdr.outcome, Some(Outcome::Escalated));
    assert_eq!((r.cdr.caller.as_str(), r.cdr.codec.as_str(), r.cdr.sip_call_id.as_str()), ("+8613800000000", "PCMU", "sip-c1"));
    assert_eq!(r.turns.len(), 2);
    assert!(!r.turns[0].heard.contains("4111 1111 1111 1111") && r.turns[0].heard.ends_with("1111"), "{}", r.turns[0].heard);
    assert!(!r.turns[1].heard.contains("four one one one one one"), "{}", r.turns[1].heard);
    assert_eq!(r.turns[0].first_rtp_ms, Some(120));
    assert_eq!(r.decisions, vec![decision]);
    let packet = r.handoff_packet.expect("packet").to_string();
    assert!(!packet.contains("4111111111111111"), "{packet}");
    assert!(packet.contains("4111111111119"), "the packet's own numbers stay intact: {packet}");
    assert_eq!(r.timeline.len(), 2);
    let text = render_record(&records.get("c1").unwrap().unwrap());
    assert!(text.contains("escalated: caller-hangup") && text.contains("explicit-request"), "{text}");

    let listed = records.list(&CallFilter { outcome: Some(Outcome::Escalated), ..CallFilter::default() }).unwrap();
    assert_eq!((listed.len(), listed[0].turns, listed[0].escalation.as_deref()), (1, 2, Some("explicit-request")));
    assert!(records.list(&CallFilter { outcome: Some(Outcome::Contained), ..CallFilter::default() }).unwrap().is_empty());
    assert_eq!(records.get("nope").unwrap(), None);
}

#[test]
fn calls_cut_off_by_a_crash_are_interrupted_and_old_ones_expire() {
    let dir = tempfile::tempdir().unwrap();
    let now = crate::clock::now_ms();
    {
        let records = store(dir.path());
        records.begin(start("old", now - 40 * 86_400_000));
        records.unanswered(unanswered("old", now - 40 * 86_400_000, Outcome::Abandoned, "caller-cancel"));
        records.begin(start("live", now));
        records.turn("live", &turn(1, "hello"));
        records.unanswered(unanswered("refused", now, Outcome::Failed, "at capacity"));
        records.sync().unwrap();
        // Dropped without finishing "live": what a kill -9 leaves.
    }
    let records = store(dir.path());
    records.sync().unwrap();
    let live = records.get("live").unwrap().unwrap();
    assert_eq!(live.cdr.outcome, Some(Outcome::Interrupted));
    assert_eq!(live.turns.len(), 1);
    assert!(live.cdr.ended_at_ms.is_some());
    assert_eq!(records.get("refused").unwrap().unwrap().cdr.answered_at_ms, None);
    assert_eq!(records.get("old").unwrap(), None, "older than retention_days");
    assert_eq!(records.list(&CallFilter { in_progress: Some(true), ..CallFilter::default() }).unwrap().len(), 0);
}

#[test]
fn an_unwritable_path_is_an_error_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let config = RecordsConfig { path: blocker.join("records.db"), retention_days: 0 };
    let err = RecordStore::open(&config, RedactionConfig::default()).err().expect("a file is no folder").to_string();
    assert!(err.contains("records.db") || err.contains(&blocker.display().to_string()), "{err}");
    assert!(err.contains("records.path"), "{err}");
}

/// The write latency of a call's records on this machine (queue wait + commit), reported by
/// `cargo test --release --lib records::tests::write_latency -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn write_latency() {
    let dir = tempfile::tempdir().unwrap();
    let records = store(dir.path());
    let (mut each, mut finish) = (Vec::new(), Vec::new());
    for i in 0..100 {
        let id = format!("call-{i}");
        let t = std::time::Instant::now();
        records.begin(start(&id, crate::clock::now_ms()));
        for n in 1..=5 {
            records.turn(&id, &turn(n, "what is my balance"));
        }
        tokio::task::block_in_place(|| records.sync()).unwrap();
        each.push(t.elapsed().as_micros() as u64 / 6);
        let t = std::time::Instant::now();
        records.finish(end(&id, Outcome::Contained)).await.unwrap();
        finish.push(t.elapsed().as_micros() as u64);
    }
    let p = |v: &mut Vec<u64>, q: u32| crate::call::registry::percentile(v, q);
    println!(
        "records write latency: per write (begin/turn) p50 {} us p99 {} us; final CDR commit p50 {} us p99 {} us",
        p(&mut each, 50), p(&mut each, 99), p(&mut finish, 50), p(&mut finish, 99)
    );
    assert!(p(&mut finish, 50) < 1_000_000, "a CDR commit must not take a second");
}
