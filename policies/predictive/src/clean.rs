//! Cleaning a metric window: gaps filled, isolated outliers damped (a Hampel filter).

use crate::stats::{self, select_quantile, small_median};

/// Half-width of the Hampel window, in points: spikes up to this many points wide are damped.
const HAMPEL_HALF: usize = 3;
/// Deviations from the local median beyond this many robust standard deviations are outliers.
const HAMPEL_K: f64 = 4.0;

/// A cleaned window and what cleaning changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// The values, gap-free and damped.
    pub values: Vec<f64>,
    /// Points that were missing (NaN or infinite) and were filled.
    pub filled: usize,
    /// Points replaced by their local median.
    pub damped: usize,
    /// Deviation from the local median above which a point was damped.
    pub threshold: f64,
}

/// Fills gaps (linear between neighbours, flat at the ends); `None` when no value is finite.
pub fn fill_gaps(raw: &[f64]) -> Option<(Vec<f64>, usize)> {
    let first = raw.iter().position(|v| v.is_finite())?;
    let mut out = raw.to_vec();
    let mut filled = 0;
    let mut last_ok = first;
    for slot in out.iter_mut().take(first) {
        *slot = raw[first];
        filled += 1;
    }
    for i in first + 1..raw.len() {
        if !raw[i].is_finite() {
            continue;
        }
        if i > last_ok + 1 {
            let (a, b) = (raw[last_ok], raw[i]);
            let span = (i - last_ok) as f64;
            for (k, slot) in out.iter_mut().enumerate().take(i).skip(last_ok + 1) {
                *slot = a + (b - a) * (k - last_ok) as f64 / span;
                filled += 1;
            }
        }
        last_ok = i;
    }
    for slot in out.iter_mut().skip(last_ok + 1) {
        *slot = raw[last_ok];
        filled += 1;
    }
    Some((out, filled))
}

/// Points a tail must have around the values it cleans (the Hampel window).
pub const TAIL_MARGIN: usize = 2 * HAMPEL_HALF + 2;

/// Fills gaps, then replaces each point far from the median of its neighbourhood by that median.
///
/// The scale is global (1.4826 × the median absolute deviation from the local medians, or of the
/// steps between neighbours when larger), so a quiet series does not flag its own small wiggles,
/// a smooth one keeps its peaks, and one burst cannot hide itself.
pub fn clean(raw: &[f64]) -> Option<Cleaned> {
    clean_with(raw, None)
}

/// [`clean`] with a known outlier threshold (from an earlier fit), or one measured here.
pub fn clean_with(raw: &[f64], known: Option<f64>) -> Option<Cleaned> {
    let (mut values, filled) = fill_gaps(raw)?;
    let n = values.len();
    let mut med = vec![0.0; n];
    for (i, m) in med.iter_mut().enumerate() {
        let lo = i.saturating_sub(HAMPEL_HALF);
        let hi = (i + HAMPEL_HALF + 1).min(n);
        *m = small_median(&values[lo..hi]);
    }
    let threshold = match known {
        Some(t) => t,
        None => {
            let mut dev: Vec<f64> = values
                .iter()
                .zip(&med)
                .map(|(v, m)| (v - m).abs())
                .collect();
            let local = 1.4826 * select_quantile(&mut dev, 0.5);
            // On a smooth curve sampled coarsely most points *are* their local median (a
            // monotone run), so the scale above collapses and every peak and trough reads as
            // an outlier. The typical step between neighbours bounds it from below: a point
            // must stand out from the series' own movement to be damped.
            let mut steps: Vec<f64> = values.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
            let moving = 1.4826 * select_quantile(&mut steps, 0.5) / core::f64::consts::SQRT_2;
            let sigma = local.max(moving);
            // A flat series (sigma 0) still loses lone spikes; the floor keeps float noise in.
            let scale = values.iter().fold(0.0, |a, v| stats::max(a, v.abs()));
            (HAMPEL_K * sigma).max(1e-9 * scale)
        }
    };
    let mut damped = 0;
    for (v, m) in values.iter_mut().zip(&med) {
        if (*v - m).abs() > threshold {
            *v = *m;
            damped += 1;
        }
    }
    Some(Cleaned {
        values,
        filled,
        damped,
        threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_interpolated_and_ends_held() {
        let nan = f64::NAN;
        let (v, filled) = fill_gaps(&[nan, 1.0, nan, nan, 4.0, f64::INFINITY]).unwrap();
        assert_eq!(v, vec![1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
        assert_eq!(filled, 4);
        assert!(fill_gaps(&[nan, nan]).is_none());
        assert!(fill_gaps(&[]).is_none());
    }

    #[test]
    fn a_coarse_smooth_cycle_keeps_its_peaks() {
        // A daily wave at 30-minute steps: monotone runs between turning points, no noise.
        let x: Vec<f64> = (0..480)
            .map(|i| 100.0 + 50.0 * (i as f64 * std::f64::consts::TAU / 48.0).sin())
            .collect();
        let c = clean(&x).unwrap();
        assert_eq!(c.damped, 0, "peaks of a smooth wave are not outliers");
        let mut spiked = x.clone();
        spiked[100] += 400.0;
        let c = clean(&spiked).unwrap();
        assert_eq!(c.damped, 1);
        assert!((c.values[100] - x[100]).abs() < 30.0, "{}", c.values[100]);
    }

    #[test]
    fn a_lone_spike_is_damped_and_a_step_is_kept() {
        let mut x: Vec<f64> = (0..100).map(|i| 10.0 + (i % 3) as f64 * 0.1).collect();
        x[40] = 500.0;
        for v in x.iter_mut().skip(70) {
            *v += 50.0;
        }
        let c = clean(&x).unwrap();
        assert!(c.values[40] < 11.0, "{}", c.values[40]);
        assert!(c.values[70] > 59.0 && c.values[69] < 11.0, "step moved");
        assert_eq!(c.damped, 1);
    }
}
