//! A client of the Prometheus HTTP API (`/api/v1/query_range`, `/api/v1/query`), with a timeout
//! on every call and a short cache so that KEDA's polling does not hammer Prometheus.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why a query gave no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// No connection (Prometheus down, wrong address).
    #[error("prometheus at {url} is unreachable: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The connection error.
        message: String,
    },
    /// No complete answer within the timeout.
    #[error("prometheus did not answer within {0:?}")]
    Timeout(Duration),
    /// Prometheus answered with an error.
    #[error("prometheus answered HTTP {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Prometheus' `errorType: error`, or the start of the body.
        message: String,
    },
    /// The answer is not the JSON the API documents.
    #[error("prometheus answer does not decode: {0}")]
    Decode(String),
    /// The query matched no series.
    #[error("query `{0}` returned no data")]
    NoData(String),
}

impl FetchError {
    /// A short label for metrics: `unreachable`, `timeout`, `api`, `decode`, `no-data`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Unreachable { .. } => "unreachable",
            FetchError::Timeout(_) => "timeout",
            FetchError::Api { .. } => "api",
            FetchError::Decode(_) => "decode",
            FetchError::NoData(_) => "no-data",
        }
    }
}

/// A load window: the sum over all returned series at each step, NaN where no series had a point.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Time of the last point, Unix milliseconds.
    pub end_ms: i64,
    /// Seconds between points.
    pub step_seconds: f64,
    /// Oldest first.
    pub values: Vec<f64>,
}

type Cached = (Instant, Result<Arc<Answer>, FetchError>);

/// What a query returned, in the form callers use.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Range(Window),
    Instant(Vec<f64>),
}

/// A Prometheus server's HTTP API.
pub struct Prometheus {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Prometheus {
    /// A client of the server at `base` (e.g. `http://prometheus:9090`), with a timeout per call
    /// and answers (errors included) kept for `cache_ttl`.
    pub fn new(base: &str, timeout: Duration, cache_ttl: Duration) -> Prometheus {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Prometheus {
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `query` over the last `lookback` at `step`, summed over series, ending now (the freshest
    /// point matters most to a scaler, so the grid is not aligned to `step`).
    pub async fn range(
        &self,
        query: &str,
        lookback: Duration,
        step: Duration,
    ) -> Result<Window, FetchError> {
        let key = format!("range\n{query}\n{lookback:?}\n{step:?}");
        let answer = self
            .cached(&key, || async {
                let step_s = step.as_secs_f64();
                let end = (unix_seconds() * 1000.0).floor() / 1000.0;
                let points = (lookback.as_secs_f64() / step_s).floor().max(1.0);
                let start = end - (points - 1.0) * step_s;
                let qs = form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", query)
                    .append_pair("start", &format!("{start:.3}"))
                    .append_pair("end", &format!("{end:.3}"))
                    .append_pair("step", &format!("{step_s}"))
                    .finish();
                let data: Data = self.get(&format!("/api/v1/query_range?{qs}")).await?;
                let n = points as usize;
                let mut values = vec![f64::NAN; n];
                if data.result.is_empty() {
                    return Err(FetchError::NoData(query.to_string()));
                }
                for series in &data.result {
                    for (ts, text) in series.values.iter().flatten() {
                        let i = ((ts - start) / step_s).round();
                        let v = parse_value(text)?;
                        if i >= 0.0 && (i as usize) < n && v.is_finite() {
                            let slot = &mut values[i as usize];
                            *slot = if slot.is_nan() { v } else { *slot + v };
                        }
                    }
                }
                if values.iter().all(|v| v.is_nan()) {
                    return Err(FetchError::NoData(query.to_string()));
                }
                Ok(Answer::Range(Window {
                    end_ms: (end * 1000.0) as i64,
                    step_seconds: step_s,
                    values,
                }))
            })
            .await?;
        match answer.as_ref() {
            Answer::Range(w) => Ok(w.clone()),
            Answer::Instant(_) => Err(FetchError::Decode("cache mix-up".into())),
        }
    }

    /// `query` now: one finite value per returned series; `NoData` when there is none.
    pub async fn instant(&self, query: &str) -> Result<Vec<f64>, FetchError> {
        let key = format!("instant\n{query}");
        let answer = self
            .cached(&key, || async {
                let qs = form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", query)
                    .finish();
                let data: Data = self.get(&format!("/api/v1/query?{qs}")).await?;
                let mut values = Vec::new();
                for series in &data.result {
                    if let Some((_, text)) = &series.value {
                        let v = parse_value(text)?;
                        if v.is_finite() {
                            values.push(v);
                        }
                    }
                }
                if values.is_empty() {
                    return Err(FetchError::NoData(query.to_string()));
                }
                Ok(Answer::Instant(values))
            })
            .await?;
        match answer.as_ref() {
            Answer::Instant(v) => Ok(v.clone()),
            Answer::Range(_) => Err(FetchError::Decode("cache mix-up".into())),
        }
    }

    async fn cached<F, Fut>(&self, key: &str, fetch: F) -> Result<Arc<Answer>, FetchError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Answer, FetchError>>,
    {
        if let Some((at, hit)) = self.lock().get(key) {
            if at.elapsed() < self.cache_ttl {
                return hit.clone();
            }
        }
        let fresh = fetch().await.map(Arc::new);
        let mut cache = self.lock();
        // Drop stale entries now and then, so that queries no longer asked do not pile up.
        if cache.len() > 1024 {
            let ttl = self.cache_ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        cache.insert(key.to_string(), (Instant::now(), fresh.clone()));
        fresh
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// GETs `path` and decodes the API's envelope, within the timeout.
    async fn get(&self, path: &str) -> Result<Data, FetchError> {
        let url = format!("{}{path}", self.base);
        let uri: hyper::Uri = url.parse().map_err(|e| FetchError::Unreachable {
            url: url.clone(),
            message: format!("bad URL: {e}"),
        })?;
        let call = async {
            let response = self
                .client
                .get(uri)
                .await
                .map_err(|e| FetchError::Unreachable {
                    url: self.base.clone(),
                    message: error_chain(&e),
                })?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| FetchError::Unreachable {
                    url: self.base.clone(),
                    message: format!("reading the body: {e}"),
                })?
                .to_bytes();
            Ok::<_, FetchError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))??;
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
            if status == 200 {
                FetchError::Decode(e.to_string())
            } else {
                FetchError::Api {
                    status,
                    message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                }
            }
        })?;
        if envelope.status != "success" || status != 200 {
            return Err(FetchError::Api {
                status,
                message: format!(
                    "{}: {}",
                    envelope.error_type.unwrap_or_default(),
                    envelope.error.unwrap_or_default()
                ),
            });
        }
        envelope
            .data
            .ok_or_else(|| FetchError::Decode("success without `data`".into()))
    }
}

/// The error and its causes on one line (hyper's own message is only "client error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn parse_value(text: &str) -> Result<f64, FetchError> {
    // Prometheus writes special values as NaN, +Inf and -Inf; they count as missing points.
    text.parse::<f64>()
        .map_err(|_| FetchError::Decode(format!("sample value `{text}` is not a number")))
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
    #[serde(default)]
    value: Option<(f64, String)>,
}
