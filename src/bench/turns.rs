//! Turn latency as seen on the wire (sans-IO): from a capture's RTP, when each caller
//! utterance ended and when the gateway's reply started.
//!
//! "Speech" is decided by the loudness of each 20 ms packet's decoded audio, the same measure
//! [`speech_span`] applies to the fixture file before it is sent: so the end found on the wire
//! is the fixture's own last speech sample, whatever the gateway's endpointer thinks.

use crate::bench::pcap::Datagram;
use crate::media::level::loudness_dbfs;
use crate::media::g711::G711;
use crate::media::rtp::RtpPacket;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// A 20 ms frame louder than this is speech. espeak and TTS silence is digital zero, room
/// noise in the LibriVox clips sits near -60 dBFS; speech is -35..-15.
pub const SPEECH_DBFS: f32 = -45.0;
/// Pauses shorter than this belong to the same utterance (between words, before a stop
/// consonant); turns in the benchmark scenarios are seconds apart.
pub const UTTERANCE_GAP_MS: u64 = 1000;

/// First and last speech sample of a clip (by 20 ms frames), in ms from its start.
pub fn speech_span(pcm: &[i16], rate_hz: u32) -> Option<(u64, u64)> {
    let frame = (rate_hz / 50) as usize;
    let loud: Vec<usize> =
        pcm.chunks(frame).enumerate().filter(|(_, c)| loudness_dbfs(c) > SPEECH_DBFS).map(|(i, _)| i).collect();
    Some(((*loud.first()? as u64) * 20, (*loud.last()? as u64 + 1) * 20))
}

/// One caller utterance and the reply to it, on one call's RTP.
#[derive(Debug, Clone, PartialEq)]
pub struct WireTurn {
    /// The caller's RTP port: which call this is.
    pub caller_port: u16,
    pub speech_start_us: u64,
    /// Capture time of the packet carrying the caller's last speech sample.
    pub speech_end_us: u64,
    /// Capture time of the first speech packet of the gateway's next talkspurt after it.
    pub reply_us: Option<u64>,
}

impl WireTurn {
    pub fn latency_ms(&self) -> Option<f64> {
        self.reply_us.map(|r| r.saturating_sub(self.speech_end_us) as f64 / 1000.0)
    }
}

/// One decoded RTP packet of a call, reduced to what the timing needs.
struct Frame {
    t_us: u64,
    speech: bool,
}

fn is_speech(pkt: &RtpPacket<'_>) -> Option<bool> {
    let codec = G711::from_payload_type(pkt.pt)?;
    let mut pcm = Vec::with_capacity(pkt.payload.len());
    codec.decode(pkt.payload, &mut pcm);
    Some(loudness_dbfs(&pcm) > SPEECH_DBFS)
}

/// Every caller utterance in the capture with the reply that followed it. `gateway_ports` is
/// the gateway's RTP range: datagrams to it are the callers', datagrams from it the gateway's.
/// Only G.711 audio is considered (DTMF and RTCP are skipped).
pub fn wire_turns(datagrams: &[Datagram], gateway_ports: RangeInclusive<u16>) -> Vec<WireTurn> {
    // caller port -> (caller's frames, gateway's frames)
    let mut calls: BTreeMap<u16, (Vec<Frame>, Vec<Frame>)> = BTreeMap::new();
    for d in datagrams {
        let (caller_port, from_caller) = match (gateway_ports.contains(&d.dst_port), gateway_ports.contains(&d.src_port)) {
            (true, false) => (d.src_port, true),
            (false, true) => (d.dst_port, false),
            _ => continue,
        };
        let Some(speech) = RtpPacket::parse(&d.payload).ok().as_ref().and_then(is_speech) else { continue };
        let entry = calls.entry(caller_port).or_default();
        let side = if from_caller { &mut entry.0 } else { &mut entry.1 };
        side.push(Frame { t_us: d.t_us, speech });
    }
    let mut turns = Vec::new();
    for (caller_port, (mut caller, mut gateway)) in calls {
        caller.sort_by_key(|f| f.t_us);
        gateway.sort_by_key(|f| f.t_us);
        // Utterances: runs of speech packets with no pause of UTTERANCE_GAP_MS inside.
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for f in caller.iter().filter(|f| f.speech) {
            match spans.last_mut() {
                Some(last) if f.t_us - last.1 < UTTERANCE_GAP_MS * 1000 => last.1 = f.t_us,
                _ => spans.push((f.t_us, f.t_us)),
            }
        }
        for (i, &(start, end)) in spans.iter().enumerate() {
            let next_start = spans.get(i + 1).map_or(u64::MAX, |s| s.0);
            // The reply is a new talkspurt: speech right after non-speech. A prompt still
            // playing when the caller stops (a long greeting) is not the answer.
            let reply = gateway
                .windows(2)
                .find(|w| w[1].t_us > end && w[1].t_us < next_start && w[1].speech && !w[0].speech)
                .map(|w| w[1].t_us);
            turns.push(WireTurn { caller_port, speech_start_us: start, speech_end_us: end, reply_us: reply });
        }
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::pcap::{synthetic_capture, udp_datagrams};
    use crate::media::rtp::RtpSender;

    /// One 20 ms PCMU packet: a loud square wave or digital silence.
    fn packet(sender: &mut RtpSender, loud: bool) -> Vec<u8> {
        let pcm: Vec<i16> = (0..160).map(|i| if loud { if i % 20 < 10 { 8000 } else { -8000 } } else { 0 }).collect();
        let mut wire = Vec::new();
        G711::Ulaw.encode(&pcm, &mut wire);
        let mut out = Vec::new();
        sender.audio(0, &wire, 160, false, &mut out);
        out
    }

    #[test]
    fn finds_the_end_of_speech_and_the_start_of_the_reply_in_a_capture() {
        let (caller, gw) = (6000u16, 40002u16);
        let mut tx = RtpSender::new(1, 0, 0);
        let mut rx = RtpSender::new(2, 0, 0);
        let mut d = Vec::new();
        // Caller: speech 0..1000 ms with a 300 ms pause inside, then silence to 3000 ms.
        // Gateway: a prompt still playing until 1200 ms, silence, then its reply from 1660 ms.
        for k in 0..150u64 {
            let t = 1_000_000 + k * 20_000;
            let ms = k * 20;
            let talking = ms < 1000 && !(400..700).contains(&ms);
            d.push(Datagram { t_us: t, src_port: caller, dst_port: gw, payload: packet(&mut tx, talking) });
            let replying = ms < 1200 || ms >= 1660;
            d.push(Datagram { t_us: t + 5_000, src_port: gw, dst_port: caller, payload: packet(&mut rx, replying) });
        }
        // Noise on another port and a non-RTP datagram are ignored.
        d.push(Datagram { t_us: 2_000_000, src_port: 5060, dst_port: 5061, payload: b"INVITE".to_vec() });
        let datagrams = udp_datagrams(&synthetic_capture(&d)).unwrap();
        let turns = wire_turns(&datagrams, 40000..=40099);
        assert_eq!(turns.len(), 1, "{turns:?}");
        let t = &turns[0];
        assert_eq!((t.caller_port, t.speech_start_us, t.speech_end_us), (caller, 1_000_000, 1_980_000));
        assert_eq!(t.reply_us, Some(1_000_000 + 1660 * 1000 + 5_000));
        assert_eq!(t.latency_ms(), Some(685.0));
    }

    #[test]
    fn speech_span_of_a_clip() {
        let mut pcm = vec![0i16; 16000];
        for s in &mut pcm[4800..11200] {
            *s = 5000;
        }
        assert_eq!(speech_span(&pcm, 16000), Some((300, 700)));
        assert_eq!(speech_span(&[0; 800], 8000), None);
    }
}
