//! The bot's outgoing audio, sans-IO, shared by every media driver (RTP and WebRTC): tagged
//! replies and live bridged audio go in at the driver's wire rate, one 20 ms frame per tick
//! comes out, with marks saying when each reply started and finished (the call task's turn
//! timings and barge-in bookkeeping rely on them). Implements the `Pause`/`Resume`/`Flush`
//! semantics documented on [`crate::media::session::MediaCommand`].

use std::collections::VecDeque;

/// A bridge must not build latency: live audio beyond 100 ms (5 frames) is dropped, oldest first.
const LIVE_LIMIT_FRAMES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Started(u64),
    Finished(u64),
}

pub struct Playout {
    frame_len: usize,
    samples: VecDeque<i16>,
    /// (tag, samples of it not yet taken, started)
    segments: VecDeque<(u64, usize, bool)>,
    /// A `Pause` is in force: queued audio waits, ticks carry silence.
    paused: bool,
}

impl Playout {
    /// `frame_len`: samples in one 20 ms frame at the rate audio is queued in.
    pub fn new(frame_len: usize) -> Self {
        Playout { frame_len, samples: VecDeque::new(), segments: VecDeque::new(), paused: false }
    }

    pub fn queue(&mut self, pcm: &[i16], tag: u64) {
        if pcm.is_empty() {
            return;
        }
        self.samples.extend(pcm.iter().copied());
        self.segments.push_back((tag, pcm.len(), false));
    }

    /// Audio from the other leg of a bridge.
    pub fn live(&mut self, pcm: &[i16]) {
        self.samples.extend(pcm.iter().copied());
        let limit = self.frame_len * LIVE_LIMIT_FRAMES;
        if self.segments.is_empty() && self.samples.len() > limit {
            let excess = self.samples.len() - limit;
            self.samples.drain(..excess);
        }
    }

    /// Drops everything queued; also ends a pause.
    pub fn flush(&mut self) {
        self.samples.clear();
        self.segments.clear();
        self.paused = false;
    }

    pub fn pause(&mut self) {
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Fills `frame` (`frame_len` samples) with the next 20 ms (silence past the end or while
    /// paused) and reports reply boundaries through `mark`. Returns whether any queued audio
    /// was taken.
    pub fn next_frame(&mut self, frame: &mut [i16], mut mark: impl FnMut(Mark)) -> bool {
        debug_assert_eq!(frame.len(), self.frame_len);
        let n = if self.paused { 0 } else { self.samples.len().min(frame.len()) };
        for (o, s) in frame.iter_mut().zip(self.samples.drain(..n)) {
            *o = s;
        }
        frame[n..].fill(0);
        let mut taken = n;
        while taken > 0 {
            let Some(seg) = self.segments.front_mut() else { break };
            if !seg.2 {
                seg.2 = true;
                mark(Mark::Started(seg.0));
            }
            let used = seg.1.min(taken);
            seg.1 -= used;
            taken -= used;
            if seg.1 == 0 {
                mark(Mark::Finished(seg.0));
                self.segments.pop_front();
            }
        }
        n > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 320;

    #[test]
    fn replies_are_marked_where_they_start_and_end() {
        let mut p = Playout::new(FRAME);
        p.queue(&[1; FRAME + 10], 7);
        p.queue(&[2; 20], 8);
        let mut f = [0; FRAME];
        let mut marks = Vec::new();
        assert!(p.next_frame(&mut f, |m| marks.push(m)));
        assert_eq!(marks, vec![Mark::Started(7)]);
        marks.clear();
        assert!(p.next_frame(&mut f, |m| marks.push(m)));
        assert_eq!(marks, vec![Mark::Finished(7), Mark::Started(8), Mark::Finished(8)]);
        assert_eq!(&f[..10], &[1; 10]);
        assert_eq!(&f[10..30], &[2; 20]);
        assert!(f[30..].iter().all(|&s| s == 0));
        assert!(!p.next_frame(&mut f, |_| panic!("no marks in silence")));
    }

    #[test]
    fn a_pause_holds_the_reply_where_it_is_and_resume_plays_on() {
        let mut p = Playout::new(FRAME);
        p.queue(&[5; FRAME * 2], 1);
        let mut f = [0; FRAME];
        assert!(p.next_frame(&mut f, |_| {}));
        p.pause();
        assert!(!p.next_frame(&mut f, |_| panic!("no marks while paused")));
        assert!(f.iter().all(|&s| s == 0));
        p.resume();
        let mut marks = Vec::new();
        assert!(p.next_frame(&mut f, |m| marks.push(m)));
        assert_eq!(f, [5; FRAME]);
        assert_eq!(marks, vec![Mark::Finished(1)]);
    }

    #[test]
    fn flush_ends_a_pause_and_drops_the_reply() {
        let mut p = Playout::new(FRAME);
        p.queue(&[5; FRAME], 1);
        p.pause();
        p.flush();
        p.queue(&[6; FRAME], 2);
        let mut f = [0; FRAME];
        assert!(p.next_frame(&mut f, |_| {}));
        assert_eq!(f, [6; FRAME]);
    }

    #[test]
    fn live_audio_never_queues_more_than_100_ms() {
        let mut p = Playout::new(FRAME);
        for _ in 0..20 {
            p.live(&[3; FRAME]);
        }
        assert_eq!(p.samples.len(), FRAME * LIVE_LIMIT_FRAMES);
    }
}
