//! The log on stderr as clusters and people read it: no escape bytes in a pipe or file, colour on
//! a terminal unless NO_COLOR, JSON lines on request, and a policy's control characters never
//! written raw.

mod common;

use common::*;
use std::process::{Command, Output};

/// A policy that logs (and fails with) a carriage return, ESC sequences and BEL.
const ESCAPES: &str = "tests/adversarial/log_terminal_escapes.wat";

/// `decide` with the escaping policy, its log on, plus `extra` flags.
fn args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["--log", "warn,policy=debug", "decide", "--policy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(repo(ESCAPES).display().to_string());
    args.push("--request".into());
    args.push(repo("examples/request.json").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs the same under a pseudo-terminal (util-linux `script`), `env` set; what the terminal got.
fn on_terminal(env: &[(&str, &str)]) -> String {
    let line = std::iter::once(env!("CARGO_BIN_EXE_leadtime").to_string())
        .chain(args(&[]))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new("script");
    command
        .args(["-qec", &format!("{line} 2>&1 >/dev/null"), "/dev/null"])
        .env("LEADTIME_NO_CACHE", "1")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        command.env(k, v);
    }
    let out: Output = command.output().expect("run script(1)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_pipe_gets_no_escape_bytes_and_the_policys_control_characters_escaped() {
    let out = Command::new(env!("CARGO_BIN_EXE_leadtime"))
        .args(args(&[]))
        .env("LEADTIME_NO_CACHE", "1")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("decision: 100 replicas"), "{err}");
    assert!(
        !out.stderr.contains(&0x1b),
        "escape bytes in a pipe: {err:?}"
    );
    assert!(
        !out.stderr.contains(&b'\r') && !out.stderr.contains(&0x07),
        "{err:?}"
    );
    // The policy's log line is one line, its ESC written as an escape (the `error:` line after
    // it says the same, escaped too).
    let logged: Vec<&str> = err.lines().filter(|l| l.contains(" policy: ")).collect();
    assert_eq!(logged.len(), 1, "{err}");
    assert!(logged[0].contains(r"\u{1b}]0;pwned"), "{}", logged[0]);
}

#[test]
fn a_terminal_gets_colour_unless_no_color_and_never_the_policys_escapes() {
    let coloured = on_terminal(&[]);
    assert!(coloured.contains("pwned"), "{coloured:?}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured:?}"
    );
    assert!(!coloured.contains("\u{1b}]0;pwned"), "{coloured:?}");
    assert!(!coloured.contains("\u{1b}[2K"), "{coloured:?}");

    let plain = on_terminal(&[("NO_COLOR", "1")]);
    assert!(plain.contains("pwned"), "{plain:?}");
    assert!(
        !plain.contains('\u{1b}'),
        "colour despite NO_COLOR: {plain:?}"
    );
}

#[test]
fn json_lines_parse_and_carry_the_fields() {
    for how in [
        vec!["--log-format", "json"],
        vec!["--log-format=json"],
        vec![], // LEADTIME_LOG_FORMAT below
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_leadtime"))
            .args(args(&how))
            .env("LEADTIME_NO_CACHE", "1")
            .env("LEADTIME_LOG_FORMAT", "json")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.stderr.contains(&0x1b), "{err:?}");
        let lines: Vec<serde_json::Value> = err
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let policy = lines
            .iter()
            .find(|l| l["target"] == "policy")
            .unwrap_or_else(|| panic!("no policy line in {err}"));
        for key in ["timestamp", "level", "target", "message", "policy"] {
            assert!(policy.get(key).is_some(), "{key} missing: {policy}");
        }
        // The engine escapes a policy's text as it enters the host; JSON keeps it as it is.
        assert_eq!(
            policy["message"],
            r"ok\r\u{1b}[2Kdecision: 100 replicas\u{1b}]0;pwned\u{7}"
        );
    }
}

#[test]
fn an_unknown_log_format_is_refused_with_the_choices() {
    let out = leadtime(&["--log-format", "xml", "policies"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("xml") && err.contains("text") && err.contains("json"),
        "{err}"
    );
}

#[test]
fn the_filter_picks_targets_and_a_bad_one_is_named_not_fatal() {
    let run = |filter: &str| {
        let mut all = args(&[]);
        all[1] = filter.to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_leadtime"))
            .args(all)
            .env("LEADTIME_NO_CACHE", "1")
            .output()
            .unwrap();
        stderr(&out)
    };
    let policy_line = |err: &str| err.lines().any(|l| l.contains(" policy: "));
    // The default keeps policies quiet; `policy=debug` lets them speak.
    assert!(!policy_line(&run("warn,policy=off")));
    assert!(policy_line(&run("warn,policy=debug")));
    // A filter that does not parse is named, the command still decides, at warnings only.
    let err = run("policy=loud");
    assert!(
        err.contains("log filter not understood") && err.contains("policy=loud"),
        "{err}"
    );
    assert!(err.contains("decision: 100 replicas"), "{err}");
}
