//! `leadtime decide`: one request in, one decision out.

use crate::failure::Failure;
use crate::input;
use leadtime::{Limits, Source};
use leadtime_schedule::{Schedule, Scheduler};
use std::process::ExitCode;

/// Arguments of `leadtime decide`.
#[derive(clap::Args)]
pub struct Args {
    /// A built-in policy name (see `leadtime policies`) or a `.wasm`/`.wat` file.
    #[arg(long, default_value_t = default_policy())]
    policy: String,
    /// The request in JSON (`-` for stdin); see examples/request.json.
    #[arg(long)]
    request: String,
    /// A policy parameter, `name=value`; repeatable. Overrides the request's params.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// CPU budget per call, in fuel (about one unit per wasm instruction).
    #[arg(long, default_value_t = Limits::default().get_fuel_per_call())]
    fuel: u64,
    /// Memory cap of the policy, in MiB.
    #[arg(long, default_value_t = Limits::default().get_memory_bytes() >> 20)]
    memory_mib: usize,
    /// A schedule (YAML, docs/schedules.md): its events go into the request, and its bounds at
    /// the request's `now` apply to the decision.
    #[arg(long)]
    schedule: Option<std::path::PathBuf>,
}

/// The policy used when none is named.
pub fn default_policy() -> String {
    leadtime::builtin_names()
        .first()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let mut request = input::read_request(&args.request)?;
    let params = input::parse_params(&args.params)?;
    request.params.extend(params);
    let mut scheduler = args
        .schedule
        .as_deref()
        .map(|path| {
            input::check_nesting(path)?;
            Schedule::from_file(path)
                .map(Scheduler::new)
                .map_err(|e| Failure::new("bad-request", e.to_string()))
        })
        .transpose()?;
    if let Some(s) = &scheduler {
        s.annotate(&mut request);
    }
    let mut limits = Limits::new();
    limits
        .fuel_per_call(args.fuel)
        .memory_bytes(super::mib_to_bytes("memory-mib", args.memory_mib)?);
    let engine = super::engine(&limits)?;
    let mut policy = engine.load(Source::parse(&args.policy), request.params.clone())?;
    let mut decision = policy.decide(&request)?;
    if let Some(s) = scheduler.as_mut() {
        // One call, no history: a factor event multiplies the request's current replicas.
        let (target, why) = s.apply(&request, decision.replicas);
        if let Some(why) = why {
            decision.reason = format!("{}; {why}", decision.reason);
        }
        decision.replicas = target;
    }
    let json = serde_json::to_string_pretty(&decision)
        .map_err(|e| Failure::new("internal", e.to_string()))?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}
