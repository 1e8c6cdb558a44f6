//! What the gateway checks in a browser's SDP offer before any WebRTC machinery runs,
//! sans-IO: the text must be SDP, carry an audio section, and offer Opus at 48 kHz. Each
//! failure is a typed error the HTTP layer turns into the right 4xx with a readable reason.

use crate::edge::sdp::{self, SdpError};

/// Why an offer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Not SDP at all, or broken SDP (400).
    #[error("malformed SDP offer: {0}")]
    Malformed(String),
    /// Valid SDP without an audio section, or with every audio section disabled (422).
    #[error("the offer has no audio: add an audio transceiver (e.g. getUserMedia({{audio: true}}) or addTransceiver('audio'))")]
    NoAudio,
    /// Audio, but not Opus (422).
    #[error("the offer's audio has no Opus (opus/48000): this gateway speaks Opus to browsers; offered: {offered}")]
    NoOpus { offered: String },
}

/// The parts of an acceptable offer the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    pub opus_pt: u8,
    /// RFC 4733 telephone-event at 48 kHz or 8 kHz, when offered (the keypad).
    pub dtmf: Option<(u8, u32)>,
}

/// Checks `text` and returns what the answer will be built from.
pub fn check(text: &str) -> Result<OfferSummary, OfferError> {
    if text.trim().is_empty() {
        return Err(OfferError::Malformed("the body is empty; POST the offer's SDP as application/sdp".into()));
    }
    let parsed = sdp::parse(text).map_err(|e| match e {
        SdpError::Malformed { .. } | SdpError::Missing(_) => OfferError::Malformed(e.to_string()),
        other => OfferError::Malformed(other.to_string()),
    })?;
    // Port 0 is a rejected or disabled section (RFC 3264 §5.1); bundled sections in a WebRTC
    // offer carry the real port (or the dummy 9), never 0.
    let audio: Vec<_> = parsed.media.iter().filter(|m| m.media == "audio" && m.port != 0).collect();
    if audio.is_empty() {
        return Err(OfferError::NoAudio);
    }
    for m in &audio {
        let opus = m.rtpmaps.iter().find(|r| r.encoding.eq_ignore_ascii_case("opus") && r.clock_rate == 48000);
        if let Some(opus) = opus {
            let events = |rate: u32| m.rtpmaps.iter().find(|r| r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == rate).map(|r| (r.pt, rate));
            return Ok(OfferSummary { opus_pt: opus.pt, dtmf: events(48000).or_else(|| events(8000)) });
        }
    }
    let offered: Vec<String> = audio
        .iter()
        .flat_map(|m| m.rtpmaps.iter().map(|r| format!("{}/{}", r.encoding, r.clock_rate)))
        .collect();
    let offered = if offered.is_empty() { "no rtpmap".to_string() } else { offered.join(", ") };
    Err(OfferError::NoOpus { offered })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROMIUM_LIKE: &str = "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 110 126\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\n\
a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n";

    #[test]
    fn a_browser_offer_yields_opus_and_the_48k_keypad() {
        let s = check(CHROMIUM_LIKE).unwrap();
        assert_eq!(s, OfferSummary { opus_pt: 111, dtmf: Some((110, 48000)) });
    }

    #[test]
    fn garbage_is_malformed_with_a_reason() {
        let e = check("hello world").unwrap_err();
        assert!(matches!(e, OfferError::Malformed(ref r) if r.contains("line 1")), "{e}");
        assert!(matches!(check("  "), Err(OfferError::Malformed(_))));
    }

    #[test]
    fn video_only_has_no_audio() {
        let video = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(check(video), Err(OfferError::NoAudio));
    }

    #[test]
    fn g711_only_audio_says_opus_is_missing_and_what_was_offered() {
        let pcmu = CHROMIUM_LIKE.replace("a=rtpmap:111 opus/48000/2\r\n", "");
        let e = check(&pcmu).unwrap_err();
        assert!(matches!(e, OfferError::NoOpus { .. }), "{e}");
        assert!(e.to_string().contains("PCMU/8000"), "{e}");
    }
}
