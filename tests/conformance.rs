//! One policy, several languages, one answer: the target-tracking-with-headroom example written in
//! Rust, C and AssemblyScript (policies/examples/) and by hand in WebAssembly text, each built with
//! its real compiler and run through the engine on one table of requests. Every language must
//! give the same decision (replicas and reason) or fail with the same error.

use leadtime::Source;
use leadtime::{
    Engine, Limits, Metric, Param, Params, PlannedEvent, ReadyTime, Replicas, Request, Workload,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where the built examples go: under target/, so that `cargo clean` removes them.
fn out_dir() -> PathBuf {
    let dir = repo().join("target").join("conformance");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(mut cmd: Command, what: &str, hint: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start {cmd:?}: {e}. {hint}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}\n{}\n{hint}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_rust() -> PathBuf {
    let built = leadtime_wasm_build::build_policies(
        &repo(),
        "examples-wasm",
        &["leadtime-example-target-tracking"],
    );
    built.unwrap_or_else(|e| panic!("{e}")).remove(0)
}

/// Compiles the C policy at `source` (repo-relative) with the C SDK into target/conformance/`out`.
fn build_c(source: &str, out: &str) -> PathBuf {
    let out = out_dir().join(out);
    let mut cmd = Command::new("clang");
    cmd.current_dir(repo())
        .args(["--target=wasm32", "-O2", "-nostdlib", "-ffreestanding"])
        .args(["-Wall", "-Wextra", "-Werror", "-I", "guest-sdk/c"])
        .args(["-Wl,--no-entry", "-Wl,--export=leadtime_abi_version"])
        .args([
            "-Wl,--export=leadtime_alloc",
            "-Wl,--export=leadtime_decide",
        ])
        .args(["-Wl,--export=leadtime_init", "-o"])
        .arg(&out)
        .args([source, "guest-sdk/c/leadtime.c"]);
    run(cmd, "clang", "Run `make setup` (installs clang and lld).");
    out
}

/// Compiles the AssemblyScript entry file `source` (repo-relative) into target/conformance/`out`.
fn build_assemblyscript(source: &str, out: &str) -> PathBuf {
    let out = out_dir().join(out);
    let mut cmd = Command::new("node");
    cmd.current_dir(repo())
        .arg("guest-sdk/assemblyscript/node_modules/assemblyscript/bin/asc.js")
        .arg(source)
        .args(["--runtime", "minimal", "-O3"])
        .args([
            "--use",
            "abort=guest-sdk/assemblyscript/assembly/index/leadtimeAbort",
        ])
        .arg("-o")
        .arg(&out);
    run(
        cmd,
        "asc",
        "Run `make setup` (installs the AssemblyScript compiler).",
    );
    out
}

/// (language, wasm or wat file), each compiled once per test run.
fn policies() -> &'static [(&'static str, PathBuf)] {
    static BUILT: OnceLock<Vec<(&'static str, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        vec![
            ("rust", build_rust()),
            (
                "c",
                build_c("policies/examples/c/policy.c", "target_tracking_c.wasm"),
            ),
            (
                "assemblyscript",
                build_assemblyscript(
                    "policies/examples/assemblyscript/assembly/index.ts",
                    "target_tracking_as.wasm",
                ),
            ),
            (
                "wat",
                repo().join("policies/examples/wat/target_tracking.wat"),
            ),
        ]
    })
}

fn metric(name: &str, target: f64, values: &[f64]) -> Metric {
    Metric {
        name: name.into(),
        target_per_pod: target,
        interval_seconds: 60.0,
        end: 1_700_000_000_000,
        values: values.to_vec(),
    }
}

fn ready(seconds: &[f64]) -> Vec<ReadyTime> {
    seconds
        .iter()
        .enumerate()
        .map(|(i, s)| ReadyTime {
            started_at: 1_699_999_000_000 - i as i64 * 1000,
            ready_seconds: *s,
        })
        .collect()
}

fn request(current: u32, min: u32, max: u32, metrics: Vec<Metric>) -> Request {
    Request {
        abi_version: 1,
        now: 1_700_000_000_000,
        workload: Workload {
            namespace: "default".into(),
            name: "web".into(),
        },
        replicas: Replicas {
            current,
            ready: current,
            min,
            max,
        },
        metrics,
        ready_times: vec![],
        events: vec![],
        params: Params::new(),
        state: None,
    }
}

fn with_params(mut req: Request, params: &[(&str, Param)]) -> Request {
    for (k, v) in params {
        req.params.insert(k.to_string(), v.clone());
    }
    req
}

fn with_ready(mut req: Request, seconds: &[f64]) -> Request {
    req.ready_times = ready(seconds);
    req
}

/// The table: (what it checks, request).
fn table() -> Vec<(&'static str, Request)> {
    let nan = f64::NAN;
    let num = Param::Number;
    let many_params: Vec<(String, Param)> = (0..2000)
        .map(|i| {
            let value = match i % 3 {
                0 => Param::Text("x".repeat(300)),
                1 => Param::Number(i as f64 * 1.5),
                _ => Param::Bool(i % 2 == 0),
            };
            (format!("param_{i:04}"), value)
        })
        .collect();
    let mut max_params = request(2, 1, 50, vec![metric("rps", 10.0, &[100.0])]);
    max_params.params.extend(many_params);
    max_params
        .params
        .insert("headroom".into(), Param::Number(0.5));
    let long_window: Vec<f64> = (0..100_000).map(|i| (i % 97) as f64).collect();
    let long_ready: Vec<f64> = (0..20_000).map(|i| ((i * 7919) % 300) as f64).collect();
    let fast_ready: Vec<f64> = (0..20_000).map(|i| (i % 100) as f64).collect();
    vec![
        (
            "latest value",
            request(2, 1, 20, vec![metric("rps", 10.0, &[10.0, 95.0])]),
        ),
        (
            "exact multiple with default headroom",
            request(2, 1, 20, vec![metric("rps", 10.0, &[100.0])]),
        ),
        (
            "fraction rounds up",
            request(2, 1, 100, vec![metric("rps", 7.0, &[33.3])]),
        ),
        (
            "trailing NaN skipped",
            request(2, 1, 20, vec![metric("rps", 10.0, &[50.0, nan])]),
        ),
        (
            "empty window holds current",
            request(7, 1, 20, vec![metric("rps", 10.0, &[])]),
        ),
        (
            "all-NaN window holds current",
            request(3, 1, 20, vec![metric("rps", 10.0, &[nan, nan, nan])]),
        ),
        ("no metrics holds current", request(4, 1, 20, vec![])),
        (
            "zero load clamps to min",
            request(2, 1, 20, vec![metric("rps", 10.0, &[0.0])]),
        ),
        (
            "negative load counts as zero",
            request(2, 0, 20, vec![metric("rps", 10.0, &[-50.0])]),
        ),
        (
            "huge value clamps to max",
            request(2, 1, 20, vec![metric("rps", 10.0, &[1e300])]),
        ),
        (
            "huge value, huge max saturates",
            request(2, 1, u32::MAX, vec![metric("rps", 1e-300, &[1e300])]),
        ),
        (
            "infinite value",
            request(2, 1, 30, vec![metric("rps", 10.0, &[f64::INFINITY])]),
        ),
        (
            "negative infinity is zero load",
            request(2, 3, 30, vec![metric("rps", 10.0, &[f64::NEG_INFINITY])]),
        ),
        (
            "zero target is skipped",
            request(5, 1, 20, vec![metric("rps", 0.0, &[100.0])]),
        ),
        (
            "negative target is skipped",
            request(5, 1, 20, vec![metric("rps", -1.0, &[100.0])]),
        ),
        (
            "NaN target is skipped",
            request(5, 1, 20, vec![metric("rps", nan, &[100.0])]),
        ),
        (
            "zero target beside a good metric",
            request(
                5,
                1,
                50,
                vec![metric("bad", 0.0, &[100.0]), metric("good", 4.0, &[10.0])],
            ),
        ),
        (
            "largest of two metrics wins",
            request(
                2,
                1,
                50,
                vec![metric("cpu", 0.5, &[2.0]), metric("rps", 10.0, &[300.0])],
            ),
        ),
        (
            "first of two equal metrics wins",
            request(
                2,
                1,
                50,
                vec![metric("a", 10.0, &[100.0]), metric("b", 10.0, &[100.0])],
            ),
        ),
        (
            "min above current",
            request(1, 8, 20, vec![metric("rps", 10.0, &[20.0])]),
        ),
        (
            "max zero",
            request(3, 0, 0, vec![metric("rps", 10.0, &[200.0])]),
        ),
        ("current above max with no data", request(30, 1, 10, vec![])),
        (
            "headroom zero",
            with_params(
                request(2, 1, 20, vec![metric("rps", 10.0, &[100.0])]),
                &[("headroom", num(0.0))],
            ),
        ),
        (
            "headroom 0.5",
            with_params(
                request(2, 1, 100, vec![metric("rps", 10.0, &[100.0])]),
                &[("headroom", num(0.5))],
            ),
        ),
        (
            "headroom ten",
            with_params(
                request(2, 1, 1000, vec![metric("rps", 10.0, &[100.0])]),
                &[("headroom", num(10.0))],
            ),
        ),
        (
            "headroom out of range fails",
            with_params(
                request(2, 1, 20, vec![metric("rps", 10.0, &[100.0])]),
                &[("headroom", num(11.0))],
            ),
        ),
        (
            "headroom negative fails",
            with_params(
                request(2, 1, 20, vec![metric("rps", 10.0, &[100.0])]),
                &[("headroom", num(-0.1))],
            ),
        ),
        (
            "headroom as text fails",
            with_params(
                request(2, 1, 20, vec![metric("rps", 10.0, &[100.0])]),
                &[("headroom", Param::Text("0.2".into()))],
            ),
        ),
        (
            "headroom as bool fails",
            with_params(
                request(2, 1, 20, vec![metric("rps", 10.0, &[100.0])]),
                &[("headroom", Param::Bool(true))],
            ),
        ),
        (
            "other params are ignored",
            with_params(
                request(2, 1, 20, vec![metric("rps", 10.0, &[100.0])]),
                &[
                    ("mode", Param::Text("fast".into())),
                    ("debug", Param::Bool(true)),
                ],
            ),
        ),
        (
            "slow starts double the headroom",
            with_ready(
                request(2, 1, 100, vec![metric("rps", 10.0, &[100.0])]),
                &[200.0, 150.0, 300.0],
            ),
        ),
        (
            "fast starts keep the headroom",
            with_ready(
                request(2, 1, 100, vec![metric("rps", 10.0, &[100.0])]),
                &[20.0, 30.0, 300.0],
            ),
        ),
        (
            "p90 exactly 120 is not slow",
            with_ready(
                request(2, 1, 100, vec![metric("rps", 10.0, &[100.0])]),
                &[120.0, 120.0],
            ),
        ),
        (
            "NaN and negative ready times are ignored",
            with_ready(
                request(2, 1, 100, vec![metric("rps", 10.0, &[100.0])]),
                &[nan, -5.0, 500.0, f64::INFINITY],
            ),
        ),
        (
            "long ready-time list, slow",
            with_ready(
                request(2, 1, 100, vec![metric("rps", 10.0, &[100.0])]),
                &long_ready,
            ),
        ),
        (
            "long ready-time list, fast",
            with_ready(
                request(2, 1, 100, vec![metric("rps", 10.0, &[100.0])]),
                &fast_ready,
            ),
        ),
        (
            "long window",
            request(2, 1, 100, vec![metric("rps", 3.0, &long_window)]),
        ),
        (
            "unicode metric name",
            request(2, 1, 100, vec![metric("запросы/с 🚀 ñ", 10.0, &[55.0])]),
        ),
        (
            "long metric name",
            request(2, 1, 100, vec![metric(&"m".repeat(70_000), 10.0, &[55.0])]),
        ),
        ("maximum-size params", max_params),
        (
            "tiny fractions",
            request(0, 0, 100, vec![metric("rps", 10.0, &[1e-300])]),
        ),
        (
            "subnormal target",
            request(0, 0, 100, vec![metric("rps", 5e-324, &[1e-300])]),
        ),
        (
            "many metrics",
            request(
                2,
                1,
                1000,
                (0..200)
                    .map(|i| metric(&format!("m{i}"), 1.0 + i as f64, &[i as f64 * 10.0]))
                    .collect(),
            ),
        ),
    ]
}

/// What a policy answered, in a form every language must match exactly.
#[derive(Debug, PartialEq)]
enum Outcome {
    Decided { replicas: u32, reason: String },
    Failed { kind: String, message: String },
}

fn outcome(policy: &mut leadtime::Policy, req: &Request) -> Outcome {
    match policy.decide(req) {
        Ok(d) => Outcome::Decided {
            replicas: d.replicas,
            reason: d.reason,
        },
        Err(e) => Outcome::Failed {
            kind: e.kind().as_str().to_string(),
            message: e.to_string(),
        },
    }
}

#[test]
fn every_language_gives_the_same_decision_on_the_whole_table() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let table = table();
    assert!(table.len() >= 30, "the table must have at least 30 rows");
    let mut loaded: Vec<(&str, leadtime::Policy)> = policies()
        .iter()
        .map(|(lang, path)| {
            let p = engine
                .load(Source::file(path), Params::new())
                .unwrap_or_else(|e| panic!("{lang}: {} does not load: {e}", path.display()));
            (*lang, p)
        })
        .collect();
    let mut failures = Vec::new();
    for (what, req) in &table {
        let (first_lang, first) = {
            let (lang, p) = &mut loaded[0];
            (*lang, outcome(p, req))
        };
        for (lang, p) in loaded.iter_mut().skip(1) {
            let got = outcome(p, req);
            if got != first {
                failures.push(format!(
                    "{what}:\n  {first_lang}: {first:?}\n  {lang}: {got:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `events` (planned events from a schedule) came after the first policies were built: every
/// language skips it and answers as without it.
#[test]
fn every_language_ignores_the_planned_events_a_request_may_carry() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let events = vec![
        PlannedEvent {
            name: "sale".into(),
            start: 1_700_000_600_000,
            end: 1_700_007_800_000,
            min_replicas: None,
            factor: Some(3.0),
        },
        PlannedEvent {
            name: "match €".into(),
            start: 1_699_990_000_000,
            end: 1_699_995_000_000,
            min_replicas: Some(40),
            factor: None,
        },
    ];
    for (lang, path) in policies() {
        let mut policy = engine.load(Source::file(path), Params::new()).unwrap();
        for (what, req) in table().into_iter().take(12) {
            let plain = outcome(&mut policy, &req);
            let mut with = req.clone();
            with.events = events.clone();
            assert_eq!(outcome(&mut policy, &with), plain, "{lang}: {what}");
        }
    }
}

/// The agreement above would also hold if every language were wrong the same way: spot-check
/// the shared answers against the formula worked by hand.
#[test]
fn the_shared_answers_follow_the_formula() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut policy = engine
        .load(Source::file(&policies()[0].1), Params::new())
        .unwrap();
    let rows = table();
    let get = |name: &str| &rows.iter().find(|(w, _)| *w == name).unwrap().1;
    let mut check = |name: &str, want: u32, fragment: &str| {
        let d = policy.decide(get(name)).unwrap();
        assert_eq!(d.replicas, want, "{name}: {}", d.reason);
        assert!(d.reason.contains(fragment), "{name}: {}", d.reason);
    };
    // ceil(95 × 1.1 / 10) = ceil(10.45)
    check("latest value", 11, "rps: 11 pods");
    check("headroom 0.5", 15, "rps: 15 pods");
    // p90 of [150, 200, 300] = 280 > 120: headroom 0.2, ceil(100 × 1.2 / 10)
    check("slow starts double the headroom", 12, "headroom doubled");
    check("empty window holds current", 7, "holding 7 replicas");
    check("all-NaN window holds current", 3, "holding 3");
    check("huge value clamps to max", 20, "clamped to max 20");
    check(
        "huge value, huge max saturates",
        u32::MAX,
        "4294967295 pods",
    );
    check("max zero", 0, "clamped to max 0");
    check("min above current", 8, "clamped to min 8");
    check("unicode metric name", 7, "запросы/с 🚀 ñ: 7 pods");
    check("maximum-size params", 15, "rps: 15 pods");
    let err = policy
        .decide(get("headroom as text fails"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("param `headroom`"), "{err}");
}

#[test]
fn every_language_refuses_bad_params_at_load_with_the_same_message() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut bad = Params::new();
    bad.insert("headroom".into(), Param::Text("lots".into()));
    for (lang, path) in policies() {
        let err = engine.load(Source::file(path), bad.clone()).err();
        let err = err.unwrap_or_else(|| panic!("{lang}: bad params were accepted"));
        assert_eq!(err.kind(), leadtime::ErrorKind::InitFailed, "{lang}: {err}");
        assert!(
            err.to_string()
                .contains("param `headroom` must be a number in 0..=10"),
            "{lang}: {err}"
        );
    }
}

#[test]
fn every_example_module_imports_nothing_but_leadtime_log() {
    let engine = Engine::new(&Limits::default()).unwrap();
    for (lang, path) in policies() {
        let info = engine.inspect(Source::file(path)).unwrap();
        for import in &info.imports {
            assert!(
                import.starts_with("leadtime::log"),
                "{lang}: imports {import}"
            );
        }
    }
}

/// The SDK feature fixtures (state, forecast, helpers, params, logs), built once per run.
fn sdk_features() -> &'static [(&'static str, PathBuf)] {
    static BUILT: OnceLock<Vec<(&'static str, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        vec![
            (
                "c",
                build_c("tests/fixtures/sdk/features.c", "features_c.wasm"),
            ),
            (
                "assemblyscript",
                build_assemblyscript("tests/fixtures/sdk/features.ts", "features_as.wasm"),
            ),
        ]
    })
}

#[test]
fn the_c_and_assemblyscript_sdks_carry_state_forecasts_params_and_logs() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let nan = f64::NAN;
    let mut req = request(
        1,
        0,
        100,
        vec![metric("load", 10.0, &[10.0, nan, 45.5, nan])],
    );
    req.workload = Workload {
        namespace: "équipe-ü".into(),
        name: "web 🚀".into(),
    };
    req.ready_times = ready(&[30.0, 10.0, 25.0, 90.0]);
    // What the SDK helpers must agree with: the Rust wire crate's own.
    let load = &req.metrics[0];
    let want_values = vec![
        load.mean().unwrap(),
        load.last().unwrap(),
        req.ready_seconds_quantile(0.5).unwrap(),
    ];
    for (lang, path) in sdk_features() {
        let mut params = Params::new();
        params.insert("mode".into(), Param::Text("fast ✓".into()));
        params.insert("other".into(), Param::Number(3.0));
        let mut policy = engine.load(Source::file(path), params).unwrap();
        // The counter in `state` goes up only if the SDK reads back what it wrote.
        for call in 1..=3u32 {
            let d = policy
                .decide(&req)
                .unwrap_or_else(|e| panic!("{lang}: {e}"));
            assert_eq!(d.replicas, call, "{lang}: {}", d.reason);
            assert_eq!(d.reason, "équipe-ü/web 🚀 mode=fast ✓", "{lang}");
            assert_eq!(d.state.as_deref(), Some(&call.to_be_bytes()[..]), "{lang}");
            let f = d.forecast.unwrap_or_else(|| panic!("{lang}: no forecast"));
            assert_eq!(f.start, req.now, "{lang}");
            assert_eq!(f.interval_seconds, 60.0, "{lang}");
            assert_eq!(f.values, want_values, "{lang}");
            let logs = policy.last_logs();
            assert!(
                logs.iter()
                    .any(|l| l.message == "decided" && l.level == leadtime::Level::Info),
                "{lang}: {logs:?}"
            );
        }
        policy.reset_state();
        assert_eq!(policy.decide(&req).unwrap().replicas, 1, "{lang}");

        // Without metrics or ready times the helpers report "none" (the fixtures send -1).
        let empty = request(1, 0, 100, vec![metric("load", 10.0, &[nan])]);
        let f = policy.decide(&empty).unwrap().forecast.unwrap();
        assert_eq!(f.values, vec![-1.0, -1.0, -1.0], "{lang}");
    }
}
