//! `leadtime compile-worker`, the child the scaler compiles policies in
//! (`leadtime::CompileWorker`): code it compiles runs as code compiled in the process, under
//! every engine mode, and a worker that cannot answer is a typed error.

use leadtime::{CompileWorker, Engine, Limits, Metric, Modes, Params, Replicas, Request, Source};

fn worker() -> CompileWorker {
    CompileWorker::new(env!("CARGO_BIN_EXE_leadtime"), ["compile-worker"])
}

fn request(step: usize) -> Request {
    let values = (0..600)
        .map(|i| 200.0 + 150.0 * ((i + step) as f64 / 90.0).sin())
        .collect();
    Request {
        abi_version: leadtime::abi::ABI_VERSION,
        now: 1_700_000_000_000 + step as i64 * 60_000,
        workload: leadtime::Workload {
            namespace: "default".into(),
            name: "web".into(),
        },
        replicas: Replicas {
            current: 3,
            ready: 3,
            min: 1,
            max: 50,
        },
        metrics: vec![Metric {
            name: "load".into(),
            target_per_pod: 50.0,
            interval_seconds: 60.0,
            end: 1_700_000_000_000 + step as i64 * 60_000,
            values,
        }],
        ready_times: vec![],
        events: vec![],
        params: Default::default(),
        state: None,
    }
}

fn decisions(engine: &Engine) -> Vec<(u32, String)> {
    let mut policy = engine
        .load(Source::builtin("predictive"), Params::new())
        .unwrap_or_else(|e| panic!("{}", e.report()));
    (0..5)
        .map(|step| {
            let d = policy.decide(&request(step)).unwrap();
            (d.replicas, d.reason)
        })
        .collect()
}

#[test]
fn code_from_the_worker_decides_as_code_compiled_in_process_in_every_mode() {
    let mut pooled = Modes::new();
    pooled.fresh_instance_per_call(true);
    let mut pooled_guards = pooled.clone();
    pooled_guards.pool_bounds_checks(false);
    let mut no_signals = Modes::new();
    no_signals.signal_traps(false).canonical_nans(false);
    let mut small = Limits::new();
    small.memory_bytes(32 << 20).stack_bytes(256 << 10);
    for (name, modes, limits) in [
        ("default", Modes::new(), Limits::new()),
        ("pooled, checks in code", pooled, small.clone()),
        ("pooled, guard pages", pooled_guards, Limits::new()),
        ("no signal traps", no_signals, small),
    ] {
        let in_process = Engine::builder()
            .limits(&limits)
            .modes(&modes)
            .build()
            .unwrap();
        let isolated = Engine::builder()
            .limits(&limits)
            .modes(&modes)
            .compile_worker(&worker())
            .build()
            .unwrap();
        assert_eq!(decisions(&isolated), decisions(&in_process), "{name}");
    }
}

#[test]
fn a_worker_that_cannot_answer_is_a_typed_error() {
    let load = |worker: &CompileWorker| {
        Engine::builder()
            .compile_worker(worker)
            .build()
            .unwrap()
            .load(Source::builtin("hpa"), Params::new())
            .err()
            .expect("no code")
    };
    let missing = load(&CompileWorker::new(
        "/nonexistent/leadtime",
        ["compile-worker"],
    ));
    assert_eq!(missing.kind(), leadtime::ErrorKind::Runtime);
    assert!(
        missing.to_string().contains("/nonexistent/leadtime"),
        "{missing}"
    );
    // A program that is no worker: it answers nothing and fails.
    let wrong = load(&CompileWorker::new(
        env!("CARGO_BIN_EXE_leadtime"),
        ["policies"],
    ));
    assert_eq!(wrong.kind(), leadtime::ErrorKind::Runtime, "{wrong}");
    // A module the compiler refuses is refused as invalid, with the compiler's words.
    let engine = Engine::builder().compile_worker(&worker()).build().unwrap();
    let bad = engine
        .load(
            Source::bytes("bad.wasm", &b"\0asm\x01\0\0\0\x01\x04garbage"[..]),
            Params::new(),
        )
        .err()
        .expect("not wasm");
    assert_eq!(bad.kind(), leadtime::ErrorKind::InvalidModule, "{bad}");
}
