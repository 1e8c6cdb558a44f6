//! frontline: a voice IVR gateway with an AI front line.
//!
//! The modules follow the path of a call (see `README.md`):
//! `edge` (SIP signaling, SDP) → `media` (RTP, codecs, jitter, VAD, endpointing) → `call` (one
//! task per call, the turn-taking state machine) → `speech` (whisper recognition, espeak-ng
//! synthesis) and `dialog` (the gRPC client of the brain). `brain` is the embedded playbook brain
//! that serves the same gRPC contract any external brain would. `http` serves the agent console; `web` holds what it shares with the WebRTC edge.
pub mod auth;
pub mod bench;
pub mod brain;
pub mod call;
pub mod chinese;
pub mod clock;
pub mod config;
pub mod dialog;
pub mod edge;
pub mod handoff;
pub mod http;
pub mod media;
pub mod metrics;
pub mod redact;
pub mod ops;
pub mod records;
pub mod speech;
pub mod sim;
pub mod stats;
pub mod triage;
pub mod web;

/// Generated gRPC contracts (`proto/`).
pub mod proto {
    pub mod dialog {
        tonic::include_proto!("frontline.dialog.v1");
    }
    pub mod ops {
        tonic::include_proto!("frontline.ops.v1");
    }
    /// Every contract above, encoded, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/frontline_descriptor.bin"));
}
