//! `leadtime._native.Trace`: a checked demand trace on its grid, made from a CSV file or from
//! NumPy arrays, and pickled as one array (what a fleet ships to its workers).

use crate::convert::bad_request;
use leadtime_backtest::{Columns, Resample, Trace, MAX_TRACE_POINTS, MAX_TRACE_VALUE};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

/// A workload's total demand on a regular grid (NaN for a gap), checked as the CLI checks it.
#[pyclass(name = "Trace", module = "leadtime._native", frozen)]
pub struct PyTrace {
    /// The trace, shared with the backtests that read it.
    pub inner: Arc<Trace>,
}

fn resample(spec: Option<&str>) -> PyResult<Option<Resample>> {
    spec.map(|r| Resample::parse(r).map_err(|e| bad_request(format!("resample: {e}"))))
        .transpose()
}

fn wrap(trace: Trace) -> PyTrace {
    PyTrace {
        inner: Arc::new(trace),
    }
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, what: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| bad_request(format!("{what} must be a contiguous 1-D array")))
}

#[pymethods]
impl PyTrace {
    /// Reads a CSV file as `leadtime backtest --trace` does (named by its file name);
    /// `resample` is `STEP[:mean|max|sum]`.
    #[staticmethod]
    #[pyo3(signature = (path, time_column=None, value_column=None, resample=None))]
    fn from_csv(
        py: Python<'_>,
        path: PathBuf,
        time_column: Option<String>,
        value_column: Option<String>,
        resample: Option<&str>,
    ) -> PyResult<PyTrace> {
        let columns = Columns {
            time: time_column,
            value: value_column,
        };
        let resample = self::resample(resample)?;
        py.detach(|| Trace::from_file_resampled(&path, &columns, resample))
            .map(wrap)
            .map_err(bad_request)
    }

    /// A trace from points: Unix-ms times (sorted) and their values, laid on their grid (the
    /// most common step), or bucketed onto `resample`'s.
    #[staticmethod]
    #[pyo3(signature = (name, times_ms, values, resample=None))]
    fn from_points(
        name: &str,
        times_ms: PyReadonlyArray1<'_, i64>,
        values: PyReadonlyArray1<'_, f64>,
        resample: Option<&str>,
    ) -> PyResult<PyTrace> {
        let resample = self::resample(resample)?;
        Trace::from_points(
            name,
            slice(&times_ms, "times")?,
            slice(&values, "values")?,
            resample,
        )
        .map(wrap)
        .map_err(bad_request)
    }

    /// A trace already on its grid: the value at `start_ms + i * step_ms` is `values[i]`, NaN
    /// for a gap (how a pickled trace comes back).
    #[staticmethod]
    fn from_grid(
        name: &str,
        start_ms: i64,
        step_ms: i64,
        values: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<PyTrace> {
        let values = slice(&values, "values")?;
        if step_ms <= 0 {
            return Err(bad_request(format!(
                "{name}: the step must be positive, got {step_ms} ms"
            )));
        }
        if values.is_empty() || values.len() as u64 > MAX_TRACE_POINTS {
            return Err(bad_request(format!(
                "{name}: a trace has 1 to {MAX_TRACE_POINTS} points, got {}",
                values.len()
            )));
        }
        if values.iter().all(|v| v.is_nan()) {
            return Err(bad_request(format!("{name}: every value is a gap")));
        }
        if let Some(i) = values
            .iter()
            .position(|&v| !(v.is_nan() || (0.0..=MAX_TRACE_VALUE).contains(&v)))
        {
            return Err(bad_request(format!(
                "{name}: value {} at {i} must be a finite number from 0 to {MAX_TRACE_VALUE:e} \
                 (NaN for a gap)",
                values[i]
            )));
        }
        let span = (values.len() as i64).checked_mul(step_ms);
        if span.and_then(|s| start_ms.checked_add(s)).is_none() {
            return Err(bad_request(format!("{name}: the trace's times overflow")));
        }
        Ok(wrap(Trace::from_values(
            name,
            start_ms,
            step_ms,
            values.to_vec(),
        )))
    }

    /// The trace's name (a file's name).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Time of the first point, Unix ms.
    #[getter]
    fn start_ms(&self) -> i64 {
        self.inner.start_ms
    }

    /// Milliseconds between points.
    #[getter]
    fn step_ms(&self) -> i64 {
        self.inner.step_ms
    }

    /// Grid points with no value.
    #[getter]
    fn gaps(&self) -> usize {
        self.inner.gaps
    }

    /// The values on the grid (a copy), NaN for a gap.
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.values)
    }

    /// The largest value.
    fn peak(&self) -> f64 {
        self.inner.peak()
    }

    /// Capacity per pod at which the trace's peak needs `pods` pods.
    fn capacity_for_peak(&self, pods: u32) -> f64 {
        leadtime_backtest::capacity_for_peak(&self.inner, pods)
    }

    /// Capacity per pod at which the trace's `q`-quantile needs `pods` pods.
    fn capacity_for_quantile(&self, q: f64, pods: u32) -> PyResult<f64> {
        leadtime_backtest::capacity_for_quantile(&self.inner, q, pods).ok_or_else(|| {
            bad_request(format!(
                "pods at quantile {q}:{pods}: q must be in (0, 1] and the trace's q-quantile above 0"
            ))
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Trace({:?}, {} points every {}s from {} ms, {} gaps)",
            self.inner.name,
            self.inner.len(),
            self.inner.step_ms as f64 / 1000.0,
            self.inner.start_ms,
            self.inner.gaps
        )
    }

    /// Pickles as `leadtime.backtest.trace_from_grid(name, start_ms, step_ms, values)`: one
    /// array (which may come back read-only or unaligned from a buffer: that function copes).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let make = py.import("leadtime.backtest")?.getattr("trace_from_grid")?;
        let args = (
            self.inner.name.clone(),
            self.inner.start_ms,
            self.inner.step_ms,
            self.values(py),
        )
            .into_pyobject(py)?
            .into_any();
        Ok((make, args))
    }
}
