//! `predictive`: scale one ready-time ahead of the load (AHPA / RobustScaler style).
//!
//! Each call, for each metric: clean the window (gaps filled, outliers damped), find its period
//! (autocorrelation over every candidate lag, via FFT), forecast over the lead horizon with a
//! seasonal profile on a robust level and trend, and size for an upper quantile of the forecast
//! (the empirical quantile of the model's own errors at that horizon). The answer is the larger
//! of that proactive target and the reactive one for the current load. The fitted model is
//! cached in `state` and refitted every `refit_seconds`. See docs/policies.md.

pub mod clean;
pub mod model;
pub mod params;
pub mod period;
pub mod stats;

use leadtime_guest::{
    codec, export_policy, Forecast, Metric, Params, PlannedEvent, Request, Response,
};
use model::{FitSpec, Model};
use params::Settings;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write};

const DAY: f64 = 86_400.0;
/// Longest forecast a response carries, in points.
const MAX_STEPS: usize = 10_000;

/// What the policy keeps between calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Time of the call that wrote it, Unix ms.
    pub now: i64,
    /// The fitted model of each metric, by name.
    pub models: Vec<(String, Model)>,
}

/// The lead horizon of one call and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Horizon {
    /// Seconds from now the forecast must cover.
    pub seconds: f64,
    /// Human text: its parts.
    pub source: String,
}

/// What the policy concluded for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Reactive target: pods for the current load.
    pub reactive: u32,
    /// Proactive target: pods for the upper forecast over the horizon (`None` when not ready).
    pub proactive: Option<u32>,
    /// The predictive answer: the larger of both, with the scale-down rule applied.
    pub predictive: u32,
    /// Why, in words.
    pub reason: String,
    /// The central forecast over the horizon.
    pub forecast: Option<Forecast>,
    /// The model to cache, if one was fitted.
    pub model: Option<Model>,
}

fn init(params: &Params) -> Result<(), String> {
    Settings::from_params(params).map(|_| ())
}

/// Pods for `load` at `target` per pod with `headroom`; never NaN, saturating on huge loads.
fn pods(load: f64, target: f64, headroom: f64) -> u32 {
    let want = (load.max(0.0) * (1.0 + headroom) / target).ceil();
    if want.is_nan() {
        0
    } else {
        want as u32
    }
}

/// A duration for people: `1d2h`, `5m15s`, `45s`.
pub fn duration(seconds: f64) -> String {
    Span(seconds).to_string()
}

/// Seconds shown as a duration for people (see [`duration`]), written where it is formatted:
/// a reason holds several, and a `String` for each would be an allocation each.
#[derive(Debug, Clone, Copy)]
struct Span(f64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.max(0.0).round() as u64;
        let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
        let parts = [(d, 'd'), (h, 'h'), (m, 'm'), (sec, 's')];
        let mut shown = parts.iter().filter(|(v, _)| *v > 0).take(2).peekable();
        if shown.peek().is_none() {
            return f.write_str("0s");
        }
        shown.try_for_each(|(v, unit)| write!(f, "{v}{unit}"))
    }
}

/// A number for people: 3 significant digits or whole.
#[derive(Debug, Clone, Copy)]
struct Num(f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.abs() >= 100.0 {
            write!(f, "{v:.0}")
        } else if v.abs() >= 10.0 {
            write!(f, "{v:.1}")
        } else {
            write!(f, "{v:.2}")
        }
    }
}

fn horizon(req: &Request, s: &Settings, prev: Option<&State>) -> Horizon {
    let (decision, decision_src) = match prev.map(|p| (req.now - p.now) as f64 / 1000.0) {
        Some(d) if d > 0.0 && d <= 3600.0 => (d, "since last call"),
        _ => (s.decision_seconds, "decision_seconds"),
    };
    let (lead, lead_src) = match (s.lead_seconds, req.ready_seconds_quantile(s.ready_quantile)) {
        (Some(l), _) => (l, "lead_seconds".to_string()),
        (None, Some(r)) => (
            r,
            format!(
                "ready p{:.0} of {}",
                s.ready_quantile * 100.0,
                req.ready_times.len()
            ),
        ),
        (None, None) => (s.default_ready_seconds, "no ready times, default".into()),
    };
    Horizon {
        seconds: lead + decision,
        source: format!(
            "{} ({lead_src} {} + {decision_src} {})",
            Span(lead + decision),
            Span(lead),
            Span(decision)
        ),
    }
}

/// The policy's answer for one metric. `cached` is its model from the last call, if any.
pub fn evaluate(
    req: &Request,
    m: &Metric,
    s: &Settings,
    h: &Horizon,
    cached: Option<Model>,
) -> Result<Option<Outcome>, String> {
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
    let Some(load) = m.last() else {
        return Ok(None);
    };
    let keep = ((s.lookback / m.interval_seconds).floor() as usize).max(1);
    if let Some(coarse) = coarsen(m, keep) {
        let factor = (coarse.interval_seconds / m.interval_seconds).round() as usize;
        return Ok(
            evaluate_window(req, &coarse, load, s, h, cached)?.map(|mut out| {
                let _ = write!(
                    out.reason,
                    "; learned from {factor}-point means ({} steps of {})",
                    Span(coarse.interval_seconds),
                    Span(m.interval_seconds)
                );
                out
            }),
        );
    }
    evaluate_window(req, m, load, s, h, cached)
}

/// Most points of a window the policy learns from (14 days at one minute): a finer or longer
/// window is averaged into buckets first, so that a call's work, and fuel, stay bounded whatever
/// the step (a week at 6 s, 100,800 points, ran out of the default fuel on every call).
pub const MAX_WORK_POINTS: usize = 20_160;

/// The last `keep` values of `m` averaged in buckets of the fewest points that bring them within
/// [`MAX_WORK_POINTS`], each bucket standing for the interval from its first point (as every
/// value does); `None` when they are within it already. A bucket without a value stays a gap.
fn coarsen(m: &Metric, keep: usize) -> Option<Metric> {
    let raw = &m.values[m.values.len().saturating_sub(keep)..];
    if raw.len() <= MAX_WORK_POINTS {
        return None;
    }
    let factor = raw.len().div_ceil(MAX_WORK_POINTS);
    // Buckets end at the last value; a partial bucket at the start would be shorter than the
    // others, so it is left out.
    let whole = raw.len() / factor * factor;
    let values = raw[raw.len() - whole..]
        .chunks(factor)
        .map(|bucket| {
            let (sum, n) = bucket
                .iter()
                .filter(|v| v.is_finite())
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 {
                f64::NAN
            } else {
                sum / n as f64
            }
        })
        .collect();
    let interval_ms = (m.interval_seconds * 1000.0).round() as i64;
    Some(Metric {
        name: m.name.clone(),
        target_per_pod: m.target_per_pod,
        interval_seconds: m.interval_seconds * factor as f64,
        end: m.end - (factor as i64 - 1) * interval_ms,
        values,
    })
}

/// [`evaluate`] on a window within [`MAX_WORK_POINTS`]; `load` is the load now.
fn evaluate_window(
    req: &Request,
    m: &Metric,
    load: f64,
    s: &Settings,
    h: &Horizon,
    cached: Option<Model>,
) -> Result<Option<Outcome>, String> {
    let interval_s = m.interval_seconds;
    let interval_ms = ((interval_s * 1000.0).round() as i64).max(1);
    let keep = ((s.lookback / interval_s).floor() as usize).max(1);
    let raw = &m.values[m.values.len().saturating_sub(keep)..];
    let reactive = pods(load, m.target_per_pod, s.headroom);
    // A value stands for the interval that starts at its time (as in a backtest trace), so the
    // values to cover are those that start before now + horizon.
    let steps = ((((req.now - m.end) as f64 / 1000.0 + h.seconds) / interval_s).ceil() - 1.0)
        .clamp(1.0, MAX_STEPS as f64) as usize;
    let horizon_points = steps;

    let reusable = cached.filter(|c| {
        c.interval_ms == interval_ms
            && c.horizon_points == horizon_points
            && req.now >= c.fitted_at
            && ((req.now - c.fitted_at) as f64) < s.refit_seconds * 1000.0
    });
    let (model, x, cleaning) = match reusable {
        Some(c) => {
            let tail = &raw[raw
                .len()
                .saturating_sub(c.level_points + clean::TAIL_MARGIN)..];
            match clean::clean_with(tail, Some(c.outlier_threshold)) {
                Some(t) => (c, t.values, String::new()),
                None => fit(raw, interval_ms, horizon_points, s, req.now, m.end)?,
            }
        }
        None => {
            let (learn, left_out) = without_events(raw, m.end, interval_ms, &req.events);
            let (model, x, mut note) = fit(&learn, interval_ms, horizon_points, s, req.now, m.end)?;
            if left_out > 0 {
                let _ = write!(
                    note,
                    "; {left_out} points of planned events left out of learning"
                );
            }
            (model, x, note)
        }
    };

    let span = raw.len() as f64 * interval_s;
    let need = 2.0 * s.max_period.min(DAY);
    if model.lag == 0 && model.period_points == 0.0 && span < need {
        // `scale_down=false` holds here too: the reactive answer never lowers the count.
        let hold = !s.scale_down && reactive < req.replicas.current;
        let predictive = if hold { req.replicas.current } else { reactive };
        return Ok(Some(Outcome {
            reactive,
            proactive: None,
            predictive,
            reason: format!(
                "{}: {} of history is under two periods ({} needed to learn a daily cycle), \
                 no shorter period found: acting reactively, {reactive} pods for load {}{}",
                m.name,
                Span(span),
                Span(need),
                Num(load),
                if hold {
                    "; scale_down=false: holding current"
                } else {
                    ""
                }
            ),
            forecast: None,
            // Kept all the same: the next calls then skip the search until the refit is due,
            // rather than searching a too-short window for a period on every call.
            model: Some(model),
        }));
    }

    let mut central = model.forecast(&x, m.end, steps);
    let shift = model.level_shift(&x, m.end);
    if shift > 0.0 {
        central.iter_mut().for_each(|c| *c += shift);
    }
    let (peak_at, upper) = central.iter().map(|&c| model.upper(c)).enumerate().fold(
        (0, f64::NEG_INFINITY),
        |b, (i, v)| if v > b.1 { (i, v) } else { b },
    );
    let peak = central[peak_at];
    let proactive = pods(upper, m.target_per_pod, s.headroom);
    let mut predictive = proactive.max(reactive);
    let down = predictive < req.replicas.current;
    if down && !s.scale_down {
        predictive = req.replicas.current;
    }
    let winner = if proactive > reactive {
        "proactive won"
    } else if proactive == reactive {
        "both agree"
    } else {
        "reactive won"
    };
    // One buffer for the whole reason, written on every call (writing to a String cannot fail).
    let mut reason = String::with_capacity(320);
    let _ = write!(reason, "{}: ", m.name);
    if model.lag == 0 && model.period_points > 0.0 {
        let _ = write!(
            reason,
            "period {} found (confidence {:.2}) but level and trend replayed cheaper: level and \
             trend",
            Span(model.period_points * interval_s),
            model.confidence
        );
    } else if model.lag == 0 {
        reason.push_str("no period found (level and trend)");
    } else {
        let _ = write!(
            reason,
            "period {} (confidence {:.2})",
            Span(model.period_points * interval_s),
            model.confidence
        );
    }
    let _ = write!(
        reason,
        "; horizon {}; proactive {proactive} pods (forecast peak {} in {} + q{} margin {}, {} \
         errors, level over {} points), reactive {reactive} pods (load {}): {winner}",
        h.source,
        Num(peak),
        Span((peak_at + 1) as f64 * interval_s - (req.now - m.end) as f64 / 1000.0),
        s.quantile * 100.0,
        Num(upper - peak),
        if model.relative {
            "relative"
        } else {
            "absolute"
        },
        model.level_points,
        Num(load)
    );
    if shift > 0.0 {
        let _ = write!(
            reason,
            "; level shift: the last points stand {} above the level, forecast raised",
            Num(shift)
        );
    }
    if down && s.scale_down {
        let _ = write!(
            reason,
            "; scaling down: the forecast stays within {predictive} pods over the horizon"
        );
    } else if down {
        reason.push_str("; scale_down=false: holding current");
    }
    reason.push_str(&cleaning);
    Ok(Some(Outcome {
        reactive,
        proactive: Some(proactive),
        predictive,
        reason,
        forecast: Some(Forecast {
            start: m.end + interval_ms,
            interval_seconds: interval_s,
            values: central,
        }),
        model: Some(model),
    }))
}

/// Cleans and fits the whole window; returns the model, the cleaned values and a note.
fn fit(
    raw: &[f64],
    interval_ms: i64,
    horizon_points: usize,
    s: &Settings,
    now: i64,
    end_ms: i64,
) -> Result<(Model, Vec<f64>, String), String> {
    let c = clean::clean(raw).ok_or("no finite value in the window")?;
    let interval_s = interval_ms as f64 / 1000.0;
    let max_lag = (s.max_period / interval_s).floor() as usize;
    let calendar = period::calendar_lags(interval_s);
    let found = period::detect_near_calendar(&c.values, max_lag, &calendar);
    let model = Model::fit(
        &c.values,
        found,
        FitSpec {
            end_ms,
            interval_ms,
            horizon_points,
            quantile: s.quantile,
            outlier_threshold: c.threshold,
            now,
        },
    );
    let mut note = String::new();
    if c.filled > 0 || c.damped > 0 {
        note = format!(
            "; refit on {} points: {} gaps filled, {} outliers damped",
            c.values.len(),
            c.filled,
            c.damped
        );
    }
    Ok((model, c.values, note))
}

/// `raw` (its last value at `end_ms`) with the values of planned events' load made missing,
/// so that they are filled from their neighbours like a gap and a one-off surge is not learned
/// as part of the cycle; and how many were. A value covers the interval that starts at its time.
fn without_events<'a>(
    raw: &'a [f64],
    end_ms: i64,
    interval_ms: i64,
    events: &[PlannedEvent],
) -> (std::borrow::Cow<'a, [f64]>, usize) {
    let n = raw.len() as i64;
    let first_ms = end_ms.saturating_sub((n - 1).max(0).saturating_mul(interval_ms));
    let index = |t: i64| {
        (t.saturating_sub(first_ms))
            .div_euclid(interval_ms)
            .clamp(0, n)
    };
    let mut out: Option<Vec<f64>> = None;
    let mut left_out = 0;
    for e in events {
        // Values whose interval [t, t + interval) overlaps [start, end).
        let from = index(e.start);
        let to = index(e.end.saturating_sub(1)).saturating_add(1).min(n);
        if e.end <= e.start || from >= to {
            continue;
        }
        let values = out.get_or_insert_with(|| raw.to_vec());
        for v in &mut values[from as usize..to as usize] {
            if !v.is_nan() {
                *v = f64::NAN;
                left_out += 1;
            }
        }
    }
    match out {
        Some(v) => (std::borrow::Cow::Owned(v), left_out),
        None => (std::borrow::Cow::Borrowed(raw), 0),
    }
}

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let s = Settings::from_params(&req.params)?;
    let mut prev: Option<State> = req
        .state
        .as_deref()
        .and_then(|b| codec::from_msgpack::<State>(b).ok());
    let h = horizon(req, &s, prev.as_ref());
    let mut best: Option<Outcome> = None;
    let mut state = State {
        now: req.now,
        models: Vec::new(),
    };
    for m in &req.metrics {
        // Taken, not copied (a profile can be 10,000 values); metrics of one name take their
        // models in order.
        let cached = prev.as_mut().and_then(|p| {
            let i = p.models.iter().position(|(n, _)| *n == m.name)?;
            Some(p.models.remove(i).1)
        });
        let Some(mut out) = evaluate(req, m, &s, &h, cached)? else {
            continue;
        };
        if let Some(model) = out.model.take() {
            state.models.push((m.name.clone(), model));
        }
        let key = |o: &Outcome| if s.observer { o.reactive } else { o.predictive };
        if best.as_ref().is_none_or(|b| key(&out) > key(b)) {
            best = Some(out);
        }
    }
    let Some(best) = best else {
        return Ok(Response::new(
            req.replicas.current,
            "no metric has a value: holding current replicas",
        ));
    };
    let (replicas, reason) = if s.observer {
        (
            best.reactive,
            format!(
                "observer mode: answering reactive {} pods; predictive would be {} ({})",
                best.reactive, best.predictive, best.reason
            ),
        )
    } else {
        (best.predictive, best.reason)
    };
    let mut response = Response::new(replicas, reason);
    response.forecast = best.forecast;
    // Sized for the profiles up front: a weekly one at 1 minute is 80 KB, which growing from
    // empty would copy over and over.
    let size = state.models.iter().map(|(_, m)| 8 * m.profile.len() + 512);
    let mut bytes = Vec::with_capacity(size.sum());
    response.state = codec::to_msgpack_into(&state, &mut bytes)
        .ok()
        .map(|_| bytes);
    Ok(response)
}

export_policy!(decide, init = init);

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_show_their_two_largest_units() {
        for (seconds, text) in [
            (0.0, "0s"),
            (-5.0, "0s"),
            (0.4, "0s"),
            (45.0, "45s"),
            (315.0, "5m15s"),
            (3600.0, "1h"),
            (3661.0, "1h1m"),
            (93_600.0, "1d2h"),
            (86_401.0, "1d1s"),
            (604_800.0, "7d"),
        ] {
            assert_eq!(duration(seconds), text, "{seconds} s");
        }
    }
}
