//! Adaptive jitter buffer for one 8 kHz G.711 stream, sans-IO.
//!
//! Audio is stored by RTP timestamp in a fixed ring of samples (G.711 is one byte per sample),
//! not by packet: that makes any packetization (10, 20, 30 ms) play out in 20 ms frames, and
//! makes reordering, duplicates and overlap fall out of one presence bitmap. Sequence numbers
//! are only used for statistics, duplicate detection and telling a restart from a late packet.
//!
//! Playout is driven by the caller's 20 ms tick (`pop`). The buffer starts playing once the
//! target depth is buffered; when it runs dry (underrun, or the end of a talkspurt) it goes back
//! to buffering, which is where the playout delay adapts, as in classic adaptive playout: the
//! next talkspurt starts after the new target depth. Within a long continuous stream the depth
//! also adapts by skipping a frame (too deep) or stretching with one concealed frame (too
//! shallow).
//!
//! Nothing here allocates after construction.

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: u32 = 160;
const FRAME_MS: u32 = 20;
const SAMPLES_PER_MS: u32 = 8;
/// Ring size in samples: 2.048 s, a power of two so that `ts % CAP` stays consistent across
/// the 32-bit timestamp wrap.
const CAP: u32 = 16384;
const MASK: u32 = CAP - 1;
/// A payload longer than this is not 8 kHz G.711 telephony (that would be > 250 ms a packet).
const MAX_PAYLOAD: usize = 2000;
/// Sequence jumps beyond these (RFC 3550 A.1's values) mean the source restarted.
const MAX_DROPOUT: i64 = 3000;
const MAX_MISORDER: i64 = 100;
/// Frames of an underrun reported as concealment (counted in `concealed`); after that the
/// stream is considered silent (talkspurt ended) and the frames, still `Concealed`, are not
/// counted.
const UNDERRUN_COUNTED: u32 = 3;
/// Late packets push the depth up by one frame; each boost decays after this long.
const LATE_BOOST_DECAY_MS: u64 = 10_000;

/// Bounds of the adaptive playout depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    pub min_depth_ms: u32,
    pub max_depth_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            min_depth_ms: 40,
            max_depth_ms: 200,
        }
    }
}

/// One 20 ms frame of playout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterFrame<'a> {
    /// 160 bytes of G.711 payload.
    Audio(&'a [u8]),
    /// Nothing to play for this frame (lost, late, or a pause): the caller conceals it,
    /// repeating and fading the last frame, then silence.
    Concealed,
}

/// Counters since construction (they survive resyncs and resets).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Distinct packets received (duplicates excluded, late ones included).
    pub received: u64,
    /// Packets the sequence numbers say were sent but never arrived (RFC 3550 cumulative loss).
    pub lost: u64,
    /// Packets that arrived after their time had been played; dropped.
    pub late: u64,
    /// Packets received twice; the copy is dropped.
    pub duplicates: u64,
    /// Frames returned as `Concealed` because audio was missing.
    pub concealed: u64,
    /// Times the buffer threw its state away because the stream jumped (clock or sequence
    /// restart, SSRC change).
    pub resyncs: u64,
    /// Interarrival jitter (RFC 3550 §6.4.1 estimator), in ms.
    pub jitter_ms: f32,
    /// Current target playout depth, in ms.
    pub depth_ms: u32,
    /// Audio actually buffered ahead of the playout point, in ms.
    pub buffered_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting audio until the target depth is reached. `floor` is where playout stopped
    /// (anything before it is late); `first_arrival_ms` is when the first buffered packet came.
    Buffering {
        first_arrival_ms: Option<u64>,
        floor: Option<u32>,
        underrun_frames: u32,
    },
    /// Playing; `play_ts` is the timestamp of the next frame.
    Playing,
}

/// How a packet's sequence number relates to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqClass {
    First,
    Duplicate,
    Jump,
    /// Newer than anything seen, by this many.
    Newer(i64),
    /// Older than the newest, by this many (reordered or late).
    Older(i64),
}

/// A gap in timestamps between two consecutive sequence numbers: the sender paused
/// (silence suppression) without losing anything, so playout should skip the pause instead of
/// concealing through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pause {
    start_ts: u32,
    resume_ts: u32,
    resume_arrival_ms: u64,
}

/// The jitter buffer. See the module documentation.
pub struct JitterBuffer {
    cfg: JitterConfig,
    ring: Box<[u8]>,
    present: Box<[u64]>,
    frame: [u8; FRAME_SAMPLES as usize],
    state: State,
    play_ts: u32,
    /// Buffered data spans [lo_ts, hi_ts) when `has_data`.
    has_data: bool,
    lo_ts: u32,
    hi_ts: u32,
    pause: Option<Pause>,
    ssrc: Option<u32>,

    // Sequence tracking (RFC 3550 A.1 style extended sequence numbers).
    max_seq: i64,
    base_seq: i64,
    seq_started: bool,
    /// Bit i set: sequence `max_seq - i` was received.
    seen: u128,
    /// End timestamp of the newest packet, for pause detection.
    newest_end_ts: u32,
    expected_prior: u64,
    received_epoch: u64,

    // Jitter estimation.
    prev_arrival: Option<(u64, u32)>,
    jitter: f64,
    late_boost_ms: u32,
    last_boost_change_ms: u64,
    /// Frames since the last stretch/skip, so depth changes are spread out.
    since_adjust: u32,
    last_was_audio: bool,

    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    /// A buffer with the default depth bounds (40–200 ms).
    pub fn new() -> JitterBuffer {
        Self::with_config(JitterConfig::default())
    }

    pub fn with_config(cfg: JitterConfig) -> JitterBuffer {
        let mut cfg = cfg;
        cfg.min_depth_ms = cfg.min_depth_ms.clamp(FRAME_MS, 1000);
        cfg.max_depth_ms = cfg.max_depth_ms.clamp(cfg.min_depth_ms, 1000);
        let mut jb = JitterBuffer {
            cfg,
            ring: vec![0u8; CAP as usize].into_boxed_slice(),
            present: vec![0u64; (CAP / 64) as usize].into_boxed_slice(),
            frame: [0; FRAME_SAMPLES as usize],
            state: State::Buffering {
                first_arrival_ms: None,
                floor: None,
                underrun_frames: 0,
            },
            play_ts: 0,
            has_data: false,
            lo_ts: 0,
            hi_ts: 0,
            pause: None,
            ssrc: None,
            max_seq: 0,
            base_seq: 0,
            seq_started: false,
            seen: 0,
            newest_end_ts: 0,
            expected_prior: 0,
            received_epoch: 0,
            prev_arrival: None,
            jitter: 0.0,
            late_boost_ms: 0,
            last_boost_change_ms: 0,
            since_adjust: 0,
            last_was_audio: false,
            stats: JitterStats::default(),
        };
        jb.stats.depth_ms = jb.target_ms();
        jb
    }

    /// Statistics so far.
    pub fn stats(&self) -> JitterStats {
        let mut s = self.stats;
        let expected = self.expected_prior + self.expected_epoch();
        s.lost = expected.saturating_sub(self.received_epoch_total());
        s.jitter_ms = (self.jitter / SAMPLES_PER_MS as f64) as f32;
        s.depth_ms = self.target_ms();
        s.buffered_ms = self.buffered_samples() / SAMPLES_PER_MS;
        s
    }

    fn expected_epoch(&self) -> u64 {
        if self.seq_started {
            (self.max_seq - self.base_seq + 1) as u64
        } else {
            0
        }
    }

    fn received_epoch_total(&self) -> u64 {
        // `received_epoch` accumulates across epochs just like `expected_prior` does.
        self.received_epoch
    }

    /// Forgets the stream (new source): buffered audio, sequence state and jitter estimate.
    /// Counters are kept.
    pub fn reset(&mut self) {
        self.resync();
        self.prev_arrival = None;
        self.jitter = 0.0;
        self.late_boost_ms = 0;
    }

    /// Pushes one parsed RTP packet, resetting first when its SSRC differs from the previous
    /// packet's (a new source: its sequence numbers and timestamps are unrelated).
    pub fn push_packet(&mut self, pkt: &crate::media::rtp::RtpPacket<'_>, arrival_ms: u64) {
        match self.ssrc {
            Some(s) if s != pkt.ssrc => {
                self.reset();
                self.stats.resyncs += 1;
            }
            _ => {}
        }
        self.ssrc = Some(pkt.ssrc);
        self.push(pkt.seq, pkt.ts, pkt.payload, arrival_ms);
    }

    /// Pushes one packet's payload (G.711 bytes, 8 kHz) with its RTP sequence number and
    /// timestamp, and the local arrival time.
    pub fn push(&mut self, seq: u16, ts: u32, payload: &[u8], arrival_ms: u64) {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return;
        }
        let class = self.classify(seq);
        match class {
            SeqClass::Duplicate => {
                self.stats.duplicates += 1;
                return;
            }
            SeqClass::Jump => {
                self.resync();
                self.stats.resyncs += 1;
                self.accept_fresh(seq, ts, payload, arrival_ms);
                return;
            }
            SeqClass::First => {
                self.accept_fresh(seq, ts, payload, arrival_ms);
                return;
            }
            SeqClass::Newer(_) | SeqClass::Older(_) => {}
        }
        let newer = matches!(class, SeqClass::Newer(_));
        let len = payload.len() as u32;

        // Where does it go relative to what has been played?
        let floor = match self.state {
            State::Playing => Some(self.play_ts),
            State::Buffering { floor, .. } => floor,
        };
        if let Some(floor) = floor {
            let rel = ts.wrapping_sub(floor) as i32 as i64;
            if rel + len as i64 <= 0 {
                if newer {
                    // A new sequence number for audio that was already played: the far end
                    // restarted its clock. Follow it rather than dropping everything as late.
                    self.resync();
                    self.stats.resyncs += 1;
                    self.accept_fresh(seq, ts, payload, arrival_ms);
                } else {
                    self.commit_seq(class, seq, ts, len, arrival_ms);
                    self.note_late(arrival_ms);
                }
                return;
            }
        }
        // Would it fit in the ring next to what is buffered (or ahead of the playout point)?
        let fits = match self.state {
            State::Playing => {
                let rel = ts.wrapping_sub(self.play_ts) as i32 as i64;
                rel + len as i64 <= CAP as i64
            }
            State::Buffering { .. } => {
                if self.has_data {
                    let lo = if (ts.wrapping_sub(self.lo_ts) as i32) < 0 { ts } else { self.lo_ts };
                    let end = ts.wrapping_add(len);
                    let hi = if (end.wrapping_sub(self.hi_ts) as i32) > 0 { end } else { self.hi_ts };
                    let span = hi.wrapping_sub(lo) as i32 as i64;
                    (0..=CAP as i64).contains(&span)
                } else {
                    true
                }
            }
        };
        if !fits {
            // A timestamp jump far beyond the buffer while audio is still queued: the source's
            // clock jumped. Start over from this packet instead of stalling.
            self.resync();
            self.stats.resyncs += 1;
            self.accept_fresh(seq, ts, payload, arrival_ms);
            return;
        }
        self.commit_seq(class, seq, ts, len, arrival_ms);
        self.store(ts, payload, arrival_ms);
    }

    /// Takes the next 20 ms frame. Call every 20 ms. `None` until a stream has started (and
    /// after a reset); afterwards always a frame.
    pub fn pop(&mut self, now_ms: u64) -> Option<JitterFrame<'_>> {
        if self.late_boost_ms > 0 && now_ms.saturating_sub(self.last_boost_change_ms) >= LATE_BOOST_DECAY_MS {
            self.late_boost_ms = self.late_boost_ms.saturating_sub(FRAME_MS);
            self.last_boost_change_ms = now_ms;
        }
        let target = self.target_ms();

        if let State::Buffering {
            first_arrival_ms,
            floor,
            underrun_frames,
        } = self.state
        {
            let ready = match first_arrival_ms {
                Some(t0) if self.has_data => {
                    let span_ms = self.hi_ts.wrapping_sub(self.lo_ts) / SAMPLES_PER_MS;
                    // The depth is the delay from a packet's arrival to its playout: wait
                    // that long after the first packet, or less when a burst already brought
                    // the depth plus the frame about to be played.
                    span_ms >= target + FRAME_MS || now_ms.saturating_sub(t0) >= target as u64
                }
                _ => false,
            };
            if !ready {
                // Never played anything in this epoch: nothing to conceal.
                floor?;
                let n = underrun_frames.saturating_add(1);
                if n <= UNDERRUN_COUNTED {
                    self.stats.concealed += 1;
                }
                self.state = State::Buffering {
                    first_arrival_ms,
                    floor,
                    underrun_frames: n,
                };
                self.last_was_audio = false;
                return Some(JitterFrame::Concealed);
            }
            self.state = State::Playing;
            self.play_ts = self.lo_ts;
            self.since_adjust = 0;
        }

        // Playing.
        if let Some(p) = self.pause {
            if (self.play_ts.wrapping_sub(p.resume_ts) as i32) >= 0 {
                // Already played past it (the pause was filled by reordered audio).
                self.pause = None;
            }
        }
        if let Some(p) = self.pause {
            let before_pause = (self.play_ts.wrapping_sub(p.start_ts) as i32) < 0;
            if !before_pause && !self.frame_has_any(self.play_ts) {
                // The previous talkspurt is fully played: rebuffer at the next one, so the
                // pause is skipped and the depth re-adapts, instead of concealing through it.
                self.pause = None;
                self.clear_range(self.play_ts, p.resume_ts);
                self.lo_ts = p.resume_ts;
                self.state = State::Buffering {
                    first_arrival_ms: Some(p.resume_arrival_ms),
                    floor: Some(self.play_ts),
                    underrun_frames: 0,
                };
                return self.pop(now_ms);
            }
        }
        if (self.hi_ts.wrapping_sub(self.play_ts) as i32) <= 0 || !self.has_data {
            // Underrun: nothing left. Rebuffer; the stream may have paused or stalled.
            self.has_data = false;
            self.state = State::Buffering {
                first_arrival_ms: None,
                floor: Some(self.play_ts),
                underrun_frames: 1,
            };
            self.stats.concealed += 1;
            self.last_was_audio = false;
            return Some(JitterFrame::Concealed);
        }

        self.since_adjust = self.since_adjust.saturating_add(1);
        let buffered_ms = self.buffered_samples() / SAMPLES_PER_MS;
        if buffered_ms > target + 3 * FRAME_MS && self.since_adjust >= 5 {
            // Too deep (the jitter calmed down, or the far end's clock runs fast): drop one
            // frame to cut latency.
            let ts = self.play_ts;
            self.clear_range(ts, ts.wrapping_add(FRAME_SAMPLES));
            self.play_ts = ts.wrapping_add(FRAME_SAMPLES);
            self.since_adjust = 0;
        } else if buffered_ms + 2 * FRAME_MS < target && self.last_was_audio && self.since_adjust >= 5 {
            // Too shallow for the measured jitter: stretch by one concealed frame (the caller
            // repeats the last one) without advancing playout.
            self.since_adjust = 0;
            self.stats.concealed += 1;
            self.last_was_audio = false;
            return Some(JitterFrame::Concealed);
        }

        let ts = self.play_ts;
        let complete = self.frame_complete(ts);
        if complete {
            for i in 0..FRAME_SAMPLES {
                self.frame[i as usize] = self.ring[(ts.wrapping_add(i) & MASK) as usize];
            }
        }
        self.clear_range(ts, ts.wrapping_add(FRAME_SAMPLES));
        self.play_ts = ts.wrapping_add(FRAME_SAMPLES);
        if complete {
            self.last_was_audio = true;
            Some(JitterFrame::Audio(&self.frame))
        } else {
            self.stats.concealed += 1;
            self.last_was_audio = false;
            Some(JitterFrame::Concealed)
        }
    }

    /// Target playout depth: enough to cover about three times the mean jitter, plus a frame,
    /// plus a boost after late packets, rounded to whole frames.
    fn target_ms(&self) -> u32 {
        let jitter_ms = self.jitter / SAMPLES_PER_MS as f64;
        let raw = FRAME_MS as f64 + 3.0 * jitter_ms;
        let frames = (raw / FRAME_MS as f64).ceil().min(1000.0) as u32;
        let base = (frames * FRAME_MS).clamp(self.cfg.min_depth_ms, self.cfg.max_depth_ms);
        (base + self.late_boost_ms).min(self.cfg.max_depth_ms)
    }

    fn buffered_samples(&self) -> u32 {
        if !self.has_data {
            return 0;
        }
        let from = match self.state {
            State::Playing => self.play_ts,
            State::Buffering { .. } => self.lo_ts,
        };
        // A pause ahead is silence, not buffered audio.
        let to = match self.pause {
            Some(p) if (p.start_ts.wrapping_sub(from) as i32) >= 0 => p.start_ts,
            _ => self.hi_ts,
        };
        let d = to.wrapping_sub(from) as i32;
        d.max(0) as u32
    }

    fn classify(&self, seq: u16) -> SeqClass {
        if !self.seq_started {
            return SeqClass::First;
        }
        let delta = seq.wrapping_sub(self.max_seq as u16) as i16 as i64;
        if delta == 0 {
            return SeqClass::Duplicate;
        }
        if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&delta) {
            return SeqClass::Jump;
        }
        if delta < 0 {
            let back = (-delta) as u32;
            if back < 128 && self.seen & (1u128 << back) != 0 {
                return SeqClass::Duplicate;
            }
            SeqClass::Older(-delta)
        } else {
            SeqClass::Newer(delta)
        }
    }

    /// Records an accepted packet's sequence number, timestamp and arrival.
    fn commit_seq(&mut self, class: SeqClass, seq: u16, ts: u32, len: u32, arrival_ms: u64) {
        match class {
            SeqClass::First | SeqClass::Jump => {
                self.seq_started = true;
                self.max_seq = seq as i64;
                self.base_seq = seq as i64;
                self.seen = 1;
                self.newest_end_ts = ts.wrapping_add(len);
            }
            SeqClass::Newer(d) => {
                // Consecutive sequence numbers with a timestamp gap: the sender paused.
                let gap = ts.wrapping_sub(self.newest_end_ts) as i32;
                if d == 1
                    && gap >= FRAME_SAMPLES as i32
                    && self.pause.is_none()
                    && (self.state == State::Playing || self.has_data)
                {
                    self.pause = Some(Pause {
                        start_ts: self.newest_end_ts,
                        resume_ts: ts,
                        resume_arrival_ms: arrival_ms,
                    });
                }
                self.seen = if d >= 128 { 0 } else { self.seen << d };
                self.seen |= 1;
                self.max_seq += d;
                self.newest_end_ts = ts.wrapping_add(len);
            }
            SeqClass::Older(back) => {
                if back < 128 {
                    self.seen |= 1u128 << back;
                }
                let ext = self.max_seq - back;
                if ext < self.base_seq {
                    self.base_seq = ext;
                }
            }
            SeqClass::Duplicate => return,
        }
        self.received_epoch += 1;
        self.stats.received += 1;
        self.update_jitter(ts, arrival_ms);
    }

    /// RFC 3550 §6.4.1: J += (|D| - J) / 16, D the change in transit time, in timestamp units.
    fn update_jitter(&mut self, ts: u32, arrival_ms: u64) {
        if let Some((prev_arrival, prev_ts)) = self.prev_arrival {
            let arrival_delta = (arrival_ms as i64 - prev_arrival as i64) * SAMPLES_PER_MS as i64;
            let ts_delta = ts.wrapping_sub(prev_ts) as i32 as i64;
            let d = (arrival_delta - ts_delta).abs() as f64;
            // A pause or restart is not jitter: ignore transit changes of more than a second.
            if d < 8000.0 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.prev_arrival = Some((arrival_ms, ts));
    }

    fn note_late(&mut self, now_ms: u64) {
        self.stats.late += 1;
        // Each late packet is audio the caller lost to too small a buffer: deepen it.
        self.late_boost_ms = (self.late_boost_ms + FRAME_MS).min(self.cfg.max_depth_ms);
        self.last_boost_change_ms = now_ms;
    }

    /// The first packet of an epoch (start, or after a resync).
    fn accept_fresh(&mut self, seq: u16, ts: u32, payload: &[u8], arrival_ms: u64) {
        self.commit_seq(SeqClass::First, seq, ts, payload.len() as u32, arrival_ms);
        self.store(ts, payload, arrival_ms);
    }

    /// Writes audio into the ring (the part at or after the playout point) and widens the
    /// buffered span.
    fn store(&mut self, ts: u32, payload: &[u8], arrival_ms: u64) {
        let len = payload.len() as u32;
        let mut start = 0u32;
        let floor = match self.state {
            State::Playing => Some(self.play_ts),
            State::Buffering { floor, .. } => floor,
        };
        if let Some(floor) = floor {
            let rel = ts.wrapping_sub(floor) as i32;
            if rel < 0 {
                start = (-rel) as u32; // the head was already played; keep the tail
            }
        }
        for i in start..len {
            let idx = (ts.wrapping_add(i) & MASK) as usize;
            self.ring[idx] = payload[i as usize];
            self.present[idx >> 6] |= 1u64 << (idx & 63);
        }
        let begin = ts.wrapping_add(start);
        let end = ts.wrapping_add(len);
        if !self.has_data {
            self.has_data = true;
            self.lo_ts = begin;
            self.hi_ts = end;
        } else {
            if (begin.wrapping_sub(self.lo_ts) as i32) < 0 {
                self.lo_ts = begin;
            }
            if (end.wrapping_sub(self.hi_ts) as i32) > 0 {
                self.hi_ts = end;
            }
        }
        if let State::Buffering {
            first_arrival_ms: None,
            floor,
            underrun_frames,
        } = self.state
        {
            self.state = State::Buffering {
                first_arrival_ms: Some(arrival_ms),
                floor,
                underrun_frames,
            };
        }
    }

    fn is_present(&self, ts: u32) -> bool {
        let idx = (ts & MASK) as usize;
        self.present[idx >> 6] & (1u64 << (idx & 63)) != 0
    }

    fn frame_complete(&self, ts: u32) -> bool {
        (0..FRAME_SAMPLES).all(|i| self.is_present(ts.wrapping_add(i)))
    }

    fn frame_has_any(&self, ts: u32) -> bool {
        (0..FRAME_SAMPLES).any(|i| self.is_present(ts.wrapping_add(i)))
    }

    fn clear_range(&mut self, from: u32, to: u32) {
        let n = (to.wrapping_sub(from) as i32).clamp(0, CAP as i32) as u32;
        for i in 0..n {
            let idx = (from.wrapping_add(i) & MASK) as usize;
            self.present[idx >> 6] &= !(1u64 << (idx & 63));
        }
    }

    /// Drops buffered audio and sequence state; the next packet starts a new epoch.
    fn resync(&mut self) {
        self.present.fill(0);
        self.has_data = false;
        self.pause = None;
        self.state = State::Buffering {
            first_arrival_ms: None,
            floor: None,
            underrun_frames: 0,
        };
        self.expected_prior += self.expected_epoch();
        self.seq_started = false;
        self.seen = 0;
        // The transit time of a restarted stream is unrelated to the old one.
        self.prev_arrival = None;
        self.last_was_audio = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload whose bytes identify the packet, so tests can tell which audio came out.
    fn payload(tag: u8) -> [u8; 160] {
        [tag; 160]
    }

    /// Drives a buffer: `packets` are (seq, ts, tag, arrival_ms); pops every 20 ms from
    /// `start_ms` for `ticks`; returns what came out: Some(tag) for audio, Some(0) never,
    /// None for concealment/nothing.
    fn run(jb: &mut JitterBuffer, packets: &[(u16, u32, u8, u64)], start_ms: u64, ticks: u64) -> Vec<Option<u8>> {
        let mut out = Vec::new();
        let mut pi = 0;
        let mut sorted: Vec<_> = packets.to_vec();
        sorted.sort_by_key(|p| p.3);
        for k in 0..ticks {
            let now = start_ms + k * 20;
            while pi < sorted.len() && sorted[pi].3 <= now {
                let (s, t, tag, a) = sorted[pi];
                jb.push(s, t, &payload(tag), a);
                pi += 1;
            }
            out.push(match jb.pop(now) {
                Some(JitterFrame::Audio(b)) => {
                    assert_eq!(b.len(), 160);
                    Some(b[0])
                }
                Some(JitterFrame::Concealed) | None => None,
            });
        }
        out
    }

    fn audio_tags(out: &[Option<u8>]) -> Vec<u8> {
        out.iter().flatten().copied().collect()
    }

    /// A steady stream: packet i (tag i+1) sent at i*20 ms, arriving `delay(i)` later.
    fn stream(n: u16, seq0: u16, ts0: u32, delay: impl Fn(u16) -> u64) -> Vec<(u16, u32, u8, u64)> {
        (0..n)
            .map(|i| {
                (
                    seq0.wrapping_add(i),
                    ts0.wrapping_add(i as u32 * 160),
                    (i % 250) as u8 + 1,
                    1000 + i as u64 * 20 + delay(i),
                )
            })
            .collect()
    }

    #[test]
    fn steady_stream_plays_in_order_after_the_minimum_depth() {
        let mut jb = JitterBuffer::new();
        let pk = stream(50, 100, 5000, |_| 5);
        let out = run(&mut jb, &pk, 1000, 60);
        let tags = audio_tags(&out);
        assert_eq!(tags, (1..=50).collect::<Vec<u8>>());
        // Nothing before the first packet, and playout starts within the 40 ms minimum.
        assert_eq!(out[0], None);
        let first_audio = out.iter().position(|o| o.is_some()).unwrap();
        assert!(first_audio <= 3, "started after {first_audio} ticks");
        let s = jb.stats();
        assert_eq!((s.received, s.lost, s.late, s.duplicates), (50, 0, 0, 0));
        assert!(s.jitter_ms < 1.0);
        assert_eq!(s.depth_ms, 40);
    }

    #[test]
    fn reordered_packets_play_in_order() {
        let mut jb = JitterBuffer::new();
        let mut pk = stream(30, 7, 0, |_| 0);
        // Packet 10 arrives after 11, and 20 after 21.
        pk[10].3 += 25;
        pk[20].3 += 35;
        let out = run(&mut jb, &pk, 1000, 45);
        assert_eq!(audio_tags(&out), (1..=30).collect::<Vec<u8>>());
        let s = jb.stats();
        assert_eq!((s.received, s.lost, s.late), (30, 0, 0));
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut jb = JitterBuffer::new();
        let mut pk = stream(20, 1, 0, |_| 0);
        pk.push((5, 4 * 160, 5, 1000 + 4 * 20 + 3));
        pk.push((5, 4 * 160, 5, 1000 + 4 * 20 + 4));
        // A duplicate of something long played.
        pk.push((2, 160, 2, 1000 + 15 * 20 + 1));
        let out = run(&mut jb, &pk, 1000, 30);
        assert_eq!(audio_tags(&out), (1..=20).collect::<Vec<u8>>());
        let s = jb.stats();
        assert_eq!(s.duplicates, 3);
        assert_eq!(s.received, 20);
        assert_eq!(s.late, 0);
    }

    #[test]
    fn a_lost_packet_is_concealed_and_counted() {
        let mut jb = JitterBuffer::new();
        let pk: Vec<_> = stream(30, 65530, 0, |_| 0)
            .into_iter()
            .filter(|p| p.2 != 12)
            .collect();
        let out = run(&mut jb, &pk, 1000, 40);
        let first = out.iter().position(|o| o.is_some()).unwrap();
        // Audio 1..=11, one concealed frame exactly where 12 belonged, then 13..=30.
        let expected: Vec<Option<u8>> = (1..=30u8).map(|t| if t == 12 { None } else { Some(t) }).collect();
        assert_eq!(&out[first..first + 30], &expected[..]);
        let s = jb.stats();
        assert_eq!(s.lost, 1);
        assert_eq!(s.received, 29);
        // The stream crossed the 65535 -> 0 sequence wrap without a resync.
        assert_eq!(s.resyncs, 0);
        assert!(s.concealed >= 1);
    }

    #[test]
    fn late_packet_is_dropped_counted_and_deepens_the_buffer() {
        let mut jb = JitterBuffer::new();
        let mut pk = stream(40, 10, 0, |_| 0);
        pk[15].3 += 200; // arrives long after its turn
        let out = run(&mut jb, &pk, 1000, 60);
        let tags = audio_tags(&out);
        assert!(!tags.contains(&16));
        assert_eq!(tags.len(), 39);
        let s = jb.stats();
        assert_eq!(s.late, 1);
        assert_eq!(s.lost, 0, "a late packet arrived; it is late, not lost");
        assert!(s.depth_ms >= 60, "depth {} should grow after a late packet", s.depth_ms);
    }

    #[test]
    fn jitter_estimate_raises_the_target_depth_and_keeps_audio_whole() {
        let mut jb = JitterBuffer::new();
        // Alternating 0 / 60 ms network delay.
        let pk = stream(200, 0, 0, |i| if i % 2 == 0 { 0 } else { 60 });
        let out = run(&mut jb, &pk, 1000, 230);
        let s = jb.stats();
        assert!(s.jitter_ms > 20.0, "jitter {}", s.jitter_ms);
        assert!(s.depth_ms >= 100 && s.depth_ms <= 200, "depth {}", s.depth_ms);
        // Once adapted, the tail of the call plays every packet.
        let tags = audio_tags(&out);
        let tail: Vec<u8> = tags.iter().copied().filter(|&t| t > 100).collect();
        let mut want: Vec<u8> = (101..=200u16).map(|i| ((i - 1) % 250) as u8 + 1).collect();
        want.dedup();
        assert_eq!(tail.len(), want.len(), "late {} concealed {}", s.late, s.concealed);
    }

    #[test]
    fn sequence_wrap_is_seamless() {
        let mut jb = JitterBuffer::new();
        let pk = stream(40, 65520, u32::MAX - 1000, |_| 3);
        let out = run(&mut jb, &pk, 1000, 50);
        assert_eq!(audio_tags(&out), (1..=40).collect::<Vec<u8>>());
        let s = jb.stats();
        assert_eq!((s.lost, s.resyncs, s.received), (0, 0, 40));
    }

    #[test]
    fn talkspurt_after_a_pause_resumes_without_concealing_the_pause() {
        let mut jb = JitterBuffer::new();
        // 10 packets, then 2 s of silence (timestamps jump 16000, seq continues), 10 more.
        let mut pk = stream(10, 500, 0, |_| 0);
        for i in 0..10u16 {
            pk.push((510 + i, 9 * 160 + 16160 + i as u32 * 160, 100 + i as u8, 1000 + 200 + 2000 + i as u64 * 20));
        }
        let out = run(&mut jb, &pk, 1000, 130);
        let tags = audio_tags(&out);
        let mut want: Vec<u8> = (1..=10).collect();
        want.extend(100..110);
        assert_eq!(tags, want);
        let s = jb.stats();
        assert_eq!((s.lost, s.resyncs), (0, 0));
        // The end of each talkspurt looks like an underrun for a few frames; the 2 s pause
        // itself (100 frames) is not counted as concealment.
        assert!(s.concealed <= 2 * UNDERRUN_COUNTED as u64, "concealed {}", s.concealed);
        // The second talkspurt starts promptly (within the depth) after it arrives.
        let resume = out.iter().position(|o| *o == Some(100)).unwrap() as u64;
        let resume_ms = 1000 + resume * 20;
        assert!(resume_ms <= 3200 + 60, "resumed at {resume_ms}");
    }

    #[test]
    fn short_pause_inside_the_buffer_is_skipped() {
        let mut jb = JitterBuffer::with_config(JitterConfig {
            min_depth_ms: 100,
            max_depth_ms: 200,
        });
        // A 60 ms pause that is still inside the buffer when the next talkspurt arrives.
        let mut pk = stream(10, 0, 0, |_| 0);
        for i in 0..10u16 {
            pk.push((10 + i, 10 * 160 + 480 + i as u32 * 160, 100 + i as u8, 1000 + 260 + i as u64 * 20));
        }
        let out = run(&mut jb, &pk, 1000, 40);
        let tags = audio_tags(&out);
        let mut want: Vec<u8> = (1..=10).collect();
        want.extend(100..110);
        assert_eq!(tags, want);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn clock_restart_resyncs_instead_of_stalling() {
        let mut jb = JitterBuffer::new();
        // Far end restarts: same SSRC, seq continues, timestamp jumps backwards.
        let mut pk = stream(10, 100, 1_000_000, |_| 0);
        for i in 0..20u16 {
            pk.push((110 + i, 3000 + i as u32 * 160, 50 + i as u8, 1000 + 200 + i as u64 * 20));
        }
        let out = run(&mut jb, &pk, 1000, 50);
        let tags = audio_tags(&out);
        assert!(tags.starts_with(&(1..=8).collect::<Vec<u8>>()), "{tags:?}");
        // Everything after the restart plays.
        let after: Vec<u8> = tags.iter().copied().filter(|&t| t >= 50).collect();
        assert_eq!(after, (50..70).collect::<Vec<u8>>());
        assert_eq!(jb.stats().late, 0);
        assert!(jb.stats().resyncs >= 1);
    }

    #[test]
    fn sequence_jump_resyncs() {
        let mut jb = JitterBuffer::new();
        let mut pk = stream(10, 100, 0, |_| 0);
        for i in 0..20u16 {
            pk.push((40000 + i, 10 * 160 + i as u32 * 160, 50 + i as u8, 1000 + 200 + i as u64 * 20));
        }
        let out = run(&mut jb, &pk, 1000, 50);
        let after: Vec<u8> = audio_tags(&out).into_iter().filter(|&t| t >= 50).collect();
        assert_eq!(after, (50..70).collect::<Vec<u8>>());
        let s = jb.stats();
        assert_eq!(s.resyncs, 1);
        assert_eq!(s.lost, 0, "a restart is not 40000 lost packets");
    }

    #[test]
    fn timestamp_jump_forward_while_playing_resyncs() {
        let mut jb = JitterBuffer::with_config(JitterConfig {
            min_depth_ms: 100,
            max_depth_ms: 200,
        });
        let mut pk = stream(10, 100, 0, |_| 0);
        // Seq continues but timestamps jump by an hour while audio is still queued.
        for i in 0..20u16 {
            pk.push((110 + i, 28_800_000 + i as u32 * 160, 50 + i as u8, 1000 + 200 + i as u64 * 20));
        }
        let out = run(&mut jb, &pk, 1000, 60);
        let after: Vec<u8> = audio_tags(&out).into_iter().filter(|&t| t >= 50).collect();
        assert_eq!(after, (50..70).collect::<Vec<u8>>());
    }

    #[test]
    fn ssrc_change_resets() {
        use crate::media::rtp::{RtpPacket, RtpSender};
        let mut jb = JitterBuffer::new();
        let mut a = RtpSender::new(1, 100, 0);
        let mut b = RtpSender::new(2, 9, 777_777);
        let mut buf = Vec::new();
        let mut tags = Vec::new();
        for k in 0..40u64 {
            let now = 1000 + k * 20;
            let tx = if k < 15 { &mut a } else { &mut b };
            tx.audio(0, &payload(k as u8 + 1), 160, false, &mut buf);
            jb.push_packet(&RtpPacket::parse(&buf).unwrap(), now);
            if let Some(JitterFrame::Audio(p)) = jb.pop(now) {
                tags.push(p[0]);
            }
        }
        // The new source's audio plays from its first packet.
        let after: Vec<u8> = tags.iter().copied().filter(|&t| t >= 16).collect();
        assert_eq!(after.first(), Some(&16));
        assert_eq!(after.len(), 40 - 15 - 2);
        assert_eq!(jb.stats().resyncs, 1);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn clock_drift_is_absorbed_by_skipping() {
        // The far end sends 1% fast: without skipping, the buffer would grow without bound.
        let mut jb = JitterBuffer::new();
        let mut next = 0u32;
        let mut max_buffered = 0;
        let mut audio = 0;
        for k in 0..1000u64 {
            let now = 1000 + k * 20;
            while 1000 + (next as u64 * 1980) / 100 <= now {
                jb.push(next as u16, next * 160, &payload(1), now);
                next += 1;
            }
            if let Some(JitterFrame::Audio(_)) = jb.pop(now) {
                audio += 1;
            }
            max_buffered = max_buffered.max(jb.stats().buffered_ms);
        }
        // 10 frames too many arrive over 20 s; a fixed buffer would be 200 ms deeper by now.
        assert!(max_buffered <= 120, "buffered up to {max_buffered} ms");
        assert!(audio >= 985, "audio frames {audio}");
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn mixed_packet_sizes_play_as_20ms_frames() {
        // 30 ms packets (240 bytes) come out as 20 ms frames with nothing missing.
        let mut jb = JitterBuffer::new();
        let mut produced = 0usize;
        let mut k = 0u64;
        let mut seq = 0u16;
        let mut ts = 0u32;
        let mut next_send = 1000u64;
        while k < 100 {
            let now = 1000 + k * 20;
            while next_send <= now {
                jb.push(seq, ts, &[0x55u8; 240], next_send);
                seq = seq.wrapping_add(1);
                ts += 240;
                next_send += 30;
            }
            if let Some(JitterFrame::Audio(p)) = jb.pop(now) {
                assert_eq!(p, &[0x55u8; 160][..]);
                produced += 1;
            }
            k += 1;
        }
        assert!(produced >= 95, "produced {produced}");
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn rough_network_keeps_order_and_accounts_for_every_packet() {
        // Deterministic pseudo-random network: 0-80 ms delay, 5% loss, 3% duplicated, across
        // the sequence and timestamp wraps. Audio must come out in sending order, and the
        // counters must add up.
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let n = 3000u32;
        let mut arrivals: Vec<(u64, u32)> = Vec::new();
        let mut dropped = 0;
        for i in 0..n {
            let r = next();
            if r % 100 < 5 && i != n - 1 {
                dropped += 1;
                continue;
            }
            let sent = 1000 + i as u64 * 20;
            arrivals.push((sent + (r >> 8) % 80, i));
            if (r >> 20) % 100 < 3 {
                arrivals.push((sent + (r >> 30) % 120, i));
            }
        }
        arrivals.sort();
        let mut jb = JitterBuffer::new();
        let mut last_played: Option<u32> = None;
        let mut played = 0u32;
        let mut ai = 0;
        let mut pl = [0u8; 160];
        for k in 0..(n as u64 + 100) {
            let now = 1000 + k * 20;
            while ai < arrivals.len() && arrivals[ai].0 <= now {
                let i = arrivals[ai].1;
                pl[..4].copy_from_slice(&i.to_be_bytes());
                let seq = (60000 + i) as u16;
                let ts = (u32::MAX - 50_000).wrapping_add(i * 160);
                jb.push(seq, ts, &pl, arrivals[ai].0);
                ai += 1;
            }
            if let Some(JitterFrame::Audio(a)) = jb.pop(now) {
                let i = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
                if let Some(prev) = last_played {
                    assert!(i > prev, "played {i} after {prev}");
                }
                last_played = Some(i);
                played += 1;
            }
        }
        let s = jb.stats();
        assert_eq!(s.lost, dropped, "{s:?}");
        assert_eq!(s.received, n as u64 - dropped);
        assert_eq!(s.resyncs, 0);
        assert!(s.duplicates > 50);
        // Every packet that arrived was played, except the late ones and those skipped to
        // catch up after the buffer deepened.
        assert!(played as u64 + s.late + 20 >= s.received, "played {played}, {s:?}");
        assert!(s.late < s.received / 20, "{s:?}");
    }

    #[test]
    fn garbage_sizes_are_ignored() {
        let mut jb = JitterBuffer::new();
        jb.push(1, 0, &[], 0);
        jb.push(2, 0, &vec![0u8; 5000], 0);
        assert_eq!(jb.pop(20), None);
        assert_eq!(jb.stats().received, 0);
    }

    #[test]
    fn a_clean_evenly_paced_stream_passes_through_byte_for_byte() {
        // 3 s of distinct payloads at exactly 20 ms spacing, popped on the same clock: no
        // frame may be repeated, dropped or concealed, or speech would be altered mid-word.
        let mut jb = JitterBuffer::new();
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for i in 0..150u32 {
            let payload: Vec<u8> = (0..160).map(|j| ((i * 7 + j) % 251) as u8).collect();
            jb.push(1000u16.wrapping_add(i as u16), 5000 + i * 160, &payload, u64::from(i) * 20);
            sent.push(payload);
            if let Some(frame) = jb.pop(u64::from(i) * 20 + 10) {
                match frame {
                    JitterFrame::Audio(p) => out.push(p.to_vec()),
                    JitterFrame::Concealed => out.push(Vec::new()),
                }
            }
        }
        while let Some(JitterFrame::Audio(p)) = jb.pop(10_000) {
            out.push(p.to_vec());
            if out.len() >= sent.len() {
                break;
            }
        }
        let played: Vec<&Vec<u8>> = out.iter().filter(|p| !p.is_empty()).collect();
        assert_eq!(played.len(), sent.len(), "every frame played once ({} concealed)", out.len() - played.len());
        assert!(played.iter().zip(&sent).all(|(a, b)| *a == b), "in order and unaltered");
    }
}
