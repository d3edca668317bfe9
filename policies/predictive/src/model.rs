//! The forecasting model: a seasonal profile (per-phase medians over whole cycles) on a robust
//! level and trend, and the empirical quantile of its errors at the lead horizon. Fitted from a
//! cleaned window, cached in `state`, and applied to the latest values each call.

use crate::period::Period;
use crate::stats::{ls_slope, median, select_quantile, theil_sen};
use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Seconds of recent values whose mean sets the level.
const LEVEL_SECONDS: f64 = 1800.0;

/// A fitted model for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Metric interval, ms.
    pub interval_ms: i64,
    /// Period in whole points; 0 when none was found (level and trend only).
    pub lag: usize,
    /// Period in points, refined.
    pub period_points: f64,
    /// Confidence of the period, 0..1 (0 without one).
    pub confidence: f64,
    /// Time of a value at phase 0 of the profile, Unix ms.
    pub anchor_ms: i64,
    /// Seasonal profile, one value per phase, mean 0.
    pub profile: Vec<f64>,
    /// Trend per point.
    pub slope: f64,
    /// How many recent points set the level.
    pub level_points: usize,
    /// Lead horizon in points that `margin` was measured at.
    pub horizon_points: usize,
    /// The QoS quantile of the forecast error at the horizon (added to the forecast).
    pub margin: f64,
    /// Threshold the cleaning used for outliers, reused on new values.
    pub outlier_threshold: f64,
    /// When it was fitted, Unix ms.
    pub fitted_at: i64,
    /// Points it was fitted on.
    pub history_points: usize,
}

/// What a fit needs besides the values.
#[derive(Debug, Clone, Copy)]
pub struct FitSpec {
    /// Time of the last value, Unix ms.
    pub end_ms: i64,
    /// Metric interval, ms.
    pub interval_ms: i64,
    /// Lead horizon, points.
    pub horizon_points: usize,
    /// QoS quantile.
    pub quantile: f64,
    /// Outlier threshold from cleaning.
    pub outlier_threshold: f64,
    /// Time of the fit, Unix ms.
    pub now: i64,
}

/// Points whose mean sets the level, for an interval in seconds.
pub fn level_points(interval_seconds: f64, n: usize) -> usize {
    let m = (LEVEL_SECONDS / interval_seconds).round().max(2.0) as usize;
    m.min((n / 2).max(1))
}

impl Model {
    /// Fits the model on cleaned values `x` (oldest first), seasonal when `period` is given and
    /// at least two whole cycles fit in `x`.
    pub fn fit(x: &[f64], period: Option<Period>, spec: FitSpec) -> Model {
        let n = x.len();
        let interval_s = spec.interval_ms as f64 / 1000.0;
        let m = level_points(interval_s, n);
        let h = spec.horizon_points.max(1);
        let seasonal = period.filter(|p| p.lag >= 2 && n / p.lag >= 2);
        let (lag, profile, slope, start) = match seasonal {
            Some(p) => {
                let (profile, slope, start) = seasonal_profile(x, p.lag);
                (p.lag, profile, slope, start)
            }
            None => {
                let tail = &x[n.saturating_sub(4 * m)..];
                (0, Vec::new(), ls_slope(tail), n)
            }
        };
        let anchor_ms = spec.end_ms - (n as i64 - 1 - start as i64) * spec.interval_ms;
        let deseason: Vec<f64> = if lag == 0 {
            x.to_vec()
        } else {
            x.iter()
                .enumerate()
                .map(|(i, v)| {
                    v - profile[(i as i64 - start as i64).rem_euclid(lag as i64) as usize]
                })
                .collect()
        };
        // Errors of the same forecast made h points earlier, over the whole window: the
        // empirical distribution the QoS quantile is read from.
        let mut prefix = Vec::with_capacity(n + 1);
        prefix.push(0.0);
        let mut acc = 0.0;
        for v in &deseason {
            acc += v;
            prefix.push(acc);
        }
        let ahead = slope * ((m as f64 - 1.0) / 2.0 + h as f64);
        let mut errors: Vec<f64> = (m.saturating_sub(1)..n.saturating_sub(h))
            .map(|t| {
                let level = (prefix[t + 1] - prefix[t + 1 - m]) / m as f64;
                deseason[t + h] - (level + ahead)
            })
            .collect();
        let margin = if errors.is_empty() {
            0.0
        } else {
            select_quantile(&mut errors, spec.quantile)
        };
        Model {
            interval_ms: spec.interval_ms,
            lag,
            period_points: seasonal.map_or(0.0, |p| p.refined),
            confidence: seasonal.map_or(0.0, |p| p.confidence),
            anchor_ms,
            profile,
            slope,
            level_points: m,
            horizon_points: h,
            margin,
            outlier_threshold: spec.outlier_threshold,
            fitted_at: spec.now,
            history_points: n,
        }
    }

    /// The seasonal component at time `t_ms` (0 without a period).
    pub fn seasonal_at(&self, t_ms: i64) -> f64 {
        if self.lag == 0 {
            return 0.0;
        }
        let steps = ((t_ms - self.anchor_ms) as f64 / self.interval_ms as f64).round() as i64;
        self.profile[steps.rem_euclid(self.lag as i64) as usize]
    }

    /// The central forecast at `end_ms + k × interval` for k = 1..=steps, from the latest
    /// cleaned values `x` ending at `end_ms`.
    pub fn forecast(&self, x: &[f64], end_ms: i64, steps: usize) -> Vec<f64> {
        let m = self.level_points.min(x.len()).max(1);
        let tail = &x[x.len() - m..];
        let first_ms = end_ms - (m as i64 - 1) * self.interval_ms;
        let level = tail
            .iter()
            .enumerate()
            .map(|(i, v)| v - self.seasonal_at(first_ms + i as i64 * self.interval_ms))
            .sum::<f64>()
            / m as f64;
        let centre = (m as f64 - 1.0) / 2.0;
        (1..=steps)
            .map(|k| {
                let t = end_ms + k as i64 * self.interval_ms;
                level + self.slope * (centre + k as f64) + self.seasonal_at(t)
            })
            .collect()
    }
}

/// The seasonal profile of `x` at period `lag` over the whole cycles that end at its last value:
/// per-phase medians after removing each cycle's mean and the trend. Returns the profile (mean 0),
/// the trend per point, and the index of the first value used (phase 0).
fn seasonal_profile(x: &[f64], lag: usize) -> (Vec<f64>, f64, usize) {
    let k = x.len() / lag;
    let start = x.len() - k * lag;
    let cycles = ArrayView2::from_shape((k, lag), &x[start..]).expect("k × lag values");
    let means = cycles.mean_axis(Axis(1)).expect("at least one cycle");
    let means = means.as_slice().expect("contiguous");
    let slope = theil_sen(means) / lag as f64;
    let mid = (lag as f64 - 1.0) / 2.0;
    let mut column = vec![0.0; k];
    let raw: Vec<f64> = (0..lag)
        .map(|j| {
            for (c, (row, mean)) in column.iter_mut().zip(cycles.outer_iter().zip(means)) {
                *c = row[j] - mean - slope * (j as f64 - mid);
            }
            median(&mut column)
        })
        .collect();
    // A light circular smoothing (±lag/288: 5 minutes of a day) against per-phase noise.
    let half = lag / 288;
    let mut profile: Vec<f64> = if half == 0 {
        raw
    } else {
        let w = (2 * half + 1) as f64;
        (0..lag)
            .map(|j| {
                (0..=2 * half)
                    .map(|d| raw[(j + lag + d - half) % lag])
                    .sum::<f64>()
                    / w
            })
            .collect()
    };
    let mean = profile.iter().sum::<f64>() / lag as f64;
    profile.iter_mut().for_each(|v| *v -= mean);
    (profile, slope, start)
}
