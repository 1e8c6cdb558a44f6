//! Where calls arrive: SIP signaling and SDP negotiation.
pub mod sdp;
pub mod sip;
