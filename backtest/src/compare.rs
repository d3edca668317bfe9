//! Policies compared at equal cost: each policy's row against another policy's sweep curve
//! (under-provisioning against cost), read at the row's cost. A cheap policy that is often short
//! and a dear one that never is cannot be ranked from their rows; at the same pod-hours they can.

use super::PolicyResult;
use serde::{Deserialize, Serialize};

/// One policy's row set against another policy's sweep curve at the row's cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matched {
    /// The policy of the row.
    pub policy: String,
    /// The policy whose sweep curve it is compared with.
    pub against: String,
    /// The row's cost, relative to the oracle.
    pub cost_vs_oracle: f64,
    /// The row's under-provisioned time, percent.
    pub under_provisioned_pct: f64,
    /// The other policy's under-provisioned time at the same cost, percent, interpolated on its
    /// curve; `None` when the cost is outside the curve.
    pub against_under_provisioned_pct: Option<f64>,
}

/// The policy name of a row label: sweep rows are labelled `name knob=value`.
pub fn base(label: &str) -> &str {
    label.split(' ').next().unwrap_or(label)
}

/// Under-provisioned time of the `curve` at `cost`, by linear interpolation between the two
/// points around it (sorted by cost); `None` outside the curve's range of costs.
pub fn under_at_cost(curve: &[&PolicyResult], cost: f64) -> Option<f64> {
    let mut points: Vec<(f64, f64)> = curve
        .iter()
        .map(|r| (r.cost_vs_oracle, r.under_provisioned_pct))
        .filter(|(c, u)| c.is_finite() && u.is_finite())
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.windows(2).find_map(|w| {
        let ((c0, u0), (c1, u1)) = (w[0], w[1]);
        if !(c0..=c1).contains(&cost) {
            return None;
        }
        if c1 == c0 {
            return Some(u0.min(u1));
        }
        Some(u0 + (u1 - u0) * (cost - c0) / (c1 - c0))
    })
}

/// Every row of `results` (the oracle aside) against every other policy's curve in `sweep`.
pub fn matched(results: &[PolicyResult], sweep: &[PolicyResult]) -> Vec<Matched> {
    let mut out = Vec::new();
    for row in results.iter().filter(|r| r.policy != "oracle") {
        let mine = base(&row.policy);
        let mut others: Vec<&str> = Vec::new();
        for p in sweep.iter().map(|r| base(&r.policy)) {
            if p != mine && !others.contains(&p) {
                others.push(p);
            }
        }
        for other in others {
            let curve: Vec<&PolicyResult> =
                sweep.iter().filter(|r| base(&r.policy) == other).collect();
            out.push(Matched {
                policy: row.policy.clone(),
                against: other.to_string(),
                cost_vs_oracle: row.cost_vs_oracle,
                under_provisioned_pct: row.under_provisioned_pct,
                against_under_provisioned_pct: under_at_cost(&curve, row.cost_vs_oracle),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(policy: &str, cost: f64, under: f64) -> PolicyResult {
        PolicyResult {
            policy: policy.into(),
            under_provisioned_pct: under,
            unmet_demand_pct: 0.0,
            pod_hours: 0.0,
            oracle_pod_hours: 0.0,
            cost_vs_oracle: cost,
            scale_events: 0,
            mean_replicas: 0.0,
            peak_replicas: 0,
            policy_us_p50: 0.0,
            policy_us_p99: 0.0,
            policy_errors: 0,
            event_under_provisioned_pct: None,
        }
    }

    fn near(got: Option<f64>, want: f64) -> bool {
        got.is_some_and(|g| (g - want).abs() < 1e-9)
    }

    #[test]
    fn interpolates_between_the_points_around_the_cost() {
        let a = row("hpa utilization=1", 0.9, 20.0);
        let b = row("hpa utilization=0.9", 1.1, 2.0);
        let c = row("hpa utilization=0.5", 1.8, 0.0);
        // Unsorted on purpose: the curve is read by cost.
        let curve = [&c, &a, &b];
        assert!(near(under_at_cost(&curve, 1.0), 11.0));
        assert!(near(under_at_cost(&curve, 1.45), 1.0));
        assert!(near(under_at_cost(&curve, 0.9), 20.0));
        assert_eq!(under_at_cost(&curve, 0.8), None);
        assert_eq!(under_at_cost(&curve, 2.0), None);
        assert_eq!(under_at_cost(&curve[..1], 0.9), None);
    }

    #[test]
    fn each_row_meets_each_other_curve() {
        let results = [
            row("predictive", 1.0, 1.0),
            row("hpa", 0.9, 20.0),
            row("oracle", 1.0, 0.0),
        ];
        let sweep = [
            row("predictive quantile=0.5", 0.95, 5.0),
            row("predictive quantile=0.99", 1.2, 0.5),
            row("hpa utilization=1", 0.9, 20.0),
            row("hpa utilization=0.9", 1.1, 2.0),
        ];
        let m = matched(&results, &sweep);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            (m[0].policy.as_str(), m[0].against.as_str()),
            ("predictive", "hpa")
        );
        assert!(near(m[0].against_under_provisioned_pct, 11.0));
        assert_eq!(
            (m[1].policy.as_str(), m[1].against.as_str()),
            ("hpa", "predictive")
        );
        assert_eq!(
            m[1].against_under_provisioned_pct, None,
            "0.9 is below its curve"
        );
        // A curve's rows need not be adjacent: each pair is still compared once.
        let shuffled = [
            sweep[2].clone(),
            row("target-tracking headroom=0", 1.0, 3.0),
            sweep[3].clone(),
        ];
        let again = matched(&results[..1], &shuffled);
        assert_eq!(
            again.len(),
            2,
            "hpa and target-tracking once each: {again:?}"
        );
        assert!(near(again[0].against_under_provisioned_pct, 11.0));
    }
}
