//! A workload's load history: its window on a grid aligned to `step`, held in memory and topped
//! up from Prometheus with only the points newer than what it holds.
//!
//! The first fetch backfills the whole `lookback` in chunks of at most [`CHUNK_POINTS`] points
//! (Prometheus refuses a `query_range` of more than 11,000 points per series); later fetches ask
//! only for the grid points after the newest one held. The load *now* (the [`History::tail`],
//! from an instant query on each poll) ends the window, so that the policy never sees a load
//! older than the poll: a workload polled every 30 s at a 1-minute step costs Prometheus at most
//! two samples per poll (one grid point every other poll, and the tail). A gap (Prometheus down,
//! the scaler not polled) is covered by the next fetch, which starts after the newest point held
//! however old it is. Memory is `8 bytes × lookback / step` per workload
//! (80 KiB for a week at one minute), at most [`crate::metadata::MAX_POINTS`] points.

use std::collections::VecDeque;
use std::time::Duration;

pub use leadtime_prometheus::{Chunk, CHUNK_POINTS};

/// What a workload's policy is sent: the held window, from its first point with data.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Time of the last point, Unix milliseconds.
    pub end_ms: i64,
    /// Seconds between points.
    pub step_seconds: f64,
    /// Oldest first; NaN where Prometheus had no point.
    pub values: Vec<f64>,
}

impl Window {
    /// Seconds of history the window covers.
    pub fn span_seconds(&self) -> f64 {
        self.values.len() as f64 * self.step_seconds
    }
}

/// One workload's load history: see the module docs.
#[derive(Debug, Clone)]
pub struct History {
    step: i64,
    capacity: usize,
    /// Time of `values[0]`, Unix seconds, a multiple of `step`; meaningless while empty.
    start: i64,
    values: VecDeque<f64>,
    /// The load at the last poll (Unix milliseconds, value), after the newest grid point.
    tail: Option<(i64, f64)>,
}

impl History {
    /// An empty history of `lookback` at `step` (whole seconds, at least one).
    pub fn new(lookback: Duration, step: Duration) -> History {
        let step = (step.as_secs() as i64).max(1);
        let capacity = ((lookback.as_secs() as i64) / step).max(1) as usize;
        History {
            step,
            capacity,
            start: 0,
            values: VecDeque::new(),
            tail: None,
        }
    }

    /// Whether nothing is held yet (the next fetch is a backfill).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The newest grid point at `now_s` (Unix seconds).
    fn grid_end(&self, now_s: f64) -> i64 {
        (now_s.floor() as i64).div_euclid(self.step) * self.step
    }

    /// Time of the newest point held.
    fn last(&self) -> Option<i64> {
        (!self.values.is_empty()).then(|| self.start + (self.values.len() as i64 - 1) * self.step)
    }

    /// The chunks to ask Prometheus for at `now_s`: the whole lookback when empty (or when the
    /// newest point held is older than the lookback), else the grid points after the newest held.
    pub fn missing(&self, now_s: f64) -> Vec<Chunk> {
        let end = self.grid_end(now_s);
        let oldest = end - (self.capacity as i64 - 1) * self.step;
        let start = match self.last() {
            Some(last) if last >= oldest => last + self.step,
            _ => oldest,
        };
        leadtime_prometheus::chunks(start, end, self.step)
    }

    /// Stores fetched points (time in Unix seconds, the sum over series) of the range
    /// `start..=end`, then drops what fell out of the lookback. A point already held that the
    /// fetch lacks keeps its value; grid points with no value at all are NaN.
    pub fn merge(&mut self, start: i64, end: i64, points: &[(i64, f64)]) {
        if end < start {
            return;
        }
        if self.values.is_empty() || start > self.last().unwrap_or(i64::MIN) + self.step {
            // Empty, or a range that does not touch what is held: start afresh there.
            self.values.clear();
            self.start = start;
        }
        let last = self.start + (end - self.start) / self.step * self.step;
        while self.last().is_some_and(|l| l < last) || self.values.is_empty() {
            self.values.push_back(f64::NAN);
        }
        for &(t, v) in points {
            if t < self.start || t < start || t > end || (t - self.start) % self.step != 0 {
                continue;
            }
            if !v.is_finite() {
                continue;
            }
            let i = ((t - self.start) / self.step) as usize;
            if let Some(slot) = self.values.get_mut(i) {
                *slot = v;
            }
        }
        while self.values.len() > self.capacity {
            self.values.pop_front();
            self.start += self.step;
        }
    }

    /// Records the load at `at_ms`, the time of the poll: it ends the window until the next.
    pub fn set_tail(&mut self, at_ms: i64, value: f64) {
        self.tail = value.is_finite().then_some((at_ms, value));
    }

    /// The held window from its first point with data, ended by the tail when it is newer than
    /// the newest grid point (the last interval is then shorter than `step`); `None` while no
    /// point has data.
    pub fn window(&self) -> Option<Window> {
        let tail = self
            .tail
            .filter(|(t, _)| self.last().is_none_or(|l| *t > l * 1000));
        let first = self.values.iter().position(|v| !v.is_nan());
        let mut values: Vec<f64> = match first {
            Some(first) => self.values.iter().skip(first).copied().collect(),
            None => Vec::new(),
        };
        let end_ms = match tail {
            Some((t, v)) => {
                values.push(v);
                t
            }
            None if values.is_empty() => return None,
            None => self.last()? * 1000,
        };
        Some(Window {
            end_ms,
            step_seconds: self.step as f64,
            values,
        })
    }

    /// Seconds the full lookback covers.
    pub fn lookback_seconds(&self) -> f64 {
        self.capacity as f64 * self.step as f64
    }

    /// Bytes the history holds (its points).
    pub fn bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn first_fetch_backfills_the_lookback_in_chunks_under_the_point_limit() {
        let h = History::new(7 * 24 * H, Duration::from_secs(60));
        let now = 1_700_000_000.5;
        let chunks = h.missing(now);
        let total: i64 = chunks.iter().map(Chunk::points).sum();
        assert_eq!(total, 10_080);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.points() <= CHUNK_POINTS));
        assert_eq!(chunks[0].end + 60, chunks[1].start, "contiguous");
        assert_eq!(
            chunks[1].end,
            1_700_000_000 / 60 * 60,
            "aligned to the step"
        );
        assert_eq!(chunks[0].start % 60, 0);
    }

    #[test]
    fn later_fetches_ask_only_from_the_newest_point_held() {
        let mut h = History::new(H, Duration::from_secs(60));
        let t0 = 1_700_000_040; // a multiple of 60
        let c = h.missing(t0 as f64);
        assert_eq!(c.len(), 1);
        let pts: Vec<_> = (0..60).map(|i| (c[0].start + i * 60, i as f64)).collect();
        h.merge(c[0].start, c[0].end, &pts);
        assert_eq!(h.window().unwrap().values.len(), 60);
        // 30 s later: no grid point is due; the tail (the load now) ends the window.
        assert_eq!(h.missing(t0 as f64 + 30.0), vec![]);
        h.set_tail((t0 + 30) * 1000, 42.0);
        let w = h.window().unwrap();
        assert_eq!((w.values.len(), w.values[60]), (61, 42.0));
        assert_eq!(w.end_ms, (t0 + 30) * 1000);
        // 70 s later: one new grid point.
        let c = h.missing(t0 as f64 + 70.0);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].points(), 1);
        h.merge(c[0].start, c[0].end, &[(t0 + 60, 100.0)]);
        // The old tail is older than the new grid point: left out.
        let w = h.window().unwrap();
        assert_eq!(w.values.len(), 60);
        assert_eq!(w.values[58], 59.0);
        assert_eq!(w.values[59], 100.0);
        assert_eq!(w.end_ms, (t0 + 60) * 1000);
        assert_eq!(w.values[0], 1.0);
    }

    #[test]
    fn a_gap_is_refilled_and_a_long_one_starts_afresh() {
        let mut h = History::new(H, Duration::from_secs(60));
        let t0 = 1_700_000_040;
        h.merge(t0 - 600, t0, &[(t0 - 600, 1.0), (t0, 2.0)]);
        // Ten minutes later: one fetch after the newest point covers the gap.
        let c = h.missing(t0 as f64 + 600.0);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].start, c[0].end), (t0 + 60, t0 + 600));
        h.merge(c[0].start, c[0].end, &[(t0 + 300, 3.0), (t0 + 600, 4.0)]);
        let w = h.window().unwrap();
        assert_eq!(w.values.len(), 21);
        assert_eq!(w.values[15], 3.0);
        assert!(w.values[14].is_nan());
        // Two hours later, past the lookback: a whole backfill again.
        let c = h.missing(t0 as f64 + 7200.0);
        assert_eq!(c.iter().map(Chunk::points).sum::<i64>(), 60);
        h.merge(c[0].start, c[0].end, &[(c[0].end, 9.0)]);
        assert_eq!(h.window().unwrap().values, vec![9.0]);
    }

    #[test]
    fn window_starts_at_the_first_point_with_data_and_memory_is_bounded() {
        let mut h = History::new(7 * 24 * H, Duration::from_secs(60));
        assert!(h.window().is_none());
        // Only a tail (a fresh Prometheus, no grid point with data yet): a window of one.
        h.set_tail(1_700_000_000_000, 5.0);
        assert_eq!(h.window().unwrap().values, vec![5.0]);
        h.set_tail(1_700_000_000_000, f64::NAN);
        assert!(h.window().is_none());
        let end = 1_700_000_040;
        let start = end - 10_079 * 60;
        // Prometheus holds two hours: the policy is sent two hours, not a week of NaN.
        let pts: Vec<_> = (0..120).map(|i| (end - i * 60, 1.0)).collect();
        h.merge(start, end, &pts);
        let w = h.window().unwrap();
        assert_eq!(w.values.len(), 120);
        assert_eq!(w.span_seconds(), 7200.0);
        assert!(h.bytes() >= 10_080 * 8 && h.bytes() <= 2 * 10_080 * 8);
        assert_eq!(h.lookback_seconds(), 7.0 * 86_400.0);
    }
}
