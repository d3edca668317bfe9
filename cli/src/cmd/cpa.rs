//! `leadtime cpa-evaluate`: a leadtime policy as the evaluate step of a Custom Pod Autoscaler.
//!
//! The CPA runs its evaluate command with `{"metrics":[{"resource","value"}],"resource":{...},
//! "runType":"scaler"}` on stdin, each value the metric step's output as a string, and reads
//! `{"targetReplicas": N}` from stdout.

use crate::failure::Failure;
use crate::input;
use leadtime::{Limits, Metric, Replicas, Request, Source, Workload};
use serde_json::Value;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Arguments of `leadtime cpa-evaluate`.
#[derive(clap::Args)]
pub struct Args {
    /// A built-in policy name (see `leadtime policies`) or a `.wasm`/`.wat` file.
    #[arg(long, default_value_t = crate::cmd::decide::default_policy())]
    policy: String,
    /// Load one pod should carry, in the unit of the summed metric values.
    #[arg(long)]
    target_per_pod: f64,
    /// Lowest target.
    #[arg(long, default_value_t = 1)]
    min: u32,
    /// Highest target.
    #[arg(long, default_value_t = 100)]
    max: u32,
    /// Seconds between CPA runs (the metric's interval, for the policy).
    #[arg(long, default_value_t = 15.0)]
    interval_seconds: f64,
    /// A policy parameter, `name=value`; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

/// What the evaluate JSON says: the total load and the replicas now.
#[derive(Debug, PartialEq)]
pub struct Evaluation {
    /// Sum of every metric value.
    pub total: f64,
    /// `resource.spec.replicas`.
    pub current: u32,
    /// `resource.status.readyReplicas`, or `current` when absent.
    pub ready: u32,
    /// `resource.metadata.namespace` and `.name`, when present.
    pub workload: Workload,
}

/// Reads the CPA's evaluate JSON; errors name the field at fault.
pub fn parse(text: &str) -> Result<Evaluation, Failure> {
    let bad = |detail: String| Failure::new("bad-request", detail);
    let root: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("evaluate JSON on stdin: {e}")))?;
    let metrics = root
        .get("metrics")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`metrics` must be an array".into()))?;
    if metrics.is_empty() {
        return Err(bad("`metrics` is empty: nothing to scale on".into()));
    }
    let mut total = 0.0;
    for (i, m) in metrics.iter().enumerate() {
        let value = m
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("metrics[{i}].value must be a string")))?;
        match value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => total += v,
            _ => {
                return Err(bad(format!(
                    "metrics[{i}].value `{value}` is not a finite non-negative number"
                )))
            }
        }
    }
    let resource = root
        .get("resource")
        .ok_or_else(|| bad("`resource` is missing".into()))?;
    let count = |path: &str| -> Result<Option<u32>, Failure> {
        match resource.pointer(path) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    bad(format!(
                        "resource{} must be a whole number, got {v}",
                        path.replace('/', ".")
                    ))
                }),
        }
    };
    let current =
        count("/spec/replicas")?.ok_or_else(|| bad("resource.spec.replicas is missing".into()))?;
    let ready = count("/status/readyReplicas")?.unwrap_or(current);
    let text_at = |path: &str| {
        resource
            .pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Evaluation {
        total,
        current,
        ready,
        workload: Workload {
            namespace: text_at("/metadata/namespace"),
            name: text_at("/metadata/name"),
        },
    })
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    if !(args.target_per_pod.is_finite() && args.target_per_pod > 0.0) {
        return Err(Failure::new(
            "bad-request",
            format!(
                "--target-per-pod must be a positive number, got {}",
                args.target_per_pod
            ),
        ));
    }
    if !(args.interval_seconds.is_finite() && args.interval_seconds > 0.0) {
        return Err(Failure::new(
            "bad-request",
            format!(
                "--interval-seconds must be a positive number, got {}",
                args.interval_seconds
            ),
        ));
    }
    let evaluation = parse(&input::read_text("-")?)?;
    let params = input::parse_params(&args.params)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let request = Request {
        abi_version: leadtime::abi::ABI_VERSION,
        now,
        workload: evaluation.workload,
        replicas: Replicas {
            current: evaluation.current,
            ready: evaluation.ready,
            min: args.min,
            max: args.max,
        },
        metrics: vec![Metric {
            name: "load".into(),
            target_per_pod: args.target_per_pod,
            interval_seconds: args.interval_seconds,
            end: now,
            values: vec![evaluation.total],
        }],
        ready_times: vec![],
        events: vec![],
        params: params.clone(),
        state: None,
    };
    let engine = super::engine(&Limits::default())?;
    let mut policy = engine.load(Source::parse(&args.policy), params)?;
    let decision = policy.decide(&request)?;
    println!(
        "{}",
        serde_json::json!({ "targetReplicas": decision.replicas })
    );
    Ok(ExitCode::SUCCESS)
}
