//! `leadtime test --fuzz N`: generated requests, valid and edge cases, each checked for an
//! answer within bounds and the same answer from a fresh instance.

use crate::failure::Failure;
use leadtime::{
    Engine, Metric, Modes, Params, Policy, ReadyTime, Replicas, Request, Source, Workload,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The project's one generator (ChaCha8). A seed reported today must replay the same requests
/// with any later build, so the stream is keyed straight from the seed (ChaCha's output for a
/// key is fixed by its spec) and only raw `next_u64` words are drawn: rand's own range and float
/// conversions may change between its releases.
struct Rng(ChaCha8Rng);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        Rng(ChaCha8Rng::from_seed(key))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
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
        // None drawn: a seed replays the same requests as before events existed.
        events: Vec::new(),
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

/// Checks `n` generated requests from `seed`; exit 1 on the first failing one, saved to `save`.
pub(super) fn run(
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
    let mut rng = Rng::new(seed);
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
