//! The `leadtime` binary end to end: decide, inspect, policies, and how it fails.

mod common;

use common::*;

#[test]
fn decide_with_the_example_request_prints_a_decision() {
    let req = repo("examples/request.json");
    // The default policy answers.
    let out = leadtime(&["decide", "--request", req.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(d["replicas"].as_u64().is_some(), "{d}");

    let out = leadtime(&[
        "decide",
        "--policy",
        "target-tracking",
        "--request",
        req.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Latest load 53.1 at 10 per pod.
    assert_eq!(d["replicas"], 6);
    assert!(d["reason"]
        .as_str()
        .unwrap()
        .contains("requests_per_second"));
}

#[test]
fn decide_takes_params_from_flags() {
    let req = repo("examples/request.json");
    let out = leadtime(&[
        "decide",
        "--policy",
        "target-tracking",
        "--request",
        req.to_str().unwrap(),
        "--param",
        "headroom=1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["replicas"], 11);
}

#[test]
fn a_failing_policy_gives_one_error_line_and_exit_1() {
    let req = repo("examples/request.json");
    for (module, kind) in [
        ("tests/adversarial/loop_decide.wat", "out-of-fuel"),
        ("tests/adversarial/unreachable.wat", "trap"),
        ("tests/adversarial/import_wasi.wat", "forbidden-import"),
        ("tests/adversarial/replicas_nan.wat", "bad-response"),
    ] {
        let policy = repo(module);
        let out = leadtime(&[
            "decide",
            "--policy",
            policy.to_str().unwrap(),
            "--request",
            req.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{module}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{module}: {err}");
        assert!(
            err.starts_with(&format!("error: {kind}: ")),
            "{module}: {err}"
        );
    }
}

#[test]
fn a_bad_request_file_names_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("leadtime-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\n  \"abi_version\": 1,\n  \"now\": \"soon\"\n}").unwrap();
    let out = leadtime(&["decide", "--request", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: bad-request: "), "{err}");
    assert!(err.contains("bad.json") && err.contains("line 3"), "{err}");

    let out = leadtime(&["decide", "--request", "/nonexistent/req.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: io: "), "{}", stderr(&out));
}

#[test]
fn inspect_reports_the_abi_and_validity() {
    let out = leadtime(&["inspect", "target-tracking", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["valid"], true);
    assert_eq!(r["abi_version"], 1);
    assert!(r["imports"][0]
        .as_str()
        .unwrap()
        .starts_with("leadtime::log"));

    let bad = repo("tests/adversarial/missing_decide.wat");
    let out = leadtime(&["inspect", bad.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["valid"], false);
    assert!(r["error"].as_str().unwrap().starts_with("missing-export"));
}

#[test]
fn policies_lists_the_builtins() {
    let out = leadtime(&["policies"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("target-tracking"), "{text}");
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["decide", "--help"],
        vec!["inspect", "--help"],
        vec!["policies", "--help"],
    ] {
        let out = leadtime(&cmd);
        assert!(out.status.success(), "{cmd:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd:?}"
        );
    }
}
