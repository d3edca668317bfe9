//! `leadtime bench` runs a policy and prints what it costs.

use std::process::Command;

#[test]
fn bench_prints_load_time_percentiles_fuel_and_memory() {
    let out = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(["bench", "target-tracking", "--window", "2h", "--calls", "5"])
        .output()
        .expect("run leadtime");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("120 points at 1m"), "{stdout}");
    for field in [
        "load cold",
        "load cached",
        "call p50",
        "call p99",
        "fuel per call",
        "memory",
    ] {
        assert!(stdout.contains(field), "no `{field}` in:\n{stdout}");
    }
    // Real figures, not placeholders: the policy burns fuel and has at least one wasm page.
    let figure = |field: &str| -> u64 {
        let line = stdout.lines().find(|l| l.starts_with(field)).unwrap();
        line[field.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(figure("fuel per call") > 0, "{stdout}");
    let memory = stdout.lines().find(|l| l.starts_with("memory")).unwrap();
    let bytes: u64 = memory
        .split('(')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes >= 65536 && bytes.is_multiple_of(65536), "{memory}");
}

#[test]
fn bench_refuses_a_window_under_one_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(["bench", "target-tracking", "--window", "30s"])
        .output()
        .expect("run leadtime");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--window 30s"), "{stderr}");
}
