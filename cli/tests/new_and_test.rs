//! `leadtime new` and `leadtime test` end to end: each scaffold built with its real compiler and
//! checked against its own cases and the fuzzer; failures reported as a diff, with exit code 1.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty folder for one test under cargo's per-crate temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("new_and_test")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(cmd: &mut Command, hint: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}. {hint}"));
    assert!(out.status.success(), "{cmd:?}: {}\n{hint}", text(&out));
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Creates a project with `leadtime new` in `dir` and builds it; returns the built module.
fn new_and_build(lang: &str, dir: &Path) -> PathBuf {
    let project = dir.join("my-policy");
    let mut args = vec!["new", "--lang", lang, "my-policy", "--dir", path(&project)];
    let guest = repo("guest-sdk/rust");
    if lang == "rust" {
        // Outside this repository, the scaffold depends on leadtime-guest from crates.io.
        args.extend(["--guest-path", path(&guest)]);
    }
    let out = leadtime(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(project.join("cases.yaml").is_file());
    assert!(project.join("README.md").is_file());
    match lang {
        "rust" => {
            // One target dir for every run, so that the SDK's dependencies build once.
            let target = repo("target/scaffold-wasm");
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(&project)
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "--target",
                    "wasm32-unknown-unknown",
                ])
                .env("CARGO_TARGET_DIR", &target);
            for var in [
                "RUSTFLAGS",
                "CARGO_ENCODED_RUSTFLAGS",
                "RUSTC_WRAPPER",
                "RUSTC_WORKSPACE_WRAPPER",
            ] {
                cmd.env_remove(var);
            }
            run(&mut cmd, "Run `make setup` (wasm32 target).");
            target.join("wasm32-unknown-unknown/release/my_policy.wasm")
        }
        "c" => {
            run(
                Command::new(project.join("build.sh")).current_dir(&project),
                "Run `make setup` (clang and lld).",
            );
            project.join("build/policy.wasm")
        }
        "assemblyscript" => {
            // The scaffold's own `npm install` would fetch the same compiler `make setup` put here.
            let asc = repo("guest-sdk/assemblyscript/node_modules/assemblyscript/bin/asc.js");
            run(
                Command::new("node").current_dir(&project).arg(&asc).args([
                    "assembly/index.ts",
                    "--config",
                    "asconfig.json",
                    "--target",
                    "release",
                ]),
                "Run `make setup` (AssemblyScript compiler).",
            );
            project.join("build/policy.wasm")
        }
        _ => unreachable!(),
    }
}

#[test]
fn each_scaffold_builds_passes_its_cases_and_survives_the_fuzzer() {
    for lang in ["c", "assemblyscript", "rust"] {
        let dir = scratch(&format!("scaffold-{lang}"));
        let wasm = new_and_build(lang, &dir);
        let cases = dir.join("my-policy/cases.yaml");

        let out = leadtime(&["inspect", path(&wasm), "--json"]);
        assert!(out.status.success(), "{lang}: {}", text(&out));
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            info["imports"].as_array().unwrap().len(),
            1,
            "{lang}: {info}"
        );

        let out = leadtime(&["test", path(&wasm), "--cases", path(&cases)]);
        let report = text(&out);
        assert!(out.status.success(), "{lang}: {report}");
        assert!(report.contains("4 passed; 0 failed"), "{lang}: {report}");

        let save = dir.join("failure.json");
        let out = leadtime(&[
            "test",
            path(&wasm),
            "--fuzz",
            "300",
            "--seed",
            "11",
            "--save",
            path(&save),
        ]);
        let report = text(&out);
        assert!(out.status.success(), "{lang}: {report}");
        assert!(report.contains("300 passed; 0 failed"), "{lang}: {report}");
        assert!(report.contains("worst case:"), "{lang}: {report}");
        assert!(!save.exists(), "{lang}: nothing failed, nothing to save");
    }
}

#[test]
fn failed_cases_show_a_diff_and_exit_1() {
    let dir = scratch("diff");
    let cases = dir.join("cases.yaml");
    // ok_fixed always answers 3, "fixed answer".
    std::fs::write(
        &cases,
        r#"
cases:
  - name: exact match
    request: { replicas: { current: 1, ready: 1, min: 1, max: 10 } }
    expect: { replicas: 3, reason: fixed }
  - name: range that misses
    request: { replicas: { current: 1, ready: 1, min: 1, max: 10 } }
    expect: { replicas: { min: 4, max: 9 } }
  - name: wrong reason
    request: { replicas: { current: 1, ready: 1, min: 1, max: 10 } }
    expect: { replicas: 3, reason: "holding current" }
  - name: expected an error
    request: { replicas: { current: 1, ready: 1, min: 1, max: 10 } }
    expect: { error: policy-error }
  - name: a sequence fails at its second step
    steps:
      - request: { replicas: { current: 1, ready: 1, min: 1, max: 10 } }
        expect: { replicas: 3 }
      - request: { replicas: { current: 3, ready: 3, min: 5, max: 10 } }
        expect: { replicas: 3 }
"#,
    )
    .unwrap();
    let wat = repo("tests/adversarial/ok_fixed.wat");
    let out = leadtime(&["test", path(&wat), "--cases", path(&cases)]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("1 passed; 4 failed"), "{report}");
    assert!(report.contains("ok      exact match"), "{report}");
    assert!(report.contains("FAILED  range that misses"), "{report}");
    assert!(
        report.contains("- replicas: 4..=9\n    + replicas: 3"),
        "{report}"
    );
    assert!(
        report.contains("+ reason:            \"fixed answer\""),
        "{report}"
    );
    assert!(
        report.contains("- error containing: \"policy-error\""),
        "{report}"
    );
    assert!(report.contains("step 2 of 2:"), "{report}");
    assert!(report.contains("+ replicas: 5"), "{report}");
}

#[test]
fn an_expected_error_passes_and_a_bad_cases_file_names_where() {
    let dir = scratch("errors");
    let cases = dir.join("cases.yaml");
    std::fs::write(
        &cases,
        "cases:\n  - name: fails\n    request: { replicas: { current: 1, ready: 1, min: 1, max: 9 } }\n    expect: { error: no data }\n",
    )
    .unwrap();
    let wat = repo("tests/adversarial/policy_error.wat");
    let out = leadtime(&["test", path(&wat), "--cases", path(&cases)]);
    assert!(out.status.success(), "{}", text(&out));

    std::fs::write(&cases, "cases:\n  - name: typo\n    requets: {}\n").unwrap();
    let out = leadtime(&["test", path(&wat), "--cases", path(&cases)]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("cases.yaml") && report.contains("requets"),
        "{report}"
    );
}

#[test]
fn the_fuzzer_saves_the_first_failing_request_and_it_replays() {
    let dir = scratch("fuzz-fail");
    let save = dir.join("first.json");
    let wat = repo("tests/adversarial/policy_error.wat");
    let fuzz = |seed: &str| {
        leadtime(&[
            "test",
            path(&wat),
            "--fuzz",
            "20",
            "--seed",
            seed,
            "--save",
            path(&save),
        ])
    };
    let out = fuzz("5");
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("first failure: request 0: policy-error"),
        "{report}"
    );
    assert!(report.contains("0 passed; 20 failed"), "{report}");
    let first = std::fs::read_to_string(&save).unwrap();

    let replay = leadtime(&["decide", "--policy", path(&wat), "--request", path(&save)]);
    assert!(!replay.status.success());
    assert!(text(&replay).contains("policy-error"), "{}", text(&replay));

    // The same seed gives the same request, another seed another one.
    fuzz("5");
    assert_eq!(std::fs::read_to_string(&save).unwrap(), first);
    fuzz("6");
    assert_ne!(std::fs::read_to_string(&save).unwrap(), first);
}

#[test]
fn the_fuzzer_catches_a_policy_that_keeps_decisions_in_globals() {
    let dir = scratch("fuzz-globals");
    let wat = dir.join("counter.wat");
    // Answers {replicas: n} where n counts its calls: right on a fresh instance, wrong after.
    std::fs::write(
        &wat,
        r#"(module
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 1024) "\81\a8replicas\00")
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 4096)
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.store8 (i32.const 1034) (i32.and (global.get $n) (i32.const 0x7f)))
    (i64.const 4398046511115)))
"#,
    )
    .unwrap();
    let save = dir.join("first.json");
    let out = leadtime(&["test", path(&wat), "--fuzz", "200", "--save", path(&save)]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("not deterministic"), "{report}");
    assert!(save.is_file());
}

#[test]
fn new_refuses_bad_names_and_existing_folders() {
    let dir = scratch("refuse");
    let out = leadtime(&[
        "new",
        "--lang",
        "c",
        "Bad Name",
        "--dir",
        path(&dir.join("x")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("Bad Name"), "{}", text(&out));

    let taken = dir.join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("keep.txt"), "mine").unwrap();
    let out = leadtime(&["new", "--lang", "c", "taken", "--dir", path(&taken)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(taken.join("keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn new_takes_a_path_whose_last_component_names_the_project() {
    // As `cargo new a/b/name`: the project goes to that path, named by its last component.
    let dir = scratch("path");
    let target = dir.join("nested/deeper/my-policy");
    let out = leadtime(&["new", "--lang", "c", path(&target)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(target.join("policy.c").is_file(), "{}", text(&out));
    let readme = std::fs::read_to_string(target.join("README.md")).unwrap();
    assert!(readme.contains("my-policy"), "{readme}");
    assert!(!readme.contains("nested"), "{readme}");
}

#[test]
fn new_writes_valid_toml_for_any_guest_path() {
    // A quote in --guest-path must be escaped in Cargo.toml, not end the string.
    let dir = scratch("guest-quote");
    let guest = dir.join("a\"b");
    std::fs::create_dir_all(&guest).unwrap();
    std::fs::write(guest.join("Cargo.toml"), "[package]\n").unwrap();
    let project = dir.join("quoted");
    let out = leadtime(&[
        "new",
        "--lang",
        "rust",
        path(&project),
        "--guest-path",
        path(&guest),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("leadtime-guest"))
        .expect("a leadtime-guest dependency");
    assert!(line.contains("a\\\"b\""), "{line}");
}

#[test]
fn against_backtests_the_policy_beside_another_over_a_trace() {
    let wat = repo("policies/examples/wat/target_tracking.wat");
    let trace = repo("testdata/traces/art_daily_small_noise.csv");
    let out = leadtime(&[
        "test",
        path(&wat),
        "--against",
        "hpa",
        "--trace",
        path(&trace),
    ]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    let rows: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with(path(&wat)) || l.starts_with("hpa ") || l.starts_with("oracle "))
        .collect();
    assert_eq!(
        rows.len(),
        3,
        "one row each for the policy, hpa and the oracle: {report}"
    );

    // --trace without --against is refused by the argument parser.
    let out = leadtime(&["test", path(&wat), "--trace", path(&trace)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
