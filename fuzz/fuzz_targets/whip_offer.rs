//! A browser's WHIP offer (POST /whip body), checked before any peer connection is made.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frontline::edge::webrtc::offer::check(text);
    }
});
