//! Compiles the test-only Rust policies (tests/policies/*) to wasm32, the way
//! policies/builtin/build.rs builds the built-ins, and tells the tests where each module is
//! (`env!("LEADTIME_TEST_POLICY_<NAME>")`). They are never embedded in the engine.

use std::path::PathBuf;

/// (directory under tests/policies, crate name).
const POLICIES: &[(&str, &str)] = &[
    ("panics", "leadtime-test-policy-panics"),
    ("echo", "leadtime-test-policy-echo"),
];

fn main() {
    let tests_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = tests_dir.parent().unwrap();

    leadtime_wasm_build::rerun_if_guest_changes(workspace);
    for (dir, _) in POLICIES {
        let path = tests_dir.join("policies").join(dir);
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let crates: Vec<&str> = POLICIES.iter().map(|(_, k)| *k).collect();
    let built = leadtime_wasm_build::build_policies(workspace, "wasm-test-policies", &crates)
        .unwrap_or_else(|e| panic!("{e}"));
    for ((dir, _), module) in POLICIES.iter().zip(built) {
        let var = format!(
            "LEADTIME_TEST_POLICY_{}",
            dir.to_uppercase().replace('-', "_")
        );
        println!("cargo:rustc-env={var}={}", module.display());
    }
}
