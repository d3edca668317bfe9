//! Hostile numbers and files on the command line (Hardening II): each ends in one clean `error:`
//! line naming the flag or the file and line, quickly, never in a panic (exit 70), an abort on a
//! huge allocation (a signal), a wrapped number or a run of hours.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any of these may take: each is refused before it sizes anything.
const DEADLINE: Duration = Duration::from_secs(60);

/// A file of this test run, under the system temp dir.
fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leadtime-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `leadtime` with `args` (no disk cache, as `common::leadtime`), killed at [`DEADLINE`];
/// the exit code (`None` for a signal) and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(args)
        .env("LEADTIME_NO_CACHE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run leadtime");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("leadtime {args:?} still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// Asserts that `args` fail cleanly: exit 1 (`codes` may allow clap's 2 too), one `error:`
/// line (clap may add its usage lines), no internal error, naming each of `names`.
fn assert_refused(args: &[&str], codes: &[i32], names: &[&str]) -> String {
    let (code, err) = run(args);
    assert!(
        code.is_some_and(|c| codes.contains(&c)),
        "{args:?}: exit {code:?}, expected one of {codes:?}: {err}"
    );
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(!err.contains("internal"), "{args:?}: {err}");
    if code == Some(1) {
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    for name in names {
        assert!(
            err.contains(name),
            "{args:?}: stderr does not name {name}: {err}"
        );
    }
    err
}

fn trace() -> String {
    repo("testdata/traces/art_daily_small_noise.csv")
        .to_str()
        .unwrap()
        .to_string()
}

/// `backtest` over `trace` with `extra` flags (a ready time and capacity unless given).
fn backtest<'a>(trace: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["backtest", "--policy", "hpa", "--trace", trace];
    if !extra.contains(&"--ready-time") {
        args.extend(["--ready-time", "5m"]);
    }
    if !extra.contains(&"--capacity-per-pod") && !extra.contains(&"--peak-pods") {
        args.extend(["--peak-pods", "20"]);
    }
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_huge_interval_is_refused_naming_the_flag() {
    let t = trace();
    // As a duration its exponent is no unit; as bare seconds, over 100 years.
    for interval in ["1e16s", "1e16"] {
        let err = assert_refused(
            &backtest(&t, &["--interval", interval]),
            &[1],
            &["--interval"],
        );
        assert!(err.starts_with("error: bad-request: "), "{err}");
    }
}

#[test]
fn a_huge_warmup_is_refused_naming_the_flag() {
    let t = trace();
    for warmup in ["1e300s", "1e300", "1000000000y"] {
        let err = assert_refused(&backtest(&t, &["--warmup", warmup]), &[1], &["--warmup"]);
        assert!(err.starts_with("error: bad-request: "), "{err}");
    }
}

#[test]
fn a_bench_window_of_a_billion_years_is_refused_naming_the_flag() {
    // Exit 1 (the command's check) or 2 (clap's parser), whichever refuses it.
    assert_refused(
        &["bench", "hpa", "--window", "1000000000y"],
        &[1, 2],
        &["--window"],
    );
}

#[test]
fn memory_mib_that_overflows_is_refused_by_every_command_that_takes_it() {
    let req = repo("examples/request.json");
    let req = req.to_str().unwrap();
    // 2^44 + 1 MiB is 2^64 + 2^20 bytes: one past what a 64-bit size holds.
    for mib in ["17592186044417", "18446744073709551616"] {
        assert_refused(
            &["decide", "--request", req, "--memory-mib", mib],
            &[1, 2],
            &["--memory-mib"],
        );
        // Refused before it listens or asks Prometheus anything.
        assert_refused(&["serve", "--memory-mib", mib], &[1, 2], &["--memory-mib"]);
    }
}

#[test]
fn pods_at_peak_of_u32_max_is_refused() {
    let t = trace();
    let err = assert_refused(
        &[
            "test",
            "target-tracking",
            "--against",
            "hpa",
            "--trace",
            &t,
            "--pods-at-peak",
            "4294967295",
        ],
        &[2],
        &["--pods-at-peak", "4294967295"],
    );
    assert!(err.contains("100000"), "the bound: {err}");
    // The backtest's flag of the same meaning too.
    assert_refused(
        &backtest(&t, &["--peak-pods", "4294967295"]),
        &[2],
        &["--peak-pods", "100000"],
    );
}

#[test]
fn a_trace_of_values_near_the_largest_float_is_refused_at_its_line() {
    // Before: accepted, and the sums of demand overflowed (`unmet_demand_pct` null in --json,
    // NaN in `test --against`).
    let csv = temp(
        "huge.csv",
        "time,value\n0,1\n60,1e308\n120,1e308\n180,1e308\n",
    );
    let csv = csv.to_str().unwrap();
    let at_line = format!("{csv}:3: value `1e308`");
    assert_refused(&backtest(csv, &["--json"]), &[1], &[&at_line]);
    assert_refused(
        &[
            "test",
            "hpa",
            "--against",
            "target-tracking",
            "--trace",
            csv,
        ],
        &[1],
        &[&at_line],
    );
}

#[test]
fn a_tiny_capacity_per_pod_is_refused() {
    let t = trace();
    let err = assert_refused(
        &backtest(&t, &["--capacity-per-pod", "1e-9"]),
        &[1],
        &["capacity", "100000 pods"],
    );
    assert!(err.starts_with("error: bad-request: "), "{err}");
}

#[test]
fn four_rows_with_the_last_far_in_the_future_are_refused_at_its_line() {
    // Last row 300,000 years on: past the points a trace may have.
    let far = temp("far.csv", "time,value\n0,1\n60,2\n120,3\n9999999999999,4\n");
    let far = far.to_str().unwrap();
    assert_refused(&backtest(far, &[]), &[1], &[&format!("{far}:5: ")]);
    // Resampled: the buckets were allocated by the span before (an abort on 1.3 TB).
    assert_refused(
        &backtest(far, &["--resample", "1m"]),
        &[1],
        &[&format!("{far}:5: "), "points a trace may have"],
    );
    // 35 years on: within the points, but 18 million decisions for four rows (hours) before.
    let sparse = temp("sparse.csv", "time,value\n0,1\n60,2\n120,3\n1099999980,4\n");
    let sparse = sparse.to_str().unwrap();
    for extra in [&[][..], &["--resample", "1m"][..]] {
        assert_refused(
            &backtest(sparse, extra),
            &[1],
            &[&format!("{sparse}:5: "), "per row"],
        );
    }
    assert_refused(
        &[
            "test",
            "hpa",
            "--against",
            "target-tracking",
            "--trace",
            sparse,
        ],
        &[1],
        &[&format!("{sparse}:5: ")],
    );
}
