//! A client of the Prometheus HTTP API (`/api/v1/query_range`, `/api/v1/query`, and
//! `/api/v1/parse_query` to check a query), with a timeout on every call and a short cache of
//! instant queries so that KEDA's polling does not hammer Prometheus.

use crate::history::Chunk;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Prometheus refused the query itself (`errorType: bad_data`): a configuration error.
    #[error("prometheus refuses the query: {0}")]
    BadQuery(String),
}

impl FetchError {
    /// A short label for metrics: `unreachable`, `timeout`, `api`, `decode`, `no-data`,
    /// `bad-query`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Unreachable { .. } => "unreachable",
            FetchError::Timeout(_) => "timeout",
            FetchError::Api { .. } => "api",
            FetchError::Decode(_) => "decode",
            FetchError::NoData(_) => "no-data",
            FetchError::BadQuery(_) => "bad-query",
        }
    }
}

type Cached = (Instant, Result<Arc<Vec<f64>>, FetchError>);

/// What a `query_range` returned: the sum over series at each point that has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// (Unix seconds, summed value), oldest first; only points some series had.
    pub points: Vec<(i64, f64)>,
    /// Samples Prometheus returned (all series, all points): its cost of the query.
    pub samples: usize,
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

    /// `query` at every point of `chunk`, summed over series; `NoData` when no series matched.
    /// Not cached: the history asks each range once.
    pub async fn range(&self, query: &str, chunk: Chunk) -> Result<Range, FetchError> {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .append_pair("start", &chunk.start.to_string())
            .append_pair("end", &chunk.end.to_string())
            .append_pair("step", &chunk.step.to_string())
            .finish();
        let data: Data = self.get(&format!("/api/v1/query_range?{qs}")).await?;
        if data.result.is_empty() {
            return Err(FetchError::NoData(query.to_string()));
        }
        let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
        let mut samples = 0;
        for series in &data.result {
            for (ts, text) in series.values.iter().flatten() {
                samples += 1;
                let v = parse_value(text)?;
                if v.is_finite() {
                    *sums.entry(ts.round() as i64).or_insert(0.0) += v;
                }
            }
        }
        Ok(Range {
            points: sums.into_iter().collect(),
            samples,
        })
    }

    /// Checks that Prometheus parses `query`, without running it: `/api/v1/parse_query`
    /// (Prometheus 2.49+), else `/api/v1/format_query` (2.31+), else an instant query.
    /// `BadQuery` when it does not parse; other errors say nothing about the query.
    pub async fn check(&self, query: &str) -> Result<(), FetchError> {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .finish();
        for endpoint in ["parse_query", "format_query", "query"] {
            match self.get_raw(&format!("/api/v1/{endpoint}?{qs}")).await {
                // An older Prometheus without the endpoint: try the next.
                Err(FetchError::Api { status: 404, .. }) => continue,
                Err(e) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
        Ok(())
    }

    /// `query` now: one finite value per returned series; `NoData` when there is none.
    pub async fn instant(&self, query: &str) -> Result<Vec<f64>, FetchError> {
        let answer = self
            .cached(query, || async {
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
                Ok(values)
            })
            .await?;
        Ok(answer.as_ref().clone())
    }

    async fn cached<F, Fut>(&self, key: &str, fetch: F) -> Result<Arc<Vec<f64>>, FetchError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<f64>, FetchError>>,
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

    /// GETs `path` and decodes the API's envelope and its `data`, within the timeout.
    async fn get(&self, path: &str) -> Result<Data, FetchError> {
        let data = self.get_raw(path).await?;
        serde_json::from_value(data).map_err(|e| FetchError::Decode(e.to_string()))
    }

    /// GETs `path` and decodes the API's envelope, within the timeout; its `data` as is.
    async fn get_raw(&self, path: &str) -> Result<serde_json::Value, FetchError> {
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
        if envelope.error_type.as_deref() == Some("bad_data") {
            return Err(FetchError::BadQuery(envelope.error.unwrap_or_default()));
        }
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

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
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
