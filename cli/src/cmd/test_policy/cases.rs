//! `leadtime test --cases FILE`: each case's request through the policy, its answer against the
//! case's `expect`.

use crate::cases::{self, Expect};
use crate::failure::Failure;
use crate::input;
use leadtime::{Engine, Params, Request, Source};
use std::path::Path;
use std::process::ExitCode;

/// A request from a case, with `abi_version` and `now` filled in when left out.
fn to_request(value: &serde_json::Value, at: &str) -> Result<Request, String> {
    let mut value = value.clone();
    let obj = value
        .as_object_mut()
        .ok_or_else(|| format!("{at}: request must be a map"))?;
    obj.entry("abi_version")
        .or_insert(leadtime::abi::ABI_VERSION.into());
    obj.entry("now").or_insert(1_700_000_000_000i64.into());
    serde_json::from_value(value).map_err(|e| format!("{at}: request: {e}"))
}

/// Checks one answer against `expect`; the lines of a diff when it does not match.
fn compare(expect: &Expect, got: &leadtime::Result<leadtime::Decision>) -> Vec<String> {
    let mut diff = Vec::new();
    match (got, &expect.error) {
        (Ok(d), None) => {
            if let Some(want) = &expect.replicas {
                if !want.contains(d.replicas) {
                    diff.push(format!("- replicas: {want}"));
                    diff.push(format!("+ replicas: {}", d.replicas));
                }
            }
            if let Some(want) = &expect.reason {
                if !d.reason.contains(want.as_str()) {
                    diff.push(format!("- reason containing: {want:?}"));
                    diff.push(format!("+ reason:            {:?}", d.reason));
                }
            }
        }
        (Ok(d), Some(want)) => {
            diff.push(format!("- error containing: {want:?}"));
            diff.push(format!("+ replicas: {} ({:?})", d.replicas, d.reason));
        }
        (Err(e), Some(want)) => {
            let text = format!("{}: {e}", e.kind().as_str());
            if !text.contains(want.as_str()) {
                diff.push(format!("- error containing: {want:?}"));
                diff.push(format!("+ error: {text}"));
            }
        }
        (Err(e), None) => {
            if let Some(want) = &expect.replicas {
                diff.push(format!("- replicas: {want}"));
            }
            diff.push(format!("+ error: {}: {e}", e.kind().as_str()));
        }
    }
    diff
}

/// Runs every case of `path`; exit 1 when one fails.
pub(super) fn run(
    engine: &Engine,
    spec: &str,
    path: &Path,
    flags: Params,
) -> Result<ExitCode, Failure> {
    let text = input::read_text(&path.display().to_string())?;
    let mut file = cases::parse(&text, &path.display().to_string())
        .map_err(|e| Failure::new("bad-request", e))?;
    file.params.extend(flags);
    if file.cases.is_empty() {
        return Err(Failure::new(
            "bad-request",
            format!("{}: no cases", path.display()),
        ));
    }
    let n = file.cases.len();
    println!(
        "running {n} case{} against {spec}",
        if n == 1 { "" } else { "s" }
    );
    let (mut passed, mut failed) = (0usize, Vec::new());
    for (i, case) in file.cases.iter().enumerate() {
        let at = format!("{} case {} ({})", path.display(), i + 1, case.name);
        let steps: Vec<(&serde_json::Value, &Expect)> = match (&case.request, &case.steps[..]) {
            (Some(r), []) => {
                let expect = case.expect.as_ref().ok_or_else(|| {
                    Failure::new("bad-request", format!("{at}: `expect` is missing"))
                })?;
                vec![(r, expect)]
            }
            (None, steps) if !steps.is_empty() => {
                steps.iter().map(|s| (&s.request, &s.expect)).collect()
            }
            _ => {
                return Err(Failure::new(
                    "bad-request",
                    format!("{at}: give either `request` and `expect`, or `steps`"),
                ))
            }
        };
        // One policy per case: a sequence's steps share its state, cases do not.
        let mut policy = engine.load(Source::parse(spec), file.params.clone())?;
        let mut diff = Vec::new();
        for (n, (request, expect)) in steps.iter().enumerate() {
            let req = to_request(request, &at).map_err(|e| Failure::new("bad-request", e))?;
            let lines = compare(expect, &policy.decide(&req));
            if !lines.is_empty() {
                if steps.len() > 1 {
                    diff.push(format!("step {} of {}:", n + 1, steps.len()));
                }
                diff.extend(lines);
                break;
            }
        }
        if diff.is_empty() {
            passed += 1;
            println!("ok      {}", case.name);
        } else {
            println!("FAILED  {}", case.name);
            for line in &diff {
                println!("    {line}");
            }
            failed.push(case.name.clone());
        }
    }
    println!();
    println!(
        "test result: {}. {passed} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
