//! The scaler against a real Prometheus (Debian package `prometheus`, started here on loopback)
//! scraping a test exporter, called over real gRPC by a client generated from the same proto.

mod harness;

use harness::{
    adversarial, counter, deploy_metadata, http_get_as, object, sample, Exporter, Prometheus,
    Scaler, SlowPrometheus,
};
use leadtime_serve::proto::GetMetricsRequest;
use std::time::{Duration, Instant};
use tonic::Code;

const LOAD: f64 = 250.0;
/// The load of the workloads here: the exporter's series carry `namespace="test"`, the namespace
/// every test ScaledObject is in, as the scaler's default tenant rule requires.
const LOAD_Q: &str = r#"test_load{namespace="test"}"#;
const TARGET: f64 = 100.0;
/// Behavior that lets any scale-up through at once, so that a test sees the policy's target
/// rather than the default rate limit (+4 pods or +100% per 15 s).
const ANY_UP: &str =
    "scaleUp:\n  policies:\n  - type: Pods\n    value: 1000\n    periodSeconds: 1\n";

/// KEDA's own keys of an `external` trigger, which KEDA passes on with the rest.
const KEDA_KEYS: [(&str, &str); 6] = [
    ("scalerAddress", "leadtime-scaler.leadtime.svc:9090"),
    ("caCert", "/certs/ca.pem"),
    ("tlsClientCert", "/certs/cert.pem"),
    ("tlsClientKey", "/certs/key.pem"),
    ("tlsCertFile", "/certs/cert.pem"),
    ("unsafeSsl", "false"),
];

/// A series of a workload with the default metric name, with `extra` labels after.
fn series(family: &str, name: &str, extra: &str) -> String {
    format!(
        r#"{family}{{namespace="test",name="{name}",metric="leadtime-desired-replicas"{extra}}}"#
    )
}

fn meta<'a>(query: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut m = KEDA_KEYS.to_vec();
    m.extend([
        ("policy", "target-tracking"),
        ("query", query),
        ("targetPerPod", "100"),
        ("lookback", "10s"),
        ("step", "1s"),
        ("minReplicas", "0"),
        ("maxReplicas", "50"),
    ]);
    for (k, v) in extra {
        m.retain(|(key, _)| key != k);
        m.push((k, v));
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_from_real_prometheus() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    // Policy files load from the operator's directory only: the adversarial corpus here.
    let corpus = adversarial("");
    let mut scaler =
        Scaler::start_with_extra(&prometheus.url(), &format!("policyDir: {corpus}\n")).await;
    let want = (LOAD / TARGET).ceil();

    // GetMetrics: the policy's target, as float and int.
    let m = meta(
        LOAD_Q,
        &[("readyTimeQuery", r#"test_ready_seconds{namespace="test"}"#)],
    );
    assert_eq!(scaler.desired("web", &m).await.unwrap(), want);

    // GetMetricSpec: a target of 1 per replica, so that the HPA lands on the value.
    let spec = scaler
        .client
        .get_metric_spec(object("web", &m))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    assert_eq!(spec.metric_specs[0].target_size_float, 1.0);
    assert_eq!(spec.metric_specs[0].target_size, 1);
    assert_eq!(
        spec.metric_specs[0].metric_name,
        "leadtime-desired-replicas"
    );

    // IsActive: true when desired > 0; false for a workload whose load is zero and min is 0.
    let active = scaler.client.is_active(object("web", &m)).await.unwrap();
    assert!(active.into_inner().result);
    let idle = meta(r#"test_load{namespace="test"} * 0"#, &[]);
    assert_eq!(scaler.desired("idle", &idle).await.unwrap(), 0.0);
    let active = scaler
        .client
        .is_active(object("idle", &idle))
        .await
        .unwrap();
    assert!(!active.into_inner().result);

    // StreamIsActive: pushes the state at once.
    let mut stream = scaler
        .client
        .stream_is_active(object("web", &m))
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("StreamIsActive pushes the first state at once")
        .unwrap()
        .unwrap();
    assert!(first.result);
    drop(stream);

    // StreamMetricSpec: Unimplemented, which KEDA accepts.
    let err = scaler
        .client
        .stream_metric_spec(object("web", &m))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    // Observe mode: the policy (headroom 1: twice the pods) is exported, the reactive answer
    // returned. The behavior lets any scale-up through, so that the policy's target shows as is.
    let observe = meta(
        LOAD_Q,
        &[
            ("mode", "observe"),
            ("param.headroom", "1"),
            ("behavior", ANY_UP),
        ],
    );
    assert_eq!(scaler.desired("shadow", &observe).await.unwrap(), want);
    let text = scaler.metrics().await;
    assert_eq!(
        sample(&text, &series("leadtime_policy_replicas", "shadow", "")),
        Some((2.0 * LOAD / TARGET).ceil())
    );
    assert_eq!(
        sample(&text, &series("leadtime_desired_replicas", "shadow", "")),
        Some(want)
    );
    assert_eq!(
        sample(
            &text,
            &series(
                "leadtime_decisions_total",
                "web",
                r#",source="policy",mode="decide""#
            )
        ),
        Some(3.0),
        "GetMetrics, IsActive and the stream's first round each decide (GetMetricSpec does not): {text}"
    );
    assert!(
        text.contains("leadtime_rpc_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(text.contains("leadtime_policy_fuel_count{"), "{text}");
    assert_eq!(harness::http_get(scaler.http, "/healthz").await, "ok\n");

    // A trigger changed to a query without data answers an error, not the old target: a
    // change of configuration is no runtime fault to hold through.
    let empty = meta(r#"no_such_metric{namespace="test"}"#, &[]);
    let err = scaler.desired("web", &empty).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("no-data"), "{}", err.message());
    let text = scaler.metrics().await;
    assert_eq!(
        sample(
            &text,
            &series(
                "leadtime_prometheus_errors_total",
                "web",
                r#",kind="no-data""#
            )
        ),
        Some(1.0)
    );

    // Changed to a policy that traps: errors too (nothing held across a change), counted by
    // kind; after 3 in a row the circuit opens.
    let trap = meta(LOAD_Q, &[("policy", "unreachable.wat")]);
    for i in 0..4 {
        let err = scaler.desired("web", &trap).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{i}: {err}");
    }
    let text = scaler.metrics().await;
    assert_eq!(
        sample(
            &text,
            &series("leadtime_policy_errors_total", "web", r#",kind="trap""#)
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            &series(
                "leadtime_policy_errors_total",
                "web",
                r#",kind="circuit-open""#
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &series("leadtime_circuit_state", "web", "")),
        Some(1.0)
    );
    classic_metrics_for_scrapers_that_do_not_ask_for_openmetrics(&scaler).await;

    // Bad metadata: InvalidArgument naming the key, over gRPC, for every RPC that reads it.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("targetPerPod", "many")], "targetPerPod"),
        (&[("policy", "no-such-policy")], "policy"),
        (&[("lookback", "forever")], "lookback"),
        (&[("param.headroom", "99")], "policy"),
        (
            &[("behavior", "scaleUp:\n  selectPolicy: Most\n")],
            "behavior",
        ),
    ];
    for (extra, key) in cases {
        let m = meta(LOAD_Q, extra);
        let err = scaler.desired("bad", &m).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{extra:?}: {err}");
        assert!(
            err.message().contains(&format!("`{key}`")),
            "{extra:?}: {}",
            err.message()
        );
    }
    let err = scaler
        .client
        .get_metric_spec(object("bad", &[("targetPerPod", "1")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("`query`"), "{}", err.message());
    let err = scaler
        .client
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: None,
            metric_name: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // The server is still up and answering after all of it.
    assert_eq!(scaler.desired("web", &m).await.unwrap(), want);
    scaler.shutdown().await;

    // StreamIsActive pushes a change: the load drops to zero and the stream says inactive.
    let mut streaming = Scaler::start_with(&prometheus.url(), "200ms").await;
    let down = "scaleDown:\n  stabilizationWindowSeconds: 0\n";
    let m = meta(LOAD_Q, &[("behavior", down)]);
    let mut stream = streaming
        .client
        .stream_is_active(object("pushed", &m))
        .await
        .unwrap()
        .into_inner();
    let wait = Duration::from_secs(10);
    let first = tokio::time::timeout(wait, stream.message()).await.unwrap();
    assert!(first.unwrap().unwrap().result);
    exporter.set(0.0);
    let next = tokio::time::timeout(wait, stream.message())
        .await
        .expect("StreamIsActive pushes the change within 10 s");
    assert!(!next.unwrap().unwrap().result);
    drop(stream);
    streaming.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stopped_mid_test_holds_then_recovers() {
    let exporter = Exporter::start(LOAD).await;
    let mut prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    let mut scaler = Scaler::start(&prometheus.url()).await;
    let held = meta(LOAD_Q, &[("behavior", ANY_UP)]);
    let strict = meta(LOAD_Q, &[("onError", "error")]);
    let want = (LOAD / TARGET).ceil();
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);
    assert_eq!(scaler.desired("strict", &strict).await.unwrap(), want);

    prometheus.stop();
    exporter.set(2.0 * LOAD);
    tokio::time::sleep(Duration::from_millis(150)).await; // past the cache TTL
    let start = Instant::now();
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);
    let err = scaler.desired("strict", &strict).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("unreachable"), "{}", err.message());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // Back up: the scaler recovers by itself and follows the new load.
    prometheus.restart();
    prometheus.wait_for("test_load", 2.0 * LOAD).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let new_want = (2.0 * LOAD / TARGET).ceil();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = scaler.desired("web", &held).await.unwrap();
        if got == new_want {
            break;
        }
        assert!(Instant::now() < deadline, "still {got}, not {new_want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = scaler.metrics().await;
    assert_eq!(
        sample(&text, &series("leadtime_fallback_active", "web", "")),
        Some(0.0)
    );
    assert!(text.contains(r#"kind="unreachable""#), "{text}");
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_prometheus_gets_the_fallback_within_the_timeout() {
    let slow = SlowPrometheus::start(LOAD).await;
    let mut scaler = Scaler::start(&format!("http://{}", slow.addr)).await;
    let held = meta(r#"load{namespace="test"}"#, &[]);
    let strict = meta(r#"load{namespace="test"}"#, &[("onError", "error")]);
    let want = (LOAD / TARGET).ceil();
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);

    slow.slow_down(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(150)).await; // past the cache TTL
    let start = Instant::now();
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);
    let err = scaler.desired("strict", &strict).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("timeout"), "{}", err.message());
    // Two calls, each bounded by the 400 ms timeout, well before the 5 s answer.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let text = scaler.metrics().await;
    assert_eq!(
        sample(
            &text,
            &series(
                "leadtime_prometheus_errors_total",
                "web",
                r#",kind="timeout""#
            )
        ),
        Some(1.0)
    );

    slow.slow_down(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);
    let text = scaler.metrics().await;
    assert_eq!(
        sample(&text, &series("leadtime_fallback_active", "web", "")),
        Some(0.0)
    );
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_examples_metadata_is_accepted_as_keda_sends_it() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    let mut scaler = Scaler::start(&prometheus.url()).await;

    // Every key of the example as KEDA passes it on, KEDA's own (`scalerAddress`) included;
    // only the PromQL is pointed at the test exporter (the cluster's metrics do not exist here).
    let mut deployed = deploy_metadata();
    assert!(deployed.iter().any(|(k, _)| k == "scalerAddress"));
    assert!(deployed.iter().any(|(k, v)| k == "lookback" && v == "7d"));
    // The example's queries keep to its own namespace, as the default tenant rule requires.
    let rules = leadtime_serve::query::QueryRules::default();
    for (key, value) in &deployed {
        if key.to_lowercase().ends_with("query") {
            leadtime_serve::query::check(value, "shop", &rules)
                .unwrap_or_else(|e| panic!("deploy/scaledobject.yaml `{key}`: {e}"));
        }
    }
    for (key, value) in deployed.iter_mut() {
        match key.as_str() {
            "query" => *value = LOAD_Q.into(),
            "readyTimeQuery" => *value = r#"test_ready_seconds{namespace="test"}"#.into(),
            "replicasQuery" => *value = r#"test_load{namespace="test"} * 0 + 3"#.into(),
            _ => {}
        }
    }
    let m: Vec<(&str, &str)> = deployed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let spec = scaler.spec("llm", &m).await.unwrap();
    assert_eq!(spec.metric_specs[0].target_size_float, 1.0);
    // Observe mode: the reactive ceil(250 / 20) = 13 is returned.
    assert_eq!(scaler.desired("llm", &m).await.unwrap(), 13.0);
    assert!(scaler.active("llm", &m).await);
    // A typo of one of our own keys is still refused, with KEDA's keys present.
    let mut typo = m.clone();
    typo.push(("lookbak", "7d"));
    let err = scaler.spec("llm", &typo).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("`lookbak`"), "{}", err.message());
    scaler.shutdown().await;

    // The reason says the history is too short to predict yet, and how much is needed.
    let settings = leadtime_serve::scaler::Settings::default();
    let core = leadtime_serve::scaler::Scaler::new(
        leadtime::Engine::new(&leadtime::Limits::default()).unwrap(),
        leadtime_serve::prometheus::Prometheus::new(
            &prometheus.url(),
            Duration::from_secs(2),
            Duration::ZERO,
        ),
        settings,
        std::sync::Arc::new(leadtime_serve::telemetry::Telemetry::default()),
    );
    let metadata = deployed.iter().cloned().collect();
    let caller = leadtime_serve::auth::Caller::default();
    let answer = core
        .desired(&caller, "test", "llm", &metadata)
        .await
        .unwrap();
    assert_eq!(answer.source, "reactive");
    assert!(
        answer.reason.contains("2d needed") && answer.reason.contains("of 7d lookback"),
        "{}",
        answer.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_metric_spec_fails_fast_and_a_config_changed_to_broken_answers_an_error() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    let mut scaler = Scaler::start(&prometheus.url()).await;
    let dir = std::env::temp_dir().join(format!("leadtime-serve-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm").unwrap();
    let garbage = garbage.display().to_string();
    let missing = dir.join("missing.wasm").display().to_string();

    // (override, the key the InvalidArgument names)
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("policy", "no-such-policy")], "policy"),
        (&[("policy", garbage.as_str())], "policy"),
        (&[("policy", missing.as_str())], "policy"),
        (&[("param.headroom", "99")], "policy"),
        (
            &[("policy", "predictive"), ("param.no_such_param", "1")],
            "policy",
        ),
        (
            &[("behavior", "scaleUp:\n  selectPolicy: Most\n")],
            "behavior",
        ),
        (&[("behavior", "[not a map")], "behavior"),
        (
            &[("query", r#"sum(rate(test_load{namespace="test"}[1m]"#)],
            "query",
        ),
        (
            &[("readyTimeQuery", "test_ready_seconds{")],
            "readyTimeQuery",
        ),
        (
            &[("replicasQuery", "kube_deployment_status_replicas +")],
            "replicasQuery",
        ),
        (&[("targetPerPod", "many")], "targetPerPod"),
    ];
    for (extra, key) in cases {
        let m = meta(LOAD_Q, extra);
        let err = scaler.spec("bad", &m).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{extra:?}: {err}");
        assert!(
            err.message().contains(&format!("`{key}`")),
            "{extra:?}: {}",
            err.message()
        );
    }

    // A working trigger edited into a PromQL syntax error: InvalidArgument at once, from
    // GetMetrics too, never the target held from before.
    let good = meta(LOAD_Q, &[]);
    let want = (LOAD / TARGET).ceil();
    assert_eq!(scaler.desired("web", &good).await.unwrap(), want);
    let broken = meta(r#"test_load{namespace="test"})"#, &[]);
    let err = scaler.desired("web", &broken).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("`query`"), "{}", err.message());
    // A param the policy refuses, edited in: the same.
    let refused = meta(LOAD_Q, &[("param.headroom", "-1")]);
    let err = scaler.desired("web", &refused).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    // Back to the working config: answers again.
    assert_eq!(scaler.desired("web", &good).await.unwrap(), want);
    scaler.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scaler_refills_its_history_with_one_backfill() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    // A real scaler finds history already there. Here the first scrape may be younger than the
    // newest whole step a range query evaluates, so that the backfill finds no point yet and
    // only the instant query answers; a few scrapes later the range has data.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Four hours at one second: 14,400 points, over Prometheus' 11,000 per query, so the
    // backfill takes two range queries.
    let m = meta(
        LOAD_Q,
        &[("lookback", "4h"), ("step", "1s"), ("behavior", ANY_UP)],
    );
    let want = (LOAD / TARGET).ceil();

    let mut first = Scaler::start(&prometheus.url()).await;
    assert_eq!(first.desired("web", &m).await.unwrap(), want);
    let text = first.metrics().await;
    assert_eq!(counter(&text, "leadtime_history_backfills_total"), 1.0);
    assert_eq!(
        counter(&text, "leadtime_prometheus_range_queries_total"),
        2.0
    );
    let held = sample(&text, &series("leadtime_history_seconds", "web", "")).unwrap();
    assert!(held >= 1.0, "{text}");
    // Polled again: no backfill, at most one range query for the points after the newest held.
    assert_eq!(first.desired("web", &m).await.unwrap(), want);
    let text = first.metrics().await;
    assert_eq!(counter(&text, "leadtime_history_backfills_total"), 1.0);
    assert!(counter(&text, "leadtime_prometheus_range_queries_total") <= 3.0);
    first.shutdown().await;

    // Prometheus keeps scraping while the scaler is away; wait until it holds newer data.
    exporter.set(2.0 * LOAD);
    prometheus.wait_for("test_load", 2.0 * LOAD).await;

    // A new scaler process starts empty: one backfill (in two chunks) refills the history,
    // which reaches at least as far back as before.
    let mut second = Scaler::start(&prometheus.url()).await;
    assert_eq!(
        second.desired("web", &m).await.unwrap(),
        (2.0 * LOAD / TARGET).ceil()
    );
    let text = second.metrics().await;
    assert_eq!(counter(&text, "leadtime_history_backfills_total"), 1.0);
    assert_eq!(
        counter(&text, "leadtime_prometheus_range_queries_total"),
        2.0
    );
    let refilled = sample(&text, &series("leadtime_history_seconds", "web", "")).unwrap();
    assert!(refilled >= held, "held {held} s before, {refilled} s after");
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_triggers_keep_apart_and_idle_workloads_are_dropped_with_their_series() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    let mut scaler = Scaler::start_config(&prometheus.url(), "60s", "5s").await;

    // Two leadtime triggers of one ScaledObject, told apart by metric name and query.
    let a = meta(LOAD_Q, &[("metricName", "a"), ("behavior", ANY_UP)]);
    let b = meta(
        r#"test_load{namespace="test"} * 2"#,
        &[("metricName", "b"), ("behavior", ANY_UP)],
    );
    assert_eq!(scaler.desired("shop", &a).await.unwrap(), 3.0);
    assert_eq!(scaler.desired("shop", &b).await.unwrap(), 5.0);
    assert_eq!(scaler.desired("shop", &a).await.unwrap(), 3.0);
    let text = scaler.metrics().await;
    let of = |metric: &str| {
        format!(r#"leadtime_desired_replicas{{namespace="test",name="shop",metric="{metric}"}}"#)
    };
    assert_eq!(sample(&text, &of("a")), Some(3.0), "{text}");
    assert_eq!(sample(&text, &of("b")), Some(5.0), "{text}");
    // The same trigger twice in a row: the policy state goes on; the decisions count is 2.
    assert_eq!(
        sample(
            &text,
            r#"leadtime_decisions_total{namespace="test",name="shop",metric="a",source="policy",mode="decide"}"#
        ),
        Some(2.0)
    );

    // Nobody polls them any more: after the idle time both go, with every series.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scaler.metrics().await;
        if !text.contains(r#"name="shop""#) {
            assert_eq!(counter(&text, "leadtime_workloads"), 0.0, "{text}");
            assert_eq!(counter(&text, "leadtime_workload_evictions_total"), 2.0);
            break;
        }
        assert!(Instant::now() < deadline, "still there after 30 s: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Polled again, it comes back.
    assert_eq!(scaler.desired("shop", &a).await.unwrap(), 3.0);
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_active_says_whether_the_policy_wants_pods_before_rate_limits() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    let mut scaler = Scaler::start(&prometheus.url()).await;
    // At zero replicas, a Percent-only scale-up rule allows 100% of 0 = 0 more pods.
    let percent = "scaleUp:\n  stabilizationWindowSeconds: 0\n  policies:\n  - type: Percent\n    value: 100\n    periodSeconds: 15\n";
    let m = meta(
        LOAD_Q,
        &[
            ("replicasQuery", r#"test_load{namespace="test"} * 0"#),
            ("behavior", percent),
        ],
    );
    assert_eq!(scaler.desired("cold", &m).await.unwrap(), 0.0);
    // ... yet the policy wants 3 pods: KEDA must activate the workload.
    assert!(scaler.active("cold", &m).await);
    // No load at all: inactive.
    let idle = meta(
        r#"test_load{namespace="test"} * 0"#,
        &[("behavior", percent)],
    );
    assert!(!scaler.active("idle", &idle).await);
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_in_the_metadata_bounds_every_answer() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    let mut scaler = Scaler::start(&prometheus.url()).await;
    // The policy alone: ceil(250 / 100) = 3.
    let plain = meta(LOAD_Q, &[("behavior", ANY_UP)]);
    assert_eq!(scaler.desired("plain", &plain).await.unwrap(), 3.0);
    // A window covering every minute, in a named zone, with a floor; one with a ceiling; an
    // event under way (it started a minute ago by the clock, in RFC 3339).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let started = chrono::DateTime::from_timestamp(now as i64 - 60, 0).unwrap();
    let event = format!(
        "events:\n  - name: launch\n    start: {}\n    duration: 2h\n    min: 9\n",
        started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let cases: [(&str, String, f64); 3] = [
        (
            "floor",
            "timezone: Asia/Shanghai\nwindows:\n  - name: always\n    cron: \"* * * * *\"\n    min: 7\n"
                .into(),
            7.0,
        ),
        (
            "ceiling",
            "windows:\n  - name: always\n    cron: \"* * * * *\"\n    max: 2\n".into(),
            2.0,
        ),
        ("event", event, 9.0),
    ];
    for (name, schedule, want) in &cases {
        let m = meta(
            LOAD_Q,
            &[("behavior", ANY_UP), ("schedule", schedule.as_str())],
        );
        assert_eq!(scaler.desired(name, &m).await.unwrap(), *want, "{name}");
    }
    // A window with `max: 0` (say, nights) scales the workload to zero: KEDA must see it
    // inactive, though the policy wants pods.
    let zero = "windows:\n  - name: night\n    cron: \"* * * * *\"\n    max: 0\n";
    let m = meta(LOAD_Q, &[("behavior", ANY_UP), ("schedule", zero)]);
    assert_eq!(scaler.desired("night", &m).await.unwrap(), 0.0);
    assert!(!scaler.active("night", &m).await);
    let floor = meta(
        LOAD_Q,
        &[("behavior", ANY_UP), ("schedule", cases[0].1.as_str())],
    );
    assert!(scaler.active("floor", &floor).await);
    // A bad block refuses the trigger, naming the key.
    for bad in [
        "windows:\n  - name: a\n    cron: \"* * *\"\n    min: 1\n",
        "windows:\n  - name: a\n    cron: \"* * * * *\"\n    mni: 1\n",
        "timezone: Mars/Olympus\n",
    ] {
        let m = meta(LOAD_Q, &[("schedule", bad)]);
        let err = scaler.desired("bad-schedule", &m).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err}");
        assert!(
            err.message().contains("`schedule`"),
            "{bad}: {}",
            err.message()
        );
    }
    scaler.shutdown().await;
}

/// Set in the environment of the child process `sigterm_ends_open_streams_and_exits_0` starts.
const CHILD_PROMETHEUS: &str = "LEADTIME_SERVE_TEST_CHILD_PROMETHEUS";

/// In a child process only: the real server with the real signal handler, until SIGTERM.
#[test]
fn serve_until_sigterm_child() {
    let Ok(prometheus) = std::env::var(CHILD_PROMETHEUS) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut config =
            leadtime_serve::Config::parse(&harness::config_text(&prometheus, "60s", "15m"))
                .unwrap();
        config.auth = leadtime_serve::Auth::Insecure;
        let server = leadtime_serve::Server::bind(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            config,
            leadtime::Limits::default(),
        )
        .await
        .unwrap();
        println!("grpc={}", server.grpc_addr());
        server.run(leadtime_serve::shutdown_signal()).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_and_exits_0_within_5_s() {
    use std::io::BufRead;
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["serve_until_sigterm_child", "--exact", "--nocapture"])
        .env(CHILD_PROMETHEUS, prometheus.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read the address, then drain the rest: libtest's report after SIGTERM needs the pipe open.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("grpc=") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.to_string());
                }
            }
        }
    });
    let grpc = rx.await.expect("the child prints its address");
    let mut client = leadtime_serve::proto::external_scaler_client::ExternalScalerClient::connect(
        format!("http://{grpc}"),
    )
    .await
    .unwrap();
    // An `external-push` trigger: the stream stays open as long as KEDA runs.
    let mut stream = client
        .stream_is_active(object("pushed", &meta(LOAD_Q, &[])))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.result);

    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let sent = Instant::now();
    // The server ends the stream (status OK) rather than waiting for the client.
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends after SIGTERM");
    assert!(matches!(end, Ok(None)), "{end:?}");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
}

/// `/metrics` by the scraper's `Accept`: OpenMetrics to Prometheus' own header, the classic
/// format (counter families named with `_total`, no `# EOF`) to a scraper that asks for nothing
/// else, which `promtool check metrics` (reading that format) passes.
async fn classic_metrics_for_scrapers_that_do_not_ask_for_openmetrics(scaler: &Scaler) {
    // Prometheus 2.42's scrape header.
    const PROMETHEUS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (kind, open) = http_get_as(scaler.http, "/metrics", Some(PROMETHEUS)).await;
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(open.contains("# TYPE leadtime_decisions counter") && open.ends_with("# EOF\n"));
    for accept in [
        None,
        Some("text/plain"),
        Some("application/openmetrics-text;q=0"),
    ] {
        let (kind, text) = http_get_as(scaler.http, "/metrics", accept).await;
        assert!(
            kind.starts_with("text/plain; version=0.0.4"),
            "{accept:?}: {kind}"
        );
        assert!(
            text.contains("# TYPE leadtime_decisions_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP leadtime_policy_errors_total "),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        // The same samples as the OpenMetrics text.
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect()
        };
        assert_eq!(samples(&text), samples(&open));
        let mut check = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (Debian's prometheus package, `make setup`)");
        use std::io::Write;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        // promtool's lint notes (e.g. counters' naming) are on stdout with status 3; a format
        // error is status 1.
        assert_ne!(
            out.status.code(),
            Some(1),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
