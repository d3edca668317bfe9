//! The scoreboard over a corpus of traces: per trace, every policy's under-provisioned time at
//! the cost of a reference row (the predictive policy's default), read on each policy's sweep
//! curve. Equal cost is the only fair ranking (see [`crate::compare`]).

use crate::compare::{base, under_at_cost};
use crate::PolicyResult;
use serde::Serialize;

/// How a policy's under-provisioned time at the reference cost was read off its curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// The reference row itself.
    Own,
    /// Interpolated on the curve.
    Exact,
    /// The cost is below the curve's cheapest point: the value is that point's, and the policy
    /// would be under-provisioned at least as long at the reference cost.
    AtLeast,
    /// The cost is above the curve's dearest point: the value is that point's, an upper bound.
    AtMost,
}

/// One policy's under-provisioned time at the reference cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// The policy's label.
    pub policy: String,
    /// Percent of the scored time.
    pub under_provisioned_pct: f64,
    /// How it was read.
    pub reading: Reading,
}

/// One trace's line of the scoreboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The trace's name.
    pub trace: String,
    /// The reference row's cost, relative to the oracle.
    pub cost_vs_oracle: f64,
    /// The reference first, then each other policy in the order of the rows.
    pub scores: Vec<Score>,
}

impl Line {
    /// The score of `policy`, if it is in the line.
    pub fn score(&self, policy: &str) -> Option<&Score> {
        self.scores.iter().find(|s| s.policy == policy)
    }

    /// Whether the reference is under-provisioned at most as long as `policy` at equal cost,
    /// `None` when the curve cannot tell (the reference is dearer than the whole curve and
    /// worse than its dearest point).
    pub fn reference_at_most(&self, policy: &str, factor: f64) -> Option<bool> {
        let me = self.scores.first()?.under_provisioned_pct;
        let other = self.score(policy)?;
        let bar = factor * other.under_provisioned_pct;
        match other.reading {
            Reading::Own | Reading::Exact => Some(me <= bar + 1e-9),
            // The other is at least this bad at the reference cost.
            Reading::AtLeast => (me <= bar + 1e-9).then_some(true),
            // The other is at most this bad: only a loss is certain.
            Reading::AtMost => (me > bar + 1e-9).then_some(false),
        }
    }
}

/// The line of `trace`: `reference` is the label of the reference row in `results`; every other
/// policy of `results` (the oracle aside) is read on its curve in `sweep` at the reference cost.
pub fn line(
    trace: &str,
    reference: &str,
    results: &[PolicyResult],
    sweep: &[PolicyResult],
) -> Option<Line> {
    let r = results.iter().find(|r| r.policy == reference)?;
    let cost = r.cost_vs_oracle;
    let mut scores = vec![Score {
        policy: reference.to_string(),
        under_provisioned_pct: r.under_provisioned_pct,
        reading: Reading::Own,
    }];
    for row in results
        .iter()
        .filter(|x| x.policy != "oracle" && x.policy != reference)
    {
        let curve: Vec<&PolicyResult> = sweep
            .iter()
            .filter(|s| base(&s.policy) == row.policy)
            .filter(|s| s.cost_vs_oracle.is_finite() && s.under_provisioned_pct.is_finite())
            .collect();
        let score = match under_at_cost(&curve, cost) {
            Some(u) => Score {
                policy: row.policy.clone(),
                under_provisioned_pct: u,
                reading: Reading::Exact,
            },
            None => {
                let cheapest = curve
                    .iter()
                    .min_by(|a, b| a.cost_vs_oracle.total_cmp(&b.cost_vs_oracle));
                let dearest = curve
                    .iter()
                    .max_by(|a, b| a.cost_vs_oracle.total_cmp(&b.cost_vs_oracle));
                match (cheapest, dearest) {
                    (Some(c), _) if cost < c.cost_vs_oracle => Score {
                        policy: row.policy.clone(),
                        under_provisioned_pct: c.under_provisioned_pct,
                        reading: Reading::AtLeast,
                    },
                    (_, Some(d)) => Score {
                        policy: row.policy.clone(),
                        under_provisioned_pct: d.under_provisioned_pct,
                        reading: Reading::AtMost,
                    },
                    // No curve: the policy's own row, at its own cost.
                    _ => Score {
                        policy: row.policy.clone(),
                        under_provisioned_pct: row.under_provisioned_pct,
                        reading: Reading::Own,
                    },
                }
            }
        };
        scores.push(score);
    }
    Some(Line {
        trace: trace.to_string(),
        cost_vs_oracle: cost,
        scores,
    })
}

/// Per policy, the mean under-provisioned time over the lines (bounds taken as values).
pub fn totals(lines: &[Line]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64, usize)> = Vec::new();
    for l in lines {
        for s in &l.scores {
            match out.iter_mut().find(|(p, _, _)| *p == s.policy) {
                Some(t) => {
                    t.1 += s.under_provisioned_pct;
                    t.2 += 1;
                }
                None => out.push((s.policy.clone(), s.under_provisioned_pct, 1)),
            }
        }
    }
    out.into_iter()
        .map(|(p, sum, n)| (p, sum / n as f64))
        .collect()
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

    #[test]
    fn reads_each_curve_at_the_reference_cost() {
        let results = [
            row("predictive", 1.0, 2.0),
            row("hpa", 0.9, 20.0),
            row("crane-dsp", 1.5, 0.0),
            row("oracle", 1.0, 0.0),
        ];
        let sweep = [
            row("hpa utilization=1", 0.9, 20.0),
            row("hpa utilization=0.8", 1.1, 4.0),
            row("crane-dsp utilization=1", 1.2, 1.0),
            row("crane-dsp utilization=0.5", 2.0, 0.0),
        ];
        let l = line("t.csv", "predictive", &results, &sweep).unwrap();
        assert_eq!(l.scores.len(), 3);
        assert_eq!(l.score("hpa").unwrap().reading, Reading::Exact);
        assert!((l.score("hpa").unwrap().under_provisioned_pct - 12.0).abs() < 1e-9);
        assert_eq!(l.reference_at_most("hpa", 1.0), Some(true));
        assert_eq!(l.reference_at_most("hpa", 0.1), Some(false));
        // Crane's cheapest point costs more than the reference: it is at least 1% short there.
        assert_eq!(l.score("crane-dsp").unwrap().reading, Reading::AtLeast);
        assert_eq!(
            l.reference_at_most("crane-dsp", 1.0),
            None,
            "2% vs at least 1%"
        );
        let t = totals(&[l.clone(), l]);
        assert_eq!(t[0], ("predictive".to_string(), 2.0));
    }
}
