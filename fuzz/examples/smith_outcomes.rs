//! How the wasm-smith inputs in a directory end: how many load, how many answer, and the error
//! kinds of the rest. Shows how deep the run_smith target gets past the ABI checks.
//!
//!     cargo run --example smith_outcomes -- corpus/run_smith

use std::collections::BTreeMap;
use leadtime::Source;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/run_smith".into());
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let mut u = arbitrary::Unstructured::new(&data);
        let Ok(module) = wasm_smith::Module::new(leadtime_fuzz::smith_config(), &mut u) else {
            *outcomes.entry("not generated".into()).or_default() += 1;
            continue;
        };
        let engine = leadtime::Engine::new(leadtime_fuzz::limits()).unwrap();
        let outcome = engine
            .load(Source::bytes("smith", &module.to_bytes()), leadtime::Params::new())
            .map(|_| "loaded".to_string())
            .unwrap_or_else(|e| match e.kind() {
                leadtime::ErrorKind::InvalidModule => format!(
                    "load: invalid-module: {}",
                    e.to_string().chars().take(400).collect::<String>()
                ),
                kind => format!("load: {kind}"),
            });
        *outcomes.entry(outcome).or_default() += 1;
    }
    for (outcome, n) in outcomes {
        println!("{n:6}  {outcome}");
    }
}
