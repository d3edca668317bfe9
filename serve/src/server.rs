//! The running server: gRPC for KEDA on one port, `/metrics` and `/healthz` on another, until a
//! shutdown signal.

use crate::auth::Auth;
use crate::config::Config;
use crate::proto::external_scaler_server::ExternalScalerServer;
use crate::scaler::Scaler;
use crate::service::Service;
use crate::telemetry::Telemetry;
use leadtime::{Engine, Limits};
use leadtime_prometheus::Prometheus;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Native stack of the runtime's threads. Policies run on them, and a policy's wasm may use
/// `Limits::stack_bytes` (512 KiB by default) on top of the host's own frames: tokio's 2 MiB
/// default left too little in an unoptimised build under load (a 10,000-workload load test
/// overflowed it). Only the pages touched are resident.
pub const THREAD_STACK_BYTES: usize = 8 << 20;

/// The multi-threaded runtime the server runs on, with [`THREAD_STACK_BYTES`] stacks.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A port could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No Prometheus URL in the flags or the config.
    #[error("no Prometheus URL: pass --prometheus or set prometheus.url in the config file")]
    NoPrometheus,
    /// Client authentication is not chosen, or its files do not load.
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
    /// How to reach Prometheus (TLS, credentials, headers) does not work.
    #[error("{0}")]
    Access(#[from] leadtime_prometheus::access::AccessError),
    /// The engine did not start.
    #[error("engine: {0}")]
    Engine(#[from] leadtime::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// A server with its ports bound, ready to run.
pub struct Server {
    grpc: TcpListener,
    http: TcpListener,
    scaler: Arc<Scaler>,
    config: Config,
    tls: Option<Arc<crate::tls::Reloading>>,
}

impl Server {
    /// Binds both ports (port 0 picks a free one) and builds the scaler.
    pub async fn bind(
        grpc: SocketAddr,
        http: SocketAddr,
        config: Config,
        limits: Limits,
    ) -> Result<Server, ServeError> {
        let url = config.prometheus.clone().ok_or(ServeError::NoPrometheus)?;
        let tls = config.auth.server_tls()?;
        match &config.auth {
            Auth::MutualTls(t) => {
                tracing::info!(allowed = ?t.allowed_clients, "gRPC: mutual TLS, clients on the allow-list only")
            }
            _ => tracing::error!(
                "gRPC without TLS or client authentication (--insecure): any pod that reaches the \
                 port can ask for any workload's target; only where a NetworkPolicy admits KEDA alone"
            ),
        }
        let q = &config.settings.quotas;
        let bounds = leadtime_prometheus::Bounds {
            concurrency: q.prometheus_concurrency,
            per_tenant: q.prometheus_concurrency_per_namespace,
            body_bytes: q.prometheus_body_bytes,
            series: q.prometheus_series,
            cache_entries: q.cache_entries,
        };
        let access = &config.prometheus_access;
        let prometheus = Prometheus::connect(
            &url,
            config.timeout,
            config.settings.cache_ttl,
            bounds,
            access,
        )?;
        if access.sends_credentials() && !url.starts_with("https://") {
            tracing::warn!("prometheus credentials go over plain http to {url}: use an https URL");
        }
        if config.settings.queries.namespace_label.is_none() {
            tracing::warn!("queries.namespaceLabel is off: any caller's query reads any series in Prometheus; only for a scaler that serves one trusted team");
        }
        let mut limits = limits;
        limits.compile_time(q.compile_time);
        let mut engine = Engine::builder();
        engine.limits(&limits);
        if let Some(worker) = &config.compile_worker {
            let mut worker = worker.clone();
            worker
                .memory_bytes(q.compile_memory_bytes as u64)
                .at_once(q.compiles);
            engine.compile_worker(&worker);
        }
        let engine = engine.build()?;
        let scaler = Arc::new(Scaler::new(
            engine,
            prometheus,
            config.settings.clone(),
            Arc::new(Telemetry::default()),
        ));
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        Ok(Server {
            grpc: bind(grpc).await?,
            http: bind(http).await?,
            scaler,
            config,
            tls,
        })
    }

    /// The gRPC address actually bound.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The HTTP (`/metrics`, `/healthz`) address actually bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes; then ends open `StreamIsActive` streams, lets
    /// in-flight calls finish and returns, within [`GRACE`] whatever the clients do.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let telemetry = self.scaler.telemetry().clone();
        tracing::info!(grpc = %self.grpc_addr(), http = %self.http_addr(), prometheus = %self.config.prometheus.as_deref().unwrap_or(""), "serving");
        let http = tokio::spawn(crate::http::serve(
            self.http,
            telemetry,
            crate::http::HttpLimits::default(),
            stop_rx.clone(),
        ));
        let evictor = tokio::spawn(evict_idle(self.scaler.clone(), stop_rx.clone()));
        let q = self.config.settings.quotas.clone();
        let service = Service::new(
            self.scaler,
            self.config.auth.clone(),
            self.config.stream_interval,
            stop_rx.clone(),
        );
        let admission = crate::listen::Admission {
            connections: q.connections,
            per_ip: q.connections_per_ip,
            port: "gRPC",
        };
        // grpc.health.v1: SERVING for the whole server ("") and the scaler service while
        // serving, NOT_SERVING from the shutdown signal on, so a mesh drains before the port
        // closes.
        let (health, health_service) = tonic_health::server::health_reporter();
        // Behind the same allow-list as the scaler: a client the CA signed for another name
        // must not hold Watch streams either.
        let auth = self.config.auth.clone();
        let health_service = tonic::service::interceptor::InterceptedService::new(
            health_service,
            move |request: tonic::Request<()>| auth.caller(&request).map(|_| request),
        );
        health.set_serving::<ExternalScalerServer<Service>>().await;
        let router = tonic::transport::Server::builder()
            .max_concurrent_streams(q.streams_per_connection)
            .max_connection_age(q.connection_age)
            .max_connection_age_grace(GRACE)
            // A dead peer's connection is found and closed rather than held.
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
            .http2_max_header_list_size(u32::try_from(q.message_bytes).unwrap_or(u32::MAX))
            .add_service(
                ExternalScalerServer::new(service)
                    .max_decoding_message_size(q.message_bytes)
                    .max_encoding_message_size(q.message_bytes),
            )
            .add_service(health_service);
        let shutdown = async {
            shutdown.await;
            tracing::info!("shutting down");
            health
                .set_not_serving::<ExternalScalerServer<Service>>()
                .await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            // Ends the streams, the HTTP server and the evictor.
            let _ = stop_tx.send(true);
        };
        // TLS is done here rather than by tonic, so that renewed certificates are served
        // without a restart (crate::tls).
        let serve: std::pin::Pin<
            Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + '_>,
        > = match (self.tls, &self.config.auth) {
            (Some(tls), Auth::MutualTls(files)) => {
                tls.clone().watch();
                let incoming =
                    crate::listen::incoming_tls(self.grpc, admission, tls, files.handshake_timeout);
                Box::pin(router.serve_with_incoming_shutdown(incoming, shutdown))
            }
            _ => Box::pin(router.serve_with_incoming_shutdown(
                crate::listen::incoming(self.grpc, admission),
                shutdown,
            )),
        };
        let mut stopped = stop_rx;
        let deadline = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(GRACE).await;
        };
        let result = tokio::select! {
            result = serve => result,
            _ = deadline => {
                tracing::warn!(grace = ?GRACE, "calls still open after the grace period: exiting anyway");
                Ok(())
            }
        };
        let _ = http.await;
        let _ = evictor.await;
        result.map_err(ServeError::from)
    }
}

/// How long in-flight calls may take to finish after the shutdown signal (well within the 5 s
/// a rollout should take, and Kubernetes' default grace period of 30 s).
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Drops idle workloads now and then, until `stop` turns true.
async fn evict_idle(scaler: Arc<Scaler>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = (scaler.settings().idle_after / 4).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(60),
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {
                scaler.evict_idle();
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Completes on SIGTERM (what Kubernetes sends) or Ctrl-C. SIGHUP, whose default would end the
/// process at once (and every workload's history with it), is logged and ignored: the TLS files
/// reload by themselves, and a changed config needs a restart.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return std::future::pending::<()>().await;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = hangup.recv() => tracing::warn!(
                    "SIGHUP ignored: TLS files reload by themselves; a changed config needs a restart"
                ),
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
