//! One decision on 1-day and 7-day windows at 1-minute steps: the built-in `predictive` through
//! the engine (wasm) against the same crate natively, with a refit every call and with the model
//! cached in `state`. The native "codec" case adds the MessagePack round trip the wasm path pays;
//! "wasm-any-nans" runs with NaN canonicalisation off (`Modes::canonical_nans`).
//!
//! After criterion's runs (without a filter), a table of wasm / native+codec ratios measured in
//! one run: batches of the two alternate, so drift on a shared machine hits both alike.

use criterion::{criterion_group, BenchmarkId, Criterion};
use leadtime::Source;
use leadtime::{Engine, Limits, Param, Params};
use leadtime_guest::{codec, Metric, Replicas, Request, Response};
use leadtime_policy_predictive::decide;
use std::time::{Duration, Instant};

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
    let engine = Engine::new(&Limits::default()).unwrap();
    // The sandbox's one float-speed trade: NaN canonicalisation off (Modes::canonical_nans).
    let any_nans = Engine::builder()
        .modes(leadtime::Modes::new().canonical_nans(false))
        .build()
        .unwrap();
    let mut group = c.benchmark_group("predictive");
    for days in [1usize, 7] {
        for (mode, refit) in [("refit", 0.0), ("cached", 3600.0)] {
            let mut params = Params::new();
            params.insert("refit_seconds".into(), Param::Number(refit));
            let req = request(series(days), params.clone());
            let id = |what: &str| BenchmarkId::new(format!("{what}/{mode}"), format!("{days}d"));

            let mut policy = engine
                .load(Source::builtin("predictive"), params.clone())
                .unwrap();
            policy.decide(&req).unwrap();
            group.bench_function(id("wasm"), |b| b.iter(|| policy.decide(&req).unwrap()));
            let mut fast = any_nans
                .load(Source::builtin("predictive"), params.clone())
                .unwrap();
            fast.decide(&req).unwrap();
            group.bench_function(id("wasm-any-nans"), |b| {
                b.iter(|| fast.decide(&req).unwrap())
            });

            let first = decide(&req).unwrap();
            let mut warm = req.clone();
            warm.state = first.state;
            group.bench_function(id("native"), |b| b.iter(|| decide(&warm).unwrap()));
            group.bench_function(id("native+codec"), |b| b.iter(|| native_with_codec(&warm)));
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // A filter or a profiling run asks for part of the benchmarks: no table then.
    let partial = std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") || a == "--profile-time");
    if !partial {
        ratios();
    }
}

/// Prints wasm / native+codec for each window and mode, from alternating batches.
fn ratios() {
    let engine = Engine::new(&Limits::default()).unwrap();
    println!("\nwasm against native+codec, alternating batches, per-call medians of 15 rounds:");
    println!("| window, mode | wasm | native+codec | ratio |");
    println!("|---|---|---|---|");
    for days in [1usize, 7] {
        for (mode, refit) in [("refit", 0.0), ("cached", 3600.0)] {
            let mut params = Params::new();
            params.insert("refit_seconds".into(), Param::Number(refit));
            let req = request(series(days), params.clone());
            let mut policy = engine.load(Source::builtin("predictive"), params).unwrap();
            policy.decide(&req).unwrap();
            let mut warm = req.clone();
            warm.state = decide(&req).unwrap().state;
            let (wasm, native) = alternate(
                || {
                    policy.decide(&req).unwrap();
                },
                || {
                    native_with_codec(&warm);
                },
            );
            println!(
                "| {days}d, {mode} | {} | {} | {:.2} |",
                show(wasm),
                show(native),
                wasm.as_secs_f64() / native.as_secs_f64()
            );
        }
    }
}

/// The native path with the MessagePack round trip the wasm path pays, the request encoded as
/// the engine encodes it.
fn native_with_codec(req: &Request) -> Response {
    let mut bytes = Vec::new();
    codec::request_to_msgpack_into(req, None, None, &mut bytes).unwrap();
    let r: Request = codec::request_from_msgpack(&bytes).unwrap();
    let out = decide(&r).unwrap();
    let bytes = codec::to_msgpack(&out).unwrap();
    codec::from_msgpack::<Response>(&bytes).unwrap()
}

/// Per-call medians of `a` and `b`, timed in alternating batches of about 40 ms each.
fn alternate(mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    let calls = {
        let start = Instant::now();
        a();
        (Duration::from_millis(40).as_secs_f64() / start.elapsed().as_secs_f64()).ceil() as u32
    };
    let batch = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        start.elapsed() / calls
    };
    let (mut ta, mut tb): (Vec<Duration>, Vec<Duration>) =
        (0..15).map(|_| (batch(&mut a), batch(&mut b))).unzip();
    ta.sort();
    tb.sort();
    (ta[ta.len() / 2], tb[tb.len() / 2])
}

fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}
