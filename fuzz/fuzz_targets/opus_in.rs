//! Opus packets from a browser, with sequence numbers from the input (gaps, reorder, wrap),
//! decoded the way the WebRTC inbound path does.
#![no_main]
use frontline::edge::webrtc::codec::OpusReceiver;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut rx) = OpusReceiver::new() else { return };
    let mut out = Vec::new();
    // Packets: [seq hi, seq lo, len, payload...], repeated.
    let mut rest = data;
    while rest.len() >= 3 {
        let seq = u16::from_be_bytes([rest[0], rest[1]]);
        let len = (rest[2] as usize).min(rest.len() - 3);
        rx.push(seq, &rest[3..3 + len], &mut out);
        rest = &rest[3 + len..];
        out.truncate(48_000);
    }
});
