//! RTP off the wire: the header parsed, the payload decoded as G.711 and fed to the RFC 4733
//! keypad assembler, as the media path does with whatever arrives on a call's port.
#![no_main]
use frontline::media::dtmf::DtmfAssembler;
use frontline::media::g711::G711;
use frontline::media::rtp::RtpPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RtpPacket::parse(data) else { return };
    let mut pcm = Vec::new();
    G711::Ulaw.decode(p.payload, &mut pcm);
    G711::Alaw.decode(p.payload, &mut pcm);
    let mut keys = DtmfAssembler::new();
    let _ = keys.push(p.ssrc, p.ts, p.payload, 0);
    let _ = keys.push(p.ssrc, p.ts.wrapping_add(160), p.payload, 20);
    let _ = keys.poll(10_000);
});
