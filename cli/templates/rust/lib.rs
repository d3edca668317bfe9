//! {{name}}: a leadtime scaling policy.
//!
//! replicas = ceil(latest load × (1 + headroom) / target per pod), the largest over the metrics.
//! Param `headroom` (fraction, default 0). Change `decide` to make it yours.

use leadtime_guest::{export_policy, Params, ParamsExt, Request, Response};

fn headroom(params: &Params) -> Result<f64, String> {
    let h = params.number("headroom", 0.0)?;
    if !(0.0..=10.0).contains(&h) {
        return Err(format!("param `headroom` must be in 0..=10, got {h}"));
    }
    Ok(h)
}

/// Checks the params once, when the host loads the policy.
fn check(params: &Params) -> Result<(), String> {
    headroom(params).map(|_| ())
}

/// The policy: one request in, one replica target out.
pub fn decide(req: &Request) -> Result<Response, String> {
    let headroom = headroom(&req.params)?;
    let mut best: Option<(f64, &str)> = None;
    for m in &req.metrics {
        if !(m.target_per_pod > 0.0 && m.target_per_pod.is_finite()) {
            return Err(format!("metric `{}`: target_per_pod must be positive", m.name));
        }
        let Some(load) = m.last() else { continue };
        let want = (load.max(0.0) * (1.0 + headroom) / m.target_per_pod).ceil();
        if best.is_none_or(|(b, _)| want > b) {
            best = Some((want, &m.name));
        }
    }
    Ok(match best {
        // `as` saturates; the host clamps the target to [min, max].
        Some((want, name)) => Response::new(want as u32, format!("{name}: {} pods for the latest load", want as u32)),
        None => Response::new(req.replicas.current, "no metric has a value: holding current replicas"),
    })
}

export_policy!(decide, init = check);

#[cfg(test)]
mod tests {
    use super::*;
    use leadtime_guest::{Metric, Replicas};

    #[test]
    fn scales_to_the_latest_load() {
        let req = Request {
            abi_version: 1,
            now: 0,
            workload: Default::default(),
            replicas: Replicas { current: 1, ready: 1, min: 1, max: 10 },
            metrics: vec![Metric {
                name: "rps".into(),
                target_per_pod: 10.0,
                interval_seconds: 60.0,
                end: 0,
                values: vec![20.0, 41.0],
            }],
            ready_times: vec![],
            events: vec![],
            params: Default::default(),
            state: None,
        };
        let resp = leadtime_guest::rt::decide_native(&req, decide);
        assert_eq!(resp.replicas, Some(5));
    }
}
