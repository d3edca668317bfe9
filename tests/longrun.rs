//! A long run of failures: 10,000 failing calls in a row, across many kinds of failure (each of
//! which throws the instance away), must leave the process's resident memory where it was.

use leadtime::Source;
use leadtime::{Engine, ErrorKind, Limits, Param, Params, Policy};
use leadtime_tests::{fixture, replicas, request};

/// Failing calls in the run.
const CALLS: usize = 10_000;
/// How much resident memory may grow over the run, after a warm-up: allocator slack, not a
/// leak. A leak of one kilobyte per failed call would be more than this.
const RSS_BOUND_BYTES: u64 = 8 << 20;

/// VmRSS of this process, in bytes (Linux).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

fn corpus(engine: &Engine, name: &str) -> Policy {
    engine
        .load(
            Source::file(&fixture(&format!("adversarial/{name}.wat"))),
            Params::new(),
        )
        .unwrap()
}

#[test]
fn ten_thousand_failing_calls_leave_memory_where_it_was() {
    let engine = Engine::new(&Limits::default()).unwrap();
    // A small budget, so that the out-of-fuel case is quick; everything else as by default.
    let frugal = Engine::new(Limits::new().fuel_per_call(1_000_000)).unwrap();
    let mut params = Params::new();
    params.insert("panic_at".into(), Param::Number(0.0));
    let panics = engine
        .load(
            Source::file(std::path::Path::new(env!("LEADTIME_TEST_POLICY_PANICS"))),
            params,
        )
        .unwrap();
    let mut policies: Vec<(Policy, ErrorKind)> = vec![
        (panics, ErrorKind::Trap),
        (corpus(&engine, "unreachable"), ErrorKind::Trap),
        (corpus(&engine, "divide_by_zero"), ErrorKind::Trap),
        (corpus(&engine, "recursion"), ErrorKind::StackOverflow),
        (
            corpus(&engine, "memory_grow_until_fail"),
            ErrorKind::OutOfMemory,
        ),
        (corpus(&engine, "table_grow_bomb"), ErrorKind::OutOfMemory),
        (corpus(&engine, "log_out_of_bounds"), ErrorKind::HostCall),
        (corpus(&engine, "response_garbage"), ErrorKind::BadResponse),
        (
            corpus(&engine, "response_deeply_nested"),
            ErrorKind::BadResponse,
        ),
        (corpus(&engine, "replicas_nan"), ErrorKind::BadResponse),
        (corpus(&engine, "policy_error"), ErrorKind::PolicyError),
        (corpus(&frugal, "loop_decide"), ErrorKind::OutOfFuel),
    ];
    let req = request(&[10.0, 20.0, 30.0], 10.0, replicas(2, 1, 10));
    let mut run = |calls: usize| {
        for i in 0..calls {
            let (policy, kind) = &mut policies[i % 12];
            let err = policy.decide(&req).expect_err("every call fails");
            assert_eq!(err.kind(), *kind, "call {i} on {}: {err}", policy.name());
        }
    };
    // Warm-up: caches, allocator arenas and lazily mapped code settle in the first calls.
    let warm_up = 600;
    run(warm_up);
    let before = rss_bytes();
    run(CALLS - warm_up);
    let after = rss_bytes();
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS before {} KiB, after {} KiB, growth {} KiB over {} calls",
        before >> 10,
        after >> 10,
        growth >> 10,
        CALLS - warm_up
    );
    assert!(
        growth <= RSS_BOUND_BYTES,
        "RSS grew by {growth} bytes over {CALLS} failing calls (bound {RSS_BOUND_BYTES})"
    );

    // And the host still serves a good policy.
    let mut good = engine
        .load(Source::builtin("target-tracking"), Params::new())
        .unwrap();
    let d = good
        .decide(&request(&[95.0], 10.0, replicas(2, 1, 20)))
        .unwrap();
    assert_eq!(d.replicas, 10);
}
