//! SDP offer/answer (RFC 3264), sans-IO.
//!
//! Parses the RFC 4566 subset a SIP audio call uses (v, o, s, c, t, m and the rtpmap, fmtp,
//! ptime and direction attributes), picks a G.711 codec and telephone-event from an offer, and
//! writes the answer. Unknown lines and attributes are skipped, as RFC 4566 asks; lines that
//! are there but malformed are errors, reported with the line number.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use crate::media::g711::G711;

/// Why an offer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The text is not valid SDP (the SIP layer answers 400).
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    /// A mandatory line is absent (also 400).
    #[error("missing {0} line")]
    Missing(&'static str),
    /// Valid SDP, but nothing we can take (the SIP layer answers 488).
    #[error("no common codec: {reason}")]
    NoCommonCodec { reason: String },
    /// The audio stream has no usable connection address.
    #[error("no usable connection address: {reason}")]
    NoConnection { reason: String },
}

fn malformed(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Malformed {
        line,
        reason: reason.into(),
    }
}

/// Media direction, from the point of view of whoever wrote the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn attribute(&self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(a: &str) -> Option<Direction> {
        match a {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The answerer's direction for an offered one (RFC 3264 §6.1): what they send, we receive.
    pub fn answer(&self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// A `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The address as written (an IP, or a host name we cannot use without DNS).
    pub address: String,
    /// The address, when it is a literal IP.
    pub ip: Option<IpAddr>,
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: String,
    pub address: String,
}

/// An `a=rtpmap:` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u32>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    pub proto: String,
    /// The formats in the offerer's order of preference (payload types for RTP).
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub direction: Option<Direction>,
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp:` parameters by payload type.
    pub fmtps: Vec<(u8, String)>,
    pub ptime: Option<u32>,
}

impl MediaDescription {
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.pt == pt)
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

/// An offer is just a session description; the alias names its role in offer/answer.
pub type SdpOffer = SessionDescription;

/// Parses SDP text (CRLF or bare LF line endings).
pub fn parse(sdp: &str) -> Result<SessionDescription, SdpError> {
    let mut origin = None;
    let mut session_name = None;
    let mut connection = None;
    let mut direction = None;
    let mut media: Vec<MediaDescription> = Vec::new();
    let mut saw_version = false;

    for (i, raw) in sdp.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(malformed(n, "expected a `<letter>=<value>` line"));
        }
        let kind = bytes[0];
        let value = &line[2..];
        if !saw_version {
            if kind != b'v' {
                return Err(malformed(n, "the description must start with v="));
            }
            if value.trim() != "0" {
                return Err(malformed(n, format!("unsupported SDP version {value:?}")));
            }
            saw_version = true;
            continue;
        }
        match kind {
            b'v' => return Err(malformed(n, "repeated v= line")),
            b'o' => {
                let f: Vec<&str> = value.split_whitespace().collect();
                if f.len() != 6 {
                    return Err(malformed(n, "o= needs 6 fields"));
                }
                origin = Some(Origin {
                    username: f[0].to_string(),
                    session_id: f[1].to_string(),
                    session_version: f[2].to_string(),
                    address: f[5].to_string(),
                });
            }
            b's' => session_name = Some(value.to_string()),
            b'c' => {
                let c = parse_connection(value).map_err(|r| malformed(n, r))?;
                match media.last_mut() {
                    Some(m) => m.connection = Some(c),
                    None => connection = Some(c),
                }
            }
            b'm' => media.push(parse_media(value).map_err(|r| malformed(n, r))?),
            b'a' => {
                let (name, arg) = match value.split_once(':') {
                    Some((k, v)) => (k, Some(v)),
                    None => (value, None),
                };
                if let Some(d) = Direction::from_attribute(name) {
                    match media.last_mut() {
                        Some(m) => m.direction = Some(d),
                        None => direction = Some(d),
                    }
                    continue;
                }
                let Some(m) = media.last_mut() else {
                    continue; // other session-level attributes don't concern us
                };
                if m.media != "audio" {
                    // Only audio is ever taken; what another stream's attributes say (even
                    // an rtpmap without a clock rate, as RFC 4475's messages carry) cannot
                    // make the offer unusable, and that stream is rejected in the answer.
                    continue;
                }
                match (name, arg) {
                    ("rtpmap", Some(arg)) => m.rtpmaps.push(parse_rtpmap(arg).map_err(|r| malformed(n, r))?),
                    ("fmtp", Some(arg)) => {
                        let (pt, params) = arg.split_once(' ').unwrap_or((arg, ""));
                        let pt = pt
                            .trim()
                            .parse::<u8>()
                            .map_err(|_| malformed(n, "fmtp needs a payload type"))?;
                        m.fmtps.push((pt, params.trim().to_string()));
                    }
                    ("ptime", Some(arg)) => {
                        // Some stacks write fractional ptimes ("20.0"); the integer part is enough.
                        let whole = arg.trim().split('.').next().unwrap_or("");
                        let p = whole
                            .parse::<u32>()
                            .ok()
                            .filter(|p| (1..=1000).contains(p))
                            .ok_or_else(|| malformed(n, format!("bad ptime {arg:?}")))?;
                        m.ptime = Some(p);
                    }
                    _ => {}
                }
            }
            // t, b, k, r, z, i, u, e, p: nothing we act on.
            _ => {}
        }
    }
    if !saw_version {
        return Err(SdpError::Missing("v="));
    }
    let origin = origin.ok_or(SdpError::Missing("o="))?;
    let session_name = session_name.ok_or(SdpError::Missing("s="))?;
    Ok(SessionDescription {
        origin,
        session_name,
        connection,
        direction,
        media,
    })
}

fn parse_connection(value: &str) -> Result<Connection, String> {
    let f: Vec<&str> = value.split_whitespace().collect();
    if f.len() != 3 {
        return Err("c= needs 3 fields".into());
    }
    if f[0] != "IN" {
        return Err(format!("unsupported network type {:?}", f[0]));
    }
    if f[1] != "IP4" && f[1] != "IP6" {
        return Err(format!("unsupported address type {:?}", f[1]));
    }
    // Multicast addresses may carry /ttl and /count; the address is before the first slash.
    let address = f[2].split('/').next().unwrap_or("").to_string();
    if address.is_empty() {
        return Err("empty connection address".into());
    }
    let ip = address.parse::<IpAddr>().ok();
    Ok(Connection { address, ip })
}

fn parse_media(value: &str) -> Result<MediaDescription, String> {
    let f: Vec<&str> = value.split_whitespace().collect();
    if f.len() < 4 {
        return Err("m= needs media, port, proto and at least one format".into());
    }
    let port_str = f[1].split('/').next().unwrap_or("");
    let port = port_str
        .parse::<u16>()
        .map_err(|_| format!("bad port {:?}", f[1]))?;
    Ok(MediaDescription {
        media: f[0].to_string(),
        port,
        proto: f[2].to_string(),
        formats: f[3..].iter().map(|s| s.to_string()).collect(),
        connection: None,
        direction: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
    })
}

fn parse_rtpmap(arg: &str) -> Result<RtpMap, String> {
    let (pt, rest) = arg
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| "rtpmap needs a payload type and an encoding".to_string())?;
    let pt = pt
        .parse::<u8>()
        .ok()
        .filter(|p| *p < 128)
        .ok_or_else(|| format!("bad rtpmap payload type {pt:?}"))?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().unwrap_or("").to_string();
    let clock_rate = parts
        .next()
        .and_then(|r| r.parse::<u32>().ok())
        .ok_or_else(|| format!("rtpmap {pt} needs encoding/clock-rate"))?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse::<u32>().map_err(|_| format!("bad rtpmap channels {c:?}"))?),
        None => None,
    };
    if encoding.is_empty() {
        return Err(format!("rtpmap {pt} has no encoding name"));
    }
    Ok(RtpMap {
        pt,
        encoding,
        clock_rate,
        channels,
    })
}

/// A media section we did not take; the answer must still list it, with port 0 (RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMedia {
    pub media: String,
    pub proto: String,
    pub format: String,
}

/// The outcome of negotiating an offer: what this call's media will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: G711,
    /// The payload type the offerer uses for `codec` (normally its static one).
    pub pt: u8,
    /// The offerer's telephone-event/8000 payload type, when it offered one.
    pub dtmf_pt: Option<u8>,
    /// Where to send RTP (the offer's address; 0.0.0.0 when the offerer put us on hold).
    pub remote: SocketAddr,
    /// What WE will do.
    pub direction: Direction,
    /// The packetization the offerer asked to receive (a=ptime), 20 ms when absent.
    pub ptime_ms: u32,
    /// Position of the chosen audio section among the offer's `m=` lines.
    pub media_index: usize,
    /// The other `m=` lines, in order, to be rejected in the answer.
    pub rejected: Vec<RejectedMedia>,
}

/// Picks the codec, telephone-event, address and direction for an offer. Among the codecs in
/// `prefer`, the offerer's order wins (RFC 3264 §6.1 lets the answerer choose, but honoring the
/// caller's preference avoids transcoding on its side).
pub fn negotiate(offer: &SessionDescription, prefer: &[G711]) -> Result<Negotiated, SdpError> {
    let mut reasons: Vec<String> = Vec::new();
    for (index, m) in offer.media.iter().enumerate() {
        if m.media != "audio" {
            continue;
        }
        if m.port == 0 {
            reasons.push("audio stream disabled (port 0)".into());
            continue;
        }
        if m.proto != "RTP/AVP" && m.proto != "RTP/AVPF" {
            reasons.push(format!("transport {} not supported (plain RTP/AVP only)", m.proto));
            continue;
        }
        let mut chosen = None;
        let mut dtmf_pt = None;
        let mut offered_names: Vec<String> = Vec::new();
        for f in &m.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let codec = match m.rtpmap(pt) {
                Some(map) => {
                    if map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == 8000 {
                        if dtmf_pt.is_none() {
                            dtmf_pt = Some(pt);
                        }
                        continue;
                    }
                    offered_names.push(format!("{}/{}", map.encoding, map.clock_rate));
                    let mono = map.channels.is_none_or(|c| c == 1);
                    G711::from_name(&map.encoding).filter(|_| map.clock_rate == 8000 && mono)
                }
                None => {
                    let c = G711::from_payload_type(pt);
                    offered_names.push(match c {
                        Some(c) => c.name().to_string(),
                        None => format!("payload type {pt}"),
                    });
                    c
                }
            };
            if let Some(c) = codec {
                if chosen.is_none() && prefer.contains(&c) {
                    chosen = Some((c, pt));
                }
            }
        }
        let Some((codec, pt)) = chosen else {
            let ours: Vec<&str> = prefer.iter().map(|c| c.name()).collect();
            reasons.push(format!(
                "offered {}; we support {}",
                if offered_names.is_empty() { "nothing usable".to_string() } else { offered_names.join(", ") },
                ours.join(", ")
            ));
            continue;
        };
        let conn = m
            .connection
            .as_ref()
            .or(offer.connection.as_ref())
            .ok_or_else(|| SdpError::NoConnection {
                reason: "no c= line for the audio stream".into(),
            })?;
        let ip = conn.ip.ok_or_else(|| SdpError::NoConnection {
            reason: format!("{} is not an IP address", conn.address),
        })?;
        let mut offered_dir = m.direction.or(offer.direction).unwrap_or(Direction::SendRecv);
        if ip.is_unspecified() && offered_dir == Direction::SendRecv {
            // RFC 2543 hold: c=0.0.0.0 means "don't send to me", i.e. the offerer only sends.
            offered_dir = Direction::SendOnly;
        }
        let rejected = offer
            .media
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, o)| RejectedMedia {
                media: o.media.clone(),
                proto: o.proto.clone(),
                format: o.formats.first().cloned().unwrap_or_else(|| "0".into()),
            })
            .collect();
        return Ok(Negotiated {
            codec,
            pt,
            dtmf_pt,
            remote: SocketAddr::new(ip, m.port),
            direction: offered_dir.answer(),
            ptime_ms: m.ptime.unwrap_or(20),
            media_index: index,
            rejected,
        });
    }
    if reasons.is_empty() {
        reasons.push("no audio stream offered".into());
    }
    Err(SdpError::NoCommonCodec {
        reason: reasons.join("; "),
    })
}

/// Writes the answer: the chosen codec only, telephone-event when offered, our address, and
/// the direction mirroring the offer. Other offered streams are rejected with port 0.
/// An offer for an outgoing call (the agent leg of a handoff): `codecs` in our order of
/// preference plus telephone-event on `dtmf_pt`, send and receive.
pub fn offer(local_ip: IpAddr, local_port: u16, session_id: u64, codecs: &[G711], dtmf_pt: u8) -> String {
    let ip_kind = if local_ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(320);
    let pts: Vec<String> = codecs.iter().map(|c| c.payload_type().to_string()).collect();
    let _ = write!(s, "v=0\r\no=frontline {session_id} 1 IN {ip_kind} {local_ip}\r\ns=frontline\r\n");
    let _ = write!(s, "c=IN {ip_kind} {local_ip}\r\nt=0 0\r\n");
    let _ = write!(s, "m=audio {local_port} RTP/AVP {} {dtmf_pt}\r\n", pts.join(" "));
    for c in codecs {
        let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name());
    }
    let _ = write!(s, "a=rtpmap:{dtmf_pt} telephone-event/8000\r\na=fmtp:{dtmf_pt} 0-16\r\na=ptime:20\r\na=sendrecv\r\n");
    s
}

pub fn answer(n: &Negotiated, local_ip: IpAddr, local_port: u16, session_id: u64, version: u64) -> String {
    let ip_kind = if local_ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(320);
    // Writing into a String cannot fail; the results are ignored for that reason.
    let _ = write!(s, "v=0\r\n");
    let _ = write!(s, "o=frontline {session_id} {version} IN {ip_kind} {local_ip}\r\n");
    let _ = write!(s, "s=frontline\r\n");
    let _ = write!(s, "c=IN {ip_kind} {local_ip}\r\n");
    let _ = write!(s, "t=0 0\r\n");
    let mut rejected = n.rejected.iter();
    for i in 0..=n.rejected.len() {
        if i != n.media_index {
            if let Some(r) = rejected.next() {
                let _ = write!(s, "m={} 0 {} {}\r\n", r.media, r.proto, r.format);
            }
            continue;
        }
        let _ = write!(s, "m=audio {local_port} RTP/AVP {}", n.pt);
        if let Some(d) = n.dtmf_pt {
            let _ = write!(s, " {d}");
        }
        let _ = write!(s, "\r\na=rtpmap:{} {}/8000\r\n", n.pt, n.codec.name());
        if let Some(d) = n.dtmf_pt {
            let _ = write!(s, "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-15\r\n");
        }
        // We always send 20 ms packets and handle any packetization we receive.
        let _ = write!(s, "a=ptime:20\r\n");
        let _ = write!(s, "a={}\r\n", n.direction.attribute());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [G711; 2] = [G711::Ulaw, G711::Alaw];

    /// What sipp's uac_pcap scenario sends.
    const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n\
s=-\r\n\
c=IN IP4 127.0.1.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-11,16\r\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sipp_offer_negotiates_pcmu_with_dtmf() {
        let offer = parse(SIPP_OFFER).unwrap();
        assert_eq!(offer.media.len(), 1);
        assert_eq!(offer.media[0].fmtps, vec![(101, "0-11,16".to_string())]);
        let n = negotiate(&offer, &BOTH).unwrap();
        assert_eq!(n.codec, G711::Ulaw);
        assert_eq!(n.pt, 0);
        assert_eq!(n.dtmf_pt, Some(101));
        assert_eq!(n.remote, "127.0.1.1:6000".parse::<SocketAddr>().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
        assert_eq!(n.ptime_ms, 20);

        let a = answer(&n, ip("10.0.0.5"), 40000, 77, 1);
        assert_eq!(
            a,
            "v=0\r\no=frontline 77 1 IN IP4 10.0.0.5\r\ns=frontline\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        // Our own answer parses, and negotiating it back gives the same choice.
        let back = negotiate(&parse(&a).unwrap(), &BOTH).unwrap();
        assert_eq!((back.codec, back.pt, back.dtmf_pt), (G711::Ulaw, 0, Some(101)));
    }

    #[test]
    fn offerer_order_wins_and_our_list_filters() {
        let offer = parse(&SIPP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 0 101")).unwrap();
        assert_eq!(negotiate(&offer, &BOTH).unwrap().codec, G711::Alaw);
        // If we only do µ-law, we pick it even though A-law came first.
        assert_eq!(negotiate(&offer, &[G711::Ulaw]).unwrap().codec, G711::Ulaw);
    }

    #[test]
    fn pcma_only_offer_with_static_pt_and_no_rtpmap() {
        let sdp = "v=0\no=- 1 1 IN IP4 192.0.2.10\ns=call\nt=0 0\nm=audio 5004 RTP/AVP 8\nc=IN IP4 192.0.2.10\n";
        let n = negotiate(&parse(sdp).unwrap(), &BOTH).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (G711::Alaw, 8, None));
        assert_eq!(n.remote, "192.0.2.10:5004".parse::<SocketAddr>().unwrap());
        let a = answer(&n, ip("192.0.2.1"), 30000, 5, 2);
        assert!(a.contains("m=audio 30000 RTP/AVP 8\r\n"));
        assert!(a.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(!a.contains("telephone-event"), "telephone-event only when offered");
        assert!(a.lines().all(|l| !l.is_empty()));
        assert!(a.ends_with("\r\n") && !a.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn g729_only_is_no_common_codec() {
        let sdp = SIPP_OFFER
            .replace("RTP/AVP 0 8 101", "RTP/AVP 18")
            .replace("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n", "a=rtpmap:18 G729/8000\r\n");
        let err = negotiate(&parse(&sdp).unwrap(), &BOTH).unwrap_err();
        assert!(matches!(err, SdpError::NoCommonCodec { .. }));
        let text = err.to_string();
        assert!(text.contains("G729/8000") && text.contains("PCMU"), "{text}");
    }

    #[test]
    fn opus_only_is_no_common_codec() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n";
        let err = negotiate(&parse(sdp).unwrap(), &BOTH).unwrap_err();
        assert!(matches!(err, SdpError::NoCommonCodec { .. }), "{err}");
        // A PCMU name on the wrong clock rate is not PCMU.
        let sdp = sdp.replace("opus/48000/2", "PCMU/16000");
        assert!(matches!(negotiate(&parse(&sdp).unwrap(), &BOTH), Err(SdpError::NoCommonCodec { .. })));
    }

    #[test]
    fn srtp_or_missing_audio_is_not_acceptable() {
        let savp = SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP");
        assert!(matches!(negotiate(&parse(&savp).unwrap(), &BOTH), Err(SdpError::NoCommonCodec { .. })));
        let video = SIPP_OFFER.replace("m=audio", "m=video");
        assert!(matches!(negotiate(&parse(&video).unwrap(), &BOTH), Err(SdpError::NoCommonCodec { .. })));
    }

    #[test]
    fn hold_with_sendonly_is_answered_recvonly() {
        let sdp = format!("{SIPP_OFFER}a=sendonly\r\n");
        let n = negotiate(&parse(&sdp).unwrap(), &BOTH).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(answer(&n, ip("10.0.0.5"), 40000, 77, 2).contains("a=recvonly\r\n"));
        // Session-level direction applies when the media section has none.
        let sdp = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n");
        let n = negotiate(&parse(&sdp).unwrap(), &BOTH).unwrap();
        assert_eq!(n.direction, Direction::Inactive);
        assert!(answer(&n, ip("10.0.0.5"), 40000, 77, 3).contains("a=inactive\r\n"));
        // They only listen: we only send.
        let sdp = format!("{SIPP_OFFER}a=recvonly\r\n");
        assert_eq!(negotiate(&parse(&sdp).unwrap(), &BOTH).unwrap().direction, Direction::SendOnly);
    }

    #[test]
    fn old_style_hold_with_zero_address_is_answered_recvonly() {
        let sdp = SIPP_OFFER.replace("c=IN IP4 127.0.1.1", "c=IN IP4 0.0.0.0");
        let n = negotiate(&parse(&sdp).unwrap(), &BOTH).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(n.remote.ip().is_unspecified());
        // ... and an explicit inactive stays inactive.
        let sdp = format!("{sdp}a=inactive\r\n");
        assert_eq!(negotiate(&parse(&sdp).unwrap(), &BOTH).unwrap().direction, Direction::Inactive);
    }

    #[test]
    fn media_level_connection_and_ptime_and_ipv6() {
        let sdp = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\n\
m=audio 7078 RTP/AVP 0\r\nc=IN IP6 2001:db8::2\r\na=ptime:30\r\n";
        let n = negotiate(&parse(sdp).unwrap(), &BOTH).unwrap();
        assert_eq!(n.remote, "[2001:db8::2]:7078".parse::<SocketAddr>().unwrap());
        assert_eq!(n.ptime_ms, 30);
        let a = answer(&n, ip("2001:db8::1"), 4000, 1, 1);
        assert!(a.contains("c=IN IP6 2001:db8::1\r\n"), "{a}");
    }

    #[test]
    fn other_streams_are_rejected_in_place() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.3\r\nt=0 0\r\n\
m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 5002 RTP/AVP 8 0\r\n";
        let n = negotiate(&parse(sdp).unwrap(), &BOTH).unwrap();
        assert_eq!((n.codec, n.media_index), (G711::Alaw, 1));
        let a = answer(&n, ip("192.0.2.1"), 6000, 1, 1);
        let m: Vec<&str> = a.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(m, vec!["m=video 0 RTP/AVP 96", "m=audio 6000 RTP/AVP 8"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "hello",
            "\r\n\r\n",
            "x=0\r\n",
            "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",
            "v=0\r\ns=-\r\n",                                          // no o=
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio x RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 5000\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:300 PCMU/8000\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=ptime:abc\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n\u{e9}=x\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nv=0\r\n",
        ] {
            let r = parse(bad);
            assert!(
                matches!(r, Err(SdpError::Malformed { .. } | SdpError::Missing(_))),
                "{bad:?} gave {r:?}"
            );
        }
        // Truncations of a valid offer at every byte never panic.
        for i in 0..SIPP_OFFER.len() {
            if let Ok(o) = parse(&SIPP_OFFER[..i]) {
                let _ = negotiate(&o, &BOTH);
            }
        }
        // A host name instead of an IP parses, but cannot be used without DNS.
        let sdp = SIPP_OFFER.replace("c=IN IP4 127.0.1.1", "c=IN IP4 pbx.example.com");
        assert!(matches!(negotiate(&parse(&sdp).unwrap(), &BOTH), Err(SdpError::NoConnection { .. })));
    }

    #[test]
    fn attributes_of_streams_we_do_not_take_are_not_judged() {
        // RFC 4475's offers: PCMU and GSM audio, and a video stream whose rtpmap has no rate.
        let sdp = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
        let n = negotiate(&parse(sdp).unwrap(), &BOTH).unwrap();
        assert_eq!((n.codec, n.pt, n.media_index), (G711::Ulaw, 0, 0));
        let a = answer(&n, ip("192.0.2.9"), 7000, 1, 1);
        assert!(a.contains("m=video 0 RTP/AVP 31\r\n"), "{a}");
        // The same rtpmap on the audio stream is still an error.
        let bad = sdp.replace("m=audio 49217 RTP/AVP 0 12\r\n", "m=audio 49217 RTP/AVP 0 12\r\na=rtpmap:0 PCMU\r\n");
        assert!(matches!(parse(&bad), Err(SdpError::Malformed { .. })));
    }

    #[test]
    fn our_own_offer_parses_and_negotiates_in_our_order() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let text = offer(ip, 30000, 7, &[G711::Ulaw, G711::Alaw], 101);
        let n = negotiate(&parse(&text).unwrap(), &[G711::Ulaw, G711::Alaw]).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (G711::Ulaw, 0, Some(101)));
        assert_eq!(n.remote, "10.1.2.3:30000".parse::<SocketAddr>().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
    }
}
