//! The fuzz targets' smoke run, for CI: every seed of fuzz/seeds/ (and every crash the fuzzers
//! found, kept there as a regression), the adversarial corpus and the built-in policies go
//! through the very functions `cargo fuzz` runs (fuzz/src/targets.rs, included here).

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use leadtime_tests::fixture;
use std::path::PathBuf;

/// The files of fuzz/seeds/<target>, sorted; the seeds must exist.
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fixture("../fuzz/seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Each seed, then every prefix of it: truncated messages are the commonest broken input.
fn with_prefixes(seeds: Vec<(PathBuf, Vec<u8>)>) -> impl Iterator<Item = Vec<u8>> {
    seeds
        .into_iter()
        .flat_map(|(_, bytes)| (0..=bytes.len()).rev().map(move |n| bytes[..n].to_vec()))
}

#[test]
fn request_seeds_and_their_prefixes_decode_or_fail_cleanly() {
    let mut n = 0;
    for input in with_prefixes(seeds("decode_request")) {
        targets::decode_request(&input);
        n += 1;
    }
    assert!(n > 100, "only {n} inputs");
}

#[test]
fn response_seeds_and_their_prefixes_decode_or_fail_cleanly() {
    for input in with_prefixes(seeds("decode_response")) {
        targets::decode_response(&input);
    }
    // The seeds that are whole responses do decode (the target would pass on a decoder that
    // refused everything).
    let fixed = fixture("../fuzz/seeds/decode_response/fixed.msgpack");
    let response = leadtime::fuzzing::decode_response(&std::fs::read(fixed).unwrap()).unwrap();
    assert_eq!(response.replicas, Some(3));
}

#[test]
fn corpus_modules_built_ins_and_their_truncations_run_cleanly() {
    let mut modules: Vec<Vec<u8>> = std::fs::read_dir(fixture("adversarial"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    for name in leadtime::builtin_names() {
        modules.push(leadtime::builtin_wasm(name).unwrap().to_vec());
    }
    let ok = wat::parse_file(fixture("adversarial/ok_fixed.wat")).unwrap();
    for n in (0..ok.len()).step_by(7) {
        modules.push(ok[..n].to_vec());
    }
    for module in &modules {
        targets::run_module(module);
    }
}

#[test]
fn smith_seeds_generate_modules_that_run_cleanly() {
    for (path, bytes) in seeds("run_smith") {
        // The generated module has the ABI's exports: wasm-smith honoured the shape.
        let mut u = arbitrary::Unstructured::new(&bytes);
        let module = wasm_smith::Module::new(targets::smith_config(), &mut u)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let engine = leadtime::Engine::new(&targets::limits()).unwrap();
        if let Err(e) = engine.inspect(leadtime::Source::bytes("smith", module.to_bytes())) {
            assert_ne!(e.kind(), leadtime::ErrorKind::MissingExport, "{e}");
            assert_ne!(e.kind(), leadtime::ErrorKind::WrongSignature, "{e}");
        }
        targets::run_smith(&bytes);
    }
}

#[test]
fn trace_seeds_and_their_prefixes_parse_or_fail_cleanly() {
    for input in with_prefixes(seeds("parse_trace")) {
        targets::parse_trace(&input);
    }
    // The seeds that are whole traces do parse (the target would pass on a parser that
    // refused everything), and the far-future one is refused by its size, not allocated.
    let text = std::fs::read_to_string(fixture("../fuzz/seeds/parse_trace/unix_gap.csv")).unwrap();
    let columns = leadtime_backtest::Columns::default();
    let trace = leadtime_backtest::Trace::parse(&text, "t", &columns).unwrap();
    assert_eq!((trace.len(), trace.gaps), (4, 1));
    let text =
        std::fs::read_to_string(fixture("../fuzz/seeds/parse_trace/far_future.csv")).unwrap();
    let err = leadtime_backtest::Trace::parse(&text, "t", &columns).unwrap_err();
    assert!(err.to_string().contains("points a trace may have"), "{err}");
    // Resampled too: the buckets were allocated by the time span (an abort on 10^13 of them).
    let resample = leadtime_backtest::Resample::parse("1m").unwrap();
    let err = leadtime_backtest::Trace::parse_resampled(&text, "t", &columns, Some(resample))
        .unwrap_err();
    assert!(err.to_string().contains("points a trace may have"), "{err}");
    // Four rows 35 years apart: under the points cap, but a decision per step of the gap.
    let text =
        std::fs::read_to_string(fixture("../fuzz/seeds/parse_trace/sparse_far.csv")).unwrap();
    let err = leadtime_backtest::Trace::parse(&text, "t", &columns).unwrap_err();
    assert!(err.to_string().starts_with("t:5: its 4 rows span"), "{err}");
    assert!(err.to_string().contains("per row"), "{err}");
    let text =
        std::fs::read_to_string(fixture("../fuzz/seeds/parse_trace/huge_values.csv")).unwrap();
    let err = leadtime_backtest::Trace::parse(&text, "t", &columns).unwrap_err();
    assert!(err.to_string().starts_with("t:2: value `1e308`"), "{err}");
}

#[test]
fn cases_seeds_and_their_prefixes_parse_or_fail_cleanly() {
    for input in with_prefixes(seeds("parse_cases")) {
        targets::parse_cases(&input);
    }
    let text = std::fs::read_to_string(fixture("../fuzz/seeds/parse_cases/template.yaml")).unwrap();
    assert!(!targets::cases::parse(&text, "t").unwrap().cases.is_empty());
}

#[test]
fn large_smith_modules_meet_the_compile_limits_by_name() {
    // wasm-smith with large max_* settings, from the seeds and from more seeded random bytes:
    // every module loads or fails typed (the target's own checks), and the compile-time limits
    // are what refuses the large ones.
    use rand::{RngCore, SeedableRng};
    let mut inputs: Vec<Vec<u8>> = seeds("compile_bounds")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    for _ in 0..24 {
        let mut bytes = vec![0u8; 64 << 10];
        rng.fill_bytes(&mut bytes);
        inputs.push(bytes);
    }
    let mut limits_met = std::collections::BTreeSet::new();
    for input in &inputs {
        if let Some(limit) = targets::compile_bounds(input) {
            limits_met.insert(limit);
        }
    }
    // Random bytes drive wasm-smith mostly into deep nesting; each limit on its own is checked
    // over and at its cap in tests/hostile.rs.
    assert!(
        !limits_met.is_empty(),
        "no compile-time limit refused any of {} large modules",
        inputs.len()
    );
}
