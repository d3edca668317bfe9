//! The smallest leadtime host: load a policy, build a request, ask for a replica target.
//!
//! Run: `cargo run -p leadtime-example-embed [policy]` (a built-in name or a .wasm/.wat path).

use leadtime::Source;
use leadtime::{Engine, Limits, Metric, Params, Replicas, Request, Workload};

fn main() -> Result<(), leadtime::Error> {
    let spec = std::env::args().nth(1).unwrap_or("target-tracking".into());

    // One engine per process: it holds the limits and the compiled modules.
    let engine = Engine::new(&Limits::default())?;
    // One policy per workload: it keeps the state the policy carries between calls.
    let mut policy = engine.load(Source::parse(&spec), Params::new())?;

    let now_ms = 1_700_000_000_000;
    let replicas = Replicas {
        current: 3,
        ready: 3,
        min: 1,
        max: 30,
    };
    let rps = Metric {
        name: "rps".into(),
        target_per_pod: 50.0,
        interval_seconds: 60.0,
        end: now_ms,
        // The workload's total over all pods, oldest first; NaN marks a missing point.
        values: vec![120.0, 135.0, f64::NAN, 180.0, 240.0],
    };
    let mut request = Request::new(now_ms, replicas, vec![rps]);
    request.workload = Workload {
        namespace: "shop".into(),
        name: "checkout".into(),
    };

    let decision = policy.decide(&request)?;
    println!("{} replicas ({})", decision.replicas, decision.reason);
    Ok(())
}
