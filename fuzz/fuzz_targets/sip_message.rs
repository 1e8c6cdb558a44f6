//! A SIP message off the wire, over UDP or TCP (the first byte picks), through the screen and
//! rsipstack's parser, as the gateway meets it before any dialog exists.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, message)) = data.split_first() {
        let _ = frontline::edge::sip::screen_incoming(message, pick & 1 == 1);
    }
});
