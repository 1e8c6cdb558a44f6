//! The call's named timers, in one table (the shape of quinn-proto's `TimerTable`): the core
//! sets and stops them by name, the driver sleeps until the earliest and feeds its expiry back.
//! Nothing else in a call waits on the clock.

use std::time::Instant;

/// Every deadline a call can be waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The brain owes a reply: a filler at the first expiry, an apology at the second.
    Reply,
    /// The caller has the floor and says nothing: tell the brain (it reprompts) and triage.
    NoInput,
    /// A caller utterance is with the recognizer: past this, ask the caller to repeat.
    Recognition,
    /// A reply line is with the synthesizer and no audio came: say a cached line instead.
    Synthesis,
    /// An agent's phone rings: past this (the dialer's own ring time plus a margin) the
    /// attempt counts as unanswered even if the dialer never reports.
    Ring,
    /// The call ends at this instant (after the goodbye plays, or at once).
    Hangup,
    /// The longest a call may last.
    MaxDuration,
    /// The gateway is draining: past this the call hears a goodbye and ends.
    Drain,
    /// Keypad collection: the longest pause between two digits.
    DigitGap,
    /// Keypad collection: the longest the whole entry may take.
    DigitsOverall,
    /// The survey question has played: the caller's time to answer.
    SurveyAnswer,
}

impl Timer {
    pub const ALL: [Timer; 11] = [
        Timer::Reply,
        Timer::NoInput,
        Timer::Recognition,
        Timer::Synthesis,
        Timer::Ring,
        Timer::Hangup,
        Timer::MaxDuration,
        Timer::Drain,
        Timer::DigitGap,
        Timer::DigitsOverall,
        Timer::SurveyAnswer,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One deadline slot per [`Timer`].
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    due: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.due[timer.index()] = Some(at);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.due[timer.index()] = None;
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.due[timer.index()]
    }

    pub fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// The earliest deadline, for the driver's sleep.
    pub fn next(&self) -> Option<Instant> {
        self.due.iter().flatten().min().copied()
    }

    /// Takes the earliest timer due at `now`, if any (each expires once: it is stopped here).
    pub fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL.into_iter().filter(|t| self.get(*t).is_some_and(|at| at <= now)).min_by_key(|t| self.get(*t))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_due_timer_expires_first_and_only_once() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::MaxDuration, t0 + Duration::from_secs(1800));
        table.set(Timer::NoInput, t0 + Duration::from_secs(6));
        table.set(Timer::Reply, t0 + Duration::from_secs(4));
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(4)));
        assert_eq!(table.take_expired(t0 + Duration::from_secs(3)), None);
        let later = t0 + Duration::from_secs(7);
        assert_eq!(table.take_expired(later), Some(Timer::Reply));
        assert_eq!(table.take_expired(later), Some(Timer::NoInput));
        assert_eq!(table.take_expired(later), None);
        table.stop(Timer::MaxDuration);
        assert_eq!(table.next(), None);
    }
}
