//! `leadtime fleet`: every workload of a cluster backtested from its own Prometheus history,
//! each against the HPA at equal cost, and the fleet sorted by what predictive scaling would
//! change.

mod objects;

use crate::failure::Failure;
use crate::prometheus::{Ask, Connection};
use indicatif::{ProgressBar, ProgressStyle};
use leadtime::Limits;
use leadtime_backtest::{self as simulate, parse_seconds, Config, Job, ReadyTimes};
use objects::{Skipped, Workload};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `leadtime fleet`.
#[derive(clap::Args)]
pub struct Args {
    /// KEDA ScaledObjects as `kubectl get scaledobjects -A -o yaml` prints them, or a YAML list
    /// of `{name, query, targetPerPod, readySeconds, min, max}`: files, or directories of
    /// `.yaml`/`.yml` files.
    #[arg(required = true)]
    objects: Vec<PathBuf>,
    /// The cluster's Prometheus (base URL), read for every workload's load.
    #[arg(long)]
    prometheus: String,
    #[command(flatten)]
    connection: Connection,
    /// The scaler's config file: its `defaults` stand under every leadtime trigger's metadata,
    /// as in `leadtime serve`; without it, the shipped config's (`policy: predictive`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// How much history to read per workload, ending at --end.
    #[arg(long, default_value = "14d")]
    range: String,
    /// Seconds between points.
    #[arg(long, default_value = "1m")]
    step: String,
    /// The last point: RFC 3339 or Unix seconds; default: now, to the step.
    #[arg(long)]
    end: Option<String>,
    /// Ready time of a workload whose trigger gives none (`readySeconds`, `readyTimeQuery`).
    #[arg(long, default_value = "5m")]
    ready_time: String,
    /// History fed before scoring starts (the predictive policy learns a daily cycle from two
    /// days).
    #[arg(long, default_value = "2d")]
    warmup: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write an HTML report into this directory: `index.html` with the fleet's table, linking
    /// each workload's own backtest report (charts over time, the Pareto chart).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// One workload's outcome.
#[derive(Serialize)]
struct Row {
    workload: String,
    source: &'static str,
    policy: String,
    ready: String,
    days: f64,
    /// The policy's under-provisioned time, percent.
    under_provisioned_pct: f64,
    /// The HPA's under-provisioned time at the policy's cost (its target swept), percent;
    /// `None` when the policy's cost is outside the HPA's curve.
    hpa_at_equal_cost_pct: Option<f64>,
    /// The HPA at its target (what runs today), percent.
    hpa_under_provisioned_pct: f64,
    /// The policy's pod-hours against the HPA's at its target, percent change.
    pod_hours_change_pct: f64,
    /// `helps`, `hurts`, `even` or `outside` (no HPA point at its cost).
    verdict: &'static str,
    /// What the reader should know (too little history for a daily cycle...).
    notes: Vec<String>,
    /// Its report's file name in the --report directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<String>,
}

/// A workload that could not be backtested, and why.
#[derive(Serialize)]
struct Failed {
    workload: String,
    error: String,
}

#[derive(Serialize)]
struct Output<'a> {
    workloads: &'a [Row],
    failed: &'a [Failed],
    skipped: &'a [Skipped],
}

/// Runs the fleet.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let bad = |m: String| Failure::new("bad-request", m);
    let defaults = match &args.config {
        Some(path) => {
            leadtime_serve::Config::from_file(path)
                .map_err(|e| Failure::new("config", e.to_string()))?
                .settings
                .defaults
        }
        // As the shipped scaler config (serve/deploy/scaler.yaml) sets them: a trigger that
        // names no policy runs the predictive one.
        None => BTreeMap::from([("policy".to_string(), "predictive".to_string())]),
    };
    let mut workloads = Vec::new();
    let mut skipped = Vec::new();
    for path in files(&args.objects)? {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::new("io", format!("{}: {e}", path.display())))?;
        let (w, s) = objects::read(&text, &path.display().to_string(), &defaults).map_err(bad)?;
        workloads.extend(w);
        skipped.extend(s);
    }
    let seconds = |flag: &str, text: &str| {
        parse_seconds(text).map_err(|e| Failure::new("bad-request", format!("{flag}: {e}")))
    };
    let range = seconds("--range", &args.range)?.round() as i64;
    let step = seconds("--step", &args.step)?.round() as i64;
    if step < 1 {
        return Err(bad(format!("--step: {} is under a second", args.step)));
    }
    let fallback_ready = seconds("--ready-time", &args.ready_time)?;
    let warmup_ms = (seconds("--warmup", &args.warmup)? * 1000.0) as i64;
    let end = crate::prometheus::end(args.end.as_deref(), step)?;
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::new("io", format!("--report {}: {e}", dir.display())))?;
    }
    let mut access = leadtime_prometheus::Access::default();
    args.connection.clone().apply(&mut access);
    let engine = super::engine(&Limits::default())?;

    let bar = if std::io::stderr().is_terminal() && !args.json {
        ProgressBar::new(workloads.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} workloads {elapsed} {msg}")
            .expect("a valid template"),
    );
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for w in &workloads {
        bar.set_message(w.name.clone());
        let ask = Ask {
            url: &args.prometheus,
            access: access.clone(),
            query: &w.query,
            end,
            range,
            step,
            name: &w.name,
        };
        match backtest(
            &engine,
            &ask,
            w,
            fallback_ready,
            warmup_ms,
            args.report.as_deref(),
        ) {
            Ok(row) => rows.push(row),
            Err(e) => failed.push(Failed {
                workload: w.name.clone(),
                error: e.detail,
            }),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // What predictive would change most first: the largest cut in under-provisioned time at
    // equal cost; workloads outside the HPA's curve last.
    rows.sort_by(|a, b| gain(b).total_cmp(&gain(a)));
    if args.json {
        let out = Output {
            workloads: &rows,
            failed: &failed,
            skipped: &skipped,
        };
        println!(
            "{}",
            serde_json::to_string(&out).map_err(|e| Failure::new("internal", e.to_string()))?
        );
    } else {
        print!("{}", table(&rows, &failed, &skipped));
    }
    if let Some(dir) = &args.report {
        let path = dir.join("index.html");
        std::fs::write(&path, index_html(&rows, &failed, &skipped))
            .map_err(|e| Failure::new("io", format!("writing {}: {e}", path.display())))?;
        if !args.json {
            eprintln!("report: {}", path.display());
        }
    }
    Ok(if rows.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Percentage points of under-provisioned time the policy saves against the HPA at equal cost.
fn gain(row: &Row) -> f64 {
    row.hpa_at_equal_cost_pct
        .map_or(f64::NEG_INFINITY, |h| h - row.under_provisioned_pct)
}

/// The files behind `paths`: each file, and a directory's `.yaml`/`.yml` files, sorted.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Failure::new("io", format!("{}: {e}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// One workload: its trace and ready times from Prometheus, its policy and the HPA swept, the
/// comparison at equal cost.
fn backtest(
    engine: &leadtime::Engine,
    ask: &Ask<'_>,
    w: &Workload,
    fallback_ready: f64,
    warmup_ms: i64,
    report: Option<&std::path::Path>,
) -> Result<Row, Failure> {
    let trace = crate::prometheus::trace(ask, &mut |_, _| {})?;
    let (ready, ready_text) = match (&w.ready_query, w.ready_seconds) {
        (Some(q), _) => {
            let samples = crate::prometheus::ready_times(ask, q)?;
            let text = format!("{} observed", samples.len());
            (ReadyTimes::Samples(samples), text)
        }
        (None, Some(s)) => (ReadyTimes::Fixed(s), format!("{s}s")),
        (None, None) => (
            ReadyTimes::Fixed(fallback_ready),
            format!("{fallback_ready}s (--ready-time)"),
        ),
    };
    let mut config = Config::new(w.target_per_pod, ready);
    config.min_replicas = w.min;
    config.max_replicas = w.max;
    let span_ms = trace.end_ms() - trace.start_ms;
    config.warmup_ms = warmup_ms.min(span_ms / 2);
    let mut notes = Vec::new();
    if (span_ms as f64) < 2.0 * 86_400_000.0 {
        notes.push(format!(
            "{:.1} days of history: under the two days the predictive policy learns a daily \
             cycle from, so it answers reactively here",
            span_ms as f64 / 86_400_000.0
        ));
    }
    if let Some(note) = crate::prometheus::shortfall(ask, &trace) {
        notes.push(note);
    }
    if trace.gaps > 0 {
        notes.push(format!(
            "{} points missing in Prometheus (gaps)",
            trace.gaps
        ));
    }
    let policy = Job {
        label: w.policy.clone(),
        params: w.params.clone(),
        ..Job::new(&w.policy)
    };
    let jobs = vec![policy.clone(), Job::new("hpa")];
    let err = |e: leadtime::Error| Failure::new(e.kind().as_str(), e.report());
    let main = simulate::run(engine, &trace, &config, &jobs, &|_: u64| {}).map_err(err)?;
    let sweep_jobs: Vec<Job> = jobs.iter().flat_map(simulate::sweep_jobs).collect();
    let mut sweep_config = config.clone();
    sweep_config.record_series = false;
    let mut sweep =
        simulate::run(engine, &trace, &sweep_config, &sweep_jobs, &|_: u64| {}).map_err(err)?;
    sweep.results.pop(); // the oracle
    let matched = simulate::matched(&main.results, &sweep.results);
    let mine = &main.results[0];
    let hpa = &main.results[1];
    let at_cost = matched
        .iter()
        .find(|m| m.policy == w.policy && m.against == "hpa")
        .and_then(|m| m.against_under_provisioned_pct);
    let report = match report {
        Some(dir) => {
            // A file name from the workload's name: its letters, digits, `-` and `.` only.
            let file: String = w
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
                + ".html";
            let html = simulate::report::html(&simulate::report::Input {
                trace: &trace,
                config: &config,
                backtest: &main,
                sweep: Some(&sweep.results),
                matched: Some(&matched),
            });
            let path = dir.join(&file);
            std::fs::write(&path, html)
                .map_err(|e| Failure::new("io", format!("writing {}: {e}", path.display())))?;
            Some(file)
        }
        None => None,
    };
    let verdict = match at_cost {
        None => "outside",
        Some(h) if (h - mine.under_provisioned_pct).abs() < 0.05 => "even",
        Some(h) if mine.under_provisioned_pct < h => "helps",
        Some(_) => "hurts",
    };
    Ok(Row {
        workload: w.name.clone(),
        source: w.source,
        policy: w.policy.clone(),
        ready: ready_text,
        days: span_ms as f64 / 86_400_000.0,
        under_provisioned_pct: mine.under_provisioned_pct,
        hpa_at_equal_cost_pct: at_cost,
        hpa_under_provisioned_pct: hpa.under_provisioned_pct,
        pod_hours_change_pct: if hpa.pod_hours > 0.0 {
            100.0 * (mine.pod_hours - hpa.pod_hours) / hpa.pod_hours
        } else {
            0.0
        },
        verdict,
        notes,
        report,
    })
}

/// The fleet report's `index.html`: the table, each workload linked to its own report, and the
/// warnings.
fn index_html(rows: &[Row], failed: &[Failed], skipped: &[Skipped]) -> String {
    use simulate::report::escape;
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>leadtime fleet</title>\
         <style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}\
         td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}\
         td:first-child,th:first-child{text-align:left}.helps{color:#1a7f37}.hurts{color:#c62828}\
         </style></head><body>\n<h1>leadtime fleet</h1>\n<p>Each workload's policy against the HPA \
         at the same cost (the HPA's target swept, its curve read at the policy's pod-hours), \
         largest cut in under-provisioned time first.</p>\n<table><tr><th>workload</th><th>from</th>\
         <th>days</th><th>under-prov %</th><th>HPA same cost %</th><th>HPA today %</th>\
         <th>pod-hours</th><th>verdict</th></tr>\n",
    );
    for r in rows {
        let name = match &r.report {
            Some(file) => format!("<a href=\"{}\">{}</a>", escape(file), escape(&r.workload)),
            None => escape(&r.workload),
        };
        h.push_str(&format!(
            "<tr><td>{name}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{:.2}</td>\
             <td>{:+.1}%</td><td class=\"{}\">{}</td></tr>\n",
            r.source,
            r.days,
            r.under_provisioned_pct,
            r.hpa_at_equal_cost_pct
                .map_or("-".into(), |v| format!("{v:.2}")),
            r.hpa_under_provisioned_pct,
            r.pod_hours_change_pct,
            r.verdict,
            r.verdict
        ));
    }
    h.push_str("</table>\n");
    let text = table(rows, failed, skipped);
    if let Some((_, warnings)) = text.split_once("\nwarnings:\n") {
        h.push_str("<h2>Warnings</h2>\n<ul>\n");
        for line in warnings.lines() {
            h.push_str(&format!("<li>{}</li>\n", escape(line.trim())));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// The table: one row per workload, then warnings (where it hurts first), failures and what
/// was skipped.
fn table(rows: &[Row], failed: &[Failed], skipped: &[Skipped]) -> String {
    let mut out = format!(
        "{:<32} {:<10} {:>5}  {:>12}  {:>14}  {:>12}  {:>10}  verdict\n",
        "workload", "from", "days", "under-prov %", "HPA same cost", "HPA today %", "pod-hours"
    );
    for r in rows {
        let at_cost = r
            .hpa_at_equal_cost_pct
            .map_or("-".to_string(), |h| format!("{h:.2}"));
        out.push_str(&format!(
            "{:<32} {:<10} {:>5.1}  {:>12.2}  {:>14}  {:>12.2}  {:>+9.1}%  {}\n",
            r.workload,
            r.source,
            r.days,
            r.under_provisioned_pct,
            at_cost,
            r.hpa_under_provisioned_pct,
            r.pod_hours_change_pct,
            r.verdict
        ));
    }
    let helps = rows.iter().filter(|r| r.verdict == "helps").count();
    out.push_str(&format!(
        "\n{helps} of {} workloads under-provisioned for less time than the HPA at the same cost\n",
        rows.len()
    ));
    let mut warnings: Vec<String> = rows
        .iter()
        .filter(|r| r.verdict == "hurts")
        .map(|r| {
            format!(
                "{}: {} is short {:.2}% of the time where the HPA at the same cost is short {:.2}%",
                r.workload,
                r.policy,
                r.under_provisioned_pct,
                r.hpa_at_equal_cost_pct.unwrap_or(f64::NAN)
            )
        })
        .collect();
    for r in rows {
        warnings.extend(r.notes.iter().map(|n| format!("{}: {n}", r.workload)));
    }
    warnings.extend(
        failed
            .iter()
            .map(|f| format!("{}: not backtested: {}", f.workload, f.error)),
    );
    warnings.extend(
        skipped
            .iter()
            .map(|s| format!("{} ({} trigger): skipped: {}", s.object, s.trigger, s.why)),
    );
    if !warnings.is_empty() {
        out.push_str("\nwarnings:\n");
        for w in warnings {
            out.push_str(&format!("  {w}\n"));
        }
    }
    out
}
