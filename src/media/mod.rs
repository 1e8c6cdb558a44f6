//! Audio between the wire and the call: RTP, G.711, jitter buffer, DTMF, resampling, VAD,
//! endpointing. Everything inside the gateway is 16 kHz mono in 20 ms frames.
pub mod dtmf;
pub mod endpoint;
pub mod g711;
pub mod jitter;
pub mod level;
pub mod playout;
pub mod resample;
pub mod rtp;
pub mod session;
pub mod utterances;
pub mod vad;
pub mod wav;
