//! The entry point: an [`Engine`] holds the limits and compiled code, and loads policies.

use crate::abi::{self, ModuleInfo};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::sandbox::{self, Limits, StoreState};
use leadtime_wire::Params;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmtime::{InstancePre, Linker, Module};

/// Compiled modules kept in memory per engine; a host that loads ever-new modules (a policy
/// author iterating, `leadtime test` on many files) would otherwise grow without bound.
pub const MEMORY_CACHE_ENTRIES: usize = 64;

/// Loads and runs policies under one set of [`Limits`]. Cheap to clone and shareable across
/// threads; a module loaded twice is compiled once (the last [`MEMORY_CACHE_ENTRIES`] modules
/// stay in memory, and with a cache directory compiled code is shared between processes).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<StoreState>,
    limits: Limits,
    compiled: Mutex<Lru>,
    cache_dir: Option<PathBuf>,
}

/// A module's identity: its length and SHA-256. Keying by hash rather than by the bytes keeps
/// the cache small; SHA-256 (collision resistant, unlike a fast hash) keeps it correct even when
/// a module is crafted to collide, and the same digest names the file in the disk cache.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ModuleKey {
    len: usize,
    sha256: [u8; 32],
}

impl ModuleKey {
    fn of(bytes: &[u8]) -> ModuleKey {
        ModuleKey {
            len: bytes.len(),
            sha256: Sha256::digest(bytes).into(),
        }
    }

    fn hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The in-memory cache: at most [`MEMORY_CACHE_ENTRIES`], the least recently used evicted.
/// Eviction scans the entries; at 64 that costs less than hashing one module.
#[derive(Default)]
struct Lru {
    entries: HashMap<ModuleKey, (Compiled, u64)>,
    clock: u64,
}

impl Lru {
    fn get(&mut self, key: &ModuleKey) -> Option<Compiled> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(c, used)| {
            *used = clock;
            c.clone()
        })
    }

    fn insert(&mut self, key: ModuleKey, compiled: Compiled) {
        self.clock += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= MEMORY_CACHE_ENTRIES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (compiled, self.clock));
    }
}

#[derive(Clone)]
struct Compiled {
    pre: InstancePre<StoreState>,
    info: ModuleInfo,
}

impl Engine {
    /// An engine with these limits, caching compiled modules in memory only.
    pub fn new(limits: Limits) -> Result<Engine> {
        Engine::build(limits, None)
    }

    /// An engine that also keeps precompiled modules in `dir` (created when missing), so that a
    /// later process skips compiling. Safe to share between processes: files are written whole
    /// (temp file, then rename), and a file that is corrupt or from another build is ignored and
    /// replaced. The directory must be writable by this user only: its files are loaded as
    /// native code.
    pub fn with_cache_dir(limits: Limits, dir: impl Into<PathBuf>) -> Result<Engine> {
        Engine::build(limits, Some(dir.into()))
    }

    /// The directory of precompiled modules, if this engine has one.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.cache_dir.as_deref()
    }

    /// How many compiled modules the in-memory cache holds.
    pub fn cached_modules(&self) -> usize {
        self.lru().entries.len()
    }

    fn build(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Engine> {
        let wasmtime = wasmtime::Engine::new(&limits.wasmtime_config())
            .map_err(|e| Error::Runtime(format!("wasmtime engine: {e:#}")))?;
        let linker = sandbox::linker(&wasmtime);
        Ok(Engine {
            inner: Arc::new(Inner {
                wasmtime,
                linker,
                limits,
                compiled: Mutex::new(Lru::default()),
                cache_dir,
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

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves the map consistent (inserts are single calls).
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn compile(&self, bytes: &[u8]) -> Result<Compiled> {
        let cap = self.inner.limits.module_bytes;
        if bytes.len() > cap {
            return Err(Error::ModuleTooLarge {
                size: bytes.len(),
                cap,
            });
        }
        let key = ModuleKey::of(bytes);
        if let Some(hit) = self.lru().get(&key) {
            return Ok(hit);
        }
        // Compile outside the lock: other threads keep loading cached modules meanwhile; two
        // threads compiling the same new module both succeed and one result is kept.
        let module = match self.load_precompiled(&key) {
            Some(module) => module,
            None => {
                let module =
                    Module::new(&self.inner.wasmtime, bytes).map_err(|e| self.refused(bytes, e))?;
                self.store_precompiled(&key, &module);
                module
            }
        };
        let info = abi::check(&module)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Runtime(format!("linking: {e:#}")))?;
        let compiled = Compiled { pre, info };
        self.lru().insert(key, compiled.clone());
        Ok(compiled)
    }

    /// Why wasmtime refused to build a module: it is invalid, unless a pooled engine refused it
    /// for a cap, which is then named as on demand (`sandbox::diagnose_pool_refusal`).
    fn refused(&self, bytes: &[u8], error: wasmtime::Error) -> Error {
        let limits = &self.inner.limits;
        limits
            .pooled()
            .then(|| sandbox::diagnose_pool_refusal(&self.inner.wasmtime, bytes, limits))
            .flatten()
            .unwrap_or_else(|| Error::InvalidModule(format!("{error:#}")))
    }

    /// The cache file of a module: its SHA-256, then a hash of what makes compiled code
    /// compatible (wasmtime's own compatibility hash of the engine's settings, and leadtime's
    /// version, since the limits shape the config), so another build never picks it up.
    fn cache_path(&self, key: &ModuleKey) -> Option<PathBuf> {
        let dir = self.inner.cache_dir.as_ref()?;
        let mut h = std::hash::DefaultHasher::new();
        self.inner
            .wasmtime
            .precompile_compatibility_hash()
            .hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        Some(dir.join(format!("{}-{:016x}.cwasm", key.hex(), h.finish())))
    }

    /// The module from the disk cache, or `None` (no cache, no file, or a file that fails its
    /// checksum or wasmtime's checks; it is then recompiled and overwritten).
    fn load_precompiled(&self, key: &ModuleKey) -> Option<Module> {
        let path = self.cache_path(key)?;
        let file = std::fs::read(&path).ok()?;
        // Each file ends in the SHA-256 of the rest: a truncated or damaged file is caught here
        // rather than handed to `deserialize`, which trusts its input.
        let split = file.len().checked_sub(32)?;
        let (code, sum) = file.split_at(split);
        if Sha256::digest(code).as_slice() != sum {
            tracing::warn!(path = %path.display(), "precompiled module fails its checksum; recompiling");
            return None;
        }
        // SAFETY: the bytes are exactly what `Module::serialize` wrote (checked above) into a
        // directory of this user's; wasmtime still checks they match this engine's settings.
        match unsafe { Module::deserialize(&self.inner.wasmtime, code) } {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(path = %path.display(), "precompiled module unusable ({e:#}); recompiling");
                None
            }
        }
    }

    /// Writes a module to the disk cache, whole or not at all. Failures only cost a later
    /// compile, so they are logged, not returned.
    fn store_precompiled(&self, key: &ModuleKey, module: &Module) {
        let Some(path) = self.cache_path(key) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            let mut bytes = module.serialize().map_err(std::io::Error::other)?;
            let sum = Sha256::digest(&bytes);
            bytes.extend_from_slice(&sum);
            let dir = path.parent().expect("cache files are in the cache dir");
            std::fs::create_dir_all(dir)?;
            // A name of this process and moment: concurrent writers never share a temp file,
            // and the rename makes the whole file appear at once to readers.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let tmp = dir.join(format!(".{}.{}.{nanos}.tmp", key.hex(), std::process::id()));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), "could not write precompiled module: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadtime_wire::{Metric, Replicas, Request, Workload};

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("leadtime-cache-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }

        fn files(&self) -> Vec<PathBuf> {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0)
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            files.sort();
            files
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn request(load: f64) -> Request {
        Request {
            abi_version: 1,
            now: 1_700_000_000_000,
            workload: Workload::default(),
            replicas: Replicas {
                current: 3,
                ready: 3,
                min: 1,
                max: 100,
            },
            metrics: vec![Metric {
                name: "rps".into(),
                target_per_pod: 10.0,
                interval_seconds: 60.0,
                end: 1_700_000_000_000,
                values: vec![load; 30],
            }],
            ready_times: vec![],
            params: Params::new(),
            state: None,
        }
    }

    fn decisions(engine: &Engine) -> Vec<u32> {
        let mut policy = engine.load("target-tracking", Params::new()).unwrap();
        [15.0, 42.0, 230.0]
            .iter()
            .map(|&load| policy.decide(&request(load)).unwrap().replicas)
            .collect()
    }

    #[test]
    fn a_cache_hit_decides_as_a_fresh_compile() {
        let dir = TempDir::new("hit");
        let cold = decisions(&Engine::new(Limits::default()).unwrap());
        let first = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
        assert_eq!(decisions(&first), cold);
        let files = dir.files();
        assert_eq!(files.len(), 1, "one precompiled module: {files:?}");
        let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
        // A new engine has an empty memory cache, so this load comes from the file.
        let second = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
        assert_eq!(decisions(&second), cold);
        assert_eq!(dir.files(), files);
        let after = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
        assert_eq!(written, after, "a cache hit does not rewrite the file");
    }

    #[test]
    fn a_corrupt_cache_file_is_recompiled_and_replaced() {
        let dir = TempDir::new("corrupt");
        let cold = decisions(&Engine::with_cache_dir(Limits::default(), &dir.0).unwrap());
        let file = dir.files().pop().unwrap();
        let good = std::fs::read(&file).unwrap();
        for bad in [
            good[..good.len() / 2].to_vec(),
            b"not a module".to_vec(),
            Vec::new(),
            {
                let mut flipped = good.clone();
                flipped[good.len() / 3] ^= 0x55;
                flipped
            },
        ] {
            std::fs::write(&file, &bad).unwrap();
            let engine = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
            assert_eq!(decisions(&engine), cold);
            assert_eq!(std::fs::read(&file).unwrap(), good, "the file is rewritten");
        }
    }

    #[test]
    fn a_foreign_file_with_a_valid_checksum_is_recompiled() {
        // Bytes that pass our checksum but are not wasmtime's: `deserialize` must refuse them.
        let dir = TempDir::new("foreign");
        let cold = decisions(&Engine::with_cache_dir(Limits::default(), &dir.0).unwrap());
        let file = dir.files().pop().unwrap();
        let mut foreign = b"\x7fELF this is not compiled code".to_vec();
        foreign.extend_from_slice(&Sha256::digest(&foreign));
        std::fs::write(&file, &foreign).unwrap();
        let engine = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
        assert_eq!(decisions(&engine), cold);
    }

    #[test]
    fn two_engines_share_a_dir() {
        let dir = TempDir::new("shared");
        let a = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
        let b = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
        let expected = decisions(&a);
        assert_eq!(decisions(&b), expected);
        assert_eq!(dir.files().len(), 1, "one file for both");
        // Engines on several threads loading at once leave whole files and no temp files.
        std::fs::remove_file(&dir.files()[0]).unwrap();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let engine = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
                    assert_eq!(decisions(&engine), expected);
                });
            }
        });
        assert_eq!(dir.files().len(), 1, "{:?}", dir.files());
        let engine = Engine::with_cache_dir(Limits::default(), &dir.0).unwrap();
        assert_eq!(decisions(&engine), expected);
    }

    #[test]
    fn the_memory_cache_is_bounded_and_keeps_the_recently_used() {
        let engine = Engine::new(Limits::default()).unwrap();
        let tt = crate::builtin_wasm("target-tracking").unwrap();
        engine.inspect(tt).unwrap();
        // Distinct modules: the same tiny module with a different custom-section name each time.
        for i in 0..MEMORY_CACHE_ENTRIES + 10 {
            let wat = format!(
                r#"(module (@custom "n{i}" "") (memory (export "memory") 1)
                   (func (export "leadtime_abi_version") (result i32) i32.const 1)
                   (func (export "leadtime_alloc") (param i32) (result i32) i32.const 0)
                   (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 0))"#
            );
            engine.inspect(wat.as_bytes()).unwrap();
            // Touch the built-in so it stays among the recently used.
            engine.inspect(tt).unwrap();
        }
        assert_eq!(engine.cached_modules(), MEMORY_CACHE_ENTRIES);
        assert!(engine.lru().entries.contains_key(&ModuleKey::of(tt)));
    }
}
