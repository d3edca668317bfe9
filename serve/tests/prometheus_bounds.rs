//! What one tenant may take of Prometheus: its share of the query slots against a real
//! Prometheus kept busy by that tenant's heavy queries, and answers over the byte and series caps
//! refused as they are read.

mod harness;

use harness::{http_server, Exporter, Prometheus};
use leadtime_serve::prometheus::{Bounds, FetchError, Prometheus as Client};
use std::time::{Duration, Instant};

fn client(url: &str, bounds: Bounds) -> Client {
    let access = leadtime_serve::prometheus::access::Access::default();
    Client::connect(
        url,
        Duration::from_secs(60),
        Duration::ZERO,
        bounds,
        &access,
    )
    .unwrap()
}

/// A query that keeps a real Prometheus evaluating for at least a second (a subquery at a 1 ms
/// step, its range doubled until it does); the query and how long one took alone.
async fn heavy_query(prometheus: &Client) -> (String, Duration) {
    let mut minutes = 15;
    loop {
        let query = format!("count_over_time(vector(1)[{minutes}m:1ms])");
        let start = Instant::now();
        prometheus.instant(&query, "calibration").await.unwrap();
        let took = start.elapsed();
        if took >= Duration::from_secs(1) || minutes >= 480 {
            return (query, took);
        }
        minutes *= 2;
    }
}

/// How long tenant `b`'s light query waits while tenant `a` has 4 heavy ones in flight, with
/// `per_tenant` slots each of 4 in all.
async fn light_query_wait(url: &str, heavy: &str, per_tenant: usize) -> Duration {
    let bounds = Bounds {
        concurrency: 4,
        per_tenant,
        ..Bounds::default()
    };
    let shared = std::sync::Arc::new(client(url, bounds));
    let mut busy = Vec::new();
    for _ in 0..4 {
        let c = shared.clone();
        let q = heavy.to_string();
        busy.push(tokio::spawn(async move { c.instant(&q, "a").await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let light = shared.instant("vector(1)", "b").await;
    let waited = start.elapsed();
    assert_eq!(light.unwrap(), vec![1.0]);
    for call in busy {
        call.await.unwrap().unwrap();
    }
    waited
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_heavy_queries_leave_the_other_slots_to_the_others() {
    let exporter = Exporter::start(1.0).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("vector(1)", 1.0).await;
    let url = prometheus.url();
    let (heavy, alone) = heavy_query(&client(&url, Bounds::default())).await;

    // With 2 slots per tenant, `b` is answered while `a`'s queries run...
    let shared = light_query_wait(&url, &heavy, 2).await;
    // ...and without a share (a tenant may take all 4), it waits behind them: the control that
    // shows the first figure is the share's doing.
    let unshared = light_query_wait(&url, &heavy, 4).await;
    assert!(
        shared < alone / 2,
        "tenant b waited {shared:?} with a share, one heavy query takes {alone:?}"
    );
    assert!(
        unshared > alone / 2,
        "without a share tenant b waited only {unshared:?} (one heavy query: {alone:?})"
    );
}

/// A fake Prometheus answering every query with `series` series of one sample each.
async fn answering(series: usize) -> String {
    let addr = http_server(move |_, _| {
        Box::pin(async move {
            let one = r#"{"metric":{"pod":"p"},"value":[1,"1"]}"#;
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
                vec![one; series].join(",")
            )
        })
    })
    .await;
    format!("http://{addr}")
}

#[tokio::test]
async fn answers_over_the_caps_are_refused_naming_the_cap() {
    let bounds = Bounds {
        series: 100,
        body_bytes: 64 << 10,
        ..Bounds::default()
    };
    // (series answered, what the error names; None: answered)
    let cases = [
        (100, None),
        (101, Some("limits.prometheusSeries (100)")),
        // ~40 bytes a series: 2,000 of them are over 64 KiB before the series cap is reached.
        (2_000, Some("limits.prometheusBodyBytes (65536 bytes)")),
    ];
    for (series, named) in cases {
        let url = answering(series).await;
        let answer = client(&url, bounds).instant("up", "t").await;
        match (answer, named) {
            (Ok(values), None) => assert_eq!(values.len(), series),
            (Err(FetchError::TooLarge(message)), Some(cap)) => {
                assert!(message.contains(cap), "{series}: {message}")
            }
            (other, _) => panic!("{series} series: {other:?}"),
        }
    }
}
