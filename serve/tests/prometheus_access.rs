//! Reaching a Prometheus that asks for TLS and credentials: the real Prometheus, started with its
//! own `--web.config.file` (TLS, client certificates, basic auth with bcrypt hashes), and the
//! scaler's client configured as an operator would.

mod harness;

use harness::{Exporter, Pki, Prometheus, Scaler};
use leadtime_serve::prometheus::access::{Access, SECRET_RELOAD};
use leadtime_serve::prometheus::{Bounds, FetchError, Prometheus as Client};
use leadtime_serve::{Config, Server};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery staple";

/// Prometheus' web config: TLS with `pki`'s server certificate, basic auth for `leadtime` with
/// `password`, and client certificates of `pki`'s CA required when `mtls`.
fn web_config(pki: &Pki, password: &str, mtls: bool) -> String {
    let hash = bcrypt::hash(password, 4).unwrap();
    let path = |f: &str| pki.dir.join(f).display().to_string();
    let mut text = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        path("server.crt"),
        path("server.key")
    );
    if mtls {
        text.push_str(&format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            path("ca.crt")
        ));
    }
    text.push_str(&format!("basic_auth_users:\n  leadtime: {hash}\n"));
    text
}

fn client(prometheus: &Prometheus, access: &Access) -> Client {
    let url = format!("https://localhost:{}", prometheus.addr.port());
    Client::connect(
        &url,
        Duration::from_secs(2),
        Duration::ZERO,
        Bounds::default(),
        access,
    )
    .unwrap()
}

/// Asks `client` for `vector(7)` until Prometheus is up (at most 30 s); the last answer.
async fn ask(client: &Client) -> Result<Vec<f64>, FetchError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client.instant("vector(7)", "test").await;
        let starting = matches!(&answer, Err(FetchError::Unreachable { message, .. }) if message.contains("onnection refused"));
        if !starting || std::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn https_with_a_ca_file_and_basic_auth_and_a_rotated_password() {
    let pki = Pki::new("prometheus-ca");
    let exporter = Exporter::start(1.0).await;
    let prometheus = Prometheus::start_web(exporter.addr, Some(&web_config(&pki, PASSWORD, false)));
    let password = write(&pki.dir, "password", &format!("{PASSWORD}\n"));
    let access = Access {
        ca_file: Some(pki.dir.join("ca.crt")),
        basic_auth: Some(("leadtime".into(), password.clone())),
        ..Access::default()
    };
    let ok = client(&prometheus, &access);
    assert_eq!(ask(&ok).await.unwrap(), vec![7.0]);

    // A wrong password: Prometheus' 401, and the password in no error text.
    let wrong = write(&pki.dir, "wrong", "hunter2");
    let refused = client(
        &prometheus,
        &Access {
            basic_auth: Some(("leadtime".into(), wrong)),
            ..access.clone()
        },
    );
    let e = ask(&refused).await.unwrap_err();
    assert!(matches!(e, FetchError::Api { status: 401, .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");

    // Without the CA file the built-in roots do not trust a private CA.
    let untrusted = client(
        &prometheus,
        &Access {
            ca_file: None,
            ..access.clone()
        },
    );
    let e = ask(&untrusted).await.unwrap_err();
    assert!(
        matches!(&e, FetchError::Unreachable { message, .. } if message.contains("UnknownIssuer")),
        "{e:?}"
    );

    // The password rotates: Prometheus takes the new one at once (it reads its web config per
    // connection), the scaler within SECRET_RELOAD of the file changing.
    const NEW: &str = "a new password after rotation";
    prometheus.set_web(&web_config(&pki, NEW, false));
    std::fs::write(&password, NEW).unwrap();
    tokio::time::sleep(SECRET_RELOAD + Duration::from_millis(500)).await;
    assert_eq!(ask(&ok).await.unwrap(), vec![7.0]);
}

#[tokio::test]
async fn a_prometheus_that_requires_client_certificates() {
    let pki = Pki::new("prometheus-ca");
    pki.issue("scaler", &["leadtime-scaler"], "leadtime-scaler");
    let exporter = Exporter::start(1.0).await;
    let prometheus = Prometheus::start_web(exporter.addr, Some(&web_config(&pki, PASSWORD, true)));
    let password = write(&pki.dir, "password", PASSWORD);
    let access = Access {
        ca_file: Some(pki.dir.join("ca.crt")),
        basic_auth: Some(("leadtime".into(), password)),
        ..Access::default()
    };
    let e = ask(&client(&prometheus, &access)).await.unwrap_err();
    assert!(matches!(e, FetchError::Unreachable { .. }), "{e:?}");
    let with_cert = Access {
        client_cert: Some((pki.dir.join("scaler.crt"), pki.dir.join("scaler.key"))),
        ..access
    };
    assert_eq!(
        ask(&client(&prometheus, &with_cert)).await.unwrap(),
        vec![7.0]
    );
}

#[tokio::test]
async fn the_scaler_reaches_an_https_prometheus_from_its_config_and_names_a_bad_file() {
    let pki = Pki::new("prometheus-ca");
    let exporter = Exporter::start(250.0).await;
    let prometheus = Prometheus::start_web(exporter.addr, Some(&web_config(&pki, PASSWORD, false)));
    let password = write(&pki.dir, "password", PASSWORD);
    let section = |ca: &str| {
        format!(
            "prometheus:\n  url: https://localhost:{}\n  timeout: 2s\n  cacheTtl: 100ms\n  caFile: {ca}\n\
             \x20 basicAuth:\n    username: leadtime\n    passwordFile: {}\n",
            prometheus.addr.port(),
            password.display()
        )
    };
    let ca = pki.dir.join("ca.crt").display().to_string();
    // What KEDA gets: the load through TLS and basic auth, 250 at 100 a pod.
    let mut scaler = Scaler::start_text(&section(&ca)).await;
    let trigger = [
        ("policy", "target-tracking"),
        ("query", r#"test_load{namespace="test"}"#),
        ("targetPerPod", "100"),
        ("lookback", "10s"),
        ("step", "1s"),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(n) = scaler.desired("load", &trigger).await {
            if n == 3.0 {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no answer of 3 pods");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    scaler.shutdown().await;

    let e = refusal_to_start(&section("/nonexistent/ca.pem")).await;
    assert!(
        e.starts_with("prometheus.caFile `/nonexistent/ca.pem`"),
        "{e}"
    );
}

/// Why the server does not start with the config `text` (plain gRPC).
async fn refusal_to_start(text: &str) -> String {
    let mut config = Config::parse(text).unwrap();
    config.auth = leadtime_serve::Auth::Insecure;
    Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        config,
        leadtime::Limits::default(),
    )
    .await
    .err()
    .expect("the server refuses to start")
    .to_string()
}

/// The next connection on `listener` and its first request's head, as the server receives it.
async fn accept_head(listener: &tokio::net::TcpListener) -> (tokio::net::TcpStream, String) {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed mid-request");
        head.extend_from_slice(&buf[..n]);
    }
    (socket, String::from_utf8(head).unwrap())
}

/// One HTTP request's head as a server receives it, answered with an empty vector.
async fn request_head(listener: &tokio::net::TcpListener) -> String {
    let (mut socket, head) = accept_head(listener).await;
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(answer.as_bytes()).await.unwrap();
    head.to_ascii_lowercase()
}

#[tokio::test]
async fn a_bearer_token_and_tenant_header_are_sent_and_the_token_rereads_when_it_rotates() {
    // Prometheus itself checks no bearer token (a proxy in front of it, or Mimir, does): this
    // reads what the scaler puts on the wire.
    let dir = Pki::new("unused");
    let token = write(&dir.dir, "token", "first-token\n");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let access = Access {
        bearer_token_file: Some(token.clone()),
        headers: vec![("X-Scope-OrgID".into(), "team-a".into())],
        ..Access::default()
    };
    let client = Client::connect(
        &url,
        Duration::from_secs(5),
        Duration::ZERO,
        Bounds::default(),
        &access,
    )
    .unwrap();
    let (head, _) = tokio::join!(request_head(&listener), client.instant("up", "test"));
    assert!(
        head.contains("authorization: bearer first-token\r\n"),
        "{head}"
    );
    assert!(head.contains("x-scope-orgid: team-a\r\n"), "{head}");

    std::fs::write(&token, "second-token").unwrap();
    tokio::time::sleep(SECRET_RELOAD + Duration::from_millis(200)).await;
    let (head, _) = tokio::join!(request_head(&listener), client.instant("up", "test"));
    assert!(
        head.contains("authorization: bearer second-token\r\n"),
        "{head}"
    );

    // A token file that goes away fails the call, naming the file, not the old token.
    std::fs::remove_file(&token).unwrap();
    tokio::time::sleep(SECRET_RELOAD + Duration::from_millis(200)).await;
    let e = client.instant("up", "test").await.unwrap_err();
    assert!(
        matches!(&e, FetchError::Credentials(m) if m.contains("bearerTokenFile") && !m.contains("second-token")),
        "{e:?}"
    );
}

/// Answers one request with `status` and a body that echoes the request's Authorization header
/// into `body` (at `{}`), as a misconfigured proxy or a debugging endpoint in front of Prometheus
/// might.
async fn echo_authorization(listener: &tokio::net::TcpListener, status: &str, body: &str) {
    let (mut socket, head) = accept_head(listener).await;
    let authorization = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization: "))
        .map(|l| &l["authorization: ".len()..])
        .unwrap_or("none")
        .to_string();
    let body = body.replace("{}", &authorization);
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(answer.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn an_answer_that_echoes_the_credentials_is_redacted() {
    let dir = Pki::new("unused");
    let password = write(&dir.dir, "password", PASSWORD);
    let token = write(&dir.dir, "token", "tok-5f3c9a7e21");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("leadtime:{PASSWORD}"));
    let credentials = [
        (
            Access {
                basic_auth: Some(("leadtime".into(), password)),
                ..Access::default()
            },
            vec![PASSWORD, basic.as_str()],
        ),
        (
            Access {
                bearer_token_file: Some(token),
                ..Access::default()
            },
            vec!["tok-5f3c9a7e21"],
        ),
    ];
    // A plain-text 401 page, Prometheus' error envelope, and a query refusal, each echoing.
    let answers = [
        (
            "401 Unauthorized",
            "denied for Authorization: {} (check the proxy)",
        ),
        (
            "503 Service Unavailable",
            r#"{"status":"error","errorType":"unavailable","error":"upstream said {}"}"#,
        ),
        (
            "400 Bad Request",
            r#"{"status":"error","errorType":"bad_data","error":"header {} not allowed"}"#,
        ),
    ];
    for (access, secrets) in &credentials {
        for (status, body) in answers {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let client = Client::connect(
                &url,
                Duration::from_secs(5),
                Duration::ZERO,
                Bounds::default(),
                access,
            )
            .unwrap();
            let (_, answer) = tokio::join!(
                echo_authorization(&listener, status, body),
                client.instant("up", "test")
            );
            let text = answer.unwrap_err().to_string();
            assert!(text.contains("<redacted>"), "{status}: {text}");
            for secret in secrets {
                assert!(!text.contains(secret), "{status}: {text} holds {secret}");
            }
        }
    }
}

#[tokio::test]
async fn credentials_in_the_url_are_refused_without_being_repeated() {
    for url in [
        "http://leadtime:hunter2-secret@prometheus:9090",
        "https://hunter2-secret@prometheus.example:443/prefix",
    ] {
        let error = Client::connect(
            url,
            Duration::from_secs(2),
            Duration::ZERO,
            Bounds::default(),
            &Access::default(),
        )
        .err()
        .unwrap_or_else(|| panic!("{url} accepted"))
        .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(
            error.contains("basicAuth") && error.contains("prometheus"),
            "{error}"
        );
        // The scaler refuses to start with it, saying the same.
        let refused = refusal_to_start(&format!("prometheus:\n  url: {url}\n")).await;
        assert!(
            !refused.contains("hunter2") && refused.contains("basicAuth"),
            "{refused}"
        );
    }
}
