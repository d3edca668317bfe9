//! A KEDA external scaler fed by Prometheus: any leadtime policy drives any ScaledObject.
//!
//! KEDA calls [`service::Service`] over gRPC (`externalscaler.proto`); each ScaledObject's trigger
//! metadata ([`metadata::Spec`]) names the policy and the PromQL of its load. The [`scaler`] keeps
//! each workload's load [`history`], topped up from [`prometheus`], runs the workload's policy
//! under the engine's supervisor with behavior guardrails, and answers the replica target;
//! [`telemetry`] exports what happened. Only callers [`auth`] verifies are served (mutual TLS
//! with an allow-list), and every call is untrusted until [`quota`] has checked its names and
//! size and [`query`] its PromQL (docs/security.md, the scaler's threat model).

pub mod auth;
pub mod config;
pub mod history;
pub mod http;
pub mod listen;
pub mod log_limit;
pub mod metadata;
pub mod query;
pub mod quota;
pub mod scaler;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod tls;

pub mod proto {
    //! The generated `externalscaler` messages, server and client.
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("externalscaler");
}

pub use auth::{Auth, Tls};
pub use config::Config;
/// The Prometheus client (crate `leadtime-prometheus`), shared with backtests.
pub use leadtime_prometheus as prometheus;
pub use server::{runtime, shutdown_signal, Server};
