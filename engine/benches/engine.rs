//! The engine's own costs (docs/performance.md): a trivial decide on a reused instance and on a
//! fresh one (on demand, from the instance pool, from the pool with guard pages),
//! loading from bytes and from the disk cache, decisions on 1 and 2 threads (the 2-thread speed-up
//! is the ratio of the two throughputs), and the MessagePack encoding of requests by window size.
//! Short measurement times: these are for comparisons within one run, on whatever machine runs
//! them.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use leadtime::Source;
use leadtime::{codec, Engine, Limits, Metric, Modes, Params, Replicas, Request};
use std::time::Duration;

const NOW: i64 = 1_700_006_400_000;

/// A daily wave at 1-minute steps, scaled so distinct workloads ask for distinct answers.
fn request(points: usize, scale: f64) -> Request {
    Request::new(
        NOW,
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
            end: NOW,
            values: (0..points)
                .map(|i| scale * (100.0 + 50.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin()))
                .collect(),
        }],
    )
}

/// The ways an engine can provide instances, by bench name.
fn modes() -> [(&'static str, Modes); 5] {
    let mut fresh = Modes::new();
    fresh.fresh_instance_per_call(true);
    [
        ("reused", Modes::default()),
        ("fresh-on-demand", fresh.clone().instance_pool(0).clone()),
        ("fresh-pooled", fresh.clone()),
        (
            "fresh-pooled-guard-pages",
            fresh.clone().pool_bounds_checks(false).clone(),
        ),
        // What the Python package runs: every check in code, no signal handler.
        (
            "reused-no-signal-traps",
            Modes::new().signal_traps(false).clone(),
        ),
    ]
}

fn decide(c: &mut Criterion) {
    let req = request(240, 1.0);
    let mut group = c.benchmark_group("decide/target-tracking/240");
    for (name, modes) in modes() {
        let engine = Engine::builder().modes(&modes).build().unwrap();
        let mut policy = engine
            .load(Source::builtin("target-tracking"), Params::new())
            .unwrap();
        group.bench_function(name, |b| b.iter(|| policy.decide(&req).unwrap()));
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    // Under the build's own temp dir, not a guessable shared path: its files are run as code.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("leadtime-bench-{}", std::process::id()));
    for name in ["target-tracking", "predictive"] {
        let wasm = leadtime::builtin_wasm(name).unwrap();
        // A new engine each time: its memory cache is empty, so `cold` compiles and `cache`
        // reads the file the first engine wrote.
        group.bench_function(BenchmarkId::new("cold", name), |b| {
            b.iter(|| {
                let engine = Engine::new(&Limits::default()).unwrap();
                engine
                    .load(Source::bytes(name, wasm), Params::new())
                    .unwrap()
            })
        });
        Engine::builder()
            .cache_dir(&dir)
            .build()
            .unwrap()
            .load(Source::bytes(name, wasm), Params::new())
            .unwrap();
        group.bench_function(BenchmarkId::new("cache", name), |b| {
            b.iter(|| {
                let engine = Engine::builder().cache_dir(&dir).build().unwrap();
                engine
                    .load(Source::bytes(name, wasm), Params::new())
                    .unwrap()
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn threads(c: &mut Criterion) {
    const CALLS: u64 = 10_000;
    let mut group = c.benchmark_group("throughput/target-tracking/240");
    group.sample_size(10);
    // Reused instances, and fresh ones from one pool that both threads share (bounds checks in
    // code, then guard pages).
    let [reused, _, pooled, guarded, _] = modes();
    for ((mode, modes), threads) in [reused, pooled, guarded]
        .into_iter()
        .flat_map(|m| [(m.clone(), 1u64), (m, 2)])
    {
        let engine = Engine::builder().modes(&modes).build().unwrap();
        // One policy and one workload per thread, as a host with one policy per workload has.
        let mut work: Vec<_> = (0..threads)
            .map(|t| {
                let policy = engine
                    .load(Source::builtin("target-tracking"), Params::new())
                    .unwrap();
                (policy, request(240, 1.0 + t as f64))
            })
            .collect();
        group.throughput(Throughput::Elements(CALLS * threads));
        group.bench_function(BenchmarkId::new(mode, threads), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for (policy, req) in work.iter_mut() {
                        s.spawn(move || {
                            for _ in 0..CALLS {
                                policy.decide(req).unwrap();
                            }
                        });
                    }
                })
            })
        });
    }
    group.finish();
}

/// What a call pays to put the request in the policy's memory: the envelope encoded, then the
/// whole request written into a buffer as large as it (the engine writes into the one
/// `leadtime_alloc` returns).
fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let mut frame = codec::RequestFrame::default();
    let mut buf = Vec::new();
    for points in [240usize, 1440, 10080] {
        let req = request(points, 1.0);
        group.throughput(Throughput::Elements(points as u64));
        group.bench_function(BenchmarkId::from_parameter(points), |b| {
            b.iter(|| {
                frame.encode(&req, None, None).unwrap();
                buf.resize(frame.len(), 0);
                frame.write(&req, &mut buf).unwrap();
                buf.len()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = decide, load, threads, encode
}
criterion_main!(benches);
