//! Load test of a running scaler (not in CI): N GetMetrics calls at concurrency C; prints p50, p99
//! and the error count. Run by scripts/loadtest-keda.sh, which starts the scaler and Prometheus.
//!
//! `cargo run --release -p leadtime-serve --example loadtest -- http://127.0.0.1:50051 [calls]
//! [concurrency] [workloads] [query]`

use leadtime_serve::proto::external_scaler_client::ExternalScalerClient;
use leadtime_serve::proto::{GetMetricsRequest, ScaledObjectRef};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or("http://127.0.0.1:50051".into());
    let calls: usize = args.get(2).map_or(Ok(10_000), |s| s.parse())?;
    let concurrency: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let workloads: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let query = args.get(5).cloned().unwrap_or("up * 250".into());

    // One HTTP/2 connection, as KEDA's operator keeps one per scaler address.
    let client = ExternalScalerClient::connect(url.clone()).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut client = client.clone();
        let next = next.clone();
        let query = query.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return (latencies, errors);
                }
                let metadata = [
                    ("policy", "target-tracking"),
                    ("query", query.as_str()),
                    ("targetPerPod", "100"),
                    ("lookback", "1m"),
                    ("step", "5s"),
                ];
                let request = GetMetricsRequest {
                    scaled_object_ref: Some(ScaledObjectRef {
                        name: format!("load-{}", i % workloads),
                        namespace: "loadtest".into(),
                        scaler_metadata: metadata
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    }),
                    metric_name: String::new(),
                };
                let t = Instant::now();
                let result = client.get_metrics(request).await;
                latencies.push(t.elapsed());
                if let Err(status) = result {
                    errors.push(status.to_string());
                }
            }
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors.extend(e);
    }
    let wall = started.elapsed();
    latencies.sort();
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!("{calls} GetMetrics calls, concurrency {concurrency}, {workloads} workload(s), {url}");
    println!(
        "p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  errors {}  wall {:.2} s  ({:.0} calls/s)",
        q(0.50).as_secs_f64() * 1e3,
        q(0.99).as_secs_f64() * 1e3,
        q(1.0).as_secs_f64() * 1e3,
        errors.len(),
        wall.as_secs_f64(),
        calls as f64 / wall.as_secs_f64()
    );
    if let Some(first) = errors.first() {
        println!("first error: {first}");
    }
    Ok(())
}
