//! The bot's outgoing audio at 16 kHz, sans-IO: tagged replies and live bridged audio go in,
//! one 20 ms frame per tick comes out, with marks saying when each reply started and finished
//! (the call task's turn timings and barge-in bookkeeping rely on them).

use crate::media::session::FRAME_16K;
use std::collections::VecDeque;

/// A bridge must not build latency: live audio beyond this is dropped, oldest first.
const LIVE_LIMIT: usize = FRAME_16K * 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Started(u64),
    Finished(u64),
}

#[derive(Default)]
pub struct Playout {
    samples: VecDeque<i16>,
    /// (tag, samples of it not yet taken, started)
    segments: VecDeque<(u64, usize, bool)>,
}

impl Playout {
    pub fn queue(&mut self, pcm_16k: &[i16], tag: u64) {
        if pcm_16k.is_empty() {
            return;
        }
        self.samples.extend(pcm_16k.iter().copied());
        self.segments.push_back((tag, pcm_16k.len(), false));
    }

    /// 20 ms from the other leg of a bridge.
    pub fn live(&mut self, frame: &[i16]) {
        self.samples.extend(frame.iter().copied());
        if self.segments.is_empty() && self.samples.len() > LIVE_LIMIT {
            let excess = self.samples.len() - LIVE_LIMIT;
            self.samples.drain(..excess);
        }
    }

    pub fn flush(&mut self) {
        self.samples.clear();
        self.segments.clear();
    }

    /// Fills `frame` with the next 20 ms (silence past the end) and reports reply boundaries
    /// through `mark`. Returns whether any queued audio was taken.
    pub fn next_frame(&mut self, frame: &mut [i16; FRAME_16K], mut mark: impl FnMut(Mark)) -> bool {
        let n = self.samples.len().min(FRAME_16K);
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

    #[test]
    fn replies_are_marked_where_they_start_and_end() {
        let mut p = Playout::default();
        p.queue(&[1; FRAME_16K + 10], 7);
        p.queue(&[2; 20], 8);
        let mut f = [0; FRAME_16K];
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
    fn live_audio_never_queues_more_than_100_ms() {
        let mut p = Playout::default();
        for _ in 0..20 {
            p.live(&[3; FRAME_16K]);
        }
        assert_eq!(p.samples.len(), LIVE_LIMIT);
    }
}
