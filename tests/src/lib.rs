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
