//! Turn-taking policy, sans-IO: when the caller has finished speaking, when to decode what
//! they said so far, and what to do with the bot's voice when they speak over it. The call
//! task feeds these with listener events and transcripts; they answer with decisions and
//! never touch a clock, a channel or a decoder themselves.

pub mod barge_in;
pub mod streaming;
pub mod wait;

pub use barge_in::{heard_split, BargeIn, VoiceAction};
pub use streaming::{DecodeKind, Streaming};
pub use wait::{silence_wait, WaitKind};
