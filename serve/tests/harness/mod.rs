//! What the scaler's tests start: a test exporter with a known load, a real Prometheus scraping
//! it, a slow fake Prometheus, and the scaler itself, all on 127.0.0.1.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::Full;
use leadtime_serve::proto::external_scaler_client::ExternalScalerClient;
use leadtime_serve::proto::{GetMetricsRequest, ScaledObjectRef};
use leadtime_serve::{Config, Server};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// Serves `handler(path, query)` over HTTP/1 on a free loopback port.
pub async fn http_server<F>(handler: F) -> SocketAddr
where
    F: Fn(String, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>
        + Send
        + Sync
        + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let handler = handler.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let query = req.uri().query().unwrap_or("").to_string();
                        let body = handler(path, query).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A test exporter: `/metrics` serves `test_load <load>` and two pods' ready seconds in
/// namespace `test`, and another tenant's secret (`secret_revenue`, namespace `bank`).
pub struct Exporter {
    /// Where Prometheus scrapes it.
    pub addr: SocketAddr,
    load: Arc<AtomicU64>,
}

impl Exporter {
    /// An exporter serving `load`.
    pub async fn start(load: f64) -> Exporter {
        let shared = Arc::new(AtomicU64::new(load.to_bits()));
        let l = shared.clone();
        let addr = http_server(move |_, _| {
            let load = f64::from_bits(l.load(Ordering::SeqCst));
            Box::pin(async move {
                format!(
                    "# TYPE test_load gauge\ntest_load{{namespace=\"test\"}} {load}\n\
                     # TYPE test_ready_seconds gauge\n\
                     test_ready_seconds{{namespace=\"test\",pod=\"a\"}} 30\n\
                     test_ready_seconds{{namespace=\"test\",pod=\"b\"}} 50\n\
                     # TYPE secret_revenue gauge\n\
                     secret_revenue{{namespace=\"bank\",account=\"acme\"}} 1234567.891\n"
                )
            })
        })
        .await;
        Exporter { addr, load: shared }
    }

    /// Changes the load served from now on.
    pub fn set(&self, load: f64) {
        self.load.store(load.to_bits(), Ordering::SeqCst);
    }
}

/// A real Prometheus (the Debian package) scraping one target every second.
pub struct Prometheus {
    /// Its HTTP address.
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    /// `--web.config.file` (TLS, basic auth), when started with one.
    web: Option<PathBuf>,
}

impl Prometheus {
    /// Starts Prometheus on a free port with a fresh data directory, scraping `target`.
    pub async fn start(target: SocketAddr) -> Prometheus {
        Prometheus::start_web(target, None)
    }

    /// Starts Prometheus as [`Prometheus::start`] with its own `--web.config.file` holding
    /// `web` (YAML: `tls_server_config`, `basic_auth_users`), when given.
    pub fn start_web(target: SocketAddr, web: Option<&str>) -> Prometheus {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir =
            std::env::temp_dir().join(format!("leadtime-serve-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let web = web.map(|text| {
            let path = dir.join("web.yml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut p = Prometheus {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: None,
            web,
        };
        p.spawn();
        p
    }

    /// Rewrites its web config; Prometheus reads it again on each connection.
    pub fn set_web(&self, text: &str) {
        std::fs::write(self.web.as_ref().expect("started with a web config"), text).unwrap();
    }

    fn spawn(&mut self) {
        let mut command = Command::new("prometheus");
        if let Some(web) = &self.web {
            command.arg(format!("--web.config.file={}", web.display()));
        }
        let child = command
            .arg(format!(
                "--config.file={}",
                self.dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={}", self.addr))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("`prometheus` is not on PATH: run `make setup` (installs the Debian package)");
        self.child = Some(child);
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `query` has a sample equal to `want` (at most 30 s).
    pub async fn wait_for(&self, query: &str, want: f64) {
        let client = leadtime_serve::prometheus::Prometheus::new(
            &self.url(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = client.instant(query, "test").await {
                if v.contains(&want) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no sample {query} = {want} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the server with SIGTERM, as Kubernetes would (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let term = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            if !term.is_ok_and(|s| s.success()) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fake Prometheus that answers every query with a constant `value`, after `delay_ms`.
pub struct SlowPrometheus {
    /// Its address.
    pub addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
}

impl SlowPrometheus {
    /// Starts it answering at once.
    pub async fn start(value: f64) -> SlowPrometheus {
        let delay = Arc::new(AtomicU64::new(0));
        let d = delay.clone();
        let addr = http_server(move |path, query| {
            let delay = d.load(Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let end = form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "end")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                if path.ends_with("/query_range") {
                    format!(
                        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[[{end},"{value}"]]}}]}}}}"#
                    )
                } else {
                    // An instant query (or a parse check, which takes any success).
                    format!(
                        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{value}"]}}]}}}}"#
                    )
                }
            })
        })
        .await;
        SlowPrometheus {
            addr,
            delay_ms: delay,
        }
    }

    /// Makes every later answer wait `delay`.
    pub fn slow_down(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

/// A running scaler and a gRPC client of it.
pub struct Scaler {
    /// gRPC address.
    pub grpc: SocketAddr,
    /// `/metrics` address.
    pub http: SocketAddr,
    /// A client generated from the same proto.
    pub client: ExternalScalerClient<Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Scaler {
    /// Starts the scaler against `prometheus` with a short timeout and cache; StreamIsActive
    /// re-checks only every minute, so that a test counts its first round alone.
    pub async fn start(prometheus: &str) -> Scaler {
        Scaler::start_with(prometheus, "60s").await
    }

    /// Starts the scaler with StreamIsActive re-checking every `stream_interval`.
    pub async fn start_with(prometheus: &str, stream_interval: &str) -> Scaler {
        Scaler::start_config(prometheus, stream_interval, "15m").await
    }

    /// Starts the scaler with StreamIsActive re-checking every `stream_interval` and workloads
    /// dropped after `idle_after` unpolled.
    pub async fn start_config(prometheus: &str, stream_interval: &str, idle_after: &str) -> Scaler {
        Scaler::start_text(&config_text(prometheus, stream_interval, idle_after)).await
    }

    /// Starts the scaler with the test config for `prometheus` plus `extra` YAML sections.
    pub async fn start_with_extra(prometheus: &str, extra: &str) -> Scaler {
        Scaler::start_text(&format!("{}{extra}", config_text(prometheus, "60s", "15m"))).await
    }

    /// Starts the scaler with the config `text`.
    pub async fn start_text(text: &str) -> Scaler {
        let mut config = Config::parse(text).unwrap();
        // The tests of what the scaler answers call it in plain gRPC; tests/auth.rs covers TLS.
        config.auth = leadtime_serve::Auth::Insecure;
        Scaler::start_parsed(config, None).await
    }

    /// Starts the scaler with `config` as it is; its client speaks TLS when `tls` gives the CA
    /// and the client's certificate and key.
    pub async fn start_parsed(config: Config, tls: Option<(&Pki, &(String, String))>) -> Scaler {
        let server = Server::bind(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            config,
            leadtime::Limits::default(),
        )
        .await
        .unwrap();
        let (grpc, http) = (server.grpc_addr(), server.http_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        let client = match tls {
            Some((pki, identity)) => tls_client(grpc, &pki.ca_pem(), Some(identity))
                .await
                .unwrap(),
            None => ExternalScalerClient::connect(format!("http://{grpc}"))
                .await
                .unwrap(),
        };
        Scaler {
            grpc,
            http,
            client,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// IsActive for `namespace/name` with `metadata`.
    pub async fn active(&mut self, name: &str, metadata: &[(&str, &str)]) -> bool {
        self.client
            .is_active(object(name, metadata))
            .await
            .unwrap()
            .into_inner()
            .result
    }

    /// GetMetricSpec for `namespace/name` with `metadata`.
    pub async fn spec(
        &mut self,
        name: &str,
        metadata: &[(&str, &str)],
    ) -> Result<leadtime_serve::proto::GetMetricSpecResponse, tonic::Status> {
        Ok(self
            .client
            .get_metric_spec(object(name, metadata))
            .await?
            .into_inner())
    }

    /// GetMetrics for `namespace/name` with `metadata`: the float value, checked against the int.
    pub async fn desired(
        &mut self,
        name: &str,
        metadata: &[(&str, &str)],
    ) -> Result<f64, tonic::Status> {
        let response = self
            .client
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(object(name, metadata)),
                metric_name: String::new(),
            })
            .await?
            .into_inner();
        assert_eq!(response.metric_values.len(), 1);
        let value = &response.metric_values[0];
        assert_eq!(value.metric_value as f64, value.metric_value_float);
        Ok(value.metric_value_float)
    }

    /// The `/metrics` text, as it is after what the test did so far (a rendering is reused for
    /// `METRICS_MAX_AGE`).
    pub async fn metrics(&self) -> String {
        tokio::time::sleep(leadtime_serve::http::METRICS_MAX_AGE).await;
        // As Prometheus asks for it; tests/scaler.rs checks the classic format too.
        http_get_as(self.http, "/metrics", Some("application/openmetrics-text"))
            .await
            .1
    }

    /// Stops the server gracefully and waits for it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

/// The scaler's config file for the tests: a short timeout and cache.
pub fn config_text(prometheus: &str, stream_interval: &str, idle_after: &str) -> String {
    format!(
        "prometheus:\n  url: {prometheus}\n  timeout: 400ms\n  cacheTtl: 100ms\n\
         streamInterval: {stream_interval}\nidleAfter: {idle_after}\n\
         breaker:\n  failures: 3\n  openFor: 1m\n"
    )
}

/// The first trigger's metadata of `deploy/scaledobject.yaml`, as KEDA passes it on
/// (`ScaledObjectRef.scalerMetadata`: every key, values as strings).
pub fn deploy_metadata() -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/scaledobject.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    // The ScaledObject is the file's first document; its TriggerAuthentication follows.
    let first = text.split("\n---\n").next().unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(first).unwrap();
    let metadata = &doc["spec"]["triggers"][0]["metadata"];
    metadata
        .as_mapping()
        .expect("the first trigger has metadata")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_norway::Value::String(s) => s.clone(),
                other => panic!("KEDA takes only strings in metadata; {k:?} is {other:?}"),
            };
            (k.as_str().unwrap().to_string(), value)
        })
        .collect()
}

/// The value of a metric without labels in a metrics text (0 when absent).
pub fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A ScaledObjectRef in namespace `test`.
pub fn object(name: &str, metadata: &[(&str, &str)]) -> ScaledObjectRef {
    object_in("test", name, metadata)
}

/// A ScaledObjectRef in `namespace`.
pub fn object_in(namespace: &str, name: &str, metadata: &[(&str, &str)]) -> ScaledObjectRef {
    ScaledObjectRef {
        name: name.to_string(),
        namespace: namespace.to_string(),
        scaler_metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    }
}

/// GET over HTTP/1 with the crate's own client stack; the body as text.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    http_get_as(addr, path, None).await.1
}

/// GET `path` with an `Accept` header when given; (the response's content type, its body).
pub async fn http_get_as(addr: SocketAddr, path: &str, accept: Option<&str>) -> (String, String) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let mut request = hyper::Request::get(format!("http://{addr}{path}"));
    if let Some(accept) = accept {
        request = request.header(hyper::header::ACCEPT, accept);
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let content_type = response.headers()[hyper::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (content_type, String::from_utf8(body.to_vec()).unwrap())
}

/// The value of the sample whose line starts with `series` in a metrics text, if any.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The path of a file of the repo's adversarial corpus.
pub fn adversarial(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/adversarial")
        .join(name)
        .display()
        .to_string()
}

/// Test certificates, made fresh: a CA, the server's (for `localhost`), and clients signed by the
/// CA, written as PEM files into a directory of their own.
pub struct Pki {
    pub dir: PathBuf,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    /// A new CA named `ca_name`, and the server's certificate and key (`server.crt`,
    /// `server.key`) beside `ca.crt` in a new directory.
    pub fn new(ca_name: &str) -> Pki {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "leadtime-pki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        let pki = Pki { dir, ca };
        pki.issue("server", &["localhost"], "leadtime-scaler");
        pki
    }

    /// A certificate signed by the CA with DNS names `sans` and common name `cn`, written as
    /// `<file>.crt` and `<file>.key`; returns (certificate PEM, key PEM).
    pub fn issue(&self, file: &str, sans: &[&str], cn: &str) -> (String, String) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (cert, key) = (cert.pem(), key.serialize_pem());
        std::fs::write(self.dir.join(format!("{file}.crt")), &cert).unwrap();
        std::fs::write(self.dir.join(format!("{file}.key")), &key).unwrap();
        (cert, key)
    }

    /// The CA's certificate (PEM).
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("ca.crt")).unwrap()
    }

    /// The scaler's `tls` config section: this server certificate, clients of this CA, `allowed`.
    pub fn config_section(&self, allowed: &[&str]) -> String {
        let path = |f: &str| self.dir.join(f).display().to_string();
        format!(
            "tls:\n  certFile: {}\n  keyFile: {}\n  clientCaFile: {}\n  allowedClients: [{}]\n  handshakeTimeout: 2s\n",
            path("server.crt"),
            path("server.key"),
            path("ca.crt"),
            allowed.join(", ")
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A gRPC client of the scaler at `addr` over TLS, trusting `ca_pem`, presenting `identity`
/// (certificate and key PEM) when given.
pub async fn tls_client(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<&(String, String)>,
) -> Result<ExternalScalerClient<Channel>, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(ExternalScalerClient::new(channel))
}

/// A grpc.health.v1 client of the scaler at `addr` over TLS (see [`tls_client`]).
pub async fn health_client(
    addr: SocketAddr,
    ca_pem: &str,
    identity: &(String, String),
) -> tonic_health::pb::health_client::HealthClient<Channel> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(&identity.0, &identity.1));
    let channel = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
}
