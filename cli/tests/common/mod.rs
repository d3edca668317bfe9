//! What the CLI's end-to-end tests share: where the repository is and how to run the binary.
// Each test file uses some of these helpers, not all.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A path in the repository, relative to its root.
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// Runs `leadtime` with `args`. Compiled modules are not cached, so runs leave nothing in the
/// user's cache (cli/tests/cache.rs tests the cache on its own folder).
pub fn leadtime(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(args)
        .env("LEADTIME_NO_CACHE", "1")
        .output()
        .expect("run leadtime")
}

/// The command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
