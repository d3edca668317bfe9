//! The CLI keeps compiled policies under `$XDG_CACHE_HOME/leadtime`, unless told not to.

use std::path::{Path, PathBuf};
use std::process::Command;

fn decide(cache_home: &Path, extra: &[&str]) {
    let request = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/request.json");
    let out = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(["decide", "--policy", "target-tracking", "--request"])
        .arg(request)
        .args(extra)
        .env("XDG_CACHE_HOME", cache_home)
        .env_remove("LEADTIME_NO_CACHE")
        .output()
        .expect("run leadtime");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cached(cache_home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache_home.join("leadtime"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn decide_caches_compiled_code_unless_no_cache() {
    let home = std::env::temp_dir().join(format!("leadtime-cli-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    decide(&home, &["--no-cache"]);
    assert!(
        cached(&home).is_empty(),
        "--no-cache wrote {:?}",
        cached(&home)
    );
    decide(&home, &[]);
    let files = cached(&home);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".cwasm"), "{files:?}");
    // The second run loads the file and leaves it as it was.
    decide(&home, &[]);
    assert_eq!(cached(&home), files);
    std::fs::remove_dir_all(&home).unwrap();
}
