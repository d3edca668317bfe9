//! Compiles each built-in policy crate to wasm32-unknown-unknown with a nested cargo, so that the
//! host binary embeds them and a fresh clone needs no separate build step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (name users type, crate name). Keep in sync with `src/lib.rs`.
const POLICIES: &[(&str, &str)] = &[
    ("predictive", "leadtime-policy-predictive"),
    ("hpa", "leadtime-policy-hpa"),
    ("target-tracking", "leadtime-policy-target-tracking"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let policies_dir = manifest_dir.parent().unwrap().to_path_buf();
    let workspace = policies_dir.parent().unwrap().to_path_buf();
    // A target dir of its own: the outer cargo holds the lock on the usual one.
    let target_dir = workspace.join("target").join("wasm-policies");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("wire").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("guest-sdk/rust").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    for (dir, _) in POLICIES {
        println!(
            "cargo:rerun-if-changed={}",
            policies_dir.join(dir).display()
        );
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "policy",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for (_, krate) in POLICIES {
        cmd.args(["-p", krate]);
    }
    // What the outer build set for the host must not leak into the wasm build (clippy's wrapper,
    // host rustflags, coverage instrumentation).
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("failed to run cargo for the built-in policies");
    if !status.success() {
        panic!(
            "building the built-in policies for wasm32 failed. Is the target installed? \
             Run: rustup target add wasm32-unknown-unknown"
        );
    }

    for (name, krate) in POLICIES {
        let file = format!("{}.wasm", krate.replace('-', "_"));
        let built = target_dir.join("wasm32-unknown-unknown/policy").join(&file);
        copy(&built, &out_dir.join(format!("{name}.wasm")));
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
