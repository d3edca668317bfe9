//! `leadtime backtest`: replay a trace through policies, against the HPA and the oracle.

use crate::failure::Failure;
use crate::input;
use indicatif::{ProgressBar, ProgressStyle};
use leadtime::{Behavior, Limits};
use leadtime_backtest::report;
use leadtime_backtest::{
    self as simulate, parse_seconds, Columns, Config, Job, ReadyTimes, Resample, Trace,
};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `leadtime backtest`.
#[derive(clap::Args)]
pub struct Args {
    /// A policy to backtest: a built-in name or a `.wasm`/`.wat` file, optionally named
    /// `NAME=POLICY` (e.g. `phpa=holt-winters`; `--param NAME:...` then scopes to it); repeatable.
    /// A file's row is named by its file stem.
    #[arg(long = "policy", required = true)]
    pub policies: Vec<String>,
    /// The trace: CSV with a time column and a value column (total demand).
    #[cfg_attr(
        feature = "prometheus",
        arg(long, required_unless_present = "prometheus")
    )]
    #[cfg_attr(not(feature = "prometheus"), arg(long, required = true))]
    trace: Option<PathBuf>,
    #[cfg(feature = "prometheus")]
    #[command(flatten)]
    source: crate::prometheus::Source,
    /// The time column (header name or 0-based index); detected when absent.
    #[arg(long)]
    time_column: Option<String>,
    /// The value column (header name or 0-based index); detected when absent.
    #[arg(long)]
    value_column: Option<String>,
    /// Buckets the trace onto its own grid, `STEP[:mean|max|sum]` (e.g. 5m, 5m:max): for exports
    /// whose times drift off the grid or come at uneven intervals. Empty buckets are gaps.
    #[arg(long, value_name = "STEP[:AGG]")]
    resample: Option<String>,
    /// Demand one pod serves.
    #[arg(long, required_unless_present_any = ["peak_pods", "pods_at_quantile"])]
    capacity_per_pod: Option<f64>,
    /// Instead of --capacity-per-pod: the capacity at which the trace's peak needs this many pods.
    #[arg(long, conflicts_with_all = ["capacity_per_pod", "pods_at_quantile"],
          value_parser = clap::value_parser!(u32).range(1..=i64::from(simulate::MAX_PODS)))]
    peak_pods: Option<u32>,
    /// Instead of --capacity-per-pod: `Q:N`, the capacity at which the trace's Q-quantile needs
    /// N pods (e.g. 0.99:20); a real trace's single maximum is often an outlier.
    #[arg(long, value_name = "Q:N", conflicts_with = "capacity_per_pod")]
    pods_at_quantile: Option<String>,
    /// Time between decisions (e.g. 1m); default: the trace's step.
    #[arg(long)]
    interval: Option<String>,
    /// Fixed ready time of new pods (e.g. 2m).
    #[arg(long, conflicts_with_all = ["ready_time_dist", "ready_times"])]
    ready_time: Option<String>,
    /// Ready-time distribution: `lognormal:MEDIAN,P90` (e.g. lognormal:2m,5m).
    #[arg(long, conflicts_with = "ready_times")]
    ready_time_dist: Option<String>,
    /// Observed ready times: a file with one number of seconds per line.
    #[arg(long)]
    ready_times: Option<PathBuf>,
    /// Seed of the ready-time draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Longest history a request carries (e.g. 7d).
    #[arg(long, default_value = "14d")]
    lookback: String,
    /// target_per_pod = capacity per pod × this.
    #[arg(long, default_value_t = 1.0)]
    target_utilization: f64,
    /// History fed before scoring starts (e.g. 2d).
    #[arg(long, default_value = "0s")]
    warmup: String,
    /// Lowest replica count.
    #[arg(long, default_value_t = 1)]
    min_replicas: u32,
    /// Highest replica count (default: 4 × the peak need, at least 100).
    #[arg(long)]
    max_replicas: Option<u32>,
    /// The HPA behavior block (YAML or JSON) every policy goes through; default: Kubernetes'.
    #[arg(long)]
    behavior: Option<PathBuf>,
    /// A schedule (YAML, docs/schedules.md): replica bounds by time and planned events. Each
    /// policy then runs twice, as `NAME` without it and `NAME+schedule` with it.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// A policy parameter, `name=value` for every policy or `policy:name=value` for one;
    /// repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Vary each policy's QoS knob and report the curve of under-provisioning against cost.
    #[arg(long)]
    sweep: bool,
    /// Write a self-contained HTML report with charts here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints; the field names are a contract.
#[derive(Serialize)]
struct Output<'a> {
    trace: &'a str,
    steps: usize,
    results: &'a [simulate::PolicyResult],
    #[serde(skip_serializing_if = "Option::is_none")]
    sweep: Option<&'a [simulate::PolicyResult]>,
    /// With `--sweep`: each policy against each other one's curve at the same cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<&'a [simulate::Matched]>,
}

fn bad(detail: impl Into<String>) -> Failure {
    Failure::new("bad-request", detail)
}

fn seconds_ms(flag: &str, text: &str) -> Result<i64, Failure> {
    let seconds = parse_seconds(text).map_err(|e| bad(format!("--{flag}: {e}")))?;
    // Checked here: `as i64` would saturate a huge duration and the clock arithmetic overflow.
    let ms = (seconds * 1000.0).round();
    if ms > simulate::MAX_DURATION_MS as f64 {
        return Err(bad(format!(
            "--{flag} {text} is over the longest duration a backtest takes (100 years)"
        )));
    }
    Ok(ms as i64)
}

/// `--pods-at-quantile Q:N` as (Q, N).
fn quantile_pods(text: &str) -> Result<(f64, u32), Failure> {
    let err = || {
        bad(format!(
            "--pods-at-quantile: `{text}` is not Q:N with 0 < Q <= 1 and N a positive whole \
             number (e.g. 0.99:20)"
        ))
    };
    let (q, n) = text.split_once(':').ok_or_else(err)?;
    let q: f64 = q.trim().parse().map_err(|_| err())?;
    let n: u32 = n.trim().parse().map_err(|_| err())?;
    if !(q > 0.0 && q <= 1.0) || n == 0 {
        return Err(err());
    }
    Ok((q, n))
}

/// The trace `--prometheus` and `--query` read (and `--save-trace` keeps), with a progress bar
/// over its pages on a terminal; and the ready times `--ready-query` reads.
#[cfg(feature = "prometheus")]
fn from_prometheus(
    source: &crate::prometheus::Source,
) -> Result<(Trace, Option<Vec<f64>>), Failure> {
    let (Some(url), Some(query)) = (&source.prometheus, &source.query) else {
        return Err(bad("give --trace, or --prometheus and --query"));
    };
    let seconds = |flag: &str, text: &str| {
        parse_seconds(text)
            .map(|s| s.round() as i64)
            .map_err(|e| bad(format!("{flag}: {e}")))
    };
    let (range, step) = (
        seconds("--range", &source.range)?,
        seconds("--step", &source.step)?,
    );
    if step < 1 {
        return Err(bad(format!("--step: {} is under a second", source.step)));
    }
    let end = crate::prometheus::end(source.end.as_deref(), step)?;
    let name = source
        .save_trace
        .as_deref()
        .and_then(|p| p.file_name())
        .map_or("prometheus".to_string(), |n| {
            n.to_string_lossy().into_owned()
        });
    let mut access = leadtime_prometheus::Access::default();
    source.connection.clone().apply(&mut access);
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("reading prometheus {bar:30} {pos}/{len} pages {elapsed}")
            .expect("a valid template"),
    );
    let ask = crate::prometheus::Ask {
        url,
        access,
        query,
        end,
        range,
        step,
        name: &name,
    };
    let trace = crate::prometheus::trace(&ask, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    if let Some(note) = crate::prometheus::shortfall(&ask, &trace) {
        tracing::warn!("{note}");
    }
    let days = (trace.end_ms() - trace.start_ms) as f64 / 86_400_000.0;
    if days < 2.0 {
        tracing::warn!(
            "{days:.1} days of history: under the two days the predictive policy learns a daily \
             cycle from, so it answers reactively on this workload"
        );
    }
    if let Some(path) = &source.save_trace {
        crate::prometheus::save(&trace, path)?;
    }
    let ready = source
        .ready_query
        .as_deref()
        .map(|q| crate::prometheus::ready_times(&ask, q))
        .transpose()?;
    Ok((trace, ready))
}

/// What a run needs, from the flags: the trace, the simulated cluster and the jobs.
pub struct Prepared {
    /// The trace, as read (and resampled).
    pub trace: Trace,
    /// The simulated cluster.
    pub config: Config,
    /// One job per `--policy`.
    pub jobs: Vec<Job>,
}

/// Reads the trace and turns the flags into a configuration and jobs.
pub fn prepare(args: &Args) -> Result<Prepared, Failure> {
    let columns = Columns {
        time: args.time_column.clone(),
        value: args.value_column.clone(),
    };
    let resample = args
        .resample
        .as_deref()
        .map(|r| Resample::parse(r).map_err(|e| bad(format!("--resample: {e}"))))
        .transpose()?;
    let (trace, observed) = match &args.trace {
        Some(path) => (
            Trace::from_file_resampled(path, &columns, resample).map_err(|e| bad(e.to_string()))?,
            None,
        ),
        #[cfg(feature = "prometheus")]
        None => from_prometheus(&args.source)?,
        #[cfg(not(feature = "prometheus"))]
        None => return Err(bad("give --trace")),
    };
    let ready = match (&args.ready_time, &args.ready_time_dist, &args.ready_times) {
        _ if observed.is_some() => ReadyTimes::Samples(observed.unwrap_or_default()),
        (Some(t), _, _) => {
            ReadyTimes::Fixed(parse_seconds(t).map_err(|e| bad(format!("--ready-time: {e}")))?)
        }
        (_, Some(d), _) => {
            ReadyTimes::parse_dist(d).map_err(|e| bad(format!("--ready-time-dist: {e}")))?
        }
        (_, _, Some(path)) => ReadyTimes::from_file(path).map_err(bad)?,
        _ => {
            return Err(bad(
                "give one of --ready-time, --ready-time-dist, --ready-times (or --ready-query)",
            ))
        }
    };
    let capacity = match (
        args.capacity_per_pod,
        args.peak_pods,
        &args.pods_at_quantile,
    ) {
        (Some(c), _, _) => c,
        (None, Some(n), _) => simulate::capacity_for_peak(&trace, n),
        (None, None, Some(qn)) => {
            let (q, n) = quantile_pods(qn)?;
            simulate::capacity_for_quantile(&trace, q, n).ok_or_else(|| {
                bad(format!(
                    "--pods-at-quantile {qn}: the trace's {q}-quantile is 0; take a higher \
                     quantile or give --capacity-per-pod"
                ))
            })?
        }
        (None, None, None) => {
            return Err(bad(
                "give --capacity-per-pod, --peak-pods or --pods-at-quantile",
            ))
        }
    };
    let behavior = match &args.behavior {
        Some(path) => {
            input::check_nesting(path)?;
            Behavior::from_file(path).map_err(|e| bad(e.to_string()))?
        }
        None => Behavior::default(),
    };
    let mut config = Config::new(capacity, ready);
    config.interval_ms = args
        .interval
        .as_deref()
        .map(|i| seconds_ms("interval", i))
        .transpose()?;
    config.seed = args.seed;
    config.lookback_ms = seconds_ms("lookback", &args.lookback)?;
    config.warmup_ms = seconds_ms("warmup", &args.warmup)?;
    config.target_utilization = args.target_utilization;
    config.min_replicas = args.min_replicas;
    config.max_replicas = args.max_replicas;
    config.behavior = behavior;
    config.record_series = args.report.is_some();
    config.schedule = args
        .schedule
        .as_deref()
        .map(|path| {
            input::check_nesting(path)?;
            simulate::Schedule::from_file(path).map_err(|e| bad(e.to_string()))
        })
        .transpose()?;

    let jobs: Vec<Job> = args
        .policies
        .iter()
        .map(|spec| {
            let (label, policy) = job_name(spec)?;
            let mut flags = params_for(&label, &args.params);
            if label != policy {
                // The policy's own scoped flags too (unscoped ones are in already).
                let own: Vec<String> = params_for(policy, &args.params)
                    .into_iter()
                    .filter(|f| !flags.contains(f))
                    .collect();
                flags.extend(own);
            }
            Ok(Job {
                label,
                params: input::parse_params(&flags)?,
                ..Job::new(policy)
            })
        })
        .collect::<Result<_, Failure>>()?;
    // With a schedule: each policy without it and with it, side by side (its cost).
    let jobs = if config.schedule.is_some() {
        simulate::with_and_without_schedule(jobs)
    } else {
        jobs
    };
    Ok(Prepared {
        trace,
        config,
        jobs,
    })
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let Prepared {
        trace,
        config,
        jobs,
    } = prepare(&args)?;
    let capacity = config.capacity_per_pod;
    let engine = super::engine(&Limits::default())?;
    let steps_per_job = decisions(&trace, &config);
    let sweep_jobs: Vec<Job> = if args.sweep {
        jobs.iter().flat_map(simulate::sweep_jobs).collect()
    } else {
        Vec::new()
    };
    let total = steps_per_job * (jobs.len() + sweep_jobs.len()) as u64;
    let bar = if !args.json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} backtest [{elapsed_precise}] {wide_bar} {pos}/{len} decisions ({eta})",
            )
            .expect("a valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress = |n: u64| bar.inc(n);
    let backtest = simulate::run(&engine, &trace, &config, &jobs, &progress)?;
    let sweep = if args.sweep {
        let mut sweep_config = config.clone();
        sweep_config.record_series = false;
        let mut s = simulate::run(&engine, &trace, &sweep_config, &sweep_jobs, &progress)?;
        s.results.pop(); // the oracle, already in the table
        Some(s.results)
    } else {
        None
    };
    bar.finish_and_clear();
    let matched = sweep
        .as_deref()
        .map(|s| simulate::matched(&backtest.results, s));

    if args.json {
        let out = Output {
            trace: &trace.name,
            steps: backtest.steps,
            results: &backtest.results,
            sweep: sweep.as_deref(),
            matched: matched.as_deref(),
        };
        let json =
            serde_json::to_string(&out).map_err(|e| Failure::new("internal", e.to_string()))?;
        println!("{json}");
    } else {
        println!(
            "{}: {} decisions every {}s, {:.4} demand per pod, ready time {}",
            trace.name,
            backtest.steps,
            config.interval_ms.unwrap_or(trace.step_ms) / 1000,
            capacity,
            config.ready.describe()
        );
        print!("{}", report::table(&backtest.results));
        if let Some(s) = &sweep {
            println!("\nsweep:");
            print!("{}", report::table(s));
        }
        if let Some(events) = report::events_text(&backtest.results) {
            println!("\nwhile planned events' load was under way:");
            print!("{events}");
        }
        if let Some(m) = &matched {
            println!("\nat equal cost:");
            print!("{}", report::matched_text(m));
        }
    }
    if let Some(path) = &args.report {
        let html = report::html(&report::Input {
            trace: &trace,
            config: &config,
            backtest: &backtest,
            sweep: sweep.as_deref(),
            matched: matched.as_deref(),
        });
        std::fs::write(path, html)
            .map_err(|e| Failure::new("io", format!("writing {}: {e}", path.display())))?;
        if !args.json {
            eprintln!("report: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn decisions(trace: &Trace, config: &Config) -> u64 {
    let interval = config.interval_ms.unwrap_or(trace.step_ms).max(1);
    ((trace.end_ms() - trace.start_ms + interval - 1) / interval) as u64
}

/// The row label and the policy of a `--policy` value: `NAME=POLICY`, a file by its stem, or a
/// built-in by its name.
fn job_name(spec: &str) -> Result<(String, &str), Failure> {
    if let Some((name, policy)) = spec.split_once('=') {
        if name.is_empty() || policy.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad(format!(
                "--policy `{spec}`: a name must be NAME=POLICY, the name without spaces"
            )));
        }
        return Ok((name.to_string(), policy));
    }
    let path = std::path::Path::new(spec);
    let is_file = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("wasm" | "wat")
    );
    let label = match path.file_stem().and_then(|s| s.to_str()) {
        Some(stem) if is_file && !stem.is_empty() => stem.replace(char::is_whitespace, "-"),
        _ => spec.to_string(),
    };
    Ok((label, spec))
}

/// The `--param` flags that apply to `policy`: unscoped ones, and `policy:name=value` ones
/// without their scope. Scoping matters because each policy refuses params it does not know.
fn params_for(policy: &str, flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter_map(|flag| {
            // A flag without `=` passes through, so that parse_params reports it.
            let name = flag.split_once('=').map_or(flag.as_str(), |(n, _)| n);
            match name.split_once(':') {
                Some((scope, _)) if scope == policy => Some(flag[scope.len() + 1..].to_string()),
                Some(_) => None,
                None => Some(flag.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{job_name, params_for, quantile_pods};

    #[test]
    fn rows_are_named_by_file_stem_or_given_name() {
        assert_eq!(
            job_name("build/policy.wasm").unwrap(),
            ("policy".to_string(), "build/policy.wasm")
        );
        assert_eq!(job_name("hpa").unwrap(), ("hpa".to_string(), "hpa"));
        assert_eq!(
            job_name("phpa=holt-winters").unwrap(),
            ("phpa".to_string(), "holt-winters")
        );
        assert!(job_name("=hpa").is_err());
    }

    #[test]
    fn quantile_pods_are_checked() {
        assert_eq!(quantile_pods("0.99:20").unwrap(), (0.99, 20));
        for bad in ["0.99", "1.5:20", "0:3", "0.9:0", "x:2", "0.9:-1"] {
            let e = quantile_pods(bad).unwrap_err();
            assert!(
                format!("{e:?}").contains("--pods-at-quantile"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn params_are_scoped_to_their_policy() {
        let flags: Vec<String> = [
            "quantile=0.9",
            "predictive:headroom=0.1",
            "hpa:tolerance=0.2",
            "bad",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            params_for("predictive", &flags),
            ["quantile=0.9", "headroom=0.1", "bad"]
        );
        assert_eq!(
            params_for("hpa", &flags),
            ["quantile=0.9", "tolerance=0.2", "bad"]
        );
    }
}
