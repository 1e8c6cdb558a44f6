//! Where calls arrive: SIP signaling and SDP negotiation, and browsers over WebRTC.
pub mod config;
pub mod sdp;
pub mod sip;
pub mod webrtc;

pub use config::RtpConfig;
