//! What crosses between Python and the crates: errors (as the package's exception classes,
//! carrying the engine's error kind), params, limits, and the process's engines.

use leadtime::{Engine, Error, ErrorKind, Limits, Modes, Param, Params};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use std::sync::Mutex;
use std::time::Duration;

/// The module that defines the exception classes (python/leadtime/errors.py).
const ERRORS_MODULE: &str = "leadtime.errors";

/// Every error kind the engine reports, in its stable order (`leadtime.ERROR_KINDS`).
pub fn error_kinds() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// A `leadtime.errors` exception of class `class`, with `kind` and the message.
pub fn raise(class: &str, kind: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let made = py
            .import(ERRORS_MODULE)
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.call1((message.clone(), kind)));
        match made {
            Ok(exception) => PyErr::from_value(exception),
            // The package is broken (errors.py missing): still an exception, never a crash.
            Err(e) => e,
        }
    })
}

/// An engine error as `leadtime.BadRequestError` (kind `bad-request`) or `leadtime.PolicyError`
/// (every other kind), the message being the error and its sources.
pub fn engine_error(e: Error) -> PyErr {
    let kind = e.kind();
    let class = if kind == ErrorKind::BadRequest {
        "BadRequestError"
    } else {
        "PolicyError"
    };
    raise(class, kind.as_str(), e.report())
}

/// [`engine_error`] of loading the policy `name` (a built-in, a path, or the name given with
/// bytes): the message starts with it, so that a fleet's or a notebook's error says which.
pub fn load_error(e: Error, name: &str) -> PyErr {
    let class = if e.kind() == ErrorKind::BadRequest {
        "BadRequestError"
    } else {
        "PolicyError"
    };
    raise(class, e.kind().as_str(), format!("{name}: {}", e.report()))
}

/// A request, trace or setting that is not valid, as `leadtime.BadRequestError`.
pub fn bad_request(message: impl ToString) -> PyErr {
    raise("BadRequestError", "bad-request", message.to_string())
}

/// A policy's params from a dict of `str` to `bool`, number or `str`.
pub fn params(dict: Option<&Bound<'_, PyDict>>) -> PyResult<Params> {
    let mut out = Params::new();
    let Some(dict) = dict else { return Ok(out) };
    for (name, value) in dict.iter() {
        let name: String = name
            .extract()
            .map_err(|_| bad_request(format!("param name {name} is not a str")))?;
        let param = if value.is_instance_of::<PyBool>() {
            Param::Bool(value.extract()?)
        } else if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
            Param::Number(value.extract()?)
        } else if value.is_instance_of::<PyString>() {
            Param::Text(value.extract()?)
        } else {
            // NumPy scalars and other numbers.
            match value.extract::<f64>() {
                Ok(n) => Param::Number(n),
                Err(_) => {
                    return Err(bad_request(format!(
                        "param `{name}`: {} is not a bool, number or str",
                        value.get_type().name()?
                    )))
                }
            }
        };
        out.insert(name, param);
    }
    Ok(out)
}

/// The names `limits=` takes, each a [`Limits`] option (`compile_time` in seconds).
pub const LIMIT_NAMES: [&str; 14] = [
    "fuel_per_call",
    "memory_bytes",
    "table_elements",
    "stack_bytes",
    "module_bytes",
    "response_bytes",
    "log_line_bytes",
    "log_lines_per_call",
    "fuel_per_log",
    "module_functions",
    "function_bytes",
    "function_locals",
    "nesting_depth",
    "compile_time",
];

/// [`Limits`] from a dict of option names to numbers; the defaults for the rest.
pub fn limits(dict: Option<&Bound<'_, PyDict>>) -> PyResult<Limits> {
    let mut limits = Limits::new();
    let Some(dict) = dict else { return Ok(limits) };
    for (name, value) in dict.iter() {
        let name: String = name.extract()?;
        let count = || -> PyResult<u64> {
            value.extract::<u64>().map_err(|_| {
                bad_request(format!(
                    "limit `{name}` must be a whole number of 0 or more, got {value}"
                ))
            })
        };
        let size = || count().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        match name.as_str() {
            "fuel_per_call" => limits.fuel_per_call(count()?),
            "memory_bytes" => limits.memory_bytes(size()?),
            "table_elements" => limits.table_elements(size()?),
            "stack_bytes" => limits.stack_bytes(size()?),
            "module_bytes" => limits.module_bytes(size()?),
            "response_bytes" => limits.response_bytes(size()?),
            "log_line_bytes" => limits.log_line_bytes(size()?),
            "log_lines_per_call" => limits.log_lines_per_call(size()?),
            "fuel_per_log" => limits.fuel_per_log(count()?),
            "module_functions" => limits.module_functions(size()?),
            "function_bytes" => limits.function_bytes(size()?),
            "function_locals" => limits.function_locals(size()?),
            "nesting_depth" => limits.nesting_depth(size()?),
            "compile_time" => {
                let secs: f64 = value.extract().ok().filter(|s: &f64| *s > 0.0 && *s < 1e9).ok_or_else(|| {
                    bad_request(format!("limit `compile_time` must be a positive number of seconds, got {value}"))
                })?;
                limits.compile_time(Duration::from_secs_f64(secs))
            }
            _ => {
                return Err(bad_request(format!(
                    "no limit `{name}` (limits: {})",
                    LIMIT_NAMES.join(", ")
                )))
            }
        };
    }
    Ok(limits)
}

/// The engines of this process, one per set of limits: an engine keeps compiled modules in
/// memory, so a policy is compiled once per process, not once per backtest.
static ENGINES: Mutex<Vec<(Limits, Engine)>> = Mutex::new(Vec::new());

/// Where compiled policies are kept on disk, shared with the CLI: `$XDG_CACHE_HOME/leadtime`,
/// else `$HOME/.cache/leadtime`; none with `LEADTIME_NO_CACHE=1`.
fn cache_dir() -> Option<std::path::PathBuf> {
    if std::env::var_os("LEADTIME_NO_CACHE").is_some_and(|v| v == "1") {
        return None;
    }
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|dir| dir.join("leadtime"))
}

/// This process's engine for `limits` (made on first use, with the disk cache when the
/// directory is usable).
pub fn engine(limits: &Limits) -> Result<Engine, Error> {
    let mut engines = ENGINES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, engine)) = engines.iter().find(|(l, _)| l == limits) {
        return Ok(engine.clone());
    }
    // No signal handlers by default: a Python process is shared with code that installs its
    // own after ours (`faulthandler.enable()`, Ray), and then a policy's trap would end the
    // interpreter. `LEADTIME_SIGNAL_TRAPS=1` trades that safety for speed (docs/python.md).
    let signal_traps = std::env::var_os("LEADTIME_SIGNAL_TRAPS").is_some_and(|v| v == "1");
    let modes = Modes::new().signal_traps(signal_traps).clone();
    let mut builder = Engine::builder();
    builder.limits(limits).modes(&modes);
    let built = match cache_dir() {
        Some(dir) => builder
            .clone()
            .cache_dir(dir)
            .build()
            .or_else(|_| builder.build()),
        None => builder.build(),
    }?;
    engines.push((limits.clone(), built.clone()));
    Ok(built)
}
