//! The call's voice: turns the brain's text into audio queued on the media driver, in order.
//!
//! Synthesis runs on its own task so the call task keeps listening while a long reply is
//! being synthesized; sentences are queued for playout as soon as each is ready, so the
//! caller hears the first sentence while the rest is still being synthesized. Barge-in
//! aborts this task and starts a fresh one: nothing stale is left to play.

use crate::media::session::MediaCommand;
use crate::speech::tts::{Lang, ReplyPace, Tts};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

pub struct SayJob {
    pub text: String,
    pub lang: Lang,
    /// The brain's `last` flag: this job ends the bot's reply.
    pub ends_reply: bool,
    /// Audio to queue as it is instead of synthesizing `text` (hold audio); `text` labels it.
    pub audio: Option<Vec<i16>>,
}

#[derive(Debug)]
pub enum SpeakerEvent {
    /// Audio for `tag` was synthesized and queued for playout; `samples` at 16 kHz.
    Queued { tag: u64, text: String, samples: usize },
    /// The reply is fully queued; `last_tag` is the final audio of it, if any was produced.
    ReplyQueued { last_tag: Option<u64> },
    Failed(String),
}

pub struct Speaker {
    jobs: mpsc::Sender<SayJob>,
    task: tokio::task::JoinHandle<()>,
}

impl Speaker {
    /// `tags` is shared with the speakers this one replaces, so late playout events of an
    /// aborted speaker can never be confused with the new one's.
    pub fn spawn(tts: Tts, media: mpsc::Sender<MediaCommand>, events: mpsc::Sender<SpeakerEvent>, tags: Arc<AtomicU64>) -> Speaker {
        let (jobs, mut rx) = mpsc::channel::<SayJob>(32);
        let task = tokio::spawn(async move {
            let mut last_tag = None;
            // What this reply has handed to playout: pieces are cut to keep ahead of it.
            let mut pace = ReplyPace::new();
            while let Some(job) = rx.recv().await {
                if let Some(pcm) = job.audio {
                    let tag = tags.fetch_add(1, Ordering::Relaxed) + 1;
                    last_tag = Some(tag);
                    let samples = pcm.len();
                    if media.send(MediaCommand::Play { pcm_16k: pcm, tag }).await.is_err() {
                        return;
                    }
                    let _ = events.send(SpeakerEvent::Queued { tag, text: job.text, samples }).await;
                } else if !job.text.trim().is_empty() {
                    let mut chunks = tts.synthesize_stream(&job.text, job.lang, &pace);
                    while let Some(chunk) = chunks.recv().await {
                        match chunk {
                            Ok(chunk) if !chunk.pcm_16k.is_empty() => {
                                let tag = tags.fetch_add(1, Ordering::Relaxed) + 1;
                                last_tag = Some(tag);
                                let samples = chunk.pcm_16k.len();
                                if media.send(MediaCommand::Play { pcm_16k: chunk.pcm_16k, tag }).await.is_err() {
                                    return; // media is gone: the call is ending
                                }
                                let _ = events.send(SpeakerEvent::Queued { tag, text: chunk.text, samples }).await;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                let _ = events.send(SpeakerEvent::Failed(e.to_string())).await;
                            }
                        }
                    }
                }
                if job.ends_reply {
                    pace = ReplyPace::new();
                    let _ = events.send(SpeakerEvent::ReplyQueued { last_tag: last_tag.take() }).await;
                }
            }
        });
        Speaker { jobs, task }
    }

    pub async fn say(&self, job: SayJob) {
        let _ = self.jobs.send(job).await;
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
