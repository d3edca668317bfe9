//! Target tracking with headroom, in Rust: the conformance twin of `policies/examples/c` and
//! `policies/examples/assemblyscript` (tests/conformance.rs checks that all answer alike).
//!
//! replicas = ceil(latest load × (1 + headroom) / target per pod), the largest over the metrics
//! with a positive target and a value; headroom doubles while the p90 ready time is over 120 s.
//! Param `headroom` (number in 0..=10, default 0.1). With no usable metric: hold current.

use leadtime_guest::{export_policy, Params, ParamsExt, Request, Response};

const HEADROOM_ERROR: &str = "param `headroom` must be a number in 0..=10";

/// Ready times (p90, seconds) above this count as slow starts.
const SLOW_READY_SECONDS: f64 = 120.0;

fn headroom(params: &Params) -> Result<f64, String> {
    match params.number("headroom", 0.1) {
        Ok(h) if (0.0..=10.0).contains(&h) => Ok(h),
        _ => Err(HEADROOM_ERROR.to_string()),
    }
}

fn check(params: &Params) -> Result<(), String> {
    headroom(params).map(|_| ())
}

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let mut h = headroom(&req.params)?;
    let slow = req
        .ready_seconds_quantile(0.9)
        .is_some_and(|p90| p90 > SLOW_READY_SECONDS);
    if slow {
        h *= 2.0;
    }
    let mut best: Option<(f64, &str)> = None;
    for m in &req.metrics {
        if !(m.target_per_pod > 0.0 && m.target_per_pod.is_finite()) {
            continue;
        }
        let Some(last) = m.last() else { continue };
        let load = if last > 0.0 { last } else { 0.0 };
        let want = (load * (1.0 + h) / m.target_per_pod).ceil();
        if best.is_none_or(|(b, _)| want > b) {
            best = Some((want, &m.name));
        }
    }
    let Some((want, name)) = best else {
        let current = req.replicas.current;
        return Ok(Response::new(
            current,
            format!("no usable metric: holding {current} replicas"),
        ));
    };
    // `as` saturates: an infinite want becomes u32::MAX, which the host clamps to max.
    let replicas = want as u32;
    let mut reason = format!("{name}: {replicas} pods for the latest load");
    if slow {
        reason.push_str(" (slow starts: headroom doubled)");
    }
    Ok(Response::new(replicas, reason))
}

export_policy!(decide, init = check);
