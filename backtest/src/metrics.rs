//! What a run is scored on: provisioning over time, cost in pod-hours, scale events, and the
//! policy's own speed. The field names of [`PolicyResult`] are a contract (`--json`).

use serde::{Deserialize, Serialize};

/// One row of the results: a policy (or the oracle) over the scored window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    /// The policy's label (name, plus the swept knob when sweeping).
    pub policy: String,
    /// Share of time with ready capacity below demand, in percent.
    pub under_provisioned_pct: f64,
    /// Share of demand above ready capacity, in percent.
    pub unmet_demand_pct: f64,
    /// Pod-hours of every pod, starting ones included.
    pub pod_hours: f64,
    /// The oracle's pod-hours on the same window.
    pub oracle_pod_hours: f64,
    /// `pod_hours / oracle_pod_hours`.
    pub cost_vs_oracle: f64,
    /// Decisions that changed the replica count.
    pub scale_events: u64,
    /// Time-weighted mean of the replicas.
    pub mean_replicas: f64,
    /// Highest replica count.
    pub peak_replicas: u32,
    /// Median time of one policy call, microseconds.
    pub policy_us_p50: f64,
    /// 99th percentile time of one policy call, microseconds.
    pub policy_us_p99: f64,
    /// Calls that failed (the replicas were held).
    pub policy_errors: u64,
    /// Share of the time planned events' load was under way with ready capacity below demand,
    /// in percent; present when the schedule has events inside the scored window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_under_provisioned_pct: Option<f64>,
}

/// Running sums over the scored window.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Milliseconds scored.
    pub scored_ms: f64,
    /// Milliseconds with ready pods below the need.
    pub under_ms: f64,
    /// Demand × ms above ready capacity.
    pub unmet: f64,
    /// Demand × ms.
    pub demand: f64,
    /// Pods × ms.
    pub pod_ms: f64,
    /// Highest pod count.
    pub peak: u32,
    /// Count changes.
    pub scale_events: u64,
    /// Failed calls.
    pub errors: u64,
    /// Each call's time, microseconds.
    pub call_us: Vec<f64>,
    /// Milliseconds scored while a planned event's load was under way.
    pub event_ms: f64,
    /// Of those, milliseconds with ready pods below the need.
    pub event_under_ms: f64,
}

impl Tally {
    /// One stretch `[a, b)` with `pods` existing and `ready` of them Ready, at `demand` that needs
    /// `need` pods of `capacity` each.
    pub fn segment(
        &mut self,
        ms: f64,
        pods: u32,
        ready: u32,
        demand: f64,
        need: u32,
        capacity: f64,
    ) {
        self.scored_ms += ms;
        self.pod_ms += ms * f64::from(pods);
        self.demand += ms * demand;
        if ready < need {
            self.under_ms += ms;
            self.unmet += ms * (demand - f64::from(ready) * capacity).max(0.0);
        }
    }

    /// Of a stretch already counted by [`Tally::segment`], `ms` inside a planned event, and
    /// whether ready pods were below the need.
    pub fn event(&mut self, ms: f64, under: bool) {
        self.event_ms += ms;
        if under {
            self.event_under_ms += ms;
        }
    }

    /// The row, given the oracle's pod-hours (`None` for the oracle itself).
    pub fn result(&self, policy: &str, oracle_pod_hours: Option<f64>) -> PolicyResult {
        let pct = |x: f64, of: f64| if of > 0.0 { 100.0 * x / of } else { 0.0 };
        let pod_hours = self.pod_ms / 3.6e6;
        let oracle = oracle_pod_hours.unwrap_or(pod_hours);
        let mut us = self.call_us.clone();
        PolicyResult {
            policy: policy.to_string(),
            under_provisioned_pct: pct(self.under_ms, self.scored_ms),
            unmet_demand_pct: pct(self.unmet, self.demand),
            pod_hours,
            oracle_pod_hours: oracle,
            cost_vs_oracle: if oracle > 0.0 {
                pod_hours / oracle
            } else {
                1.0
            },
            scale_events: self.scale_events,
            mean_replicas: if self.scored_ms > 0.0 {
                self.pod_ms / self.scored_ms
            } else {
                0.0
            },
            peak_replicas: self.peak,
            policy_us_p50: leadtime_wire::stats::quantile(&mut us, 0.5).unwrap_or(0.0),
            policy_us_p99: leadtime_wire::stats::quantile(&mut us, 0.99).unwrap_or(0.0),
            policy_errors: self.errors,
            event_under_provisioned_pct: (self.event_ms > 0.0)
                .then(|| pct(self.event_under_ms, self.event_ms)),
        }
    }
}
