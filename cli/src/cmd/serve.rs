//! `leadtime serve`: the KEDA external scaler (crate `leadtime-serve`), until SIGTERM.

use crate::failure::Failure;
use leadtime::Limits;
use leadtime_serve::{Auth, Config, Server, Tls};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `leadtime serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address of the gRPC service KEDA calls (`externalscaler.proto`).
    #[arg(long, default_value = "0.0.0.0:9090")]
    listen: SocketAddr,
    /// Address of `/metrics` (Prometheus format) and `/healthz`.
    #[arg(long, default_value = "0.0.0.0:9091")]
    http_listen: SocketAddr,
    /// Prometheus base URL, e.g. http://prometheus:9090; overrides the config file's.
    #[arg(long, env = "LEADTIME_PROMETHEUS")]
    prometheus: Option<String>,
    #[command(flatten)]
    connection: crate::prometheus::Connection,
    /// Config file (YAML): Prometheus timeout and cache, metadata defaults, behavior, breaker.
    /// See serve/README.md.
    #[arg(long)]
    config: Option<PathBuf>,
    /// CPU budget per policy call, in fuel (about one unit per wasm instruction).
    #[arg(long, default_value_t = Limits::default().get_fuel_per_call())]
    fuel: u64,
    /// The server's certificate chain (PEM): mutual TLS on the gRPC port; overrides `tls.certFile`.
    #[arg(long, requires_all = ["tls_key", "client_ca", "allow_client"])]
    tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The CA that signs the certificates of allowed clients (PEM).
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// A client allowed to call: a DNS or URI name, or the common name, of its certificate
    /// (repeat for several).
    #[arg(long, requires = "tls_cert")]
    allow_client: Vec<String>,
    /// Serve plain gRPC and trust every caller: any pod that reaches the port can read and steer
    /// every workload's target. Only behind a NetworkPolicy that admits KEDA alone.
    #[arg(long, conflicts_with = "tls_cert")]
    insecure: bool,
    /// Memory cap of each policy, in MiB.
    #[arg(long, default_value_t = Limits::default().get_memory_bytes() >> 20)]
    memory_mib: usize,
}

/// The config file's `logFormat`, if it has one; a file that does not load is reported by
/// [`run`], after logging has started.
pub fn log_format(args: &Args) -> Option<crate::log::Format> {
    let config = Config::from_file(args.config.as_deref()?).ok()?;
    config.log_format.as_deref()?.parse().ok()
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| Failure::new("config", e.to_string()))?,
        None => Config::default(),
    };
    if args.prometheus.is_some() {
        config.prometheus = args.prometheus;
    }
    // Policies compile in this executable run as a child (`leadtime compile-worker`), where a
    // compile's memory is capped and a compile past its deadline is killed.
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new("runtime", format!("finding this executable: {e}")))?;
    config.compile_worker = Some(leadtime::CompileWorker::new(exe, ["compile-worker"]));
    // Each flag overrides its setting in the config file.
    args.connection.apply(&mut config.prometheus_access);
    if let (Some(cert), Some(key), Some(client_ca)) = (args.tls_cert, args.tls_key, args.client_ca)
    {
        // The flags name the files and clients; the config file's handshake timeout stays.
        let handshake_timeout = match &config.auth {
            Auth::MutualTls(tls) => tls.handshake_timeout,
            _ => leadtime_serve::config::DEFAULT_HANDSHAKE_TIMEOUT,
        };
        config.auth = Auth::MutualTls(Tls {
            cert,
            key,
            client_ca,
            allowed_clients: args.allow_client,
            handshake_timeout,
        });
    } else if args.insecure {
        if matches!(config.auth, Auth::MutualTls(_)) {
            return Err(Failure::new(
                "serve",
                "--insecure contradicts the config file's `tls` section: remove one",
            ));
        }
        config.auth = Auth::Insecure;
    }
    let mut limits = Limits::new();
    limits
        .fuel_per_call(args.fuel)
        .memory_bytes(super::mib_to_bytes("memory-mib", args.memory_mib)?);
    let runtime = leadtime_serve::runtime().map_err(|e| Failure::new("runtime", e.to_string()))?;
    runtime
        .block_on(async {
            let server = Server::bind(args.listen, args.http_listen, config, limits).await?;
            server.run(leadtime_serve::shutdown_signal()).await
        })
        .map_err(|e| Failure::new("serve", e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
