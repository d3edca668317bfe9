//! `leadtime._native.Policy`: one loaded policy handle, deciding on requests in the JSON form of
//! docs/ABI.md.

use crate::convert::{self, engine_error};
use leadtime::{Level, Policy, Request, Source};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde::Serialize;
use std::sync::Mutex;

/// A policy loaded into the sandbox; its handle keeps the workload's state between calls.
#[pyclass(name = "Policy", module = "leadtime._native", frozen)]
pub struct PyPolicy {
    policy: Mutex<Policy>,
    builtin: bool,
}

/// What `decide` answers, as JSON: the engine's decision plus the state and logs of the call.
#[derive(Serialize)]
struct Answer<'a> {
    #[serde(flatten)]
    decision: &'a leadtime::Decision,
    state: Option<&'a [u8]>,
    logs: Vec<Log<'a>>,
}

#[derive(Serialize)]
struct Log<'a> {
    level: &'static str,
    message: &'a str,
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

impl PyPolicy {
    fn lock(&self) -> std::sync::MutexGuard<'_, Policy> {
        // A panic cannot leave a Policy half-updated in a way that matters: take it back.
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PyPolicy {
    /// Loads `source`: a built-in name or a `.wasm`/`.wat` path (str), or a module's bytes
    /// (named `name` in errors), with `params` and `limits` (dicts).
    #[new]
    #[pyo3(signature = (source, params=None, limits=None, name=None))]
    fn new(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyDict>>,
        limits: Option<&Bound<'_, PyDict>>,
        name: Option<String>,
    ) -> PyResult<PyPolicy> {
        let params = convert::params(params)?;
        let limits = convert::limits(limits)?;
        let (spec, bytes) = if let Ok(b) = source.cast::<PyBytes>() {
            (None, Some(b.as_bytes().to_vec()))
        } else if let Ok(s) = source.extract::<String>() {
            (Some(s), None)
        } else {
            return Err(convert::bad_request(format!(
                "a policy source is a built-in name, a .wasm/.wat path or bytes, not {}",
                source.get_type().name()?
            )));
        };
        let builtin = spec
            .as_deref()
            .is_some_and(|s| matches!(Source::parse(s), Source::Builtin(_)));
        let shown = spec
            .clone()
            .or_else(|| name.clone())
            .unwrap_or_else(|| "<bytes>".into());
        // Compiling takes tens to hundreds of milliseconds: other threads run meanwhile.
        let policy = py
            .detach(|| {
                let engine = convert::engine(&limits)?;
                let source = match (&spec, &bytes) {
                    (Some(s), _) => Source::parse(s),
                    (None, Some(b)) => Source::bytes(name.as_deref().unwrap_or("<bytes>"), &b[..]),
                    (None, None) => unreachable!("one of them is set"),
                };
                engine.load(source, params)
            })
            .map_err(|e| convert::load_error(e, &shown))?;
        Ok(PyPolicy {
            policy: Mutex::new(policy),
            builtin,
        })
    }

    /// Decides on `request` (JSON text, the form of docs/ABI.md); the answer as JSON text:
    /// `replicas`, `proposed`, `reason`, `forecast` (when given), `fuel`, `state`, `logs`.
    fn decide(&self, py: Python<'_>, request: &str) -> PyResult<String> {
        let request: Request = leadtime::codec::from_json(request)
            .map_err(|e| convert::bad_request(format!("request: {e}")))?;
        py.detach(|| {
            let mut policy = self.lock();
            let decision = policy.decide(&request)?;
            let answer = Answer {
                decision: &decision,
                state: decision.state.as_deref(),
                logs: policy
                    .last_logs()
                    .iter()
                    .map(|l| Log {
                        level: level(l.level),
                        message: &l.message,
                    })
                    .collect(),
            };
            serde_json::to_string(&answer)
                .map_err(|e| leadtime::Error::Runtime(format!("answer does not encode: {e}")))
        })
        .map_err(engine_error)
    }

    /// A new handle on the same loaded module and params, with its own (empty) state.
    fn fork(&self) -> PyPolicy {
        PyPolicy {
            policy: Mutex::new(self.lock().fork()),
            builtin: self.builtin,
        }
    }

    /// Forgets the state the policy returned, as after a restart.
    fn reset_state(&self) {
        self.lock().reset_state();
    }

    /// The policy's name (the built-in's, the file's path, or the name given with bytes).
    #[getter]
    fn name(&self) -> String {
        self.lock().name().to_string()
    }

    /// What the module is: `name`, `builtin`, `summary` (built-ins), `exports`, `imports`,
    /// `has_init`, `params`.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let policy = self.lock();
        let info = policy.info();
        let out = PyDict::new(py);
        out.set_item("name", policy.name())?;
        out.set_item("builtin", self.builtin)?;
        let summary = leadtime::builtins()
            .into_iter()
            .find(|(n, _)| self.builtin && *n == policy.name())
            .map(|(_, s)| s);
        out.set_item("summary", summary)?;
        out.set_item("exports", info.exports.clone())?;
        out.set_item("imports", info.imports.clone())?;
        out.set_item("has_init", info.has_init)?;
        let params = serde_json::to_string(policy.params())
            .map_err(|e| convert::bad_request(e.to_string()))?;
        out.set_item(
            "params",
            py.import("json")?.call_method1("loads", (params,))?,
        )?;
        Ok(out)
    }

    /// Fuel the last call used.
    #[getter]
    fn last_fuel(&self) -> u64 {
        self.lock().last_fuel()
    }
}
