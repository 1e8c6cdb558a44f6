//! An INVITE's SDP offer: parsed, negotiated against the gateway's codecs, and answered.
#![no_main]
use frontline::edge::sdp;
use frontline::media::g711::G711;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(offer) = sdp::parse(text) else { return };
    if let Ok(n) = sdp::negotiate(&offer, &[G711::Ulaw, G711::Alaw]) {
        let _ = sdp::answer(&n, std::net::Ipv4Addr::LOCALHOST.into(), 40000, 1, 1);
    }
});
