//! The `behavior` block of a HorizontalPodAutoscaler (autoscaling/v2): its fields, parsed from YAML
//! or JSON as users copy it from a manifest, and validated as Kubernetes validates it.

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
    pub(crate) fn or_defaults(&self, defaults: ScalingRules) -> ScalingRules {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quantity_tolerance_forms() {
        let b = Behavior::parse("scaleUp:\n  tolerance: 50m\nscaleDown:\n  tolerance: '0.2'\n")
            .unwrap();
        assert_eq!(b.scale_up.unwrap().tolerance, Some(0.05));
        assert_eq!(b.scale_down.unwrap().tolerance, Some(0.2));
    }
}
