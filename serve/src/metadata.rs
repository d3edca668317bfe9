//! A ScaledObject trigger's `metadata` (KEDA's `scalerMetadata`), parsed and checked.

use leadtime::{Param, Params};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The metric name of a trigger whose metadata names none.
pub const METRIC_NAME: &str = "leadtime-desired-replicas";

/// What the scaler answers: the policy's target, or the reactive one while observing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Return the policy's target.
    Decide,
    /// Compute and export the policy's target, return the reactive `ceil(load / targetPerPod)`.
    Observe,
}

/// What to answer when Prometheus or the policy fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The last target given for the workload (gRPC Unavailable when there is none yet).
    Hold,
    /// A gRPC error: KEDA then applies its own `fallback` and the HPA keeps the replicas.
    Error,
}

/// One workload's scaler settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Built-in policy name or `.wasm`/`.wat` path.
    pub policy: String,
    /// PromQL of the workload's total load.
    pub query: String,
    /// Load one pod should carry.
    pub target_per_pod: f64,
    /// PromQL giving recent pods' ready durations in seconds, one series per pod.
    pub ready_time_query: Option<String>,
    /// A fixed ready time in seconds, when there is no `readyTimeQuery`.
    pub ready_seconds: Option<f64>,
    /// PromQL giving the workload's current replicas; without it the last target stands in.
    pub replicas_query: Option<String>,
    /// How far back the load window reaches.
    pub lookback: Duration,
    /// Spacing of the window's points.
    pub step: Duration,
    /// Lowest target.
    pub min_replicas: u32,
    /// Highest target.
    pub max_replicas: u32,
    /// Policy parameters (`param.<name>`).
    pub params: Params,
    /// Decide or observe.
    pub mode: Mode,
    /// Hold or error on failure.
    pub on_error: OnError,
    /// HPA `behavior` YAML/JSON for the guardrails, if any.
    pub behavior: Option<String>,
    /// A `schedule` YAML block (docs/schedules.md), if any.
    pub schedule: Option<String>,
    /// The metric name reported to KEDA (`metricName`, default [`METRIC_NAME`]).
    pub metric_name: String,
}

/// A bad or missing metadata key; becomes a gRPC InvalidArgument naming the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("scalerMetadata `{key}`: {message}")]
pub struct MetadataError {
    /// The key at fault.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

fn bad(key: &str, message: impl Into<String>) -> MetadataError {
    MetadataError {
        key: key.to_string(),
        message: message.into(),
    }
}

/// KEDA's own keys of an `external`/`external-push` trigger (and of its TriggerAuthentication),
/// which KEDA passes to the scaler with the rest of the metadata: accepted and ignored.
pub const KEDA_KEYS: [&str; 7] = [
    "scalerAddress",
    "caCert",
    "tlsCertFile",
    "tlsClientCert",
    "tlsClientKey",
    "enableTLS",
    "unsafeSsl",
];

/// The most points a workload's load window holds (about 800 KiB of `f64`): ten weeks at one
/// minute. Bounds the memory of each workload's history.
pub const MAX_POINTS: u64 = 100_800;

/// The default `lookback`: a week, so that the predictive policy sees seven daily cycles.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(7 * 86_400);

/// The default `step`: one minute (10,080 points over a week).
pub const DEFAULT_STEP: Duration = Duration::from_secs(60);

/// The keys `Spec::parse` knows, besides `param.<name>` and [`KEDA_KEYS`].
pub const KEYS: [&str; 15] = [
    "policy",
    "query",
    "targetPerPod",
    "readyTimeQuery",
    "readySeconds",
    "replicasQuery",
    "lookback",
    "step",
    "minReplicas",
    "maxReplicas",
    "mode",
    "onError",
    "behavior",
    "schedule",
    "metricName",
];

impl Spec {
    /// Parses `metadata` over `defaults` (from the config file); metadata wins.
    pub fn parse(
        metadata: &HashMap<String, String>,
        defaults: &BTreeMap<String, String>,
    ) -> Result<Spec, MetadataError> {
        let get = |key: &str| -> Option<&str> {
            metadata
                .get(key)
                .or_else(|| defaults.get(key))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let required = |key: &str| get(key).ok_or_else(|| bad(key, "is required"));
        let mut params = Params::new();
        for (key, value) in defaults.iter().chain(metadata.iter()) {
            if let Some(name) = key.strip_prefix("param.") {
                if name.is_empty() {
                    return Err(bad(key, "names no parameter (use param.<name>)"));
                }
                params.insert(name.to_string(), parse_param(value.trim()));
            } else if !KEYS.contains(&key.as_str()) && !KEDA_KEYS.contains(&key.as_str()) {
                return Err(bad(
                    key,
                    format!(
                        "unknown key (known: {}, param.<name>; KEDA's own: {})",
                        KEYS.join(", "),
                        KEDA_KEYS.join(", ")
                    ),
                ));
            }
        }
        let target_per_pod = positive("targetPerPod", required("targetPerPod")?)?;
        let ready_seconds = get("readySeconds")
            .map(|v| non_negative("readySeconds", v))
            .transpose()?;
        let lookback = get("lookback")
            .map(|v| duration("lookback", v))
            .transpose()?
            .unwrap_or(DEFAULT_LOOKBACK);
        let step = get("step")
            .map(|v| duration("step", v))
            .transpose()?
            .unwrap_or(DEFAULT_STEP);
        // First: every check after divides by the step (a step of 1e-10s is 0 here, and 0 / 0
        // is NaN, which no comparison catches).
        if step < Duration::from_secs(1) || step.subsec_nanos() != 0 {
            return Err(bad("step", "must be a whole number of seconds"));
        }
        if step > lookback {
            return Err(bad(
                "step",
                format!("{step:?} is longer than lookback {lookback:?}"),
            ));
        }
        // The history is fetched in chunks under Prometheus' 11,000 points per query; what
        // bounds it is the memory each workload holds.
        if lookback.as_secs_f64() / step.as_secs_f64() > MAX_POINTS as f64 {
            return Err(bad(
                "step",
                format!("gives more than {MAX_POINTS} points over lookback"),
            ));
        }
        let min_replicas = count("minReplicas", get("minReplicas").unwrap_or("1"))?;
        let max_replicas = count("maxReplicas", get("maxReplicas").unwrap_or("100"))?;
        if min_replicas > max_replicas {
            return Err(bad(
                "minReplicas",
                format!("{min_replicas} is greater than maxReplicas {max_replicas}"),
            ));
        }
        let mode = match get("mode").unwrap_or("decide") {
            "decide" => Mode::Decide,
            "observe" => Mode::Observe,
            other => {
                return Err(bad(
                    "mode",
                    format!("`{other}`: expected decide or observe"),
                ))
            }
        };
        let on_error = match get("onError").unwrap_or("hold") {
            "hold" => OnError::Hold,
            "error" => OnError::Error,
            other => return Err(bad("onError", format!("`{other}`: expected hold or error"))),
        };
        Ok(Spec {
            policy: get("policy").unwrap_or("target-tracking").to_string(),
            query: required("query")?.to_string(),
            target_per_pod,
            ready_time_query: get("readyTimeQuery").map(str::to_string),
            ready_seconds,
            replicas_query: get("replicasQuery").map(str::to_string),
            lookback,
            step,
            min_replicas,
            max_replicas,
            params,
            mode,
            on_error,
            behavior: get("behavior").map(str::to_string),
            schedule: get("schedule").map(str::to_string),
            metric_name: get("metricName").unwrap_or(METRIC_NAME).to_string(),
        })
    }
}

/// A parameter value: a number, `true`/`false`, or the text itself.
fn parse_param(value: &str) -> Param {
    match value {
        "true" => Param::Bool(true),
        "false" => Param::Bool(false),
        _ => match value.parse::<f64>() {
            Ok(n) if n.is_finite() => Param::Number(n),
            _ => Param::Text(value.to_string()),
        },
    }
}

fn number(key: &str, value: &str) -> Result<f64, MetadataError> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(bad(key, format!("`{value}` is not a finite number"))),
    }
}

fn positive(key: &str, value: &str) -> Result<f64, MetadataError> {
    let n = number(key, value)?;
    if n > 0.0 {
        Ok(n)
    } else {
        Err(bad(key, format!("must be greater than 0, got {value}")))
    }
}

fn non_negative(key: &str, value: &str) -> Result<f64, MetadataError> {
    let n = number(key, value)?;
    if n >= 0.0 {
        Ok(n)
    } else {
        Err(bad(key, format!("must not be negative, got {value}")))
    }
}

fn count(key: &str, value: &str) -> Result<u32, MetadataError> {
    value
        .parse::<u32>()
        .map_err(|_| bad(key, format!("`{value}` is not a whole number of replicas")))
}

/// A duration as Prometheus writes them (`30s`, `5m`, `1h`, `500ms`) or plain seconds.
pub fn duration(key: &str, value: &str) -> Result<Duration, MetadataError> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: f64 = digits.parse().map_err(|_| {
        bad(
            key,
            format!("`{value}` is not a duration like 30s, 5m or 1h"),
        )
    })?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(bad(
                key,
                format!("`{value}`: unknown unit `{unit}` (ms, s, m, h, d)"),
            ))
        }
    };
    if !(seconds > 0.0 && seconds <= 365.0 * 86400.0) {
        return Err(bad(
            key,
            format!("`{value}` must be over 0 and at most a year"),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bad_metadata_names_the_key() {
        let base = [("query", "sum(rate(x[1m]))"), ("targetPerPod", "50")];
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("targetPerPod", "50")], "query"),
            (&[("query", "q")], "targetPerPod"),
            (&[("targetPerPod", "abc")], "targetPerPod"),
            (&[("targetPerPod", "0")], "targetPerPod"),
            (&[("targetPerPod", "NaN")], "targetPerPod"),
            (&[("lookback", "10x")], "lookback"),
            (&[("step", "20m"), ("lookback", "10m")], "step"),
            (&[("step", "1s"), ("lookback", "30d")], "step"),
            (&[("step", "1500ms")], "step"),
            // 0 / 0 once slipped past the points check as NaN.
            (
                &[("step", "0.0000000001"), ("lookback", "0.0000000001")],
                "step",
            ),
            (&[("minReplicas", "-1")], "minReplicas"),
            (&[("minReplicas", "5"), ("maxReplicas", "3")], "minReplicas"),
            (&[("maxReplicas", "1.5")], "maxReplicas"),
            (&[("mode", "dry-run")], "mode"),
            (&[("onError", "ignore")], "onError"),
            (&[("readySeconds", "-3")], "readySeconds"),
            (&[("targetperpod", "3")], "targetperpod"),
            (&[("param.", "3")], "param."),
        ];
        for (overrides, key) in cases {
            let mut m: HashMap<String, String> = meta(&base);
            for (k, v) in *overrides {
                m.insert(k.to_string(), v.to_string());
            }
            if *key == "query" {
                m.remove("query");
            }
            if *key == "targetPerPod" && overrides.iter().all(|(k, _)| *k != "targetPerPod") {
                m.remove("targetPerPod");
            }
            let err = Spec::parse(&m, &BTreeMap::new()).unwrap_err();
            assert_eq!(err.key, *key, "{overrides:?}: {err}");
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn defaults_fill_in_and_metadata_wins() {
        let defaults: BTreeMap<String, String> = [
            ("policy", "hpa"),
            ("lookback", "5m"),
            ("param.headroom", "0.1"),
            ("maxReplicas", "20"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let m = meta(&[
            ("query", "q"),
            ("targetPerPod", "12.5"),
            ("maxReplicas", "40"),
            ("param.window", "fast"),
            ("mode", "observe"),
        ]);
        let spec = Spec::parse(&m, &defaults).unwrap();
        assert_eq!(spec.policy, "hpa");
        assert_eq!(spec.lookback, Duration::from_secs(300));
        assert_eq!(spec.step, DEFAULT_STEP);
        assert_eq!((spec.min_replicas, spec.max_replicas), (1, 40));
        assert_eq!(spec.target_per_pod, 12.5);
        assert_eq!(spec.params.get("headroom"), Some(&Param::Number(0.1)));
        assert_eq!(spec.params.get("window"), Some(&Param::Text("fast".into())));
        assert_eq!(spec.mode, Mode::Observe);
        assert_eq!(spec.on_error, OnError::Hold);
    }

    #[test]
    fn kedas_own_keys_are_accepted_and_ours_still_checked() {
        let mut m = meta(&[("query", "q"), ("targetPerPod", "5")]);
        for key in KEDA_KEYS {
            m.insert(key.to_string(), "x".to_string());
        }
        let spec = Spec::parse(&m, &BTreeMap::new()).unwrap();
        assert_eq!(spec.lookback, DEFAULT_LOOKBACK);
        assert!(spec.params.is_empty());
        m.insert("lookbak".into(), "1h".into());
        let err = Spec::parse(&m, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.key, "lookbak");
        assert!(err.message.contains("scalerAddress"), "{err}");
    }

    #[test]
    fn durations() {
        let cases = [
            ("30s", 30.0),
            ("5m", 300.0),
            ("1h", 3600.0),
            ("500ms", 0.5),
            ("90", 90.0),
        ];
        for (text, want) in cases {
            assert_eq!(duration("d", text).unwrap().as_secs_f64(), want, "{text}");
        }
        for text in ["", "s", "0s", "-5s", "5w", "1e9d"] {
            assert!(duration("d", text).is_err(), "{text} should fail");
        }
    }
}
