//! Finding the period of a series: the autocorrelation over every candidate lag (via FFT), its
//! peaks, and the strongest one that stands out from its valley.

use rustfft::algorithm::Radix4;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftDirection};
use std::cell::RefCell;

/// Below this autocorrelation a peak is not called a period.
pub const MIN_CONFIDENCE: f64 = 0.3;
/// A peak must rise this much above the lowest autocorrelation at shorter lags.
const MIN_PROMINENCE: f64 = 0.15;
/// A shorter period is preferred while its unexplained share (1 - autocorrelation) is at most
/// this many times the best's, plus [`SLACK`], at it and at each of its multiples up to the best:
/// a daily cycle also peaks at 2, 3... days.
const PREFER_SHORTER: f64 = 1.5;
/// How far (a share of the lag) a multiple of a period may be from a lag and still be it.
const HARMONIC_SHARE: f64 = 0.02;
/// See [`PREFER_SHORTER`].
const SLACK: f64 = 0.03;
/// The shortest period considered, in points.
pub const MIN_LAG: usize = 4;
/// Calendar periods in seconds (hour, day, week) that a found period snaps to.
const CALENDAR: [f64; 3] = [3600.0, 86_400.0, 604_800.0];
/// How close a found period must be to a calendar one to snap to it, as a share of it.
const SNAP_SHARE: f64 = 0.03;
/// Autocorrelation a lag may give up against the peak and still be taken for it.
const NEAR: f64 = 0.05;

/// What the transforms of real series of one length (a power of two, at least 2) need: complex
/// transforms of half the length, and the twiddles `e^(-2πik/len)`, k = 0..=len/2, that split
/// a half-length transform into the full one and join it back.
struct RealTransforms {
    len: usize,
    forward: Radix4<f64>,
    inverse: Radix4<f64>,
    twiddles: Vec<Complex<f64>>,
}

impl RealTransforms {
    fn new(len: usize) -> RealTransforms {
        let half = len / 2;
        RealTransforms {
            len,
            forward: Radix4::new(half, FftDirection::Forward),
            inverse: Radix4::new(half, FftDirection::Inverse),
            twiddles: (0..=half)
                .map(|k| {
                    let (sin, cos) = (-std::f64::consts::TAU * k as f64 / len as f64).sin_cos();
                    Complex::new(cos, sin)
                })
                .collect(),
        }
    }
}

thread_local! {
    // The last transforms built (twiddle factors: thousands of sines and cosines, which wasm
    // computes in software), kept for the instance's life: the window length rarely changes.
    static TRANSFORMS: RefCell<Option<RealTransforms>> = const { RefCell::new(None) };
}

/// The circular autocovariance of `y` zero-padded to `len` (a power of two, at least 2 and at
/// least `y.len()`), unnormalised: `r[k] = Σ y[i] y[(i + k) mod len]` for k = 0..=`max_lag`.
///
/// It is the inverse transform of the power spectrum. A real series of length `len` is
/// transformed as a complex one of half the length (even points real, odd imaginary) and split
/// apart after; the spectrum, real and even, goes back the same way. Half the arithmetic of
/// complex transforms of the full length, and only rustfft's power-of-two algorithm: its
/// general planner would put five times the code into the module.
fn circular_autocovariance(y: &[f64], len: usize, max_lag: usize) -> Vec<f64> {
    let half = len / 2;
    TRANSFORMS.with_borrow_mut(|cache| {
        if cache.as_ref().is_none_or(|t| t.len != len) {
            *cache = Some(RealTransforms::new(len));
        }
        let t = cache.as_ref().expect("filled above");
        let mut z = vec![Complex::new(0.0, 0.0); half];
        for (z, pair) in z.iter_mut().zip(y.chunks(2)) {
            *z = Complex::new(pair[0], pair.get(1).copied().unwrap_or(0.0));
        }
        t.forward.process(&mut z);
        // The full transform X[k], k = 0..=half, from the transforms of the even points (e) and
        // of the odd ones (o), which z's holds as e + io; then its power |X[k]|².
        let power: Vec<f64> = (0..=half)
            .map(|k| {
                let a = z[k % half];
                let b = z[(half - k) % half].conj();
                let even = (a + b) * 0.5;
                let odd = (a - b) * Complex::new(0.0, -0.5);
                (even + t.twiddles[k] * odd).norm_sqr()
            })
            .collect();
        // Back: the even lags are the half-length inverse of P[k] + P[k + half], the odd ones of
        // (P[k] - P[k + half]) e^(2πik/len); both are real, so one transform carries the two.
        // The spectrum is even: P[k + half] = P[half - k].
        for (k, z) in z.iter_mut().enumerate() {
            let (lo, hi) = (power[k], power[half - k]);
            let odd = t.twiddles[k].conj() * (lo - hi);
            *z = Complex::new(lo + hi - odd.im, odd.re);
        }
        t.inverse.process(&mut z);
        (0..=max_lag)
            .map(|k| if k % 2 == 0 { z[k / 2].re } else { z[k / 2].im })
            .collect()
    })
}

/// A period found in a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// The period in whole points (what the seasonal profile uses).
    pub lag: usize,
    /// The period in points, refined between lags by a parabola through the peak.
    pub refined: f64,
    /// The autocorrelation at the peak, 0..1: how much of the variance repeats.
    pub confidence: f64,
}

/// The autocorrelation of `x` at lags `0..=max_lag`: for each lag k, the Pearson correlation of
/// `x[..n-k]` with `x[k..]`. Each pair of segments has its own means and spreads, so a level
/// change or trend does not hide a cycle, and long lags are not penalised.
pub fn autocorrelation(x: &[f64], max_lag: usize) -> Vec<f64> {
    let n = x.len();
    let max_lag = max_lag.min(n.saturating_sub(2));
    let mut acf = vec![0.0; max_lag + 1];
    acf[0] = 1.0;
    if n < 3 {
        return acf;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    // Zero padding to n + max_lag keeps the circular correlation from wrapping onto the lags.
    let len = (n + max_lag + 1).next_power_of_two();
    let mut y = Vec::with_capacity(n);
    let mut sums = Vec::with_capacity(n + 1);
    let mut squares = Vec::with_capacity(n + 1);
    let (mut s, mut q) = (0.0, 0.0);
    sums.push(0.0);
    squares.push(0.0);
    for v in x {
        let d = v - mean;
        y.push(d);
        s += d;
        q += d * d;
        sums.push(s);
        squares.push(q);
    }
    if q <= f64::EPSILON * mean.abs().max(1.0) * n as f64 {
        // A constant series: nothing repeats.
        return acf;
    }
    let products = circular_autocovariance(&y, len, max_lag);
    // The inverse transform is unnormalised.
    let scale = 1.0 / len as f64;
    for (k, r) in acf.iter_mut().enumerate().skip(1) {
        let nk = (n - k) as f64;
        let (sa, sb) = (sums[n - k], sums[n] - sums[k]);
        let (qa, qb) = (squares[n - k], squares[n] - squares[k]);
        let cov = products[k] * scale - sa * sb / nk;
        let va = qa - sa * sa / nk;
        let vb = qb - sb * sb / nk;
        let d = (va * vb).sqrt();
        *r = if d > 0.0 {
            (cov / d).clamp(-1.0, 1.0)
        } else {
            0.0
        };
    }
    acf
}

/// The period of `x` among lags `MIN_LAG..=max_lag`, if one stands out; `None` otherwise.
pub fn detect(x: &[f64], max_lag: usize) -> Option<Period> {
    detect_near_calendar(x, max_lag, &[])
}

/// [`detect`], preferring a `calendar` lag (see [`calendar_lags`]) within 3% of the period
/// found when it repeats nearly as well: load follows clocks, and a profile one point too long
/// drifts a point a cycle, so a sharp daily edge would arrive later each day than it says.
pub fn detect_near_calendar(x: &[f64], max_lag: usize, calendar: &[usize]) -> Option<Period> {
    let max_lag = max_lag.min(x.len() / 2);
    if max_lag < MIN_LAG + 1 {
        return None;
    }
    let acf = autocorrelation(x, max_lag + 1);
    let mut peaks: Vec<(usize, f64)> = Vec::new();
    let mut valley = acf[1];
    for k in 2..=max_lag {
        valley = valley.min(acf[k]);
        // The last lag searched counts while the autocorrelation still rises into it: with
        // exactly two cycles of history (a week's period in two weeks) noise can put the top of
        // the peak a few points past the edge, and the shorter period would win by default.
        if k >= MIN_LAG
            && acf[k] > acf[k - 1]
            && (k == max_lag || acf[k] >= acf[k + 1])
            && acf[k] >= MIN_CONFIDENCE
            && acf[k] - valley >= MIN_PROMINENCE
        {
            peaks.push((k, acf[k]));
        }
    }
    let &(longest, best) = peaks.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let explains = |r: f64| 1.0 - r <= PREFER_SHORTER * (1.0 - best) + SLACK;
    // The strongest peak, or a shorter period it is a whole multiple of, when the series repeats
    // nearly as well at that period and at every multiple of it up to the strongest. Days that
    // differ within a week fail at some multiple (2 days spans a weekend where 7 do not), so the
    // week is found; a pure daily cycle passes at all of them, so the day is.
    let &(peak, confidence) = peaks.iter().find(|&&(k, r)| {
        k == longest || (explains(r) && multiples_repeat(&acf, k, longest, explains))
    })?;
    // A broad peak wanders with noise: take the vertex of a least-squares parabola over
    // ±4% of the lag instead of the highest single lag. A sharp peak is no parabola, and its
    // vertex can land where the series no longer repeats: then the peak itself stands.
    let mut refined = vertex(&acf, peak, (peak / 25).max(1));
    let mut lag = (refined.round() as usize).clamp(MIN_LAG, max_lag);
    if acf[lag] < acf[peak] - NEAR {
        (lag, refined) = (peak, peak as f64);
    }
    if let Some(&cal) = calendar.iter().find(|&&c| {
        c <= max_lag
            && (c as f64 - refined).abs() <= SNAP_SHARE * c as f64
            && acf[c] >= acf[lag] - NEAR
    }) {
        (lag, refined) = (cal, cal as f64);
    }
    Some(Period {
        lag,
        refined,
        confidence: confidence.min(1.0),
    })
}

/// Whether `longest` is a whole multiple of `lag` and `acf` near each multiple of `lag` below it
/// (within [`HARMONIC_SHARE`]) satisfies `explains`.
fn multiples_repeat(
    acf: &[f64],
    lag: usize,
    longest: usize,
    explains: impl Fn(f64) -> bool,
) -> bool {
    let times = (longest as f64 / lag as f64).round() as usize;
    let near = |k: usize| (HARMONIC_SHARE * k as f64).ceil() as usize;
    if times < 2 || (times * lag).abs_diff(longest) > near(longest) {
        return false;
    }
    (2..times).all(|j| {
        let k = j * lag;
        let best = acf[k - near(k)..=(k + near(k)).min(acf.len() - 1)]
            .iter()
            .fold(f64::NEG_INFINITY, |a, &r| a.max(r));
        explains(best)
    })
}

/// The calendar periods (hour, day, week) in points of `interval_seconds`, where it divides them.
pub fn calendar_lags(interval_seconds: f64) -> Vec<usize> {
    CALENDAR
        .iter()
        .map(|cal| cal / interval_seconds)
        .filter(|points| (points - points.round()).abs() < 1e-9 && *points >= MIN_LAG as f64)
        .map(|points| points.round() as usize)
        .collect()
}

/// The vertex of the least-squares parabola through `acf` over `centre ± half` (clamped to the
/// window), or `centre` when the fit does not open downwards.
fn vertex(acf: &[f64], centre: usize, half: usize) -> f64 {
    let lo = centre.saturating_sub(half).max(1);
    let hi = (centre + half).min(acf.len() - 1);
    // Sums for y = a + b·t + c·t², t = k - centre.
    let (mut s0, mut s1, mut s2, mut s3, mut s4) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut y0, mut y1, mut y2) = (0.0, 0.0, 0.0);
    for (k, &y) in acf.iter().enumerate().take(hi + 1).skip(lo) {
        let t = k as f64 - centre as f64;
        let t2 = t * t;
        s0 += 1.0;
        s1 += t;
        s2 += t2;
        s3 += t2 * t;
        s4 += t2 * t2;
        y0 += y;
        y1 += t * y;
        y2 += t2 * y;
    }
    // Cramer's rule on the 3×3 normal equations.
    let det3 = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let a = [[s0, s1, s2], [s1, s2, s3], [s2, s3, s4]];
    let d = det3(a);
    if d.abs() < 1e-12 {
        return centre as f64;
    }
    let b = det3([[s0, y0, s2], [s1, y1, s3], [s2, y2, s4]]) / d;
    let c = det3([[s0, s1, y0], [s1, s2, y1], [s2, s3, y2]]) / d;
    if c >= 0.0 {
        return centre as f64;
    }
    // Within the lags fitted: a peak at the edge of the search has points on one side only, and a
    // vertex past them is an extrapolation (a two-week window put a week's at 7d6h).
    (centre as f64 + -b / (2.0 * c)).clamp(lo as f64, hi as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Pearson correlation of `x[..n-k]` with `x[k..]`, summed directly.
    fn pearson_at(x: &[f64], k: usize) -> f64 {
        let (a, b) = (&x[..x.len() - k], &x[k..]);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (ma, mb) = (mean(a), mean(b));
        let cov: f64 = a.iter().zip(b).map(|(p, q)| (p - ma) * (q - mb)).sum();
        let va: f64 = a.iter().map(|p| (p - ma) * (p - ma)).sum();
        let vb: f64 = b.iter().map(|q| (q - mb) * (q - mb)).sum();
        if va * vb > 0.0 {
            (cov / (va * vb).sqrt()).clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }

    #[test]
    fn the_transformed_autocorrelation_is_the_directly_summed_one() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        // Odd and even lengths, and maximum lags that make every padded length from 4 up.
        for (n, max_lag) in [
            (3, 1),
            (4, 2),
            (5, 3),
            (6, 1),
            (17, 8),
            (100, 50),
            (1441, 720),
        ] {
            let x: Vec<f64> = (0..n)
                .map(|i| 10.0 + (i as f64 * 0.7).sin() + noise())
                .collect();
            let acf = autocorrelation(&x, max_lag);
            assert_eq!(acf.len(), max_lag.min(n - 2) + 1, "n {n}");
            for (k, r) in acf.iter().enumerate().skip(1) {
                let want = pearson_at(&x, k);
                assert!(
                    (r - want).abs() < 1e-9,
                    "n {n}, lag {k}: {r} against {want}"
                );
            }
        }
    }
}
