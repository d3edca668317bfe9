//! A Rust policy that panics, for the adversarial corpus (never a built-in).
//!
//! `decide` panics with a message naming the latest load whenever that load is at or above the
//! param `panic_at` (default 0: always), and otherwise answers `ceil(load / target_per_pod)`.
//! With `panic_in_init = true`, `init` panics instead. Under the policy profile (`panic = "abort"`)
//! a panic is a wasm trap; the SDK's hook logs the message first, so the host can report it.

use leadtime_guest::{export_policy, Params, ParamsExt, Request, Response};

/// The text every panic of this policy starts with, which tests look for in the host's error.
pub const PANIC_MESSAGE: &str = "the test policy panics on purpose";

fn init(params: &Params) -> Result<(), String> {
    if params.flag("panic_in_init", false)? {
        panic!("{PANIC_MESSAGE} in init");
    }
    params.number("panic_at", 0.0).map(|_| ())
}

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let panic_at = req.params.number("panic_at", 0.0)?;
    let metric = req.metrics.first().ok_or("no metric")?;
    let load = metric.last().unwrap_or(0.0);
    if load >= panic_at {
        panic!("{PANIC_MESSAGE}: load {load} >= panic_at {panic_at}");
    }
    let replicas = (load / metric.target_per_pod).ceil().max(0.0) as u32;
    Ok(Response::new(
        replicas,
        format!("load {load} below panic_at"),
    ))
}

export_policy!(decide, init = init);
