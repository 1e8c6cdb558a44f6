//! Opus in and out of the 16 kHz pipeline, sans-IO: packets and PCM in, PCM and packets out;
//! no sockets, clocks or tasks.
//!
//! The wire is Opus with its 48 kHz RTP clock (RFC 7587). libopus decodes to and encodes from
//! 16 kHz itself (it supports 8/12/16/24/48 kHz at its API), so the call's internal format
//! needs no extra resampler: one less filter, and no extra delay, on both paths.

use crate::media::session::FRAME_16K;
use opus::{Application, Channels, Decoder, Encoder};

/// Beyond this many missing frames the caller's stream restarted (or paused) rather than lost
/// packets: concealing half a second of made-up audio would only feed the recognizer noise.
const MAX_CONCEALED: u16 = 10;
/// Largest Opus packet we produce; 20 ms of 16 kHz voice is far below it at any sane bitrate.
const MAX_PACKET: usize = 1275;

#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct CodecError(#[from] opus::Error);

/// Counters for the call record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveStats {
    pub packets: u64,
    /// Frames rebuilt from the next packet's in-band FEC.
    pub fec_frames: u64,
    /// Frames invented by Opus packet-loss concealment.
    pub plc_frames: u64,
    /// Packets that arrived after a later one had been played, or twice.
    pub late: u64,
    pub undecodable: u64,
}

/// Decodes the caller's Opus packets in arrival order, filling sequence gaps with FEC (the
/// frame just before a packet is carried inside it at lower quality when the sender enabled
/// `useinbandfec`, as browsers do) or PLC.
pub struct OpusReceiver {
    decoder: Decoder,
    expected_seq: Option<u16>,
    pub stats: ReceiveStats,
    scratch: Vec<i16>,
}

impl OpusReceiver {
    pub fn new() -> Result<Self, CodecError> {
        Ok(OpusReceiver {
            decoder: Decoder::new(16000, Channels::Mono)?,
            expected_seq: None,
            stats: ReceiveStats::default(),
            // 120 ms is the longest Opus packet.
            scratch: vec![0; FRAME_16K * 6],
        })
    }

    /// Decodes one packet with sequence number `seq`, appending 16 kHz audio to `out`
    /// (the concealed frames for any gap before it first).
    pub fn push(&mut self, seq: u16, payload: &[u8], out: &mut Vec<i16>) {
        self.stats.packets += 1;
        if let Some(expected) = self.expected_seq {
            let ahead = seq.wrapping_sub(expected);
            if ahead >= 0x8000 {
                // Behind what was already played: too late to use.
                self.stats.late += 1;
                return;
            }
            if ahead > 0 && ahead <= MAX_CONCEALED {
                for missing in 0..ahead {
                    let last = missing + 1 == ahead;
                    // FEC recovers only the frame right before this packet; earlier ones are PLC.
                    let recovered = last && self.decode_into(payload, true, out);
                    if recovered {
                        self.stats.fec_frames += 1;
                    } else if self.decode_into(&[], false, out) {
                        self.stats.plc_frames += 1;
                    }
                }
            }
        }
        self.expected_seq = Some(seq.wrapping_add(1));
        if !self.decode_into(payload, false, out) {
            self.stats.undecodable += 1;
        }
    }

    /// A packet of another payload type on the same stream (RFC 4733 events share the audio's
    /// sequence numbers): it takes its number, so the audio that resumes after it is no loss.
    pub fn skip(&mut self, seq: u16) {
        let ahead = self.expected_seq.map_or(0, |e| seq.wrapping_sub(e));
        if ahead < 0x8000 {
            self.expected_seq = Some(seq.wrapping_add(1));
        }
    }

    /// One frame's worth (20 ms) of decoder output; `payload` empty asks for PLC.
    fn decode_into(&mut self, payload: &[u8], fec: bool, out: &mut Vec<i16>) -> bool {
        // FEC and PLC produce exactly as many samples as the buffer asks for: one frame.
        let len = if fec || payload.is_empty() { FRAME_16K } else { self.scratch.len() };
        match self.decoder.decode(payload, &mut self.scratch[..len], fec) {
            Ok(n) => {
                out.extend_from_slice(&self.scratch[..n]);
                true
            }
            Err(_) => false,
        }
    }
}

/// Encodes the bot's 16 kHz audio into 20 ms Opus packets.
pub struct OpusSender {
    encoder: Encoder,
    packet: Vec<u8>,
}

impl OpusSender {
    pub fn new() -> Result<Self, CodecError> {
        let mut encoder = Encoder::new(16000, Channels::Mono, Application::Voip)?;
        // Browsers report loss in RTCP but do not renegotiate: in-band FEC lets them recover
        // a lost frame from the next packet at no round-trip.
        encoder.set_inband_fec(true)?;
        encoder.set_packet_loss_perc(5)?;
        Ok(OpusSender { encoder, packet: vec![0; MAX_PACKET] })
    }

    /// Encodes one 20 ms frame; the slice is valid until the next call.
    pub fn encode(&mut self, frame: &[i16; FRAME_16K]) -> Result<&[u8], CodecError> {
        let n = self.encoder.encode(frame, &mut self.packet)?;
        Ok(&self.packet[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize) -> Vec<[i16; FRAME_16K]> {
        (0..frames)
            .map(|f| {
                let mut a = [0i16; FRAME_16K];
                for (i, s) in a.iter_mut().enumerate() {
                    let t = (f * FRAME_16K + i) as f32 / 16000.0;
                    *s = ((t * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16;
                }
                a
            })
            .collect()
    }

    #[test]
    fn every_packet_becomes_one_16k_frame() {
        let mut tx = OpusSender::new().unwrap();
        let mut rx = OpusReceiver::new().unwrap();
        let mut out = Vec::new();
        for (i, f) in tone(10).iter().enumerate() {
            let p = tx.encode(f).unwrap().to_vec();
            rx.push(1000 + i as u16, &p, &mut out);
        }
        assert_eq!(out.len(), 10 * FRAME_16K);
        let energy: f64 = out[5 * FRAME_16K..].iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / (5 * FRAME_16K) as f64;
        assert!(energy.sqrt() > 2000.0, "the tone survives the round trip: rms {}", energy.sqrt());
    }

    #[test]
    fn a_lost_packet_is_rebuilt_and_a_late_one_dropped() {
        let mut tx = OpusSender::new().unwrap();
        let mut rx = OpusReceiver::new().unwrap();
        let packets: Vec<Vec<u8>> = tone(8).iter().map(|f| tx.encode(f).unwrap().to_vec()).collect();
        let mut out = Vec::new();
        // seq wraps through 65535 → 0 on purpose; packet 3 is lost, then arrives late.
        for (i, p) in packets.iter().enumerate() {
            if i != 3 {
                rx.push(65533u16.wrapping_add(i as u16), p, &mut out);
            }
        }
        rx.push(65533u16.wrapping_add(3), &packets[3], &mut out);
        assert_eq!(out.len(), 8 * FRAME_16K, "the gap is filled, nothing doubled");
        assert_eq!(rx.stats.fec_frames + rx.stats.plc_frames, 1);
        assert_eq!(rx.stats.late, 1);
    }

    #[test]
    fn keypad_packets_in_the_sequence_are_not_loss() {
        let mut tx = OpusSender::new().unwrap();
        let mut rx = OpusReceiver::new().unwrap();
        let f = tone(1)[0];
        let mut out = Vec::new();
        rx.push(1, tx.encode(&f).unwrap(), &mut out);
        rx.skip(2);
        rx.skip(3);
        rx.push(4, tx.encode(&f).unwrap(), &mut out);
        assert_eq!((rx.stats.fec_frames, rx.stats.plc_frames), (0, 0));
        assert_eq!(out.len(), 2 * FRAME_16K);
    }

    #[test]
    fn a_long_pause_is_not_filled_with_invented_audio() {
        let mut tx = OpusSender::new().unwrap();
        let mut rx = OpusReceiver::new().unwrap();
        let f = tone(1)[0];
        let mut out = Vec::new();
        rx.push(1, tx.encode(&f).unwrap(), &mut out);
        rx.push(500, tx.encode(&f).unwrap(), &mut out);
        assert_eq!(out.len(), 2 * FRAME_16K);
    }
}
