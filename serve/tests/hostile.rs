//! The scaler against callers that are not KEDA: any pod that reaches the gRPC port. Real
//! Prometheus (scraping a test exporter that also serves another tenant's secret), real gRPC.
//! Each test is one attack of the threat model in docs/security.md, and what stops it.

mod harness;

use harness::{object, object_in, Exporter, Prometheus, Scaler};
use leadtime_serve::proto::external_scaler_client::ExternalScalerClient;
use leadtime_serve::proto::GetMetricsRequest;
use std::time::Duration;
use tonic::Code;

const LOAD: f64 = 250.0;
const LOAD_Q: &str = r#"test_load{namespace="test"}"#;
const SECRET: &str = "1234567";

/// A valid trigger of namespace `test` reading `query`, with `extra` keys over the defaults.
fn meta<'a>(query: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut m = vec![
        ("policy", "target-tracking"),
        ("query", query),
        ("targetPerPod", "100"),
        ("lookback", "10s"),
        ("step", "1s"),
        ("minReplicas", "1"),
        ("maxReplicas", "50"),
    ];
    for (k, v) in extra {
        m.retain(|(key, _)| key != k);
        m.push((k, v));
    }
    m
}

async fn started() -> (Exporter, Prometheus) {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    prometheus.wait_for("secret_revenue", 1234567.891).await;
    (exporter, prometheus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_cannot_read_another_tenants_metrics() {
    let (_exporter, prometheus) = started().await;
    let mut scaler = Scaler::start(&prometheus.url()).await;

    // The metric reader of the report: observe mode, a tiny target and a huge max turn the
    // replica count into the value. Every form of reaching namespace `bank` from `test` is
    // refused before Prometheus runs it, naming the key.
    let readers = [
        r#"secret_revenue{namespace="bank"}"#,
        "secret_revenue",
        r#"secret_revenue{namespace=~"test|bank"}"#,
        r#"sum(test_load{namespace="test"}) + on() group_left sum(secret_revenue)"#,
        r#"label_replace(secret_revenue, "namespace", "test", "", "")"#,
    ];
    for query in readers {
        let m = meta(
            query,
            &[
                ("mode", "observe"),
                ("targetPerPod", "0.001"),
                ("maxReplicas", "2000000000"),
            ],
        );
        for status in [
            scaler.spec("reader", &m).await.unwrap_err(),
            scaler.desired("reader", &m).await.unwrap_err(),
        ] {
            assert_eq!(status.code(), Code::InvalidArgument, "{query}: {status}");
            assert!(status.message().contains("`query`"), "{status}");
            assert!(!status.message().contains(SECRET), "{status}");
        }
    }
    // Prometheus' own error texts stay in the log: a many-to-many match echoes label sets.
    let many =
        r#"test_ready_seconds{namespace="test"} + on() test_ready_seconds{namespace="test"}"#;
    let err = scaler.desired("many", &meta(many, &[])).await.unwrap_err();
    assert!(!err.message().contains("pod="), "{err}");
    assert!(!err.message().contains("many-to-many"), "{err}");
    // Its own namespace still works.
    assert_eq!(
        scaler.desired("mine", &meta(LOAD_Q, &[])).await.unwrap(),
        3.0
    );
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_kubernetes_names_and_metrics_stay_well_formed() {
    let (_exporter, prometheus) = started().await;
    let mut scaler = Scaler::start(&prometheus.url()).await;
    let injected =
        "x\"}\nleadtime_desired_replicas{namespace=\"bank\",name=\"api\",metric=\"m\"} 999\n#";
    let m = meta(LOAD_Q, &[]);
    for object in [
        object(injected, &m),
        object_in("Test", "api", &m),
        object_in(&"n".repeat(64), "api", &m),
        object(&"a".repeat(254), &m),
    ] {
        let status = scaler.client.get_metric_spec(object).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        assert!(status.message().contains("DNS-1123") || status.message().contains("over"));
    }
    // A metric name carrying an exposition line is exported escaped, on one line.
    let m = meta(LOAD_Q, &[("metricName", injected)]);
    assert_eq!(scaler.desired("api", &m).await.unwrap(), 3.0);
    let text = scaler.metrics().await;
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("leadtime_desired_replicas{namespace=\"bank\"")),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "the scrape stays whole");
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_unique_to_each_workload_count_against_their_namespace() {
    let (_exporter, prometheus) = started().await;
    let mut scaler = Scaler::start_with_extra(
        &prometheus.url(),
        "limits:\n  policies: 3\n  policiesPerNamespace: 2\n",
    )
    .await;
    let headroom = |h: &'static str| meta(LOAD_Q, &[("param.headroom", h)]);
    let call = |ns: &'static str, name: &'static str, m: &[(&'static str, &'static str)]| {
        GetMetricsRequest {
            scaled_object_ref: Some(object_in(ns, name, m)),
            metric_name: String::new(),
        }
    };
    // Two param sets in `test`: each workload its own policy instances.
    assert!(scaler.desired("a", &headroom("0.1")).await.is_ok());
    assert!(scaler.desired("b", &headroom("0.2")).await.is_ok());
    // A third is over the namespace's count...
    let over = scaler.desired("c", &headroom("0.3")).await.unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over}");
    assert!(
        over.message().contains("limits.policiesPerNamespace"),
        "{over}"
    );
    // ...while a workload with params already loaded shares their instances and is served.
    assert!(scaler.desired("d", &headroom("0.1")).await.is_ok());
    // Another namespace has its own count, up to the total.
    let other = meta("vector(250)", &[("param.headroom", "0.4")]);
    scaler
        .client
        .get_metrics(call("other", "a", &other))
        .await
        .unwrap();
    let third = meta("vector(250)", &[("param.headroom", "0.5")]);
    let over = scaler
        .client
        .get_metrics(call("third", "a", &third))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over}");
    assert!(over.message().contains("`limits.policies`"), "{over}");
    // The workloads held keep answering.
    assert!(scaler.desired("b", &headroom("0.2")).await.unwrap() >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_answer_resource_exhausted_and_held_workloads_keep_working() {
    let (_exporter, prometheus) = started().await;
    let mut scaler = Scaler::start_with_extra(
        &prometheus.url(),
        "limits:\n  workloads: 3\n  workloadsPerNamespace: 2\n  streams: 1\n",
    )
    .await;
    let m = meta(LOAD_Q, &[]);
    assert_eq!(scaler.desired("a", &m).await.unwrap(), 3.0);
    assert_eq!(scaler.desired("b", &m).await.unwrap(), 3.0);
    let over = scaler.desired("c", &m).await.unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over}");
    assert!(
        over.message().contains("limits.workloadsPerNamespace"),
        "{over}"
    );
    // Another namespace has room until the total cap.
    let other = meta("vector(250)", &[]);
    let call = |ns: &'static str, name: &'static str| GetMetricsRequest {
        scaled_object_ref: Some(object_in(ns, name, &other)),
        metric_name: String::new(),
    };
    scaler.client.get_metrics(call("other", "a")).await.unwrap();
    let over = scaler
        .client
        .get_metrics(call("third", "a"))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over}");
    assert!(over.message().contains("`limits.workloads`"), "{over}");
    // The workloads held keep answering.
    assert_eq!(scaler.desired("a", &m).await.unwrap(), 3.0);

    // One StreamIsActive stream at most: the second is refused, the first stays open.
    let mut first = scaler
        .client
        .stream_is_active(object("a", &m))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.message().await.unwrap().map(|r| r.result), Some(true));
    let second = scaler
        .client
        .stream_is_active(object("b", &m))
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::ResourceExhausted, "{second}");
    assert!(second.message().contains("limits.streams"), "{second}");
    drop(first);

    // Metadata size: a long value, too many params, and a message over the transport's cap.
    let long = "x".repeat(9000);
    let err = scaler
        .desired("a", &meta(LOAD_Q, &[("behavior", long.as_str())]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("limits.valueBytes"), "{err}");
    let keys: Vec<String> = (0..40).map(|i| format!("param.p{i}")).collect();
    let mut many = meta(LOAD_Q, &[]);
    many.extend(keys.iter().map(|k| (k.as_str(), "1")));
    let err = scaler.desired("a", &many).await.unwrap_err();
    assert!(err.message().contains("limits.params"), "{err}");
    // 100 KB: under gRPC's usual 4 MiB, over the 64 KiB `limits.messageBytes`; the transport
    // refuses it before it is decoded, let alone held.
    let huge = "x".repeat(100_000);
    let err = scaler
        .desired("a", &meta(huge.as_str(), &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err}");
    assert_eq!(scaler.desired("a", &m).await.unwrap(), 3.0);
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_caller_cannot_steer_a_workload() {
    let (_exporter, prometheus) = started().await;
    let mut scaler = Scaler::start(&prometheus.url()).await;
    let victim = meta(LOAD_Q, &[]);
    assert_eq!(scaler.desired("api", &victim).await.unwrap(), 3.0);
    // The attacker names the same workload with its own metadata, again and again.
    let steer = meta(
        "vector(4e9)",
        &[("maxReplicas", "2147483647"), ("minReplicas", "0")],
    );
    for _ in 0..3 {
        // The attacker gets an answer for its own trigger (within its own bounds)...
        scaler.desired("api", &steer).await.unwrap();
        // ...and the victim's state is untouched.
        assert_eq!(scaler.desired("api", &victim).await.unwrap(), 3.0);
    }
    let zero = meta("vector(0)", &[("minReplicas", "0")]);
    assert!(!scaler.active("api", &zero).await);
    assert!(scaler.active("api", &victim).await);
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_files_only_from_the_operators_directory() {
    let (_exporter, prometheus) = started().await;
    let dir = std::env::temp_dir().join(format!("leadtime-policy-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies/examples/wat/target_tracking.wat");
    std::fs::copy(&policy, dir.join("mine.wat")).unwrap();
    std::fs::write(dir.join("secret.wat"), "top secret: hunter2\n").unwrap();
    let outside = format!("leadtime-outside-{}.wat", std::process::id());
    std::fs::copy(&policy, std::env::temp_dir().join(&outside)).unwrap();
    let escape = format!("../{outside}");

    // Off by default: no file is read at all.
    let mut scaler = Scaler::start(&prometheus.url()).await;
    let err = scaler
        .desired("a", &meta(LOAD_Q, &[("policy", "/etc/passwd.wat")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("policyDir"), "{err}");
    scaler.shutdown().await;

    let mut scaler = Scaler::start_with_extra(
        &prometheus.url(),
        &format!("policyDir: {}\n", dir.display()),
    )
    .await;
    assert_eq!(
        scaler
            .desired("a", &meta(LOAD_Q, &[("policy", "mine.wat")]))
            .await
            .unwrap(),
        3.0
    );
    // A link the operator put there, to a directory outside: what lies beyond it cannot be
    // told apart, a file where a directory would be from nothing at all.
    let etc = std::env::temp_dir().join(format!("leadtime-etc-{}", std::process::id()));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0\n").unwrap();
    std::os::unix::fs::symlink(&etc, dir.join("shared")).unwrap();
    let mut answers = Vec::new();
    for probe in ["shared/passwd/x.wat", "shared/absent/x.wat"] {
        let err = scaler
            .desired("b", &meta(LOAD_Q, &[("policy", probe)]))
            .await
            .unwrap_err();
        answers.push(err.message().replace(probe, "PATH"));
    }
    assert_eq!(
        answers[0], answers[1],
        "an oracle for paths outside policyDir"
    );
    std::fs::remove_dir_all(&etc).unwrap();
    for (path, why) in [
        (escape.as_str(), "outside policyDir"),
        ("missing.wat", "cannot be opened"),
        ("secret.wat", "does not load"),
    ] {
        let err = scaler
            .desired("b", &meta(LOAD_Q, &[("policy", path)]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{path}: {err}");
        assert!(err.message().contains(why), "{err}");
        assert!(!err.message().contains("hunter2"), "{err}");
    }
    scaler.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(std::env::temp_dir().join(&outside)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_one_address_are_capped() {
    let (_exporter, prometheus) = started().await;
    let scaler =
        Scaler::start_with_extra(&prometheus.url(), "limits:\n  connectionsPerIp: 2\n").await;
    // The harness' own client holds one connection; one more fits, the next is closed.
    let url = format!("http://{}", scaler.grpc);
    let mut second = ExternalScalerClient::connect(url.clone()).await.unwrap();
    let m = meta(LOAD_Q, &[]);
    let call = || GetMetricsRequest {
        scaled_object_ref: Some(object("a", &m)),
        metric_name: String::new(),
    };
    second.get_metrics(call()).await.unwrap();
    let third = async {
        let mut client = ExternalScalerClient::connect(url.clone()).await?;
        client
            .get_metrics(call())
            .await
            .map_err(Box::<dyn std::error::Error>::from)
    };
    let third = tokio::time::timeout(Duration::from_secs(5), third).await;
    assert!(
        matches!(third, Ok(Err(_))),
        "a third connection from one address is closed"
    );
    // The connections admitted keep working.
    second.get_metrics(call()).await.unwrap();
    scaler.shutdown().await;
}

/// Memory mappings of this process: `vm.max_map_count` (65,530 by default) bounds them, and at
/// the bound every new policy instance of every tenant fails.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_share_policy_instances_so_many_names_cost_no_mappings_each() {
    let (_exporter, prometheus) = started().await;
    let mut scaler = Scaler::start_with_extra(
        &prometheus.url(),
        "limits:\n  workloads: 1000\n  workloadsPerNamespace: 1000\n",
    )
    .await;
    // One workload first: the policy is loaded and the server's threads are up.
    let m = meta(LOAD_Q, &[("policy", "predictive")]);
    scaler.spec("w0", &m).await.unwrap();
    let before = mappings();
    let workloads = 400;
    for i in 1..=workloads {
        scaler.spec(&format!("w{i}"), &m).await.unwrap();
    }
    let grown = mappings().saturating_sub(before);
    // An instance per workload maps at least its linear memory: 400 or more. Shared instances
    // leave the count where the threads and allocator put it.
    assert!(
        grown < workloads / 4,
        "{workloads} workloads added {grown} mappings"
    );
    // And they all answer, each with its own state.
    assert_eq!(scaler.desired("w1", &m).await.unwrap(), 3.0);
    assert_eq!(
        scaler.desired(&format!("w{workloads}"), &m).await.unwrap(),
        3.0
    );
    scaler.shutdown().await;
}
