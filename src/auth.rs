//! Shared secrets presented as bearer tokens: the Ops API (`crate::ops`) and the agent console
//! (`crate::http`) each keep a list of them.

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

#[cfg(test)]
mod tests {
    use super::*;

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
