//! `leadtime bench`: what a policy costs before it is deployed: load time, time and fuel per
//! call, and memory per instance, on a synthetic window.

use crate::failure::Failure;
use crate::input;
use leadtime::{Engine, Limits, Metric, Replicas, Request, Source};
use leadtime_wire::stats;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `leadtime bench`.
#[derive(clap::Args)]
pub struct Args {
    /// A built-in policy name (see `leadtime policies`) or a `.wasm`/`.wat` file.
    policy: String,
    /// History in each request, at 1-minute steps (a daily wave), e.g. `1h`, `1d`, `7d`.
    #[arg(long, default_value = "1d")]
    window: String,
    /// Calls to time (after one untimed warm-up call).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    calls: u32,
    /// A policy parameter, `name=value`; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// CPU budget per call, in fuel (about one unit per wasm instruction).
    #[arg(long, default_value_t = Limits::default().get_fuel_per_call())]
    fuel: u64,
}

/// The request's clock: a fixed instant, so runs are comparable.
const NOW_MS: i64 = 1_700_006_400_000;

/// A window of `points` one-minute samples of a daily wave around 100 requests per second.
fn request(points: usize) -> Request {
    let values = (0..points)
        .map(|i| 100.0 + 50.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin())
        .collect();
    Request::new(
        NOW_MS,
        Replicas {
            current: 10,
            ready: 10,
            min: 1,
            max: 1000,
        },
        vec![Metric {
            name: "rps".into(),
            target_per_pod: 10.0,
            interval_seconds: 60.0,
            end: NOW_MS,
            values,
        }],
    )
}

/// A new directory under the system's temp dir, of a name no one can guess, created 0700 by
/// this process (never one that already exists: another user could have made it, and filled it
/// with compiled code of theirs), and removed when dropped.
struct PrivateDir(std::path::PathBuf);

impl PrivateDir {
    fn new() -> Result<PrivateDir, Failure> {
        use std::hash::{BuildHasher, Hasher};
        let mut last = None;
        for _ in 0..8 {
            // std's hasher keys are random per process and per `RandomState`.
            let random = std::hash::RandomState::new().build_hasher().finish();
            let dir = std::env::temp_dir().join(format!("leadtime-bench-{random:016x}"));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&dir) {
                Ok(()) => return Ok(PrivateDir(dir)),
                Err(e) => last = Some(e),
            }
        }
        Err(Failure::new(
            "io",
            format!("creating a private temp dir: {}", last.expect("tried")),
        ))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One-minute points in `window`, at most [`MAX_WINDOW_POINTS`].
fn window_points(window: &str) -> Result<usize, Failure> {
    let seconds = leadtime_backtest::parse_seconds(window)
        .map_err(|e| Failure::new("bad-request", format!("--window: {e}")))?;
    // Compared as a float: a huge duration must not wrap or saturate into a small count.
    let points = (seconds / 60.0).floor();
    if points < 1.0 {
        return Err(Failure::new(
            "bad-request",
            format!("--window {window} is under one 1-minute step"),
        ));
    }
    if points > MAX_WINDOW_POINTS as f64 {
        return Err(Failure::new(
            "bad-request",
            format!(
                "--window {window} is {points:.0} one-minute points, over the {MAX_WINDOW_POINTS} \
                 a request may carry here (about {} days)",
                MAX_WINDOW_POINTS / 1440
            ),
        ));
    }
    Ok(points as usize)
}

/// Most points of a bench request's window: a year of minutes (4 MiB of values), well past any
/// history a policy is given.
const MAX_WINDOW_POINTS: usize = 366 * 1440;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let params = input::parse_params(&args.params)?;
    let mut limits = Limits::new();
    limits.fuel_per_call(args.fuel);
    let points = window_points(&args.window)?;
    let source = Source::parse(&args.policy);
    let bytes = source.read(limits.get_module_bytes())?;
    let module = || Source::bytes(args.policy.as_str(), &bytes[..]);

    // Cold: a fresh engine with no disk cache compiles; load includes the first instance.
    let started = Instant::now();
    Engine::new(&limits)?.load(module(), params.clone())?;
    let cold = started.elapsed();
    // Cached: a private directory (never the user's cache, which may be off or shared), filled
    // by one engine and read by another whose memory cache is empty.
    let dir = PrivateDir::new()?;
    let cached = {
        let engine = || Engine::builder().limits(&limits).cache_dir(&dir.0).build();
        engine()?.load(module(), params.clone())?;
        let started = Instant::now();
        engine()?.load(module(), params.clone())?;
        started.elapsed()
    };
    drop(dir);

    let engine = Engine::new(&limits)?;
    let mut policy = engine.load(module(), params)?;
    let request = request(points);
    // Warm-up: the first call fits whatever the policy caches in its state.
    policy.decide(&request)?;
    let mut times = Vec::with_capacity(args.calls as usize);
    let mut fuel = Vec::with_capacity(args.calls as usize);
    for _ in 0..args.calls {
        let started = Instant::now();
        let decision = policy.decide(&request)?;
        times.push(started.elapsed());
        fuel.push(decision.fuel);
    }
    // The backtest's definition of a percentile (linear interpolation), so both report alike.
    let mut micros: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e6).collect();
    let mut fuel: Vec<f64> = fuel.iter().map(|&f| f as f64).collect();
    let quantile = |v: &mut Vec<f64>, q| stats::quantile(v, q).expect("at least one call");
    let memory = policy.memory_bytes().unwrap_or(0);

    println!("policy          {}", args.policy);
    println!(
        "window          {} ({points} points at 1m), {} calls",
        args.window, args.calls
    );
    println!("load cold       {} (compile and instantiate)", ms(cold));
    println!("load cached     {} (from the disk cache)", ms(cached));
    println!("call p50        {:.1} us", quantile(&mut micros, 0.5));
    println!("call p99        {:.1} us", quantile(&mut micros, 0.99));
    println!(
        "fuel per call   {:.0} (p50), {:.0} (max)",
        quantile(&mut fuel, 0.5),
        quantile(&mut fuel, 1.0)
    );
    println!(
        "memory          {:.2} MiB per instance ({memory} bytes of linear memory)",
        memory as f64 / (1 << 20) as f64
    );
    Ok(ExitCode::SUCCESS)
}
