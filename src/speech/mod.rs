//! Speech recognition (whisper) and synthesis (espeak-ng), and the models they need.
pub mod config;
pub mod models;
pub mod score;
pub mod stt;
pub mod tts;
