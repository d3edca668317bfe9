//! `leadtime._native.backtest`: what `leadtime backtest` runs (the rows, the sweep, the
//! comparison at equal cost), from a trace and settings, with the GIL released; and its result,
//! which gives the CLI's `--json` text, its HTML report and the per-decision series.

use crate::convert::{self, bad_request};
use crate::trace::PyTrace;
use leadtime::{Behavior, Limits};
use leadtime_backtest::{
    self as simulate, report, Backtest, Config, Job, Matched, PolicyResult, ReadyTimes, Schedule,
    Trace, MAX_DURATION_MS,
};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use std::sync::Arc;

/// A whole backtest, as the CLI holds it before printing it.
#[pyclass(name = "Backtest", module = "leadtime._native", frozen)]
pub struct PyBacktest {
    trace: Arc<Trace>,
    config: Config,
    backtest: Backtest,
    sweep: Option<Vec<PolicyResult>>,
    matched: Option<Vec<Matched>>,
}

/// The `--json` object of `leadtime backtest`; the field names are a contract.
#[derive(Serialize)]
struct Output<'a> {
    trace: &'a str,
    steps: usize,
    results: &'a [PolicyResult],
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<&'a [PolicyResult]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<&'a [Matched]>,
}

/// A duration in ms from seconds (a number) or a text such as `5m`.
fn duration_ms(what: &str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    let seconds = match value.extract::<f64>() {
        Ok(s) => s,
        Err(_) => {
            let text: String = value.extract().map_err(|_| {
                bad_request(format!(
                    "{what}: a duration is seconds or a text such as 5m, not {value}"
                ))
            })?;
            simulate::parse_seconds(&text).map_err(|e| bad_request(format!("{what}: {e}")))?
        }
    };
    let ms = (seconds * 1000.0).round();
    if !(ms.is_finite() && ms >= 0.0 && ms <= MAX_DURATION_MS as f64) {
        return Err(bad_request(format!(
            "{what}: {seconds} s is not a duration from 0 to 100 years"
        )));
    }
    Ok(ms as i64)
}

/// The ready-time model from `(kind, value)`: `("fixed", seconds or text)`,
/// `("dist", "lognormal:MEDIAN,P90")`, `("samples", [seconds, ...])` or `("file", path)`.
fn ready_times(kind: &str, value: &Bound<'_, PyAny>) -> PyResult<ReadyTimes> {
    let ready = match kind {
        "fixed" => ReadyTimes::Fixed(duration_ms("ready_time", value)? as f64 / 1000.0),
        "dist" => ReadyTimes::parse_dist(&value.extract::<String>()?)
            .map_err(|e| bad_request(format!("ready_time_dist: {e}")))?,
        "samples" => ReadyTimes::Samples(value.extract::<Vec<f64>>()?),
        "file" => ReadyTimes::from_file(&value.extract::<std::path::PathBuf>()?)
            .map_err(|e| bad_request(format!("ready_times: {e}")))?,
        _ => return Err(bad_request(format!("no ready-time model `{kind}`"))),
    };
    ready
        .validate()
        .map_err(|e| bad_request(format!("ready times: {e}")))?;
    Ok(ready)
}

/// A schedule from `("file", path)` or `("text", yaml)`; errors (`schedule: ...`) name a file
/// and the line and column of a bad field.
fn schedule_from(kind: &str, value: &str) -> PyResult<Schedule> {
    let parsed = match kind {
        "file" => Schedule::from_file(std::path::Path::new(value)),
        "text" => Schedule::parse(value),
        _ => return Err(bad_request(format!("no schedule source `{kind}`"))),
    };
    parsed.map_err(|e| bad_request(e.to_string()))
}

/// The YAML text of a schedule from `("file", path)` or `("text", yaml)`, checked: what
/// `leadtime.Schedule` holds, so a fleet's workers need no file.
#[pyfunction]
pub fn check_schedule(kind: &str, value: &str) -> PyResult<String> {
    schedule_from(kind, value)?;
    match kind {
        "file" => std::fs::read_to_string(value)
            .map_err(|e| bad_request(format!("schedule: reading {value}: {e}"))),
        _ => Ok(value.to_string()),
    }
}

/// Backtests `jobs` (label, policy spec, params) on `trace` as `leadtime backtest` does, and
/// with `sweep` each one over its QoS knob, compared at equal cost. Settings as the CLI's flags
/// (durations in seconds or as text); `behavior` is an HPA behavior block as YAML/JSON text;
/// `schedule` a schedule's YAML text, and then each job runs without it and, as
/// `LABEL+schedule`, with it.
#[pyfunction]
#[pyo3(signature = (
    trace, jobs, *, capacity_per_pod, ready, seed=1, interval=None, lookback=None,
    target_utilization=1.0, warmup=None, min_replicas=1, max_replicas=None, behavior=None,
    schedule=None, sweep=false, record_series=true, threads=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn backtest(
    py: Python<'_>,
    trace: &PyTrace,
    jobs: Vec<(String, String, Option<Bound<'_, PyDict>>)>,
    capacity_per_pod: f64,
    ready: (String, Bound<'_, PyAny>),
    seed: u64,
    interval: Option<Bound<'_, PyAny>>,
    lookback: Option<Bound<'_, PyAny>>,
    target_utilization: f64,
    warmup: Option<Bound<'_, PyAny>>,
    min_replicas: u32,
    max_replicas: Option<u32>,
    behavior: Option<String>,
    schedule: Option<String>,
    sweep: bool,
    record_series: bool,
    threads: Option<usize>,
) -> PyResult<PyBacktest> {
    if jobs.is_empty() {
        return Err(bad_request("give at least one policy"));
    }
    let mut config = Config::new(capacity_per_pod, ready_times(&ready.0, &ready.1)?);
    config.seed = seed;
    config.interval_ms = interval.map(|i| duration_ms("interval", &i)).transpose()?;
    if let Some(l) = lookback {
        config.lookback_ms = duration_ms("lookback", &l)?;
    }
    if let Some(w) = warmup {
        config.warmup_ms = duration_ms("warmup", &w)?;
    }
    config.target_utilization = target_utilization;
    config.min_replicas = min_replicas;
    config.max_replicas = max_replicas;
    if let Some(text) = behavior {
        config.behavior =
            Behavior::parse(&text).map_err(|e| bad_request(format!("behavior: {e}")))?;
    }
    config.record_series = record_series;
    if threads == Some(0) {
        return Err(bad_request("threads must be 1 or more"));
    }
    config.threads = threads;
    config.schedule = schedule
        .map(|text| schedule_from("text", &text))
        .transpose()?;
    let jobs: Vec<Job> = jobs
        .into_iter()
        .map(|(label, policy, params)| {
            Ok(Job {
                label,
                params: convert::params(params.as_ref())?,
                ..Job::new(&policy)
            })
        })
        .collect::<PyResult<_>>()?;
    let jobs = if config.schedule.is_some() {
        simulate::with_and_without_schedule(jobs)
    } else {
        jobs
    };
    let trace = Arc::clone(&trace.inner);
    let (backtest, sweep) = crate::interrupt::run(py, |observer| {
        let engine = convert::engine(&Limits::default())?;
        let backtest = simulate::run(&engine, &trace, &config, &jobs, observer)?;
        let sweep = if sweep {
            let sweep_jobs: Vec<Job> = jobs.iter().flat_map(simulate::sweep_jobs).collect();
            let mut sweep_config = config.clone();
            sweep_config.record_series = false;
            let mut s = simulate::run(&engine, &trace, &sweep_config, &sweep_jobs, observer)?;
            s.results.pop(); // the oracle, already in the rows
            Some(s.results)
        } else {
            None
        };
        Ok((backtest, sweep))
    })?;
    let matched = sweep
        .as_deref()
        .map(|s| simulate::matched(&backtest.results, s));
    Ok(PyBacktest {
        trace,
        config,
        backtest,
        sweep,
        matched,
    })
}

#[pymethods]
impl PyBacktest {
    /// The run as `leadtime backtest --json` prints it: `{"trace", "steps", "results"}`, plus
    /// `"sweep"` and `"matched"` with a sweep.
    fn json(&self) -> PyResult<String> {
        let out = Output {
            trace: &self.trace.name,
            steps: self.backtest.steps,
            results: &self.backtest.results,
            sweep: self.sweep.as_deref(),
            matched: self.matched.as_deref(),
        };
        serde_json::to_string(&out).map_err(|e| bad_request(e.to_string()))
    }

    /// The self-contained HTML report `leadtime backtest --report` writes.
    fn report_html(&self, py: Python<'_>) -> String {
        py.detach(|| {
            report::html(&report::Input {
                trace: &self.trace,
                config: &self.config,
                backtest: &self.backtest,
                sweep: self.sweep.as_deref(),
                matched: self.matched.as_deref(),
            })
        })
    }

    /// Each run's per-decision series (scored decisions; recorded unless turned off), as
    /// `(label, times_ms, demand, ready_capacity, replicas)` arrays.
    #[allow(clippy::type_complexity)]
    fn series<'py>(
        &self,
        py: Python<'py>,
    ) -> Vec<(
        String,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<u32>>,
    )> {
        self.backtest
            .series
            .iter()
            .map(|(label, s)| {
                (
                    label.clone(),
                    PyArray1::from_slice(py, &s.times),
                    PyArray1::from_slice(py, &s.demand),
                    PyArray1::from_slice(py, &s.ready_capacity),
                    PyArray1::from_slice(py, &s.replicas),
                )
            })
            .collect()
    }

    /// Scored decisions.
    #[getter]
    fn steps(&self) -> usize {
        self.backtest.steps
    }

    /// Demand one pod serves, as simulated.
    #[getter]
    fn capacity_per_pod(&self) -> f64 {
        self.config.capacity_per_pod
    }
}
