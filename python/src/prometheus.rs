//! Traces and ready times read from a Prometheus, through the client the scaler and the CLI use
//! (crate `leadtime-prometheus`), for `leadtime.from_prometheus` and fleets of them.

use crate::convert::{bad_request, raise};
use leadtime_prometheus::{Access, Bounds, FetchError, Prometheus};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach a Prometheus: a dict of the CLI's connection flags (`ca_file`, `cert_file`,
/// `key_file`, `bearer_token_file`, `username`, `password_file`, `headers`).
#[derive(Default)]
pub struct Connection {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    bearer_token_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    headers: Option<Vec<(String, String)>>,
}

impl<'py> FromPyObject<'_, 'py> for Connection {
    type Error = PyErr;

    fn extract(ob: pyo3::Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let dict = ob.cast::<pyo3::types::PyDict>()?;
        for key in dict.keys() {
            let key: String = key.extract()?;
            if ![
                "ca_file",
                "cert_file",
                "key_file",
                "bearer_token_file",
                "username",
                "password_file",
                "headers",
            ]
            .contains(&key.as_str())
            {
                return Err(bad_request(format!("unknown connection setting `{key}`")));
            }
        }
        fn get<'py, T: for<'a> FromPyObject<'a, 'py>>(
            dict: &pyo3::Bound<'py, pyo3::types::PyDict>,
            key: &str,
        ) -> PyResult<Option<T>> {
            match dict.get_item(key)? {
                Some(v) if !v.is_none() => v.extract().map(Some).map_err(|_| {
                    bad_request(format!("connection setting `{key}` has the wrong type"))
                }),
                _ => Ok(None),
            }
        }
        Ok(Connection {
            ca_file: get(&dict, "ca_file")?,
            cert_file: get(&dict, "cert_file")?,
            key_file: get(&dict, "key_file")?,
            bearer_token_file: get(&dict, "bearer_token_file")?,
            username: get(&dict, "username")?,
            password_file: get(&dict, "password_file")?,
            headers: get(&dict, "headers")?,
        })
    }
}

impl Connection {
    fn access(self) -> PyResult<Access> {
        let client_cert = match (self.cert_file, self.key_file) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(bad_request("cert_file and key_file go together")),
        };
        let basic_auth = match (self.username, self.password_file) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => return Err(bad_request("username and password_file go together")),
        };
        if basic_auth.is_some() && self.bearer_token_file.is_some() {
            return Err(bad_request(
                "give bearer_token_file or username and password_file, not both",
            ));
        }
        Ok(Access {
            ca_file: self.ca_file,
            client_cert,
            bearer_token_file: self.bearer_token_file,
            basic_auth,
            headers: self.headers.unwrap_or_default(),
        })
    }
}

/// A fetch error as `leadtime.PrometheusError`, its kind the client's (`unreachable`, `api`,
/// `several-series`, `no-data`...).
fn prometheus_error(url: &str, e: FetchError) -> PyErr {
    raise(
        "PrometheusError",
        e.kind(),
        format!("prometheus {url}: {e}"),
    )
}

/// Runs `call` on a client of `url` without the GIL.
fn with_client<T: Send>(
    py: Python<'_>,
    url: &str,
    connection: Connection,
    timeout: f64,
    call: impl for<'a> FnOnce(
            &'a Prometheus,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, FetchError>> + Send + 'a>,
        > + Send,
) -> PyResult<T> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(bad_request(format!(
            "timeout must be above 0 seconds, got {timeout}"
        )));
    }
    let access = connection.access()?;
    let bounds = Bounds::one_caller();
    let client = Prometheus::connect(
        url,
        Duration::from_secs_f64(timeout),
        Duration::ZERO,
        bounds,
        &access,
    )
    .map_err(|e| bad_request(e.to_string()))?;
    py.detach(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(runtime.block_on(call(&client)))
    })
    .map_err(bad_request)?
    .map_err(|e| prometheus_error(url, e))
}

/// One series of `query` every `step` seconds from `start` to `end` (Unix seconds), read in
/// pages: its times (Unix ms) and values, gaps left out.
#[pyfunction]
#[pyo3(signature = (url, query, start, end, step, connection, timeout=60.0))]
#[allow(clippy::too_many_arguments)] // the Python function's keyword arguments
pub fn prometheus_series(
    py: Python<'_>,
    url: &str,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    connection: Connection,
    timeout: f64,
) -> PyResult<(Vec<i64>, Vec<f64>)> {
    if step < 1 {
        return Err(bad_request(format!(
            "step must be a second or more, got {step}s"
        )));
    }
    let query = query.to_string();
    let points = with_client(py, url, connection, timeout, move |client| {
        Box::pin(async move {
            client
                .series(&query, (start, end, step), "python", &mut |_, _| {})
                .await
        })
    })?;
    Ok(points.into_iter().map(|(t, v)| (t * 1000, v)).unzip())
}

/// The ready times (seconds) `query` gives over the `range` seconds before `end`: each series
/// (a pod) once, with its last value.
#[pyfunction]
#[pyo3(signature = (url, query, end, range, connection, timeout=60.0))]
pub fn prometheus_ready_times(
    py: Python<'_>,
    url: &str,
    query: &str,
    end: i64,
    range: i64,
    connection: Connection,
    timeout: f64,
) -> PyResult<Vec<f64>> {
    // Evaluated at `end` (`@`, Prometheus 2.25+), so that a past range reads its own pods.
    let over_range = format!("last_over_time(({query})[{range}s:5m] @ {end})");
    let seconds = with_client(py, url, connection, timeout, move |client| {
        Box::pin(async move { client.instant(&over_range, "python").await })
    })?;
    Ok(seconds
        .into_iter()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .collect())
}
