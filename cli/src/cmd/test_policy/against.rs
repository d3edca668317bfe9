//! `leadtime test POLICY --against OTHER --trace FILE`: both backtested over the trace, one row
//! each in the backtest's table.

use super::Args;
use crate::failure::Failure;
use leadtime::{Engine, Params};
use leadtime_backtest::report;
use leadtime_backtest::{self as simulate, parse_seconds, Columns, Config, Job, ReadyTimes, Trace};
use std::path::Path;
use std::process::ExitCode;

/// Backtests the policy and `against` over `trace` and prints their rows; exit 1 when the
/// policy's calls failed during the run.
pub(super) fn run(
    engine: &Engine,
    args: &Args,
    against: &str,
    trace: &Path,
    params: Params,
) -> Result<ExitCode, Failure> {
    let ready = parse_seconds(&args.ready_time)
        .map_err(|e| Failure::new("bad-request", format!("--ready-time: {e}")))?;
    let trace = Trace::from_file(trace, &Columns::default())
        .map_err(|e| Failure::new("bad-request", e.to_string()))?;
    let capacity = simulate::capacity_for_peak(&trace, args.pods_at_peak);
    let config = Config::new(capacity, ReadyTimes::Fixed(ready));
    let mut mine = Job::new(&args.policy);
    mine.params = params;
    let jobs = [mine, Job::new(against)];
    let backtest = simulate::run(engine, &trace, &config, &jobs, &|_: u64| {})?;
    println!(
        "backtest over {} decisions: {} beside {against}, {} pods at peak, pods ready after {ready} s",
        backtest.steps, args.policy, args.pods_at_peak
    );
    print!("{}", report::table(&backtest.results));
    let errors = backtest.results.first().map_or(0, |r| r.policy_errors);
    if errors > 0 {
        println!("test result: FAILED. {errors} policy calls failed during the backtest");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
