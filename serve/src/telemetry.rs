//! What the scaler exports on `/metrics`, in the Prometheus text format.

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A workload: the ScaledObject's namespace and name, the trigger's metric name, and the allowed
/// client that asks for it (`client`, only under mutual TLS: each client's calls have a state of
/// their own, so a second client's series never overwrite KEDA's).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct WorkloadLabels {
    /// Namespace.
    pub namespace: String,
    /// ScaledObject name.
    pub name: String,
    /// The trigger's metric name (`metricName`, default `leadtime-desired-replicas`).
    pub metric: String,
    /// The caller's allowed name; empty (no label) when every caller is trusted.
    pub client: String,
}

impl WorkloadLabels {
    /// The labels of `client`'s workload, each value escaped and bounded by [`label_value`].
    pub fn new(namespace: &str, name: &str, metric: &str, client: &str) -> WorkloadLabels {
        WorkloadLabels {
            namespace: label_value(namespace),
            name: label_value(name),
            metric: label_value(metric),
            client: label_value(client),
        }
    }
}

impl EncodeLabelSet for WorkloadLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let mut labels = vec![
            ("namespace", self.namespace.as_str()),
            ("name", &self.name),
            ("metric", &self.metric),
        ];
        if !self.client.is_empty() {
            labels.push(("client", &self.client));
        }
        labels.as_slice().encode(encoder)
    }
}

/// Longest label value exported, in characters before escaping.
pub const MAX_LABEL_CHARS: usize = 253;

/// A label value as the text exposition format requires it: backslash, double quote and newline
/// escaped (the client library writes values as they are), other control characters dropped,
/// and cut at [`MAX_LABEL_CHARS`]. The scaler validates names before they get here; this keeps
/// `/metrics` well-formed whatever a label holds.
pub fn label_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_LABEL_CHARS));
    for c in raw.chars().take(MAX_LABEL_CHARS) {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A decision: workload, where the answer came from (`policy`, `fallback`, `reactive`) and mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The workload.
    #[prometheus(flatten)]
    pub workload: WorkloadLabels,
    /// Where the answer came from.
    pub source: String,
    /// `decide` or `observe`.
    pub mode: String,
}

/// An error: workload and kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The workload.
    #[prometheus(flatten)]
    pub workload: WorkloadLabels,
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
    /// Seconds of load history each workload holds.
    pub history_seconds: Family<WorkloadLabels, Gauge>,
    /// Samples Prometheus returned to range queries, all workloads.
    pub samples_fetched: Counter,
    /// Range queries sent to Prometheus, all workloads.
    pub range_queries: Counter,
    /// Histories filled from empty (a new workload, a restart, a change of query or step).
    pub backfills: Counter,
    /// Workloads held.
    pub workloads: Gauge,
    /// Workloads dropped after going unpolled for the idle time.
    pub evictions: Counter,
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
        let history_seconds = Family::<WorkloadLabels, Gauge>::default();
        let samples_fetched = Counter::default();
        let range_queries = Counter::default();
        let backfills = Counter::default();
        let workloads = Gauge::default();
        let evictions = Counter::default();
        registry.register(
            "history_seconds",
            "Seconds of load history the workload holds",
            history_seconds.clone(),
        );
        registry.register(
            "prometheus_samples",
            "Samples Prometheus returned to range queries",
            samples_fetched.clone(),
        );
        registry.register(
            "prometheus_range_queries",
            "Range queries sent to Prometheus",
            range_queries.clone(),
        );
        registry.register(
            "history_backfills",
            "Load histories filled from empty",
            backfills.clone(),
        );
        registry.register("workloads", "Workloads held", workloads.clone());
        registry.register(
            "workload_evictions",
            "Workloads dropped after the idle time",
            evictions.clone(),
        );
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
            history_seconds,
            samples_fetched,
            range_queries,
            backfills,
            workloads,
            evictions,
        }
    }
}

/// Every source and mode a decision is labelled with, for removing a workload's series.
const SOURCES: [&str; 3] = ["policy", "fallback", "reactive"];
const MODES: [&str; 2] = ["decide", "observe"];

impl Telemetry {
    /// Removes every series of workload `w`; `kinds` are the error kinds it was counted under.
    pub fn forget(&self, w: &WorkloadLabels, kinds: &[String]) {
        for family in [
            &self.fallback_active,
            &self.circuit,
            &self.desired,
            &self.policy_replicas,
            &self.history_seconds,
        ] {
            family.remove(w);
        }
        self.fuel.remove(w);
        for source in SOURCES {
            for mode in MODES {
                self.decisions.remove(&DecisionLabels {
                    workload: w.clone(),
                    source: source.into(),
                    mode: mode.into(),
                });
            }
        }
        for kind in kinds {
            let labels = ErrorLabels {
                workload: w.clone(),
                kind: kind.clone(),
            };
            self.policy_errors.remove(&labels);
            self.fetch_errors.remove(&labels);
        }
    }

    /// The text exposition of every metric (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The same in Prometheus' classic text format (0.0.4), for scrapers that do not ask for
    /// OpenMetrics: see [`classic`].
    pub fn encode_classic(&self) -> String {
        classic(&self.encode())
    }
}

/// OpenMetrics text as the classic format (0.0.4): a counter family is named with its `_total`
/// (a classic scraper would otherwise take each `_total` sample for a family of its own, of
/// unknown type), and `# UNIT` and `# EOF` go. Gauges and histograms read the same in both.
pub fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 256);
    // HELP comes before TYPE, which says whether the name changes.
    let mut help: Option<&str> = None;
    let flush = |out: &mut String, help: &mut Option<&str>| {
        if let Some(line) = help.take() {
            out.push_str(line);
            out.push('\n');
        }
    };
    for line in openmetrics.lines() {
        if line.starts_with("# HELP ") {
            flush(&mut out, &mut help);
            help = Some(line);
        } else if let Some((name, kind)) =
            line.strip_prefix("# TYPE ").and_then(|t| t.split_once(' '))
        {
            let family = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some(h) = help.take() {
                let text = h["# HELP ".len()..].split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {family} {text}\n"));
            }
            out.push_str(&format!("# TYPE {family} {kind}\n"));
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            flush(&mut out, &mut help);
            out.push_str(line);
            out.push('\n');
        }
    }
    flush(&mut out, &mut help);
    out
}
