//! Backtests: replay a demand trace through policies (each followed by the behavior guardrails),
//! as a cluster would have run them, and score each against the oracle. See docs/backtest.md.
//!
//! ```no_run
//! use leadtime_backtest::{self as backtest, Config, Job, ReadyTimes, Trace, Columns};
//! let trace = Trace::from_file("nyc_taxi.csv".as_ref(), &Columns::default()).unwrap();
//! let config = Config::new(1500.0, ReadyTimes::Fixed(300.0));
//! let engine = leadtime::Engine::new(&leadtime::Limits::default())?;
//! let jobs = [Job::new("hpa"), Job::new("predictive")];
//! let result = backtest::run(&engine, &trace, &config, &jobs, &|_: u64| {})?;
//! for row in &result.results { println!("{} {:.1}%", row.policy, row.under_provisioned_pct); }
//! # Ok::<(), leadtime::Error>(())
//! ```

pub mod compare;
mod metrics;
pub mod oracle;
mod ready;
#[cfg(feature = "report")]
pub mod report;
pub mod scoreboard;
mod trace;

pub use compare::{matched, Matched};
pub use leadtime_schedule::{Schedule, ScheduleError};
pub use metrics::{PolicyResult, Tally};
pub use ready::{parse_seconds, ReadyTimes};
pub use trace::{
    parse_time, Aggregate, Columns, Resample, Trace, TraceError, MAX_STEPS_PER_ROW,
    MAX_TRACE_POINTS, MAX_TRACE_VALUE, SPARSE_TRACE_STEPS,
};

use leadtime::behavior::{Behavior, Controller};
use leadtime::Source;
use leadtime::{Engine, Error, Policy, Result};
use leadtime_schedule::Scheduler;
use leadtime_wire::{Metric, Param, Params, ReadyTime, Replicas, Request, Workload, ABI_VERSION};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Most pods a backtest simulates (one record each): a capacity per pod far below the trace's
/// demand would otherwise size memory by the demand (1e308 over 1e-9 per pod).
pub const MAX_PODS: u32 = 100_000;

/// Most decisions one run makes (each is a policy call and a scored step).
pub const MAX_DECISIONS: u64 = 20_000_000;

/// Longest duration a config takes (interval, lookback, warmup), in ms: a hundred years, far
/// from where the clock's arithmetic would overflow.
pub const MAX_DURATION_MS: i64 = 100 * 365 * 86_400_000;

/// How the cluster is simulated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Demand one pod serves.
    pub capacity_per_pod: f64,
    /// Milliseconds between decisions; `None` takes the trace's step.
    pub interval_ms: Option<i64>,
    /// How long new pods take to become Ready.
    pub ready: ReadyTimes,
    /// Seed of the ready-time draws.
    pub seed: u64,
    /// Longest history a request carries, ms.
    pub lookback_ms: i64,
    /// `target_per_pod = capacity_per_pod × target_utilization`.
    pub target_utilization: f64,
    /// History fed before scoring starts, ms.
    pub warmup_ms: i64,
    /// Lowest replica count.
    pub min_replicas: u32,
    /// Highest replica count; `None` is 4 × the peak need (at least 100).
    pub max_replicas: Option<u32>,
    /// The behavior guardrails every policy goes through.
    pub behavior: Behavior,
    /// Recent ready times a request carries, most recent last.
    pub ready_times_kept: usize,
    /// Whether to keep the per-decision series for charts.
    pub record_series: bool,
    /// The schedule (replica bounds by time, planned events): its events are scored apart
    /// (`event_under_provisioned_pct`), and with `scheduled` every decision goes through it,
    /// after the behavior guardrails.
    pub schedule: Option<leadtime_schedule::Schedule>,
    /// Whether decisions go through `schedule`.
    pub scheduled: bool,
    /// Most threads a run takes (its jobs run in parallel); `None`: one per core. A fleet of
    /// runs in parallel gives each one thread, so that N workers run about N times as fast.
    pub threads: Option<usize>,
}

impl Config {
    /// Defaults around a capacity per pod and a ready-time model.
    pub fn new(capacity_per_pod: f64, ready: ReadyTimes) -> Config {
        Config {
            capacity_per_pod,
            interval_ms: None,
            ready,
            seed: 1,
            lookback_ms: 14 * 86_400_000,
            target_utilization: 1.0,
            warmup_ms: 0,
            min_replicas: 1,
            max_replicas: None,
            behavior: Behavior::default(),
            ready_times_kept: 64,
            record_series: false,
            schedule: None,
            scheduled: true,
            threads: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::BadRequest(m));
        if !(self.capacity_per_pod.is_finite() && self.capacity_per_pod > 0.0) {
            return bad(format!(
                "capacity per pod must be a positive number, got {}",
                self.capacity_per_pod
            ));
        }
        if !(self.target_utilization.is_finite()
            && self.target_utilization > 0.0
            && self.target_utilization <= 10.0)
        {
            return bad(format!(
                "target utilization must be in (0, 10], got {}",
                self.target_utilization
            ));
        }
        if let Some(i) = self.interval_ms {
            if i <= 0 {
                return bad(format!("interval must be positive, got {i} ms"));
            }
        }
        if self.lookback_ms <= 0 || self.warmup_ms < 0 {
            return bad("lookback must be positive and warmup 0 or more".into());
        }
        for (what, ms) in [
            ("interval", self.interval_ms.unwrap_or(0)),
            ("lookback", self.lookback_ms),
            ("warmup", self.warmup_ms),
        ] {
            if ms > MAX_DURATION_MS {
                return bad(format!(
                    "{what} of {} s is over the longest a backtest takes, {} s (100 years)",
                    ms / 1000,
                    MAX_DURATION_MS / 1000
                ));
            }
        }
        if self.max_replicas.is_some_and(|m| m > MAX_PODS) {
            return bad(format!(
                "max replicas {} is over the {MAX_PODS} pods a backtest simulates",
                self.max_replicas.unwrap_or(0)
            ));
        }
        self.ready.validate().map_err(Error::BadRequest)
    }
}

/// One policy to backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Label in the results.
    pub label: String,
    /// Built-in name or `.wasm`/`.wat` path.
    pub policy: String,
    /// Load-time params.
    pub params: Params,
    /// Overrides [`Config::target_utilization`] (the HPA's QoS knob).
    pub target_utilization: Option<f64>,
    /// Whether its decisions go through [`Config::schedule`], if there is one (the default).
    pub scheduled: bool,
}

impl Job {
    /// A policy by name, with no params.
    pub fn new(policy: &str) -> Job {
        Job {
            label: policy.to_string(),
            policy: policy.to_string(),
            params: Params::new(),
            target_utilization: None,
            scheduled: true,
        }
    }
}

/// Each job twice, as `LABEL` without [`Config::schedule`] and `LABEL+schedule` with it, side
/// by side: what a schedule costs and buys (`leadtime backtest --schedule`).
pub fn with_and_without_schedule(jobs: Vec<Job>) -> Vec<Job> {
    jobs.into_iter()
        .flat_map(|job| {
            let with = Job {
                label: format!("{}+schedule", job.label),
                scheduled: true,
                ..job.clone()
            };
            [
                Job {
                    scheduled: false,
                    ..job
                },
                with,
            ]
        })
        .collect()
}

/// The QoS knob a sweep varies for a policy, and its values.
#[derive(Debug, Clone, PartialEq)]
pub enum Knob {
    /// A policy param.
    Param(&'static str, Vec<f64>),
    /// The backtest's target utilization.
    Utilization(Vec<f64>),
}

/// The sweep knob of a built-in policy, from the table of built-ins (`None` for others).
pub fn knob(policy: &str) -> Option<Knob> {
    #[cfg(feature = "builtin")]
    return leadtime_builtin::get(policy).map(|b| match b.knob {
        leadtime_builtin::Knob::Param(name, values) => Knob::Param(name, values.to_vec()),
        leadtime_builtin::Knob::Utilization(values) => Knob::Utilization(values.to_vec()),
    });
    #[cfg(not(feature = "builtin"))]
    return {
        let _ = policy;
        None
    };
}

/// The jobs of a sweep of `job` over its knob: one per value (the job alone without a knob).
pub fn sweep_jobs(job: &Job) -> Vec<Job> {
    let Some(knob) = knob(&job.policy) else {
        return vec![job.clone()];
    };
    match knob {
        Knob::Param(name, values) => values
            .into_iter()
            .map(|v| {
                let mut j = job.clone();
                j.params.insert(name.to_string(), Param::Number(v));
                j.label = format!("{} {name}={v}", job.label);
                j
            })
            .collect(),
        Knob::Utilization(values) => values
            .into_iter()
            .map(|v| {
                let mut j = job.clone();
                j.target_utilization = Some(v);
                j.label = format!("{} utilization={v}", job.label);
                j
            })
            .collect(),
    }
}

/// Asks for a replica target; what the simulator drives. Implemented by [`Policy`] and by
/// closures (for tests and native policies).
pub trait Decide {
    /// The proposed target for `request`. The decider may set `request.state` for next time.
    fn propose(&mut self, request: &mut Request) -> Result<u32>;
}

impl Decide for Policy {
    fn propose(&mut self, request: &mut Request) -> Result<u32> {
        // Params and state ride in the request, so the engine never copies the window.
        if request.params.is_empty() && !self.params().is_empty() {
            request.params = self.params().clone();
        }
        let decision = self.decide(request)?;
        request.state = decision.state;
        Ok(decision.proposed)
    }
}

impl<F: FnMut(&Request) -> Result<u32>> Decide for F {
    fn propose(&mut self, request: &mut Request) -> Result<u32> {
        self(request)
    }
}

/// The decision times of a run: `trace_start + k × interval` up to the trace's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// First trace point, Unix ms (the first decision).
    pub trace_start: i64,
    /// Trace step, ms.
    pub trace_step: i64,
    /// Decision interval, ms.
    pub interval: i64,
    /// First scored decision time (after the warmup).
    pub score_start: i64,
    /// End of the trace (just after the last point's step).
    pub end: i64,
}

impl Grid {
    fn new(trace: &Trace, config: &Config) -> Result<Grid> {
        let interval = config.interval_ms.unwrap_or(trace.step_ms);
        let mut g = Grid {
            trace_start: trace.start_ms,
            trace_step: trace.step_ms,
            interval,
            score_start: 0,
            end: trace.end_ms(),
        };
        // Durations are validated (at most MAX_DURATION_MS) and trace times are parsed
        // timestamps, so these sums stay far inside i64; saturate anyway rather than wrap.
        g.score_start = g.ceil(trace.start_ms.saturating_add(config.warmup_ms));
        let decisions = (g.end - g.trace_start) / interval;
        if decisions as u64 > MAX_DECISIONS {
            return Err(Error::BadRequest(format!(
                "{decisions} decisions (the trace's span over an interval of {} s) are over the \
                 {MAX_DECISIONS} a backtest makes; use a longer --interval",
                interval as f64 / 1000.0
            )));
        }
        if g.score_start >= g.end {
            return Err(Error::BadRequest(format!(
                "the warmup ({}s) leaves nothing of the trace's {}s to score",
                config.warmup_ms / 1000,
                (g.end - g.trace_start) / 1000
            )));
        }
        Ok(g)
    }

    /// The latest decision time at or before `t`.
    pub fn floor(&self, t: i64) -> i64 {
        self.trace_start + (t - self.trace_start).div_euclid(self.interval) * self.interval
    }

    /// The earliest decision time at or after `t`.
    pub fn ceil(&self, t: i64) -> i64 {
        let f = self.floor(t);
        if f == t {
            t
        } else {
            f + self.interval
        }
    }

    /// Decision times of the run, in order.
    pub fn decisions(&self) -> impl Iterator<Item = i64> + '_ {
        (0..)
            .map(|k| self.trace_start + k * self.interval)
            .take_while(|&t| t < self.end)
    }

    /// Scored decisions.
    pub fn steps(&self) -> usize {
        self.decisions().filter(|&t| t >= self.score_start).count()
    }
}

/// The per-decision series of a run, for charts (scored decisions only).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    /// Decision times, Unix ms.
    pub times: Vec<i64>,
    /// Demand at each decision.
    pub demand: Vec<f64>,
    /// Ready pods × capacity per pod, just after each decision.
    pub ready_capacity: Vec<f64>,
    /// Pods (ready or starting) just after each decision.
    pub replicas: Vec<u32>,
}

/// One scored run: its row, and its series when asked for.
#[derive(Debug, Clone)]
pub struct Run {
    /// Running sums (the row needs the oracle's pod-hours).
    pub tally: Tally,
    /// The series, when [`Config::record_series`].
    pub series: Option<Series>,
}

/// A whole backtest: the rows (oracle last) and each run's series.
#[derive(Debug, Clone)]
pub struct Backtest {
    /// Scored decisions.
    pub steps: usize,
    /// One row per job, then the oracle's.
    pub results: Vec<PolicyResult>,
    /// Series per job then oracle, by label (when recorded).
    pub series: Vec<(String, Series)>,
}

/// Demand and need per trace slot: gaps hold the last value; need = ceil(demand / capacity).
struct Load {
    demand: Vec<f64>,
    need: Vec<u32>,
}

impl Load {
    /// The load, or a bad request when its peak needs more than [`MAX_PODS`].
    fn new(trace: &Trace, capacity: f64) -> Result<Load> {
        let demand = trace.demand();
        let need: Vec<u32> = demand.iter().map(|&d| pods_for(d, capacity)).collect();
        let peak = need.iter().copied().max().unwrap_or(0);
        if peak > MAX_PODS {
            return Err(Error::BadRequest(format!(
                "the trace's peak ({}) needs {peak} pods at a capacity of {capacity} per pod, \
                 over the {MAX_PODS} pods a backtest simulates; raise the capacity per pod (or \
                 lower the pods at peak)",
                trace.peak()
            )));
        }
        Ok(Load { demand, need })
    }
}

/// Pods for `demand` at `per_pod` each, never NaN, saturating.
fn pods_for(demand: f64, per_pod: f64) -> u32 {
    let n = (demand.max(0.0) / per_pod).ceil();
    if n.is_nan() {
        0
    } else {
        n as u32
    }
}

/// Scores `[a, b)`: `pods` existing, `ready` of them Ready at `a`, `pending` (sorted) the times
/// in `(a, b)` at which more become Ready.
#[allow(clippy::too_many_arguments)]
fn score(
    tally: &mut Tally,
    trace: &Trace,
    load: &Load,
    capacity: f64,
    a: i64,
    b: i64,
    pods: u32,
    mut ready: u32,
    pending: &[i64],
    events: &[(i64, i64)],
) {
    let mut t = a;
    let mut slot = trace
        .index_at(t)
        .expect("scored times are inside the trace");
    let mut next_pending = pending.iter().peekable();
    while t < b {
        let slot_end = trace.start_ms + (slot as i64 + 1) * trace.step_ms;
        let ready_next = next_pending.peek().map_or(i64::MAX, |&&r| r);
        let next = b.min(ready_next).min(if slot + 1 < load.demand.len() {
            slot_end
        } else {
            i64::MAX
        });
        tally.segment(
            (next - t) as f64,
            pods,
            ready,
            load.demand[slot],
            load.need[slot],
            capacity,
        );
        if events.iter().any(|&(start, end)| (start..end).contains(&t)) {
            tally.event((next - t) as f64, ready < load.need[slot]);
        }
        t = next;
        while next_pending.peek().is_some_and(|&&r| r <= t) {
            next_pending.next();
            ready += 1;
        }
        if t >= slot_end && slot + 1 < load.demand.len() {
            slot += 1;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pod {
    created: i64,
    ready: i64,
    reported: bool,
}

/// What a run reports to its caller as it goes, and asks of it: any `Fn(u64)` is one that only
/// counts decisions.
pub trait Observer: Sync {
    /// `n` more decisions are done.
    fn progress(&self, n: u64);
    /// Whether the caller wants the run to stop (asked before every decision); the run then
    /// ends at once with [`stopped`]'s error.
    fn stop(&self) -> bool {
        false
    }
}

impl<F: Fn(u64) + Sync> Observer for F {
    fn progress(&self, n: u64) {
        self(n)
    }
}

/// The error of a run its [`Observer`] stopped.
pub fn stopped() -> Error {
    Error::Runtime("the backtest was stopped by its caller".into())
}

/// Runs one decider over the trace, guardrails included; `progress` gets decision counts.
pub fn simulate(
    trace: &Trace,
    config: &Config,
    decider: &mut dyn Decide,
    progress: &dyn Observer,
) -> Result<Run> {
    config.validate()?;
    let grid = Grid::new(trace, config)?;
    let load = Load::new(trace, config.capacity_per_pod)?;
    let per_pod = config.capacity_per_pod * config.target_utilization;
    let max = max_replicas(config, &load)?;
    let min = config.min_replicas.min(max);
    let lookback_points = (config.lookback_ms / trace.step_ms).max(1) as usize;
    let mut guard = Controller::new(config.behavior.clone());
    let mut scheduler = config
        .schedule
        .clone()
        .filter(|_| config.scheduled)
        .map(Scheduler::new);
    let events = event_spans(config);
    let mut tally = Tally::default();
    let mut series = config.record_series.then(Series::default);

    let initial = pods_for(load.demand[0], per_pod).clamp(min, max);
    let mut pods: Vec<Pod> = (0..initial)
        .map(|_| Pod {
            created: grid.trace_start,
            ready: grid.trace_start,
            reported: true,
        })
        .collect();
    let mut observed: std::collections::VecDeque<ReadyTime> = Default::default();
    let mut request = Request {
        abi_version: ABI_VERSION,
        now: 0,
        workload: Workload {
            namespace: "backtest".into(),
            name: trace.name.clone(),
        },
        replicas: Replicas {
            current: 0,
            ready: 0,
            min,
            max,
        },
        metrics: vec![Metric {
            name: "demand".into(),
            target_per_pod: per_pod,
            interval_seconds: trace.step_ms as f64 / 1000.0,
            end: 0,
            values: Vec::with_capacity(lookback_points.min(trace.len())),
        }],
        ready_times: Vec::new(),
        events: vec![],
        params: Params::new(),
        state: None,
    };
    let mut pending = Vec::new();
    let mut done = 0u64;
    for now in grid.decisions() {
        if progress.stop() {
            return Err(stopped());
        }
        // Pods that became Ready since the last decision are observed now, oldest first.
        let mut fresh: Vec<&mut Pod> = pods
            .iter_mut()
            .filter(|p| !p.reported && p.ready <= now)
            .collect();
        fresh.sort_by_key(|p| p.ready);
        for p in fresh {
            p.reported = true;
            observed.push_back(ReadyTime {
                started_at: p.created,
                ready_seconds: (p.ready - p.created) as f64 / 1000.0,
            });
            if observed.len() > config.ready_times_kept {
                observed.pop_front();
            }
        }
        let current = pods.len() as u32;
        let ready_now = pods.iter().filter(|p| p.ready <= now).count() as u32;
        let replicas = Replicas {
            current,
            ready: ready_now,
            min,
            max,
        };
        // The history up to now, never beyond: the point at `now` is the last one.
        let last = trace.index_at(now).expect("decisions are inside the trace");
        let first = (last + 1).saturating_sub(lookback_points);
        request.now = now;
        request.replicas = replicas;
        request.ready_times.clear();
        request.ready_times.extend(observed.iter().copied());
        let metric = &mut request.metrics[0];
        metric.end = trace.start_ms + last as i64 * trace.step_ms;
        metric.values.clear();
        metric.values.extend_from_slice(&trace.values[first..=last]);
        if let Some(s) = &scheduler {
            s.annotate(&mut request);
        }

        let started = Instant::now();
        let proposed = decider.propose(&mut request);
        let took = started.elapsed().as_secs_f64() * 1e6;
        let scored = now >= grid.score_start;
        let proposed = match proposed {
            Ok(p) => p,
            Err(_) => {
                if scored {
                    tally.errors += 1;
                }
                current // hold, as a supervised host does
            }
        };
        let (target, _) = guard.apply(now, &replicas, proposed);
        let mut target = target.clamp(min, max);
        if let Some(s) = scheduler.as_mut() {
            target = s.apply(&request, target).0;
        }
        if target > current {
            for index in 0..target - current {
                let r = config.ready.draw_ms(config.seed, now, index);
                pods.push(Pod {
                    created: now,
                    ready: now + r,
                    reported: false,
                });
            }
        } else if target < current {
            // As a ReplicaSet does: pods not Ready go first, then the newest.
            pods.sort_by_key(|p| (p.ready > now, p.created));
            pods.truncate(target as usize);
        }
        if scored {
            tally.call_us.push(took);
            if target != current {
                tally.scale_events += 1;
            }
            let b = (now + grid.interval).min(grid.end);
            let ready = pods.iter().filter(|p| p.ready <= now).count() as u32;
            pending.clear();
            pending.extend(pods.iter().map(|p| p.ready).filter(|&r| r > now && r < b));
            pending.sort_unstable();
            tally.peak = tally.peak.max(target);
            score(
                &mut tally,
                trace,
                &load,
                config.capacity_per_pod,
                now,
                b,
                target,
                ready,
                &pending,
                &events,
            );
            if let Some(s) = series.as_mut() {
                s.times.push(now);
                s.demand.push(load.demand[last]);
                s.ready_capacity
                    .push(f64::from(ready) * config.capacity_per_pod);
                s.replicas.push(target);
            }
        }
        done += 1;
        if done.is_multiple_of(512) {
            progress.progress(512);
        }
    }
    progress.progress(done % 512);
    Ok(Run { tally, series })
}

fn max_replicas(config: &Config, load: &Load) -> Result<u32> {
    let max = config.max_replicas.unwrap_or_else(|| {
        let peak = load.need.iter().copied().max().unwrap_or(0);
        let per_pod = 1.0 / config.target_utilization;
        (f64::from(peak) * per_pod * 4.0).ceil().max(100.0) as u32
    });
    if max > MAX_PODS {
        return Err(Error::BadRequest(format!(
            "max replicas {max} (4 × the peak need over the target utilization) is over the \
             {MAX_PODS} pods a backtest simulates; give --max-replicas or raise the utilization"
        )));
    }
    Ok(max)
}

/// When the schedule's events' load is under way, `[start, end)` in ms: scored apart.
fn event_spans(config: &Config) -> Vec<(i64, i64)> {
    config
        .schedule
        .iter()
        .flat_map(|s| s.events.iter().map(|e| (e.start, e.end)))
        .collect()
}

/// The oracle's run: its schedule (see [`oracle`]) scored like any policy's.
pub fn simulate_oracle(trace: &Trace, config: &Config) -> Result<Run> {
    config.validate()?;
    let grid = Grid::new(trace, config)?;
    let load = Load::new(trace, config.capacity_per_pod)?;
    let plan = oracle::plan(&grid, &load.need, &config.ready, config.seed);
    let events = event_spans(config);
    let times: Vec<i64> = grid
        .decisions()
        .filter(|&t| t >= grid.score_start)
        .collect();
    let n = times.len();
    let index = |t: i64| ((t - grid.score_start) / grid.interval) as usize;
    let mut alive = vec![0i64; n + 1];
    let mut ready = vec![0i64; n + 1];
    let mut pending: Vec<Vec<i64>> = vec![Vec::new(); n];
    for p in &plan {
        let from = index(grid.ceil(p.created.max(grid.score_start)));
        let to = index(grid.ceil(p.removed)).min(n); // exclusive
        if from >= to {
            continue;
        }
        alive[from] += 1;
        alive[to] -= 1;
        let ready_from = index(grid.ceil(p.ready.max(grid.score_start))).max(from);
        if ready_from < to {
            ready[ready_from] += 1;
            ready[to] -= 1;
        }
        let q = index(grid.floor(p.ready.max(grid.score_start)));
        if p.ready > times[q] && (from..to).contains(&q) {
            pending[q].push(p.ready);
        }
    }
    let mut tally = Tally::default();
    let mut series = config.record_series.then(Series::default);
    let (mut pods, mut ready_now, mut previous) = (0i64, 0i64, None);
    for (k, &a) in times.iter().enumerate() {
        pods += alive[k];
        ready_now += ready[k];
        let b = (a + grid.interval).min(grid.end);
        pending[k].sort_unstable();
        let (p, r) = (pods as u32, ready_now as u32);
        if previous.is_some_and(|prev| prev != p) {
            tally.scale_events += 1;
        }
        previous = Some(p);
        tally.peak = tally.peak.max(p);
        score(
            &mut tally,
            trace,
            &load,
            config.capacity_per_pod,
            a,
            b,
            p,
            r,
            &pending[k],
            &events,
        );
        if let Some(s) = series.as_mut() {
            s.times.push(a);
            s.demand
                .push(load.demand[trace.index_at(a).expect("inside the trace")]);
            s.ready_capacity
                .push(f64::from(r) * config.capacity_per_pod);
            s.replicas.push(p);
        }
    }
    Ok(Run { tally, series })
}

/// Backtests every job (in parallel, one worker per core) and the oracle. Each job loads its
/// own policy from `engine`; `progress` gets counts of decisions done (over all jobs).
pub fn run(
    engine: &Engine,
    trace: &Trace,
    config: &Config,
    jobs: &[Job],
    progress: &dyn Observer,
) -> Result<Backtest> {
    config.validate()?;
    let grid = Grid::new(trace, config)?;
    let workers = config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let runs: Mutex<Vec<Option<Result<Run>>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let outcome = run_job(engine, trace, config, job, progress);
                runs.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(outcome);
            });
        }
    });
    let oracle = simulate_oracle(trace, config)?;
    let oracle_hours = oracle.tally.pod_ms / 3.6e6;
    let mut results = Vec::new();
    let mut series = Vec::new();
    let runs = runs.into_inner().unwrap_or_else(|p| p.into_inner());
    for (job, run) in jobs.iter().zip(runs) {
        let run = run.expect("every job ran")?;
        results.push(run.tally.result(&job.label, Some(oracle_hours)));
        if let Some(s) = run.series {
            series.push((job.label.clone(), s));
        }
    }
    results.push(oracle.tally.result("oracle", None));
    if let Some(s) = oracle.series {
        series.push(("oracle".to_string(), s));
    }
    Ok(Backtest {
        steps: grid.steps(),
        results,
        series,
    })
}

fn run_job(
    engine: &Engine,
    trace: &Trace,
    config: &Config,
    job: &Job,
    progress: &dyn Observer,
) -> Result<Run> {
    let mut policy = engine.load(Source::parse(&job.policy), job.params.clone())?;
    let mut config = config.clone();
    if let Some(u) = job.target_utilization {
        config.target_utilization = u;
    }
    config.scheduled = job.scheduled;
    simulate(trace, &config, &mut policy, progress)
}

/// Capacity per pod such that the trace's peak needs `pods` pods.
pub fn capacity_for_peak(trace: &Trace, pods: u32) -> f64 {
    trace.peak() / f64::from(pods.max(1))
}

/// Capacity per pod such that the trace's `q`-quantile (0 < q <= 1) needs `pods` pods: real
/// traces often have a single maximum far above their usual peak. `None` when `q` is out of
/// range or the quantile is 0.
pub fn capacity_for_quantile(trace: &Trace, q: f64, pods: u32) -> Option<f64> {
    if !(q > 0.0 && q <= 1.0) {
        return None;
    }
    let mut v: Vec<f64> = trace
        .values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    let at = leadtime_wire::stats::quantile(&mut v, q)?;
    let c = at / f64::from(pods.max(1));
    (c.is_finite() && c > 0.0).then_some(c)
}

impl From<TraceError> for Error {
    fn from(e: TraceError) -> Self {
        Error::BadRequest(e.to_string())
    }
}
