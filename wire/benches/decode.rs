//! Request decoding by window size, natively: serde (`from_msgpack::<Request>`) against the fast
//! path (`request_from_msgpack`) on the bytes a host sends. For comparisons within one run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use leadtime_wire::codec::{from_msgpack, request_from_msgpack, to_msgpack};
use leadtime_wire::{Metric, Replicas, Request};
use std::hint::black_box;
use std::time::Duration;

const NOW: i64 = 1_700_006_400_000;

/// A daily wave at 1-minute steps with a missing point every 97, encoded as a host encodes it.
fn request_bytes(points: usize) -> Vec<u8> {
    let values = (0..points)
        .map(|i| match i % 97 {
            0 => f64::NAN,
            _ => 100.0 + 50.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin(),
        })
        .collect();
    let replicas = Replicas {
        current: 10,
        ready: 10,
        min: 1,
        max: 1000,
    };
    let metric = Metric {
        name: "rps".into(),
        target_per_pod: 10.0,
        interval_seconds: 60.0,
        end: NOW,
        values,
    };
    to_msgpack(&Request::new(NOW, replicas, vec![metric])).unwrap()
}

fn decode(c: &mut Criterion) {
    for points in [240, 10_080, 20_160] {
        let bytes = request_bytes(points);
        let mut group = c.benchmark_group(format!("decode/{points}"));
        group.throughput(Throughput::Elements(points as u64));
        group.bench_function(BenchmarkId::from_parameter("serde"), |b| {
            b.iter(|| from_msgpack::<Request>(black_box(&bytes)).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("fast"), |b| {
            b.iter(|| request_from_msgpack(black_box(&bytes)).unwrap())
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = decode
}
criterion_main!(benches);
