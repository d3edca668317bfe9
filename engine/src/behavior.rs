//! The Kubernetes HPA `behavior` rules (autoscaling/v2), applied after any policy: stabilisation
//! windows and rate limits, with the history the HPA controller keeps per workload.
//!
//! The arithmetic follows the upstream controller (`pkg/controller/podautoscaler/horizontal.go`:
//! `stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`,
//! `calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`,
//! `storeScaleEvent`), including its float rounding and the way it reuses history slots, so that
//! a backtest with these guardrails matches what a cluster would have done.
//!
//! ```
//! use leadtime::behavior::{Behavior, Guardrails};
//! use leadtime::Replicas;
//! let behavior = Behavior::parse("scaleDown:\n  stabilizationWindowSeconds: 60\n").unwrap();
//! let mut guard = Guardrails::new(behavior);
//! let r = Replicas { current: 10, ready: 10, min: 1, max: 100 };
//! let (target, note) = guard.apply(0, &r, 4);
//! assert_eq!(target, 4); // no earlier recommendation is higher
//! assert!(note.is_none());
//! ```

use leadtime_wire::Replicas;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "quantity"
    )]
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

/// Why a behavior block could not be read: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BehaviorError {
    /// The text is not valid YAML or JSON for a behavior block (the message has line and column).
    #[error("behavior ({format}): {message}")]
    Parse {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message, with the position.
        message: String,
    },
    /// A field has a value Kubernetes would refuse.
    #[error("behavior: `{field}` {message}")]
    Invalid {
        /// Path of the field, e.g. `scaleUp.policies[0].periodSeconds`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Kubernetes' `--horizontal-pod-autoscaler-downscale-stabilization` default, in seconds.
pub const DEFAULT_SCALE_DOWN_WINDOW_SECONDS: u32 = 300;

/// Upstream validation: `stabilizationWindowSeconds` is at most one hour.
pub const MAX_STABILIZATION_WINDOW_SECONDS: u32 = 3600;

/// Upstream validation: a policy's `periodSeconds` is at most 30 minutes.
pub const MAX_PERIOD_SECONDS: u32 = 1800;

impl ScalingRules {
    /// The autoscaling/v2 scale-up defaults: no window, Max of 4 pods or 100% per 15 s.
    pub fn default_scale_up() -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: Some(0),
            select_policy: Some(SelectPolicy::Max),
            policies: Some(vec![
                ScalingPolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period_seconds: 15,
                },
                ScalingPolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_seconds: 15,
                },
            ]),
            tolerance: None,
        }
    }

    /// The autoscaling/v2 scale-down defaults: a 300 s window, 100% per 15 s, Max.
    pub fn default_scale_down() -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: Some(DEFAULT_SCALE_DOWN_WINDOW_SECONDS),
            select_policy: Some(SelectPolicy::Max),
            policies: Some(vec![ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period_seconds: 15,
            }]),
            tolerance: None,
        }
    }

    /// These rules with each absent field taken from `defaults`, as the API server does.
    fn or_defaults(&self, defaults: ScalingRules) -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: self
                .stabilization_window_seconds
                .or(defaults.stabilization_window_seconds),
            select_policy: self.select_policy.or(defaults.select_policy),
            policies: self.policies.clone().or(defaults.policies),
            tolerance: self.tolerance.or(defaults.tolerance),
        }
    }

    fn validate(&self, at: &str) -> Result<(), BehaviorError> {
        let invalid = |field: String, message: String| BehaviorError::Invalid { field, message };
        if let Some(w) = self.stabilization_window_seconds {
            if w > MAX_STABILIZATION_WINDOW_SECONDS {
                return Err(invalid(
                    format!("{at}.stabilizationWindowSeconds"),
                    format!(
                        "must be at most {MAX_STABILIZATION_WINDOW_SECONDS} (one hour), got {w}"
                    ),
                ));
            }
        }
        if let Some(t) = self.tolerance {
            if !(t.is_finite() && t >= 0.0) {
                return Err(invalid(
                    format!("{at}.tolerance"),
                    format!("must be a non-negative number, got {t}"),
                ));
            }
        }
        if let Some(policies) = &self.policies {
            if policies.is_empty() {
                return Err(invalid(
                    format!("{at}.policies"),
                    "must list at least one policy (omit it for the defaults)".into(),
                ));
            }
            for (i, p) in policies.iter().enumerate() {
                if p.value == 0 {
                    return Err(invalid(
                        format!("{at}.policies[{i}].value"),
                        "must be greater than zero".into(),
                    ));
                }
                if p.period_seconds == 0 || p.period_seconds > MAX_PERIOD_SECONDS {
                    return Err(invalid(
                        format!("{at}.policies[{i}].periodSeconds"),
                        format!(
                            "must be in 1..={MAX_PERIOD_SECONDS}, got {}",
                            p.period_seconds
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Behavior {
    /// Reads a behavior block from YAML or JSON text, exactly as in an HPA manifest. The text may
    /// be the block's content, the block with its `behavior:` key (other keys of an HPA `spec`
    /// beside it are ignored), or a whole HPA manifest (its `spec.behavior` is read). The result
    /// is validated.
    pub fn parse(text: &str) -> Result<Behavior, BehaviorError> {
        let behavior = if text.trim_start().starts_with('{') {
            parse_json(text)?
        } else {
            parse_yaml(text)?
        };
        behavior.validate()?;
        Ok(behavior)
    }

    /// Reads and validates a behavior block from a file (YAML or JSON).
    pub fn from_file(path: &std::path::Path) -> Result<Behavior, BehaviorError> {
        let text = std::fs::read_to_string(path).map_err(|e| BehaviorError::Parse {
            format: "file",
            message: format!("{}: {e}", path.display()),
        })?;
        Behavior::parse(&text).map_err(|e| match e {
            BehaviorError::Parse { format, message } => BehaviorError::Parse {
                format,
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// Checks every field against the limits Kubernetes' API validation enforces.
    pub fn validate(&self) -> Result<(), BehaviorError> {
        if let Some(up) = &self.scale_up {
            up.validate("scaleUp")?;
        }
        if let Some(down) = &self.scale_down {
            down.validate("scaleDown")?;
        }
        Ok(())
    }

    /// The same block with every absent field set to its autoscaling/v2 default.
    pub fn with_defaults(&self) -> Behavior {
        Behavior {
            scale_up: Some(
                self.scale_up
                    .clone()
                    .unwrap_or_default()
                    .or_defaults(ScalingRules::default_scale_up()),
            ),
            scale_down: Some(
                self.scale_down
                    .clone()
                    .unwrap_or_default()
                    .or_defaults(ScalingRules::default_scale_down()),
            ),
        }
    }
}

/// Which of the accepted document shapes the text has.
fn shape_of(keys: &[&str]) -> Shape {
    if keys.contains(&"spec") {
        Shape::Manifest
    } else if keys.contains(&"behavior") {
        Shape::Wrapped
    } else {
        Shape::Bare
    }
}

enum Shape {
    Bare,
    Wrapped,
    Manifest,
}

#[derive(Deserialize)]
struct Manifest {
    spec: Spec,
}

/// An HPA's `spec`, or any map with a `behavior` key: the other keys are not ours to check.
#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    behavior: Behavior,
}

fn parse_yaml(text: &str) -> Result<Behavior, BehaviorError> {
    let err = |e: serde_norway::Error| BehaviorError::Parse {
        format: "YAML",
        message: e.to_string(),
    };
    // Read once loosely to see the document's shape, then again typed, from the text itself, so
    // that errors keep their line and column.
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(err)?;
    let keys: Vec<&str> = match &value {
        serde_norway::Value::Mapping(m) => m.keys().filter_map(|k| k.as_str()).collect(),
        // An empty document is an empty block: all defaults.
        serde_norway::Value::Null => return Ok(Behavior::default()),
        _ => {
            return Err(BehaviorError::Parse {
                format: "YAML",
                message: "expected a mapping with `scaleUp` and/or `scaleDown`".into(),
            })
        }
    };
    Ok(match shape_of(&keys) {
        Shape::Bare => serde_norway::from_str::<Behavior>(text).map_err(err)?,
        Shape::Wrapped => serde_norway::from_str::<Spec>(text).map_err(err)?.behavior,
        Shape::Manifest => {
            serde_norway::from_str::<Manifest>(text)
                .map_err(err)?
                .spec
                .behavior
        }
    })
}

fn parse_json(text: &str) -> Result<Behavior, BehaviorError> {
    let err = |e: serde_json::Error| BehaviorError::Parse {
        format: "JSON",
        message: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(err)?;
    let keys: Vec<&str> = match &value {
        serde_json::Value::Object(m) => m.keys().map(String::as_str).collect(),
        _ => {
            return Err(BehaviorError::Parse {
                format: "JSON",
                message: "expected an object with `scaleUp` and/or `scaleDown`".into(),
            })
        }
    };
    Ok(match shape_of(&keys) {
        Shape::Bare => serde_json::from_str::<Behavior>(text).map_err(err)?,
        Shape::Wrapped => serde_json::from_str::<Spec>(text).map_err(err)?.behavior,
        Shape::Manifest => {
            serde_json::from_str::<Manifest>(text)
                .map_err(err)?
                .spec
                .behavior
        }
    })
}

/// A Kubernetes quantity for `tolerance`: a number (`0.05`) or a string (`"0.05"`, `"50m"`).
fn quantity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    let parsed = match Option::<Raw>::deserialize(d)? {
        None => return Ok(None),
        Some(Raw::Number(n)) => n,
        Some(Raw::Text(s)) => {
            let s = s.trim();
            let (digits, scale) = match s.strip_suffix('m') {
                Some(milli) => (milli, 1e-3),
                None => (s, 1.0),
            };
            digits.parse::<f64>().map(|v| v * scale).map_err(|_| {
                serde::de::Error::custom(format!(
                    "tolerance `{s}` is not a quantity like 0.1 or 100m"
                ))
            })?
        }
    };
    Ok(Some(parsed))
}

/// One direction's rules with every default filled in.
#[derive(Debug, Clone)]
struct Rules {
    window_seconds: u32,
    select: SelectPolicy,
    policies: Vec<ScalingPolicy>,
    tolerance: Option<f64>,
}

impl Rules {
    fn from(rules: Option<&ScalingRules>, defaults: ScalingRules) -> Rules {
        let r = rules.cloned().unwrap_or_default().or_defaults(defaults);
        Rules {
            window_seconds: r.stabilization_window_seconds.unwrap_or(0),
            select: r.select_policy.unwrap_or(SelectPolicy::Max),
            policies: r.policies.unwrap_or_default(),
            tolerance: r.tolerance,
        }
    }

    fn longest_period(&self) -> u32 {
        self.policies
            .iter()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0)
    }
}

/// A recommendation the guardrails saw, as upstream's `timestampedRecommendation`.
#[derive(Debug, Clone, Copy)]
struct Recommendation {
    at_ms: i64,
    replicas: u32,
}

/// A change of replicas the guardrails made, as upstream's `timestampedScaleEvent`.
#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    at_ms: i64,
    change: i64,
    outdated: bool,
}

/// The behavior rules plus the history they need, for one workload.
#[derive(Debug, Clone)]
pub struct Guardrails {
    behavior: Behavior,
    up: Rules,
    down: Rules,
    recommendations: Vec<Recommendation>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails::new(Behavior::default())
    }
}

impl fmt::Display for SelectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectPolicy::Max => "Max",
            SelectPolicy::Min => "Min",
            SelectPolicy::Disabled => "Disabled",
        })
    }
}

impl fmt::Display for ScalingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PolicyKind::Pods if self.value == 1 => write!(f, "1 pod per {}s", self.period_seconds),
            PolicyKind::Pods => write!(f, "{} pods per {}s", self.value, self.period_seconds),
            PolicyKind::Percent => write!(f, "{}% per {}s", self.value, self.period_seconds),
        }
    }
}

/// Which of the two directions a rule belongs to, for notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Up => "scale-up",
            Direction::Down => "scale-down",
        })
    }
}

impl Guardrails {
    /// Guardrails with these rules and no history. Absent fields take the autoscaling/v2
    /// defaults; use [`Guardrails::try_new`] to refuse values Kubernetes would refuse.
    pub fn new(behavior: Behavior) -> Self {
        let up = Rules::from(behavior.scale_up.as_ref(), ScalingRules::default_scale_up());
        let down = Rules::from(
            behavior.scale_down.as_ref(),
            ScalingRules::default_scale_down(),
        );
        Guardrails {
            behavior,
            up,
            down,
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    /// Guardrails with these rules once they pass Kubernetes' validation.
    pub fn try_new(behavior: Behavior) -> Result<Self, BehaviorError> {
        behavior.validate()?;
        Ok(Guardrails::new(behavior))
    }

    /// The rules.
    pub fn behavior(&self) -> &Behavior {
        &self.behavior
    }

    /// Forgets every recommendation and scale event, as a restarted controller would.
    pub fn reset(&mut self) {
        self.recommendations.clear();
        self.scale_up_events.clear();
        self.scale_down_events.clear();
    }

    /// Records a change of replicas made at `at_ms`, as the controller does after each rescale:
    /// for a host that restores the history of a workload, or that changed the replicas by
    /// other means and wants the rate limits to count it. `from == to` records nothing.
    pub fn record_scale_event(&mut self, at_ms: i64, from: u32, to: u32) {
        if from != to {
            self.store_scale_event(at_ms, from, to);
        }
    }

    /// Appends a recommendation made at `at_ms` to the kept ones, in the order given, without
    /// reusing old slots: for a host that restores the history of a workload it saved.
    pub fn restore_recommendation(&mut self, at_ms: i64, replicas: u32) {
        self.recommendations
            .push(Recommendation { at_ms, replicas });
    }

    /// The recommendations kept, in slot order (upstream reuses old slots): (Unix ms, replicas).
    pub fn recommendations(&self) -> Vec<(i64, u32)> {
        self.recommendations
            .iter()
            .map(|r| (r.at_ms, r.replicas))
            .collect()
    }

    /// The target after stabilisation and rate limits, given the policy's `proposed` target at
    /// `now_ms`, and a note naming the rule that changed it, if any. Records the history.
    ///
    /// Records the returned target as applied: a change from `replicas.current` becomes a scale
    /// event that later rate limits count, as the controller stores one after each rescale.
    pub fn apply(
        &mut self,
        now_ms: i64,
        replicas: &Replicas,
        proposed: u32,
    ) -> (u32, Option<String>) {
        let current = replicas.current;
        let (min, max) = (replicas.min, replicas.max.max(replicas.min));
        // reconcileAutoscaler: a current count outside the bounds goes straight to the bound,
        // without stabilisation or rate limits.
        let (target, note) = if current > max {
            (
                max,
                Some(format!(
                    "current {current} above max {max}: scaled to max, no behavior rule applies"
                )),
            )
        } else if current < min {
            (
                min,
                Some(format!(
                    "current {current} below min {min}: scaled to min, no behavior rule applies"
                )),
            )
        } else {
            let mut notes = Vec::new();
            let desired = self.tolerate(current, proposed, &mut notes);
            let stabilized = self.stabilize(now_ms, current, desired, &mut notes);
            let target = self.rate_limit(now_ms, current, stabilized, min, max, &mut notes);
            (target, (!notes.is_empty()).then(|| notes.join("; ")))
        };
        if target != current {
            self.store_scale_event(now_ms, current, target);
        }
        (target, note)
    }

    /// The behavior tolerance (autoscaling/v2 `tolerance`): a relative change from `current`
    /// within it keeps `current`. Upstream applies it to the metric ratio; for a policy whose
    /// target is ceil(ratio × current) the two agree.
    fn tolerate(&self, current: u32, proposed: u32, notes: &mut Vec<String>) -> u32 {
        if current == 0 || proposed == current {
            return proposed;
        }
        let ratio = f64::from(proposed) / f64::from(current);
        let (direction, tolerance) = if proposed > current {
            (Direction::Up, self.up.tolerance)
        } else {
            (Direction::Down, self.down.tolerance)
        };
        let Some(tolerance) = tolerance else {
            return proposed;
        };
        // Upstream's `isWithin`: 1 - down <= ratio <= 1 + up (the form matters in float64).
        let within = match direction {
            Direction::Up => ratio <= 1.0 + tolerance,
            Direction::Down => 1.0 - tolerance <= ratio,
        };
        if within {
            notes.push(format!(
                "{direction} tolerance {tolerance}: {proposed} is within it of current {current}, holding {current}"
            ));
            current
        } else {
            proposed
        }
    }

    /// `stabilizeRecommendationWithBehaviors`: the lowest recommendation in the scale-up window
    /// and the highest in the scale-down window bound the target; records `desired`.
    fn stabilize(
        &mut self,
        now_ms: i64,
        current: u32,
        desired: u32,
        notes: &mut Vec<String>,
    ) -> u32 {
        let up_cutoff = cutoff(now_ms, self.up.window_seconds);
        let down_cutoff = cutoff(now_ms, self.down.window_seconds);
        let mut up_rec = desired;
        let mut down_rec = desired;
        let mut old_slot = None;
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.at_ms > up_cutoff {
                up_rec = up_rec.min(rec.replicas);
            }
            if rec.at_ms > down_cutoff {
                down_rec = down_rec.max(rec.replicas);
            }
            if rec.at_ms < up_cutoff && rec.at_ms < down_cutoff {
                old_slot = Some(i);
            }
        }
        let stabilized = current.max(up_rec).min(down_rec);
        let rec = Recommendation {
            at_ms: now_ms,
            replicas: desired,
        };
        match old_slot {
            Some(i) => self.recommendations[i] = rec,
            None => self.recommendations.push(rec),
        }
        if stabilized != desired {
            notes.push(if desired >= current {
                format!(
                    "scale-up stabilization window {}s: lowest recent recommendation gives {stabilized} (asked {desired})",
                    self.up.window_seconds
                )
            } else {
                format!(
                    "scale-down stabilization window {}s: highest recent recommendation gives {stabilized} (asked {desired})",
                    self.down.window_seconds
                )
            });
        }
        stabilized
    }

    /// `convertDesiredReplicasWithBehaviorRate`: the policies' rate limits and the bounds.
    fn rate_limit(
        &self,
        now_ms: i64,
        current: u32,
        desired: u32,
        min: u32,
        max: u32,
        notes: &mut Vec<String>,
    ) -> u32 {
        let cur = i64::from(current);
        if desired > current {
            let (limit, why) = self.limit(now_ms, cur, Direction::Up);
            // Upstream: never below current because of old events.
            let limit = limit.max(cur);
            if i64::from(max) > limit {
                if i64::from(desired) > limit {
                    notes.push(format!("{why}: limited to {limit} (asked {desired})"));
                    return to_u32(limit);
                }
            } else if desired > max {
                notes.push(format!("clamped to max {max} (asked {desired})"));
                return max;
            }
        } else if desired < current {
            let (limit, why) = self.limit(now_ms, cur, Direction::Down);
            let limit = limit.min(cur);
            if i64::from(min) < limit {
                if i64::from(desired) < limit {
                    notes.push(format!("{why}: limited to {limit} (asked {desired})"));
                    return to_u32(limit);
                }
            } else if desired < min {
                notes.push(format!("clamped to min {min} (asked {desired})"));
                return min;
            }
        }
        desired
    }

    /// The furthest the replicas may go in `direction` now, and the rule that sets it:
    /// `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`.
    fn limit(&self, now_ms: i64, current: i64, direction: Direction) -> (i64, String) {
        let rules = match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        };
        if rules.select == SelectPolicy::Disabled {
            return (
                current,
                format!("{direction} disabled (selectPolicy: Disabled)"),
            );
        }
        // Which policy wins: for scale-up Max takes the highest limit, Min the lowest; for
        // scale-down Max takes the lowest (largest change), Min the highest.
        let take_higher = (direction == Direction::Up) == (rules.select == SelectPolicy::Max);
        let mut best: Option<(i64, &ScalingPolicy)> = None;
        for policy in &rules.policies {
            let added = changes_within(&self.scale_up_events, now_ms, policy.period_seconds);
            let removed = changes_within(&self.scale_down_events, now_ms, policy.period_seconds);
            let start = current - added + removed;
            let value = f64::from(policy.value);
            let proposed = match (direction, policy.kind) {
                (Direction::Up, PolicyKind::Pods) => start + i64::from(policy.value),
                // Rounded up, as upstream, so that a small percentage still adds a pod; in
                // float64 as upstream, so that rounding agrees to the last bit.
                (Direction::Up, PolicyKind::Percent) => {
                    ceil_to_i64(start as f64 * (1.0 + value / 100.0))
                }
                (Direction::Down, PolicyKind::Pods) => start - i64::from(policy.value),
                // Truncated toward zero, as Go's int32 conversion.
                (Direction::Down, PolicyKind::Percent) => {
                    trunc_to_i64(start as f64 * (1.0 - value / 100.0))
                }
            };
            let better = match best {
                None => true,
                Some((b, _)) if take_higher => proposed > b,
                Some((b, _)) => proposed < b,
            };
            if better {
                best = Some((proposed, policy));
            }
        }
        match best {
            Some((limit, policy)) => {
                let many = rules.policies.len() > 1;
                let select = if many {
                    format!(", selectPolicy {}", rules.select)
                } else {
                    String::new()
                };
                (limit, format!("{direction} policy {policy}{select}"))
            }
            // No policy (only reachable when validation was skipped): no limit in this direction.
            None => (
                match direction {
                    Direction::Up => i64::from(u32::MAX),
                    Direction::Down => 0,
                },
                format!("{direction} has no policy"),
            ),
        }
    }

    /// `storeScaleEvent`: records a change, reusing a slot that fell out of the longest period.
    fn store_scale_event(&mut self, now_ms: i64, previous: u32, new: u32) {
        let (events, longest, change) = if new > previous {
            (
                &mut self.scale_up_events,
                self.up.longest_period(),
                i64::from(new - previous),
            )
        } else {
            (
                &mut self.scale_down_events,
                self.down.longest_period(),
                i64::from(previous - new),
            )
        };
        let cutoff = cutoff(now_ms, longest);
        let mut old_slot = None;
        for (i, e) in events.iter_mut().enumerate() {
            if e.at_ms < cutoff {
                e.outdated = true;
            }
            if e.outdated {
                old_slot = Some(i);
            }
        }
        let event = ScaleEvent {
            at_ms: now_ms,
            change,
            outdated: false,
        };
        match old_slot {
            Some(i) => events[i] = event,
            None => events.push(event),
        }
    }
}

/// `getReplicasChangePerPeriod`: the replicas changed by events strictly inside the period.
fn changes_within(events: &[ScaleEvent], now_ms: i64, period_seconds: u32) -> i64 {
    let cutoff = cutoff(now_ms, period_seconds);
    events
        .iter()
        .filter(|e| e.at_ms > cutoff)
        .map(|e| e.change)
        .sum()
}

/// `now - seconds`, in Unix ms; saturating, so that no timestamp overflows.
fn cutoff(now_ms: i64, seconds: u32) -> i64 {
    now_ms.saturating_sub(i64::from(seconds) * 1000)
}

fn ceil_to_i64(x: f64) -> i64 {
    // Finite here: replica counts times at most (1 + u32::MAX / 100). `as` saturates.
    x.ceil() as i64
}

fn trunc_to_i64(x: f64) -> i64 {
    x.trunc() as i64
}

fn to_u32(x: i64) -> u32 {
    x.clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(current: u32, min: u32, max: u32) -> Replicas {
        Replicas {
            current,
            ready: current,
            min,
            max,
        }
    }

    #[test]
    fn defaults_are_autoscaling_v2() {
        let b = Behavior::default().with_defaults();
        let up = b.scale_up.unwrap();
        assert_eq!(up.stabilization_window_seconds, Some(0));
        assert_eq!(up.select_policy, Some(SelectPolicy::Max));
        assert_eq!(up.policies.as_ref().unwrap().len(), 2);
        let down = b.scale_down.unwrap();
        assert_eq!(down.stabilization_window_seconds, Some(300));
        assert_eq!(
            down.policies.unwrap(),
            vec![ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period_seconds: 15
            }]
        );
    }

    #[test]
    fn default_scale_up_is_max_of_four_pods_or_double() {
        // 3 -> at most max(3 + 4, 3 × 2) = 7; 10 -> at most max(14, 20) = 20.
        let mut g = Guardrails::default();
        assert_eq!(g.apply(0, &r(3, 1, 100), 50).0, 7);
        let mut g = Guardrails::default();
        assert_eq!(g.apply(0, &r(10, 1, 100), 50).0, 20);
    }

    #[test]
    fn scale_events_reuse_outdated_slots() {
        let mut g = Guardrails::default();
        for i in 0..10 {
            let cur = 1 + i;
            g.apply(i64::from(i) * 60_000, &r(cur, 1, 100), cur + 1);
        }
        // Every event is older than 15 s when the next comes, so one slot is reused.
        assert_eq!(g.scale_up_events.len(), 1);
    }

    #[test]
    fn the_target_lies_between_current_and_the_bounded_proposal() {
        // Guardrails only hold back: whatever the rules and history, the target is between the
        // current count and the proposal clamped to the bounds. A fixed LCG keeps it repeatable.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let behaviors = [
            Behavior::default(),
            Behavior::parse("scaleUp:\n  stabilizationWindowSeconds: 60\n  selectPolicy: Min\n  policies:\n  - type: Pods\n    value: 2\n    periodSeconds: 30\n  - type: Percent\n    value: 50\n    periodSeconds: 90\nscaleDown:\n  stabilizationWindowSeconds: 120\n  policies:\n  - type: Percent\n    value: 20\n    periodSeconds: 60\n  tolerance: 0.1\n").unwrap(),
            Behavior::parse("scaleDown:\n  selectPolicy: Disabled\n").unwrap(),
        ];
        for behavior in behaviors {
            let mut g = Guardrails::new(behavior);
            let mut current = 5;
            for step in 0..2000i64 {
                let (min, max) = (next(3) as u32, 20 + next(30) as u32);
                let current_now = current.clamp(min, max);
                let proposed = next(80) as u32;
                let (target, _) = g.apply(step * 7_000, &r(current_now, min, max), proposed);
                let bounded = proposed.clamp(min, max);
                let (lo, hi) = (current_now.min(bounded), current_now.max(bounded));
                assert!(
                    (lo..=hi).contains(&target),
                    "step {step}: current {current_now}, proposed {proposed} in [{min}, {max}] gave {target}"
                );
                current = target;
            }
        }
    }

    #[test]
    fn quantity_tolerance_forms() {
        let b = Behavior::parse("scaleUp:\n  tolerance: 50m\nscaleDown:\n  tolerance: '0.2'\n")
            .unwrap();
        assert_eq!(b.scale_up.unwrap().tolerance, Some(0.05));
        assert_eq!(b.scale_down.unwrap().tolerance, Some(0.2));
    }
}
