//! Repeated errors logged once per interval: during a Prometheus outage every workload fails
//! every poll, and a line per call would bury the log. Each workload keeps one of these; a line
//! is written for a cause the first time and then at most once per interval, with the count of
//! the ones held back since.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often one workload logs one cause unless `logInterval` says otherwise.
pub const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Per cause: when it was last logged, and how many times it happened since.
#[derive(Debug, Default)]
pub struct LogLimit {
    causes: HashMap<String, (Instant, u64)>,
}

impl LogLimit {
    /// Whether to log `cause` now, given `interval`: `Some(n)` with the `n` occurrences held back
    /// since the last line, `None` to stay quiet (and count this one).
    pub fn admit(&mut self, cause: &str, interval: Duration, now: Instant) -> Option<u64> {
        match self.causes.get_mut(cause) {
            Some((last, held)) if now.duration_since(*last) < interval => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                (*last, *held) = (now, 0);
                Some(n)
            }
            None => {
                // A workload has a handful of causes (error kinds), so this stays small.
                self.causes.insert(cause.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_cause_per_interval_with_the_count_held_back() {
        let mut limit = LogLimit::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let minute = s(60);
        // (seconds after t0, cause, what admit says)
        let table = [
            (0, "unreachable", Some(0)),
            (10, "unreachable", None),
            (20, "unreachable", None),
            (25, "timeout", Some(0)),
            (59, "unreachable", None),
            (60, "unreachable", Some(3)),
            (61, "unreachable", None),
            (84, "timeout", None),
            (85, "timeout", Some(1)),
            (200, "unreachable", Some(1)),
        ];
        for (at, cause, want) in table {
            assert_eq!(
                limit.admit(cause, minute, t0 + s(at)),
                want,
                "{cause} at {at} s"
            );
        }
    }
}
