//! `predictive`: scale one ready-time ahead of the load (placeholder: reactive only).

use leadtime_guest::{export_policy, Request, Response};

/// The policy.
pub fn decide(req: &Request) -> Result<Response, String> {
    let m = req.metrics.first().ok_or("no metric")?;
    let load = m.last().unwrap_or(0.0).max(0.0);
    let want = (load / m.target_per_pod).ceil();
    Ok(Response::new(want as u32, format!("reactive: {want} pods")))
}

export_policy!(decide);
