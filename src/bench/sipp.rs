//! sipp as the benchmark's caller: filling scenario placeholders, and running callers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The name of the first `@NAME@` placeholder (upper-case letters, digits, `_`) left in `text`.
/// Shared with the tests' sipp runner: a scenario with a placeholder left would send garbage.
pub fn first_placeholder(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find('@') {
        let start = i + off + 1;
        let len = bytes[start..].iter().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_').count();
        if len > 0 && bytes.get(start + len) == Some(&b'@') {
            return Some(text[start..start + len].to_string());
        }
        i = start;
    }
    None
}

/// Replaces `@NAME@` placeholders; an error names the first one left unfilled.
pub fn fill(template: &str, vars: &[(&str, String)]) -> Result<String, String> {
    let mut text = template.to_string();
    for (k, v) in vars {
        text = text.replace(&format!("@{k}@"), v);
    }
    match first_placeholder(&text) {
        Some(left) => Err(format!("placeholder @{left}@ left unfilled")),
        None => Ok(text),
    }
}

/// One turn of bench/sipp/uac_turns.xml: stream `audio` (headerless G.711), then stay
/// quiet while the gateway answers.
pub fn turn_block(audio: &Path, pt: u8, speech_ms: u64, reply_ms: u64) -> String {
    format!(
        "  <nop><action><exec rtp_stream=\"{},1,{pt}\"/></action></nop>\n  <pause milliseconds=\"{}\"/>\n",
        audio.display(),
        speech_ms + reply_ms
    )
}

/// Where the turn-taking caller's scenario lives, relative to the repository.
pub const TURNS_SCENARIO: &str = "bench/sipp/uac_turns.xml";

/// bench/sipp/uac_turns.xml filled for a PCMU caller `caller` who waits `lead_ms` through the
/// greeting, then takes `turns` (blocks of [`turn_block`] and the like).
pub fn fill_turns(template: &str, caller: &str, lead_ms: u64, turns: &str) -> anyhow::Result<String> {
    fill(
        template,
        &[("PT", "0".into()), ("CODEC", "PCMU".into()), ("CALLER", caller.into()), ("LEAD_MS", lead_ms.to_string()), ("TURNS", turns.into())],
    )
    .map_err(|e| anyhow::anyhow!("{TURNS_SCENARIO}: {e}"))
}

/// 16 kHz speech as a caller's rtp_stream sends it ([`super::ulaw_8k`]), written headerless
/// to `path`. Returns the 8 kHz audio (for timings).
pub fn write_ulaw(pcm16: &[i16], path: &Path) -> anyhow::Result<Vec<i16>> {
    use anyhow::Context as _;
    let (pcm8, ulaw) = super::ulaw_8k(pcm16);
    std::fs::write(path, &ulaw).with_context(|| format!("writing {}", path.display()))?;
    Ok(pcm8)
}

/// A sipp caller process placing one call.
pub struct SippCall {
    pub child: Child,
    pub media_port: u16,
    pub dir: PathBuf,
}

/// Starts `sipp` for one call (`-m 1`) of `scenario` against 127.0.0.1:`gateway_port`.
/// Its trace files go to `dir`.
pub fn start_call(scenario: &Path, gateway_port: u16, sip_port: u16, media_port: u16, dir: &Path) -> std::io::Result<SippCall> {
    let child = Command::new("sipp")
        .arg(format!("127.0.0.1:{gateway_port}"))
        .arg("-sf")
        .arg(scenario)
        .args(["-s", "ivr", "-i", "127.0.0.1", "-p", &sip_port.to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
        .args(["-m", "1", "-l", "1", "-nostdin", "-trace_err"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start sipp: {e} (scripts/setup.sh installs sip-tester)")))?;
    Ok(SippCall { child, media_port, dir: dir.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_leftovers_named() {
        assert_eq!(first_placeholder("rtp_stream=\"@AUDIO@,1,@PT@\"").as_deref(), Some("AUDIO"));
        assert_eq!(first_placeholder("sip:ivr@127.0.0.1:5060 and a@b"), None);
        assert_eq!(fill("m=audio 1 RTP/AVP @PT@", &[("PT", "0".into())]).unwrap(), "m=audio 1 RTP/AVP 0");
        assert_eq!(fill("@PT@ @LEAD_MS@", &[("PT", "0".into())]), Err("placeholder @LEAD_MS@ left unfilled".into()));
        let block = turn_block(Path::new("/tmp/a.ulaw"), 0, 3000, 8000);
        assert!(block.contains("rtp_stream=\"/tmp/a.ulaw,1,0\"") && block.contains("11000"), "{block}");
    }
}
