//! The Kubernetes HPA `behavior` rules (autoscaling/v2), applied after any policy: stabilisation
//! windows and rate limits, with the history the HPA controller keeps per workload.
//!
//! SKELETON: the types and the API are fixed; `Guardrails::apply` is a pass-through until the
//! HPA issue implements it.

use leadtime_wire::Replicas;
use serde::{Deserialize, Serialize};

/// The `behavior` block of a HorizontalPodAutoscaler, with the same field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behavior {
    /// Rules for scaling up; Kubernetes defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Rules for scaling down; Kubernetes defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// `HPAScalingRules`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRules {
    /// Seconds of past recommendations to consider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<u32>,
    /// How to combine several policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    /// Rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// Relative change ignored in this direction (e.g. 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

/// `selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `HPAScalingPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// Pods, or percent of current replicas.
    pub value: u32,
    /// The window the change is counted over.
    pub period_seconds: u32,
}

/// `Pods` or `Percent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    /// An absolute number of pods.
    Pods,
    /// A percentage of the current replicas.
    Percent,
}

/// The behavior rules plus the history they need, for one workload.
#[derive(Debug, Clone, Default)]
pub struct Guardrails {
    behavior: Behavior,
}

impl Guardrails {
    /// Guardrails with these rules and no history.
    pub fn new(behavior: Behavior) -> Self {
        Guardrails { behavior }
    }

    /// The rules.
    pub fn behavior(&self) -> &Behavior {
        &self.behavior
    }

    /// The target after stabilisation and rate limits, given the policy's `proposed` target at
    /// `now_ms`, and a note naming the rule that changed it, if any. Records the history.
    pub fn apply(
        &mut self,
        now_ms: i64,
        replicas: &Replicas,
        proposed: u32,
    ) -> (u32, Option<String>) {
        let _ = (now_ms, replicas);
        (proposed, None)
    }
}
