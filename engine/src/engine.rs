//! The entry point: an [`Engine`] holds the limits and compiled code, and loads policies.

use crate::abi::{self, ModuleInfo};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::sandbox::{self, Limits, StoreState};
use leadtime_wire::Params;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wasmtime::{InstancePre, Linker, Module};

/// Loads and runs policies under one set of [`Limits`]. Cheap to clone and shareable across
/// threads; a module loaded twice is compiled once.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<StoreState>,
    limits: Limits,
    compiled: Mutex<HashMap<Vec<u8>, Compiled>>,
}

#[derive(Clone)]
struct Compiled {
    pre: InstancePre<StoreState>,
    info: ModuleInfo,
}

impl Engine {
    /// An engine with these limits.
    pub fn new(limits: Limits) -> Result<Engine> {
        let wasmtime = wasmtime::Engine::new(&limits.wasmtime_config())
            .map_err(|e| Error::Runtime(format!("wasmtime engine: {e:#}")))?;
        let linker = sandbox::linker(&wasmtime);
        Ok(Engine {
            inner: Arc::new(Inner {
                wasmtime,
                linker,
                limits,
                compiled: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The limits every policy of this engine runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Loads a policy by built-in name (`predictive`, `hpa`, ...) or by `.wasm`/`.wat` path.
    pub fn load(&self, spec: &str, params: Params) -> Result<Policy> {
        #[cfg(feature = "builtin")]
        if let Some(builtin) = leadtime_builtin::get(spec) {
            return self.load_bytes(builtin.name, builtin.wasm, params);
        }
        let path = Path::new(spec);
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") | Some("wat") => self.load_file(path, params),
            _ => Err(Error::UnknownPolicy {
                name: spec.to_string(),
                known: crate::builtin_names().join(", "),
            }),
        }
    }

    /// Loads a policy from a `.wasm` or `.wat` file.
    pub fn load_file(&self, path: &Path, params: Params) -> Result<Policy> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(&path.display().to_string(), &bytes, params)
    }

    /// Loads a policy from module bytes (binary wasm or `.wat` text), named `name` in logs.
    pub fn load_bytes(&self, name: &str, bytes: &[u8], params: Params) -> Result<Policy> {
        let compiled = self.compile(bytes)?;
        Policy::new(
            name.to_string(),
            self.inner.wasmtime.clone(),
            compiled.pre,
            self.inner.limits.clone(),
            params,
            compiled.info,
        )
    }

    /// Compiles and checks a module without instantiating it; what `leadtime inspect` shows.
    pub fn inspect(&self, bytes: &[u8]) -> Result<ModuleInfo> {
        self.compile(bytes).map(|c| c.info)
    }

    fn compile(&self, bytes: &[u8]) -> Result<Compiled> {
        let cap = self.inner.limits.module_bytes;
        if bytes.len() > cap {
            return Err(Error::ModuleTooLarge {
                size: bytes.len(),
                cap,
            });
        }
        let mut cache = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.get(bytes) {
            return Ok(hit.clone());
        }
        let module = Module::new(&self.inner.wasmtime, bytes)
            .map_err(|e| Error::InvalidModule(format!("{e:#}")))?;
        let info = abi::check(&module)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Runtime(format!("linking: {e:#}")))?;
        let compiled = Compiled { pre, info };
        cache.insert(bytes.to_vec(), compiled.clone());
        Ok(compiled)
    }
}
