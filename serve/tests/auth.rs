//! Who may call the scaler: mutual TLS with an allow-list is the default posture. Real TLS (rustls
//! on both ends), certificates made fresh per test, a real Prometheus behind the scaler.

mod harness;

use harness::{
    counter, health_client, object, sample, tls_client, Exporter, Pki, Prometheus, Scaler,
};
use leadtime_serve::{Config, Server};
use std::time::Duration;
use tonic::Code;

const LOAD: f64 = 250.0;

fn trigger() -> Vec<(&'static str, &'static str)> {
    vec![
        ("policy", "target-tracking"),
        ("query", r#"test_load{namespace="test"}"#),
        ("targetPerPod", "100"),
        ("lookback", "10s"),
        ("step", "1s"),
    ]
}

async fn started() -> (Exporter, Prometheus) {
    let exporter = Exporter::start(LOAD).await;
    let prometheus = Prometheus::start(exporter.addr).await;
    prometheus.wait_for("test_load", LOAD).await;
    (exporter, prometheus)
}

fn config(prometheus: &str, pki: &Pki, allowed: &[&str]) -> Config {
    let text = format!(
        "{}{}",
        harness::config_text(prometheus, "60s", "15m"),
        pki.config_section(allowed)
    );
    Config::parse(&text).unwrap()
}

/// Why the server refuses to start with `config`.
async fn refusal(config: Config) -> String {
    let bound = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        config,
        leadtime::Limits::default(),
    )
    .await;
    bound.err().expect("the server started").to_string()
}

#[tokio::test]
async fn the_server_refuses_to_start_without_a_choice_of_authentication() {
    let config = Config::parse("prometheus:\n  url: http://127.0.0.1:1\n").unwrap();
    let text = refusal(config).await;
    for named in ["tls", "--tls-cert", "--allow-client", "--insecure"] {
        assert!(text.contains(named), "{named} missing from: {text}");
    }
}

#[tokio::test]
async fn a_tls_file_that_does_not_load_is_named() {
    let pki = Pki::new("test CA");
    std::fs::write(pki.dir.join("server.key"), "not a key").unwrap();
    let text = refusal(config("http://127.0.0.1:1", &pki, &["keda-operator"])).await;
    assert!(text.contains("tls.keyFile"), "{text}");
    assert!(text.contains("server.key"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_clients_with_the_cas_certificate_are_served() {
    let (_exporter, prometheus) = started().await;
    let pki = Pki::new("test CA");
    let keda = pki.issue("keda", &["keda-operator.keda.svc"], "keda-operator");
    let stranger = pki.issue("stranger", &["evil.tenant.svc"], "evil");
    let config = config(&prometheus.url(), &pki, &["keda-operator.keda.svc"]);
    let mut scaler = Scaler::start_parsed(config, Some((&pki, &keda))).await;

    // KEDA, on the allow-list by its DNS name: served.
    assert_eq!(scaler.desired("api", &trigger()).await.unwrap(), 3.0);

    // Signed by the CA but not on the list: refused, and told which names it showed.
    let mut client = tls_client(scaler.grpc, &pki.ca_pem(), Some(&stranger))
        .await
        .unwrap();
    let status = client
        .is_active(object("api", &trigger()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("evil.tenant.svc"), "{status:?}");
    assert!(status.message().contains("allowedClients"), "{status:?}");

    // No certificate, a certificate of another CA, plain gRPC: no call gets through.
    let other = Pki::new("another CA");
    let forged = other.issue("forged", &["keda-operator.keda.svc"], "keda-operator");
    let attempts = [
        ("no client certificate", None),
        ("another CA's certificate", Some(&forged)),
    ];
    for (what, identity) in attempts {
        let refused = match tls_client(scaler.grpc, &pki.ca_pem(), identity).await {
            Err(_) => true,
            Ok(mut client) => client.is_active(object("api", &trigger())).await.is_err(),
        };
        assert!(refused, "{what}: served");
    }
    let plain = match leadtime_serve::proto::external_scaler_client::ExternalScalerClient::connect(
        format!("http://{}", scaler.grpc),
    )
    .await
    {
        Err(_) => true,
        Ok(mut client) => client.is_active(object("api", &trigger())).await.is_err(),
    };
    assert!(plain, "plain gRPC: served");

    // KEDA still is.
    assert_eq!(scaler.desired("api", &trigger()).await.unwrap(), 3.0);
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_from_keda_s_own_address_do_not_lock_it_out() {
    let (_exporter, prometheus) = started().await;
    let pki = Pki::new("test CA");
    let keda = pki.issue("keda", &["keda-operator.keda.svc"], "keda-operator");
    let config = config(&prometheus.url(), &pki, &["keda-operator.keda.svc"]);
    let per_ip = config.settings.quotas.connections_per_ip;
    let mut scaler = Scaler::start_parsed(config, Some((&pki, &keda))).await;
    assert_eq!(scaler.desired("api", &trigger()).await.unwrap(), 3.0);

    // 400 sockets from the same address as KEDA (loopback), each sending the first 5 bytes of
    // a ClientHello (a record header announcing 512 bytes) and nothing more: 12x the
    // per-address cap.
    let mut stalled = Vec::new();
    for _ in 0..400 {
        let mut socket = tokio::net::TcpStream::connect(scaler.grpc).await.unwrap();
        use tokio::io::AsyncWriteExt;
        socket
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
            .await
            .unwrap();
        stalled.push(socket);
    }
    assert!(stalled.len() > per_ip * 10);
    // A new connection of KEDA's is served while they are held, every time.
    for _ in 0..5 {
        let mut keda_client = tokio::time::timeout(
            Duration::from_secs(5),
            tls_client(scaler.grpc, &pki.ca_pem(), Some(&keda)),
        )
        .await
        .expect("KEDA's handshake waited behind stalled ones")
        .unwrap();
        let active = keda_client.is_active(object("api", &trigger())).await;
        assert!(active.unwrap().into_inner().result);
    }
    // The stalled sockets were ended by the scaler (evicted, oldest first), not kept.
    use tokio::io::AsyncReadExt;
    let mut closed = 0;
    for socket in stalled.iter_mut().take(100) {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), socket.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 100, "the 100 oldest stalled handshakes are closed");
    drop(stalled);
    scaler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_verified_caller_has_its_own_workload_state() {
    let (_exporter, prometheus) = started().await;
    let pki = Pki::new("test CA");
    let keda = pki.issue("keda", &[], "keda-operator");
    let second = pki.issue("second", &[], "keda-operator-2");
    let config = config(
        &prometheus.url(),
        &pki,
        &["keda-operator", "keda-operator-2"],
    );
    let mut scaler = Scaler::start_parsed(config, Some((&pki, &keda))).await;
    assert_eq!(scaler.desired("api", &trigger()).await.unwrap(), 3.0);
    let workloads = |text: String| counter(&text, "leadtime_workloads");
    assert_eq!(workloads(scaler.metrics().await), 1.0);

    // The same namespace, name and metadata from another allowed caller (matched by its common
    // name): a state of its own, not KEDA's.
    scaler.client = tls_client(scaler.grpc, &pki.ca_pem(), Some(&second))
        .await
        .unwrap();
    assert_eq!(scaler.desired("api", &trigger()).await.unwrap(), 3.0);
    assert_eq!(workloads(scaler.metrics().await), 2.0);
    // Its own answer for the same workload is its own series: KEDA's is not overwritten.
    let mut other = trigger();
    other[2] = ("targetPerPod", "50");
    assert_eq!(scaler.desired("api", &other).await.unwrap(), 5.0);
    let text = scaler.metrics().await;
    let desired = |client: &str| {
        let series = format!(
            r#"leadtime_desired_replicas{{namespace="test",name="api",metric="leadtime-desired-replicas",client="{client}"}}"#
        );
        sample(&text, &series)
    };
    assert_eq!(desired("keda-operator"), Some(3.0), "{text}");
    assert_eq!(desired("keda-operator-2"), Some(5.0), "{text}");
    // The second caller fills the namespace's workload slots (limits.workloadsPerNamespace)...
    let mut filled = 1;
    let over = loop {
        match scaler.desired(&format!("fill-{filled}"), &trigger()).await {
            Ok(_) => filled += 1,
            Err(status) => break status,
        }
        assert!(
            filled <= 100,
            "no cap on a caller's workloads in a namespace"
        );
    };
    assert_eq!(over.code(), Code::ResourceExhausted, "{over}");
    assert!(
        over.message().contains("limits.workloadsPerNamespace"),
        "{over}"
    );
    // ...and KEDA still gets a new workload there: the count is per caller.
    scaler.client = tls_client(scaler.grpc, &pki.ca_pem(), Some(&keda))
        .await
        .unwrap();
    assert_eq!(scaler.desired("web", &trigger()).await.unwrap(), 3.0);
    scaler.shutdown().await;
}

#[tokio::test]
async fn grpc_health_says_serving_while_the_scaler_serves() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::HealthCheckRequest;
    let pki = Pki::new("test CA");
    let keda = pki.issue("keda", &["keda-operator.keda.svc"], "keda-operator");
    // Prometheus need not answer for the server to serve (it holds or falls back per workload).
    let config = config("http://127.0.0.1:1", &pki, &["keda-operator.keda.svc"]);
    let scaler = Scaler::start_parsed(config, Some((&pki, &keda))).await;
    let mut health = health_client(scaler.grpc, &pki.ca_pem(), &keda).await;
    for service in ["", "externalscaler.ExternalScaler"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service `{service}`");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // A client the CA signed for a name not on the allow-list gets no health answer (nor Watch
    // streams): the health service is behind the same allow-list as the scaler.
    let stranger = pki.issue("stranger", &["evil.tenant.svc"], "evil");
    let mut health = health_client(scaler.grpc, &pki.ca_pem(), &stranger).await;
    let refused = health
        .check(HealthCheckRequest { service: "".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let watch = health
        .watch(HealthCheckRequest { service: "".into() })
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::PermissionDenied, "{watch:?}");
    scaler.shutdown().await;
}

#[test]
fn a_common_name_counts_only_without_subject_alternative_names() {
    let pki = Pki::new("test CA");
    // (SANs, CN, the names that count)
    let cases: [(&[&str], &str, &[&str]); 3] = [
        (
            &["keda-operator.keda.svc"],
            "keda-operator",
            &["keda-operator.keda.svc"],
        ),
        (&["a.svc", "b.svc"], "keda-operator", &["a.svc", "b.svc"]),
        (&[], "keda-operator", &["keda-operator"]),
    ];
    for (i, (sans, cn, want)) in cases.into_iter().enumerate() {
        let (pem, _) = pki.issue(&format!("c{i}"), sans, cn);
        let der = der_of(&pem);
        assert_eq!(
            leadtime_serve::auth::names(&der),
            want,
            "SANs {sans:?}, CN {cn}"
        );
    }
}

/// The DER of the first certificate in `pem`.
fn der_of(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificates_are_served_without_a_restart() {
    use leadtime_serve::tls::RELOAD_CHECK;
    let (_exporter, prometheus) = started().await;
    let pki = Pki::new("first CA");
    let keda = pki.issue("keda", &["keda-operator.keda.svc"], "keda-operator");
    let config = config(&prometheus.url(), &pki, &["keda-operator.keda.svc"]);
    let mut scaler = Scaler::start_parsed(config, Some((&pki, &keda))).await;
    assert_eq!(scaler.desired("api", &trigger()).await.unwrap(), 3.0);
    let first_ca = pki.ca_pem();
    let served_by = |ca: String| {
        let addr = scaler.grpc;
        let keda = keda.clone();
        async move {
            match tls_client(addr, &ca, Some(&keda)).await {
                Ok(mut client) => client.is_active(object("api", &trigger())).await.is_ok(),
                Err(_) => false,
            }
        }
    };

    // A half-written renewal (a key that is no key): the last good certificate stays.
    std::fs::write(pki.dir.join("server.key"), "not a key yet").unwrap();
    tokio::time::sleep(RELOAD_CHECK + Duration::from_secs(1)).await;
    assert!(
        served_by(first_ca.clone()).await,
        "the old certificate is still served"
    );

    // The renewal lands (a server certificate from another CA, as a CA rotation would): new
    // connections get it, and clients trusting only the old CA no longer connect.
    let renewed = Pki::new("second CA");
    for file in ["server.crt", "server.key"] {
        std::fs::copy(renewed.dir.join(file), pki.dir.join(file)).unwrap();
    }
    tokio::time::sleep(RELOAD_CHECK + Duration::from_secs(1)).await;
    assert!(
        served_by(renewed.ca_pem()).await,
        "the renewed certificate is served"
    );
    assert!(
        !served_by(first_ca).await,
        "the old certificate is still served"
    );
    // The connection made before the renewal keeps working.
    assert_eq!(scaler.desired("api", &trigger()).await.unwrap(), 3.0);
    scaler.shutdown().await;
}
