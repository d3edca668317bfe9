//! `leadtime._native`: the Python package's native module, thin over the engine (`leadtime`) and
//! the backtest crate (`leadtime-backtest`). The pandas side lives in python/leadtime/*.py; here
//! values cross as NumPy arrays and JSON text, and policies run with the GIL released.

mod backtest;
mod convert;
mod interrupt;
mod policy;
mod prometheus;
mod trace;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<policy::PyPolicy>()?;
    m.add_class::<trace::PyTrace>()?;
    m.add_class::<backtest::PyBacktest>()?;
    m.add_function(wrap_pyfunction!(backtest::backtest, m)?)?;
    m.add_function(wrap_pyfunction!(backtest::check_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(builtins, m)?)?;
    m.add_function(wrap_pyfunction!(parse_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(prometheus::prometheus_series, m)?)?;
    m.add_function(wrap_pyfunction!(prometheus::prometheus_ready_times, m)?)?;
    m.add("ERROR_KINDS", convert::error_kinds())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// The built-in policies as (name, summary) pairs, default first.
#[pyfunction]
fn builtins() -> Vec<(&'static str, &'static str)> {
    leadtime::builtins()
}

/// Seconds from a duration text such as `5m`, `2d` or `90` (the CLI's syntax).
#[pyfunction]
fn parse_seconds(text: &str) -> PyResult<f64> {
    leadtime_backtest::parse_seconds(text).map_err(convert::bad_request)
}
