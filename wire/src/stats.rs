//! Statistics over plain values, one definition shared by guests and hosts (a policy's ready-time
//! quantile, the backtest's and the bench's latency percentiles).

/// The `q` quantile (0..=1, linear interpolation) of `v`, which it sorts; `None` when empty.
pub fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    // `as usize` floors; pos is finite and non-negative here.
    let lo = pos as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let frac = pos - lo as f64;
    Some(v[lo] + (v[hi] - v[lo]) * frac)
}
