//! `leadtime evaluate`: the scoreboard over a corpus of traces. Each trace is backtested with its
//! own flags from the corpus manifest; each policy's under-provisioned time is read at the cost of
//! the reference policy's default run (the predictive policy), on its sweep curve.

use crate::cmd::backtest::{self, Prepared};
use crate::failure::Failure;
use clap::Parser;
use leadtime::Limits;
use leadtime_backtest::scoreboard::{self, Line, Reading};
use leadtime_backtest::{self as simulate, Job};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The manifest's file name in the corpus directory.
pub const MANIFEST: &str = "corpus.txt";

/// The policies of the scoreboard when no `--policy` is given: the product, the HPA and the
/// peers a user would otherwise deploy (PHPA's Holt-Winters at its documented constants too).
pub const DEFAULT_POLICIES: &[&str] = &[
    "predictive",
    "hpa",
    "holt-winters",
    "phpa=holt-winters",
    "crane-dsp",
];
/// The params of [`DEFAULT_POLICIES`]: PHPA's documented example constants.
pub const DEFAULT_PARAMS: &[&str] = &["phpa:alpha=0.9", "phpa:beta=0.9", "phpa:gamma=0.9"];

/// Arguments of `leadtime evaluate`.
#[derive(clap::Args)]
pub struct Args {
    /// The corpus: a directory with the traces and `corpus.txt`, one trace a line followed by
    /// its `leadtime backtest` flags (`#` starts a comment).
    #[arg(long)]
    corpus: PathBuf,
    /// Only the traces whose file name contains this; repeatable.
    #[arg(long = "only")]
    only: Vec<String>,
    /// A policy (as for `backtest --policy`); repeatable; the first is the reference. Default:
    /// predictive, hpa, holt-winters, phpa=holt-winters (alpha=beta=gamma=0.9), crane-dsp.
    #[arg(long = "policy")]
    policies: Vec<String>,
    /// A policy parameter, as for `backtest --param`; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML report for each trace into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// One manifest line: the trace and its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Line in the manifest, from 1.
    pub line: usize,
    /// The trace file, relative to the corpus.
    pub trace: String,
    /// Its `backtest` flags.
    pub flags: Vec<String>,
}

/// Reads a manifest: `name`'s text, errors naming the line.
pub fn parse_manifest(text: &str, name: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace().map(str::to_string);
        let trace = words.next().expect("a non-empty line has a word");
        if trace.starts_with('-') {
            return Err(format!(
                "{name}:{}: a line starts with the trace file, then its flags; got `{trace}`",
                i + 1
            ));
        }
        let flags: Vec<String> = words.collect();
        for f in &flags {
            if ["--policy", "--sweep", "--json", "--report", "--trace"].contains(&f.as_str()) {
                return Err(format!(
                    "{name}:{}: `{f}` is the scoreboard's to set, not a trace's",
                    i + 1
                ));
            }
        }
        out.push(Entry {
            line: i + 1,
            trace,
            flags,
        });
    }
    if out.is_empty() {
        return Err(format!("{name}: lists no trace"));
    }
    Ok(out)
}

#[derive(Parser)]
#[command(no_binary_name = true)]
struct Flags {
    #[command(flatten)]
    args: backtest::Args,
}

/// What `--json` prints; the field names are a contract.
#[derive(Serialize)]
struct Output<'a> {
    reference: &'a str,
    traces: &'a [Line],
    /// Per policy, the mean under-provisioned time at the reference cost over the traces.
    mean_under_provisioned_pct: Vec<Total>,
}

#[derive(Serialize)]
struct Total {
    policy: String,
    mean_under_provisioned_pct: f64,
}

fn bad(detail: impl Into<String>) -> Failure {
    Failure::new("bad-request", detail)
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let manifest = args.corpus.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| bad(format!("{}: {e}", manifest.display())))?;
    let entries = parse_manifest(&text, &manifest.display().to_string()).map_err(bad)?;
    let (policies, mut params): (Vec<String>, Vec<String>) = if args.policies.is_empty() {
        (
            DEFAULT_POLICIES.iter().map(|s| s.to_string()).collect(),
            DEFAULT_PARAMS.iter().map(|s| s.to_string()).collect(),
        )
    } else {
        (args.policies.clone(), Vec::new())
    };
    params.extend(args.params.iter().cloned());
    let engine = super::engine(&Limits::default())?;
    let mut lines = Vec::new();
    let mut reference = String::new();
    for entry in entries
        .iter()
        .filter(|e| args.only.is_empty() || args.only.iter().any(|o| e.trace.contains(o)))
    {
        let prepared = prepare(
            &args.corpus,
            &manifest,
            entry,
            &policies,
            &params,
            args.report.is_some(),
        )?;
        reference = prepared.jobs[0].label.clone();
        if !args.json {
            eprintln!(
                "{}: running {} policies and their sweeps",
                entry.trace,
                prepared.jobs.len()
            );
        }
        let line = score(&engine, &prepared, args.report.as_deref())?;
        if !args.json {
            println!("{}", row_text(&line));
        }
        lines.push(line);
    }
    let totals = scoreboard::totals(&lines);
    if args.json {
        let out = Output {
            reference: &reference,
            traces: &lines,
            mean_under_provisioned_pct: totals
                .into_iter()
                .map(|(policy, m)| Total {
                    policy,
                    mean_under_provisioned_pct: m,
                })
                .collect(),
        };
        let json =
            serde_json::to_string(&out).map_err(|e| Failure::new("internal", e.to_string()))?;
        println!("{json}");
    } else {
        println!("\n{}", table(&lines, &totals));
    }
    Ok(ExitCode::SUCCESS)
}

fn prepare(
    corpus: &Path,
    manifest: &Path,
    entry: &Entry,
    policies: &[String],
    params: &[String],
    record: bool,
) -> Result<Prepared, Failure> {
    let mut argv: Vec<String> = vec![
        "--trace".into(),
        corpus.join(&entry.trace).display().to_string(),
    ];
    // File flags name files relative to the corpus.
    let mut file_next = false;
    for f in &entry.flags {
        let value = if file_next && Path::new(f).is_relative() {
            corpus.join(f).display().to_string()
        } else {
            f.clone()
        };
        file_next = ["--ready-times", "--behavior"].contains(&f.as_str());
        argv.push(value);
    }
    for p in policies {
        argv.extend(["--policy".to_string(), p.clone()]);
    }
    for p in params {
        argv.extend(["--param".to_string(), p.clone()]);
    }
    let where_ = format!("{}:{} ({})", manifest.display(), entry.line, entry.trace);
    let flags = Flags::try_parse_from(&argv)
        .map_err(|e| bad(format!("{where_}: {}", e.render().to_string().trim())))?;
    let mut prepared =
        backtest::prepare(&flags.args).map_err(|f| bad(format!("{where_}: {}", f.detail)))?;
    prepared.config.record_series = record;
    Ok(prepared)
}

fn score(engine: &leadtime::Engine, p: &Prepared, report: Option<&Path>) -> Result<Line, Failure> {
    let reference = &p.jobs[0];
    let main = simulate::run(engine, &p.trace, &p.config, &p.jobs, &|_: u64| {})?;
    // The reference needs no curve: its default row is the point every other curve is read at.
    let sweep_jobs: Vec<Job> = p.jobs[1..].iter().flat_map(simulate::sweep_jobs).collect();
    let mut config = p.config.clone();
    config.record_series = false;
    let mut sweep = simulate::run(engine, &p.trace, &config, &sweep_jobs, &|_: u64| {})?;
    sweep.results.pop(); // the oracle
    if let Some(dir) = report {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::new("io", format!("creating {}: {e}", dir.display())))?;
        let matched = simulate::matched(&main.results, &sweep.results);
        let html = leadtime_backtest::report::html(&leadtime_backtest::report::Input {
            trace: &p.trace,
            config: &p.config,
            backtest: &main,
            sweep: Some(&sweep.results),
            matched: Some(&matched),
        });
        let path = dir.join(format!("{}.html", p.trace.name));
        std::fs::write(&path, html)
            .map_err(|e| Failure::new("io", format!("writing {}: {e}", path.display())))?;
    }
    scoreboard::line(
        &p.trace.name,
        &reference.label,
        &main.results,
        &sweep.results,
    )
    .ok_or_else(|| Failure::new("internal", "the reference row is missing"))
}

fn cell(l: &Line, policy: &str) -> String {
    match l.score(policy) {
        None => "-".into(),
        Some(s) => {
            let mark = match s.reading {
                Reading::AtLeast => ">=",
                Reading::AtMost => "<=",
                Reading::Own | Reading::Exact => "",
            };
            format!("{mark}{:.2}", s.under_provisioned_pct)
        }
    }
}

fn row_text(l: &Line) -> String {
    let parts: Vec<String> = l
        .scores
        .iter()
        .map(|s| format!("{} {}", s.policy, cell(l, &s.policy)))
        .collect();
    format!(
        "{} at cost {:.3}: {}",
        l.trace,
        l.cost_vs_oracle,
        parts.join(", ")
    )
}

/// The scoreboard as a Markdown table: under-provisioned time (%) at the reference's cost.
pub fn table(lines: &[Line], totals: &[(String, f64)]) -> String {
    let policies: Vec<&str> = totals.iter().map(|(p, _)| p.as_str()).collect();
    let mut out = String::from("| trace | cost vs oracle |");
    for p in &policies {
        out.push_str(&format!(" {p} |"));
    }
    out.push_str(&format!(
        " {} / hpa |\n|---|---|",
        policies.first().unwrap_or(&"")
    ));
    for _ in &policies {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for l in lines {
        out.push_str(&format!("| {} | {:.3} |", l.trace, l.cost_vs_oracle));
        for p in &policies {
            out.push_str(&format!(" {} |", cell(l, p)));
        }
        let ratio = match (l.scores.first(), l.score("hpa")) {
            (Some(me), Some(h)) if h.under_provisioned_pct > 0.0 => {
                format!("{:.2}x", me.under_provisioned_pct / h.under_provisioned_pct)
            }
            _ => "-".into(),
        };
        out.push_str(&format!(" {ratio} |\n"));
    }
    out.push_str("| **mean** | |");
    for (_, m) in totals {
        out.push_str(&format!(" {m:.2} |"));
    }
    out.push_str(" |\n");
    out
}

#[cfg(test)]
mod tests {
    use super::parse_manifest;

    #[test]
    fn manifest_lines_are_a_trace_and_its_flags() {
        let text = "# corpus\n\nnyc.csv --peak-pods 20 --ready-time 5m # daily\nb.csv --capacity-per-pod 3\n";
        let e = parse_manifest(text, "corpus.txt").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].line, 3);
        assert_eq!(e[0].flags, ["--peak-pods", "20", "--ready-time", "5m"]);
        let err = parse_manifest("a.csv --sweep\n", "corpus.txt").unwrap_err();
        assert!(
            err.contains("corpus.txt:1") && err.contains("--sweep"),
            "{err}"
        );
        let err = parse_manifest("--peak-pods 3\n", "corpus.txt").unwrap_err();
        assert!(err.contains("corpus.txt:1"), "{err}");
        assert!(parse_manifest("# nothing\n", "c").is_err());
    }
}
