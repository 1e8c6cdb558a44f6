use super::*;
use local_postgres::LocalPostgres;
use std::path::Path;

fn sqlite(dir: &Path) -> RecordsConfig {
    RecordsConfig { path: dir.join("records.db"), retention_days: 30, node: "gw-test".into(), ..RecordsConfig::default() }
}

fn postgres(server: &LocalPostgres) -> RecordsConfig {
    RecordsConfig { url: server.url(), retention_days: 30, node: "gw-test".into(), ..RecordsConfig::default() }
}

fn store(config: &RecordsConfig) -> RecordStore {
    RecordStore::open(config, RedactionConfig::default()).expect("open the records")
}

/// The async parts (the final CDR's commit) run here; reads stay off the runtime, as in the
/// gateway (the PostgreSQL client blocks).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
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
        intents: Vec::new(),
        summary: String::new(),
        survey: None,
    }
}

#[test]
fn a_call_is_stored_whole_with_card_numbers_masked_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_call_is_stored_whole_with_card_numbers_masked(&sqlite(dir.path()));
}

#[test]
fn a_call_is_stored_whole_with_card_numbers_masked_in_postgresql() {
    let server = LocalPostgres::start().expect("a PostgreSQL server");
    a_call_is_stored_whole_with_card_numbers_masked(&postgres(&server));
}

fn a_call_is_stored_whole_with_card_numbers_masked(config: &RecordsConfig) {
    let records = store(config);
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
    let rating = crate::call::survey::Rating { score: 2, by: crate::call::survey::AnsweredBy::Voice };
    runtime().block_on(records.finish(CallEnd { survey: Some(rating), ..end("c1", Outcome::Escalated) })).expect("CDR committed");

    let r = records.get("c1").unwrap().expect("stored");
    assert_eq!(r.cdr.outcome, Some(Outcome::Escalated));
    assert_eq!(r.survey, Some(rating), "the caller's rating is kept with the call");
    assert!(crate::records::text::render_record(&r).contains("survey    2/5 (voice)"));
    assert_eq!(r.cdr.node, "gw-test");
    assert_eq!(r.turns[0].confidence, 0.9);
    assert_eq!((r.cdr.caller.as_str(), r.cdr.codec.as_str(), r.cdr.sip_call_id.as_str()), ("+8613800000000", "PCMU", "sip-c1"));
    assert_eq!(r.turns.len(), 2);
    assert!(!r.turns[0].heard.contains("4111 1111 1111 1111") && r.turns[0].heard.ends_with("1111"), "{}", r.turns[0].heard);
    assert!(!r.turns[1].heard.contains("four one one one one one"), "{}", r.turns[1].heard);
    assert_eq!(r.turns[0].first_rtp_ms, Some(120));
    assert_eq!(r.decisions, vec![decision]);
    let packet = r.handoff_packet.expect("packet").to_string();
    assert!(!packet.contains("4111111111111111"), "{packet}");
    assert!(packet.contains("4111111111119"), "the packet's own numbers stay intact: {packet}");
    assert_eq!(r.timeline.iter().map(|s| s.state.as_str()).collect::<Vec<_>>(), ["ai", "ended"]);
    let text = render_record(&records.get("c1").unwrap().unwrap());
    assert!(text.contains("escalated: caller-hangup") && text.contains("explicit-request"), "{text}");

    let listed = records.list(&CallFilter { outcome: Some(Outcome::Escalated), ..CallFilter::default() }).unwrap();
    assert_eq!((listed.len(), listed[0].turns, listed[0].escalation.as_deref()), (1, 2, Some("explicit-request")));
    assert!(records.list(&CallFilter { outcome: Some(Outcome::Contained), ..CallFilter::default() }).unwrap().is_empty());
    assert_eq!(records.get("nope").unwrap(), None);
}

#[test]
fn calls_cut_off_by_a_crash_are_interrupted_and_old_ones_expire_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    calls_cut_off_by_a_crash_are_interrupted_and_old_ones_expire(&sqlite(dir.path()));
}

#[test]
fn calls_cut_off_by_a_crash_are_interrupted_and_old_ones_expire_in_postgresql() {
    let server = LocalPostgres::start().expect("a PostgreSQL server");
    calls_cut_off_by_a_crash_are_interrupted_and_old_ones_expire(&postgres(&server));
}

fn calls_cut_off_by_a_crash_are_interrupted_and_old_ones_expire(config: &RecordsConfig) {
    let now = crate::clock::now_ms();
    {
        let records = store(config);
        records.begin(start("old", now - 40 * 86_400_000));
        records.unanswered(unanswered("old", now - 40 * 86_400_000, Outcome::Abandoned, "caller-cancel"));
        records.begin(start("live", now));
        records.turn("live", &turn(1, "hello"));
        records.unanswered(unanswered("refused", now, Outcome::Failed, "at capacity"));
        records.sync().unwrap();
        // Dropped without finishing "live": what a kill -9 leaves.
    }
    if !config.url.is_empty() {
        // Another gateway sharing the database starts: its neighbour's call is not its to close.
        let neighbour = store(&RecordsConfig { node: "gw-other".into(), ..config.clone() });
        neighbour.sync().unwrap();
        assert_eq!(neighbour.get("live").unwrap().unwrap().cdr.outcome, None, "another node's live call");
    }
    let records = store(config);
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
    let config = RecordsConfig { path: blocker.join("records.db"), retention_days: 0, ..RecordsConfig::default() };
    let err = RecordStore::open(&config, RedactionConfig::default()).err().expect("a file is no folder").to_string();
    assert!(err.contains("records.db") || err.contains(&blocker.display().to_string()), "{err}");
    assert!(err.contains("records.path"), "{err}");
}

#[test]
fn an_unreachable_postgresql_is_an_error_naming_the_url_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = RecordsConfig { url: format!("postgres://gw:secret@127.0.0.1:{port}/calls"), ..RecordsConfig::default() };
    let err = RecordStore::open(&config, RedactionConfig::default()).err().expect("nothing listens there").to_string();
    assert!(err.contains(&format!("postgres://gw:***@127.0.0.1:{port}/calls")) && !err.contains("secret"), "{err}");
    assert!(err.contains("records.url"), "{err}");
}

/// A database restart in the middle of calls: the writes made while it is down wait in the
/// queue and are all written when it is back; the call's end does not wait longer than its
/// bound.
#[test]
fn records_written_while_postgresql_is_down_are_stored_when_it_returns() {
    let server = LocalPostgres::start().expect("a PostgreSQL server");
    let records = store(&postgres(&server));
    let now = crate::clock::now_ms();
    records.begin(start("before", now));
    records.sync().unwrap();

    server.stop().unwrap();
    records.begin(start("during", now + 1));
    records.turn("during", &turn(1, "what is my balance"));
    let waited = std::time::Instant::now();
    let finished = runtime().block_on(records.finish(end("during", Outcome::Contained)));
    assert!(matches!(finished, Err(RecordError::Slow(_) | RecordError::Queued)), "{finished:?}");
    assert!(waited.elapsed() < FINISH_WAIT + Duration::from_secs(1), "the call's end waited {:?}", waited.elapsed());
    // Once the writer knows the database is away, a call's end does not wait at all.
    let waited = std::time::Instant::now();
    let finished = runtime().block_on(records.finish(end("before", Outcome::Escalated)));
    assert!(matches!(finished, Err(RecordError::Queued)), "{finished:?}");
    assert!(waited.elapsed() < Duration::from_millis(100), "the call's end waited {:?}", waited.elapsed());

    server.start_again().unwrap();
    records.sync().unwrap();
    let during = records.get("during").unwrap().expect("written after the restart");
    assert_eq!((during.cdr.outcome, during.turns.len(), during.timeline.len()), (Some(Outcome::Contained), 1, 2));
    assert_eq!(records.get("before").unwrap().unwrap().cdr.outcome, Some(Outcome::Escalated));
    assert_eq!(records.dropped_writes(), 0);
}

/// The write latency of a call's records on this machine (queue wait + commit), reported by
/// `cargo test --release --lib records::tests::write_latency -- --nocapture`, for each backend.
#[test]
fn write_latency() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalPostgres::start().expect("a PostgreSQL server");
    for (name, config) in [("sqlite", sqlite(dir.path())), ("postgresql", postgres(&server))] {
        write_latency_of(name, &config);
    }
}

fn write_latency_of(name: &str, config: &RecordsConfig) {
    let records = store(config);
    let rt = runtime();
    let (mut each, mut finish) = (Vec::new(), Vec::new());
    for i in 0..100 {
        let id = format!("call-{i}");
        let t = std::time::Instant::now();
        records.begin(start(&id, crate::clock::now_ms()));
        for n in 1..=5 {
            records.turn(&id, &turn(n, "what is my balance"));
        }
        records.sync().unwrap();
        each.push(t.elapsed().as_micros() as u64 / 6);
        let t = std::time::Instant::now();
        rt.block_on(records.finish(end(&id, Outcome::Contained))).unwrap();
        finish.push(t.elapsed().as_micros() as u64);
    }
    let p = |v: &mut Vec<u64>, q: u32| crate::call::registry::percentile(v, q);
    println!(
        "records write latency, {name}: per write (begin/turn) p50 {} us p99 {} us; final CDR commit p50 {} us p99 {} us",
        p(&mut each, 50), p(&mut each, 99), p(&mut finish, 50), p(&mut finish, 99)
    );
    assert!(p(&mut finish, 50) < 1_000_000, "a CDR commit must not take a second");
}

/// A database written before the records had migrations (and before `active_ms`) opens, keeps
/// its calls, and takes new ones.
#[test]
fn a_database_from_before_migrations_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite(dir.path());
    {
        let old = rusqlite::Connection::open(&config.path).unwrap();
        old.execute_batch(
            "CREATE TABLE calls (call_id TEXT PRIMARY KEY, sip_call_id TEXT NOT NULL DEFAULT '', caller TEXT NOT NULL DEFAULT '',
                 callee TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL DEFAULT '', codec TEXT NOT NULL DEFAULT '',
                 started_ms INTEGER NOT NULL, answered_ms INTEGER, ended_ms INTEGER, outcome TEXT, reason TEXT NOT NULL DEFAULT '',
                 recording TEXT, handoff_packet TEXT, media TEXT);
             CREATE TABLE timeline (call_id TEXT NOT NULL, at_ms INTEGER NOT NULL, state TEXT NOT NULL);
             INSERT INTO calls (call_id, caller, started_ms, answered_ms, ended_ms, outcome, reason)
                 VALUES ('kept', '+15550100', 1000, 1000, 9000, 'contained', 'caller-hangup');
             INSERT INTO timeline VALUES ('kept', 1000, 'answered'), ('kept', 9000, 'ended');",
        )
        .unwrap();
    }
    let records = RecordStore::open(&RecordsConfig { retention_days: 0, ..config }, RedactionConfig::default()).expect("the old database opens");
    // The file's one gateway lists its calls from before nodes were named as its own.
    let own = records.list(&CallFilter { node: Some("gw-test".into()), ..CallFilter::default() }).unwrap();
    assert_eq!(own.iter().map(|c| c.cdr.call_id.as_str()).collect::<Vec<_>>(), ["kept"]);
    let kept = records.get("kept").unwrap().expect("the old call is kept");
    assert_eq!((kept.cdr.caller.as_str(), kept.cdr.outcome, kept.cdr.node.as_str()), ("+15550100", Some(Outcome::Contained), ""));
    assert_eq!(kept.timeline.iter().map(|s| s.state.as_str()).collect::<Vec<_>>(), ["answered", "ended"]);
    records.begin(start("new", crate::clock::now_ms()));
    records.sync().unwrap();
    assert_eq!(records.get("new").unwrap().unwrap().cdr.node, "gw-test");
}

/// Nodes sharing the database: each one's heartbeat shows in `nodes`; one that falls silent is
/// down, and the next heartbeat of a node still up closes its calls as interrupted.
#[test]
fn a_silent_node_is_down_and_its_calls_are_closed_by_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = RecordsConfig { node_timeout_secs: 3, ..sqlite(dir.path()) };
    let a = store(&RecordsConfig { node: "gw-a".into(), ..config.clone() });
    let b = store(&RecordsConfig { node: "gw-b".into(), ..config.clone() });
    let beat = |active_calls| NodeBeat {
        ops_url: "http://127.0.0.1:50051".into(),
        started_ms: 1,
        draining: false,
        active_calls,
        agent_load: if active_calls > 0 { vec![("sip:alice@desk".to_string(), 1)] } else { Vec::new() },
    };
    b.begin(start("on-b", crate::clock::now_ms()));
    b.heartbeat(beat(1));
    a.heartbeat(beat(0));
    a.sync().unwrap();
    b.sync().unwrap();
    let nodes = a.nodes().unwrap();
    assert_eq!(nodes.iter().map(|n| (n.node.as_str(), n.up, n.active_calls)).collect::<Vec<_>>(), [("gw-a", true, 0), ("gw-b", true, 1)]);
    assert_eq!(nodes[1].agent_load.get("sip:alice@desk"), Some(&1), "B's bridged call with alice, for least-busy routing on A");
    assert_eq!(a.agent_load_elsewhere().unwrap(), std::collections::HashMap::from([("sip:alice@desk".to_string(), 1)]));
    assert_eq!(a.get("on-b").unwrap().unwrap().cdr.outcome, None, "B is alive: its call goes on");

    std::thread::sleep(Duration::from_millis(3200));
    a.heartbeat(beat(0));
    a.sync().unwrap();
    let nodes = a.nodes().unwrap();
    assert_eq!(nodes.iter().map(|n| (n.node.as_str(), n.up)).collect::<Vec<_>>(), [("gw-a", true), ("gw-b", false)]);
    assert!(a.agent_load_elsewhere().unwrap().is_empty(), "a node that is down gives no agent any load");
    let closed = a.get("on-b").unwrap().unwrap();
    assert_eq!((closed.cdr.outcome, closed.cdr.node.as_str()), (Some(Outcome::Interrupted), "gw-b"));
}

#[test]
fn a_callers_earlier_calls_are_their_history_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_callers_earlier_calls_are_their_history(&sqlite(dir.path()));
}

#[test]
fn a_callers_earlier_calls_are_their_history_in_postgresql() {
    let server = LocalPostgres::start().expect("a PostgreSQL server");
    a_callers_earlier_calls_are_their_history(&postgres(&server));
}

fn a_callers_earlier_calls_are_their_history(config: &RecordsConfig) {
    let records = store(config);
    let now = crate::clock::now_ms();
    let hour = 3_600_000;
    let rt = runtime();
    // Two earlier calls from the caller (one too old for the window), one from someone else,
    // and one still in progress.
    // Someone else calls with a CRM id, and again from another phone.
    for (id, at, caller, customer) in [
        ("old", now - 100 * hour, "+8613800000000", ""),
        ("yesterday", now - 20 * hour, "+8613800000000", ""),
        ("other", now - hour, "+8613900000000", "CRM-77"),
        ("new-phone", now - 2 * hour, "+8613700000000", "CRM-77"),
        ("live", now, "+8613800000000", ""),
    ] {
        records.begin(Cdr { caller: caller.into(), customer_id: customer.into(), ..start(id, at) });
    }
    for id in ["old", "yesterday", "other", "new-phone"] {
        let summary = "my card 4111 1111 1111 1111 and the internet is down again".to_string();
        rt.block_on(records.finish(CallEnd { intents: vec!["broadband".into(), "bill".into()], summary, ..end(id, Outcome::Contained) })).unwrap();
    }
    let past = records.history("+8613800000000", "", now - 72 * hour, 5).unwrap();
    assert_eq!(past.iter().map(|p| p.call_id.as_str()).collect::<Vec<_>>(), ["yesterday"], "{past:?}");
    let p = &past[0];
    assert_eq!((p.outcome.as_str(), p.intents.clone(), p.escalation.clone()), ("contained", vec!["broadband".to_string(), "bill".to_string()], None));
    assert!(p.summary.contains("internet is down") && !p.summary.contains("4111 1111 1111 1111"), "masked like the turns: {}", p.summary);
    assert_eq!(p.started_at_ms, now - 20 * hour);
    assert!(records.history("", "", 0, 5).unwrap().is_empty(), "no number, no history");
    assert!(records.history("anonymous", "", 0, 5).unwrap().is_empty());
    assert_eq!(records.history("+8613800000000", "", 0, 1).unwrap().len(), 1, "the limit holds");
    // A CRM id is the caller, whatever number: both phones' calls, newest first.
    let by_id: Vec<String> = records.history("+8613600000000", "CRM-77", 0, 5).unwrap().into_iter().map(|p| p.call_id).collect();
    assert_eq!(by_id, ["other", "new-phone"]);
    assert_eq!(records.get("other").unwrap().unwrap().cdr.customer_id, "CRM-77");
}

#[test]
fn an_agents_phone_registered_through_one_node_is_found_by_the_others_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    an_agents_phone_registered_through_one_node_is_found_by_the_others(&sqlite(dir.path()));
}

#[test]
fn an_agents_phone_registered_through_one_node_is_found_by_the_others_in_postgresql() {
    let server = LocalPostgres::start().expect("a PostgreSQL server");
    an_agents_phone_registered_through_one_node_is_found_by_the_others(&postgres(&server));
}

/// Where an agent's phone registered is in the shared records: the other node (or this one
/// after a restart) reads it; a phone that moved replaces it; leaving from a contact that already
/// moved changes nothing; leaving from the bound one ends it where it is.
fn an_agents_phone_registered_through_one_node_is_found_by_the_others(config: &RecordsConfig) {
    let a = store(&RecordsConfig { node: "gw-a".into(), ..config.clone() });
    let b = store(&RecordsConfig { node: "gw-b".into(), ..config.clone() });
    let bound = |contact: &str, at_ms| RegistrationChange::Bound { agent: "alice".into(), contact: contact.into(), at_ms, expires_ms: at_ms + 600_000 };
    let ended = |contact: Option<&str>, at_ms| RegistrationChange::Ended { agent: "alice".into(), contact: contact.map(str::to_string), at_ms };
    let seen = |store: &RecordStore| store.registration_of("alice").unwrap().map(|r| (r.contact, r.at_ms, r.expires_ms, r.node));
    assert_eq!(seen(&b), None);

    a.registration(bound("sip:alice@10.0.0.5", 1_000));
    a.sync().unwrap();
    assert_eq!(seen(&b), Some(("sip:alice@10.0.0.5".into(), 1_000, 601_000, "gw-a".into())));
    b.registration(bound("sip:alice@10.0.0.6", 2_000));
    b.sync().unwrap();
    assert_eq!(seen(&a), Some(("sip:alice@10.0.0.6".into(), 2_000, 602_000, "gw-b".into())), "the phone moved");
    a.registration(ended(Some("sip:alice@10.0.0.5"), 3_000));
    a.sync().unwrap();
    assert_eq!(seen(&b), Some(("sip:alice@10.0.0.6".into(), 2_000, 602_000, "gw-b".into())), "the old phone left: the new one stays");
    a.registration(ended(Some("sip:alice@10.0.0.6"), 4_000));
    a.sync().unwrap();
    assert_eq!(seen(&b), Some(("sip:alice@10.0.0.6".into(), 4_000, 4_000, "gw-a".into())), "ended where it was");
    b.registration(bound("sip:alice@10.0.0.7", 5_000));
    b.registration(ended(None, 6_000));
    b.sync().unwrap();
    drop(a);
    let reopened = store(&RecordsConfig { node: "gw-a".into(), ..config.clone() });
    assert_eq!(seen(&reopened), Some(("sip:alice@10.0.0.7".into(), 6_000, 6_000, "gw-b".into())), "Contact: * ends every phone");
}
