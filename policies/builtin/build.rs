//! Compiles each built-in policy crate to wasm32 with a nested cargo, so that the host binary
//! embeds them and a fresh clone needs no separate build step.

use std::path::PathBuf;

/// (name users type, crate name). Keep in sync with `src/lib.rs`.
const POLICIES: &[(&str, &str)] = &[
    ("predictive", "leadtime-policy-predictive"),
    ("hpa", "leadtime-policy-hpa"),
    ("target-tracking", "leadtime-policy-target-tracking"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let policies_dir = manifest_dir.parent().unwrap();
    let workspace = policies_dir.parent().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    leadtime_wasm_build::rerun_if_guest_changes(workspace);
    for (dir, _) in POLICIES {
        let path = policies_dir.join(dir);
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let crates: Vec<&str> = POLICIES.iter().map(|(_, k)| *k).collect();
    let built = leadtime_wasm_build::build_policies(workspace, "wasm-policies", &crates)
        .unwrap_or_else(|e| panic!("{e}"));
    for ((name, _), module) in POLICIES.iter().zip(built) {
        let to = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&module, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", module.display(), to.display()));
    }
}
