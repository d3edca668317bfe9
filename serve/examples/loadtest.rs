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
//!
//! `SHAPE=quota` plays the worst case the shipped limits admit instead: the config of
//! `serve/deploy/scaler.yaml` as it is (its caps, timeouts and defaults; plain gRPC), `workloads`
//! spread over namespaces of `limits.workloadsPerNamespace` each, every namespace's workloads
//! spread over `limits.policiesPerNamespace` distinct params (each its own instances), and the
//! longest history metadata allows (7 days at a 6 s step: 100,800 points). The process's
//! resident memory is sampled every 200 ms and written to `LOADTEST_CSV` when set.
//! `PER_NAMESPACE=N` puts N workloads in each namespace instead, so that more namespaces (and
//! distinct policies, up to `limits.policies`) share the same number of workloads.

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

    let quota = std::env::var("SHAPE").is_ok_and(|s| s == "quota");
    let rss_before = rss_bytes();
    let maps_before = mappings();
    let mut config = if quota {
        let mut config = shipped_config()?;
        config.prometheus = Some(prometheus.clone());
        config
    } else {
        // One tenant with every workload: the caps are raised to the run's size (the defaults
        // fit the shipped Deployment's memory, see serve/src/quota.rs).
        Config::parse(&format!(
            "prometheus:\n  url: {prometheus}\n  timeout: 30s\n\
             limits:\n  workloads: {workloads}\n  workloadsPerNamespace: {workloads}\n"
        ))?
    };
    // PER_NAMESPACE spreads the workloads over more namespaces (more distinct policies in all).
    let per_namespace = match std::env::var("PER_NAMESPACE") {
        Ok(n) => n.parse()?,
        Err(_) => config.settings.quotas.workloads_per_namespace,
    };
    let templates = config.settings.quotas.policies_per_namespace;
    // Loopback only: plain gRPC keeps the measure on the scaler, not on TLS.
    config.auth = leadtime_serve::Auth::Insecure;
    let sampler = Sampler::start();
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
    let metadata: Vec<Workload> = (0..workloads)
        .map(|i| {
            if quota {
                return worst_case(i, per_namespace, templates, shards);
            }
            let metadata = [
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
            .collect();
            Workload {
                namespace: "loadtest".into(),
                name: format!("load-{i}"),
                metadata,
            }
        })
        .collect();
    let metadata = Arc::new(metadata);

    let t = Instant::now();
    let (backfill_latencies, errors) = round(&client, &metadata, true).await;
    let backfill = t.elapsed();
    sampler.phase(0);
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
    for (kind, n) in error_kinds(&errors) {
        println!("  {n} x {kind}");
    }
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
        sampler.phase(poll + 1);
        let (latencies, errors) = round(&client, &metadata, false).await;
        let took = started.elapsed();
        sampler.phase(0);
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
    let samples = sampler.stop().await;
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let peak = peak.max(rss_end);
    if let Ok(path) = std::env::var("LOADTEST_CSV") {
        // `phase`: `backfill`, `poll N` while a round runs, `idle` between them.
        let mut csv = String::from("seconds,rss_mib,phase\n");
        for (t, rss, phase) in &samples {
            let phase = match *phase {
                usize::MAX => "backfill".to_string(),
                0 => "idle".to_string(),
                n => format!("poll {n}"),
            };
            csv += &format!("{t:.2},{:.1},{phase}\n", *rss as f64 / (1 << 20) as f64);
        }
        std::fs::write(&path, csv)?;
    }

    println!();
    println!(
        "| {workloads} workloads, `{policy}`, {lookback} at {}, {polls} polls {}s apart | |",
        if quota { "6 s" } else { "1 min" },
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
        "| resident memory in all (at the end; peak) | {:.0} MiB; {:.0} MiB |",
        rss_end as f64 / (1 << 20) as f64,
        peak as f64 / (1 << 20) as f64
    );

    let _ = stop.send(());
    task.await??;
    Ok(())
}

/// One GetMetrics for every workload (with GetMetricSpec first when `spec`), at
/// [`CONCURRENCY`]; the latencies in ms and the errors.
async fn round(
    client: &ExternalScalerClient<Channel>,
    metadata: &Arc<Vec<Workload>>,
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
                let w = &metadata[i];
                let object = ScaledObjectRef {
                    name: w.name.clone(),
                    namespace: w.namespace.clone(),
                    scaler_metadata: w.metadata.clone(),
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

/// Errors by kind: their gRPC code and the cap or cause they name, digits left out.
fn error_kinds(errors: &[String]) -> Vec<(String, usize)> {
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for e in errors {
        let kind: String = e
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(160)
            .collect();
        *kinds.entry(kind).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    kinds
}

/// A ScaledObject and its trigger's metadata.
struct Workload {
    namespace: String,
    name: String,
    metadata: HashMap<String, String>,
}

/// Workload `i` of the worst case: namespace `ns-K` with `per_namespace` workloads each, its
/// params one of `templates` per namespace, its history the longest metadata allows. The query
/// reads its own namespace's series, as `queries.namespaceLabel` requires.
fn worst_case(i: usize, per_namespace: usize, templates: usize, shards: usize) -> Workload {
    let namespace = format!("ns-{}", i / per_namespace);
    let j = i % per_namespace;
    let metadata = [
        ("scalerAddress", "leadtime-scaler.leadtime.svc:9090".into()),
        (
            "query",
            format!(
                "sum(loadtest_load{{namespace=\"{namespace}\",shard=\"{}\"}}) + 0 * {j}",
                j % shards
            ),
        ),
        ("targetPerPod", "20".into()),
        ("readySeconds", "120".into()),
        ("lookback", "7d".into()),
        ("step", "6s".into()),
        ("maxReplicas", "200".into()),
        ("param.quantile", format!("0.9{}", j % templates)),
    ]
    .into_iter()
    .map(|(k, v): (&str, String)| (k.to_string(), v))
    .collect();
    Workload {
        name: format!("load-{j}"),
        namespace,
        metadata,
    }
}

/// The scaler's config as `serve/deploy/scaler.yaml` ships it (its ConfigMap's `config.yaml`).
fn shipped_config() -> Result<Config, Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/scaler.yaml");
    let text = std::fs::read_to_string(path)?;
    for document in text.split("\n---\n") {
        let value: serde_norway::Value = serde_norway::from_str(document)?;
        if value["kind"].as_str() == Some("ConfigMap") {
            let config = value["data"]["config.yaml"]
                .as_str()
                .ok_or("the ConfigMap has no config.yaml")?;
            return Ok(Config::parse(config)?);
        }
    }
    Err(format!("{path}: no ConfigMap").into())
}

/// The process's resident memory, sampled every 200 ms on a thread of its own, each sample with
/// the phase of the run (`usize::MAX` the backfill, 0 between rounds, N poll N).
struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    phase: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<Vec<(f64, u64, usize)>>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(usize::MAX));
        let (stopped, current) = (stop.clone(), phase.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let phase = current.load(Ordering::Relaxed);
                samples.push((start.elapsed().as_secs_f64(), rss_bytes(), phase));
                std::thread::sleep(Duration::from_millis(200));
            }
            samples
        });
        Sampler {
            stop,
            phase,
            thread,
        }
    }

    fn phase(&self, phase: usize) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    async fn stop(self) -> Vec<(f64, u64, usize)> {
        self.stop.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || self.thread.join().expect("the sampler"))
            .await
            .expect("the sampler's join")
    }
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
