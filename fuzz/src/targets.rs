//! The bodies of the fuzz targets, in one place: `fuzz_targets/*.rs` (cargo fuzz) call them
//! with libFuzzer's inputs, and `tests/fuzz_seeds.rs` (a normal `cargo test`) includes this file
//! and feeds them the seed corpus, so CI runs the same code on every commit.
//!
//! Each target panics only on a real bug: a host crash, a decision outside `[min, max]`, a
//! message that decodes but does not encode again, or a policy failure reported as a failure of
//! the runtime itself.

use leadtime::{codec, Engine, Error, ErrorKind, Limits, Params, Replicas, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Limits for fuzzing: the defaults with a smaller CPU budget and memory cap, so that each
/// input runs in milliseconds. The sandbox is the same code whatever the numbers.
pub fn limits() -> Limits {
    Limits {
        fuel_per_call: 5_000_000,
        memory_bytes: 16 << 20,
        ..Limits::default()
    }
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
    let engine = Engine::new(limits()).expect("engine");
    let mut policy = match engine.load_bytes("fuzz", bytes, Params::new()) {
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
