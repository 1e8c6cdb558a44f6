//! G.711 (ITU-T) µ-law and A-law companding, 8 kHz narrowband telephony.
//!
//! Encoding is done with bit math on each sample (a few shifts, no table lookups into 64 KiB
//! arrays that would thrash the cache); decoding uses 256-entry tables built at compile time,
//! because every received byte goes through it.

/// A G.711 variant as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// µ-law (North America, Japan): RTP static payload type 0, "PCMU".
    Ulaw,
    /// A-law (rest of the world): RTP static payload type 8, "PCMA".
    Alaw,
}

impl G711 {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(&self) -> u8 {
        match self {
            G711::Ulaw => 0,
            G711::Alaw => 8,
        }
    }

    /// The SDP encoding name.
    pub fn name(&self) -> &'static str {
        match self {
            G711::Ulaw => "PCMU",
            G711::Alaw => "PCMA",
        }
    }

    /// The codec for a static payload type, if it is one of ours.
    pub fn from_payload_type(pt: u8) -> Option<G711> {
        match pt {
            0 => Some(G711::Ulaw),
            8 => Some(G711::Alaw),
            _ => None,
        }
    }

    /// The codec for an SDP encoding name (case-insensitive, as RFC 4855 says).
    pub fn from_name(name: &str) -> Option<G711> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(G711::Ulaw)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(G711::Alaw)
        } else {
            None
        }
    }

    /// The byte that decodes to (near) zero: what a silent frame is filled with.
    pub fn silence_byte(&self) -> u8 {
        match self {
            G711::Ulaw => 0xFF,
            G711::Alaw => 0xD5,
        }
    }

    /// Decodes G.711 bytes to linear 16-bit samples, appending to `out` (8 kHz, one sample per
    /// byte). Appending lets callers decode several packets into one buffer; clear it first
    /// when you want only this payload. No allocation once `out` has the capacity.
    pub fn decode(&self, data: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            G711::Ulaw => &ULAW_DECODE,
            G711::Alaw => &ALAW_DECODE,
        };
        out.extend(data.iter().map(|&b| table[b as usize]));
    }

    /// Encodes linear 16-bit samples (8 kHz) to G.711 bytes, appending to `out`.
    pub fn encode(&self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            G711::Ulaw => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
            G711::Alaw => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
        }
    }

    /// Decodes one byte.
    pub fn decode_sample(&self, b: u8) -> i16 {
        match self {
            G711::Ulaw => ULAW_DECODE[b as usize],
            G711::Alaw => ALAW_DECODE[b as usize],
        }
    }

    /// Encodes one sample.
    pub fn encode_sample(&self, s: i16) -> u8 {
        match self {
            G711::Ulaw => ulaw_encode(s),
            G711::Alaw => alaw_encode(s),
        }
    }
}

/// µ-law adds this bias so that every segment boundary lands on a power of two.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law represents once the bias is added (14-bit range).
const ULAW_CLIP: i32 = 32635;

/// Encodes one sample to µ-law: sign, 3-bit segment (exponent), 4-bit step, all inverted.
pub fn ulaw_encode(sample: i16) -> u8 {
    let s = sample as i32;
    let (sign, mag) = if s < 0 { (0x80u8, -s) } else { (0u8, s) };
    let biased = mag.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7 (bias guarantees bit 7).
    let exponent = (31 - biased.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = ((biased >> (exponent + 3)) & 0x0F) as u8;
    !(sign | ((exponent as u8) << 4) | mantissa)
}

const fn ulaw_decode_const(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one sample to A-law: 13-bit magnitude, segment and step, even bits inverted (0x55).
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13 bits; the low three bits are below its resolution.
    let s = (sample as i32) >> 3;
    // Negative values use the one's complement, so -1 maps to magnitude 0 like +0.
    let (sign_mask, mag) = if s >= 0 { (0xD5u8, s) } else { (0x55u8, !s) };
    let code = if mag < 32 {
        // Segment 0 is linear with twice the resolution of segment 1's first step.
        (mag >> 1) as u8
    } else {
        // Segment n (1..=7) covers [16 << n, 32 << n).
        let segment = (31 - mag.leading_zeros() as i32 - 4).min(8);
        if segment >= 8 {
            0x7F
        } else {
            ((segment as u8) << 4) | ((mag >> segment) & 0x0F) as u8
        }
    };
    code ^ sign_mask
}

const fn alaw_decode_const(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let step = ((a & 0x0F) as i32) << 4;
    let magnitude = if segment == 0 {
        step + 8
    } else {
        (step + 0x108) << (segment - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode_const(i as u8)
        } else {
            ulaw_decode_const(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_DECODE: [i16; 256] = build_table(false);
static ALAW_DECODE: [i16; 256] = build_table(true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_code_points() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(G711::Ulaw.decode_sample(0xFF), 0);
        assert_eq!(G711::Ulaw.decode_sample(0x7F), 0);
        // Full scale.
        assert_eq!(G711::Ulaw.decode_sample(0x80), 32124);
        assert_eq!(G711::Ulaw.decode_sample(0x00), -32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_known_code_points() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(G711::Alaw.decode_sample(0xD5), 8);
        assert_eq!(G711::Alaw.decode_sample(0x55), -8);
        assert_eq!(G711::Alaw.decode_sample(0xAA), 32256);
        assert_eq!(G711::Alaw.decode_sample(0x2A), -32256);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_round_trips_exactly() {
        // Decoding then encoding any byte must give the byte back (except µ-law's negative
        // zero 0x7F, which is the same value as 0xFF).
        for codec in [G711::Ulaw, G711::Alaw] {
            for b in 0..=255u8 {
                let s = codec.decode_sample(b);
                let back = codec.encode_sample(s);
                if codec == G711::Ulaw && b == 0x7F {
                    assert_eq!(back, 0xFF);
                } else {
                    assert_eq!(back, b, "{codec:?} byte {b:#04x} -> {s} -> {back:#04x}");
                }
            }
        }
    }

    #[test]
    fn round_trip_error_is_within_the_segment_step() {
        // Companding error grows with amplitude: at most half a quantization step, about 1/32
        // of the value, plus a few units from the codecs' coarse low bits.
        for codec in [G711::Ulaw, G711::Alaw] {
            for s in (i16::MIN as i32..=i16::MAX as i32).step_by(7) {
                let s = s as i16;
                let d = codec.decode_sample(codec.encode_sample(s)) as i32;
                let err = (d - s as i32).abs();
                let mag = (s as i32).abs();
                let bound = mag / 32 + 16;
                assert!(err <= bound, "{codec:?}: {s} -> {d} (err {err} > {bound})");
            }
        }
    }

    #[test]
    fn monotonic_decode() {
        // A sine through the codec must keep its shape: decoded values are ordered like inputs.
        for codec in [G711::Ulaw, G711::Alaw] {
            let mut prev = i32::MIN;
            for s in (i16::MIN as i32..=i16::MAX as i32).step_by(3) {
                let d = codec.decode_sample(codec.encode_sample(s as i16)) as i32;
                assert!(d >= prev, "{codec:?} not monotonic at {s}");
                prev = d;
            }
        }
    }

    #[test]
    fn buffers_append() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i as f32 * 0.2).sin() * 8000.0) as i16)
            .collect();
        for codec in [G711::Ulaw, G711::Alaw] {
            let mut bytes = Vec::new();
            codec.encode(&pcm, &mut bytes);
            assert_eq!(bytes.len(), 160);
            let mut out = vec![7i16];
            codec.decode(&bytes, &mut out);
            assert_eq!(out.len(), 161);
            assert_eq!(out[0], 7);
            for (a, b) in pcm.iter().zip(&out[1..]) {
                assert!((*a as i32 - *b as i32).abs() <= 8000 / 32 + 16);
            }
        }
        assert_eq!(G711::Ulaw.payload_type(), 0);
        assert_eq!(G711::Alaw.payload_type(), 8);
        assert_eq!(G711::Ulaw.name(), "PCMU");
        assert_eq!(G711::Alaw.name(), "PCMA");
        assert_eq!(G711::from_name("pcma"), Some(G711::Alaw));
    }
}
