//! `leadtime cpa-evaluate`: the Custom Pod Autoscaler's evaluate JSON in, `{"targetReplicas": N}`
//! out, or one clear error line and a non-zero exit.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `leadtime cpa-evaluate <args>` with `stdin`; (exit code, stdout, stderr).
fn evaluate(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .arg("cpa-evaluate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse its arguments and exit before reading stdin: a broken pipe here is
    // part of that outcome, which the exit code and stderr below report.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn input(values: &[&str], replicas: &str) -> String {
    let metrics: Vec<String> = values
        .iter()
        .map(|v| format!(r#"{{"resource":"web","value":"{v}"}}"#))
        .collect();
    format!(
        r#"{{"metrics":[{}],"resource":{{"metadata":{{"name":"web","namespace":"shop"}},"spec":{{"replicas":{replicas}}}}},"runType":"scaler"}}"#,
        metrics.join(",")
    )
}

#[test]
fn target_replicas_from_summed_values() {
    // target-tracking: ceil(total / target per pod), clamped to [min, max].
    let cases: &[(&[&str], &str, &[&str], u32)] = &[
        (&["120", "80.5"], "3", &[], 5), // ceil(200.5 / 50)
        (&["100"], "3", &[], 2),
        (&[" 49 "], "3", &[], 1),
        (&["0"], "3", &["--min", "2"], 2),
        (&["10000"], "3", &["--max", "7"], 7),
        (&["100"], "3", &["--param", "headroom=0.5"], 3), // ceil(150 / 50)
    ];
    for (values, replicas, extra, want) in cases {
        let mut args = vec!["--policy", "target-tracking", "--target-per-pod", "50"];
        args.extend_from_slice(extra);
        let (code, out, err) = evaluate(&args, &input(values, replicas));
        assert_eq!(code, 0, "{values:?} {extra:?}: {err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "targetReplicas": want }),
            "{values:?} {extra:?}"
        );
    }
}

#[test]
fn bad_input_is_one_error_line_and_exit_1() {
    let cases: &[(&str, &str)] = &[
        (&input(&["12", "abc"], "3"), "metrics[1].value `abc`"),
        (&input(&["-4"], "3"), "metrics[0].value `-4`"),
        (&input(&["NaN"], "3"), "metrics[0].value `NaN`"),
        (&input(&["1"], "null"), "resource.spec.replicas is missing"),
        (
            &input(&["1"], "-2"),
            "resource.spec.replicas must be a whole number",
        ),
        (&input(&[], "3"), "`metrics` is empty"),
        (
            r#"{"metrics":[{"value":5}],"resource":{"spec":{"replicas":1}}}"#,
            "metrics[0].value must be a string",
        ),
        ("not json", "evaluate JSON on stdin"),
    ];
    for (stdin, want) in cases {
        let (code, out, err) = evaluate(&["--target-per-pod", "50"], stdin);
        assert_eq!(code, 1, "{stdin}: {err}");
        assert!(out.is_empty(), "{stdin}: {out}");
        assert!(err.starts_with("error: bad-request: "), "{stdin}: {err}");
        assert!(err.contains(want), "{stdin}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let (code, _, err) = evaluate(&["--target-per-pod", "0"], &input(&["1"], "1"));
    assert_eq!(code, 1);
    assert!(err.contains("--target-per-pod"), "{err}");
}
