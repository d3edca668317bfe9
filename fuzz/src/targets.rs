//! The bodies of the fuzz targets, in one place: `fuzz_targets/*.rs` (cargo fuzz) call them
//! with libFuzzer's inputs, and `tests/fuzz_seeds.rs` (a normal `cargo test`) includes this file
//! and feeds them the seed corpus, so CI runs the same code on every commit.
//!
//! Each target panics only on a real bug: a host crash, a decision outside `[min, max]`, a
//! message that decodes but does not encode again, or a policy failure reported as a failure of
//! the runtime itself.

use leadtime::Source;

/// The CLI's cases file and parser, compiled in as is (the CLI is a binary, not a library).
#[path = "../../cli/src/cases.rs"]
pub mod cases;
use leadtime::{codec, Engine, Error, ErrorKind, Limits, Params, Replicas, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Limits for fuzzing: the defaults with a smaller CPU budget and memory cap, so that each
/// input runs in milliseconds. The sandbox is the same code whatever the numbers.
pub fn limits() -> Limits {
    let mut limits = Limits::new();
    limits.fuel_per_call(5_000_000).memory_bytes(16 << 20);
    limits
}

/// Decodes a request from MessagePack and from JSON; whatever decodes must encode again and
/// come back the same, and the fast decoder guests use must answer exactly as serde does.
pub fn decode_request(data: &[u8]) {
    let serde = codec::from_msgpack::<Request>(data);
    let fast = codec::request_from_msgpack(data);
    match (&serde, &fast) {
        // Compared as encoded bytes: NaN payloads must match too, and NaN != NaN.
        (Ok(a), Ok(b)) => assert_eq!(
            codec::to_msgpack(a).expect("encodes"),
            codec::to_msgpack(b).expect("encodes"),
            "the fast decoder read another request than serde"
        ),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("serde and the fast decoder disagree: {serde:?} vs {fast:?}"),
    }
    if let Ok(request) = serde {
        msgpack_round_trip(&request);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(request) = codec::from_json::<Request>(text) {
            json_round_trip(&request);
        }
    }
}

/// Decodes a response as the engine does after a call (`leadtime::fuzzing::decode_response`) and from
/// JSON; a response that decodes must give a decision within bounds and encode again.
pub fn decode_response(data: &[u8]) {
    let bounds = Replicas {
        current: 3,
        ready: 3,
        min: 1,
        max: 10,
    };
    match leadtime::fuzzing::decode_response(data) {
        Ok(response) => {
            msgpack_round_trip(&response);
            let decision = leadtime::fuzzing::check(&bounds, response)
                .expect("a decoded response has replicas");
            assert!((bounds.min..=bounds.max).contains(&decision.replicas));
        }
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::BadResponse | ErrorKind::PolicyError),
            "{e}"
        ),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(response) = codec::from_json::<Response>(text) {
            json_round_trip(&response);
        }
    }
}

/// Loads `bytes` (binary wasm or text) as a policy and asks it for two decisions.
pub fn run_module(bytes: &[u8]) {
    // An engine per input: an engine keeps every module it compiled, and a fuzzer makes
    // millions.
    let engine = Engine::new(&limits()).expect("engine");
    let mut policy = match engine.load(Source::bytes("fuzz", bytes), Params::new()) {
        Ok(p) => p,
        Err(e) => return check_error(&e),
    };
    let req = request();
    for _ in 0..2 {
        match policy.decide(&req) {
            Ok(d) => assert!(
                (req.replicas.min..=req.replicas.max).contains(&d.replicas),
                "{d:?}"
            ),
            Err(e) => check_error(&e),
        }
    }
}

/// A policy-shaped module from wasm-smith: exactly the ABI's exports (so that it is not simply
/// refused for a missing one), `leadtime::log` as the only import it may use, and random code.
pub fn run_smith(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(module) = wasm_smith::Module::new(smith_config(), &mut u) else {
        return;
    };
    run_module(&module.to_bytes());
}

/// The wasm-smith configuration of [`run_smith`]: the features the sandbox's wasmtime accepts.
pub fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        exports: Some(
            wat::parse_str(
                r#"(module
                  (memory (export "memory") 1)
                  (func (export "leadtime_abi_version") (result i32) unreachable)
                  (func (export "leadtime_alloc") (param i32) (result i32) unreachable)
                  (func (export "leadtime_decide") (param i32 i32) (result i64) unreachable)
                  (func (export "leadtime_init") (param i32 i32) (result i32) unreachable))"#,
            )
            .expect("the ABI shape parses"),
        ),
        available_imports: Some(
            wat::parse_str(r#"(module (import "leadtime" "log" (func (param i32 i32 i32))))"#)
                .expect("the import shape parses"),
        ),
        max_memories: 1,
        max_memory32_bytes: 64 << 20,
        memory64_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        // Small modules compile in milliseconds: more inputs per second, the same sandbox.
        max_funcs: 20,
        max_instructions: 500,
        ..wasm_smith::Config::default()
    }
}

/// Limits for [`compile_bounds`]: low compile-time limits, so that wasm-smith's large modules
/// cross them often; everything else as [`limits`].
pub fn tight_limits() -> Limits {
    let mut limits = limits();
    limits
        .module_functions(200)
        .function_bytes(8 << 10)
        .function_locals(100)
        .nesting_depth(20);
    limits
}

/// wasm-smith with large `max_*` settings: many functions, long deep bodies, many locals, far
/// past [`tight_limits`].
pub fn smith_large_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_funcs: 2_000,
        max_instructions: 20_000,
        max_nesting_depth: 500,
        max_type_size: 2_000,
        min_funcs: 1,
        ..smith_config()
    }
}

/// A large wasm-smith module loaded under [`tight_limits`]: it loads, or fails with a typed
/// error; a module over a compile-time limit fails with `ModuleOverLimit`, never by compiling.
/// Returns the error's limit, if any, for the seeds' test.
pub fn compile_bounds(data: &[u8]) -> Option<&'static str> {
    let mut u = arbitrary::Unstructured::new(data);
    let module = wasm_smith::Module::new(smith_large_config(), &mut u).ok()?;
    let engine = Engine::new(&tight_limits()).expect("engine");
    match engine.load(Source::bytes("smith", module.to_bytes()), Params::new()) {
        Ok(_) => None,
        Err(Error::ModuleOverLimit { limit, .. }) => Some(limit),
        Err(e) => {
            check_error(&e);
            None
        }
    }
}

/// The backtest's trace parser on any text, as read and resampled: a trace or an error naming the
/// problem, never a panic or an abort; a trace it returns is on a grid of at most
/// `MAX_TRACE_POINTS`, with a positive step and finite non-negative values (NaN only for gaps)
/// whose sum is finite.
pub fn parse_trace(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let columns = leadtime_backtest::Columns::default();
    // As read, and bucketed (`--resample`) on the finest grid and a coarser one.
    for resample in [None, Some("1s:sum"), Some("5m:max")] {
        let resample = resample.map(|r| leadtime_backtest::Resample::parse(r).expect("valid"));
        let Ok(trace) =
            leadtime_backtest::Trace::parse_resampled(text, "fuzz.csv", &columns, resample)
        else {
            continue;
        };
        assert!(trace.step_ms > 0, "step {}", trace.step_ms);
        assert!(trace.len() as u64 <= leadtime_backtest::MAX_TRACE_POINTS);
        assert!(trace.len() >= if resample.is_some() { 1 } else { 2 });
        let gaps = trace.values.iter().filter(|v| v.is_nan()).count();
        assert_eq!(gaps, trace.gaps);
        assert!(trace
            .values
            .iter()
            .all(|v| v.is_nan() || (v.is_finite() && *v >= 0.0)));
        // Sums of demand stay finite (`MAX_TRACE_VALUE`).
        let total: f64 = trace.values.iter().filter(|v| !v.is_nan()).sum();
        assert!(total.is_finite(), "total demand {total}");
        let _ = trace.end_ms();
    }
}

/// The CLI's cases parser (`leadtime test --cases`) on any text: cases or an error, never a
/// panic, and quickly whatever the nesting.
pub fn parse_cases(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = cases::parse(text, "fuzz.yaml") {
        for case in &file.cases {
            if let Some(expect) = &case.expect {
                if let Some(count) = &expect.replicas {
                    let _ = count.to_string();
                }
            }
        }
    }
}

/// A failed load or call is one of the typed errors a policy can cause, never the runtime's.
fn check_error(e: &Error) {
    assert_ne!(
        e.kind(),
        ErrorKind::Runtime,
        "a policy broke the runtime: {e}"
    );
    assert!(!e.to_string().is_empty(), "{:?} has no message", e.kind());
}

fn request() -> Request {
    Request {
        abi_version: leadtime::abi::ABI_VERSION,
        now: 1_700_000_000_000,
        workload: Default::default(),
        replicas: Replicas {
            current: 3,
            ready: 3,
            min: 1,
            max: 10,
        },
        metrics: vec![leadtime::Metric {
            name: "load".into(),
            target_per_pod: 10.0,
            interval_seconds: 60.0,
            end: 1_700_000_000_000,
            values: vec![10.0, f64::NAN, 30.0],
        }],
        ready_times: vec![],
        events: vec![],
        params: Params::new(),
        state: None,
    }
}

fn msgpack_round_trip<T: Serialize + DeserializeOwned>(value: &T) {
    let bytes = codec::to_msgpack(value).expect("a decoded message encodes");
    let again: T = codec::from_msgpack(&bytes).expect("an encoded message decodes");
    let bytes_again = codec::to_msgpack(&again).expect("it encodes again");
    assert_eq!(
        bytes, bytes_again,
        "MessagePack round trip changed the message"
    );
}

fn json_round_trip<T: Serialize + DeserializeOwned>(value: &T) {
    let text = codec::to_json(value).expect("a decoded message encodes");
    let _: T = codec::from_json(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
}
