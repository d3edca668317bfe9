//! The scaler's core, apart from gRPC: one supervised policy per workload, fed from Prometheus.

use crate::fallback::{self, Breaker, Supervised};
use crate::metadata::{MetadataError, Mode, OnError, Spec};
use crate::prometheus::{FetchError, Prometheus};
use crate::telemetry::{DecisionLabels, ErrorLabels, Telemetry, WorkloadLabels};
use leadtime::Source;
use leadtime::{Behavior, Engine, Guardrails, Metric, ReadyTime, Replicas, Request, Workload};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Settings shared by every workload, from the config file.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Metadata defaults, under each trigger's own metadata.
    pub defaults: BTreeMap<String, String>,
    /// Guardrails for workloads whose metadata has no `behavior`.
    pub behavior: Behavior,
    /// The policy circuit breaker.
    pub breaker: Breaker,
}

/// Why a workload got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// Bad or missing metadata (gRPC InvalidArgument).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Nothing to answer with: no policy decision and no earlier target to hold (gRPC Unavailable).
    #[error("{0}")]
    Unavailable(String),
}

/// An answer for KEDA.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Replicas to return.
    pub replicas: u32,
    /// `policy`, `fallback` or `reactive` (observe mode).
    pub source: &'static str,
    /// Why.
    pub reason: String,
}

/// One workload's state between calls.
struct State {
    spec: Spec,
    supervised: Supervised,
    /// The target returned last: the stand-in for current replicas and what `hold` holds.
    last: Option<u32>,
}

/// Every workload's state by (namespace, name).
type Workloads = HashMap<(String, String), Arc<Mutex<State>>>;

/// Serves replica targets for every ScaledObject that asks.
pub struct Scaler {
    engine: Engine,
    prometheus: Prometheus,
    settings: Settings,
    workloads: Mutex<Workloads>,
    telemetry: Arc<Telemetry>,
}

impl Scaler {
    /// A scaler reading from `prometheus`, running policies on `engine`.
    pub fn new(
        engine: Engine,
        prometheus: Prometheus,
        settings: Settings,
        telemetry: Arc<Telemetry>,
    ) -> Scaler {
        Scaler {
            engine,
            prometheus,
            settings,
            workloads: Mutex::new(HashMap::new()),
            telemetry,
        }
    }

    /// The metrics this scaler updates.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Checks a trigger's metadata without deciding (for GetMetricSpec).
    pub fn check(&self, metadata: &HashMap<String, String>) -> Result<Spec, ScaleError> {
        Ok(Spec::parse(metadata, &self.settings.defaults)?)
    }

    /// The replicas the workload `namespace/name` should have now.
    pub async fn desired(
        &self,
        namespace: &str,
        name: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<Answer, ScaleError> {
        let spec = self.check(metadata)?;
        let state = self.workload(namespace, name, &spec)?;
        let labels = WorkloadLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let fetched = self.fetch(&spec).await;
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let answer = match fetched {
            Err(e) => {
                tracing::warn!(namespace, name, kind = e.kind(), error = %e, "prometheus query failed");
                self.telemetry
                    .fetch_errors
                    .get_or_create(&error_labels(&labels, e.kind()))
                    .inc();
                self.fall_back(&state, &labels, e.to_string())?
            }
            Ok(fetched) => self.decide(&mut state, namespace, name, &labels, fetched)?,
        };
        state.last = Some(answer.replicas);
        self.telemetry
            .desired
            .get_or_create(&labels)
            .set(i64::from(answer.replicas));
        self.telemetry
            .decisions
            .get_or_create(&DecisionLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                source: answer.source.to_string(),
                mode: match spec.mode {
                    Mode::Decide => "decide".into(),
                    Mode::Observe => "observe".into(),
                },
            })
            .inc();
        tracing::info!(namespace, name, replicas = answer.replicas, source = answer.source, reason = %answer.reason, "decision");
        Ok(answer)
    }

    /// The workload's state, created (or re-created, when its metadata changed) as needed.
    fn workload(
        &self,
        namespace: &str,
        name: &str,
        spec: &Spec,
    ) -> Result<Arc<Mutex<State>>, ScaleError> {
        let key = (namespace.to_string(), name.to_string());
        let existing = self.lock().get(&key).cloned();
        let mut last = None;
        if let Some(state) = existing {
            let guard = state.lock().unwrap_or_else(|p| p.into_inner());
            if guard.spec == *spec {
                drop(guard);
                return Ok(state);
            }
            last = guard.last;
        }
        let behavior = match &spec.behavior {
            Some(text) => Behavior::parse(text).map_err(|e| MetadataError {
                key: "behavior".into(),
                message: e.to_string(),
            })?,
            None => self.settings.behavior.clone(),
        };
        let guardrails = Guardrails::try_new(behavior).map_err(|e| MetadataError {
            key: "behavior".into(),
            message: e.to_string(),
        })?;
        let policy = self
            .engine
            .load(Source::parse(&spec.policy), spec.params.clone())
            .map_err(|e| MetadataError {
                key: "policy".into(),
                message: format!("`{}` does not load: {}: {e}", spec.policy, e.kind()),
            })?;
        let state = Arc::new(Mutex::new(State {
            spec: spec.clone(),
            supervised: Supervised::new(policy, guardrails, self.settings.breaker),
            last,
        }));
        self.lock().insert(key, state.clone());
        Ok(state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Workloads> {
        self.workloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The load window, ready times and current replicas from Prometheus.
    async fn fetch(&self, spec: &Spec) -> Result<Fetched, FetchError> {
        let window = self
            .prometheus
            .range(&spec.query, spec.lookback, spec.step)
            .await?;
        let mut ready_seconds = Vec::new();
        if let Some(q) = &spec.ready_time_query {
            // Ready times are optional input: a failing query leaves them out, it fails nothing.
            match self.prometheus.instant(q).await {
                Ok(v) => ready_seconds = v.into_iter().filter(|s| *s >= 0.0).collect(),
                Err(e) => tracing::debug!(error = %e, "readyTimeQuery gave nothing"),
            }
        } else if let Some(s) = spec.ready_seconds {
            ready_seconds.push(s);
        }
        let current = match &spec.replicas_query {
            Some(q) => Some(self.prometheus.instant(q).await?.iter().sum::<f64>()),
            None => None,
        };
        Ok(Fetched {
            window,
            ready_seconds,
            current,
        })
    }

    /// Runs the policy on what was fetched; the fallback when it fails.
    fn decide(
        &self,
        state: &mut State,
        namespace: &str,
        name: &str,
        labels: &WorkloadLabels,
        fetched: Fetched,
    ) -> Result<Answer, ScaleError> {
        let spec = state.spec.clone();
        let now = unix_ms();
        let current = fetched
            .current
            .map(|c| c.round().clamp(0.0, f64::from(u32::MAX)) as u32)
            .or(state.last)
            .unwrap_or(spec.min_replicas);
        let request = Request {
            abi_version: leadtime::abi::ABI_VERSION,
            now,
            workload: Workload {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            replicas: Replicas {
                current,
                ready: current,
                min: spec.min_replicas,
                max: spec.max_replicas,
            },
            metrics: vec![Metric {
                name: "load".into(),
                target_per_pod: spec.target_per_pod,
                interval_seconds: fetched.window.step_seconds,
                end: fetched.window.end_ms,
                values: fetched.window.values.clone(),
            }],
            ready_times: fetched
                .ready_seconds
                .iter()
                .map(|s| ReadyTime {
                    started_at: now - (s * 1000.0) as i64,
                    ready_seconds: *s,
                })
                .collect(),
            params: Default::default(),
            state: None,
        };
        let outcome = state.supervised.decide(&request);
        self.telemetry
            .circuit
            .get_or_create(labels)
            .set(state.supervised.circuit(now).gauge());
        let decision = match outcome {
            Ok(d) => d,
            Err(failure) => {
                let kind = failure.kind().map(|k| k.as_str()).unwrap_or("circuit-open");
                tracing::warn!(namespace, name, kind, error = %failure, "policy gave no decision");
                self.telemetry
                    .policy_errors
                    .get_or_create(&error_labels(labels, kind))
                    .inc();
                if failure.kind().is_some() {
                    self.telemetry
                        .fuel
                        .get_or_create(labels)
                        .observe(state.supervised.last_fuel() as f64);
                }
                return self.fall_back(state, labels, failure.to_string());
            }
        };
        self.telemetry
            .fuel
            .get_or_create(labels)
            .observe(decision.fuel as f64);
        self.telemetry.fallback_active.get_or_create(labels).set(0);
        self.telemetry
            .policy_replicas
            .get_or_create(labels)
            .set(i64::from(decision.replicas));
        Ok(match spec.mode {
            Mode::Decide => Answer {
                replicas: decision.replicas,
                source: "policy",
                reason: decision.reason,
            },
            Mode::Observe => {
                let load = fetched
                    .window
                    .values
                    .iter()
                    .rev()
                    .copied()
                    .find(|v| !v.is_nan())
                    .unwrap_or(0.0);
                let reactive = reactive(load, spec.target_per_pod, &request.replicas);
                Answer {
                    replicas: reactive,
                    source: "reactive",
                    reason: format!(
                        "observe mode: reactive ceil({load} / {}) = {reactive}; policy says {} ({})",
                        spec.target_per_pod, decision.replicas, decision.reason
                    ),
                }
            }
        })
    }

    /// The configured answer when there is no decision: hold the last target, or an error.
    fn fall_back(
        &self,
        state: &State,
        labels: &WorkloadLabels,
        why: String,
    ) -> Result<Answer, ScaleError> {
        let held = match state.spec.on_error {
            OnError::Hold => fallback::hold(state.last),
            OnError::Error => None,
        };
        self.telemetry.fallback_active.get_or_create(labels).set(1);
        match held {
            Some(replicas) => Ok(Answer {
                replicas,
                source: "fallback",
                reason: format!("holding {replicas}: {why}"),
            }),
            None => Err(ScaleError::Unavailable(why)),
        }
    }
}

/// What Prometheus said about one workload.
struct Fetched {
    window: crate::prometheus::Window,
    ready_seconds: Vec<f64>,
    current: Option<f64>,
}

/// The reactive target `ceil(load / target)`, within bounds; never NaN.
pub fn reactive(load: f64, target_per_pod: f64, replicas: &Replicas) -> u32 {
    let want = (load.max(0.0) / target_per_pod).ceil();
    let want = if want.is_finite() {
        want.min(f64::from(u32::MAX)) as u32
    } else {
        replicas.max
    };
    want.clamp(replicas.min, replicas.max.max(replicas.min))
}

fn error_labels(w: &WorkloadLabels, kind: &str) -> ErrorLabels {
    ErrorLabels {
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        kind: kind.to_string(),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactive_table() {
        let r = Replicas {
            current: 3,
            ready: 3,
            min: 1,
            max: 10,
        };
        let cases = [
            (0.0, 10.0, 1),
            (25.0, 10.0, 3),
            (30.0, 10.0, 3),
            (30.1, 10.0, 4),
            (1e12, 10.0, 10),
            (-5.0, 10.0, 1),
            (f64::INFINITY, 10.0, 10),
            (f64::NAN, 10.0, 1),
        ];
        for (load, target, want) in cases {
            assert_eq!(reactive(load, target, &r), want, "load {load}");
        }
    }
}
