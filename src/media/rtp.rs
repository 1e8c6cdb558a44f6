//! RTP (RFC 3550) packet parsing and writing, sans-IO.
//!
//! Parsing borrows from the datagram (no copy); writing appends into a caller buffer so the
//! sender reuses one `Vec` for the whole call.

use thiserror::Error;

/// Fixed RTP header length (without CSRCs or extension).
pub const HEADER_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("packet too short for an RTP header ({0} bytes)")]
    TooShort(usize),
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    #[error("CSRC list ({0} entries) runs past the end of the packet")]
    CsrcOverflow(u8),
    #[error("header extension runs past the end of the packet")]
    ExtensionOverflow,
    #[error("padding length {0} is invalid for the packet")]
    BadPadding(u8),
}

/// A parsed RTP packet borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram. Any malformed input is an error, never a panic.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if buf.len() < HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let padding = buf[0] & 0x20 != 0;
        let extension = buf[0] & 0x10 != 0;
        let cc = buf[0] & 0x0F;
        let marker = buf[1] & 0x80 != 0;
        let pt = buf[1] & 0x7F;
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);

        let mut start = HEADER_LEN + 4 * cc as usize;
        if start > buf.len() {
            return Err(RtpError::CsrcOverflow(cc));
        }
        if extension {
            // 16-bit profile id, 16-bit length in 32-bit words, then the words.
            if start + 4 > buf.len() {
                return Err(RtpError::ExtensionOverflow);
            }
            let words = u16::from_be_bytes([buf[start + 2], buf[start + 3]]) as usize;
            start += 4 + 4 * words;
            if start > buf.len() {
                return Err(RtpError::ExtensionOverflow);
            }
        }
        let mut end = buf.len();
        if padding {
            // The last byte counts the padding bytes, itself included, so it can't be zero.
            let pad = buf[buf.len() - 1];
            if pad == 0 || pad as usize > end - start {
                return Err(RtpError::BadPadding(pad));
            }
            end -= pad as usize;
        }
        Ok(RtpPacket {
            pt,
            marker,
            seq,
            ts,
            ssrc,
            payload: &buf[start..end],
        })
    }
}

/// The sending side of one RTP stream: owns SSRC, sequence number and timestamp.
#[derive(Debug, Clone)]
pub struct RtpSender {
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
    /// RTP timestamp of the next packet's first sample.
    pub ts: u32,
    packets: u64,
    octets: u64,
}

impl RtpSender {
    /// A sender with given initial values (tests, or continuing a stream after re-INVITE).
    pub fn new(ssrc: u32, seq: u16, ts: u32) -> RtpSender {
        RtpSender {
            ssrc,
            seq,
            ts,
            packets: 0,
            octets: 0,
        }
    }

    /// A sender with random SSRC, sequence number and timestamp, as RFC 3550 §5.1 asks (it
    /// makes known-plaintext attacks on encryption and SSRC collisions unlikely).
    pub fn random() -> RtpSender {
        RtpSender::new(rand::random(), rand::random(), rand::random())
    }

    /// Packets written so far (for RTCP sender reports and stats).
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Payload octets written so far.
    pub fn octets(&self) -> u64 {
        self.octets
    }

    fn header(&self, pt: u8, marker: bool, ts: u32, out: &mut Vec<u8>) {
        out.push(0x80); // V=2, no padding, no extension, no CSRC.
        out.push(((marker as u8) << 7) | (pt & 0x7F));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
    }

    /// Writes one audio packet into `out` (cleared first) and advances the stream: the
    /// sequence number by one, the timestamp by `samples` (both wrapping). Set `marker` on the
    /// first packet of a talkspurt (RFC 3551 §4.1) so the far end's jitter buffer can resync.
    pub fn audio(&mut self, pt: u8, payload: &[u8], samples: u32, marker: bool, out: &mut Vec<u8>) {
        out.clear();
        self.header(pt, marker, self.ts, out);
        out.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(samples);
        self.packets += 1;
        self.octets += payload.len() as u64;
    }

    /// Advances the timestamp without sending, for time that passes with no packet (silence
    /// suppression, or after a DTMF event ends) so the receiver sees the real elapsed time.
    pub fn skip(&mut self, samples: u32) {
        self.ts = self.ts.wrapping_add(samples);
    }

    /// Writes one RFC 4733 telephone-event packet into `out` (cleared first). All packets of an
    /// event carry the event's start timestamp (the current `ts`), so the timestamp does not
    /// advance here; the sequence number does. `duration` is in timestamp units since the event
    /// began. Send the first packet with `marker` set, and the end packet three times (RFC 4733
    /// §2.5.1.4); after the last one, call [`RtpSender::skip`] with the event's duration.
    #[allow(clippy::too_many_arguments)]
    pub fn dtmf(
        &mut self,
        pt: u8,
        event: u8,
        end: bool,
        volume: u8,
        duration: u16,
        marker: bool,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        self.header(pt, marker, self.ts, out);
        out.push(event);
        out.push(((end as u8) << 7) | (volume & 0x3F));
        out.extend_from_slice(&duration.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        self.packets += 1;
        self.octets += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_what_we_write_and_advance_with_wrap() {
        let mut tx = RtpSender::new(0xDEADBEEF, 65534, u32::MAX - 100);
        let mut buf = Vec::with_capacity(200);
        let payload = [0xFFu8; 160];

        tx.audio(0, &payload, 160, true, &mut buf);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!((p.pt, p.marker, p.seq, p.ts, p.ssrc), (0, true, 65534, u32::MAX - 100, 0xDEADBEEF));
        assert_eq!(p.payload, &payload[..]);

        tx.audio(0, &payload, 160, false, &mut buf);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!((p.marker, p.seq, p.ts), (false, 65535, 59));

        tx.audio(8, &payload[..80], 160, false, &mut buf);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!((p.pt, p.seq, p.ts, p.payload.len()), (8, 0, 219, 80));
        assert_eq!(tx.packets(), 3);
        assert_eq!(tx.octets(), 400);
    }

    #[test]
    fn dtmf_keeps_event_timestamp() {
        let mut tx = RtpSender::new(1, 10, 1000);
        let mut buf = Vec::new();
        tx.dtmf(101, 5, false, 10, 160, true, &mut buf);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!((p.pt, p.marker, p.seq, p.ts), (101, true, 10, 1000));
        assert_eq!(p.payload, &[5, 10, 0, 160]);
        tx.dtmf(101, 5, true, 10, 800, false, &mut buf);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!((p.seq, p.ts), (11, 1000));
        assert_eq!(p.payload, &[5, 0x80 | 10, 3, 32]);
        tx.skip(800);
        assert_eq!(tx.ts, 1800);
    }

    #[test]
    fn random_senders_differ() {
        let a = RtpSender::random();
        let b = RtpSender::random();
        assert!(a.ssrc != b.ssrc || a.seq != b.seq || a.ts != b.ts);
    }

    fn header(first: u8) -> Vec<u8> {
        let mut v = vec![first, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        // CC=2, X=1, P=1.
        let mut v = vec![0x80 | 0x20 | 0x10 | 2, 0x80 | 8, 0, 7, 0, 0, 1, 0, 0, 0, 0, 9];
        v.extend_from_slice(&[0xAA; 8]); // two CSRCs
        v.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // one-word extension
        v.extend_from_slice(&[10, 20, 30]); // payload
        v.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!((p.pt, p.marker, p.seq, p.ts, p.ssrc), (8, true, 7, 256, 9));
        assert_eq!(p.payload, &[10, 20, 30]);
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::TooShort(0)));
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        assert_eq!(RtpPacket::parse(&header(0x40)), Err(RtpError::BadVersion(1)));
        // Padding count larger than the payload.
        let mut v = header(0xA0);
        *v.last_mut().unwrap() = 5;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadPadding(5)));
        // Padding count zero.
        let mut v = header(0xA0);
        *v.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadPadding(0)));
        // 15 CSRCs announced, one present.
        assert_eq!(RtpPacket::parse(&header(0x8F)), Err(RtpError::CsrcOverflow(15)));
        // Extension header claims more words than exist.
        let mut v = header(0x90);
        v[14] = 0;
        v[15] = 9;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::ExtensionOverflow));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix of pseudo-random data parses or errors.
        let mut x: u32 = 0x1234_5678;
        let mut data = Vec::new();
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            data.push((x >> 8) as u8 | 0x80);
        }
        for start in 0..200 {
            for len in [0, 5, 12, 13, 16, 40, 100, 300] {
                let end = (start + len).min(data.len());
                let _ = RtpPacket::parse(&data[start..end]);
            }
        }
    }
}
