//! What the scaler exports on `/metrics`, in the Prometheus text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A workload: the ScaledObject's namespace and name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// Namespace.
    pub namespace: String,
    /// ScaledObject name.
    pub name: String,
}

/// A decision: workload, where the answer came from (`policy`, `fallback`, `reactive`) and mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Namespace.
    pub namespace: String,
    /// ScaledObject name.
    pub name: String,
    /// Where the answer came from.
    pub source: String,
    /// `decide` or `observe`.
    pub mode: String,
}

/// An error: workload and kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Namespace.
    pub namespace: String,
    /// ScaledObject name.
    pub name: String,
    /// The error kind (`trap`, `out-of-fuel`, `circuit-open`, `timeout`, `no-data`, ...).
    pub kind: String,
}

/// An RPC: its method name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// `GetMetrics`, `IsActive`, ...
    pub rpc: String,
    /// `ok` or the gRPC code name.
    pub code: String,
}

/// Every metric of the scaler.
pub struct Telemetry {
    registry: Registry,
    /// Answers given, by workload, source and mode.
    pub decisions: Family<DecisionLabels, Counter>,
    /// RPC latency in seconds.
    pub rpc_seconds: Family<RpcLabels, Histogram>,
    /// Policy failures by kind.
    pub policy_errors: Family<ErrorLabels, Counter>,
    /// Prometheus query failures by kind.
    pub fetch_errors: Family<ErrorLabels, Counter>,
    /// Fuel used per policy call.
    pub fuel: Family<WorkloadLabels, Histogram>,
    /// 1 while the workload's last answer came from the fallback.
    pub fallback_active: Family<WorkloadLabels, Gauge>,
    /// Circuit state: 0 closed, 1 open, 2 half-open.
    pub circuit: Family<WorkloadLabels, Gauge>,
    /// The replicas last returned to KEDA.
    pub desired: Family<WorkloadLabels, Gauge>,
    /// The policy's last target (in observe mode, what it would have returned).
    pub policy_replicas: Family<WorkloadLabels, Gauge>,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("leadtime");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let rpc_seconds = Family::<RpcLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.5, 14))
        });
        let policy_errors = Family::<ErrorLabels, Counter>::default();
        let fetch_errors = Family::<ErrorLabels, Counter>::default();
        let fuel = Family::<WorkloadLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1000.0, 4.0, 12))
        });
        let fallback_active = Family::<WorkloadLabels, Gauge>::default();
        let circuit = Family::<WorkloadLabels, Gauge>::default();
        let desired = Family::<WorkloadLabels, Gauge>::default();
        let policy_replicas = Family::<WorkloadLabels, Gauge>::default();
        registry.register("decisions", "Answers given to KEDA", decisions.clone());
        registry.register(
            "rpc_duration_seconds",
            "gRPC call latency",
            rpc_seconds.clone(),
        );
        registry.register(
            "policy_errors",
            "Policy failures by kind",
            policy_errors.clone(),
        );
        registry.register(
            "prometheus_errors",
            "Prometheus query failures by kind",
            fetch_errors.clone(),
        );
        registry.register("policy_fuel", "Fuel used per policy call", fuel.clone());
        registry.register(
            "fallback_active",
            "1 while the last answer came from the fallback",
            fallback_active.clone(),
        );
        registry.register(
            "circuit_state",
            "Policy circuit: 0 closed, 1 open, 2 half-open",
            circuit.clone(),
        );
        registry.register(
            "desired_replicas",
            "Replicas last returned to KEDA",
            desired.clone(),
        );
        registry.register(
            "policy_replicas",
            "The policy's last target (what it would return, in observe mode)",
            policy_replicas.clone(),
        );
        Telemetry {
            registry,
            decisions,
            rpc_seconds,
            policy_errors,
            fetch_errors,
            fuel,
            fallback_active,
            circuit,
            desired,
            policy_replicas,
        }
    }
}

impl Telemetry {
    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
