//! The scaler against a real Prometheus (Debian package `prometheus`, started here on loopback)
//! scraping a test exporter, called over real gRPC by a client generated from the same proto.

mod harness;

use harness::{adversarial, object, sample, Exporter, Prometheus, Scaler, SlowPrometheus};
use leadtime_serve::proto::GetMetricsRequest;
use std::time::{Duration, Instant};
use tonic::Code;

const LOAD: f64 = 250.0;
const TARGET: f64 = 100.0;
/// Behavior that lets any scale-up through at once, so that a test sees the policy's target
/// rather than the default rate limit (+4 pods or +100% per 15 s).
const ANY_UP: &str =
    "scaleUp:\n  policies:\n  - type: Pods\n    value: 1000\n    periodSeconds: 1\n";

fn meta<'a>(query: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut m = vec![
        ("policy", "target-tracking"),
        ("query", query),
        ("targetPerPod", "100"),
        ("lookback", "10s"),
        ("step", "1s"),
        ("minReplicas", "0"),
        ("maxReplicas", "50"),
    ];
    m.extend_from_slice(extra);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_from_real_prometheus() {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    let mut scaler = Scaler::start(&prometheus.url()).await;
    let want = (LOAD / TARGET).ceil();

    // GetMetrics: the policy's target, as float and int.
    let m = meta("test_load", &[("readyTimeQuery", "test_ready_seconds")]);
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
    let idle = meta("test_load * 0", &[]);
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
        "test_load",
        &[
            ("mode", "observe"),
            ("param.headroom", "1"),
            ("behavior", ANY_UP),
        ],
    );
    assert_eq!(scaler.desired("shadow", &observe).await.unwrap(), want);
    let text = scaler.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"leadtime_policy_replicas{namespace="test",name="shadow"}"#
        ),
        Some((2.0 * LOAD / TARGET).ceil())
    );
    assert_eq!(
        sample(
            &text,
            r#"leadtime_desired_replicas{namespace="test",name="shadow"}"#
        ),
        Some(want)
    );
    assert_eq!(
        sample(
            &text,
            r#"leadtime_decisions_total{namespace="test",name="web",source="policy",mode="decide"}"#
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

    // A query without data: the last target is held; a workload with no last target gets
    // Unavailable, which KEDA and the HPA treat as "keep the replicas".
    let empty = meta("no_such_metric", &[]);
    assert_eq!(scaler.desired("web", &empty).await.unwrap(), want);
    let err = scaler.desired("new", &empty).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("no data"), "{}", err.message());
    let text = scaler.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"leadtime_prometheus_errors_total{namespace="test",name="web",kind="no-data"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"leadtime_fallback_active{namespace="test",name="web"}"#
        ),
        Some(1.0)
    );

    // A policy that traps: held, counted by kind; after 3 in a row the circuit opens.
    let trap_path = adversarial("unreachable.wat");
    let trap = meta("test_load", &[("policy", trap_path.as_str())]);
    for _ in 0..4 {
        assert_eq!(scaler.desired("web", &trap).await.unwrap(), want);
    }
    let text = scaler.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"leadtime_policy_errors_total{namespace="test",name="web",kind="trap"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"leadtime_policy_errors_total{namespace="test",name="web",kind="circuit-open"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"leadtime_circuit_state{namespace="test",name="web"}"#
        ),
        Some(1.0)
    );

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
        let m = meta("test_load", extra);
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
    let m = meta("test_load", &[("behavior", down)]);
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
    let held = meta("test_load", &[("behavior", ANY_UP)]);
    let strict = meta("test_load", &[("onError", "error")]);
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
        sample(
            &text,
            r#"leadtime_fallback_active{namespace="test",name="web"}"#
        ),
        Some(0.0)
    );
    assert!(text.contains(r#"kind="unreachable""#), "{text}");
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_prometheus_gets_the_fallback_within_the_timeout() {
    let slow = SlowPrometheus::start(LOAD).await;
    let mut scaler = Scaler::start(&format!("http://{}", slow.addr)).await;
    let held = meta("load", &[]);
    let strict = meta("load", &[("onError", "error")]);
    let want = (LOAD / TARGET).ceil();
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);

    slow.slow_down(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(150)).await; // past the cache TTL
    let start = Instant::now();
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);
    let err = scaler.desired("strict", &strict).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("within"), "{}", err.message());
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
            r#"leadtime_prometheus_errors_total{namespace="test",name="web",kind="timeout"}"#
        ),
        Some(1.0)
    );

    slow.slow_down(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(scaler.desired("web", &held).await.unwrap(), want);
    let text = scaler.metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"leadtime_fallback_active{namespace="test",name="web"}"#
        ),
        Some(0.0)
    );
    scaler.shutdown().await;
}
