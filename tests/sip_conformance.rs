//! RFC 4475 conformance: the SIP torture messages, transcribed from the RFC's own text into
//! tests/sip-torture/, sent to a running gateway the way a peer would — over UDP, and over TCP
//! too where their Via says TCP — and judged by what comes back on the wire: the answer the
//! RFC asks for (with the header it names), a normal answer to a valid message, or silence for
//! a stray response. A call the gateway answers is then ACKed and hung up like a real one.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

#[derive(Clone, Copy)]
enum Want {
    /// One of these final statuses, and this header in the answer (when named).
    Status(&'static [u16], Option<&'static str>),
    /// A valid request: any final answer but a rejection of its syntax (400) or a failure of
    /// ours (5xx).
    Answered,
    /// A stray response: no answer at all.
    Silence,
}

use Transport::*;
use Want::*;

/// Each message, how it is sent, and what RFC 4475 asks of a UAS that gets it (§ numbers are
/// the RFC's). Where the RFC allows either a rejection or a liberal reading, both are listed.
const CASES: &[(&str, &[Transport], Want)] = &[
    // §3.1.1 Valid messages
    ("wsinv", &[Udp], Answered), // has a To tag: 481 for a dialog that does not exist
    ("intmeth", &[Udp, Tcp], Status(&[501], Some("allow"))),
    ("esc01", &[Udp], Status(&[200], None)),
    ("escnull", &[Udp], Answered),
    ("esc02", &[Udp, Tcp], Status(&[501, 405], Some("allow"))),
    ("lwsdisp", &[Udp], Status(&[200], None)),
    ("longreq", &[Udp, Tcp], Status(&[200], None)),
    ("dblreq", &[Udp], Answered),
    ("semiuri", &[Udp], Status(&[200], None)),
    ("transports", &[Udp], Status(&[200], None)),
    ("noreason", &[Udp], Silence),
    // §3.1.2 Invalid messages
    ("badinv01", &[Udp], Status(&[400], None)),
    ("clerr", &[Udp], Status(&[400], None)),
    ("ncl", &[Udp], Status(&[400], None)),
    ("scalar02", &[Udp, Tcp], Status(&[400], None)),
    ("scalarlg", &[Udp], Silence),
    ("quotbal", &[Udp], Status(&[400], None)),
    ("ltgtruri", &[Udp], Status(&[400], None)),
    ("lwsruri", &[Udp], Status(&[400], None)),
    ("lwsstart", &[Udp], Status(&[400], None)),
    ("trws", &[Udp, Tcp], Status(&[400, 200], None)),
    ("escruri", &[Udp], Status(&[400, 200], None)),
    ("baddate", &[Udp], Status(&[400, 200], None)),
    ("regbadct", &[Udp], Status(&[400], None)),
    ("badaspec", &[Udp], Status(&[400, 200], None)),
    ("baddn", &[Udp], Status(&[400], None)),
    ("badvers", &[Udp], Status(&[505], None)),
    ("mismatch01", &[Udp], Status(&[400], None)),
    ("mismatch02", &[Udp], Status(&[400, 501], None)),
    ("bigcode", &[Udp], Silence),
    // §3.2 Transaction layer
    ("badbranch", &[Udp], Status(&[200], None)),
    // §3.3 Application layer
    ("insuf", &[Udp], Status(&[400], None)),
    ("unkscm", &[Udp, Tcp], Status(&[416], None)),
    ("novelsc", &[Udp, Tcp], Status(&[416], None)),
    ("unksm2", &[Udp], Answered),
    ("bext01", &[Udp], Status(&[420], Some("unsupported"))),
    ("invut", &[Udp], Status(&[415], Some("accept"))),
    ("regaut01", &[Udp, Tcp], Answered),
    ("multi01", &[Udp], Status(&[400], None)),
    ("mcl01", &[Udp], Status(&[400], None)),
    ("bcast", &[Udp], Silence),
    ("zeromf", &[Udp], Status(&[200], None)),
    ("cparam01", &[Udp], Answered),
    ("cparam02", &[Udp], Answered),
    ("regescrt", &[Udp], Answered),
    ("sdp01", &[Udp], Status(&[406], None)),
    // §3.4 Backward compatibility
    ("inv2543", &[Udp], Status(&[200], None)),
];

/// Failures the gateway cannot fix on its side. rsipstack's Method type is a closed set, and
/// its TCP framer parses each message as it frames it: a request with an extension method
/// fails there and the connection is closed before any hook of ours sees the bytes. (Over UDP
/// the screen answers 501 first.) The test fails if one of these starts passing, so the list
/// stays true.
const KNOWN_GAPS: &[&str] = &["intmeth/TCP", "esc02/TCP"];

fn torture(name: &str) -> Vec<u8> {
    let path = repo_root().join("tests/sip-torture").join(format!("{name}.sip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One peer's connection to the gateway.
enum Peer {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

impl Peer {
    fn open(transport: Transport, port: u16) -> Peer {
        match transport {
            Udp => {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.connect(("127.0.0.1", port)).unwrap();
                Peer::Udp(s)
            }
            Tcp => Peer::Tcp(TcpStream::connect(("127.0.0.1", port)).expect("SIP over TCP"), Vec::new()),
        }
    }

    fn local_port(&self) -> u16 {
        match self {
            Peer::Udp(s) => s.local_addr().unwrap().port(),
            Peer::Tcp(s, _) => s.local_addr().unwrap().port(),
        }
    }

    fn send(&mut self, msg: &[u8]) {
        match self {
            Peer::Udp(s) => {
                s.send(msg).unwrap();
            }
            Peer::Tcp(s, _) => s.write_all(msg).unwrap(),
        }
    }

    /// The next message from the gateway within `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        match self {
            Peer::Udp(s) => {
                let mut buf = vec![0u8; 65536];
                s.set_read_timeout(Some(timeout)).unwrap();
                let n = s.recv(&mut buf).ok()?;
                Some(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            Peer::Tcp(s, pending) => loop {
                if let Some(end) = framed_len(pending) {
                    let msg: Vec<u8> = pending.drain(..end).collect();
                    return Some(String::from_utf8_lossy(&msg).into_owned());
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
                let mut buf = [0u8; 8192];
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
            },
        }
    }

    /// The next final response (1xx skipped).
    fn final_response(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let msg = self.recv(left)?;
            if msg.starts_with("SIP/2.0 ") && !msg.starts_with("SIP/2.0 1") {
                return Some(msg);
            }
        }
    }
}

/// The length of the first whole message in a TCP byte stream.
fn framed_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let len = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            matches!(n.trim().to_ascii_lowercase().as_str(), "content-length" | "l").then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    (buf.len() >= head_end + len).then_some(head_end + len)
}

fn status(resp: &str) -> u16 {
    resp.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.split("\r\n\r\n").next()?.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// ACK for a 200 and BYE, as the caller of an answered INVITE would send them; the
/// answer to the BYE. `from` replaces the 200's From (an RFC 2543 caller sends its own,
/// tagless one).
fn ack_and_hang_up(peer: &mut Peer, ok: &str, transport: &str, from: Option<&str>) -> Option<String> {
    let contact = header(ok, "contact")?;
    let target = contact.trim_start_matches(|c| c != '<').trim_start_matches('<');
    let target = target.split('>').next()?.to_string();
    let (call_id, to) = (header(ok, "call-id")?.to_string(), header(ok, "to")?.to_string());
    let from = from.map(str::to_string).or_else(|| header(ok, "from").map(str::to_string))?;
    let seq: u32 = header(ok, "cseq")?.split_whitespace().next()?.parse().ok()?;
    let port = peer.local_port();
    let request = |method: &str, seq: u32, branch: &str| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {seq} {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    peer.send(request("ACK", seq, &format!("ack{seq}{port}")).as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    peer.send(request("BYE", seq + 1, &format!("bye{seq}{port}")).as_bytes());
    peer.final_response(Duration::from_secs(5))
}

#[test]
fn rfc4475_torture_messages_get_the_answers_the_rfc_asks_for() {
    let mut failures = Vec::new();
    let mut table = String::new();
    let mut total = 0;
    // A gateway per transport: the same message sent twice to one gateway would be a
    // retransmission of the first (RFC 3261 §17.2.3), answered from that transaction.
    for transport in [Udp, Tcp] {
        let gw = Gateway::start(&[]);
        let port = gw.sip_port();
        let mut calls = 0;
        let tname = match transport {
            Udp => "UDP",
            Tcp => "TCP",
        };
        for (name, transports, want) in CASES {
            if !transports.iter().any(|t| matches!((t, transport), (Udp, Udp) | (Tcp, Tcp))) {
                continue;
            }
            let msg = torture(name);
            total += 1;
            let mut peer = Peer::open(transport, port);
            peer.send(&msg);
            let (ok, got) = match want {
                Silence => match peer.recv(Duration::from_secs(1)) {
                    None => (true, "silence".to_string()),
                    Some(r) => (false, r.lines().next().unwrap_or("").to_string()),
                },
                Status(codes, hdr) => match peer.final_response(Duration::from_secs(4)) {
                    None => (false, "no answer".to_string()),
                    Some(r) => {
                        let s = status(&r);
                        let has = hdr.is_none_or(|h| header(&r, h).is_some_and(|v| !v.is_empty()));
                        let mut detail = r.lines().next().unwrap_or("").to_string();
                        if let Some(h) = hdr {
                            detail += &format!(" / {h}: {}", header(&r, h).unwrap_or("(none)"));
                        }
                        let fine = codes.contains(&s) && has;
                        if s == 200 && msg.starts_with(b"INVITE ") {
                            calls += 1;
                            // An RFC 2543 caller sends its ACK and BYE with its own tagless From.
                            let from = (*name == "inv2543").then_some("<sip:+13035551111@ift.client.example.net;user=phone>");
                            let bye = ack_and_hang_up(&mut peer, &r, tname, from);
                            let bye_status = bye.as_deref().map(status).unwrap_or(0);
                            detail += &format!(", BYE answered {bye_status}");
                            (fine && bye_status == 200, detail)
                        } else {
                            (fine, detail)
                        }
                    }
                },
                Answered => match peer.final_response(Duration::from_secs(4)) {
                    None => (false, "no answer".to_string()),
                    Some(r) => {
                        let s = status(&r);
                        (s != 400 && s < 500, r.lines().next().unwrap_or("").to_string())
                    }
                },
            };
            table += &format!("{:<4} {name:<11} {tname}  {got}\n", if ok { "ok" } else { "FAIL" });
            if !ok {
                failures.push(format!("{name}/{tname}"));
            }
        }
        // dblreq's trailing INVITE must have been ignored with the rest of the datagram.
        assert!(
            gw.events("incoming call").iter().all(|e| !e.to_string().contains("dblreq")),
            "the INVITE after dblreq's REGISTER was taken as a request"
        );
        // The answered calls were real calls, and each ended with its caller's BYE.
        let deadline = Instant::now() + Duration::from_secs(10);
        while gw.events("call ended").len() < calls && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let reasons: Vec<String> = gw
            .events("call ended")
            .iter()
            .map(|e| event_field(e, "reason").and_then(Value::as_str).unwrap_or_default().to_string())
            .collect();
        assert_eq!(reasons, vec!["caller-hangup".to_string(); calls], "every answered torture call ended with its BYE\n{table}");
        still_answers_options(&gw);
    }
    let passed = total - failures.len();
    eprintln!("RFC 4475 conformance: {passed} of {total} handled as the RFC asks\n{table}");
    let unexpected: Vec<&String> = failures.iter().filter(|f| !KNOWN_GAPS.contains(&f.as_str())).collect();
    assert!(unexpected.is_empty(), "{} of {total} failed: {unexpected:?}\n{table}", unexpected.len());
    let fixed: Vec<&&str> = KNOWN_GAPS.iter().filter(|g| !failures.iter().any(|f| f == *g)).collect();
    assert!(fixed.is_empty(), "{fixed:?} pass now: take them off KNOWN_GAPS\n{table}");
}

/// After all of it the gateway still answers a plain OPTIONS.
fn still_answers_options(gw: &Gateway) {
    let port = gw.sip_port();
    let mut peer = Peer::open(Udp, port);
    let opts = format!(
        "OPTIONS sip:ivr@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKafter\r\n\
         From: <sip:probe@127.0.0.1>;tag=after\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: after-torture\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        p = peer.local_port()
    );
    peer.send(opts.as_bytes());
    let r = peer.final_response(Duration::from_secs(3)).expect("OPTIONS answered after the torture run");
    assert_eq!(status(&r), 200, "{r}");
    assert!(gw.exited().is_none(), "the gateway survived");
}
