//! `target-tracking`: replicas = ceil(latest total / target per pod × (1 + headroom)), the largest
//! over all metrics. Params: `headroom` (fraction, default 0).

use leadtime_guest::{export_policy, Params, ParamsExt, Request, Response};

fn headroom(params: &Params) -> Result<f64, String> {
    let h = params.number("headroom", 0.0)?;
    if !(0.0..=10.0).contains(&h) {
        return Err(format!("param `headroom` must be in 0..=10, got {h}"));
    }
    Ok(h)
}

fn check(params: &Params) -> Result<(), String> {
    headroom(params).map(|_| ())
}

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let headroom = headroom(&req.params)?;
    let mut best: Option<(f64, &str)> = None;
    for m in &req.metrics {
        if !(m.target_per_pod.is_finite() && m.target_per_pod > 0.0) {
            return Err(format!(
                "metric `{}`: target_per_pod must be a positive number, got {}",
                m.name, m.target_per_pod
            ));
        }
        let Some(load) = m.last() else { continue };
        let want = (load.max(0.0) * (1.0 + headroom) / m.target_per_pod).ceil();
        if best.is_none_or(|(b, _)| want > b) {
            best = Some((want, &m.name));
        }
    }
    Ok(match best {
        Some((want, name)) => Response::new(
            // Clamped by the host to [min, max]; the cast saturates on huge values.
            want as u32,
            format!("{name}: {want} pods for the latest load"),
        ),
        None => Response::new(
            req.replicas.current,
            "no metric has a value: holding current replicas",
        ),
    })
}

export_policy!(decide, init = check);
