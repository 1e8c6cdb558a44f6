//! Keypad digits sent as SIP INFO, sans-IO.
//!
//! Some PBXs and phones send DTMF in INFO requests instead of RFC 4733 packets: Cisco's
//! `application/dtmf-relay` ("Signal=5\r\nDuration=160") and the bare `application/dtmf`
//! ("5"). Both become the same keypad event the RTP path produces.

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    pub digit: char,
    pub duration_ms: u32,
}

/// The body types [`parse`] reads, for the Accept of a 415 (RFC 6086 §4.2.2).
pub const ACCEPT: &str = "application/dtmf-relay, application/dtmf";

/// What an INFO's body means for the call.
#[derive(Debug, PartialEq, Eq)]
pub enum Info {
    Digit(InfoDigit),
    /// No body (a keepalive, RFC 6086 §4.2.1) or a DTMF body without a digit in it.
    Nothing,
    /// A body type we do not read: answered 415 with [`ACCEPT`].
    Unsupported,
}

/// Without a Duration, a key press as long as a typical one (and the RFC 4733 default tone).
const DEFAULT_DURATION_MS: u32 = 100;

/// Reads an INFO body given its Content-Type (parameters allowed, case ignored).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Info {
    let body = String::from_utf8_lossy(body);
    if body.trim().is_empty() {
        return Info::Nothing;
    }
    let kind = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match kind.as_deref() {
        Some("application/dtmf-relay") => {
            let mut digit = None;
            let mut duration_ms = DEFAULT_DURATION_MS;
            for line in body.lines() {
                let Some((k, v)) = line.split_once('=') else { continue };
                match k.trim().to_ascii_lowercase().as_str() {
                    "signal" => digit = key(v.trim()),
                    "duration" => duration_ms = v.trim().parse().unwrap_or(DEFAULT_DURATION_MS),
                    _ => {}
                }
            }
            digit.map_or(Info::Nothing, |digit| Info::Digit(InfoDigit { digit, duration_ms }))
        }
        Some("application/dtmf") => match key(body.trim()) {
            Some(digit) => Info::Digit(InfoDigit { digit, duration_ms: DEFAULT_DURATION_MS }),
            None => Info::Nothing,
        },
        _ => Info::Unsupported,
    }
}

/// A key as written: the character itself, or its RFC 4733 event number (10 = *, 11 = #,
/// 12-15 = A-D), which some senders use.
fn key(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#') => Some(c),
        (Some(c), None) if ('A'..='D').contains(&c.to_ascii_uppercase()) => Some(c.to_ascii_uppercase()),
        _ => match s.parse::<u8>().ok()? {
            n @ 0..=9 => char::from_digit(u32::from(n), 10),
            10 => Some('*'),
            11 => Some('#'),
            n @ 12..=15 => Some((b'A' + n - 12) as char),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit(d: char, ms: u32) -> Info {
        Info::Digit(InfoDigit { digit: d, duration_ms: ms })
    }

    #[test]
    fn dtmf_relay_bodies_as_pbxs_send_them() {
        let ct = Some("application/dtmf-relay");
        assert_eq!(parse(ct, b"Signal=5\r\nDuration=160\r\n"), digit('5', 160));
        assert_eq!(parse(ct, b"Signal= #\nDuration= 250"), digit('#', 250));
        assert_eq!(parse(Some("Application/DTMF-Relay; charset=x"), b"signal=*"), digit('*', 100));
        assert_eq!(parse(ct, b"Signal=11\r\n"), digit('#', 100), "event number form");
        assert_eq!(parse(ct, b"Signal=d\r\n"), digit('D', 100));
        assert_eq!(parse(ct, b"Duration=160\r\n"), Info::Nothing);
        assert_eq!(parse(ct, b"Signal=42\r\n"), Info::Nothing);
    }

    #[test]
    fn bare_dtmf_bodies_and_other_types() {
        assert_eq!(parse(Some("application/dtmf"), b"0\r\n"), digit('0', 100));
        assert_eq!(parse(Some("application/dtmf"), b"10"), digit('*', 100));
        assert_eq!(parse(Some("application/dtmf"), b"x"), Info::Nothing);
        assert_eq!(parse(None, b""), Info::Nothing, "an empty INFO is a keepalive");
        assert_eq!(parse(Some("application/media_control+xml"), b"<x/>"), Info::Unsupported);
        assert_eq!(parse(None, b"Signal=1"), Info::Unsupported);
    }
}
