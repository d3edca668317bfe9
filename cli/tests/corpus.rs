//! `leadtime decide` over the whole adversarial corpus (tests/adversarial/, the Rust policy that
//! panics, and garbage, truncated and oversized files): every module that must fail prints one
//! `error: <kind>: <detail>` line on stderr and exits 1, never 101 (a panic) and never by a
//! signal; every module whose header says `ok N` prints a decision of N replicas.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn decide(policy: &Path) -> Output {
    let request = repo().join("examples/request.json");
    Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(["decide", "--policy"])
        .arg(policy)
        .arg("--request")
        .arg(request)
        .output()
        .expect("run leadtime")
}

/// Checks one run against `want` (`ok N` or an error kind); returns what went wrong, if anything.
fn check(what: &str, want: &str, out: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(code) = out.status.code() else {
        return Some(format!("{what}: killed by a signal ({})", out.status));
    };
    if let Some(n) = want.strip_prefix("ok ") {
        if code != 0 {
            return Some(format!("{what}: expected {want}, exit {code}: {stderr}"));
        }
        let decision: serde_json::Value = match serde_json::from_str(&stdout) {
            Ok(v) => v,
            Err(e) => return Some(format!("{what}: stdout is not a decision ({e}): {stdout}")),
        };
        let want_replicas: u64 = n.parse().expect("`ok N` has a number");
        if decision["replicas"].as_u64() != Some(want_replicas) {
            return Some(format!("{what}: expected {want}, got {decision}"));
        }
        return None;
    }
    let lines: Vec<&str> = stderr.lines().collect();
    let prefix = format!("error: {want}: ");
    if code != 1 {
        Some(format!("{what}: expected exit 1, got {code}: {stderr}"))
    } else if lines.len() != 1 {
        Some(format!(
            "{what}: expected one stderr line, got {}: {stderr}",
            lines.len()
        ))
    } else if !lines[0].starts_with(&prefix) || lines[0].len() <= prefix.len() {
        Some(format!(
            "{what}: expected `{prefix}<detail>`, got: {stderr}"
        ))
    } else if !stdout.is_empty() {
        Some(format!("{what}: a failure printed to stdout: {stdout}"))
    } else {
        None
    }
}

#[test]
fn decide_on_every_corpus_module_ends_as_its_header_says() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/adversarial"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "corpus has only {} modules", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let want = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix(";; expect: "))
            .unwrap_or_else(|| panic!("{}: no `;; expect:` header", path.display()))
            .trim()
            .to_string();
        let what = path.file_name().unwrap().to_string_lossy().into_owned();
        failures.extend(check(&what, &want, &decide(path)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decide_on_garbage_truncated_and_oversized_files_is_an_invalid_module() {
    let dir = std::env::temp_dir().join(format!("leadtime-cli-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = std::fs::read(repo().join("tests/adversarial/ok_fixed.wat")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage.wasm", b"\x7fELF definitely not wasm".to_vec()),
        ("empty.wasm", Vec::new()),
        ("header_only.wasm", b"\0asm\x01\0\0\0\x01".to_vec()),
        ("truncated.wat", ok[..ok.len() / 2].to_vec()),
        ("oversized.wasm", vec![0; 17 << 20]),
    ];
    let mut failures = Vec::new();
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        failures.extend(check(name, "invalid-module", &decide(&path)));
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Builds tests/policies/panics for wasm32 (as tests/build.rs does) and returns the module.
fn build_panicking_policy() -> PathBuf {
    let built = leadtime_wasm_build::build_policies(
        &repo(),
        "wasm-test-policies",
        &["leadtime-test-policy-panics"],
    );
    built.unwrap_or_else(|e| panic!("{e}")).remove(0)
}

#[test]
fn decide_on_a_rust_policy_that_panics_reports_the_trap_and_its_message() {
    let policy = build_panicking_policy();
    let out = decide(&policy);
    if let Some(failure) = check("panics.wasm", "trap", &out) {
        panic!("{failure}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the test policy panics on purpose"),
        "{stderr}"
    );
}
