//! The scaler's core, apart from gRPC: one supervised policy and one load history per
//! workload trigger, fed from Prometheus.
//!
//! A workload is identified by the ScaledObject's namespace and name, the trigger's metric name
//! and the whole of its parsed metadata, so that two leadtime triggers of one ScaledObject keep
//! apart and a call with other metadata (an edit, or a caller pretending to be KEDA) gets a state
//! of its own instead of replacing or inheriting another's. A state lives until it goes unpolled
//! for [`Settings::idle_after`]; then [`Scaler::evict_idle`] drops it with its `/metrics` series.
//! New states stop at the caps of [`Quotas`], per namespace and in total.

use crate::auth::Caller;
use crate::history::History;
use crate::log_limit::LogLimit;
use crate::metadata::{MetadataError, Mode, OnError, Spec};
use crate::query::QueryRules;
use crate::quota::{self, NameError, QuotaError, Quotas};
use crate::telemetry::{DecisionLabels, ErrorLabels, Telemetry, WorkloadLabels};
use leadtime::behavior::Controller;
use leadtime::supervisor::{BreakerState, Fallback, Supervisor, SupervisorConfig};
use leadtime::{Behavior, Engine, Metric, ReadyTime, Replicas, Request, Source, Workload};
use leadtime_prometheus::{FetchError, Prometheus};
use leadtime_schedule::{Schedule, Scheduler};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Settings shared by every workload, from the config file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Metadata defaults, under each trigger's own metadata.
    pub defaults: BTreeMap<String, String>,
    /// Guardrails for workloads whose metadata has no `behavior`.
    pub behavior: Behavior,
    /// Replica bounds by time and planned events for workloads whose metadata has no `schedule`.
    pub schedule: Option<Schedule>,
    /// Consecutive policy failures that open the circuit.
    pub breaker_failures: u32,
    /// How long the circuit stays open (in request time).
    pub breaker_open_for: Duration,
    /// A workload not polled for this long is dropped with its `/metrics` series.
    pub idle_after: Duration,
    /// How long fetched history and instant answers are reused before asking Prometheus again.
    pub cache_ttl: Duration,
    /// What calls, tenants and everyone together may cost.
    pub quotas: Quotas,
    /// What a trigger's queries may ask.
    pub queries: QueryRules,
    /// The only directory `.wasm`/`.wat` policies may be loaded from; `None`: built-ins only.
    pub policy_dir: Option<PathBuf>,
    /// A workload logs a repeated error (same cause) at most once per this interval.
    pub log_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            defaults: BTreeMap::new(),
            behavior: Behavior::default(),
            schedule: None,
            breaker_failures: 3,
            breaker_open_for: Duration::from_secs(30),
            idle_after: Duration::from_secs(15 * 60),
            cache_ttl: Duration::from_secs(5),
            quotas: Quotas::default(),
            queries: QueryRules::default(),
            policy_dir: None,
            log_interval: crate::log_limit::DEFAULT_LOG_INTERVAL,
        }
    }
}

/// Why a workload got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// Bad or missing metadata, or a query Prometheus refuses (gRPC InvalidArgument).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A namespace or name that is no Kubernetes name (gRPC InvalidArgument).
    #[error(transparent)]
    Name(#[from] NameError),
    /// Over one of the scaler's caps (gRPC ResourceExhausted).
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// Nothing to answer with: no policy decision and no earlier target to hold (gRPC Unavailable).
    #[error("{0}")]
    Unavailable(String),
}

/// An answer for KEDA.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Replicas to return.
    pub replicas: u32,
    /// Whether the policy wants pods (its target before rate limits is above zero): IsActive.
    pub active: bool,
    /// `policy`, `fallback` or `reactive` (observe mode).
    pub source: &'static str,
    /// Why.
    pub reason: String,
}

/// What identifies a workload trigger. A caller never reaches state that another caller's calls
/// built, and other metadata under the same name gets state of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    caller: Caller,
    namespace: String,
    name: String,
    metric: String,
    /// The whole parsed metadata (its debug text: every field, bounded by the metadata caps).
    spec: String,
}

/// One workload trigger's state between calls.
struct State {
    spec: Spec,
    supervisor: Supervisor,
    history: History,
    /// The ready times last read.
    ready_seconds: Vec<f64>,
    labels: WorkloadLabels,
    /// Error kinds counted for this workload, to remove their series when it is dropped.
    kinds: BTreeSet<String>,
    /// Whether KEDA was given a target since the trigger was built: only then is one held.
    answered: bool,
    /// Which of its repeated errors to log now.
    log: LogLimit,
    /// Its schedule, applied after the guardrails (and to held targets).
    scheduler: Option<Scheduler>,
}

impl State {
    /// `replicas` within the workload's schedule at `request`'s time, and `reason` with what
    /// the schedule changed.
    fn scheduled(&mut self, request: &Request, replicas: u32, reason: String) -> (u32, String) {
        let Some(s) = self.scheduler.as_mut() else {
            return (replicas, reason);
        };
        match s.apply(request, replicas) {
            (target, Some(why)) => (target, format!("{reason}; {why}")),
            (target, None) => (target, reason),
        }
    }
}

/// A workload's state and when it was last polled.
struct Entry {
    state: Arc<tokio::sync::Mutex<State>>,
    used: Instant,
    labels: WorkloadLabels,
}

/// Serves replica targets for every ScaledObject that asks.
pub struct Scaler {
    engine: Engine,
    prometheus: Prometheus,
    settings: Settings,
    workloads: Mutex<HashMap<Key, Entry>>,
    /// Loaded policies by namespace, source and params. Workloads of one namespace with the same
    /// policy and params get handles of one ([`leadtime::Policy::fork`]) and share its
    /// instances: memory and mappings grow with the policies in use, not with the workloads (a
    /// policy keeps a workload's state in the request's `state`, which each handle carries).
    policies: Mutex<HashMap<String, leadtime::Policy>>,
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
            policies: Mutex::new(HashMap::new()),
            telemetry,
        }
    }

    /// The metrics this scaler updates.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Parses a trigger's metadata, within the size caps, without Prometheus or the policy.
    pub fn parse(&self, metadata: &HashMap<String, String>) -> Result<Spec, ScaleError> {
        quota::check_metadata(&self.settings.quotas, metadata)?;
        Ok(Spec::parse(metadata, &self.settings.defaults)?)
    }

    /// Checks everything about a trigger that can be checked without data (for GetMetricSpec):
    /// the metadata, the policy loading with its params, the behavior, and that Prometheus parses
    /// each query. Keeps the workload's state for the calls to come.
    pub async fn check(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<Spec, ScaleError> {
        quota::check_names(namespace, name)?;
        let spec = self.parse(metadata)?;
        self.workload(caller, namespace, name, &spec).await?;
        Ok(spec)
    }

    /// The replicas the workload `namespace/name` should have now, for the trigger `metadata`.
    pub async fn desired(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<Answer, ScaleError> {
        quota::check_names(namespace, name)?;
        let spec = self.parse(metadata)?;
        let state = self.workload(caller, namespace, name, &spec).await?;
        let mut state = state.lock().await;
        let labels = state.labels.clone();
        let answer = match self.fetch(&mut state).await {
            Err(FetchError::BadQuery(message)) => {
                // The configuration, not a fault: never held. Prometheus' text stays in the log:
                // an error can quote other series' label sets.
                tracing::warn!(namespace, name, error = %message, "prometheus refuses the query");
                return Err(MetadataError {
                    key: "query".into(),
                    message: "prometheus refuses it (its message is in the scaler's log)".into(),
                }
                .into());
            }
            Err(e) => {
                if let Some(held) = self.admit_log(&mut state, e.kind()) {
                    tracing::warn!(namespace, name, kind = e.kind(), error = %e, repeats_not_logged = held, "prometheus query failed");
                }
                self.count_error(&mut state, e.kind(), false);
                self.hold(
                    &mut state,
                    format!("prometheus query failed ({})", e.kind()),
                )?
            }
            Ok(fetched) => self.decide(&mut state, namespace, name, fetched)?,
        };
        state.answered = true;
        self.telemetry
            .desired
            .get_or_create(&labels)
            .set(i64::from(answer.replicas));
        self.telemetry
            .decisions
            .get_or_create(&DecisionLabels {
                workload: labels.clone(),
                source: answer.source.to_string(),
                mode: match spec.mode {
                    Mode::Decide => "decide".into(),
                    Mode::Observe => "observe".into(),
                },
            })
            .inc();
        tracing::info!(namespace, name, metric = %labels.metric, replicas = answer.replicas, source = answer.source, reason = %answer.reason, "decision");
        Ok(answer)
    }

    /// Drops every workload not polled for the idle time, with its `/metrics` series; returns
    /// how many.
    pub fn evict_idle(&self) -> usize {
        let idle = self.settings.idle_after;
        let mut workloads = self.lock();
        let before = workloads.len();
        let mut gone = Vec::new();
        workloads.retain(|_, e| {
            let keep = e.used.elapsed() < idle;
            if !keep {
                gone.push((e.labels.clone(), e.state.clone()));
            }
            keep
        });
        let evicted = before - workloads.len();
        let live: BTreeSet<_> = workloads
            .values()
            .map(|e| (&e.labels.namespace, &e.labels.name, &e.labels.metric))
            .collect();
        for (labels, state) in &gone {
            // Another trigger state with the same labels (its query changed) keeps the series.
            if live.contains(&(&labels.namespace, &labels.name, &labels.metric)) {
                continue;
            }
            let kinds: Vec<String> = state
                .try_lock()
                .map(|s| s.kinds.iter().cloned().collect())
                .unwrap_or_default();
            self.telemetry.forget(labels, &kinds);
            tracing::info!(namespace = %labels.namespace, name = %labels.name, metric = %labels.metric, "workload idle: dropped");
        }
        self.telemetry.workloads.set(workloads.len() as i64);
        self.telemetry.evictions.inc_by(evicted as u64);
        drop(workloads);
        // A policy no workload holds a handle of any more goes with its instances.
        self.templates()
            .retain(|_, template| template.handles() > 1);
        evicted
    }

    /// How many workloads are held.
    pub fn workload_count(&self) -> usize {
        self.lock().len()
    }

    /// The workload's state: found by its whole metadata, or created after checking everything
    /// that can be checked without data, within the caps on workloads.
    async fn workload(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        spec: &Spec,
    ) -> Result<Arc<tokio::sync::Mutex<State>>, ScaleError> {
        let key = Key {
            caller: caller.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            metric: spec.metric_name.clone(),
            spec: format!("{spec:?}"),
        };
        {
            let mut workloads = self.lock();
            if let Some(e) = workloads.get_mut(&key) {
                e.used = Instant::now();
                return Ok(e.state.clone());
            }
            self.room_for(&workloads, caller, namespace)?;
        }
        let (supervisor, labels, scheduler) = self.build(caller, namespace, name, spec).await?;
        let state = Arc::new(tokio::sync::Mutex::new(State {
            spec: spec.clone(),
            supervisor,
            history: History::new(spec.lookback, spec.step),
            ready_seconds: Vec::new(),
            labels: labels.clone(),
            kinds: BTreeSet::new(),
            answered: false,
            log: LogLimit::default(),
            scheduler,
        }));
        let mut workloads = self.lock();
        if !workloads.contains_key(&key) {
            // Checked again: other calls may have taken the room while this one loaded.
            self.room_for(&workloads, caller, namespace)?;
        }
        // Two first calls at once: the first one in wins.
        let entry = workloads.entry(key).or_insert(Entry {
            state,
            used: Instant::now(),
            labels,
        });
        let state = entry.state.clone();
        self.telemetry.workloads.set(workloads.len() as i64);
        Ok(state)
    }

    /// Whether one more workload fits, in total and in `namespace` for `caller`: each allowed
    /// client has a namespace's count of its own, so a second one cannot fill KEDA's.
    fn room_for(
        &self,
        workloads: &HashMap<Key, Entry>,
        caller: &Caller,
        namespace: &str,
    ) -> Result<(), QuotaError> {
        let q = &self.settings.quotas;
        if workloads.len() >= q.workloads {
            return Err(QuotaError {
                cap: "workloads",
                limit: q.workloads,
                detail: "no room for another workload trigger; the ones held keep working".into(),
            });
        }
        let here = workloads
            .keys()
            .filter(|k| k.namespace == namespace && &k.caller == caller)
            .count();
        if here >= q.workloads_per_namespace {
            return Err(QuotaError {
                cap: "workloadsPerNamespace",
                limit: q.workloads_per_namespace,
                detail: format!("namespace {namespace} holds {here} workload triggers"),
            });
        }
        Ok(())
    }

    /// Loads the policy with its params, parses the behavior and has Prometheus parse each query.
    async fn build(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        spec: &Spec,
    ) -> Result<(Supervisor, WorkloadLabels, Option<Scheduler>), ScaleError> {
        let schedule = match &spec.schedule {
            Some(text) => Some(Schedule::parse(text).map_err(|e| MetadataError {
                key: "schedule".into(),
                message: e.0,
            })?),
            None => self.settings.schedule.clone(),
        };
        let behavior = match &spec.behavior {
            Some(text) => Behavior::parse(text).map_err(|e| MetadataError {
                key: "behavior".into(),
                message: e.to_string(),
            })?,
            None => self.settings.behavior.clone(),
        };
        let guardrails = Controller::try_new(behavior).map_err(|e| MetadataError {
            key: "behavior".into(),
            message: e.to_string(),
        })?;
        let policy = self.load(namespace, spec).await?;
        let queries = [
            ("query", Some(&spec.query)),
            ("readyTimeQuery", spec.ready_time_query.as_ref()),
            ("replicasQuery", spec.replicas_query.as_ref()),
        ];
        for (key, query) in queries {
            let Some(query) = query else { continue };
            crate::query::check(query, namespace, &self.settings.queries).map_err(|message| {
                MetadataError {
                    key: key.into(),
                    message,
                }
            })?;
            match self.prometheus.check(query, namespace).await {
                Ok(()) => {}
                Err(FetchError::BadQuery(message)) => {
                    tracing::warn!(namespace, name, key, error = %message, "prometheus does not parse a query");
                    return Err(MetadataError {
                        key: key.into(),
                        message:
                            "prometheus does not parse it (its message is in the scaler's log)"
                                .into(),
                    }
                    .into());
                }
                // Prometheus unreachable or failing: the query cannot be checked now; a bad one
                // still fails at the first GetMetrics.
                Err(e) => tracing::warn!(namespace, name, key, error = %e, "query not checked"),
            }
        }
        let config = SupervisorConfig {
            fallback: match spec.on_error {
                OnError::Hold => Fallback::HoldLast,
                OnError::Error => Fallback::HoldCurrent,
            },
            failure_threshold: self.settings.breaker_failures,
            backoff_ms: u64::try_from(self.settings.breaker_open_for.as_millis())
                .unwrap_or(u64::MAX),
        };
        let labels = WorkloadLabels::new(namespace, name, &spec.metric_name, &caller.0);
        Ok((
            Supervisor::new(policy, config).with_guardrails(guardrails),
            labels,
            schedule.map(Scheduler::new),
        ))
    }

    /// Loads the trigger's policy off the async workers (a module compiles for up to the engine's
    /// compile-time limit): a built-in by name, or a file only under the operator's policy dir.
    /// Errors say what failed, never what the file holds.
    async fn load(&self, namespace: &str, spec: &Spec) -> Result<leadtime::Policy, ScaleError> {
        let bad = |message: String| MetadataError {
            key: "policy".into(),
            message,
        };
        let source = match Source::parse(&spec.policy) {
            Source::File(path) => {
                let dir = self.settings.policy_dir.as_ref().ok_or_else(|| {
                    bad("policy files are off: the operator sets `policyDir` to allow them".into())
                })?;
                // An absolute path or `..` is refused before the file system is asked, so that
                // the answer says nothing of what exists outside the directory (`/etc/passwd/x.wat`
                // would otherwise answer "not a directory", an absent path "not found").
                if path
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
                {
                    return Err(bad(format!("{} is outside policyDir", spec.policy)).into());
                }
                let path = dir.join(path.as_ref());
                // Resolved too: a link must not lead out of the directory. The error names the
                // caller's path, not where policyDir is.
                // The reason stays in the scaler's log: through a link the operator put there,
                // "not a directory" against "not found" would tell the caller what exists
                // outside the directory.
                let real = path.canonicalize().map_err(|e| {
                    tracing::debug!(namespace, policy = %spec.policy, error = %e.kind(), "policy file cannot be opened");
                    bad(format!("{} cannot be opened", spec.policy))
                })?;
                let root = dir
                    .canonicalize()
                    .map_err(|e| bad(format!("policyDir cannot be opened ({})", e.kind())))?;
                if !real.starts_with(&root) {
                    return Err(bad(format!("{} is outside policyDir", spec.policy)).into());
                }
                Source::File(Cow::Owned(real))
            }
            _ => Source::Builtin(Cow::Owned(spec.policy.clone())),
        };
        let key = template_key(namespace, &source, &spec.params);
        {
            let mut templates = self.templates();
            if let Some(template) = templates.get(&key) {
                return Ok(template.fork());
            }
            self.room_for_policy(&mut templates, namespace)?;
        }
        let engine = self.engine.clone();
        let params = spec.params.clone();
        let name = spec.policy.clone();
        let template = tokio::task::spawn_blocking(move || engine.load(source, params))
            .await
            .map_err(|_| bad(format!("`{name}`: loading stopped")))?
            .map_err(|e| {
                let limit = match e {
                    leadtime::Error::CompileMemory { .. } => "limits.compileMemoryBytes",
                    leadtime::Error::CompileTimeout { .. } => "limits.compileTime",
                    _ => "",
                };
                tracing::warn!(policy = %spec.policy, error = %e.report(), limit, "policy does not load");
                bad(format!("`{}` does not load ({})", spec.policy, e.kind()))
            })?;
        let mut templates = self.templates();
        if !templates.contains_key(&key) {
            // Checked again: other loads may have taken the room while this one compiled.
            self.room_for_policy(&mut templates, namespace)?;
        }
        // Two first loads at once: the first one in is kept, so both share its instances.
        Ok(templates.entry(key).or_insert(template).fork())
    }

    /// Whether one more distinct policy (a policy with its params) fits, in total and in
    /// `namespace`. Each holds its own instances (up to `idle_instances`, each up to the
    /// engine's memory limit), so a tenant that gives every workload different params pays for
    /// it in its own count instead of in the scaler's memory.
    fn room_for_policy(
        &self,
        templates: &mut HashMap<String, leadtime::Policy>,
        namespace: &str,
    ) -> Result<(), QuotaError> {
        // Policies no workload holds any more (a trigger that failed its checks after loading)
        // go first: a caller cycling params must not pile up instances between two evictions.
        templates.retain(|_, template| template.handles() > 1);
        let q = &self.settings.quotas;
        if templates.len() >= q.policies {
            return Err(QuotaError {
                cap: "policies",
                limit: q.policies,
                detail: "no room for another policy and params; workloads with the same policy \
                         and params share one"
                    .into(),
            });
        }
        let prefix = format!("{namespace} ");
        let here = templates.keys().filter(|k| k.starts_with(&prefix)).count();
        if here >= q.policies_per_namespace {
            return Err(QuotaError {
                cap: "policiesPerNamespace",
                limit: q.policies_per_namespace,
                detail: format!(
                    "namespace {namespace} holds {here} distinct policies and params; workloads \
                     with the same policy and params share one"
                ),
            });
        }
        Ok(())
    }

    fn templates(&self) -> std::sync::MutexGuard<'_, HashMap<String, leadtime::Policy>> {
        self.policies.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.workloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether to log an error of `kind` for this workload now (see [`LogLimit`]).
    fn admit_log(&self, state: &mut State, kind: &str) -> Option<u64> {
        state
            .log
            .admit(kind, self.settings.log_interval, Instant::now())
    }

    fn count_error(&self, state: &mut State, kind: &str, policy: bool) {
        let labels = error_labels(&state.labels, kind);
        if policy {
            self.telemetry.policy_errors.get_or_create(&labels).inc();
        } else {
            self.telemetry.fetch_errors.get_or_create(&labels).inc();
        }
        state.kinds.insert(kind.to_string());
    }

    /// Tops up the history (the grid points it lacks, then the load now) and reads ready times
    /// and current replicas from Prometheus.
    async fn fetch(&self, state: &mut State) -> Result<Fetched, FetchError> {
        let now_ms = unix_ms();
        let tenant = state.labels.namespace.clone();
        let backfill = state.history.is_empty();
        let mut answered = false;
        for chunk in state.history.missing(now_ms as f64 / 1000.0) {
            self.telemetry.range_queries.inc();
            match self
                .prometheus
                .range(&state.spec.query, chunk, &tenant)
                .await
            {
                Ok(range) => {
                    self.telemetry.samples_fetched.inc_by(range.samples as u64);
                    state.history.merge(chunk.start, chunk.end, &range.points);
                    answered = true;
                }
                // A stretch without data (older than the metric, a scrape outage): the load
                // now, below, says whether the query has data at all.
                Err(FetchError::NoData(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if backfill && answered {
            self.telemetry.backfills.inc();
        }
        let now = self.prometheus.instant(&state.spec.query, &tenant).await?;
        self.telemetry.samples_fetched.inc_by(now.len() as u64);
        state.history.set_tail(now_ms, now.iter().sum());
        let window = state
            .history
            .window()
            .ok_or_else(|| FetchError::NoData(state.spec.query.clone()))?;
        self.telemetry
            .history_seconds
            .get_or_create(&state.labels)
            .set(window.span_seconds() as i64);
        if let Some(q) = &state.spec.ready_time_query {
            // Ready times are optional input: a failing query keeps the last ones read.
            match self.prometheus.instant(q, &tenant).await {
                Ok(v) => state.ready_seconds = v.into_iter().filter(|s| *s >= 0.0).collect(),
                Err(e) => tracing::debug!(error = %e, "readyTimeQuery gave nothing"),
            }
        } else {
            state.ready_seconds = state.spec.ready_seconds.into_iter().collect();
        }
        let current = match &state.spec.replicas_query {
            Some(q) => Some(
                self.prometheus
                    .instant(q, &tenant)
                    .await?
                    .iter()
                    .sum::<f64>(),
            ),
            None => None,
        };
        Ok(Fetched { window, current })
    }

    /// Runs the supervised policy on what was fetched; the hold fallback when it fails.
    fn decide(
        &self,
        state: &mut State,
        namespace: &str,
        name: &str,
        fetched: Fetched,
    ) -> Result<Answer, ScaleError> {
        let spec = state.spec.clone();
        let labels = state.labels.clone();
        let now = unix_ms();
        let held_before = state.supervisor.last_answer().filter(|_| state.answered);
        let current = fetched
            .current
            .map(|c| c.round().clamp(0.0, f64::from(u32::MAX)) as u32)
            .or(held_before)
            .unwrap_or(spec.min_replicas);
        let window = fetched.window;
        let lookback = state.history.lookback_seconds();
        let span = window.span_seconds();
        let mut request = Request {
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
                interval_seconds: window.step_seconds,
                end: window.end_ms,
                values: window.values,
            }],
            ready_times: ready_times(&state.ready_seconds, now),
            events: Vec::new(),
            params: Default::default(),
            state: None,
        };
        if let Some(s) = &state.scheduler {
            s.annotate(&mut request);
        }
        let supervised = state.supervisor.decide(&request);
        let breaker = state.supervisor.breaker(now);
        self.telemetry
            .circuit
            .get_or_create(&labels)
            .set(circuit_gauge(breaker));
        let decision = supervised.decision;
        if let Some(cause) = supervised.fallback {
            let kind = match &cause {
                leadtime::FallbackCause::Failed { kind, .. } => kind.as_str(),
                leadtime::FallbackCause::CircuitOpen { .. } => "circuit-open",
            };
            if let Some(held) = self.admit_log(state, kind) {
                tracing::warn!(namespace, name, kind, error = %cause, repeats_not_logged = held, "policy gave no decision");
            }
            self.count_error(state, kind, true);
            if matches!(cause, leadtime::FallbackCause::Failed { .. }) {
                self.telemetry
                    .fuel
                    .get_or_create(&labels)
                    .observe(decision.fuel as f64);
            }
            self.telemetry.fallback_active.get_or_create(&labels).set(1);
            return match (spec.on_error, held_before) {
                (OnError::Hold, Some(_)) => {
                    let held = within(decision.replicas, &spec);
                    let (replicas, reason) = state.scheduled(&request, held, decision.reason);
                    Ok(Answer {
                        replicas,
                        active: replicas > 0,
                        source: "fallback",
                        reason,
                    })
                }
                _ => Err(ScaleError::Unavailable(cause.to_string())),
            };
        }
        self.telemetry
            .fuel
            .get_or_create(&labels)
            .observe(decision.fuel as f64);
        self.telemetry.fallback_active.get_or_create(&labels).set(0);
        self.telemetry
            .policy_replicas
            .get_or_create(&labels)
            .set(i64::from(decision.replicas));
        // Before the guardrails' rate limits: what the policy wants, within [min, max].
        let wanted = decision
            .proposed
            .clamp(spec.min_replicas, spec.max_replicas.max(spec.min_replicas));
        let mut reason = decision.reason;
        if span + window.step_seconds < lookback {
            reason = format!(
                "{reason}; history {} of {} lookback",
                human(span),
                human(lookback)
            );
        }
        Ok(match spec.mode {
            Mode::Decide => {
                let (replicas, reason) = state.scheduled(&request, decision.replicas, reason);
                // Active by what the policy wants within the schedule: a floor activates, a
                // window's `max: 0` (scale to zero at night) deactivates.
                let (wanted, _) = state.scheduled(&request, wanted, String::new());
                Answer {
                    replicas,
                    active: wanted > 0,
                    source: "policy",
                    reason,
                }
            }
            Mode::Observe => {
                let load = request.metrics[0]
                    .values
                    .iter()
                    .rev()
                    .copied()
                    .find(|v| !v.is_nan())
                    .unwrap_or(0.0);
                let reactive = reactive(load, spec.target_per_pod, &request.replicas);
                let reason = format!(
                    "observe mode: reactive ceil({load} / {}) = {reactive}; policy says {} ({reason})",
                    spec.target_per_pod, decision.replicas
                );
                let (replicas, reason) = state.scheduled(&request, reactive, reason);
                Answer {
                    replicas,
                    active: replicas > 0,
                    source: "reactive",
                    reason,
                }
            }
        })
    }

    /// The answer when Prometheus failed: hold the last target (`onError: hold`), or an error.
    fn hold(&self, state: &mut State, why: String) -> Result<Answer, ScaleError> {
        self.telemetry
            .fallback_active
            .get_or_create(&state.labels)
            .set(1);
        let last = state.supervisor.last_answer().filter(|_| state.answered);
        match (state.spec.on_error, last) {
            (OnError::Hold, Some(held)) => {
                let held = within(held, &state.spec);
                // The schedule still applies: a window's floor holds while Prometheus is away.
                let mut request = Request::new(
                    unix_ms(),
                    Replicas {
                        current: held,
                        ready: held,
                        min: state.spec.min_replicas,
                        max: state.spec.max_replicas,
                    },
                    Vec::new(),
                );
                request.ready_times = ready_times(&state.ready_seconds, request.now);
                let (replicas, reason) =
                    state.scheduled(&request, held, format!("holding {held}: {why}"));
                Ok(Answer {
                    replicas,
                    active: replicas > 0,
                    source: "fallback",
                    reason,
                })
            }
            _ => Err(ScaleError::Unavailable(why)),
        }
    }
}

/// A held or fallback target within the trigger's bounds: what was held may come from before
/// the bounds changed, and a target is never outside them.
/// What a loaded policy is shared by: one namespace (an instance's memory outlives a call, so a
/// policy that kept one workload's data in it could show it to the next caller: never across
/// tenants), its source (a file by its resolved path, size and modification time, so an edited
/// file loads anew) and its params.
fn template_key(namespace: &str, source: &Source<'_>, params: &leadtime::Params) -> String {
    let source = match source {
        Source::File(path) => {
            let meta = std::fs::metadata(path.as_ref()).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            format!("file {} {len} {modified:?}", path.display())
        }
        other => format!("builtin {}", other.name()),
    };
    format!("{namespace} {source} {params:?}")
}

/// The ready times last read, as a request at `now` carries them.
fn ready_times(seconds: &[f64], now: i64) -> Vec<ReadyTime> {
    seconds
        .iter()
        .map(|s| ReadyTime {
            started_at: now - (s * 1000.0) as i64,
            ready_seconds: *s,
        })
        .collect()
}

fn within(replicas: u32, spec: &Spec) -> u32 {
    replicas.clamp(spec.min_replicas, spec.max_replicas.max(spec.min_replicas))
}

/// The circuit state as a gauge: 0 closed, 1 open, 2 half-open.
fn circuit_gauge(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::Open { .. } => 1,
        BreakerState::HalfOpen => 2,
    }
}

/// What Prometheus said about one workload.
struct Fetched {
    window: crate::history::Window,
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
        workload: w.clone(),
        kind: kind.to_string(),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A duration for people: `2h`, `1d12h`, `45s`.
fn human(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let parts = [
        (s / 86_400, 'd'),
        (s / 3600 % 24, 'h'),
        (s / 60 % 60, 'm'),
        (s % 60, 's'),
    ];
    let text: String = parts
        .iter()
        .filter(|(v, _)| *v > 0)
        .take(2)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if text.is_empty() {
        "0s".into()
    } else {
        text
    }
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
