//! Load test of the scaler (not in CI), run by scripts/loadtest-keda.sh, which starts Prometheus
//! with a week of one-minute history already in it.
//!
//! Starts the scaler in this process against that Prometheus, then, as KEDA would for
//! `workloads` ScaledObjects: GetMetricSpec and a first GetMetrics for each (the backfill of a
//! week at one minute), then `polls` rounds of GetMetrics for every workload, `interval` apart.
//! Prints a table: backfill time, Prometheus samples fetched per workload per steady-state poll,
//! GetMetrics p50/p99, resident memory per workload and memory mappings.
//!
//! `cargo run --release -p leadtime-serve --example loadtest -- <prometheus-url> [workloads]
//! [polls] [interval-seconds] [policy] [shards] [lookback]`

use leadtime_serve::proto::external_scaler_client::ExternalScalerClient;
use leadtime_serve::proto::{GetMetricsRequest, ScaledObjectRef};
use leadtime_serve::{Config, Server};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Concurrent calls, as KEDA's operator makes them (one goroutine per ScaledObject, bounded).
const CONCURRENCY: usize = 16;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server's own runtime (its thread stacks), as `leadtime serve` runs it.
    leadtime_serve::runtime()?.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let prometheus = args
        .get(1)
        .cloned()
        .unwrap_or("http://127.0.0.1:50090".into());
    let workloads: usize = args.get(2).map_or(Ok(2_000), |s| s.parse())?;
    let polls: usize = args.get(3).map_or(Ok(4), |s| s.parse())?;
    let interval = Duration::from_secs(args.get(4).map_or(Ok(30), |s| s.parse())?);
    let policy = args.get(5).cloned().unwrap_or("predictive".into());
    let shards: usize = args.get(6).map_or(Ok(20), |s| s.parse())?;
    let lookback = args.get(7).cloned().unwrap_or("7d".into());

    let rss_before = rss_bytes();
    let maps_before = mappings();
    // One tenant with every workload: the caps are raised to the run's size (the defaults fit
    // the shipped Deployment's memory, see serve/src/quota.rs).
    let config = Config::parse(&format!(
        "prometheus:\n  url: {prometheus}\n  timeout: 30s\n\
         limits:\n  workloads: {workloads}\n  workloadsPerNamespace: {workloads}\n"
    ))?;
    // Loopback only: plain gRPC keeps the measure on the scaler, not on TLS.
    let mut config = config;
    config.auth = leadtime_serve::Auth::Insecure;
    let server = Server::bind(
        "127.0.0.1:0".parse()?,
        "127.0.0.1:0".parse()?,
        config,
        leadtime::Limits::default(),
    )
    .await?;
    let (grpc, http) = (server.grpc_addr(), server.http_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let client = ExternalScalerClient::connect(format!("http://{grpc}")).await?;

    // Each workload its own query (the `+ 0 * i` keeps any cache from sharing work), over
    // `shards` series of the generated history.
    let metadata: Vec<HashMap<String, String>> = (0..workloads)
        .map(|i| {
            [
                (
                    "scalerAddress",
                    "leadtime-scaler.leadtime.svc:9090".to_string(),
                ),
                ("policy", policy.clone()),
                (
                    "query",
                    format!(
                        "sum(loadtest_load{{namespace=\"loadtest\",shard=\"{}\"}}) + 0 * {i}",
                        i % shards
                    ),
                ),
                ("targetPerPod", "20".into()),
                ("readySeconds", "120".into()),
                ("lookback", lookback.clone()),
                ("maxReplicas", "200".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        })
        .collect();
    let metadata = Arc::new(metadata);

    let t = Instant::now();
    let (backfill_latencies, errors) = round(&client, &metadata, true).await;
    let backfill = t.elapsed();
    let after_backfill = scrape(http).await;
    let rss_after = rss_bytes();
    println!(
        "backfill: {workloads} workloads in {:.1} s ({} errors{}); p50 {:.1} ms, p99 {:.1} ms",
        backfill.as_secs_f64(),
        errors.len(),
        errors
            .first()
            .map(|e| format!(", first: {e}"))
            .unwrap_or_default(),
        quantile(&backfill_latencies, 0.5),
        quantile(&backfill_latencies, 0.99),
    );
    println!(
        "  samples fetched {:.0} ({:.0} per workload), range queries {:.0}, backfills {:.0}",
        after_backfill["leadtime_prometheus_samples_total"],
        after_backfill["leadtime_prometheus_samples_total"] / workloads as f64,
        after_backfill["leadtime_prometheus_range_queries_total"],
        after_backfill["leadtime_history_backfills_total"],
    );

    let mut steady = Vec::new();
    let mut per_poll = Vec::new();
    let mut last = after_backfill;
    // Rounds start `interval` apart (a round that takes longer starts the next at once), so that
    // each workload is polled every `interval` as KEDA's pollingInterval would.
    let mut next = Instant::now() + interval;
    for poll in 0..polls {
        tokio::time::sleep_until(next.into()).await;
        let started = Instant::now();
        next = started + interval;
        let (latencies, errors) = round(&client, &metadata, false).await;
        let took = started.elapsed();
        let now = scrape(http).await;
        let samples =
            now["leadtime_prometheus_samples_total"] - last["leadtime_prometheus_samples_total"];
        let queries = now["leadtime_prometheus_range_queries_total"]
            - last["leadtime_prometheus_range_queries_total"];
        println!(
            "poll {}: samples {samples:.0} ({:.2} per workload), range queries {queries:.0}, \
             errors {}, p50 {:.2} ms, p99 {:.2} ms, round {:.1} s",
            poll + 1,
            samples / workloads as f64,
            errors.len(),
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            took.as_secs_f64(),
        );
        // The first poll catches up on the minutes the backfill round took: not steady yet.
        if poll > 0 || polls == 1 {
            per_poll.push(samples / workloads as f64);
            steady.extend(latencies);
        }
        last = now;
    }
    let rss_end = rss_bytes();
    let maps_end = mappings();

    println!();
    println!(
        "| {workloads} workloads, `{policy}`, {lookback} at 1 min, {polls} polls {}s apart | |",
        interval.as_secs()
    );
    println!("|---|---|");
    println!(
        "| backfill of every workload (GetMetrics, concurrency {CONCURRENCY}) | {:.1} s |",
        backfill.as_secs_f64()
    );
    println!(
        "| Prometheus samples per workload per steady poll (mean, max) | {:.2}, {:.2} |",
        per_poll.iter().sum::<f64>() / per_poll.len().max(1) as f64,
        per_poll.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "| GetMetrics, steady state: p50 / p99 | {:.2} ms / {:.2} ms |",
        quantile(&steady, 0.5),
        quantile(&steady, 0.99)
    );
    println!(
        "| GetMetrics, backfill: p50 / p99 | {:.1} ms / {:.1} ms |",
        quantile(&backfill_latencies, 0.5),
        quantile(&backfill_latencies, 0.99)
    );
    println!(
        "| resident memory per workload (after backfill, at the end) | {:.0} KiB, {:.0} KiB |",
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0 / workloads as f64,
        (rss_end.saturating_sub(rss_before)) as f64 / 1024.0 / workloads as f64
    );

    println!("| memory mappings (before, at the end) | {maps_before}, {maps_end} |");
    println!(
        "| resident memory in all (at the end) | {:.0} MiB |",
        rss_end as f64 / (1 << 20) as f64
    );

    let _ = stop.send(());
    task.await??;
    Ok(())
}

/// One GetMetrics for every workload (with GetMetricSpec first when `spec`), at
/// [`CONCURRENCY`]; the latencies in ms and the errors.
async fn round(
    client: &ExternalScalerClient<Channel>,
    metadata: &Arc<Vec<HashMap<String, String>>>,
    spec: bool,
) -> (Vec<f64>, Vec<String>) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let mut client = client.clone();
        let next = next.clone();
        let metadata = metadata.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= metadata.len() {
                    return (latencies, errors);
                }
                let object = ScaledObjectRef {
                    name: format!("load-{i}"),
                    namespace: "loadtest".into(),
                    scaler_metadata: metadata[i].clone(),
                };
                if spec {
                    if let Err(status) = client.get_metric_spec(object.clone()).await {
                        errors.push(status.to_string());
                    }
                }
                let t = Instant::now();
                let result = client
                    .get_metrics(GetMetricsRequest {
                        scaled_object_ref: Some(object),
                        metric_name: String::new(),
                    })
                    .await;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                if let Err(status) = result {
                    errors.push(status.to_string());
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (l, e) = task.await.expect("a round's task");
        latencies.extend(l);
        errors.extend(e);
    }
    (latencies, errors)
}

/// The nearest-rank quantile `q` of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The scaler's counters without labels from its `/metrics`.
async fn scrape(http: std::net::SocketAddr) -> HashMap<String, f64> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client
        .get(format!("http://{http}/metrics").parse().expect("a URL"))
        .await
        .expect("the scaler's /metrics");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let mut values: HashMap<String, f64> = [
        "leadtime_prometheus_samples_total",
        "leadtime_prometheus_range_queries_total",
        "leadtime_history_backfills_total",
    ]
    .iter()
    .map(|k| (k.to_string(), 0.0))
    .collect();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once(' ') {
            if let (Some(slot), Ok(v)) = (values.get_mut(name), value.parse::<f64>()) {
                *slot = v;
            }
        }
    }
    values
}

/// This process's resident memory (Linux `/proc/self/status`), 0 elsewhere.
/// Memory mappings of this process: what `vm.max_map_count` (65,530 by default) bounds.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |s| s.lines().count())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
