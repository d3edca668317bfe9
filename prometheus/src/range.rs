//! A range of grid points to ask Prometheus for, and a long range cut into pages under its
//! per-series point limit.

/// The most points asked of Prometheus in one `query_range` (its limit is 11,000 per series).
pub const CHUNK_POINTS: i64 = 10_000;

/// A range of grid points to ask Prometheus for: `start..=end` every `step` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// First point.
    pub start: i64,
    /// Last point.
    pub end: i64,
    /// Seconds between points.
    pub step: i64,
}

impl Chunk {
    /// How many points the chunk asks for.
    pub fn points(&self) -> i64 {
        (self.end - self.start) / self.step + 1
    }
}

/// The grid points `start..=end` every `step` (`step` > 0), in pages of at most
/// [`CHUNK_POINTS`], oldest first; none when `start > end`.
pub fn chunks(start: i64, end: i64, step: i64) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut from = start;
    while from <= end {
        let to = (from + (CHUNK_POINTS - 1) * step).min(end);
        out.push(Chunk {
            start: from,
            end: to,
            step,
        });
        from = to + step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_range_once_within_the_point_limit() {
        for (start, end, step) in [
            (0, 0, 60),
            (0, 59, 1),
            (100, 100 + 14 * 86_400, 60),
            (0, 86_400 * 7, 6),
        ] {
            let pages = chunks(start, end, step);
            assert_eq!(pages[0].start, start);
            assert!(pages
                .iter()
                .all(|c| c.points() <= CHUNK_POINTS && c.step == step));
            assert!(pages.windows(2).all(|w| w[1].start == w[0].end + step));
            let last = pages.last().unwrap().end;
            assert!(
                last <= end && end - last < step,
                "{start}..{end} by {step}: ends {last}"
            );
            let total: i64 = pages.iter().map(Chunk::points).sum();
            assert_eq!(total, (end - start) / step + 1);
        }
        assert!(chunks(10, 0, 1).is_empty());
    }
}
