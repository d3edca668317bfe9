//! `hpa`: the Kubernetes HPA replica calculation (`pkg/controller/podautoscaler`,
//! `replica_calculator.go` and `horizontal.go`), for the data a leadtime request carries.
//!
//! A request's metric is the workload's **total** with a target **per pod**: what an HPA sees as
//! an `External` metric with an `AverageValue` target (the form KEDA's scalers use). So the
//! default follows `GetExternalPerPodMetricReplicas`:
//!
//! - usage ratio = total / (target_per_pod × current replicas);
//! - inside the tolerance (`1 - scale_down_tolerance <= ratio <= 1 + scale_up_tolerance`): keep
//!   the current replicas; otherwise ceil(total / target_per_pod).
//!
//! With `metric_type = "pods"` it follows `calcPlainMetricReplicas` instead, for a `Pods` metric
//! averaged over the ready pods: ratio = (total / ready) / target_per_pod, then
//! ceil(ratio × ready); the pods not yet ready count as using nothing on a scale-up, and a
//! scale-up they would turn into a scale-down is dropped, as upstream.
//!
//! Both forms: the latest value of each window; values are read as milli-quantities, as the
//! metrics APIs deliver them, so the arithmetic matches upstream's integer milli-values
//! (1.1 / 0.1 is 11, not 12); with several metrics the largest proposal wins, and if a metric has
//! no value, a scale-down is not made (`computeReplicasForMetrics`); with zero current replicas
//! the proposal is ceil(total / target_per_pod) (scale from zero); a current count above `max` or
//! below `min` goes to that bound first (`reconcileAutoscaler`).
//!
//! Params: `tolerance` (default 0.1, the controller's `--horizontal-pod-autoscaler-tolerance`),
//! `scale_up_tolerance` and `scale_down_tolerance` (default `tolerance`; the autoscaling/v2
//! `behavior.scaleUp.tolerance` / `scaleDown.tolerance`), `metric_type` (`external`, the
//! default, or `pods`).

use leadtime_guest::{export_policy, Metric, Params, ParamsExt, Request, Response};

/// The parameters this policy understands.
const KNOWN_PARAMS: &[&str] = &[
    "tolerance",
    "scale_up_tolerance",
    "scale_down_tolerance",
    "metric_type",
];

/// Which replica calculation of upstream applies to a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `External` metric, `AverageValue` target: `GetExternalPerPodMetricReplicas`.
    External,
    /// `Pods` metric, average over ready pods: `calcPlainMetricReplicas`.
    Pods,
}

/// The checked parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Largest ratio above 1 that keeps the current replicas.
    pub scale_up_tolerance: f64,
    /// Largest ratio below 1 that keeps the current replicas.
    pub scale_down_tolerance: f64,
    /// The calculation used for every metric.
    pub metric_type: MetricType,
}

impl Config {
    /// The parameters read and checked, or what is wrong with them.
    pub fn from_params(params: &Params) -> Result<Config, String> {
        params.only(KNOWN_PARAMS, "hpa")?;
        let base = tolerance(params, "tolerance", 0.1)?;
        let metric_type = match params
            .text("metric_type", "external")?
            .to_ascii_lowercase()
            .as_str()
        {
            "external" => MetricType::External,
            "pods" => MetricType::Pods,
            other => {
                return Err(format!(
                    "param `metric_type` must be `external` or `pods`, got `{other}`"
                ))
            }
        };
        Ok(Config {
            scale_up_tolerance: tolerance(params, "scale_up_tolerance", base)?,
            scale_down_tolerance: tolerance(params, "scale_down_tolerance", base)?,
            metric_type,
        })
    }

    /// Upstream's `tolerances.isWithin`: the ratio is close enough to 1 to change nothing.
    fn within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down_tolerance) <= ratio && ratio <= (1.0 + self.scale_up_tolerance)
    }
}

fn tolerance(params: &Params, name: &str, default: f64) -> Result<f64, String> {
    let t = params.number(name, default)?;
    if t < 0.0 {
        return Err(format!(
            "param `{name}` must be a non-negative fraction (0.1 is 10%), got {t}"
        ));
    }
    Ok(t)
}

fn check(params: &Params) -> Result<(), String> {
    Config::from_params(params).map(|_| ())
}

/// A value as the integer milli-quantity the metrics API would report: rounded up to a whole
/// milli-unit (`Quantity.MilliValue`), after absorbing the float error of `x × 1000`.
fn milli(x: f64) -> i64 {
    let m = x * 1000.0;
    let nearest = m.round();
    let m = if (m - nearest).abs() <= 1e-6 * nearest.abs().max(1.0) {
        nearest
    } else {
        m.ceil()
    };
    // `as` saturates; totals beyond i64 milli-units are not loads.
    m as i64
}

/// Go's `int32(math.Ceil(x))` for the non-negative values met here, saturating at u32::MAX.
fn ceil_replicas(x: f64) -> u32 {
    if x.is_nan() {
        0
    } else {
        // `as` saturates, and maps negatives to 0.
        x.ceil() as u32
    }
}

/// One metric's proposal and how it came about.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Replicas this metric asks for.
    pub replicas: u32,
    /// One line: the numbers and the rule.
    pub why: String,
}

/// The proposal of one metric with latest value `total`, or why it has none (upstream: the
/// metric is invalid).
pub fn propose(
    cfg: &Config,
    metric: &Metric,
    total: f64,
    current: u32,
    ready: u32,
) -> Result<Proposal, String> {
    let name = &metric.name;
    let usage = milli(total.max(0.0));
    let target = milli(metric.target_per_pod);
    if target <= 0 {
        return Err(format!(
            "metric `{name}`: target_per_pod must be at least 0.001, got {}",
            metric.target_per_pod
        ));
    }
    let per_pod = usage as f64 / target as f64;
    if current == 0 {
        // getUsageRatioReplicaCount with currentReplicas = 0: scale from zero to ceil(ratio),
        // the ratio taken for one pod.
        let replicas = ceil_replicas(per_pod);
        return Ok(Proposal {
            replicas,
            why: format!(
                "{name}: {total} / {} per pod from zero replicas: {replicas}",
                metric.target_per_pod
            ),
        });
    }
    match cfg.metric_type {
        MetricType::External => {
            // GetExternalPerPodMetricReplicas: the ratio over the status replicas (pods that
            // exist), the new count from the total alone.
            let ratio = usage as f64 / (target as f64 * f64::from(current));
            if cfg.within(ratio) {
                Ok(Proposal {
                    replicas: current,
                    why: format!("{name}: ratio {ratio:.3} within tolerance, holding {current}"),
                })
            } else {
                let replicas = ceil_replicas(per_pod);
                Ok(Proposal {
                    replicas,
                    why: format!(
                        "{name}: ratio {ratio:.3} over {current} pods, ceil({total} / {}) = {replicas}",
                        metric.target_per_pod
                    ),
                })
            }
        }
        MetricType::Pods => propose_pods(cfg, metric, total, usage, target, current, ready),
    }
}

/// `calcPlainMetricReplicas` for a Pods metric whose per-pod values sum to `usage`, the ready
/// pods having metrics and the others (`current - ready`) still starting.
fn propose_pods(
    cfg: &Config,
    metric: &Metric,
    total: f64,
    usage: i64,
    target: i64,
    current: u32,
    ready: u32,
) -> Result<Proposal, String> {
    let name = &metric.name;
    if ready == 0 {
        return Err(format!(
            "metric `{name}`: no ready pod reports it (pods might be unready)"
        ));
    }
    // GetMetricUsageRatio: the average is an integer division of milli-values.
    let ratio = (usage / i64::from(ready)) as f64 / target as f64;
    let unready = current.saturating_sub(ready);
    if !(unready > 0 && ratio > 1.0) {
        if cfg.within(ratio) {
            return Ok(Proposal {
                replicas: current,
                why: format!("{name}: ratio {ratio:.3} within tolerance, holding {current}"),
            });
        }
        let replicas = ceil_replicas(ratio * f64::from(ready));
        return Ok(Proposal {
            replicas,
            why: format!(
                "{name}: {total} over {ready} ready pods, ratio {ratio:.3}: ceil({ratio:.3} × {ready}) = {replicas}"
            ),
        });
    }
    // A scale-up with pods not yet ready: they count as using nothing.
    let pods = ready + unready;
    let new_ratio = (usage / i64::from(pods)) as f64 / target as f64;
    if cfg.within(new_ratio) || new_ratio < 1.0 {
        return Ok(Proposal {
            replicas: current,
            why: format!(
                "{name}: ratio {ratio:.3} over {ready} ready pods, but {new_ratio:.3} counting the {unready} not ready as idle: holding {current}"
            ),
        });
    }
    let replicas = ceil_replicas(new_ratio * f64::from(pods));
    Ok(Proposal {
        replicas,
        why: format!(
            "{name}: ratio {new_ratio:.3} counting the {unready} not-ready pods as idle: ceil({new_ratio:.3} × {pods}) = {replicas}"
        ),
    })
}

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let cfg = Config::from_params(&req.params)?;
    let r = &req.replicas;
    let current = r.current;
    // reconcileAutoscaler: outside the bounds, go to the bound before looking at metrics. Zero
    // replicas are a scale from zero here (upstream's HPAScaleToZero), not "scaling disabled".
    if current != 0 && current > r.max {
        return Ok(Response::new(
            r.max,
            format!("current {current} above max {}: scaling to max", r.max),
        ));
    }
    if current != 0 && current < r.min {
        return Ok(Response::new(
            r.min,
            format!("current {current} below min {}: scaling to min", r.min),
        ));
    }

    // computeReplicasForMetrics: the largest proposal; invalid metrics are counted.
    let mut best: Option<Proposal> = None;
    let mut invalid: Vec<String> = Vec::new();
    for m in &req.metrics {
        // A target Kubernetes' validation would refuse is the caller's error, not a gap in data.
        if milli(m.target_per_pod) <= 0 {
            return Err(format!(
                "metric `{}`: target_per_pod must be at least 0.001, got {}",
                m.name, m.target_per_pod
            ));
        }
    }
    for m in &req.metrics {
        let Some(total) = m.last() else {
            invalid.push(format!("metric `{}` has no value", m.name));
            continue;
        };
        match propose(&cfg, m, total, current, r.ready) {
            Ok(p) => {
                if best.as_ref().is_none_or(|b| p.replicas > b.replicas) {
                    best = Some(p);
                }
            }
            // Bad targets were refused above, so an error here is a metric without data.
            Err(e) => invalid.push(e),
        }
    }
    if req.metrics.is_empty() {
        return Ok(Response::new(
            current,
            format!("no metric: holding {current}"),
        ));
    }
    let Some(best) = best else {
        return Ok(Response::new(
            current,
            format!(
                "no metric is usable ({}): holding {current}",
                invalid.join("; ")
            ),
        ));
    };
    if !invalid.is_empty() && best.replicas < current {
        return Ok(Response::new(
            current,
            format!(
                "{} of {} metrics invalid ({}): not scaling down from {current} (asked {})",
                invalid.len(),
                req.metrics.len(),
                invalid.join("; "),
                best.replicas
            ),
        ));
    }
    let mut reason = best.why;
    if !invalid.is_empty() {
        reason = format!("{reason}; ignoring {}", invalid.join("; "));
    }
    Ok(Response::new(best.replicas, reason))
}

export_policy!(decide, init = check);

#[cfg(test)]
mod tests {
    use super::*;
    use leadtime_guest::Param;

    #[test]
    fn milli_absorbs_float_error_and_rounds_up_fractions() {
        assert_eq!(milli(1.1), 1100);
        assert_eq!(milli(0.1), 100);
        assert_eq!(milli(0.0005), 1);
        assert_eq!(milli(12.3456), 12346);
        assert_eq!(milli(0.0), 0);
    }

    #[test]
    fn params_are_checked() {
        let mut p = Params::new();
        assert!(check(&p).is_ok());
        p.insert("tolerance".into(), Param::Number(-0.1));
        assert!(check(&p).unwrap_err().contains("tolerance"));
        p.clear();
        p.insert("tolerence".into(), Param::Number(0.1));
        assert!(check(&p).unwrap_err().contains("unknown param `tolerence`"));
        p.clear();
        p.insert("metric_type".into(), Param::Text("Object".into()));
        assert!(check(&p).unwrap_err().contains("metric_type"));
        p.clear();
        p.insert("metric_type".into(), Param::Text("Pods".into()));
        p.insert("tolerance".into(), Param::Number(0.2));
        p.insert("scale_up_tolerance".into(), Param::Number(0.05));
        let cfg = Config::from_params(&p).unwrap();
        assert_eq!(cfg.metric_type, MetricType::Pods);
        assert_eq!(cfg.scale_up_tolerance, 0.05);
        assert_eq!(cfg.scale_down_tolerance, 0.2);
    }
}
