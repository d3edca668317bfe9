//! `crane-dsp`: the DSP predictor of Crane's Effective HPA (gocrane/crane `pkg/prediction/dsp`),
//! as a comparison peer for backtests: the bar the predictive policy must clear.
//!
//! Followed (read, not copied): `prediction.go` (pre-processing, the daily-then-weekly periodicity
//! test, estimator choice on the last cycle, the max over the prediction window), `signal.go`
//! (`Truncate`), `frequency_spectrum.go` (`IsPeriodic`), `estimators.go` (the FFT and max-value
//! estimators), `config.go` (the default history, resolution and the eight default FFT
//! estimators) and `pkg/prediction/accuracy/accuracy.go` (the amplified MAPE, MAE fallback).
//!
//! Every `refit_seconds` (Crane: 12 h) the last `history_seconds` (7 d) of the metric, gaps
//! filled linearly (history before a gap over an hour dropped) and cut to whole days, are tested
//! for a daily cycle, then a weekly one: the strongest spectral line at the cycle's frequency or
//! below must be the cycle's. With two cycles or more, each default FFT estimator (keep the lines
//! above an amplitude floor or at most an hour's frequency, inverse, take the last cycle, times
//! 1 + its margin) is scored on the last cycle from the ones before; the best predicts the next
//! cycle. Each call answers the larger of the pods for the prediction's maximum over the next
//! `window_seconds` (EHPA's `predictionWindowSeconds`, 3600) and the pods for the current load
//! (EHPA's HPA sees both metrics). Not periodic: the current load alone, as in Crane.

use leadtime_guest::{codec, export_policy, Metric, Params, ParamsExt, Request, Response};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde::{Deserialize, Serialize};

/// Every parameter the policy knows.
pub const KNOWN: &[&str] = &["history_seconds", "window_seconds", "refit_seconds"];
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;
/// Crane's `defaultHighFrequencyThreshold`: lines at or below one per hour are always kept.
const HIGH_FREQUENCY: f64 = 1.0 / HOUR;
/// Crane's `defaultMaxNumOfSpectrumItems`.
const MAX_ITEMS: usize = 100;
/// Crane's `defaultFFTMinValue`: a non-positive estimate becomes this.
const MIN_VALUE: f64 = 0.01;

/// One FFT estimator: Crane's `fftEstimator` with its `config.go` defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimator {
    /// Lines always kept, strongest first.
    pub min_items: usize,
    /// Amplitude floor of the lines kept.
    pub low_amplitude: f64,
    /// Margin over the estimate.
    pub margin: f64,
}

/// Crane's `defaultEstimators`.
pub const ESTIMATORS: [Estimator; 8] = [
    Estimator {
        min_items: 3,
        low_amplitude: 1.0,
        margin: 0.01,
    },
    Estimator {
        min_items: 3,
        low_amplitude: 1.0,
        margin: 0.10,
    },
    Estimator {
        min_items: 3,
        low_amplitude: 1.0,
        margin: 0.15,
    },
    Estimator {
        min_items: 3,
        low_amplitude: 1.0,
        margin: 0.20,
    },
    Estimator {
        min_items: 50,
        low_amplitude: 0.05,
        margin: 0.01,
    },
    Estimator {
        min_items: 50,
        low_amplitude: 0.05,
        margin: 0.10,
    },
    Estimator {
        min_items: 50,
        low_amplitude: 0.05,
        margin: 0.15,
    },
    Estimator {
        min_items: 50,
        low_amplitude: 0.05,
        margin: 0.20,
    },
];

/// The parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// History used, seconds (Crane: 7 days, at least 2).
    pub history_seconds: f64,
    /// Prediction window whose maximum is used, seconds.
    pub window_seconds: f64,
    /// Seconds between refits.
    pub refit_seconds: f64,
}

impl Settings {
    /// Reads and checks `params`; errors name the parameter.
    pub fn from_params(params: &Params) -> Result<Settings, String> {
        params.only(KNOWN, "crane-dsp")?;
        Ok(Settings {
            history_seconds: params.number_in("history_seconds", WEEK, 2.0 * DAY, 28.0 * DAY)?,
            window_seconds: params.number_in("window_seconds", HOUR, 0.0, DAY)?,
            refit_seconds: params.number_in("refit_seconds", 12.0 * HOUR, 0.0, 7.0 * DAY)?,
        })
    }
}

fn init(params: &Params) -> Result<(), String> {
    Settings::from_params(params).map(|_| ())
}

/// What the policy keeps between calls: the predicted cycle of each metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Per metric name: its prediction.
    pub predictions: Vec<(String, Prediction)>,
}

/// A refit's outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// When it was fitted, Unix ms.
    pub fitted_at: i64,
    /// Time of the first predicted point, Unix ms.
    pub start: i64,
    /// Milliseconds between points.
    pub interval_ms: i64,
    /// The predicted next cycle (empty: not periodic).
    pub values: Vec<f64>,
    /// The cycle found, seconds (0: none).
    pub cycle_seconds: f64,
    /// Index in [`ESTIMATORS`] of the one chosen.
    pub estimator: usize,
}

/// The forward transform of a real series.
fn fft(x: &[f64]) -> Vec<Complex<f64>> {
    let mut buf: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(v, 0.0)).collect();
    FftPlanner::new()
        .plan_fft_forward(buf.len())
        .process(&mut buf);
    buf
}

/// Whether `x` (cut to whole cycles of `m` points) is periodic with period `m`: Crane's
/// `IsPeriodic`, on amplitudes sorted strongest first.
pub fn is_periodic(x: &[f64], m: usize) -> bool {
    let cycles = x.len() / m.max(1);
    if m == 0 || cycles < 2 {
        return false;
    }
    let x = &x[x.len() - cycles * m..];
    let spectrum = fft(x);
    let n = x.len();
    let mut lines: Vec<(usize, f64)> = (1..n / 2)
        .map(|k| (k, spectrum[k].norm() / n as f64))
        .collect();
    lines.sort_by(|a, b| b.1.total_cmp(&a.1));
    // The period of line k is n / k points: longer than the cycle for k < cycles (stop: no),
    // the cycle itself at k = cycles (yes), shorter otherwise (look further).
    for (k, _) in lines {
        if k < cycles {
            return false;
        }
        if k == cycles {
            return true;
        }
    }
    false
}

/// Crane's FFT estimator: the next cycle of `m` points from `x` sampled every `interval_s`.
pub fn estimate(x: &[f64], m: usize, interval_s: f64, e: &Estimator) -> Vec<f64> {
    let n = x.len();
    let mut spectrum = fft(x);
    let amplitude = |c: &Complex<f64>| c.norm() / n as f64;
    let mut sorted: Vec<f64> = spectrum[1..n / 2].iter().map(amplitude).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut floor = if sorted.len() >= MAX_ITEMS {
        sorted[MAX_ITEMS - 1]
    } else {
        sorted.last().copied().unwrap_or(0.0)
    };
    if floor < e.low_amplitude {
        floor = e.low_amplitude;
    }
    if sorted.len() >= e.min_items && sorted[e.min_items - 1] < floor {
        floor = sorted[e.min_items - 1];
    }
    let rate = 1.0 / interval_s;
    for (k, c) in spectrum.iter_mut().enumerate() {
        let frequency = k as f64 * rate / n as f64;
        if amplitude(c) < floor && frequency > HIGH_FREQUENCY {
            *c = Complex::new(0.0, 0.0);
        }
    }
    FftPlanner::new().plan_fft_inverse(n).process(&mut spectrum);
    spectrum[n - m..]
        .iter()
        .map(|c| {
            let v = c.re / n as f64;
            let v = if v <= 0.0 { MIN_VALUE } else { v };
            v * (1.0 + e.margin)
        })
        .collect()
}

/// Crane's prediction error: the mean relative error, under-predictions amplified; the mean
/// absolute error when an actual value is below 0.001.
pub fn prediction_error(actual: &[f64], predicted: &[f64]) -> f64 {
    if actual.iter().any(|&a| a < 1e-3) {
        let sum: f64 = actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).abs())
            .sum();
        return sum / actual.len() as f64;
    }
    let sum: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(&a, &p)| {
            if p < a {
                -(1.0 - (a - p) / a).ln() / 1.25f64.ln()
            } else {
                (p - a) / a
            }
        })
        .sum();
    sum / actual.len() as f64
}

/// Crane's pre-processing: history before the last gap over an hour dropped, gaps filled
/// linearly, cut to whole days from the end. `None` when nothing is left.
pub fn preprocess(values: &[f64], interval_s: f64) -> Option<Vec<f64>> {
    let max_gap = (HOUR / interval_s).floor() as usize;
    let known: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_finite())
        .collect();
    let mut from = *known.first()?;
    for w in known.windows(2) {
        if w[1] - w[0] > max_gap {
            from = w[1];
        }
    }
    let mut out = Vec::with_capacity(values.len() - from);
    let mut last = (from, values[from]);
    for (i, &v) in values.iter().enumerate().skip(from) {
        if !v.is_finite() {
            continue;
        }
        let (j, u) = last;
        for g in j + 1..i {
            out.push(u + (v - u) * (g - j) as f64 / (i - j) as f64);
        }
        out.push(v);
        last = (i, v);
    }
    let per_day = (DAY / interval_s).round() as usize;
    if per_day == 0 || out.len() < per_day {
        return None;
    }
    let keep = out.len() / per_day * per_day;
    Some(out.split_off(out.len() - keep))
}

/// A refit at `now` over the metric `m`.
pub fn fit(m: &Metric, s: &Settings, now: i64) -> Prediction {
    let interval_s = m.interval_seconds;
    let interval_ms = ((interval_s * 1000.0).round() as i64).max(1);
    let last_known = m.values.iter().rposition(|v| v.is_finite());
    let mut out = Prediction {
        fitted_at: now,
        interval_ms,
        ..Prediction::default()
    };
    let Some(last_known) = last_known else {
        return out;
    };
    // Crane queries the history plus an hour.
    let keep = ((s.history_seconds + HOUR) / interval_s).ceil() as usize;
    let values = &m.values[..=last_known];
    let window = &values[values.len().saturating_sub(keep)..];
    let Some(x) = preprocess(window, interval_s) else {
        return out;
    };
    let last_time = m.end - (m.values.len() - 1 - last_known) as i64 * interval_ms;
    for cycle in [DAY, WEEK] {
        let per = (cycle / interval_s).round() as usize;
        if !is_periodic(&x, per) {
            continue;
        }
        let cycles = x.len() / per;
        let signal = &x[x.len() - cycles * per..];
        let history = &signal[..(cycles - 1) * per];
        let actual = &signal[(cycles - 1) * per..];
        let mut best = (f64::INFINITY, None);
        for (i, e) in ESTIMATORS.iter().enumerate() {
            let estimated = estimate(history, per, interval_s, e);
            let pe = prediction_error(actual, &estimated);
            if pe < best.0 {
                best = (pe, Some(i));
            }
        }
        if let Some(i) = best.1 {
            out.values = estimate(signal, per, interval_s, &ESTIMATORS[i]);
            out.start = last_time + interval_ms;
            out.cycle_seconds = cycle;
            out.estimator = i;
        }
        break;
    }
    out
}

fn pods(load: f64, target: f64) -> u32 {
    let n = (load.max(0.0) / target).ceil();
    if n.is_finite() {
        n as u32
    } else {
        0
    }
}

/// The predicted maximum over `[now, now + window]`, if the prediction covers any of it.
pub fn window_max(p: &Prediction, now: i64, window_ms: i64) -> Option<f64> {
    if p.values.is_empty() {
        return None;
    }
    let first = if now <= p.start {
        0
    } else {
        ((now - p.start + p.interval_ms - 1) / p.interval_ms) as usize
    };
    let last = (now + window_ms - p.start).div_euclid(p.interval_ms);
    if last < 0 {
        return None;
    }
    let last = (last as usize).min(p.values.len() - 1);
    (first <= last).then(|| {
        p.values[first..=last]
            .iter()
            .copied()
            .fold(f64::MIN, f64::max)
    })
}

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let s = Settings::from_params(&req.params)?;
    let mut prev: State = req
        .state
        .as_deref()
        .and_then(|b| codec::from_msgpack(b).ok())
        .unwrap_or_default();
    let mut state = State::default();
    let mut best: Option<(u32, String)> = None;
    for m in &req.metrics {
        if !(m.target_per_pod.is_finite() && m.target_per_pod > 0.0) {
            return Err(format!(
                "metric `{}`: target_per_pod must be a positive number, got {}",
                m.name, m.target_per_pod
            ));
        }
        if !(m.interval_seconds.is_finite() && m.interval_seconds > 0.0) {
            return Err(format!(
                "metric `{}`: interval_seconds must be a positive number, got {}",
                m.name, m.interval_seconds
            ));
        }
        let Some(load) = m.last() else { continue };
        let cached = prev
            .predictions
            .iter()
            .position(|(n, _)| *n == m.name)
            .map(|i| prev.predictions.remove(i).1)
            .filter(|p| {
                req.now >= p.fitted_at
                    && ((req.now - p.fitted_at) as f64) < s.refit_seconds * 1000.0
                    && p.interval_ms == ((m.interval_seconds * 1000.0).round() as i64).max(1)
            });
        let p = cached.unwrap_or_else(|| fit(m, &s, req.now));
        let reactive = pods(load, m.target_per_pod);
        let predicted = window_max(&p, req.now, (s.window_seconds * 1000.0) as i64);
        let proactive = predicted.map_or(0, |v| pods(v, m.target_per_pod));
        let replicas = reactive.max(proactive);
        let reason =
            match predicted {
                Some(v) => format!(
                "{}: {} cycle, FFT estimator {} (margin {}): predicted max {v:.3} over the next \
                 {}s, {proactive} pods; {reactive} pods for load {load:.3}: {replicas}",
                m.name,
                if p.cycle_seconds == DAY { "daily" } else { "weekly" },
                p.estimator,
                ESTIMATORS[p.estimator].margin,
                s.window_seconds
            ),
                None => format!(
                    "{}: not periodic (no daily or weekly cycle over two cycles): {reactive} pods \
                 for load {load:.3}",
                    m.name
                ),
            };
        state.predictions.push((m.name.clone(), p));
        if best.as_ref().is_none_or(|b| replicas > b.0) {
            best = Some((replicas, reason));
        }
    }
    let mut response = match best {
        Some((replicas, reason)) => Response::new(replicas, reason),
        None => Response::new(
            req.replicas.current,
            "no metric has a value: holding current replicas",
        ),
    };
    response.state = codec::to_msgpack(&state).ok();
    Ok(response)
}

export_policy!(decide, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(days: usize, per_day: usize) -> Vec<f64> {
        (0..days * per_day)
            .map(|t| 50.0 + 40.0 * (t as f64 * std::f64::consts::TAU / per_day as f64).sin())
            .collect()
    }

    #[test]
    fn a_daily_wave_is_periodic_and_predicted() {
        let x = daily(7, 288);
        assert!(is_periodic(&x, 288));
        assert!(
            !is_periodic(&x, 288 * 7),
            "a week is not its strongest line"
        );
        let next = estimate(&x, 288, 300.0, &ESTIMATORS[0]);
        for (i, v) in next.iter().enumerate() {
            let want = 1.01 * x[x.len() - 288 + i];
            assert!((v - want).abs() < 0.5, "{i}: {v} vs {want}");
        }
    }

    #[test]
    fn under_prediction_costs_more() {
        let a = prediction_error(&[10.0], &[9.0]);
        let b = prediction_error(&[10.0], &[11.0]);
        assert!(a > b && (b - 0.1).abs() < 1e-12);
    }

    #[test]
    fn gaps_are_filled_and_cut_to_days() {
        let mut x = vec![1.0; 300];
        x[10] = f64::NAN;
        x[11] = f64::NAN;
        let y = preprocess(&x, 600.0).unwrap(); // 144 points a day
        assert_eq!(y.len(), 288);
        assert!(y.iter().all(|v| *v == 1.0));
    }

    #[test]
    fn the_window_maximum_reads_the_prediction_ahead() {
        let p = Prediction {
            fitted_at: 0,
            start: 60_000,
            interval_ms: 60_000,
            values: vec![1.0, 5.0, 2.0, 9.0],
            cycle_seconds: DAY,
            estimator: 0,
        };
        assert_eq!(window_max(&p, 60_000, 60_000), Some(5.0));
        assert_eq!(window_max(&p, 0, 0), None);
        assert_eq!(window_max(&p, 120_000, 600_000), Some(9.0));
    }
}
