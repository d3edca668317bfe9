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

#[cfg(unix)]
#[test]
fn an_untrusted_cache_dir_is_warned_about_and_the_run_goes_on_uncached() {
    use std::os::unix::fs::PermissionsExt;
    let home = std::env::temp_dir().join(format!("leadtime-cli-untrusted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let dir = home.join("leadtime");
    std::fs::create_dir_all(&dir).unwrap();
    // Anyone may write here, so anyone could plant native code for this user to load.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let request = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/request.json");
    let out = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(["decide", "--policy", "target-tracking", "--request"])
        .arg(request)
        .env("XDG_CACHE_HOME", &home)
        .env_remove("LEADTIME_NO_CACHE")
        .output()
        .expect("run leadtime");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(d["replicas"].as_u64().is_some(), "{d}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("warning: "), "{err}");
    assert!(
        err.contains(&dir.display().to_string()),
        "names the dir: {err}"
    );
    assert!(err.contains("writable by group or others"), "{err}");
    assert!(err.contains("running without the cache"), "{err}");
    assert!(cached(&home).is_empty(), "wrote {:?}", cached(&home));
    std::fs::remove_dir_all(&home).unwrap();
}
