//! `leadtime backtest` end to end: the `--json` contract, errors with line numbers, the report.

mod common;

use common::*;
use std::path::PathBuf;

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leadtime-backtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const FIELDS: [&str; 12] = [
    "policy",
    "under_provisioned_pct",
    "unmet_demand_pct",
    "pod_hours",
    "oracle_pod_hours",
    "cost_vs_oracle",
    "scale_events",
    "mean_replicas",
    "peak_replicas",
    "policy_us_p50",
    "policy_us_p99",
    "policy_errors",
];

#[test]
fn json_has_the_contracted_fields() {
    let trace = repo("testdata/traces/art_daily_small_noise.csv");
    let out = leadtime(&[
        "backtest",
        "--policy",
        "target-tracking",
        "--policy",
        "hpa",
        "--trace",
        trace.to_str().unwrap(),
        "--ready-time",
        "5m",
        "--peak-pods",
        "20",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "quiet under --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["trace"], "art_daily_small_noise.csv");
    assert_eq!(v["steps"], 4032);
    let results = v["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["target-tracking", "hpa", "oracle"]);
    for r in results {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        for f in FIELDS {
            assert!(keys.contains(&f), "missing `{f}` in {r}");
        }
        assert_eq!(keys.len(), FIELDS.len(), "{r}");
        assert_eq!(r["oracle_pod_hours"], results[2]["pod_hours"]);
    }
    assert_eq!(results[2]["under_provisioned_pct"], 0.0);
}

#[test]
fn a_bad_trace_fails_with_its_line() {
    let bad = temp(
        "bad.csv",
        "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,x\n",
    );
    let out = leadtime(&[
        "backtest",
        "--policy",
        "hpa",
        "--trace",
        bad.to_str().unwrap(),
        "--ready-time",
        "1m",
        "--capacity-per-pod",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv:3:") && err.contains("value `x` is not a number"),
        "{err}"
    );
    let samples = temp("ready.csv", "seconds\n30\n45\nslow\n");
    let good = temp("good.csv", "ts,value\n0,1\n60,2\n120,3\n");
    let out = leadtime(&[
        "backtest",
        "--policy",
        "hpa",
        "--trace",
        good.to_str().unwrap(),
        "--ready-times",
        samples.to_str().unwrap(),
        "--capacity-per-pod",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ready.csv:4:") && err.contains("`slow`"),
        "{err}"
    );
}

#[test]
fn the_report_is_self_contained_with_its_charts() {
    let trace = repo("testdata/traces/art_daily_small_noise.csv");
    let report = temp("report.html", "");
    let out = leadtime(&[
        "backtest",
        "--policy",
        "target-tracking",
        "--trace",
        trace.to_str().unwrap(),
        "--ready-time-dist",
        "lognormal:2m,5m",
        "--peak-pods",
        "20",
        "--sweep",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("oracle") && table.contains("sweep:"),
        "{table}"
    );
    assert!(table.contains("target-tracking headroom=0.2"), "{table}");
    let html = std::fs::read_to_string(&report).unwrap();
    // 14 days: a Pareto chart, then two charts per week.
    assert_eq!(html.matches("<svg").count(), 1 + 2 * 2, "SVG charts");
    for needle in [
        "Under-provisioned time vs cost",
        "Demand and ready capacity",
        "Replicas (ready or starting)",
        "<table>",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    for external in ["<script", "<link", "src=", "href=", "url("] {
        assert!(!html.contains(external), "report loads {external}");
    }
}

#[test]
fn an_irregular_export_is_resampled_and_sized_at_a_quantile() {
    let trace = repo("testdata/corpus/occupancy_t4013.csv");
    let base = [
        "backtest",
        "--policy",
        "hpa",
        "--trace",
        trace.to_str().unwrap(),
        "--ready-time",
        "5m",
    ];
    let refused = leadtime(&[&base[..], &["--peak-pods", "20"]].concat());
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("occupancy_t4013.csv:") && err.contains("--resample"),
        "{err}"
    );
    let out = leadtime(
        &[
            &base[..],
            &[
                "--resample",
                "5m",
                "--pods-at-quantile",
                "0.99:20",
                "--json",
            ],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["steps"].as_u64().unwrap() > 4000, "{v}");
    let bad = leadtime(
        &[
            &base[..],
            &["--resample", "5m", "--pods-at-quantile", "99:20"],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("--pods-at-quantile"), "{err}");
}

#[test]
fn evaluate_scores_each_policy_at_the_references_cost() {
    let dir = std::env::temp_dir().join(format!("leadtime-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = repo("testdata/traces/art_daily_small_noise.csv");
    std::fs::copy(&src, dir.join("a.csv")).unwrap();
    std::fs::write(
        dir.join("corpus.txt"),
        "# one trace\na.csv --peak-pods 20 --ready-time 5m --warmup 2d\n",
    )
    .unwrap();
    let out = leadtime(&[
        "evaluate",
        "--corpus",
        dir.to_str().unwrap(),
        "--policy",
        "target-tracking",
        "--policy",
        "hpa",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reference"], "target-tracking");
    let t = &v["traces"][0];
    assert_eq!(t["trace"], "a.csv");
    assert_eq!(t["scores"][0]["policy"], "target-tracking");
    assert_eq!(t["scores"][0]["reading"], "own");
    assert_eq!(t["scores"][1]["policy"], "hpa");
    assert!(t["scores"][1]["under_provisioned_pct"].is_number());
    // A bad line is named.
    std::fs::write(dir.join("corpus.txt"), "a.csv --peak-pods 20\n").unwrap();
    let out = leadtime(&["evaluate", "--corpus", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("corpus.txt:1"),
        "{err}"
    );
}
