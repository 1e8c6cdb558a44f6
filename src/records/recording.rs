//! One stereo WAV per call: the caller on the left, what the gateway played (the bot's voice,
//! hold audio, the agent's voice during a bridge) on the right.
//!
//! Where the audio is tapped: in the call layer, shared by every media driver (RTP today,
//! WebRTC next). The caller side is the 16 kHz frames the call task receives, one per 20 ms
//! tick. The played side is taken from the commands the call sends its driver (`Play`,
//! `Live`, `Flush`): the recorder keeps a mirror of the driver's playout queue and takes one
//! 20 ms frame from it per caller frame, as the driver sends one per tick, so both channels
//! advance on the same clock.
//!
//! All file work happens on the recording's own thread, fed by a channel: the media path only
//! moves buffers. The header is rewritten every second (`WavWriter::flush`), so a gateway
//! killed mid-call leaves a playable file with at most the last second missing.

use crate::media::session::{MediaCommand, FRAME_16K};
use serde::Deserialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::mpsc as tokio_mpsc;

/// Frames between header updates: one second.
const FLUSH_EVERY_FRAMES: u32 = 50;
/// Feeds that may wait for the writer thread: about 30 s of a call. A slow disk catches up
/// from here; a stuck one costs each call at most this much memory, and what does not fit is
/// dropped and counted, never waited for on the media path.
const QUEUE_FEEDS: usize = 1500;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Record every call to `<dir>/<call id>.wav`.
    pub enabled: bool,
    pub dir: PathBuf,
    /// 16000 (the gateway's internal rate) or 8000 (telephone rate, half the size).
    pub sample_rate: u32,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig { enabled: false, dir: PathBuf::from("var/recordings"), sample_rate: 16000 }
    }
}

impl RecordingConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.sample_rate != 16000 && self.sample_rate != 8000 {
            return Err(("recording.sample_rate", format!("{} Hz: must be 16000 or 8000", self.sample_rate)));
        }
        Ok(())
    }

    /// Start-up check: the folder exists (created) and takes a file, so a wrong path fails at
    /// start, not silently on the first call.
    pub fn check_writable(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let probe = self.dir.join(".frontline-write-test");
        std::fs::create_dir_all(&self.dir)
            .and_then(|_| std::fs::write(&probe, b"ok"))
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| {
                format!("recordings folder {}: {e} (make it writable, set recording.dir, or set recording.enabled = false)", self.dir.display())
            })
    }
}

enum Feed {
    Caller(Box<[i16; FRAME_16K]>),
    Played(Vec<i16>),
    Flush,
}

/// The call's handle on its recording. Dropping it finishes the file.
pub struct CallRecording {
    feeder: Feeder,
    path: PathBuf,
}

/// The sending end of a recording's queue, shared with the playout tap.
#[derive(Clone)]
struct Feeder {
    tx: mpsc::SyncSender<Feed>,
    dropped: Arc<AtomicU64>,
    path: Arc<PathBuf>,
}

impl Feeder {
    fn send(&self, feed: Feed) {
        if let Err(mpsc::TrySendError::Full(_)) = self.tx.try_send(feed) {
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(path = %self.path.display(), "recording: the disk is not keeping up, audio is being dropped from the file");
            }
        }
    }
}

impl Drop for CallRecording {
    fn drop(&mut self) {
        let dropped = self.feeder.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(path = %self.path.display(), dropped_feeds = dropped, "recording finished with gaps: the disk did not keep up");
        }
    }
}

impl CallRecording {
    /// Creates `<dir>/<call_id>.wav` and its writer thread. An error (disk full, no folder) is
    /// logged by the caller, and the call goes on unrecorded.
    pub fn start(config: &RecordingConfig, call_id: &str) -> std::io::Result<CallRecording> {
        std::fs::create_dir_all(&config.dir)?;
        let path = config.dir.join(format!("{}.wav", sanitize(call_id)));
        let spec = hound::WavSpec { channels: 2, sample_rate: config.sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let writer = hound::WavWriter::create(&path, spec).map_err(to_io)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_FEEDS);
        let decimate = config.sample_rate == 8000;
        let shown = path.clone();
        std::thread::Builder::new().name("call-recording".into()).spawn(move || write_loop(writer, rx, decimate, &shown))?;
        let feeder = Feeder { tx, dropped: Arc::new(AtomicU64::new(0)), path: Arc::new(path.clone()) };
        Ok(CallRecording { feeder, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 20 ms of the caller: advances both channels by one frame.
    pub fn caller(&self, frame: &[i16; FRAME_16K]) {
        self.feeder.send(Feed::Caller(Box::new(*frame)));
    }

    /// Puts a tee in front of the media driver's command channel: every command still goes to
    /// the driver, in order, and the audio it will play is copied to this recording.
    pub fn tap(&self, driver: tokio_mpsc::Sender<MediaCommand>) -> tokio_mpsc::Sender<MediaCommand> {
        let (tx, mut rx) = tokio_mpsc::channel::<MediaCommand>(64);
        let feed = self.feeder.clone();
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                let copy = match &cmd {
                    MediaCommand::Play { pcm_16k, .. } => Some(Feed::Played(pcm_16k.clone())),
                    MediaCommand::Live(frame) => Some(Feed::Played(frame.to_vec())),
                    MediaCommand::Flush => Some(Feed::Flush),
                    _ => None,
                };
                if let Some(copy) = copy {
                    feed.send(copy);
                }
                if driver.send(cmd).await.is_err() {
                    break;
                }
            }
        });
        tx
    }
}

fn write_loop(mut wav: hound::WavWriter<std::io::BufWriter<std::fs::File>>, rx: mpsc::Receiver<Feed>, decimate: bool, path: &Path) {
    let mut mirror = PlayoutMirror::default();
    let mut frames = 0u32;
    let mut failed = false;
    while let Ok(feed) = rx.recv() {
        match feed {
            Feed::Played(pcm) => mirror.queue(&pcm),
            Feed::Flush => mirror.flush(),
            Feed::Caller(caller) => {
                let played = mirror.next_frame();
                if failed {
                    continue;
                }
                let step = if decimate { 2 } else { 1 };
                let mut result = Ok(());
                for i in (0..FRAME_16K).step_by(step) {
                    // Averaging each pair is the low-pass that keeps 8 kHz output from aliasing badly.
                    let (l, r) = if decimate {
                        (avg(caller[i], caller[i + 1]), avg(played[i], played[i + 1]))
                    } else {
                        (caller[i], played[i])
                    };
                    result = result.and_then(|_| wav.write_sample(l)).and_then(|_| wav.write_sample(r));
                }
                frames += 1;
                if frames % FLUSH_EVERY_FRAMES == 0 {
                    result = result.and_then(|_| wav.flush());
                }
                if let Err(e) = result {
                    failed = true;
                    metrics::counter!("frontline_recording_errors_total").increment(1);
                    tracing::error!(path = %path.display(), error = %e, "call recording stopped (disk full?); the call goes on");
                }
            }
        }
    }
    if !failed {
        if let Err(e) = wav.finalize() {
            tracing::error!(path = %path.display(), error = %e, "call recording not finalized");
        }
    }
}

fn avg(a: i16, b: i16) -> i16 {
    ((i32::from(a) + i32::from(b)) / 2) as i16
}

/// The recorder's copy of the driver's playout queue (sans-IO).
#[derive(Default)]
struct PlayoutMirror {
    queued: VecDeque<i16>,
}

impl PlayoutMirror {
    fn queue(&mut self, pcm: &[i16]) {
        self.queued.extend(pcm.iter().copied());
    }

    fn flush(&mut self) {
        self.queued.clear();
    }

    /// What the driver sends this tick: the next 20 ms, padded with silence.
    fn next_frame(&mut self) -> [i16; FRAME_16K] {
        let mut frame = [0i16; FRAME_16K];
        for (slot, s) in frame.iter_mut().zip(self.queued.drain(..FRAME_16K.min(self.queued.len()))) {
            *slot = s;
        }
        frame
    }
}

/// Call ids are ours, but a file name must never walk out of the folder.
fn sanitize(call_id: &str) -> String {
    call_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn to_io(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_plays_what_was_queued_then_silence_and_forgets_on_flush() {
        let mut m = PlayoutMirror::default();
        m.queue(&vec![7; FRAME_16K + 10]);
        assert!(m.next_frame().iter().all(|&s| s == 7));
        let second = m.next_frame();
        assert!(second[..10].iter().all(|&s| s == 7) && second[10..].iter().all(|&s| s == 0));
        m.queue(&[5; 100]);
        m.flush();
        assert!(m.next_frame().iter().all(|&s| s == 0));
    }

    #[test]
    fn a_recording_is_readable_before_it_is_finalized() {
        let dir = tempfile::tempdir().unwrap();
        let config = RecordingConfig { enabled: true, dir: dir.path().into(), sample_rate: 8000 };
        let rec = CallRecording::start(&config, "c/1").unwrap();
        assert!(rec.path().ends_with("c_1.wav"));
        rec.feeder.send(Feed::Played(vec![1000; FRAME_16K * 60]));
        for _ in 0..60 {
            rec.caller(&[-500; FRAME_16K]);
        }
        // Not dropped (a crash would not drop it): the header written at the 50th frame holds.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let reader = hound::WavReader::open(rec.path()).unwrap();
        assert_eq!((reader.spec().channels, reader.spec().sample_rate), (2, 8000));
        assert!(reader.len() >= 50 * 160 * 2, "{} samples", reader.len());
        let samples: Vec<i16> = reader.into_samples().map(|s| s.unwrap()).take(4).collect();
        assert_eq!(samples, [-500, 1000, -500, 1000]);
    }

    #[test]
    fn a_stuck_writer_costs_dropped_audio_never_a_blocked_call() {
        let (tx, rx) = mpsc::sync_channel(2);
        let feeder = Feeder { tx, dropped: Arc::new(AtomicU64::new(0)), path: Arc::new(PathBuf::from("stuck.wav")) };
        let t = std::time::Instant::now();
        for _ in 0..5 {
            feeder.send(Feed::Caller(Box::new([0; FRAME_16K])));
        }
        assert!(t.elapsed() < std::time::Duration::from_millis(100), "sending waited for the writer");
        assert_eq!(feeder.dropped.load(Ordering::Relaxed), 3, "two fit in the queue, three are counted as dropped");
        assert_eq!(rx.try_iter().count(), 2);
    }

    /// What recording costs: the writer thread's work for one minute of call, measured on the
    /// test thread (`cargo test --release --lib recording_cost -- --nocapture`).
    #[test]
    fn recording_cost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cost.wav");
        let spec = hound::WavSpec { channels: 2, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let (tx, rx) = mpsc::channel();
        let frames = 3000; // one minute
        for i in 0..frames {
            if i % 100 == 0 {
                tx.send(Feed::Played(vec![300; FRAME_16K * 50])).unwrap();
            }
            tx.send(Feed::Caller(Box::new([(i % 200) as i16; FRAME_16K]))).unwrap();
        }
        drop(tx);
        let t = std::time::Instant::now();
        write_loop(hound::WavWriter::create(&path, spec).unwrap(), rx, false, &path);
        let cost = t.elapsed();
        println!("recording: {:.1} ms of writer-thread time per minute of call ({:.3}% of one core)", cost.as_secs_f64() * 1000.0, cost.as_secs_f64() / 60.0 * 100.0);
        assert_eq!(hound::WavReader::open(&path).unwrap().len(), frames * FRAME_16K as u32 * 2);
        assert!(cost.as_secs_f64() < 3.0, "recording a minute must cost far less than a minute: {cost:?}");
    }
}
