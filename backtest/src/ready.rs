//! How long a new pod takes to become Ready: fixed, log-normal, or drawn from observed samples.
//!
//! Every draw is keyed by (seed, creation time, index among the pods created at that time), not
//! by the order of earlier draws. Two policies that create a pod at the same moment get the same
//! ready time, and the oracle knows each pod's ready time before creating it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use std::path::Path;

/// A distribution of ready times, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadyTimes {
    /// Always this many seconds.
    Fixed(f64),
    /// Log-normal with this median and 90th percentile, in seconds.
    LogNormal {
        /// Median seconds.
        median: f64,
        /// 90th-percentile seconds (above the median).
        p90: f64,
    },
    /// Uniformly one of these observed samples, in seconds.
    Samples(Vec<f64>),
}

/// z of the standard normal's 90th percentile.
const Z90: f64 = 1.281_551_565_544_600_5;

impl ReadyTimes {
    /// The model in words: `300s`, `lognormal median 120s p90 300s`, `64 observed samples`.
    pub fn describe(&self) -> String {
        match self {
            ReadyTimes::Fixed(s) => format!("{s}s"),
            ReadyTimes::LogNormal { median, p90 } => {
                format!("lognormal median {median}s p90 {p90}s")
            }
            ReadyTimes::Samples(v) => format!("{} observed samples", v.len()),
        }
    }

    /// Checks the numbers: finite, non-negative, p90 above the median, samples not empty.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        match self {
            ReadyTimes::Fixed(s) if !ok(*s) => Err(format!(
                "ready time must be a finite number of seconds, 0 or more, got {s}"
            )),
            ReadyTimes::LogNormal { median, p90 } if !(ok(*median) && *median > 0.0) => Err(
                format!("lognormal median must be above 0 seconds, got {median}"),
            ),
            ReadyTimes::LogNormal { median, p90 } if !(p90.is_finite() && p90 > median) => Err(
                format!("lognormal p90 ({p90}) must be above the median ({median})"),
            ),
            ReadyTimes::Samples(v) if v.is_empty() => Err("no ready-time samples".into()),
            _ => Ok(()),
        }
    }

    /// Parses `lognormal:MEDIAN,P90` with durations such as `90s` or `2m` (bare numbers are
    /// seconds).
    pub fn parse_dist(spec: &str) -> Result<ReadyTimes, String> {
        let rest = spec.strip_prefix("lognormal:").ok_or_else(|| {
            format!("ready-time distribution `{spec}`: expected lognormal:MEDIAN,P90")
        })?;
        let (m, p) = rest.split_once(',').ok_or_else(|| {
            format!("ready-time distribution `{spec}`: expected lognormal:MEDIAN,P90")
        })?;
        let r = ReadyTimes::LogNormal {
            median: parse_seconds(m)?,
            p90: parse_seconds(p)?,
        };
        r.validate()?;
        Ok(r)
    }

    /// Reads observed samples: one number of seconds per line, an optional header line, blank
    /// lines skipped. Errors name the line.
    pub fn parse_samples(text: &str, source: &str) -> Result<ReadyTimes, String> {
        let mut samples = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let field = line.split(',').next().unwrap_or("").trim();
            if field.is_empty() {
                continue;
            }
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => samples.push(v),
                Ok(_) => {
                    return Err(format!(
                        "{source}:{}: `{field}` must be a finite number of seconds, 0 or more",
                        i + 1
                    ))
                }
                Err(_) if i == 0 => continue, // the header
                Err(_) => {
                    return Err(format!(
                        "{source}:{}: `{field}` is not a number of seconds",
                        i + 1
                    ))
                }
            }
        }
        if samples.is_empty() {
            return Err(format!("{source}: no ready-time samples"));
        }
        Ok(ReadyTimes::Samples(samples))
    }

    /// Reads observed samples from a file (see [`ReadyTimes::parse_samples`]).
    pub fn from_file(path: &Path) -> Result<ReadyTimes, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ReadyTimes::parse_samples(&text, &path.display().to_string())
    }

    /// The ready time, in milliseconds, of the `index`-th pod created at `created_ms`.
    pub fn draw_ms(&self, seed: u64, created_ms: i64, index: u32) -> i64 {
        let secs = match self {
            ReadyTimes::Fixed(s) => *s,
            ReadyTimes::LogNormal { median, p90 } => {
                let sigma = (p90 / median).ln() / Z90;
                let dist = LogNormal::new(median.ln(), sigma).expect("validated parameters");
                dist.sample(&mut rng(seed, created_ms, index))
            }
            ReadyTimes::Samples(v) => v[rng(seed, created_ms, index).random_range(0..v.len())],
        };
        // Caps a huge draw at 30 days, so that a long tail never overflows the clock.
        (secs.clamp(0.0, 30.0 * 86_400.0) * 1000.0).round() as i64
    }

    /// Whether every draw is the same.
    pub fn is_fixed(&self) -> bool {
        matches!(self, ReadyTimes::Fixed(_))
    }
}

/// A generator for one pod, from the run's seed and the pod's identity.
fn rng(seed: u64, created_ms: i64, index: u32) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&created_ms.to_le_bytes());
    key[16..20].copy_from_slice(&index.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// Seconds from a duration such as `90s`, `5m`, `2h`, `1d 12h`, or a bare number of seconds.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if let Ok(v) = text.parse::<f64>() {
        return if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("duration `{text}` must be 0 or more seconds"))
        };
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs_f64())
        .map_err(|e| format!("duration `{text}`: {e} (e.g. 90s, 5m, 2h, 2d)"))
}
