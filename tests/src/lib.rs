//! Helpers shared by the cross-crate tests.

use leadtime::{Metric, Replicas, Request, Workload};
use std::path::PathBuf;

/// A file under `tests/` by its path relative to that folder.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A request with one metric window of `values` at `target_per_pod`.
pub fn request(values: &[f64], target_per_pod: f64, replicas: Replicas) -> Request {
    Request {
        abi_version: leadtime::abi::ABI_VERSION,
        now: 1_700_000_000_000,
        workload: Workload {
            namespace: "default".into(),
            name: "web".into(),
        },
        replicas,
        metrics: vec![Metric {
            name: "load".into(),
            target_per_pod,
            interval_seconds: 60.0,
            end: 1_700_000_000_000,
            values: values.to_vec(),
        }],
        ready_times: vec![],
        events: vec![],
        params: Default::default(),
        state: None,
    }
}

/// Replica bounds with `current` = `ready`.
pub fn replicas(current: u32, min: u32, max: u32) -> Replicas {
    Replicas {
        current,
        ready: current,
        min,
        max,
    }
}

/// The modules of `tests/adversarial/`, sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(fixture("adversarial"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    files.sort();
    files
}

/// What a corpus module's first line says must happen to it: `<error-kind>` or `ok <replicas>`.
pub fn expectation(text: &str) -> &str {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix(";; expect: "))
        .expect("first line must be `;; expect: ...`")
        .trim()
}

/// What happens to a corpus module on `engine`, in the form of [`expectation`].
pub fn corpus_outcome(engine: &leadtime::Engine, path: &std::path::Path) -> String {
    let req = request(&[10.0, 20.0, 30.0], 10.0, replicas(2, 1, 10));
    let result = engine
        .load(leadtime::Source::file(path), leadtime::Params::new())
        .and_then(|mut p| p.decide(&req));
    match result {
        Ok(d) => format!("ok {}", d.replicas),
        Err(e) => e.kind().to_string(),
    }
}

/// Asserts that a good policy on `engine` still answers, as after a hostile module on it.
pub fn assert_good_policy_still_answers(engine: &leadtime::Engine) {
    let mut good = engine
        .load(
            leadtime::Source::builtin("target-tracking"),
            leadtime::Params::new(),
        )
        .unwrap();
    let d = good
        .decide(&request(&[95.0], 10.0, replicas(2, 1, 20)))
        .unwrap();
    assert_eq!(d.replicas, 10);
}
