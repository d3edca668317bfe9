//! Corpus cases that cannot be a small `.wat` file in tests/adversarial/: a real Rust policy that
//! panics (tests/policies/panics, built by tests/build.rs), and modules generated here because
//! their point is their size or a lying length. Each ends in its typed error, and a good policy
//! on the same engine still answers afterwards.

use leadtime::Source;
use leadtime::{Engine, ErrorKind, Limits, Modes, Param, Params, Policy};
use leadtime_tests::{assert_good_policy_still_answers, replicas, request};

/// The test policy that panics (see tests/policies/panics/src/lib.rs).
const PANICS_WASM: &str = env!("LEADTIME_TEST_POLICY_PANICS");
/// What every panic of that policy says.
const PANIC_MESSAGE: &str = "the test policy panics on purpose";

fn panics_policy(engine: &Engine, params: Params) -> leadtime::Result<Policy> {
    engine.load(Source::file(std::path::Path::new(PANICS_WASM)), params)
}

#[test]
fn a_rust_policy_that_panics_is_a_trap_carrying_the_panic_message() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut policy = panics_policy(&engine, Params::new()).unwrap();
    let req = request(&[42.0], 10.0, replicas(2, 1, 10));
    for call in 0..3 {
        let err = policy.decide(&req).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Trap, "call {call}: {err}");
        let text = err.to_string();
        assert!(text.contains(PANIC_MESSAGE), "call {call}: {text}");
        // The panic's own formatted detail, and where it happened, reach the host.
        assert!(
            text.contains("load 42 >= panic_at 0"),
            "call {call}: {text}"
        );
        assert!(text.contains("lib.rs"), "call {call}: {text}");
    }
    assert_good_policy_still_answers(&engine);
}

#[test]
fn the_panicking_policy_answers_below_its_threshold_and_recovers_after_a_panic() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut params = Params::new();
    params.insert("panic_at".into(), Param::Number(100.0));
    let mut policy = panics_policy(&engine, params).unwrap();
    // (latest load, Some(replicas) or None for a panic)
    let cases = [
        (50.0, Some(5)),
        (150.0, None),
        (99.0, Some(10)),
        (100.0, None),
        (10.0, Some(1)),
    ];
    for (load, want) in cases {
        let got = policy.decide(&request(&[load], 10.0, replicas(2, 1, 20)));
        match (want, got) {
            (Some(n), Ok(d)) => assert_eq!(d.replicas, n, "load {load}"),
            (None, Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Trap, "load {load}: {e}");
                assert!(e.to_string().contains(PANIC_MESSAGE), "load {load}: {e}");
            }
            (want, got) => panic!("load {load}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_panic_in_init_fails_the_load_as_a_trap_with_the_message() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut params = Params::new();
    params.insert("panic_in_init".into(), Param::Bool(true));
    let err = panics_policy(&engine, params)
        .err()
        .expect("load must fail");
    assert_eq!(err.kind(), ErrorKind::Trap, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{PANIC_MESSAGE} in init")),
        "{err}"
    );
    assert_good_policy_still_answers(&engine);
}

/// Appends `n` as an unsigned LEB128.
fn leb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A section with this id and body.
fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
    out.push(id);
    leb(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// A complete policy module whose memory holds an active data segment of `data_len` bytes at
/// address 0, answering `{replicas: 3}` from the end of that segment. The memory has `pages`, or
/// when `None` just enough for the segment and the request buffer after it. When `lie` is set,
/// the segment's length field claims `lie` bytes instead and the bytes are left out.
fn module_with_data(data_len: usize, pages: Option<u64>, lie: Option<u64>) -> Vec<u8> {
    let answer = b"\x81\xa8replicas\x03";
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // Types: 0 () -> i32, 1 (i32) -> i32, 2 (i32, i32) -> i64.
    section(
        &mut m,
        1,
        &[
            3, 0x60, 0, 1, 0x7f, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 2, 0x7f, 0x7f, 1, 0x7e,
        ],
    );
    section(&mut m, 3, &[3, 0, 1, 2]);
    let data_end = data_len + answer.len();
    // alloc hands out the page after the data.
    let scratch = data_end.div_ceil(65536) * 65536;
    let mut mem = vec![1, 0];
    leb(&mut mem, pages.unwrap_or(scratch as u64 / 65536 + 1));
    section(&mut m, 5, &mem);
    let mut exports = vec![4];
    for (name, kind, index) in [
        (&b"memory"[..], 2u8, 0u8),
        (b"leadtime_abi_version", 0, 0),
        (b"leadtime_alloc", 0, 1),
        (b"leadtime_decide", 0, 2),
    ] {
        exports.push(name.len() as u8);
        exports.extend_from_slice(name);
        exports.extend([kind, index]);
    }
    section(&mut m, 7, &exports);
    // Code: version returns 1; alloc returns the page after the data; decide returns the answer.
    let packed = ((data_len as i64) << 32) | answer.len() as i64;
    let mut bodies: Vec<Vec<u8>> = vec![vec![0, 0x41, 1, 0x0b]];
    let mut alloc = vec![0, 0x41];
    sleb(&mut alloc, scratch as i64);
    alloc.push(0x0b);
    bodies.push(alloc);
    let mut decide = vec![0, 0x42];
    sleb(&mut decide, packed);
    decide.push(0x0b);
    bodies.push(decide);
    let mut code = vec![3];
    for body in bodies {
        leb(&mut code, body.len() as u64);
        code.extend(body);
    }
    section(&mut m, 10, &code);
    // Data: one active segment at 0: `data_len` zeros then the answer.
    let mut data = vec![1, 0, 0x41, 0, 0x0b];
    match lie {
        Some(claimed) => leb(&mut data, claimed),
        None => {
            leb(&mut data, data_end as u64);
            data.resize(data.len() + data_len, 0);
            data.extend_from_slice(answer);
        }
    }
    section(&mut m, 11, &data);
    m
}

/// Appends `n` as a signed LEB128.
fn sleb(out: &mut Vec<u8>, mut n: i64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let done = (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

#[test]
fn the_generated_module_is_a_working_policy() {
    // The generator itself is right: a small segment loads and answers 3.
    let engine = Engine::new(&Limits::default()).unwrap();
    let bytes = module_with_data(100, None, None);
    let mut policy = engine
        .load(Source::bytes("small-data", &bytes), Params::new())
        .unwrap();
    let d = policy
        .decide(&request(&[1.0], 1.0, replicas(2, 1, 10)))
        .unwrap();
    assert_eq!(d.replicas, 3);
}

#[test]
fn huge_data_segments_end_in_their_typed_errors() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let cap = Limits::default().get_module_bytes();
    let req = request(&[1.0], 1.0, replicas(2, 1, 10));
    // (what, module, expected: Ok(replicas) or Err(kind))
    let cases: Vec<(&str, Vec<u8>, Result<u32, ErrorKind>)> = vec![
        (
            "15 MiB of data, under the module cap: loads and answers",
            module_with_data(15 << 20, None, None),
            Ok(3),
        ),
        (
            "17 MiB of data: over the module cap",
            module_with_data(17 << 20, None, None),
            Err(ErrorKind::InvalidModule),
        ),
        (
            "a segment claiming 4 GiB in a tiny file",
            module_with_data(0, Some(1), Some(u32::MAX as u64)),
            Err(ErrorKind::InvalidModule),
        ),
        (
            "a segment claiming 2^60 bytes",
            module_with_data(0, Some(1), Some(1 << 60)),
            Err(ErrorKind::InvalidModule),
        ),
        (
            "1 MiB of data in a memory of one page: past its memory",
            module_with_data(1 << 20, Some(1), None),
            Err(ErrorKind::Trap),
        ),
        (
            "60 MiB of memory filled by a segment, within the memory cap: over the module cap",
            module_with_data(60 << 20, None, None),
            Err(ErrorKind::InvalidModule),
        ),
    ];
    for (what, bytes, want) in cases {
        if want.is_ok() {
            assert!(bytes.len() < cap, "{what}: the case must fit the cap");
        }
        let got = engine
            .load(Source::bytes(what, &bytes), Params::new())
            .and_then(|mut p| p.decide(&req));
        match (want, got) {
            (Ok(n), Ok(d)) => assert_eq!(d.replicas, n, "{what}"),
            (Err(kind), Err(e)) => assert_eq!(e.kind(), kind, "{what}: {e}"),
            (want, got) => panic!(
                "{what}: expected {want:?}, got {:?}",
                got.map(|d| d.replicas)
            ),
        }
        assert_good_policy_still_answers(&engine);
    }
}

/// A policy whose `decide` grows its table (declared `table`) by `delta` elements, again and again
/// if `again`, and traps when growth is refused quietly (-1): a refusal by the sandbox must be the
/// typed error, never a trap or a loop.
fn table_grower(table: &str, delta: u32, again: bool) -> String {
    let grow = format!(
        "(if (i32.eq (table.grow $t (ref.null func) (i32.const {delta})) (i32.const -1)) \
         (then unreachable))"
    );
    let body = if again {
        format!("(loop $l {grow} (br $l))")
    } else {
        grow
    };
    format!(
        r#"(module
  (memory (export "memory") 2)
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  (table $t {table})
  (func (export "leadtime_decide") (param i32 i32) (result i64) {body} i64.const 0))"#
    )
}

#[test]
fn table_growth_past_the_cap_is_out_of_memory_whatever_the_delta_or_fuel() {
    // Before: wasmtime charged a fuel unit per element asked before trying, so a delta over the
    // fuel left (here 4 billion, or 2 million on a budget of one million) ended as out-of-fuel.
    let req = request(&[1.0], 1.0, replicas(2, 1, 10));
    for pooled in [false, true] {
        for fuel in [Limits::default().get_fuel_per_call(), 1_000_000] {
            let mut limits = Limits::new();
            limits.table_elements(1_000).fuel_per_call(fuel);
            let engine = Engine::builder()
                .limits(&limits)
                .modes(Modes::new().fresh_instance_per_call(pooled))
                .build()
                .unwrap();
            for (table, delta, again) in [
                ("1 funcref", 1, true),
                ("1 funcref", 1_000, false),
                ("1 funcref", 2_000_000, false),
                ("1 funcref", 1 << 31, false),
                ("1 funcref", u32::MAX, false),
                // A declared maximum above the cap: the cap still wins.
                ("1 2000000 funcref", 1_500_000, false),
                ("1 2000000 funcref", u32::MAX, false),
            ] {
                let what = format!(
                    "pooled {pooled}, fuel {fuel}, table ({table}), grown by {delta}{}",
                    if again { " again and again" } else { "" }
                );
                let wat = table_grower(table, delta, again);
                let err = engine
                    .load(Source::bytes(what.as_str(), wat.as_bytes()), Params::new())
                    .and_then(|mut p| p.decide(&req))
                    .err()
                    .unwrap_or_else(|| panic!("{what}: answered"));
                assert!(
                    matches!(
                        err,
                        leadtime::Error::OutOfMemory { what: "table", cap: 1_000, desired }
                            if desired > 1_000
                    ),
                    "{what}: {err}"
                );
            }
            // Growth within the cap still works, and costs no fuel per element.
            let mut ok = engine
                .load(
                    Source::bytes("within", table_grower("1 funcref", 999, false).as_bytes()),
                    Params::new(),
                )
                .unwrap();
            assert_eq!(
                ok.decide(&req).unwrap_err().kind(),
                ErrorKind::BadResponse,
                "grown within the cap, it answers (an empty response)"
            );
            assert_good_policy_still_answers(&engine);
        }
    }
}

// ---- Bounded loading: limits checked before compiling. ----

/// A module of `functions` functions of type () -> (), each `body` (locals and code, without
/// the size prefix), plus no exports: compiling it is the whole cost.
fn module_of_functions(functions: u64, body: &[u8]) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(&mut m, 1, &[1, 0x60, 0, 0]);
    let mut funcs = Vec::new();
    leb(&mut funcs, functions);
    funcs.extend(std::iter::repeat_n(0u8, functions as usize));
    section(&mut m, 3, &funcs);
    let mut code = Vec::new();
    leb(&mut code, functions);
    for _ in 0..functions {
        leb(&mut code, body.len() as u64);
        code.extend_from_slice(body);
    }
    section(&mut m, 10, &code);
    m
}

/// A body with no locals: `depth` nested blocks, then their ends.
fn nested_blocks(depth: usize) -> Vec<u8> {
    let mut body = vec![0];
    for _ in 0..depth {
        body.extend_from_slice(&[0x02, 0x40]);
    }
    body.extend(std::iter::repeat_n(0x0b, depth + 1));
    body
}

/// The module's load error, which must be `ModuleOverLimit` naming `limit`.
fn assert_over_limit(engine: &Engine, what: &str, module: &[u8], limit: &str) {
    let err = engine
        .load(Source::bytes(what, module), Params::new())
        .err()
        .unwrap_or_else(|| panic!("{what}: loaded"));
    assert_eq!(err.kind(), ErrorKind::InvalidModule, "{what}: {err}");
    assert!(
        matches!(&err, leadtime::Error::ModuleOverLimit { limit: l, .. } if *l == limit),
        "{what}: {err}"
    );
    assert!(
        err.to_string().contains(&format!("Limits::{limit}")),
        "{err}"
    );
}

#[test]
fn a_module_over_a_compile_limit_is_refused_by_name_before_it_is_compiled() {
    let engine = Engine::new(&Limits::default()).unwrap();
    // Each took seconds to minutes, or gigabytes, to compile before the limits.
    assert_over_limit(
        &engine,
        "80,000 nested blocks",
        &module_of_functions(1, &nested_blocks(80_000)),
        "nesting_depth",
    );
    assert_over_limit(
        &engine,
        "a million empty functions",
        &module_of_functions(1_000_000, &[0, 0x0b]),
        "module_functions",
    );
    let mut nops = vec![0];
    nops.extend(std::iter::repeat_n(0x01, 2 << 20));
    nops.push(0x0b);
    assert_over_limit(
        &engine,
        "a 2 MiB function",
        &module_of_functions(1, &nops),
        "function_bytes",
    );
    // One declaration of 60,000 i32 locals.
    let mut locals = vec![1];
    leb(&mut locals, 60_000);
    locals.extend_from_slice(&[0x7f, 0x0b]);
    assert_over_limit(
        &engine,
        "60,000 locals",
        &module_of_functions(1, &locals),
        "function_locals",
    );
    assert_good_policy_still_answers(&engine);
}

#[test]
fn each_compile_limit_is_its_own_option() {
    // Just over and just within each limit, set low: the count is exact, not a rough bound.
    let mut limits = Limits::new();
    limits
        .nesting_depth(10)
        .module_functions(5)
        .function_bytes(100)
        .function_locals(8);
    let engine = Engine::new(&limits).unwrap();
    let within = |m: &[u8]| match engine.load(Source::bytes("m", m), Params::new()) {
        // Within every limit, it compiles and fails only on the ABI.
        Err(e) => assert_eq!(e.kind(), ErrorKind::MissingExport, "{e}"),
        Ok(_) => panic!("a module without exports loaded"),
    };
    within(&module_of_functions(1, &nested_blocks(10)));
    assert_over_limit(
        &engine,
        "11 levels",
        &module_of_functions(1, &nested_blocks(11)),
        "nesting_depth",
    );
    within(&module_of_functions(5, &[0, 0x0b]));
    assert_over_limit(
        &engine,
        "6 functions",
        &module_of_functions(6, &[0, 0x0b]),
        "module_functions",
    );
    let body = |n: usize| {
        let mut b = vec![0];
        b.extend(std::iter::repeat_n(0x01, n - 2));
        b.push(0x0b);
        b
    };
    within(&module_of_functions(1, &body(100)));
    assert_over_limit(
        &engine,
        "101 bytes",
        &module_of_functions(1, &body(101)),
        "function_bytes",
    );
    within(&module_of_functions(1, &[2, 4, 0x7f, 4, 0x7e, 0x0b]));
    assert_over_limit(
        &engine,
        "9 locals in two declarations",
        &module_of_functions(1, &[2, 4, 0x7f, 5, 0x7e, 0x0b]),
        "function_locals",
    );
}

#[test]
fn a_compile_past_its_deadline_is_a_typed_error() {
    // No time is measured here: a deadline of zero has passed before any compile can finish.
    let engine = Engine::new(Limits::new().compile_time(std::time::Duration::ZERO)).unwrap();
    let err = engine
        .load(Source::builtin("predictive"), Params::new())
        .err()
        .expect("compiled in no time");
    assert!(
        matches!(err, leadtime::Error::CompileTimeout { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidModule);
    assert!(err.to_string().contains("Limits::compile_time"), "{err}");
}

#[test]
fn every_built_in_loads_within_the_default_limits() {
    let engine = Engine::new(&Limits::default()).unwrap();
    for name in leadtime::builtin_names() {
        engine
            .load(Source::builtin(name), Params::new())
            .unwrap_or_else(|e| panic!("{name}: {}", e.report()));
    }
}

#[cfg(unix)]
#[test]
fn a_link_to_a_device_is_refused_without_being_read() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("zero.wasm");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let engine = Engine::new(&Limits::default()).unwrap();
    let err = engine
        .load(Source::file(&link), Params::new())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.report().contains("not a regular file"),
        "{}",
        err.report()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_bytes_are_said_to_be_no_module_not_bad_utf8() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let err = engine
        .load(
            Source::bytes("garbage", &b"\x7fELF\xff\xfe not a module"[..]),
            Params::new(),
        )
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidModule);
    let text = err.report();
    assert!(!text.contains("utf-8"), "{text}");
    assert!(text.contains("neither a WebAssembly binary"), "{text}");
}

#[test]
fn errors_keep_their_sources() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let err = engine
        .load(
            Source::bytes("bad", &b"\0asm\x01\0\0\0\x99"[..]),
            Params::new(),
        )
        .err()
        .unwrap();
    let source = std::error::Error::source(&err).expect("wasmtime's error is the source");
    assert!(!source.to_string().is_empty());
    assert!(err.report().starts_with("not a valid WebAssembly module: "));
}

#[test]
fn a_policys_log_lines_and_error_reach_the_host_escaped() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut policy = engine
        .load(
            Source::file(&leadtime_tests::fixture(
                "adversarial/log_terminal_escapes.wat",
            )),
            Params::new(),
        )
        .unwrap();
    let err = policy
        .decide(&request(&[1.0], 10.0, replicas(2, 1, 10)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyError);
    let escaped = "ok\\r\\u{1b}[2Kdecision: 100 replicas\\u{1b}]0;pwned\\u{7}";
    assert_eq!(err.to_string(), escaped);
    assert_eq!(policy.last_logs()[0].message, escaped);
}
