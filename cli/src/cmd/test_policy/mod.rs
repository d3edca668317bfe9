//! `leadtime test`: check a policy in the same sandbox the engine runs it in, in one of three
//! modes, a module each: against a file of cases (`cases`), with generated requests (`fuzz`), or
//! in a backtest beside another policy (`against`).

mod against;
mod cases;
mod fuzz;

use crate::failure::Failure;
use crate::input;
use leadtime::Limits;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `leadtime test`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["cases", "fuzz", "against"])))]
pub struct Args {
    /// A `.wasm`/`.wat` file or a built-in policy name.
    policy: String,
    /// A YAML (or JSON) file of cases: requests and the decisions expected.
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Generate this many requests, valid and edge cases, and check every answer.
    #[arg(long, value_name = "N")]
    fuzz: Option<u64>,
    /// Seed of the generated requests; the same seed gives the same requests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to save the first failing generated request (JSON, for `leadtime decide`).
    #[arg(long, default_value = "leadtime-fuzz-failure.json")]
    save: PathBuf,
    /// A policy parameter, `name=value`; repeatable. Overrides the cases file's params.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Backtest the policy beside this one (built-in name or file) over `--trace`.
    #[arg(long, value_name = "POLICY", requires = "trace")]
    against: Option<String>,
    /// A demand trace (CSV: time, value) for `--against`.
    #[arg(long, value_name = "FILE", requires = "against")]
    trace: Option<PathBuf>,
    /// `--against`: pods the trace's peak needs (sets the capacity of one pod), at most the
    /// 100,000 a backtest simulates.
    #[arg(long, default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(leadtime_backtest::MAX_PODS)))]
    pods_at_peak: u32,
    /// `--against`: how long a new pod takes to become Ready, e.g. `2m`, `90s` or `120`.
    #[arg(long, default_value = "2m", alias = "ready-seconds")]
    ready_time: String,
    /// CPU budget per call, in fuel.
    #[arg(long, default_value_t = Limits::default().get_fuel_per_call())]
    fuel: u64,
}

/// Runs the command: exit 0 when every case or generated request passes, 1 otherwise.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let mut limits = Limits::new();
    limits.fuel_per_call(args.fuel);
    let engine = super::engine(&limits)?;
    let flags = input::parse_params(&args.params)?;
    if let Some(path) = &args.cases {
        return cases::run(&engine, &args.policy, path, flags);
    }
    if let (Some(against), Some(trace)) = (&args.against, &args.trace) {
        return against::run(&engine, &args, against, trace, flags);
    }
    let n = args.fuzz.unwrap_or(0);
    fuzz::run(&engine, &args.policy, flags, n, args.seed, &args.save)
}
