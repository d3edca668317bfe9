//! The client of the Prometheus HTTP API (`/api/v1/query_range`, `/api/v1/query`, and
//! `/api/v1/parse_query` to check a query), with a timeout on every call and a short cache of
//! instant queries so that KEDA's polling does not hammer Prometheus.
//!
//! Prometheus serves every tenant, so what the scaler may ask of it is bounded ([`Bounds`]): a
//! few queries in flight at once (also the most connections it opens, pooled and closed when
//! idle), fewer still for one tenant, a timeout Prometheus itself enforces, and answers capped in
//! bytes and series, decoded as they are read (crate::answer).

use crate::access::{Access, AccessError, Built};
use crate::answer::{DecodeError, Envelope, Sink};
use crate::range::Chunk;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
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
    /// The answer is over a cap (bytes or series).
    #[error("prometheus answer is too large: {0}")]
    TooLarge(String),
    /// A credential file (token, password) no longer reads.
    #[error("{0}")]
    Credentials(String),
    /// A query meant to give one series (a workload's load) gave several.
    #[error(
        "query `{query}` returned {count} series{differ}; a backtest needs one: sum them \
         (`sum({query})`) or keep one (`sum by (LABEL) (...)` with a matcher on it)"
    )]
    SeveralSeries {
        /// The query.
        query: String,
        /// How many (at least).
        count: usize,
        /// Where two of them differ, e.g. ` (they differ in pod: "web-1", "web-2")`.
        differ: String,
    },
}

impl FetchError {
    /// A short label for metrics: `unreachable`, `timeout`, `api`, `decode`, `no-data`,
    /// `bad-query`, `too-large`, `credentials`, `several-series`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Unreachable { .. } => "unreachable",
            FetchError::Timeout(_) => "timeout",
            FetchError::Api { .. } => "api",
            FetchError::Decode(_) => "decode",
            FetchError::NoData(_) => "no-data",
            FetchError::BadQuery(_) => "bad-query",
            FetchError::TooLarge(_) => "too-large",
            FetchError::Credentials(_) => "credentials",
            FetchError::SeveralSeries { .. } => "several-series",
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

/// What the scaler may ask of Prometheus at once and take back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Calls in flight at once (and so connections open).
    pub concurrency: usize,
    /// Calls in flight at once for one tenant (namespace): a tenant's slow queries leave the
    /// other slots to the others.
    pub per_tenant: usize,
    /// Bytes of one answer.
    pub body_bytes: usize,
    /// Series in one answer.
    pub series: usize,
    /// Answers held in the instant-query cache.
    pub cache_entries: usize,
}

impl Bounds {
    /// For one caller reading long ranges (a backtest, a notebook): one call at a time, answers
    /// up to 64 MiB and 10,000 series (a page of 10,000 points is ~300 KiB as JSON; a pod per
    /// series in ready times), nothing cached.
    pub fn one_caller() -> Bounds {
        Bounds {
            concurrency: 1,
            per_tenant: 1,
            body_bytes: 64 << 20,
            series: 10_000,
            cache_entries: 1,
        }
    }
}

impl Default for Bounds {
    /// The scaler's defaults (its `limits.prometheus*` and `limits.cacheEntries`).
    fn default() -> Self {
        Bounds {
            concurrency: 8,
            per_tenant: 2,
            // A range chunk is at most `CHUNK_POINTS` points (~300 KiB as JSON).
            body_bytes: 8 << 20,
            series: 10_000,
            cache_entries: 4096,
        }
    }
}

/// A Prometheus server's HTTP API.
pub struct Prometheus {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    access: Built,
    timeout: Duration,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    bounds: Bounds,
    in_flight: tokio::sync::Semaphore,
    /// Each tenant's slots, while it has calls in flight or waiting.
    tenants: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// How long a pooled connection to Prometheus may sit unused before it is closed.
const IDLE_CONNECTION: Duration = Duration::from_secs(30);

impl Prometheus {
    /// A client of the server at `base` (e.g. `http://prometheus:9090`), with a timeout per call
    /// and answers (errors included) kept for `cache_ttl`, within the default [`Bounds`], with no
    /// credentials and the built-in CA roots for `https`.
    pub fn new(base: &str, timeout: Duration, cache_ttl: Duration) -> Prometheus {
        Prometheus::connect(
            base,
            timeout,
            cache_ttl,
            Bounds::default(),
            &Access::default(),
        )
        .expect("access without files always builds")
    }

    /// [`Prometheus::new`] within `bounds`, reaching Prometheus as `access` says; the error names
    /// the setting or file that does not work.
    pub fn connect(
        base: &str,
        timeout: Duration,
        cache_ttl: Duration,
        bounds: Bounds,
        access: &Access,
    ) -> Result<Prometheus, AccessError> {
        if let Some(shown) = crate::access::userinfo_removed(base) {
            return Err(AccessError::Invalid(format!(
                "the Prometheus URL carries credentials (user:password@ before {shown}), which \
                 would be logged and are not sent: set prometheus.basicAuth (username and \
                 passwordFile) or --prometheus-username and --prometheus-password-file"
            )));
        }
        let access = access.build(timeout)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(bounds.concurrency)
            .pool_idle_timeout(IDLE_CONNECTION)
            .build(access.connector.clone());
        Ok(Prometheus {
            base: base.trim_end_matches('/').to_string(),
            client,
            access,
            timeout,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            bounds,
            in_flight: tokio::sync::Semaphore::new(bounds.concurrency.max(1)),
            tenants: Mutex::default(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `query` at every point of `chunk`, summed over series; `NoData` when no series matched.
    /// Not cached: the history asks each range once. `tenant` is whose slot it takes.
    pub async fn range(
        &self,
        query: &str,
        chunk: Chunk,
        tenant: &str,
    ) -> Result<Range, FetchError> {
        let mut sums = Sums::default();
        let envelope = self
            .get(&self.range_path(query, chunk), tenant, &mut sums)
            .await?;
        if envelope.series == 0 {
            return Err(FetchError::NoData(query.to_string()));
        }
        Ok(Range {
            points: sums.0.into_iter().collect(),
            samples: envelope.samples,
        })
    }

    /// One series of `query` at every `step` seconds from `start` to `end` (Unix seconds), asked
    /// in pages of at most [`crate::CHUNK_POINTS`] points under Prometheus' per-series limit;
    /// `page(done, total)` after each page. Points Prometheus has none for are left out (gaps
    /// stay gaps); non-finite values too. `SeveralSeries` when the query gives more than one
    /// series (in a page, or another one from page to page), `NoData` when it gives none.
    pub async fn series(
        &self,
        query: &str,
        (start, end, step): (i64, i64, i64),
        tenant: &str,
        page: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<Vec<(i64, f64)>, FetchError> {
        let chunks = crate::chunks(start, end, step.max(1));
        let mut one = OneSeries::default();
        for (i, chunk) in chunks.iter().enumerate() {
            let envelope = self
                .get(&self.range_path(query, *chunk), tenant, &mut one)
                .await?;
            if envelope.series > 1 || one.labels.len() > 1 {
                return Err(FetchError::SeveralSeries {
                    query: query.to_string(),
                    count: envelope.series.max(one.labels.len()),
                    differ: differ(&one.labels),
                });
            }
            page(i + 1, chunks.len());
        }
        if one.labels.is_empty() {
            return Err(FetchError::NoData(query.to_string()));
        }
        Ok(one.points.into_iter().collect())
    }

    /// Checks that Prometheus parses `query`, without running it: `/api/v1/parse_query`
    /// (Prometheus 2.49+), else `/api/v1/format_query` (2.31+), else an instant query.
    /// `BadQuery` when it does not parse; other errors say nothing about the query.
    pub async fn check(&self, query: &str, tenant: &str) -> Result<(), FetchError> {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .finish();
        for endpoint in ["parse_query", "format_query", "query"] {
            match self
                .get(&format!("/api/v1/{endpoint}?{qs}"), tenant, &mut Ignore)
                .await
            {
                // An older Prometheus without the endpoint: try the next.
                Err(FetchError::Api { status: 404, .. }) => continue,
                Err(e) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
        Ok(())
    }

    /// `query` now: one finite value per returned series; `NoData` when there is none.
    /// Answers are cached per query, whichever tenant asked (queries name their namespace).
    pub async fn instant(&self, query: &str, tenant: &str) -> Result<Vec<f64>, FetchError> {
        let answer = self
            .cached(query, || async {
                let qs = form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", query)
                    .append_pair("timeout", &self.prometheus_timeout())
                    .finish();
                let mut values = Values::default();
                self.get(&format!("/api/v1/query?{qs}"), tenant, &mut values)
                    .await?;
                let values = values.0;
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
        // Stale entries go first; at the cap, the oldest: queries no longer asked, or asked by
        // a caller inventing new ones, do not pile up.
        if cache.len() >= self.bounds.cache_entries {
            let ttl = self.cache_ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            while cache.len() >= self.bounds.cache_entries {
                let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        cache.insert(key.to_string(), (Instant::now(), fresh.clone()));
        fresh
    }

    /// Answers held in the instant-query cache.
    pub fn cached_answers(&self) -> usize {
        self.lock().len()
    }

    /// The `query_range` path of `query` over `chunk`.
    fn range_path(&self, query: &str, chunk: Chunk) -> String {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .append_pair("start", &chunk.start.to_string())
            .append_pair("end", &chunk.end.to_string())
            .append_pair("step", &chunk.step.to_string())
            .append_pair("timeout", &self.prometheus_timeout())
            .finish();
        format!("/api/v1/query_range?{qs}")
    }

    /// The call's timeout as Prometheus' own `timeout` parameter, so that it stops evaluating
    /// a query the scaler no longer waits for.
    fn prometheus_timeout(&self) -> String {
        format!("{}ms", self.timeout.as_millis().max(1))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// GETs `path` within the timeout, in one of `tenant`'s slots, and decodes the answer,
    /// its samples into `sink`; the envelope when Prometheus says `success`.
    async fn get(
        &self,
        path: &str,
        tenant: &str,
        sink: &mut (dyn Sink + Send),
    ) -> Result<Envelope, FetchError> {
        let url = format!("{}{path}", self.base);
        let uri: hyper::Uri = url.parse().map_err(|e| FetchError::Unreachable {
            url: url.clone(),
            message: format!("bad URL: {e}"),
        })?;
        let call = async {
            // At most `per_tenant` of a tenant's calls, and `concurrency` in all (so
            // connections), at once; the waits count in the timeout, so a queue behind a slow
            // Prometheus ends in `Timeout`.
            let _tenant = self.tenant_slot(tenant).await?;
            let _permit = self
                .in_flight
                .acquire()
                .await
                .map_err(|_| FetchError::Timeout(self.timeout))?;
            let mut request = hyper::Request::get(uri);
            for (name, value) in self
                .access
                .headers()
                .map_err(|e| FetchError::Credentials(e.to_string()))?
            {
                request = request.header(name, value);
            }
            let request = request
                .body(Empty::new())
                .map_err(|e| FetchError::Unreachable {
                    url: self.base.clone(),
                    message: format!("bad request: {e}"),
                })?;
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| FetchError::Unreachable {
                        url: self.base.clone(),
                        message: error_chain(&e),
                    })?;
            let status = response.status().as_u16();
            let body = self.read_body(response.into_body()).await?;
            Ok::<_, FetchError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))??;
        // What Prometheus (or a proxy before it) says is logged and may reach the caller: a
        // body that echoes the request's Authorization must not carry it further.
        let redact = |text: &str| crate::access::redact(text, &self.access.secrets());
        let envelope = match crate::answer::decode(&body, self.bounds.series, sink) {
            Ok(envelope) => envelope,
            Err(DecodeError::TooManySeries(n)) => {
                return Err(FetchError::TooLarge(format!(
                    "{n} series or more, over limits.prometheusSeries ({})",
                    self.bounds.series
                )))
            }
            Err(DecodeError::Json(e)) if status == 200 => {
                return Err(FetchError::Decode(e.to_string()))
            }
            Err(DecodeError::Json(_)) => {
                return Err(FetchError::Api {
                    status,
                    // Redacted before it is cut, so that a cut secret cannot survive in part.
                    message: redact(&String::from_utf8_lossy(&body[..body.len().min(4096)]))
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
        };
        if envelope.error_type.as_deref() == Some("bad_data") {
            return Err(FetchError::BadQuery(redact(
                envelope.error.as_deref().unwrap_or_default(),
            )));
        }
        if envelope.status != "success" || status != 200 {
            return Err(FetchError::Api {
                status,
                message: redact(&format!(
                    "{}: {}",
                    envelope.error_type.as_deref().unwrap_or_default(),
                    envelope.error.as_deref().unwrap_or_default()
                )),
            });
        }
        if !envelope.has_data {
            return Err(FetchError::Decode("success without `data`".into()));
        }
        Ok(envelope)
    }

    /// The body, at most `limits.prometheusBodyBytes`, into one buffer: a larger answer is cut
    /// off at the cap without being read further.
    async fn read_body(&self, mut body: hyper::body::Incoming) -> Result<Vec<u8>, FetchError> {
        let limit = self.bounds.body_bytes;
        let too_large =
            || FetchError::TooLarge(format!("over limits.prometheusBodyBytes ({limit} bytes)"));
        let announced = hyper::body::Body::size_hint(&body).exact();
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(announced.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Unreachable {
                url: self.base.clone(),
                message: format!("reading the body: {}", error_chain(&e)),
            })?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > limit {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    }

    /// One of `tenant`'s slots, waited for; its entry goes when no call holds or waits for one.
    async fn tenant_slot(&self, tenant: &str) -> Result<TenantSlot<'_>, FetchError> {
        let slots = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            tenants
                .entry(tenant.to_string())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Semaphore::new(self.bounds.per_tenant.max(1)))
                })
                .clone()
        };
        // The guard exists while waiting too: a call given up in the queue cleans up as well.
        let mut slot = TenantSlot {
            owner: self,
            tenant: tenant.to_string(),
            slots: Some(slots.clone()),
            permit: None,
        };
        slot.permit = Some(
            slots
                .acquire_owned()
                .await
                .map_err(|_| FetchError::Timeout(self.timeout))?,
        );
        Ok(slot)
    }
}

/// A tenant's call slot; on drop (call done, or given up waiting) the tenant's entry is removed
/// when nothing else holds it, so tenants that come and go leave nothing behind.
struct TenantSlot<'p> {
    owner: &'p Prometheus,
    tenant: String,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for TenantSlot<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        drop(self.slots.take());
        let mut tenants = self.owner.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if tenants
            .get(&self.tenant)
            .is_some_and(|slots| Arc::strong_count(slots) == 1)
        {
            tenants.remove(&self.tenant);
        }
    }
}

/// A range answer summed over series per timestamp, finite samples only.
#[derive(Default)]
struct Sums(BTreeMap<i64, f64>);

impl Sink for Sums {
    fn point(&mut self, at: f64, value: f64) {
        if value.is_finite() {
            *self.0.entry(at.round() as i64).or_insert(0.0) += value;
        }
    }
}

/// A range answer of one series, page after page: its points, and the label sets seen (two at
/// most: enough to say where they differ).
#[derive(Default)]
struct OneSeries {
    points: BTreeMap<i64, f64>,
    labels: Vec<BTreeMap<String, String>>,
}

impl Sink for OneSeries {
    fn point(&mut self, at: f64, value: f64) {
        if value.is_finite() {
            self.points.insert(at.round() as i64, value);
        }
    }

    fn wants_labels(&self) -> bool {
        self.labels.len() < 2
    }

    fn labels(&mut self, labels: BTreeMap<String, String>) {
        if !self.labels.contains(&labels) {
            self.labels.push(labels);
        }
    }
}

/// Where the first two label sets differ: ` (they differ in pod: "a", "b")`, or nothing.
fn differ(labels: &[BTreeMap<String, String>]) -> String {
    let [a, b, ..] = labels else {
        return String::new();
    };
    let key = a.keys().chain(b.keys()).find(|k| a.get(*k) != b.get(*k));
    match key {
        Some(k) => format!(
            " (they differ in {k}: {:?}, {:?})",
            a.get(k).map_or("", String::as_str),
            b.get(k).map_or("", String::as_str)
        ),
        None => String::new(),
    }
}

/// An instant answer: each series' value, finite ones only.
#[derive(Default)]
struct Values(Vec<f64>);

impl Sink for Values {
    fn value(&mut self, _: f64, value: f64) {
        if value.is_finite() {
            self.0.push(value);
        }
    }
}

/// An answer whose samples are not needed (a parse check).
struct Ignore;

impl Sink for Ignore {}

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
