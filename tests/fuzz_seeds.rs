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
        let engine = leadtime::Engine::new(targets::limits()).unwrap();
        if let Err(e) = engine.inspect(&module.to_bytes()) {
            assert_ne!(e.kind(), leadtime::ErrorKind::MissingExport, "{e}");
            assert_ne!(e.kind(), leadtime::ErrorKind::WrongSignature, "{e}");
        }
        targets::run_smith(&bytes);
    }
}
