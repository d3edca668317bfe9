//! A Rust policy compiled to wasm (the built-in target-tracking), through the engine API.

use leadtime::Source;
use leadtime::{Engine, ErrorKind, Limits, Param, Params};
use leadtime_tests::{replicas, request};

fn engine() -> Engine {
    Engine::new(&Limits::default()).unwrap()
}

#[test]
fn target_tracking_table() {
    let engine = engine();
    let mut policy = engine
        .load(Source::builtin("target-tracking"), Params::new())
        .unwrap();
    // (window, target per pod, current, min, max, expected, reason fragment)
    let nan = f64::NAN;
    let cases = [
        (vec![10.0, 95.0], 10.0, 2, 1, 20, 10, "10 pods"),
        (vec![100.0], 10.0, 2, 1, 20, 10, "10 pods"),
        (vec![100.1], 10.0, 2, 1, 20, 11, "11 pods"),
        (vec![50.0, nan], 10.0, 2, 1, 20, 5, "latest"),
        (vec![0.0], 10.0, 2, 1, 20, 1, "clamped to min 1"),
        (vec![1e9], 10.0, 2, 1, 20, 20, "clamped to max 20"),
        (vec![], 10.0, 7, 1, 20, 7, "holding current"),
        (vec![nan, nan], 10.0, 3, 1, 20, 3, "holding current"),
    ];
    for (values, target, current, min, max, want, fragment) in cases {
        let req = request(&values, target, replicas(current, min, max));
        let d = policy.decide(&req).unwrap();
        assert_eq!(d.replicas, want, "{values:?}: {}", d.reason);
        assert!(d.reason.contains(fragment), "{values:?}: {}", d.reason);
        assert!(d.fuel > 0);
    }
}

#[test]
fn params_from_load_reach_the_policy_and_bad_ones_fail_at_load() {
    let engine = engine();
    let mut params = Params::new();
    params.insert("headroom".into(), Param::Number(0.5));
    let mut policy = engine
        .load(Source::builtin("target-tracking"), params)
        .unwrap();
    let d = policy
        .decide(&request(&[100.0], 10.0, replicas(1, 1, 100)))
        .unwrap();
    assert_eq!(d.replicas, 15);

    let mut bad = Params::new();
    bad.insert("headroom".into(), Param::Text("lots".into()));
    let err = engine
        .load(Source::builtin("target-tracking"), bad)
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InitFailed);
    assert!(err.to_string().contains("headroom"), "{err}");
}

#[test]
fn an_err_from_the_rust_policy_becomes_a_policy_error_and_the_next_call_works() {
    let engine = engine();
    let mut policy = engine
        .load(Source::builtin("target-tracking"), Params::new())
        .unwrap();
    let err = policy
        .decide(&request(&[10.0], 0.0, replicas(1, 1, 10)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyError);
    assert!(err.to_string().contains("target_per_pod"), "{err}");
    let ok = policy.decide(&request(&[30.0], 10.0, replicas(1, 1, 10)));
    assert_eq!(ok.unwrap().replicas, 3);
}

#[test]
fn min_above_max_is_refused_before_the_policy_runs() {
    let mut policy = engine()
        .load(Source::builtin("target-tracking"), Params::new())
        .unwrap();
    let err = policy
        .decide(&request(&[10.0], 1.0, replicas(1, 5, 3)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
}

#[test]
fn unknown_policy_names_the_builtins() {
    let err = engine()
        .load(Source::builtin("nope"), Params::new())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::UnknownPolicy);
    assert!(err.to_string().contains("target-tracking"), "{err}");
}

#[test]
fn the_engine_is_shared_across_threads() {
    let engine = engine();
    let handles: Vec<_> = (1..=4)
        .map(|i| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut p = engine
                    .load(Source::builtin("target-tracking"), Params::new())
                    .unwrap();
                let load = 10.0 * i as f64;
                p.decide(&request(&[load], 1.0, replicas(1, 0, 1000)))
                    .unwrap()
                    .replicas
            })
        })
        .collect();
    let got: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, vec![10, 20, 30, 40]);
}

#[test]
fn a_burst_of_first_loads_compiles_once_and_every_load_succeeds() {
    // A scaler's cold start: 40 workloads ask for the same policy at once. Each waits for the one
    // compile (40 compiles at once took 20 s on 2 cores and all hit the compile deadline).
    let mut limits = Limits::default();
    limits.compile_time(std::time::Duration::from_secs(20));
    let engine = Engine::new(&limits).unwrap();
    let loads: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|_| s.spawn(|| engine.load(Source::builtin("predictive"), Params::new())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for load in loads {
        load.unwrap();
    }
    assert_eq!(engine.cached_modules(), 1);
}

#[test]
fn a_module_that_fails_to_load_is_remembered_not_compiled_again() {
    let engine = engine();
    // Valid wasm that is no policy: compiled, then refused by the ABI check.
    let module = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
    let first = engine
        .load(Source::bytes("nopolicy", &module), Params::new())
        .err()
        .expect("no policy");
    assert_eq!(first.kind(), ErrorKind::MissingExport, "{first}");
    let again = engine
        .load(Source::bytes("nopolicy", &module), Params::new())
        .err()
        .expect("no policy");
    // The same kind and message, from memory, saying so.
    assert_eq!(again.kind(), ErrorKind::MissingExport, "{again}");
    assert!(again.to_string().starts_with(&first.to_string()), "{again}");
    assert!(again.to_string().contains("not compiled again"), "{again}");
}
