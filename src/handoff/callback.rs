//! The callback fallback's record: one JSON line per request, durable before the caller is told.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackRequest {
    pub call_id: String,
    /// The number to call back (the caller's number as presented).
    pub number: String,
    /// Triage reason code, so the callback reaches the right desk.
    pub reason: String,
    pub language: String,
    pub requested_at_ms: u64,
}

/// Appends `req` to the JSON Lines file at `path`, creating it and its directories.
///
/// The line goes out in a single `write` on a file opened for appending, so concurrent calls
/// never interleave within a line, and it is flushed and synced to disk before returning: the
/// caller is only told the callback is taken once a crash can no longer lose it.
pub fn append_callback(path: &Path, req: &CallbackRequest) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(&line)?;
    file.flush()?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_parseable_lines_creating_directories() {
        let dir = std::env::temp_dir().join(format!("frontline-callbacks-{}", std::process::id()));
        let path = dir.join("nested/var/callbacks.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        let reqs = [
            CallbackRequest { call_id: "c1".into(), number: "+8613800138000".into(), reason: "risk-dispute".into(), language: "zh".into(), requested_at_ms: 1 },
            CallbackRequest { call_id: "c2\"\n".into(), number: "5551234".into(), reason: "explicit-request".into(), language: "en".into(), requested_at_ms: 2 },
        ];
        for r in &reqs {
            append_callback(&path, r).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Vec<CallbackRequest> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, reqs);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_error_not_a_panic() {
        let r = CallbackRequest { call_id: "c".into(), number: "1".into(), reason: "x".into(), language: "en".into(), requested_at_ms: 0 };
        assert!(append_callback(Path::new("/proc/frontline-no/cb.jsonl"), &r).is_err());
    }
}
