//! `holt-winters`: additive Holt-Winters (level, additive trend, additive season), the model the
//! Predictive Horizontal Pod Autoscaler (jthomperoo/predictive-horizontal-pod-autoscaler,
//! `algorithms/holt_winters/holt_winters.py`) fits with statsmodels' `ExponentialSmoothing(trend=
//! "add", seasonal="add")` at fixed smoothing constants. A comparison peer for backtests: the bar
//! the predictive policy must clear.
//!
//! Each call smooths the last `stored_seasons` seasons of the metric (season = `season_seconds`,
//! or the hour, day or week whose autocorrelation is highest and at least 0.3; none found: Holt's
//! linear trend), forecasts over the lead horizon (ready time + decision interval) and answers
//! the larger of the pods for the forecast's maximum × (1 + `margin`) and the pods for the
//! current load, as PHPA's `decisionType: maximum` does with the HPA's own count.
//!
//! Params: `alpha` (0.3), `beta` (0.05), `gamma` (0.1) — textbook constants; PHPA's documented
//! example uses 0.9 for all three — `season_seconds` (0: detect), `stored_seasons` (4, PHPA's
//! default), `margin` (0), `lead_seconds` (default: the p90 of observed ready times, else
//! `default_ready_seconds`, 300).
//!
//! Differences from PHPA, none of which weakens it: PHPA smooths its own past replica counts and
//! forecasts one sync period ahead; this smooths the metric itself and covers the whole time a
//! new pod takes to be ready. statsmodels estimates the initial states by least squares; this
//! takes the classic heuristic (level and season from the first season, trend from the first
//! two), whose effect fades after a few seasons.

use leadtime_guest::{export_policy, Metric, Params, ParamsExt, Request, Response};

/// Every parameter the policy knows.
pub const KNOWN: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "season_seconds",
    "stored_seasons",
    "margin",
    "lead_seconds",
    "default_ready_seconds",
];
/// Below this autocorrelation no season is taken.
const MIN_ACF: f64 = 0.3;
/// Calendar seasons tried when none is given, seconds.
const CALENDAR: [f64; 3] = [3600.0, 86_400.0, 604_800.0];
/// History smoothed when no season is found, seconds.
const NO_SEASON_WINDOW: f64 = 86_400.0;

/// The parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing.
    pub beta: f64,
    /// Season smoothing.
    pub gamma: f64,
    /// The season in seconds; `None` detects it.
    pub season_seconds: Option<f64>,
    /// Seasons of history smoothed.
    pub stored_seasons: f64,
    /// Extra capacity over the forecast, a fraction.
    pub margin: f64,
    /// Fixed lead time, seconds.
    pub lead_seconds: Option<f64>,
    /// Lead time while no pod has reported a ready time, seconds.
    pub default_ready_seconds: f64,
}

impl Settings {
    /// Reads and checks `params`; errors name the parameter.
    pub fn from_params(params: &Params) -> Result<Settings, String> {
        params.only(KNOWN, "holt-winters")?;
        let season = params.number_in("season_seconds", 0.0, 0.0, 90.0 * 86_400.0)?;
        let lead = match params.get("lead_seconds") {
            None => None,
            Some(_) => Some(params.number_in("lead_seconds", 0.0, 0.0, 86_400.0)?),
        };
        Ok(Settings {
            alpha: params.number_in("alpha", 0.3, 0.0, 1.0)?,
            beta: params.number_in("beta", 0.05, 0.0, 1.0)?,
            gamma: params.number_in("gamma", 0.1, 0.0, 1.0)?,
            season_seconds: (season > 0.0).then_some(season),
            stored_seasons: params.number_in("stored_seasons", 4.0, 2.0, 100.0)?.floor(),
            margin: params.number_in("margin", 0.0, 0.0, 10.0)?,
            lead_seconds: lead,
            default_ready_seconds: params.number_in(
                "default_ready_seconds",
                300.0,
                0.0,
                86_400.0,
            )?,
        })
    }
}

fn init(params: &Params) -> Result<(), String> {
    Settings::from_params(params).map(|_| ())
}

/// The autocorrelation of `x` (no gaps) at `lag`, mean removed; 0 when undefined.
pub fn acf(x: &[f64], lag: usize) -> f64 {
    if lag == 0 || lag >= x.len() {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
    if var.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return 0.0;
    }
    let cov: f64 = x
        .iter()
        .zip(&x[lag..])
        .map(|(a, b)| (a - mean) * (b - mean))
        .sum();
    // Per pair, so that long lags (fewer pairs) are not penalised.
    (cov / (x.len() - lag) as f64) / (var / x.len() as f64)
}

/// The calendar season (in points) that repeats best in `x`: its autocorrelation is at least
/// [`MIN_ACF`], rises [`MIN_ACF`] above the one at half of it (a smooth series correlates at
/// any short lag; a cycle anti-correlates at its half) and `x` holds two of it. Among those the
/// shortest within 0.05 of the best: a daily cycle also repeats at a week.
pub fn detect_season(x: &[f64], interval_s: f64) -> Option<(usize, f64)> {
    let found: Vec<(usize, f64)> = CALENDAR
        .iter()
        .map(|s| (s / interval_s).round() as usize)
        .filter(|&m| m >= 4 && 2 * m <= x.len())
        .map(|m| (m, acf(x, m), acf(x, m / 2)))
        .filter(|&(_, r, half)| r >= MIN_ACF && r - half >= MIN_ACF)
        .map(|(m, r, _)| (m, r))
        .collect();
    let best = found.iter().map(|f| f.1).fold(f64::NEG_INFINITY, f64::max);
    found.into_iter().find(|f| f.1 >= best - 0.05)
}

/// The smoothed states after the last point.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Level.
    pub level: f64,
    /// Trend per point.
    pub trend: f64,
    /// The last `m` seasonal components, oldest first (empty without a season).
    pub season: Vec<f64>,
}

impl Fitted {
    /// The forecast `h` (1-based) points after the last.
    pub fn forecast(&self, h: usize) -> f64 {
        let s = if self.season.is_empty() {
            0.0
        } else {
            self.season[(h - 1) % self.season.len()]
        };
        self.level + h as f64 * self.trend + s
    }
}

/// Additive Holt-Winters over `x` (gaps as NaN take the one-step forecast) with season `m`
/// points (0: none). `None` when `x` is too short to initialise (two seasons, or two points).
pub fn smooth(x: &[f64], m: usize, alpha: f64, beta: f64, gamma: f64) -> Option<Fitted> {
    let mean = |s: &[f64]| {
        let (sum, n) = s
            .iter()
            .filter(|v| v.is_finite())
            .fold((0.0, 0usize), |(a, n), v| (a + v, n + 1));
        (n > 0).then(|| sum / n as f64)
    };
    let (mut level, mut trend, mut season, start) = if m > 0 {
        if x.len() < 2 * m {
            return None;
        }
        let first = mean(&x[..m])?;
        let second = mean(&x[m..2 * m])?;
        // The first season, detrended, sets the seasonal components; the states start one
        // point before the first value, so the first season is smoothed like any other.
        let trend = (second - first) / m as f64;
        let centre = (m as f64 - 1.0) / 2.0;
        let season: Vec<f64> = x[..m]
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if v.is_finite() {
                    v - first - trend * (i as f64 - centre)
                } else {
                    0.0
                }
            })
            .collect();
        (first - trend * (centre + 1.0), trend, season, 0)
    } else {
        let finite: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.len() < 2 {
            return None;
        }
        (finite[0], finite[1] - finite[0], Vec::new(), 0)
    };
    // `season` is a ring: the component of point t sits at t mod m.
    for (t, &v) in x.iter().enumerate().skip(start) {
        let s_old = if m > 0 { season[t % m] } else { 0.0 };
        let predicted = level + trend + s_old;
        let v = if v.is_finite() { v } else { predicted };
        let (prev_level, prev_trend) = (level, trend);
        level = alpha * (v - s_old) + (1.0 - alpha) * (level + trend);
        trend = beta * (level - prev_level) + (1.0 - beta) * trend;
        if m > 0 {
            // statsmodels' form: against the previous level and trend.
            season[t % m] = gamma * (v - prev_level - prev_trend) + (1.0 - gamma) * s_old;
        }
    }
    if m > 0 {
        season.rotate_left(x.len() % m);
    }
    (level.is_finite() && trend.is_finite() && season.iter().all(|s| s.is_finite())).then_some(
        Fitted {
            level,
            trend,
            season,
        },
    )
}

fn pods(load: f64, target: f64) -> u32 {
    let n = (load.max(0.0) / target).ceil();
    if n.is_finite() {
        n as u32
    } else {
        0
    }
}

fn evaluate(req: &Request, m: &Metric, s: &Settings) -> Result<Option<(u32, String)>, String> {
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
    let interval = m.interval_seconds;
    let reactive = pods(load, m.target_per_pod);
    let lead = s.lead_seconds.unwrap_or_else(|| {
        req.ready_seconds_quantile(0.9)
            .unwrap_or(s.default_ready_seconds)
    });
    let ahead = (req.now - m.end) as f64 / 1000.0;
    let steps = (((ahead + lead + interval) / interval).ceil() as usize).clamp(1, 10_000);
    let longest = s.season_seconds.unwrap_or(CALENDAR[2]) * s.stored_seasons;
    let keep = ((longest / interval).ceil() as usize).max(2);
    let window = &m.values[m.values.len().saturating_sub(keep)..];
    let (season_points, source) = match s.season_seconds {
        Some(sec) => (((sec / interval).round() as usize).max(2), "given"),
        None => {
            let filled = fill(window);
            match detect_season(&filled, interval) {
                Some((p, _)) => (p, "detected"),
                None => (0, "none found"),
            }
        }
    };
    let span = if season_points > 0 {
        season_points as f64 * s.stored_seasons
    } else {
        NO_SEASON_WINDOW / interval
    };
    let x = &window[window.len().saturating_sub(span.ceil() as usize)..];
    let Some(fit) = smooth(x, season_points, s.alpha, s.beta, s.gamma) else {
        return Ok(Some((
            reactive,
            format!(
                "{}: {} points are too few to initialise Holt-Winters (season {} points): \
                 {reactive} pods for load {load:.3}",
                m.name,
                x.len(),
                season_points
            ),
        )));
    };
    let peak = (1..=steps)
        .map(|h| fit.forecast(h))
        .fold(f64::NEG_INFINITY, f64::max);
    let proactive = if peak.is_finite() {
        pods(peak * (1.0 + s.margin), m.target_per_pod)
    } else {
        0
    };
    let replicas = proactive.max(reactive);
    Ok(Some((
        replicas,
        format!(
            "{}: Holt-Winters (alpha {}, beta {}, gamma {}, season {} points {source}) forecast \
             peak {peak:.3} over {steps} points, {proactive} pods with margin {}; {reactive} pods \
             for load {load:.3}: {replicas}",
            m.name, s.alpha, s.beta, s.gamma, season_points, s.margin
        ),
    )))
}

/// `x` with gaps filled by the last value (the first value before any).
fn fill(x: &[f64]) -> Vec<f64> {
    let first = x.iter().copied().find(|v| v.is_finite()).unwrap_or(0.0);
    let mut last = first;
    x.iter()
        .map(|&v| {
            if v.is_finite() {
                last = v;
            }
            last
        })
        .collect()
}

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let s = Settings::from_params(&req.params)?;
    let mut best: Option<(u32, String)> = None;
    for m in &req.metrics {
        if let Some(out) = evaluate(req, m, &s)? {
            if best.as_ref().is_none_or(|b| out.0 > b.0) {
                best = Some(out);
            }
        }
    }
    Ok(match best {
        Some((replicas, reason)) => Response::new(replicas, reason),
        None => Response::new(
            req.replicas.current,
            "no metric has a value: holding current replicas",
        ),
    })
}

export_policy!(decide, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_season_and_a_trend() {
        let m = 24;
        let x: Vec<f64> = (0..m * 10)
            .map(|t| {
                100.0 + 0.5 * t as f64 + 20.0 * (t as f64 * std::f64::consts::TAU / m as f64).sin()
            })
            .collect();
        let fit = smooth(&x, m, 0.3, 0.05, 0.1).unwrap();
        for h in 1..=m {
            let t = (x.len() - 1 + h) as f64;
            let want = 100.0 + 0.5 * t + 20.0 * (t * std::f64::consts::TAU / m as f64).sin();
            assert!(
                (fit.forecast(h) - want).abs() < 1.0,
                "h {h}: {} vs {want}",
                fit.forecast(h)
            );
        }
    }

    #[test]
    fn finds_the_daily_season() {
        let x: Vec<f64> = (0..288 * 4)
            .map(|t| 50.0 + 40.0 * (t as f64 * std::f64::consts::TAU / 288.0).sin())
            .collect();
        assert_eq!(detect_season(&x, 300.0).map(|s| s.0), Some(288));
        assert_eq!(detect_season(&vec![3.0; 288 * 4], 300.0), None);
    }

    #[test]
    fn bad_params_are_named() {
        let mut p = Params::new();
        p.insert("alpha".into(), leadtime_guest::Param::Number(1.5));
        assert!(Settings::from_params(&p).unwrap_err().contains("alpha"));
        let mut p = Params::new();
        p.insert("alhpa".into(), leadtime_guest::Param::Number(0.5));
        assert!(Settings::from_params(&p)
            .unwrap_err()
            .contains("unknown param `alhpa`"));
    }
}
