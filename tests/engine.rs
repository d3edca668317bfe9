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

/// The longest history the scaler's metadata admits (serve's `MAX_POINTS`: 7 days at a 6 s
/// step, 100,800 points) ran the predictive policy out of its default fuel on every call. It now
/// learns from 30 s means of it, and decides as it does on the same load given at 30 s.
#[test]
fn predictive_decides_on_the_longest_window_within_the_default_fuel() {
    use leadtime::Metric;
    let engine = Engine::new(&Limits::default()).unwrap();
    let now = 1_700_000_000_000;
    // A daily cycle, constant within each 30 s so that the means are exact.
    let load = |bucket: usize| 200.0 + 150.0 * (bucket as f64 * 30.0 / 86_400.0 * TAU).sin();
    const TAU: f64 = std::f64::consts::TAU;
    let buckets = 7 * 2880;
    let fine: Vec<f64> = (0..buckets * 5).map(|i| load(i / 5)).collect();
    let coarse: Vec<f64> = (0..buckets).map(load).collect();
    let ask = |values: Vec<f64>, interval: f64, end: i64| {
        let mut req = request(&[], 20.0, replicas(10, 1, 100));
        req.now = now;
        req.metrics = vec![Metric {
            name: "load".into(),
            target_per_pod: 20.0,
            interval_seconds: interval,
            end,
            values,
        }];
        let mut policy = engine
            .load(Source::builtin("predictive"), Params::new())
            .unwrap();
        policy
            .decide(&req)
            .unwrap_or_else(|e| panic!("{interval} s: {}", e.report()))
    };
    let fine = ask(fine, 6.0, now);
    // The 30 s bucket of the last five 6 s points starts 24 s before the last one.
    let coarse = ask(coarse, 30.0, now - 24_000);
    assert!(
        fine.reason
            .contains("learned from 5-point means (30s steps of 6s)"),
        "{}",
        fine.reason
    );
    assert_eq!(fine.replicas, coarse.replicas, "{}", fine.reason);
    let (fine, coarse) = (fine.forecast.unwrap(), coarse.forecast.unwrap());
    assert_eq!(
        (fine.start, fine.interval_seconds, fine.values.len()),
        (coarse.start, coarse.interval_seconds, coarse.values.len())
    );
    // A mean of five equal values is that value to the last bits only.
    for (f, c) in fine.values.iter().zip(&coarse.values) {
        assert!((f - c).abs() < 1e-9 * c.abs(), "{f} against {c}");
    }
}
