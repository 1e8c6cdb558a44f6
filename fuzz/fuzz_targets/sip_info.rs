//! A SIP INFO body (keypad digits from a PBX), with a Content-Type taken from the input's
//! first line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (std::str::from_utf8(&data[..at]).ok(), &data[at + 1..]),
        None => (None, data),
    };
    let _ = frontline::edge::sip::info::parse(content_type, body);
});
