//! `/metrics` and `/healthz` over HTTP/1, bounded as the gRPC port is: connections per address
//! and in total, a deadline for each request's head and for the whole connection, and
//! `/metrics` rendered at most once per [`METRICS_MAX_AGE`] whatever the number of scrapers.

use crate::listen::{incoming, Admission};
use crate::telemetry::Telemetry;
use bytes::Bytes;
use http_body_util::Full;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

/// The HTTP port's caps: probes and one or two scrapers need a few connections, each short.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections open at once, from everyone.
    pub connections: usize,
    /// Connections open at once from one address: a pod that opens many holds only these, and
    /// the kubelet's probes (from the node) keep theirs.
    pub per_ip: usize,
    /// How long a request's line and headers may take to arrive (also how long a kept-alive
    /// connection may sit idle before its next request).
    pub header_timeout: Duration,
    /// How long one connection may stay open, whatever it does.
    pub lifetime: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connections: 64,
            per_ip: 4,
            header_timeout: Duration::from_secs(5),
            lifetime: Duration::from_secs(120),
        }
    }
}

/// How long a rendering of `/metrics` is served before the next is made: a scraper (every
/// 15-60 s) always gets a fresh one, and 32 clients asking in a loop cost ten renderings a second
/// instead of a core.
pub const METRICS_MAX_AGE: Duration = Duration::from_millis(100);

/// The last rendering of `/metrics`, in both formats.
struct Rendered {
    at: Instant,
    openmetrics: Bytes,
    classic: Bytes,
}

/// `/metrics` rendered at most once per [`METRICS_MAX_AGE`].
pub struct MetricsCache {
    telemetry: Arc<Telemetry>,
    last: Mutex<Option<Rendered>>,
}

impl MetricsCache {
    /// A cache over `telemetry`.
    pub fn new(telemetry: Arc<Telemetry>) -> MetricsCache {
        MetricsCache {
            telemetry,
            last: Mutex::new(None),
        }
    }

    /// The text in OpenMetrics (or the classic format), rendered anew if the last is too old.
    pub fn get(&self, openmetrics: bool) -> Bytes {
        // Callers that arrive during a rendering wait for it rather than render again.
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last
            .as_ref()
            .is_none_or(|r| r.at.elapsed() >= METRICS_MAX_AGE)
        {
            let text = self.telemetry.encode();
            *last = Some(Rendered {
                at: Instant::now(),
                classic: Bytes::from(crate::telemetry::classic(&text)),
                openmetrics: Bytes::from(text),
            });
        }
        let r = last.as_ref().expect("rendered above");
        if openmetrics {
            r.openmetrics.clone()
        } else {
            r.classic.clone()
        }
    }
}

/// Serves `/metrics` and `/healthz` on `listener` within `limits`, until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    limits: HttpLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let metrics = Arc::new(MetricsCache::new(telemetry));
    let mut connections = incoming(
        listener,
        Admission {
            connections: limits.connections,
            per_ip: limits.per_ip,
            port: "HTTP",
        },
    );
    loop {
        let conn = tokio::select! {
            conn = connections.next() => match conn {
                Some(Ok(conn)) => conn,
                Some(Err(_)) => continue,
                None => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&req, &metrics)) }
            });
            let io = hyper_util::rt::TokioIo::new(conn);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(16 * 1024)
                .serve_connection(io, service);
            match tokio::time::timeout(limits.lifetime, connection).await {
                Ok(Err(e)) => tracing::debug!(error = %e, "HTTP connection"),
                Err(_) => tracing::debug!("HTTP connection open too long: closed"),
                Ok(Ok(())) => {}
            }
        });
    }
}

/// Whether the request's `Accept` names OpenMetrics with a weight above 0.
fn accepts_openmetrics<B>(req: &hyper::Request<B>) -> bool {
    req.headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let openmetrics = parts
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case("application/openmetrics-text"));
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            openmetrics && !refused
        })
}

fn route<B>(req: &hyper::Request<B>, metrics: &MetricsCache) -> hyper::Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        // OpenMetrics to a scraper that asks for it (Prometheus does), the classic format to
        // one that does not.
        (&hyper::Method::GET, "/metrics") if accepts_openmetrics(req) => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.get(true),
        ),
        (&hyper::Method::GET, "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.get(false),
        ),
        (&hyper::Method::GET, "/healthz") => (200, "text/plain", Bytes::from_static(b"ok\n")),
        _ => (
            404,
            "text/plain",
            Bytes::from_static(b"not found: try /metrics or /healthz\n"),
        ),
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body))
        .expect("a response from valid parts")
}
