//! Small robust statistics over slices: median, quantile by selection, least-squares slope.

/// The median of `v` (reordered in place); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    select_quantile(v, 0.5)
}

/// The `q` quantile (0..=1, linear interpolation) of `v` in O(n) by selection; NaN when empty.
pub fn select_quantile(v: &mut [f64], q: f64) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, lo_val, above) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_val = *lo_val;
    let frac = pos - lo as f64;
    if frac == 0.0 || above.is_empty() {
        return lo_val;
    }
    // The next order statistic is the smallest of the upper part.
    let hi_val = above.iter().copied().fold(f64::INFINITY, min);
    lo_val + frac * (hi_val - lo_val)
}

/// The smaller of `a` and `b`, `a` when `b` is NaN (`a` never is): `f64::min` without the call
/// to a library `fmin` that wasm32 makes of it (wasm's own `f64.min` treats NaN differently).
#[inline(always)]
pub fn min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// The larger of `a` and `b`, `a` when `b` is NaN (`a` never is): see [`min`].
#[inline(always)]
pub fn max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Median of at most 8 values without allocating or branching on the data: Batcher's odd–even
/// merge sort network for 8 inputs (19 compare-exchanges on registers), padded with +inf. It runs
/// once per point of every window cleaned, where an insertion sort's mispredicted branches cost
/// more than the rest of the cleaning.
pub fn small_median(v: &[f64]) -> f64 {
    let mut buf = [f64::INFINITY; 8];
    let n = v.len().min(8);
    buf[..n].copy_from_slice(&v[..n]);
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = buf;
    // Plain comparisons, not f64::min/max: the values are never NaN (gaps are filled first),
    // and these compile to single min/max instructions.
    macro_rules! cx {
        ($x:ident, $y:ident) => {
            if $y < $x {
                ($x, $y) = ($y, $x);
            }
        };
    }
    cx!(a0, a1);
    cx!(a2, a3);
    cx!(a4, a5);
    cx!(a6, a7);
    cx!(a0, a2);
    cx!(a1, a3);
    cx!(a4, a6);
    cx!(a5, a7);
    cx!(a1, a2);
    cx!(a5, a6);
    cx!(a0, a4);
    cx!(a1, a5);
    cx!(a2, a6);
    cx!(a3, a7);
    cx!(a2, a4);
    cx!(a3, a5);
    cx!(a1, a2);
    cx!(a3, a4);
    cx!(a5, a6);
    let sorted = [a0, a1, a2, a3, a4, a5, a6, a7];
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

/// Least-squares slope of `y` against its index (0 for fewer than 2 points).
pub fn ls_slope(y: &[f64]) -> f64 {
    let n = y.len();
    if n < 2 {
        return 0.0;
    }
    let mean_x = (n - 1) as f64 / 2.0;
    let mean_y = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (v - mean_y);
        sxx += dx * dx;
    }
    sxy / sxx
}

/// Most points [`theil_sen`] takes pairs of; longer series are summarised first.
const THEIL_SEN_POINTS: usize = 64;

/// Theil–Sen slope of `y` against its index: the median of all pairwise slopes. Past
/// [`THEIL_SEN_POINTS`] values, of the pairs between the medians of that many runs of
/// consecutive values (each at its run's centre): all pairs would be O(n²) in time and memory,
/// and a 5-minute cycle over 14 days of 1-minute points has 4,032 cycle means, 8 million pairs,
/// 65 MB. Run medians keep the estimate robust to outliers.
pub fn theil_sen(y: &[f64]) -> f64 {
    let n = y.len();
    let points: Vec<(f64, f64)> = if n <= THEIL_SEN_POINTS {
        y.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect()
    } else {
        let mut run = Vec::with_capacity(n.div_ceil(THEIL_SEN_POINTS));
        (0..THEIL_SEN_POINTS)
            .map(|b| {
                let (lo, hi) = (b * n / THEIL_SEN_POINTS, (b + 1) * n / THEIL_SEN_POINTS);
                run.clear();
                run.extend_from_slice(&y[lo..hi]);
                ((lo + hi - 1) as f64 / 2.0, median(&mut run))
            })
            .collect()
    };
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, &(xi, yi)) in points.iter().enumerate() {
        for &(xj, yj) in &points[i + 1..] {
            slopes.push((yj - yi) / (xj - xi));
        }
    }
    if slopes.is_empty() {
        0.0
    } else {
        median(&mut slopes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_medians() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&mut v), 3.0);
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(select_quantile(&mut v, 0.5), 2.5);
        let mut v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert!((select_quantile(&mut v, 0.95) - 95.0).abs() < 1e-12);
        assert_eq!(small_median(&[3.0, 9.0, 1.0]), 3.0);
        assert_eq!(small_median(&[3.0, 9.0, 1.0, 5.0]), 4.0);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn small_median_agrees_with_sorting_every_length() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..2000 {
            let n = 1 + round % 8;
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Few distinct values, so that ties are common.
                    (seed % 7) as f64 - 3.0
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let want = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
            };
            assert_eq!(small_median(&v), want, "{v:?}");
        }
    }

    #[test]
    fn slopes() {
        let y: Vec<f64> = (0..10).map(|i| 2.0 * i as f64 + 1.0).collect();
        assert!((ls_slope(&y) - 2.0).abs() < 1e-12);
        let mut z = y.clone();
        z[3] = 1000.0;
        assert!((theil_sen(&z) - 2.0).abs() < 1e-12);
        // A long series (summarised by runs) keeps the slope through outliers.
        let mut long: Vec<f64> = (0..5000).map(|i| 0.5 * i as f64 - 7.0).collect();
        for i in (0..5000).step_by(97) {
            long[i] = 1e6;
        }
        assert!(
            (theil_sen(&long) - 0.5).abs() < 1e-9,
            "{}",
            theil_sen(&long)
        );
    }
}
