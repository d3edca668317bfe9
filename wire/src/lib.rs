//! The leadtime ABI's wire types: what a host sends a policy and what the policy answers.
//!
//! Defined once, here, and used by the host engine and by every Rust guest. Other languages follow
//! `docs/ABI.md`, which describes exactly these types. The types are `no_std` + `alloc`; the
//! `std` feature adds the MessagePack and JSON codecs in [`codec`].
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

#[cfg(feature = "std")]
pub mod codec;
mod replica_count;
pub mod stats;
mod values;

/// The ABI version this crate speaks; a policy's `leadtime_abi_version` must return it.
pub const ABI_VERSION: u32 = 1;

/// One call's input: everything a policy may know about the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// ABI version of the host that built the request.
    pub abi_version: u32,
    /// Time of the decision, Unix milliseconds.
    pub now: i64,
    /// The workload being scaled.
    #[serde(default)]
    pub workload: Workload,
    /// Replica counts and bounds.
    pub replicas: Replicas,
    /// Metric windows, each the workload's total over all pods.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// How long recent pods took from creation to Ready.
    #[serde(default)]
    pub ready_times: Vec<ReadyTime>,
    /// Planned events the operator declared that overlap the history or are still to come: load
    /// out of the ordinary, to keep out of what a policy learns as normal. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<PlannedEvent>,
    /// The policy's parameters.
    #[serde(default)]
    pub params: Params,
    /// Opaque bytes the policy returned in its previous response, if any.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub state: Option<Vec<u8>>,
}

/// The workload's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Kubernetes namespace (or any grouping).
    #[serde(default)]
    pub namespace: String,
    /// Workload name.
    #[serde(default)]
    pub name: String,
}

/// Replica counts and the bounds a decision must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replicas {
    /// Pods that exist now, ready or not.
    pub current: u32,
    /// Pods that are Ready now.
    pub ready: u32,
    /// Lowest allowed target.
    pub min: u32,
    /// Highest allowed target.
    pub max: u32,
}

/// A window of one metric, oldest value first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name, e.g. `requests_per_second`.
    pub name: String,
    /// How much of this metric one pod should carry.
    pub target_per_pod: f64,
    /// Seconds between consecutive values.
    pub interval_seconds: f64,
    /// Time of the last value, Unix milliseconds.
    pub end: i64,
    /// The workload's total per interval; NaN (JSON `null`, MessagePack nil) is a missing point.
    #[serde(with = "values")]
    pub values: Vec<f64>,
}

/// How long one recent pod took to become Ready.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReadyTime {
    /// When the pod was created, Unix milliseconds.
    pub started_at: i64,
    /// Seconds from creation to Ready.
    pub ready_seconds: f64,
}

/// A planned event, as a request carries it: the host already raises the floor for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedEvent {
    /// Its name in the schedule.
    pub name: String,
    /// When its load arrives, Unix milliseconds.
    pub start: i64,
    /// When it is over, Unix milliseconds.
    pub end: i64,
    /// The pods it needs at least, for an event given in pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<u32>,
    /// About how many times the usual load it brings, for an event given as a factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
}

/// The quantile of recent ready times hosts and the predictive policy plan with.
pub const READY_QUANTILE: f64 = 0.9;

/// The ready time, in seconds, hosts and the predictive policy assume before any pod was seen.
pub const DEFAULT_READY_SECONDS: f64 = 300.0;

/// A policy's parameters by name.
pub type Params = BTreeMap<String, Param>;

/// One parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Param {
    /// `true` or `false`.
    Bool(bool),
    /// Any number.
    Number(f64),
    /// Any text.
    Text(String),
}

/// One call's output: a replica target and why, or an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The replica target. Required unless `error` is set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "replica_count::deserialize"
    )]
    pub replicas: Option<u32>,
    /// Short human text: why this target.
    #[serde(default)]
    pub reason: String,
    /// The load the policy expects, for plots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,
    /// Opaque bytes to receive back in the next request.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub state: Option<Vec<u8>>,
    /// Set when the policy could not decide; the host then treats the call as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A predicted series at a fixed step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Time of the first value, Unix milliseconds.
    pub start: i64,
    /// Seconds between values.
    pub interval_seconds: f64,
    /// Predicted totals; NaN where unknown.
    #[serde(with = "values")]
    pub values: Vec<f64>,
}

impl Response {
    /// A decision for `replicas` with a reason.
    pub fn new(replicas: u32, reason: impl Into<String>) -> Self {
        Response {
            replicas: Some(replicas),
            reason: reason.into(),
            ..Response::default()
        }
    }

    /// A failed call with an error message.
    pub fn error(message: impl Into<String>) -> Self {
        Response {
            error: Some(message.into()),
            ..Response::default()
        }
    }
}

impl Request {
    /// A request of this ABI version at `now` (Unix ms) with these replicas and metrics, and no
    /// workload name, ready times, params or state.
    pub fn new(now: i64, replicas: Replicas, metrics: Vec<Metric>) -> Self {
        Request {
            abi_version: ABI_VERSION,
            now,
            workload: Workload::default(),
            replicas,
            metrics,
            ready_times: Vec::new(),
            events: Vec::new(),
            params: Params::new(),
            state: None,
        }
    }

    /// The metric called `name`, if the request has it.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The `q` quantile (0..=1) of recent ready times in seconds, if there are any.
    pub fn ready_seconds_quantile(&self, q: f64) -> Option<f64> {
        let mut v: Vec<f64> = self
            .ready_times
            .iter()
            .map(|r| r.ready_seconds)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .collect();
        stats::quantile(&mut v, q)
    }

    /// How long a pod asked for now takes to be Ready, in seconds, as hosts plan with it: the
    /// [`READY_QUANTILE`] of recent ready times, or [`DEFAULT_READY_SECONDS`] before any.
    pub fn ready_estimate_seconds(&self) -> f64 {
        self.ready_seconds_quantile(READY_QUANTILE)
            .unwrap_or(DEFAULT_READY_SECONDS)
    }
}

impl Metric {
    /// The most recent value that is not missing.
    pub fn last(&self) -> Option<f64> {
        self.values.iter().rev().copied().find(|v| !v.is_nan())
    }

    /// Mean of the values that are not missing.
    pub fn mean(&self) -> Option<f64> {
        let (sum, n) = self
            .values
            .iter()
            .filter(|v| !v.is_nan())
            .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        (n > 0).then(|| sum / n as f64)
    }
}

/// Typed look-ups of parameters, with a default when absent.
pub trait ParamsExt {
    /// A number parameter, or `default` when absent; `Err` names the parameter if it is not a number.
    fn number(&self, name: &str, default: f64) -> Result<f64, String>;
    /// A boolean parameter, or `default` when absent.
    fn flag(&self, name: &str, default: bool) -> Result<bool, String>;
    /// A text parameter, or `default` when absent.
    fn text<'a>(&'a self, name: &str, default: &'a str) -> Result<&'a str, String>;
    /// A number parameter within `lo..=hi`, or `default` when absent; `Err` names it and the range.
    fn number_in(&self, name: &str, default: f64, lo: f64, hi: f64) -> Result<f64, String> {
        let v = self.number(name, default)?;
        if !(lo..=hi).contains(&v) {
            return Err(alloc::format!(
                "param `{name}` must be in {lo}..={hi}, got {v}"
            ));
        }
        Ok(v)
    }
    /// `Err` naming the first parameter not in `known`, and what `policy` takes.
    fn only(&self, known: &[&str], policy: &str) -> Result<(), String>;
}

impl ParamsExt for Params {
    fn number(&self, name: &str, default: f64) -> Result<f64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(Param::Number(n)) if n.is_finite() => Ok(*n),
            Some(other) => Err(alloc::format!(
                "param `{name}` must be a finite number, got {other:?}"
            )),
        }
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(default),
            Some(Param::Bool(b)) => Ok(*b),
            Some(other) => Err(alloc::format!(
                "param `{name}` must be true or false, got {other:?}"
            )),
        }
    }

    fn text<'a>(&'a self, name: &str, default: &'a str) -> Result<&'a str, String> {
        match self.get(name) {
            None => Ok(default),
            Some(Param::Text(s)) => Ok(s),
            Some(other) => Err(alloc::format!("param `{name}` must be text, got {other:?}")),
        }
    }

    fn only(&self, known: &[&str], policy: &str) -> Result<(), String> {
        match self.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(alloc::format!(
                "unknown param `{unknown}`; {policy} takes: {}",
                known.join(", ")
            )),
        }
    }
}
