//! Shared secrets presented as bearer tokens: the Ops API (`crate::ops`) and the agent console
//! (`crate::http`) each keep a list of them. And [`Stamper`]: values the gateway hands out and
//! checks later without storing them (the console's sign-in cookie, SIP digest nonces).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Arc<Vec<String>>,
}

impl Tokens {
    /// The configured tokens plus the one from an environment variable, if set and not blank.
    pub fn new(config_tokens: &[String], env_token: Option<String>) -> Tokens {
        let mut tokens: Vec<String> = config_tokens.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
        tokens.extend(env_token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()));
        Tokens { tokens: Arc::new(tokens) }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(String::as_str)
    }

    /// Whether `presented` is one of the tokens. Compared without an early exit, so the time
    /// taken does not tell how much of a guess matched.
    pub fn accepts(&self, presented: &str) -> bool {
        self.tokens.iter().fold(false, |ok, t| ok | constant_time_eq(t.as_bytes(), presented.as_bytes()))
    }
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer TOKEN` value.
pub fn bearer(value: &str) -> Option<&str> {
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// Hands out `ISSUED.MAC` values: the unix time of issue and a MAC over it and a context (a
/// token, a realm), so a value can be checked later with nothing stored, and cannot be moved to
/// another context or have its time edited.
#[derive(Clone)]
pub struct Stamper {
    key: [u8; 32],
}

impl Stamper {
    /// A key drawn now: its stamps die with the process.
    pub fn random() -> Stamper {
        Stamper { key: rand::random() }
    }

    /// A key from a configured secret, so that several processes (gateways behind one proxy)
    /// take each other's stamps.
    pub fn from_secret(secret: &str) -> Stamper {
        Stamper { key: Sha256::digest(secret.as_bytes()).into() }
    }

    pub fn stamp(&self, context: &[u8], issued: u64) -> String {
        format!("{issued}.{}", hex_bytes(&self.mac(context, issued)))
    }

    /// When `value` was issued, if this key stamped it for `context`. The MAC is compared in
    /// constant time.
    pub fn issued(&self, value: &str, context: &[u8]) -> Option<u64> {
        let (issued, mac) = value.split_once('.')?;
        let (issued, mac) = (issued.parse::<u64>().ok()?, unhex_bytes(mac)?);
        constant_time_eq(&self.mac(context, issued), &mac).then_some(issued)
    }

    fn mac(&self, context: &[u8], issued: u64) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(&issued.to_be_bytes());
        mac.update(context);
        mac.finalize().into_bytes().into()
    }
}

pub fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        for b in [&b""[..], b"abc", "汉字; =x".as_bytes()] {
            assert_eq!(unhex_bytes(&hex_bytes(b)).as_deref(), Some(b));
        }
        assert_eq!(unhex_bytes("0"), None);
        assert_eq!(unhex_bytes("zz"), None);
    }

    #[test]
    fn a_stamp_is_taken_back_only_by_its_key_for_its_context_and_time() {
        let key = Stamper::from_secret("shared");
        let value = key.stamp(b"realm", 1000);
        assert_eq!(key.issued(&value, b"realm"), Some(1000));
        assert_eq!(Stamper::from_secret("shared").issued(&value, b"realm"), Some(1000), "another node with the secret");
        assert_eq!(Stamper::random().issued(&value, b"realm"), None);
        assert_eq!(key.issued(&value, b"other realm"), None);
        let (_, mac) = value.split_once('.').unwrap();
        assert_eq!(key.issued(&format!("2000.{mac}"), b"realm"), None, "time edited");
        assert_eq!(key.issued("garbage", b"realm"), None);
    }

    #[test]
    fn only_listed_tokens_pass_and_blank_ones_are_not_listed() {
        let t = Tokens::new(&["s3cret".into(), " ".into()], Some("from-env\n".into()));
        assert!(t.accepts("s3cret") && t.accepts("from-env"));
        assert!(!t.accepts("") && !t.accepts("s3cre") && !t.accepts("s3cret2"));
        assert!(Tokens::new(&["".into()], Some("".into())).is_empty());
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
    }
}
