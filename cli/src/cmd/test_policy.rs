//! `leadtime test`: check a policy against a file of cases, or fuzz it with generated requests,
//! in the same sandbox the engine runs it in.

use crate::cases::{self, Expect};
use crate::failure::Failure;
use crate::input;
use leadtime::{
    Engine, Limits, Metric, Modes, Params, Policy, ReadyTime, Replicas, Request, Source, Workload,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    /// `--against`: seconds a new pod takes to become Ready.
    #[arg(long, default_value_t = 120.0)]
    ready_seconds: f64,
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
        return run_cases(&engine, &args.policy, path, flags);
    }
    if let (Some(against), Some(trace)) = (&args.against, &args.trace) {
        return compare_backtest(&engine, &args, against, trace, flags);
    }
    let n = args.fuzz.unwrap_or(0);
    fuzz(&engine, &args.policy, flags, n, args.seed, &args.save)
}

// ---- Cases. ----

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

fn run_cases(engine: &Engine, spec: &str, path: &Path, flags: Params) -> Result<ExitCode, Failure> {
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

// ---- Fuzzing. ----

/// splitmix64: a tiny generator whose sequence for a seed never changes between releases, so that
/// a seed reported today replays the same requests with any later build.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NAMES: &[&str] = &["rps", "cpu", "queue_depth", "tokens/s", "запросы 🚀", ""];

/// A generated value: mostly plausible loads, sometimes missing, zero, tiny or huge.
fn value(rng: &mut Rng, scale: f64) -> f64 {
    match rng.below(20) {
        0 => f64::NAN,
        1 => 0.0,
        2 => 1e300,
        3 => 1e-300,
        4 => scale * 1e6,
        _ => rng.unit() * scale,
    }
}

/// The `i`th generated request: valid per the ABI, with edge cases mixed in.
fn generate(rng: &mut Rng, i: u64) -> Request {
    let min = if rng.chance(20) {
        0
    } else {
        rng.below(10) as u32
    };
    let max = match rng.below(10) {
        0 => min,
        1 => u32::MAX,
        _ => min + rng.below(200) as u32,
    };
    let current = match rng.below(10) {
        0 => 0,
        1 => max.saturating_add(5),
        _ => rng.below(300) as u32,
    };
    let ready = current.min(rng.below(300) as u32);
    let now = 1_700_000_000_000 + i as i64 * 60_000;
    let n_metrics = rng.below(4);
    let metrics = (0..n_metrics)
        .map(|_| {
            let scale = [1.0, 100.0, 10_000.0][rng.below(3) as usize];
            let len = match rng.below(10) {
                0 => 0,
                1 => 2000,
                _ => rng.below(60) as usize,
            };
            let all_missing = rng.chance(5);
            Metric {
                name: NAMES[rng.below(NAMES.len() as u64) as usize].to_string(),
                target_per_pod: match rng.below(10) {
                    0 => 1e-6,
                    1 => 1e9,
                    _ => 0.1 + rng.unit() * scale,
                },
                interval_seconds: [15.0, 30.0, 60.0][rng.below(3) as usize],
                end: now,
                values: (0..len)
                    .map(|_| {
                        if all_missing {
                            f64::NAN
                        } else {
                            value(rng, scale)
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let n_ready = if rng.chance(5) { 500 } else { rng.below(20) };
    let ready_times = (0..n_ready)
        .map(|k| ReadyTime {
            started_at: now - k as i64 * 30_000,
            ready_seconds: if rng.chance(3) {
                0.0
            } else {
                rng.unit() * 600.0
            },
        })
        .collect();
    Request {
        abi_version: leadtime::abi::ABI_VERSION,
        now,
        workload: Workload {
            namespace: "fuzz".into(),
            name: format!("w{}", rng.below(5)),
        },
        replicas: Replicas {
            current,
            ready,
            min,
            max,
        },
        metrics,
        ready_times,
        params: Params::new(),
        state: None,
    }
}

/// Why a generated request failed, if it did.
fn check_one(
    reused: &mut Policy,
    fresh: &mut Policy,
    req: &Request,
    worst: &mut (Duration, u64),
    clamped: &mut u64,
) -> Option<String> {
    let started = Instant::now();
    let a = reused.decide(req);
    let took = started.elapsed();
    let a = match a {
        Ok(d) => d,
        Err(e) => return Some(format!("{}: {e}", e.kind().as_str())),
    };
    worst.0 = worst.0.max(took);
    worst.1 = worst.1.max(a.fuel);
    let r = req.replicas;
    if a.proposed != a.replicas {
        *clamped += 1;
    }
    if a.replicas < r.min || a.replicas > r.max {
        return Some(format!(
            "replicas {} outside [{}, {}]",
            a.replicas, r.min, r.max
        ));
    }
    // A fresh instance must agree with the reused one: a policy that keeps decisions in
    // globals instead of `state` answers differently.
    match fresh.decide(req) {
        Ok(b) if b.replicas == a.replicas && b.reason == a.reason => None,
        Ok(b) => Some(format!(
            "not deterministic: {} ({:?}) on a reused instance, {} ({:?}) on a fresh one",
            a.replicas, a.reason, b.replicas, b.reason
        )),
        Err(e) => Some(format!(
            "not deterministic: failed on a fresh instance: {}: {e}",
            e.kind().as_str()
        )),
    }
}

fn fuzz(
    engine: &Engine,
    spec: &str,
    params: Params,
    n: u64,
    seed: u64,
    save: &Path,
) -> Result<ExitCode, Failure> {
    let mut reused = engine.load(Source::parse(spec), params.clone())?;
    let fresh_engine = Engine::builder()
        .limits(engine.limits())
        .modes(Modes::new().fresh_instance_per_call(true))
        .build()?;
    let mut fresh = fresh_engine.load(Source::parse(spec), params)?;
    let mut rng = Rng(seed);
    let mut worst = (Duration::ZERO, 0u64);
    let mut first_failure: Option<(u64, String, Request)> = None;
    let mut failures = 0u64;
    let mut clamped = 0u64;
    for i in 0..n {
        let req = generate(&mut rng, i);
        // Each request stands alone, as if for a new workload.
        reused.reset_state();
        fresh.reset_state();
        if let Some(why) = check_one(&mut reused, &mut fresh, &req, &mut worst, &mut clamped) {
            failures += 1;
            if first_failure.is_none() {
                first_failure = Some((i, why, req));
            }
        }
    }
    println!("fuzzed {spec} with {n} requests (seed {seed})");
    println!(
        "worst case: {:.3} ms, {} fuel (budget {})",
        worst.0.as_secs_f64() * 1e3,
        worst.1,
        engine.limits().get_fuel_per_call()
    );
    // Not a failure (the host clamps), but worth knowing: the policy may ignore the bounds.
    println!("proposals outside [min, max], clamped by the host: {clamped}");
    let Some((i, why, req)) = first_failure else {
        println!("test result: ok. {n} passed; 0 failed");
        return Ok(ExitCode::SUCCESS);
    };
    let json = leadtime::codec::to_json(&req).map_err(|e| Failure::new("internal", e.0))?;
    std::fs::write(save, json)
        .map_err(|e| Failure::new("io", format!("writing {}: {e}", save.display())))?;
    println!("first failure: request {i}: {why}");
    println!(
        "saved to {}; replay: leadtime decide --policy {spec} --request {}",
        save.display(),
        save.display()
    );
    println!(
        "test result: FAILED. {} passed; {failures} failed",
        n - failures
    );
    Ok(ExitCode::from(1))
}

// ---- Backtest comparison. ----

/// Backtests the policy and `against` over `trace` (engine `simulate`), prints one row each and
/// the oracle's; exit 1 when the policy's calls failed during the run.
fn compare_backtest(
    engine: &Engine,
    args: &Args,
    against: &str,
    trace: &Path,
    params: Params,
) -> Result<ExitCode, Failure> {
    use leadtime_backtest::{self as simulate, Columns, Config, Job, ReadyTimes, Trace};
    let trace = Trace::from_file(trace, &Columns::default())
        .map_err(|e| Failure::new("bad-request", e.to_string()))?;
    let capacity = simulate::capacity_for_peak(&trace, args.pods_at_peak);
    let config = Config::new(capacity, ReadyTimes::Fixed(args.ready_seconds));
    let mut mine = Job::new(&args.policy);
    mine.params = params;
    let jobs = [mine, Job::new(against)];
    let backtest = simulate::run(engine, &trace, &config, &jobs, &|_| {})?;
    println!(
        "backtest over {} decisions: {} beside {against}, {} pods at peak, pods ready after {} s",
        backtest.steps, args.policy, args.pods_at_peak, args.ready_seconds
    );
    println!(
        "{:<40} {:>12} {:>10} {:>10} {:>8} {:>7}",
        "policy", "under-prov %", "unmet %", "cost/orcl", "scales", "errors"
    );
    for r in &backtest.results {
        println!(
            "{:<40} {:>12.2} {:>10.2} {:>10.3} {:>8} {:>7}",
            r.policy,
            r.under_provisioned_pct,
            r.unmet_demand_pct,
            r.cost_vs_oracle,
            r.scale_events,
            r.policy_errors
        );
    }
    let errors = backtest.results.first().map_or(0, |r| r.policy_errors);
    if errors > 0 {
        println!("test result: FAILED. {errors} policy calls failed during the backtest");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
