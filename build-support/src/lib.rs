//! Builds Rust policy crates of this workspace to `wasm32-unknown-unknown` with a nested cargo,
//! for the build scripts that embed them and the tests that load them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target every policy is built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// What the outer build set for the host and must not leak into the wasm build: clippy's
/// wrapper, host rustflags, coverage instrumentation, a target dir or target of its own.
const HOST_ONLY_VARS: [&str; 9] = [
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

/// Builds `crates` (workspace package names) with the `policy` profile into
/// `<workspace>/target/<target_subdir>` and returns each module's path, in the same order.
///
/// The target dir is separate because the outer cargo holds the lock on the usual one.
pub fn build_policies(
    workspace: &Path,
    target_subdir: &str,
    crates: &[&str],
) -> Result<Vec<PathBuf>, String> {
    let target_dir = workspace.join("target").join(target_subdir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--target",
            TARGET,
            "--profile",
            "policy",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for krate in crates {
        cmd.args(["-p", krate]);
    }
    for var in HOST_ONLY_VARS {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("could not run cargo to build {crates:?} for {TARGET}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building {crates:?} for {TARGET} failed ({}). Is the target installed? \
             Run: rustup target add {TARGET}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(crates
        .iter()
        .map(|k| {
            target_dir
                .join(TARGET)
                .join("policy")
                .join(format!("{}.wasm", k.replace('-', "_")))
        })
        .collect())
}

/// Tells cargo to rerun a build script when the guest side of the ABI or the lock file changes.
pub fn rerun_if_guest_changes(workspace: &Path) {
    for rel in ["wire", "guest-sdk/rust", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(rel).display());
    }
}
