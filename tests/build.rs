//! Compiles the test-only Rust policies (tests/policies/*) to wasm32 with a nested cargo, the
//! way policies/builtin/build.rs builds the built-ins, and tells the tests where each module is
//! (`env!("LEADTIME_TEST_POLICY_<NAME>")`). They are never embedded in the engine.

use std::path::PathBuf;
use std::process::Command;

/// (directory under tests/policies, crate name).
const POLICIES: &[(&str, &str)] = &[("panics", "leadtime-test-policy-panics")];

fn main() {
    let tests_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = tests_dir.parent().unwrap().to_path_buf();
    // A target dir of its own: the outer cargo holds the lock on the usual one.
    let target_dir = workspace.join("target").join("wasm-test-policies");

    for rel in ["wire", "guest-sdk/rust", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(rel).display());
    }
    for (dir, _) in POLICIES {
        let path = tests_dir.join("policies").join(dir);
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--target", "wasm32-unknown-unknown"])
        .args(["--profile", "policy"])
        .arg("--target-dir")
        .arg(&target_dir);
    for (_, krate) in POLICIES {
        cmd.args(["-p", krate]);
    }
    // What the outer build set for the host must not leak into the wasm build.
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
        .expect("failed to run cargo for the test policies");
    assert!(
        status.success(),
        "building the test policies (tests/policies) for wasm32 failed. Is the target installed? \
         Run: rustup target add wasm32-unknown-unknown"
    );

    for (dir, krate) in POLICIES {
        let file = format!("{}.wasm", krate.replace('-', "_"));
        let built = target_dir.join("wasm32-unknown-unknown/policy").join(file);
        let var = format!(
            "LEADTIME_TEST_POLICY_{}",
            dir.to_uppercase().replace('-', "_")
        );
        println!("cargo:rustc-env={var}={}", built.display());
    }
}
