//! The forecasting model: a seasonal profile (per-phase medians over whole cycles) on a robust
//! level and trend, and the empirical quantile of its errors at the lead horizon. Fitted from a
//! cleaned window, cached in `state`, and applied to the latest values each call.

use crate::period::Period;
use crate::stats::{self, ls_slope, median, select_quantile, small_median, theil_sen};
use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Level windows tried at a fit, in points: a short one follows a noisy signal's turns, a long one
/// averages its noise; the fit keeps the one that needs the least margin for the same QoS.
const LEVEL_CANDIDATES: [usize; 9] = [1, 2, 3, 5, 8, 13, 21, 34, 55];

/// Points of the fast level that catches a level shift the fitted level has not yet followed.
const FAST_LEVEL: usize = 3;

/// Widest half-window of the seasonal profile's running median, in points.
const SMOOTH_MAX: usize = 16;

/// Most forecast origins an error model is measured on.
const MAX_ORIGINS: usize = 4096;

/// Smallest error scale of the relative error model, as a share of the mean load: near-zero
/// forecasts would otherwise make relative errors explode.
const SCALE_FLOOR_SHARE: f64 = 0.05;

/// A fitted model for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Metric interval, ms.
    pub interval_ms: i64,
    /// Period in whole points the forecast uses; 0 for level and trend only (none found, or
    /// the level-and-trend model replayed cheaper than the seasonal one).
    pub lag: usize,
    /// Period in points, refined, as found (0 when none was); kept when the forecast drops it.
    pub period_points: f64,
    /// Confidence of the period, 0..1 (0 without one).
    pub confidence: f64,
    /// Time of a value at phase 0 of the profile, Unix ms.
    pub anchor_ms: i64,
    /// Seasonal profile, one value per phase, mean 0.
    #[serde(with = "packed")]
    pub profile: Vec<f64>,
    /// Trend per point.
    pub slope: f64,
    /// How many recent points set the level.
    pub level_points: usize,
    /// Lead horizon in points that `margin` was measured at.
    pub horizon_points: usize,
    /// The QoS quantile of the forecast error at the horizon, in units of the error scale.
    pub margin: f64,
    /// Whether errors scale with the forecast (relative) rather than being the same at any
    /// load (absolute).
    pub relative: bool,
    /// Smallest error scale of the relative model.
    pub scale_floor: f64,
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

impl Model {
    /// Fits the model on cleaned values `x` (oldest first), seasonal when `period` is given and
    /// at least two whole cycles fit in `x` (and the seasonal model replays cheaper than level
    /// and trend alone).
    pub fn fit(x: &[f64], period: Option<Period>, spec: FitSpec) -> Model {
        Model::fit_among(x, period.as_slice(), spec)
    }

    /// Fits each candidate period (those with two whole cycles in `x`) and the level-and-trend
    /// model, and keeps the one whose in-window replay needed the least capacity above the load
    /// for the QoS quantile; the first candidate is the period found. The cost is one profile and
    /// one replay per candidate. (The replay is in-sample: a profile of few cycles looks better
    /// than it forecasts, so candidates of under three cycles are not worth offering.)
    pub fn fit_among(x: &[f64], periods: &[Period], spec: FitSpec) -> Model {
        let n = x.len();
        let h = spec.horizon_points.max(1);
        let mean_abs = x.iter().map(|v| v.abs()).sum::<f64>() / n.max(1) as f64;
        let scale_floor = (SCALE_FLOOR_SHARE * mean_abs).max(f64::MIN_POSITIVE);
        // The level-and-trend model: no season, the trend of the recent tail.
        let tail_slope = ls_slope(&x[n.saturating_sub(4 * LEVEL_CANDIDATES[4])..]);
        let flat = vec![0.0; n];
        let mut errors = ErrorModel::choose(x, &flat, tail_slope, h, spec.quantile, scale_floor);
        let (mut lag, mut profile, mut slope, mut start) = (0, Vec::new(), tail_slope, n);
        let mut chosen: Option<Period> = None;
        for p in periods.iter().filter(|p| p.lag >= 2 && n / p.lag >= 2) {
            let (prof, sl, st) = seasonal_profile(x, p.lag);
            // Phase 0 is at `st`: the profile, cycled, from the phase of the first point.
            let first = (p.lag - st % p.lag) % p.lag;
            let season: Vec<f64> = prof.iter().cycle().skip(first).take(n).copied().collect();
            let e = ErrorModel::choose(x, &season, sl, h, spec.quantile, scale_floor);
            // A seasonal model decides when it replays no dearer than level and trend alone.
            if e.excess <= errors.excess {
                errors = e;
                (lag, profile, slope, start) = (p.lag, prof, sl, st);
                chosen = Some(*p);
            }
        }
        // The period found stays in `period_points` when level and trend decide, for the reason.
        let seasonal = chosen.or_else(|| {
            periods
                .first()
                .copied()
                .filter(|p| p.lag >= 2 && n / p.lag >= 2)
        });
        let anchor_ms = spec.end_ms - (n as i64 - 1 - start as i64) * spec.interval_ms;
        Model {
            interval_ms: spec.interval_ms,
            lag,
            period_points: seasonal.map_or(0.0, |p| p.refined),
            confidence: seasonal.map_or(0.0, |p| p.confidence),
            anchor_ms,
            profile,
            slope,
            level_points: errors.level_points,
            horizon_points: h,
            margin: errors.margin,
            relative: errors.relative,
            scale_floor,
            outlier_threshold: spec.outlier_threshold,
            fitted_at: spec.now,
            history_points: n,
        }
    }

    /// The scale of the forecast error around a central forecast `f`.
    pub fn error_scale(&self, f: f64) -> f64 {
        if self.relative {
            f.max(self.scale_floor)
        } else {
            1.0
        }
    }

    /// The upper forecast: `central` plus the QoS margin at its scale.
    pub fn upper(&self, central: f64) -> f64 {
        central + self.margin * self.error_scale(central)
    }

    /// The seasonal component at time `t_ms` (0 without a period).
    pub fn seasonal_at(&self, t_ms: i64) -> f64 {
        if self.lag == 0 {
            return 0.0;
        }
        let steps = ((t_ms - self.anchor_ms) as f64 / self.interval_ms as f64).round() as i64;
        self.profile[steps.rem_euclid(self.lag as i64) as usize]
    }

    /// How far the last [`FAST_LEVEL`] points stand above the fitted level (seasonal component
    /// and trend taken out), when by more than the QoS margin: a level shift up that a long
    /// level window would take hours to follow. 0 otherwise, and never negative: a drop is left
    /// to the fitted level, since reacting to it early costs under-provisioning.
    pub fn level_shift(&self, x: &[f64], end_ms: i64) -> f64 {
        let long = self.level_points.min(x.len());
        if long <= FAST_LEVEL {
            return 0.0;
        }
        let level = |m: usize| {
            let first_ms = end_ms - (m as i64 - 1) * self.interval_ms;
            x[x.len() - m..]
                .iter()
                .enumerate()
                .map(|(i, v)| v - self.seasonal_at(first_ms + i as i64 * self.interval_ms))
                .sum::<f64>()
                / m as f64
        };
        // The long level's centre is (long - FAST_LEVEL) / 2 points older: bring it forward.
        let expected = level(long) + self.slope * (long - FAST_LEVEL) as f64 / 2.0;
        let shift = level(FAST_LEVEL) - expected;
        let band = self.margin.max(0.0) * self.error_scale(expected);
        if shift.is_finite() && shift > band {
            shift
        } else {
            0.0
        }
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

/// How the forecast's errors are modelled: the level window and error scale that needed the least
/// capacity above the load for the QoS quantile, over the whole window.
struct ErrorModel {
    level_points: usize,
    relative: bool,
    margin: f64,
    /// Mean capacity above the load it needed over the replay (lower is better).
    excess: f64,
}

impl ErrorModel {
    /// Replays the forecast `h` points ahead from every point of `x` (with seasonal component
    /// `season` and trend `slope`) for each level window and error scale, and keeps the pair with
    /// the least mean excess capacity: margin × scale − error. Every candidate covers the same
    /// share of points (`q`), so the cheapest is the best.
    fn choose(x: &[f64], season: &[f64], slope: f64, h: usize, q: f64, floor: f64) -> ErrorModel {
        let n = x.len();
        let mut prefix = Vec::with_capacity(n + 1);
        prefix.push(0.0);
        let mut acc = 0.0;
        for (v, s) in x.iter().zip(season) {
            acc += v - s;
            prefix.push(acc);
        }
        let widest = LEVEL_CANDIDATES
            .iter()
            .copied()
            .filter(|&m| m <= (n / 2).max(1))
            .max()
            .unwrap_or(1);
        // The same forecast origins for every candidate, so that their costs compare; at most
        // MAX_ORIGINS of them, evenly spread (a quantile of thousands of errors is as good as
        // one of all of them, and a 14-day window at 1 minute has 20,000).
        let all = widest.saturating_sub(1)..n.saturating_sub(h);
        let stride = all.len().div_ceil(MAX_ORIGINS).max(1);
        let origins = all.step_by(stride);
        let mut best = ErrorModel {
            level_points: widest,
            relative: false,
            margin: 0.0,
            excess: f64::INFINITY,
        };
        if origins.len() == 0 {
            return best;
        }
        let mut best_excess = f64::INFINITY;
        let mut errors = Vec::with_capacity(origins.len());
        let mut scaled = Vec::with_capacity(origins.len());
        let count = origins.len() as f64;
        for m in LEVEL_CANDIDATES.into_iter().filter(|&m| m <= widest) {
            let ahead = slope * ((m as f64 - 1.0) / 2.0 + h as f64);
            let per_point = 1.0 / m as f64;
            let (mut error_sum, mut scale_sum) = (0.0, 0.0);
            errors.clear();
            errors.extend(origins.clone().map(|t| {
                let level = (prefix[t + 1] - prefix[t + 1 - m]) * per_point;
                let central = level + ahead + season[t + h];
                let (e, s) = (x[t + h] - central, stats::max(floor, central));
                error_sum += e;
                scale_sum += s;
                (e, s)
            }));
            for relative in [false, true] {
                scaled.clear();
                scaled.extend(
                    errors
                        .iter()
                        .map(|&(e, s)| if relative { e / s } else { e }),
                );
                let margin = select_quantile(&mut scaled, q);
                // The mean of margin × scale − error.
                let scale = if relative { scale_sum } else { count };
                let excess = (margin * scale - error_sum) / count;
                if excess < best_excess {
                    best_excess = excess;
                    best = ErrorModel {
                        level_points: m,
                        relative,
                        margin,
                        excess,
                    };
                }
            }
        }
        best
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
            // Up to 8 cycles (a week of days) the sorting network is several times faster.
            if k <= 8 {
                small_median(&column)
            } else {
                median(&mut column)
            }
        })
        .collect();
    // A light circular running median (±lag/288: 5 minutes of a day) against per-phase noise;
    // a median, unlike a mean, keeps a sharp daily edge sharp. At most ±SMOOTH_MAX points: the
    // work is lag × window, and a week at 15-second steps (40,320 phases, ±140) took 400M fuel.
    let half = (lag / 288).min(SMOOTH_MAX);
    let mut profile: Vec<f64> = if half == 0 {
        raw
    } else {
        let mut window = vec![0.0; 2 * half + 1];
        (0..lag)
            .map(|j| {
                for (d, w) in window.iter_mut().enumerate() {
                    *w = raw[(j + lag + d - half) % lag];
                }
                median(&mut window)
            })
            .collect()
    };
    let mean = profile.iter().sum::<f64>() / lag as f64;
    profile.iter_mut().for_each(|v| *v -= mean);
    (profile, slope, start)
}

/// A `Vec<f64>` as one byte string (little-endian), not a list of numbers: the model travels in
/// `state` on every call, and a weekly profile at 1 minute is 10,080 values, which MessagePack
/// would otherwise encode and decode one by one.
mod packed {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        struct Packed;

        impl Visitor<'_> for Packed {
            type Value = Vec<f64>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes holding little-endian f64 values")
            }

            fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<f64>, E> {
                if !bytes.len().is_multiple_of(8) {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect())
            }
        }

        d.deserialize_bytes(Packed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadtime_guest::codec;

    #[test]
    fn the_model_round_trips_through_state_with_its_profile_packed() {
        let x: Vec<f64> = (0..4 * 96)
            .map(|i| 50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 96.0).sin())
            .collect();
        let period = Period {
            lag: 96,
            refined: 96.0,
            confidence: 0.9,
        };
        let spec = FitSpec {
            end_ms: 0,
            interval_ms: 900_000,
            horizon_points: 1,
            quantile: 0.95,
            outlier_threshold: 1.0,
            now: 0,
        };
        let model = Model::fit(&x, Some(period), spec);
        assert_eq!(model.profile.len(), 96);
        let bytes = codec::to_msgpack(&model).unwrap();
        // 8 bytes a value plus the other fields: no per-value markers.
        assert!(bytes.len() < 96 * 8 + 400, "{} bytes", bytes.len());
        let back: Model = codec::from_msgpack(&bytes).unwrap();
        assert_eq!(back, model);
    }

    #[test]
    fn a_profile_of_a_broken_length_is_refused() {
        #[derive(Debug, Deserialize)]
        struct Only {
            #[serde(with = "packed")]
            #[allow(dead_code)]
            profile: Vec<f64>,
        }
        // {"profile": 12 bytes}: one and a half values.
        let mut bytes = vec![0x81, 0xa7];
        bytes.extend_from_slice(b"profile");
        bytes.extend_from_slice(&[0xc4, 12]);
        bytes.extend_from_slice(&[0; 12]);
        let err = codec::from_msgpack::<Only>(&bytes).unwrap_err();
        assert!(err.to_string().contains("little-endian"), "{err}");
    }
}
