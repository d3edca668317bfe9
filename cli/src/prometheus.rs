//! How the command line reaches Prometheus: the connection flags `leadtime serve` and
//! `leadtime backtest --prometheus` share, and a trace read from a query.

use crate::failure::Failure;
use leadtime_backtest::Trace;
use leadtime_prometheus::{Access, Bounds, FetchError, Prometheus};
use std::path::PathBuf;
use std::time::Duration;

/// The flags of a Prometheus connection beyond its URL (each overrides a config file's setting).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Connection {
    /// CA certificates (PEM) trusted for an https Prometheus URL, instead of the built-in roots;
    /// overrides `prometheus.caFile`.
    #[arg(long)]
    pub prometheus_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for a Prometheus that asks for one; with --prometheus-key-file.
    #[arg(long, requires = "prometheus_key_file")]
    pub prometheus_cert_file: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, requires = "prometheus_cert_file")]
    pub prometheus_key_file: Option<PathBuf>,
    /// File holding a bearer token for Prometheus (re-read when it changes).
    #[arg(long, conflicts_with = "prometheus_username")]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// Basic-auth user for Prometheus; with --prometheus-password-file.
    #[arg(long, requires = "prometheus_password_file")]
    pub prometheus_username: Option<String>,
    /// File holding the basic-auth password (re-read when it changes).
    #[arg(long, requires = "prometheus_username")]
    pub prometheus_password_file: Option<PathBuf>,
    /// A header sent on every Prometheus call, `Name: value` (repeat for several), e.g.
    /// `X-Scope-OrgID: team-a` for a Mimir, Cortex or Thanos tenant.
    #[arg(long, value_parser = header)]
    pub prometheus_header: Vec<(String, String)>,
}

impl Connection {
    /// `access` with each given flag in place of its setting.
    pub fn apply(self, access: &mut Access) {
        if let Some(ca) = self.prometheus_ca_file {
            access.ca_file = Some(ca);
        }
        if let (Some(cert), Some(key)) = (self.prometheus_cert_file, self.prometheus_key_file) {
            access.client_cert = Some((cert, key));
        }
        if let Some(token) = self.prometheus_bearer_token_file {
            (access.bearer_token_file, access.basic_auth) = (Some(token), None);
        }
        if let (Some(user), Some(password)) =
            (self.prometheus_username, self.prometheus_password_file)
        {
            (access.basic_auth, access.bearer_token_file) = (Some((user, password)), None);
        }
        for (name, value) in self.prometheus_header {
            access
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            access.headers.push((name, value));
        }
    }
}

/// `Name: value` of --prometheus-header.
fn header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `Name: value`"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

/// What to read: `query` over `[end - range, end]` every `step` (seconds).
pub struct Ask<'a> {
    /// Prometheus' base URL.
    pub url: &'a str,
    /// How to reach it.
    pub access: Access,
    /// The PromQL of the workload's load (one series).
    pub query: &'a str,
    /// Last point, Unix seconds.
    pub end: i64,
    /// Seconds of history.
    pub range: i64,
    /// Seconds between points.
    pub step: i64,
    /// The trace's name in tables.
    pub name: &'a str,
}

/// Longest one page (at most 10,000 points) may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of `ask`'s Prometheus for one command, and the runtime its calls run on.
fn connect(ask: &Ask<'_>) -> Result<(Prometheus, tokio::runtime::Runtime), Failure> {
    let bounds = Bounds::one_caller();
    let client = Prometheus::connect(ask.url, PAGE_TIMEOUT, Duration::ZERO, bounds, &ask.access)
        .map_err(|e| Failure::new("bad-request", format!("--prometheus: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new("runtime", e.to_string()))?;
    Ok((client, runtime))
}

/// The ready times `query` gives over `ask`'s range, in seconds: each series (a pod) counts
/// once, with its last value (`last_over_time` of the query over the range, 5-minute steps).
pub fn ready_times(ask: &Ask<'_>, query: &str) -> Result<Vec<f64>, Failure> {
    let (client, runtime) = connect(ask)?;
    // Evaluated at the range's end (`@`, Prometheus 2.25+), so that a past range reads its own
    // pods.
    let over_range = format!("last_over_time(({query})[{}s:5m] @ {})", ask.range, ask.end);
    let seconds: Vec<f64> = runtime
        .block_on(client.instant(&over_range, "backtest"))
        .map_err(|e| fetch_failure(ask.url, e))
        .map_err(|f| Failure::new(&f.kind, format!("--ready-query: {}", f.detail)))?
        .into_iter()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .collect();
    if seconds.is_empty() {
        return Err(Failure::new(
            "bad-request",
            format!("--ready-query `{query}` gave no ready time of 0 seconds or more"),
        ));
    }
    Ok(seconds)
}

/// The trace `ask` reads, its pages counted on `page(done, total)`; gaps stay gaps.
pub fn trace(ask: &Ask<'_>, page: &mut (dyn FnMut(usize, usize) + Send)) -> Result<Trace, Failure> {
    let (client, runtime) = connect(ask)?;
    let start = ask.end - ask.range;
    let points = runtime
        .block_on(client.series(ask.query, (start, ask.end, ask.step), "backtest", page))
        .map_err(|e| fetch_failure(ask.url, e))?;
    let times: Vec<i64> = points.iter().map(|p| p.0 * 1000).collect();
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    Trace::from_points(ask.name, &times, &values, None)
        .map_err(|e| Failure::new("bad-request", format!("--query: {e}")))
}

/// A fetch error in the user's terms: which of reaching, credentials or the query failed.
fn fetch_failure(url: &str, e: FetchError) -> Failure {
    let hint = match &e {
        FetchError::Api { status: 401, .. } | FetchError::Api { status: 403, .. } => {
            "; Prometheus refuses the credentials (--prometheus-username and \
             --prometheus-password-file, --prometheus-bearer-token-file)"
        }
        FetchError::Unreachable { .. } => "; is the URL right, and Prometheus up?",
        FetchError::NoData(_) => {
            "; check the query in Prometheus' UI, and that --range is within its retention"
        }
        _ => "",
    };
    Failure::new(
        if matches!(e, FetchError::Unreachable { .. } | FetchError::Timeout(_)) {
            "io"
        } else {
            "bad-request"
        },
        format!("prometheus {url}: {e}{hint}"),
    )
}

/// `leadtime backtest`'s flags for a trace read from Prometheus instead of a file.
#[derive(clap::Args, Debug, Default)]
pub struct Source {
    /// Read the trace from this Prometheus (base URL, e.g. https://prometheus:9090) instead of
    /// --trace: the --query's one series over --range, fetched in pages under Prometheus'
    /// 11,000-points-per-series limit.
    #[arg(long, conflicts_with = "trace", requires = "query")]
    pub prometheus: Option<String>,
    /// The PromQL of the workload's load, one series (e.g.
    /// `sum(rate(http_requests_total{job="web"}[1m]))`).
    #[arg(long, requires = "prometheus")]
    pub query: Option<String>,
    /// How much history to read, ending at --end (e.g. 14d).
    #[arg(long, default_value = "14d", requires = "prometheus")]
    pub range: String,
    /// Seconds between the trace's points (e.g. 1m).
    #[arg(long, default_value = "1m", requires = "prometheus")]
    pub step: String,
    /// The last point: RFC 3339 or Unix seconds; default: now, to the step.
    #[arg(long, requires = "prometheus")]
    pub end: Option<String>,
    /// Ready times from the cluster instead of --ready-time: PromQL giving each recent pod's
    /// seconds from creation to Ready, one series per pod, e.g. with kube-state-metrics
    /// `kube_pod_status_ready_time{namespace="shop"} - kube_pod_created{namespace="shop"}`;
    /// every pod seen over --range counts once.
    #[arg(long, requires = "prometheus", conflicts_with_all = ["ready_time", "ready_time_dist", "ready_times"])]
    pub ready_query: Option<String>,
    /// Also write what was read as a CSV trace (`timestamp,value`; gaps have no row), so that
    /// the run can be repeated offline with --trace and shared; the trace is named after it.
    #[arg(long, requires = "prometheus")]
    pub save_trace: Option<PathBuf>,
    #[command(flatten)]
    pub connection: Connection,
}

/// The last point, Unix seconds: `--end` (RFC 3339 or Unix seconds), else now to the `step`.
pub fn end(text: Option<&str>, step: i64) -> Result<i64, Failure> {
    match text {
        Some(text) => leadtime_backtest::parse_time(text)
            .map(|ms| ms.div_euclid(1000))
            .ok_or_else(|| {
                Failure::new(
                    "bad-request",
                    format!("--end: `{text}` is neither RFC 3339 nor Unix seconds"),
                )
            }),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            Ok(now - now.rem_euclid(step.max(1)))
        }
    }
}

/// What came back short of what was asked: `Some` note when the trace starts more than a day
/// after the range's start (Prometheus' retention, or the series is younger).
pub fn shortfall(ask: &Ask<'_>, trace: &Trace) -> Option<String> {
    let asked = ask.end - ask.range;
    let got = trace.start_ms.div_euclid(1000);
    (got - asked > 86_400).then(|| {
        format!(
            "asked for {:.1} days of history, Prometheus had {:.1} (from {}): its retention, or \
             the series is younger",
            ask.range as f64 / 86_400.0,
            (ask.end - got) as f64 / 86_400.0,
            chrono::DateTime::from_timestamp(got, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        )
    })
}

/// Writes `trace` as `leadtime backtest --trace` reads it: one row per point with a value.
pub fn save(trace: &Trace, path: &std::path::Path) -> Result<(), Failure> {
    let mut text = String::from("timestamp,value\n");
    for (i, v) in trace.values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let t = trace.start_ms + i as i64 * trace.step_ms;
        let time = chrono::DateTime::from_timestamp_millis(t)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default();
        text.push_str(&format!("{time},{v}\n"));
    }
    std::fs::write(path, text)
        .map_err(|e| Failure::new("io", format!("--save-trace {}: {e}", path.display())))
}
