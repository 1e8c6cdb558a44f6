//! RFC 4733 telephone-event (DTMF) assembly, sans-IO.
//!
//! A key press is one *event*: every packet of it carries the same RTP timestamp (the event's
//! start), a growing duration, and finally the end bit, which is sent three times for
//! robustness. The assembler turns that packet train into exactly one digit. Some senders never
//! send the end bit (or it is lost), so an event that stops being updated is emitted after a
//! timeout by [`DtmfAssembler::poll`].
//!
//! The SSRC is part of an event's identity but is not tied to the audio stream's: some senders
//! (sipp among them) send events on their own SSRC and payload type.

/// One digit as the caller pressed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// '0'-'9', '*', '#', 'A'-'D'.
    pub digit: char,
    pub duration_ms: u32,
}

/// The digit for an RFC 4733 event code, if it is a DTMF key (0-15).
pub fn event_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// The RFC 4733 event code for a digit (for sending).
pub fn digit_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// Default time without an update after which an unterminated event counts as ended.
pub const DEFAULT_TIMEOUT_MS: u64 = 300;

#[derive(Debug, Clone, Copy)]
struct Event {
    ssrc: u32,
    ts: u32,
    digit: char,
    /// Longest duration seen, in timestamp units.
    duration: u32,
    last_update_ms: u64,
}

/// Turns telephone-event packets into digits. One per call.
#[derive(Debug, Clone)]
pub struct DtmfAssembler {
    clock_rate: u32,
    timeout_ms: u64,
    current: Option<Event>,
    /// Events already emitted, so their remaining end packets are ignored.
    recent: [Option<(u32, u32)>; 4],
    recent_next: usize,
    /// Digits ready to hand out (at most two can complete on one packet).
    ready: [Option<DtmfDigit>; 2],
}

impl Default for DtmfAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfAssembler {
    /// For `telephone-event/8000` (what G.711 calls negotiate) and the default timeout.
    pub fn new() -> DtmfAssembler {
        Self::with_params(8000, DEFAULT_TIMEOUT_MS)
    }

    /// For another event clock rate (`telephone-event/16000` etc.) or timeout.
    pub fn with_params(clock_rate: u32, timeout_ms: u64) -> DtmfAssembler {
        DtmfAssembler {
            clock_rate: clock_rate.max(1),
            timeout_ms,
            current: None,
            recent: [None; 4],
            recent_next: 0,
            ready: [None; 2],
        }
    }

    /// Feeds one telephone-event packet (its SSRC, RTP timestamp and payload). Returns a digit
    /// when one completes. Malformed payloads and non-DTMF events are ignored.
    pub fn push(&mut self, ssrc: u32, ts: u32, payload: &[u8], now_ms: u64) -> Option<DtmfDigit> {
        self.check_timeout(now_ms);
        if payload.len() < 4 {
            return self.take();
        }
        let Some(digit) = event_digit(payload[0]) else {
            return self.take();
        };
        let end = payload[1] & 0x80 != 0;
        let duration = u16::from_be_bytes([payload[2], payload[3]]) as u32;
        if self.recent.contains(&Some((ssrc, ts))) {
            // A retransmitted end packet (or a straggler) of an event already emitted.
            return self.take();
        }
        match &mut self.current {
            Some(e) if e.ssrc == ssrc && e.ts == ts => {
                e.duration = e.duration.max(duration);
                e.last_update_ms = now_ms;
            }
            _ => {
                // A new event. If another one was open, it never got its end: it is over now.
                self.finish();
                self.current = Some(Event {
                    ssrc,
                    ts,
                    digit,
                    duration,
                    last_update_ms: now_ms,
                });
            }
        }
        if end {
            self.finish();
        }
        self.take()
    }

    /// Emits an event whose end never came, once it has not been updated for the timeout.
    /// Call regularly (every 20 ms tick); also hands out a digit queued by `push`.
    pub fn poll(&mut self, now_ms: u64) -> Option<DtmfDigit> {
        self.check_timeout(now_ms);
        self.take()
    }

    fn check_timeout(&mut self, now_ms: u64) {
        if let Some(e) = self.current {
            if now_ms.saturating_sub(e.last_update_ms) >= self.timeout_ms {
                self.finish();
            }
        }
    }

    fn finish(&mut self) {
        let Some(e) = self.current.take() else {
            return;
        };
        self.recent[self.recent_next] = Some((e.ssrc, e.ts));
        self.recent_next = (self.recent_next + 1) % self.recent.len();
        let digit = DtmfDigit {
            digit: e.digit,
            duration_ms: (e.duration as u64 * 1000 / self.clock_rate as u64) as u32,
        };
        if self.ready[0].is_none() {
            self.ready[0] = Some(digit);
        } else {
            self.ready[1] = Some(digit);
        }
    }

    fn take(&mut self) -> Option<DtmfDigit> {
        let d = self.ready[0].take();
        self.ready[0] = self.ready[1].take();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, ((end as u8) << 7) | 10, d[0], d[1]]
    }

    /// A well-behaved key press: updates every 50 ms, then the end packet three times.
    fn press(a: &mut DtmfAssembler, ssrc: u32, ts: u32, event: u8, t0: u64) -> Vec<DtmfDigit> {
        let mut out = Vec::new();
        for k in 1..=4u16 {
            out.extend(a.push(ssrc, ts, &ev(event, false, k * 400), t0 + k as u64 * 50));
        }
        for r in 0..3u64 {
            out.extend(a.push(ssrc, ts, &ev(event, true, 2000), t0 + 250 + r * 20));
        }
        out
    }

    #[test]
    fn three_end_packets_yield_one_digit() {
        let mut a = DtmfAssembler::new();
        let out = press(&mut a, 7, 1000, 5, 0);
        assert_eq!(out, vec![DtmfDigit { digit: '5', duration_ms: 250 }]);
        assert_eq!(a.poll(10_000), None);
    }

    #[test]
    fn same_digit_twice_yields_two() {
        let mut a = DtmfAssembler::new();
        let mut out = press(&mut a, 7, 1000, 1, 0);
        out.extend(press(&mut a, 7, 5000, 1, 600));
        let digits: String = out.iter().map(|d| d.digit).collect();
        assert_eq!(digits, "11");
    }

    #[test]
    fn all_keys_map() {
        let mut a = DtmfAssembler::new();
        let mut digits = String::new();
        for e in 0..16u8 {
            for d in press(&mut a, 1, e as u32 * 10_000, e, e as u64 * 1000) {
                digits.push(d.digit);
            }
        }
        assert_eq!(digits, "0123456789*#ABCD");
        for c in digits.chars() {
            assert_eq!(event_digit(digit_event(c).unwrap()), Some(c));
        }
    }

    #[test]
    fn missing_end_is_emitted_on_timeout() {
        let mut a = DtmfAssembler::new();
        assert_eq!(a.push(3, 800, &ev(9, false, 400), 0), None);
        assert_eq!(a.push(3, 800, &ev(9, false, 800), 50), None);
        assert_eq!(a.poll(100), None);
        assert_eq!(a.poll(340), None);
        assert_eq!(a.poll(350), Some(DtmfDigit { digit: '9', duration_ms: 100 }));
        assert_eq!(a.poll(1000), None);
        // Its end packets showing up afterwards don't repeat it.
        assert_eq!(a.push(3, 800, &ev(9, true, 1600), 1010), None);
    }

    #[test]
    fn a_new_event_closes_an_unterminated_one() {
        let mut a = DtmfAssembler::new();
        assert_eq!(a.push(3, 800, &ev(4, false, 400), 0), None);
        let d = a.push(3, 2400, &ev(6, false, 400), 100);
        assert_eq!(d.map(|d| d.digit), Some('4'));
        // The second one is short: its first packet is already the end. Both still come out.
        let d = a.push(3, 4000, &ev(7, true, 160), 120);
        assert_eq!(d.map(|d| d.digit), Some('6'));
        assert_eq!(a.poll(130).map(|d| d.digit), Some('7'));
    }

    #[test]
    fn events_on_their_own_ssrc_are_accepted() {
        // Events arrive on another SSRC than the audio; the assembler has no notion of the
        // audio SSRC at all, and two sources don't merge their events.
        let mut a = DtmfAssembler::new();
        let mut out = press(&mut a, 0xAAAA, 1000, 2, 0);
        out.extend(press(&mut a, 0xBBBB, 1000, 2, 1000));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn garbage_is_ignored() {
        let mut a = DtmfAssembler::new();
        assert_eq!(a.push(1, 1, &[], 0), None);
        assert_eq!(a.push(1, 1, &[5, 0x80], 0), None);
        // Event 16 (flash) and 200 are not DTMF keys.
        assert_eq!(a.push(1, 2, &ev(16, true, 800), 0), None);
        assert_eq!(a.push(1, 3, &[200, 0xFF, 0xFF, 0xFF], 0), None);
        assert_eq!(a.poll(10_000), None);
    }
}
