//! Two gateways sharing one PostgreSQL records database (a real server, started for the test
//! from Debian's postgresql package), as a cluster behind a SIP proxy runs them: both write
//! their calls into the one database under their node names; Ops on node A lists node B's
//! live call, sees both nodes in GetStats, and hangs B's call up through A; a node killed with
//! -9 has its call marked interrupted by the node still up; an agent whose phone registered
//! with node A is rung for a caller who came in on node B. Behind Kamailio's dispatcher
//! (deploy/kamailio/kamailio.cfg), calls are spread over both, and a draining node gets no new
//! call while no caller sees a failure.

mod common;

use common::ops::*;
use common::*;
use frontline::records::local_postgres::LocalPostgres;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a silent node takes to count as down here (production default: 30 s).
const NODE_TIMEOUT_SECS: u64 = 6;

fn node(dir: &Path, url: &str, name: &str) -> Gateway {
    node_with(dir, url, name, "", &[])
}

/// A node with `extra` configuration (whole TOML tables) and `args`.
fn node_with(dir: &Path, url: &str, name: &str, extra: &str, args: &[&str]) -> Gateway {
    let config = dir.join(format!("{name}.toml"));
    // Behind a proxy every call comes from its one address: the per-source limits are the
    // gateway's own (as scripts/cluster.sh sets them).
    let toml = format!(
        "[sip]\nmax_calls_per_source = 16\nmax_attempts_per_second = 50.0\n\n[ops]\ntokens = [\"{OPS_TOKEN}\"]\nlisten = \"127.0.0.1:0\"\n\n[records]\nurl = \"{url}\"\nnode = \"{name}\"\nnode_timeout_secs = {NODE_TIMEOUT_SECS}\n\n{extra}"
    );
    std::fs::write(&config, toml).unwrap();
    let mut all = vec!["--config", config.to_str().unwrap(), "--language", "en", "--ops-port", "0"];
    all.extend_from_slice(args);
    Gateway::start(&all)
}

/// A caller asking for its balance (`speech`: `TwoNodes::speech`), with `extra` placeholders.
fn caller(speech: &[(String, String)], extra: &[(&str, &str)]) -> SippOptions {
    let mut vars = speech.to_vec();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    SippOptions { vars, timeout: Duration::from_secs(60), ..SippOptions::default() }
}

fn call_in_background(gw: &Gateway, scenario: &str, options: SippOptions) -> std::thread::JoinHandle<SippResult> {
    let (scenario, port) = (sipp_scenario(scenario), gw.sip_port());
    std::thread::spawn(move || run_sipp_with(&scenario, port, options))
}

/// Gateways gw-a and gw-b on one PostgreSQL server started for the test, and a caller's
/// speech (made once, so no call rewrites the audio another is streaming).
struct TwoNodes {
    a: Gateway,
    b: Gateway,
    speech: Vec<(String, String)>,
    url: String,
    dir: tempfile::TempDir,
    _server: LocalPostgres,
}

impl TwoNodes {
    fn start() -> TwoNodes {
        let server = LocalPostgres::start().expect("a PostgreSQL server (scripts/setup.sh --for-tests installs it)");
        let url = server.url();
        let dir = temp_dir("cluster-");
        let speech = caller_vars(&fixture("en_balance.wav"), dir.path(), &[]);
        let a = node(dir.path(), &url, "gw-a");
        let b = node(dir.path(), &url, "gw-b");
        TwoNodes { a, b, speech, url, dir, _server: server }
    }
}

/// The call's first answered turn on `gw`: it is live, and its record is in the database.
fn answered(gw: &Gateway, call_id: &str) {
    gw.wait_for(|ev| event_message(ev) == Some("turn") && field(ev, "call_id") == call_id, Duration::from_secs(40))
        .unwrap_or_else(|| panic!("call {call_id} never answered\n{}", gw.log_tail(30)));
}

#[test]
fn two_gateways_share_one_postgresql_records_database_and_ops_sees_both() {
    // Bound first, dropped last: the gateways go before their database.
    let TwoNodes { _server, dir, url, speech, a, b } = TwoNodes::start();

    // One whole call on each node: both records land in the one database, under their names.
    let calls = [&a, &b].map(|gw| call_in_background(gw, "uac_stream.xml", caller(&speech, &[("REPLY_MS", "12000")])));
    for (call, gw) in calls.into_iter().zip([&a, &b]) {
        let done = call.join().unwrap();
        assert!(done.success(), "call failed:\n{}\n{}", done.report(), gw.log_tail(30));
        ended_event(gw, &started_call(gw, 0));
    }
    let listed = calls_json(&url, &["list"]);
    let mut nodes: Vec<(&str, &str)> =
        listed.as_array().unwrap().iter().map(|c| (c["node"].as_str().unwrap_or(""), c["outcome"].as_str().unwrap_or(""))).collect();
    nodes.sort();
    assert_eq!(nodes, [("gw-a", "contained"), ("gw-b", "contained")], "{listed:#}");
    let record = calls_json(&url, &["show", listed[0]["call_id"].as_str().unwrap()]);
    assert!(
        record["turns"].as_array().unwrap().iter().any(|t| t["heard"].as_str().unwrap_or("").to_lowercase().contains("account")),
        "{record:#}"
    );

    // A call live on B, seen, followed and steered from A.
    let (mut watcher, watch_file) = grpcurl_watch(&a, dir.path(), r#"{"scope": "cluster", "types": ["started", "ended"]}"#);
    wait_for_watchers(&a, 1);
    let on_b = call_in_background(&b, "uac_until_bye.xml", caller(&speech, &[("WAIT_MS", "45000")]));
    let b_call = started_call(&b, 1);
    answered(&b, &b_call);
    let cluster = grpcurl_call(&a, "ListCalls", r#"{"state": "live", "scope": "cluster"}"#);
    let live: Vec<(&str, &str)> = cluster["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("A lists no live call in the cluster: {cluster}"))
        .iter()
        .map(|c| (c["callId"].as_str().unwrap_or(""), c["node"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(live, [(b_call.as_str(), "gw-b")], "{cluster}");
    let own = grpcurl_call(&a, "ListCalls", r#"{"state": "live"}"#);
    assert!(own["calls"].as_array().is_none_or(|c| c.is_empty()), "A's own scope lists only A's calls: {own}");
    // Heartbeats are a sixth of the node timeout apart: B's count is at most that old.
    std::thread::sleep(Duration::from_secs(NODE_TIMEOUT_SECS / 6 + 1));
    let stats = grpcurl_call(&a, "GetStats", "{}");
    let seen: Vec<(&str, bool)> =
        stats["nodes"].as_array().unwrap().iter().map(|n| (n["node"].as_str().unwrap_or(""), n["up"].as_bool().unwrap_or(false))).collect();
    assert_eq!(seen, [("gw-a", true), ("gw-b", true)], "{stats}");
    assert_eq!(stats["clusterActiveCalls"], 1, "{stats}");
    let hung_up = grpcurl_call(&a, "Hangup", &format!(r#"{{"call_id": "{b_call}", "reason": "supervisor on gw-a"}}"#));
    assert!(hung_up["result"].as_str().is_some(), "{hung_up}");
    let ended = ended_event(&b, &b_call);
    assert_eq!(field(&ended, "reason"), "supervisor on gw-a", "{ended}");
    let on_b = on_b.join().unwrap();
    assert!(on_b.success(), "B's caller gets the BYE:\n{}", on_b.report());
    // B's events reached A's watcher through PostgreSQL (LISTEN/NOTIFY).
    let deadline = Instant::now() + Duration::from_secs(10);
    let relayed = loop {
        let text = std::fs::read_to_string(&watch_file).unwrap_or_default();
        let seen: Vec<(String, String)> = serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .flatten()
            .filter(|e| e["callId"] == b_call.as_str())
            .map(|e| (e["type"].as_str().unwrap_or("").to_string(), e["node"].as_str().unwrap_or("").to_string()))
            .collect();
        if seen.len() >= 2 || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert_eq!(relayed, [("started".to_string(), "gw-b".to_string()), ("ended".to_string(), "gw-b".to_string())], "A's cluster watcher");

    // B dies mid-call: A notices its silence and closes B's call as interrupted.
    let cut = call_in_background(&b, "uac_until_bye.xml", caller(&speech, &[("WAIT_MS", "20000")]));
    let cut_id = started_call(&b, 2);
    answered(&b, &cut_id);
    let killed = std::process::Command::new("kill").args(["-9", &b.pid().to_string()]).status().expect("kill");
    assert!(killed.success());
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(NODE_TIMEOUT_SECS * 3);
    let outcome = loop {
        let record = calls_json(&url, &["show", &cut_id]);
        let outcome = record["cdr"]["outcome"].clone();
        if outcome != Value::Null || Instant::now() > deadline {
            break outcome;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(outcome, "interrupted", "B's call after B was killed\n{}", a.log_tail(20));
    println!("CLUSTER-FIGURES node killed -> its call marked interrupted by the other node: {} ms", killed_at.elapsed().as_millis());
    let stats = grpcurl_call(&a, "GetStats", "{}");
    let b_up = stats["nodes"].as_array().unwrap().iter().find(|n| n["node"] == "gw-b").map(|n| n["up"].as_bool().unwrap_or(false));
    assert_eq!(b_up, Some(false), "{stats}");
    let _ = cut.join();
    drop(b);

    // A still takes calls.
    let after = call_in_background(&a, "uac_stream.xml", caller(&speech, &[("REPLY_MS", "12000")])).join().unwrap();
    assert!(after.success(), "a call on the node still up:\n{}\n{}", after.report(), a.log_tail(30));
}

#[test]
fn an_agent_whose_phone_registered_with_one_node_is_rung_for_a_caller_on_the_other() {
    let server = LocalPostgres::start().expect("a PostgreSQL server (scripts/setup.sh --for-tests installs it)");
    let dir = temp_dir("cluster-registered-");
    // One nonce secret: the proxy may take a phone's answer to a challenge to the other node.
    let agents = "[sip.auth]\nagents = { alice = \"desk-phone\" }\nnonce_secret = \"cluster-test-secret\"\n";
    let ring_alice = ["--agent", "registered:alice"];
    let nodes = ["gw-a", "gw-b"].map(|name| node_with(dir.path(), &server.url(), name, agents, &ring_alice));
    let proxy = Proxy::start(dir.path(), &[&nodes[0], &nodes[1]]);

    // Alice's phone registers through the proxy, with whichever node it picks.
    let registration = Registration { registrar_port: proxy.port, user: "alice", password: "desk-phone" };
    let agent = BaresipAgent::registered(&fixture("en_data.wav"), &registration);
    let deadline = Instant::now() + Duration::from_secs(15);
    let registrar = loop {
        if let Some(at) = nodes.iter().position(|gw| gw.wait_for_message("agent registered", Duration::from_millis(100)).is_some()) {
            break at;
        }
        assert!(Instant::now() < deadline, "alice's phone never registered\n{}", agent.log());
    };

    // A caller on the other node asks for a person: it rings alice where she registered.
    let other = &nodes[1 - registrar];
    let speech = caller_vars(&fixture("en_agent.wav"), dir.path(), &[]);
    let call = call_in_background(other, "uac_stream.xml", caller(&speech, &[("REPLY_MS", "20000")]));
    let bridged = other.wait_for_message("bridged", Duration::from_secs(40)).unwrap_or_else(|| panic!("not bridged\n{}", other.log_tail(40)));
    assert_eq!(field(&bridged, "agent"), "registered:alice", "{bridged}");
    let done = call.join().unwrap();
    assert!(done.success(), "the caller's call:\n{}\n{}", done.report(), other.log_tail(30));
    assert!(agent.answered(), "alice's phone answered the other node's call:\n{}", agent.log());
    drop((proxy, nodes));
}

/// Kamailio with the deploy recipe's configuration, in front of `gateways` on `port`.
struct Proxy {
    child: std::process::Child,
    port: u16,
}

impl Proxy {
    fn start(dir: &Path, gateways: &[&Gateway]) -> Proxy {
        let port = free_udp_port();
        let list = dir.join("dispatcher.list");
        let lines: Vec<String> = gateways.iter().map(|gw| format!("1 sip:127.0.0.1:{} 0 0\n", gw.sip_port())).collect();
        std::fs::write(&list, lines.concat()).unwrap();
        let modules = std::fs::read_dir("/usr/lib")
            .unwrap()
            .flatten()
            .map(|e| e.path().join("kamailio/modules"))
            .find(|p| p.join("dispatcher.so").exists())
            .expect("Kamailio's modules (scripts/setup.sh installs kamailio)");
        let template = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kamailio/kamailio.cfg")).unwrap();
        let config = dir.join("kamailio.cfg");
        let rendered = template
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@DISPATCHER_LIST@", list.to_str().unwrap())
            .replace("@MODULES@", &format!("{}/", modules.display()));
        std::fs::write(&config, rendered).unwrap();
        let run = dir.join("kamailio-run");
        std::fs::create_dir_all(&run).unwrap();
        let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
        let child = std::process::Command::new("kamailio")
            .arg("-f")
            .arg(&config)
            .args(["-DD", "-E", "-Y"])
            .arg(&run)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start kamailio (scripts/setup.sh installs it)");
        let proxy = Proxy { child, port };
        // Up when it answers its own keepalive.
        let deadline = Instant::now() + Duration::from_secs(15);
        while !options_answered(port) {
            assert!(Instant::now() < deadline, "kamailio did not start:\n{}", std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(200));
        }
        proxy
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An OPTIONS to the proxy itself gets 200.
fn options_answered(port: u16) -> bool {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = socket.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-probe-{}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=probe\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: probe-{}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        me.port(),
        me.port()
    );
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    if socket.send_to(request.as_bytes(), ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 2048];
    matches!(socket.recv(&mut buf), Ok(n) if buf[..n].starts_with(b"SIP/2.0 200"))
}

/// Calls each gateway has started, from its log.
fn started(gateways: &[&Gateway]) -> Vec<usize> {
    gateways.iter().map(|gw| gw.events("call started").len()).collect()
}

#[test]
fn kamailio_spreads_calls_skips_a_draining_gateway_and_fails_over_from_a_dead_one() {
    // Bound first, dropped last: the gateways go before their database.
    let TwoNodes { _server, dir, url, speech, a, b } = TwoNodes::start();
    let proxy = Proxy::start(dir.path(), &[&a, &b]);
    let through_proxy = |count: usize| {
        for _ in 0..count / 2 {
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    let (scenario, port, options) = (sipp_scenario("uac_stream.xml"), proxy.port, caller(&speech, &[("REPLY_MS", "9000")]));
                    std::thread::spawn(move || run_sipp_with(&scenario, port, options))
                })
                .collect();
            for call in calls {
                let done = call.join().unwrap();
                assert!(done.success(), "a call through Kamailio failed:\n{}\n{}\n{}", done.report(), a.log_tail(10), b.log_tail(10));
            }
        }
    };

    through_proxy(4);
    let spread = started(&[&a, &b]);
    println!("CLUSTER-FIGURES 4 calls through Kamailio, round-robin: gw-a {} gw-b {}", spread[0], spread[1]);
    assert_eq!(spread, [2, 2], "round-robin over both nodes");

    // B drains: Kamailio's next OPTIONS probe (every 2 s) gets 503 and takes it out of the set.
    grpcurl_call(&b, "SetDraining", r#"{"draining": true}"#);
    std::thread::sleep(Duration::from_secs(5));
    through_proxy(4);
    let after = started(&[&a, &b]);
    println!("CLUSTER-FIGURES 4 calls through Kamailio with gw-b draining: gw-a {} gw-b {}", after[0] - spread[0], after[1] - spread[1]);
    assert_eq!(after, [6, 2], "a draining node gets no new call, and no caller saw a failure");
    let listed = calls_json(&url, &["list", "--limit", "20"]);
    assert_eq!(listed.as_array().unwrap().len(), 8, "every call's record is in the one database: {listed:#}");

    // B back in service, then A killed: the calls sent to A in the window before a probe
    // notices fail over to B after 2 s without an answer, and none fails.
    grpcurl_call(&b, "SetDraining", r#"{"draining": false}"#);
    std::thread::sleep(Duration::from_secs(5));
    let killed = std::process::Command::new("kill").args(["-9", &a.pid().to_string()]).status().expect("kill");
    assert!(killed.success());
    let window = Instant::now();
    through_proxy(4);
    let last = started(&[&b]);
    println!(
        "CLUSTER-FIGURES gw-a killed: 4 calls through Kamailio right after, all answered by gw-b ({} new), failed 0, in {} ms",
        last[0] - after[1],
        window.elapsed().as_millis()
    );
    assert_eq!(last[0] - after[1], 4);
    drop(proxy);
}
