//! One decision on 1-day and 7-day windows at 1-minute steps: the built-in `predictive` through
//! the engine (wasm) against the same crate natively, with a refit every call and with the model
//! cached in `state`. The native "codec" case adds the MessagePack round trip the wasm path pays;
//! "wasm-any-nans" runs with NaN canonicalisation off (`Limits::canonical_nans`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use leadtime::{Engine, Limits, Param, Params};
use leadtime_guest::{codec, Metric, Replicas, Request, Response};
use leadtime_policy_predictive::decide;

const DAY: usize = 1440;
const NOW: i64 = 1_700_006_400_000;

fn series(days: usize) -> Vec<f64> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    (0..days * DAY)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            100.0 + 50.0 * (std::f64::consts::TAU * i as f64 / DAY as f64).sin() + 10.0 * noise
        })
        .collect()
}

fn request(values: Vec<f64>, params: Params) -> Request {
    Request {
        params,
        ..Request::new(
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
                values,
            }],
        )
    }
}

fn bench(c: &mut Criterion) {
    let engine = Engine::new(Limits::default()).unwrap();
    // The sandbox's one float-speed trade: NaN canonicalisation off (Limits::canonical_nans).
    let any_nans = Engine::new(Limits {
        canonical_nans: false,
        ..Limits::default()
    })
    .unwrap();
    let mut group = c.benchmark_group("predictive");
    for days in [1usize, 7] {
        for (mode, refit) in [("refit", 0.0), ("cached", 3600.0)] {
            let mut params = Params::new();
            params.insert("refit_seconds".into(), Param::Number(refit));
            let req = request(series(days), params.clone());
            let id = |what: &str| BenchmarkId::new(format!("{what}/{mode}"), format!("{days}d"));

            let mut policy = engine.load("predictive", params.clone()).unwrap();
            policy.decide(&req).unwrap();
            group.bench_function(id("wasm"), |b| b.iter(|| policy.decide(&req).unwrap()));
            let mut fast = any_nans.load("predictive", params.clone()).unwrap();
            fast.decide(&req).unwrap();
            group.bench_function(id("wasm-any-nans"), |b| {
                b.iter(|| fast.decide(&req).unwrap())
            });

            let first = decide(&req).unwrap();
            let mut warm = req.clone();
            warm.state = first.state;
            group.bench_function(id("native"), |b| b.iter(|| decide(&warm).unwrap()));
            group.bench_function(id("native+codec"), |b| {
                b.iter(|| {
                    let bytes = codec::to_msgpack(&warm).unwrap();
                    let r: Request = codec::request_from_msgpack(&bytes).unwrap();
                    let out = decide(&r).unwrap();
                    let bytes = codec::to_msgpack(&out).unwrap();
                    codec::from_msgpack::<Response>(&bytes).unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
