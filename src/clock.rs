//! Wall-clock time for records and events: the one place that reads the system clock as
//! milliseconds since the epoch. (Decisions use `Instant`s handed in by their drivers.)

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
