//! The entry point: an [`Engine`] holds the limits and compiled code, and loads policies.

use crate::abi::{self, ModuleInfo};
use crate::bounds;
use crate::cache::DiskCache;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::sandbox::{self, Limits, Modes, StoreState};
use crate::source::Source;
use crate::worker::{CompileWorker, Compiled as Worked, Workers};
use leadtime_wire::Params;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use wasmtime::{InstancePre, Linker, Module};

/// Compiled modules kept in memory per engine; a host that loads ever-new modules (a policy
/// author iterating, `leadtime test` on many files) would otherwise grow without bound.
pub const MEMORY_CACHE_ENTRIES: usize = 64;

/// Native stack of the thread a module compiles on (the compiler recurses on nested code).
const COMPILE_STACK_BYTES: usize = 8 << 20;

/// Loads and runs policies under one set of [`Limits`] and [`Modes`]. Cheap to clone and
/// shareable across threads; a module loaded twice is compiled once (the last
/// [`MEMORY_CACHE_ENTRIES`] modules stay in memory, and with a cache directory compiled code is
/// shared between processes).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<StoreState>,
    limits: Limits,
    modes: Modes,
    compiled: Mutex<Lru>,
    flights: crate::flight::Flights<ModuleKey>,
    disk: Option<DiskCache>,
    workers: Option<Workers>,
}

/// Builds an [`Engine`] with modes or a disk cache besides its limits.
///
/// ```no_run
/// use leadtime::{Engine, Limits, Modes};
/// let engine = Engine::builder()
///     .limits(Limits::new().fuel_per_call(50_000_000))
///     .modes(Modes::new().fresh_instance_per_call(true))
///     .cache_dir("/var/cache/leadtime")
///     .build()?;
/// # Ok::<(), leadtime::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct EngineBuilder {
    limits: Limits,
    modes: Modes,
    cache_dir: Option<PathBuf>,
    worker: Option<CompileWorker>,
}

impl EngineBuilder {
    /// The limits policies load and run under (default: [`Limits::default`]).
    pub fn limits(&mut self, limits: &Limits) -> &mut Self {
        self.limits = limits.clone();
        self
    }

    /// How instances run (default: [`Modes::default`]).
    pub fn modes(&mut self, modes: &Modes) -> &mut Self {
        self.modes = modes.clone();
        self
    }

    /// Also keep compiled modules in `dir` (created 0700 when missing), so that a later process
    /// skips compiling. Safe to share between this user's processes: files are written whole
    /// (temp file, then rename), a file that is corrupt or from another build is ignored and
    /// replaced, and the least recently used go past [`crate::DISK_CACHE_BYTES`] or
    /// [`crate::DISK_CACHE_MAX_AGE`]. Its files are loaded as native code, so [`Self::build`]
    /// refuses a directory another user owns or can write to ([`Error::UntrustedCache`]).
    pub fn cache_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Compile in child processes run by `worker`, capped in memory and killed at
    /// `Limits::compile_time`, instead of on a thread of this process (which wasmtime cannot stop
    /// or cap). For hosts that load modules they do not trust.
    pub fn compile_worker(&mut self, worker: &CompileWorker) -> &mut Self {
        self.worker = Some(worker.clone());
        self
    }

    /// The engine.
    pub fn build(&self) -> Result<Engine> {
        let disk = self.cache_dir.clone().map(DiskCache::open).transpose()?;
        let config = sandbox::wasmtime_config(&self.limits, &self.modes);
        let wasmtime = wasmtime::Engine::new(&config)
            .map_err(|e| Error::wasmtime("creating the engine", e))?;
        let linker = sandbox::linker(&wasmtime);
        Ok(Engine {
            inner: Arc::new(Inner {
                wasmtime,
                linker,
                limits: self.limits.clone(),
                modes: self.modes.clone(),
                compiled: Mutex::new(Lru::default()),
                flights: Default::default(),
                disk,
                workers: self
                    .worker
                    .clone()
                    .map(|w| Workers::new(w, &self.limits, &self.modes)),
            }),
        })
    }
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
    /// An engine with these limits and the default modes, caching compiled modules in memory
    /// only. See [`Engine::builder`] for the rest.
    pub fn new(limits: &Limits) -> Result<Engine> {
        Engine::builder().limits(limits).build()
    }

    /// A builder, for modes or a disk cache.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The directory of precompiled modules, if this engine has one.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.disk.as_ref().map(DiskCache::dir)
    }

    /// How many compiled modules the in-memory cache holds.
    pub fn cached_modules(&self) -> usize {
        self.lru().entries.len()
    }

    /// The limits every policy of this engine loads and runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// How this engine runs instances.
    pub fn modes(&self) -> &Modes {
        &self.inner.modes
    }

    /// Loads a policy: compiles it (or takes it from a cache), checks it against the ABI,
    /// instantiates it and runs its `leadtime_init` with `params`. The policy decides for one
    /// workload; [`Policy::fork`] makes a handle for each other workload that shares its
    /// instances.
    pub fn load(&self, source: Source<'_>, params: Params) -> Result<Policy> {
        let bytes = source.read(self.inner.limits.module_bytes)?;
        let compiled = self.compile(&bytes)?;
        Policy::new(
            source.name().into_owned(),
            self.inner.wasmtime.clone(),
            compiled.pre,
            self.inner.limits.clone(),
            &self.inner.modes,
            params,
            compiled.info,
        )
    }

    /// Compiles and checks a module without instantiating it; what `leadtime inspect` shows.
    pub fn inspect(&self, source: Source<'_>) -> Result<ModuleInfo> {
        let bytes = source.read(self.inner.limits.module_bytes)?;
        self.compile(&bytes).map(|c| c.info)
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves the map consistent (inserts are single calls).
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn compile(&self, bytes: &[u8]) -> Result<Compiled> {
        let limits = &self.inner.limits;
        if bytes.len() > limits.module_bytes {
            return Err(Error::ModuleTooLarge {
                size: bytes.len() as u64,
                cap: limits.module_bytes,
            });
        }
        let key = ModuleKey::of(bytes);
        // One compile per module at a time (others wait for it), and a failure is answered from
        // memory for a while instead of compiled again on every call.
        loop {
            if let Some(hit) = self.lru().get(&key) {
                return Ok(hit);
            }
            if let Some(e) = self.inner.flights.failed(&key) {
                return Err(e);
            }
            match self.inner.flights.turn(key, limits.compile_time) {
                crate::flight::Turn::Lead => break,
                // Landed: its result is in the cache or the failures (unless evicted meanwhile,
                // when this caller leads the next round).
                crate::flight::Turn::Waited(Ok(())) => continue,
                crate::flight::Turn::Waited(Err(e)) => return Err(e),
            }
        }
        let landing = crate::flight::Landing::new(&self.inner.flights, key);
        let result = self.compile_new(key, bytes);
        landing.land(result.as_ref().err());
        result
    }

    /// Compiles (or takes from the disk cache) a module that is not in memory, checks it and
    /// keeps it in memory.
    fn compile_new(&self, key: ModuleKey, bytes: &[u8]) -> Result<Compiled> {
        let limits = &self.inner.limits;
        let binary = to_binary(bytes)?;
        // Before the disk cache too: its code may come from a process with looser limits.
        bounds::check(&binary, limits)?;
        // Compile outside the cache's lock: other threads keep loading cached modules meanwhile.
        let cache_name = self.cache_name(&key);
        let disk = self.inner.disk.as_ref();
        let module = match disk.and_then(|d| d.load(&self.inner.wasmtime, &cache_name)) {
            Some(module) => module,
            None => {
                let module = self.compile_bounded(&binary)?;
                if let Some(disk) = disk {
                    disk.store(&cache_name, &module);
                }
                module
            }
        };
        let info = abi::check(&module)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Error::wasmtime("linking the module", e))?;
        let compiled = Compiled { pre, info };
        self.lru().insert(key, compiled.clone());
        Ok(compiled)
    }

    /// Compiles within `Limits::compile_time` (compiling is not metered by fuel): in a worker
    /// process, killed at the deadline, when the engine has one; else on a thread of its own,
    /// where a compile past the deadline finishes and is dropped (wasmtime cannot stop one
    /// midway) and only the limits checked before (`bounds`) keep that rare and short.
    fn compile_bounded(&self, binary: &[u8]) -> Result<Module> {
        let cap = self.inner.limits.compile_time;
        if let Some(workers) = &self.inner.workers {
            return match workers.compile(binary, cap)? {
                // SAFETY: the code is wasmtime's own output for these settings, made by this
                // program in a child and read back whole through a pipe; deserializing checks it
                // fits this engine.
                Worked::Code(code) => unsafe { Module::deserialize(&self.inner.wasmtime, &code) }
                    .map_err(|e| self.refused(binary, e)),
                Worked::Refused(message) => Err(Error::invalid(wasmtime::Error::msg(message))),
            };
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let engine = self.inner.wasmtime.clone();
        let bytes = binary.to_vec();
        std::thread::Builder::new()
            .name("leadtime-compile".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn(move || {
                let _ = tx.send(Module::new(&engine, &bytes).map_err(|e| (e, bytes)));
            })
            .map_err(|e| Error::Runtime(format!("starting a compile thread: {e}")))?;
        match rx.recv_timeout(cap) {
            Ok(Ok(module)) => Ok(module),
            Ok(Err((e, bytes))) => Err(self.refused(&bytes, e)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::CompileTimeout { cap }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Runtime(
                "the compile thread stopped without an answer".into(),
            )),
        }
    }

    /// Why wasmtime refused to build a module: it is invalid, unless a pooled engine refused it
    /// for a cap, which is then named as on demand (`sandbox::diagnose_pool_refusal`).
    fn refused(&self, bytes: &[u8], error: wasmtime::Error) -> Error {
        let limits = &self.inner.limits;
        self.inner
            .modes
            .pooled()
            .then(|| sandbox::diagnose_pool_refusal(&self.inner.wasmtime, bytes, limits))
            .flatten()
            .unwrap_or_else(|| Error::invalid(error))
    }

    /// The cache file's name of a module: its SHA-256, then a hash of what makes compiled code
    /// compatible (wasmtime's own compatibility hash of the engine's settings, and leadtime's
    /// version, since the limits shape the config), so another build never picks it up.
    fn cache_name(&self, key: &ModuleKey) -> String {
        let mut h = std::hash::DefaultHasher::new();
        self.inner
            .wasmtime
            .precompile_compatibility_hash()
            .hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        format!("{}-{:016x}.cwasm", key.hex(), h.finish())
    }
}

/// A module's binary: the bytes themselves, or `.wat` text parsed.
fn to_binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.starts_with(b"\0asm") {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    // Otherwise the wat parser's complaint would be that the bytes are not UTF-8.
    let text = std::str::from_utf8(bytes).map_err(|_| {
        Error::invalid("neither a WebAssembly binary (no `\\0asm` header) nor `.wat` text")
    })?;
    parse_wat(text).map(std::borrow::Cow::Owned)
}

/// `.wat` text as a module's binary.
#[cfg(feature = "wat")]
fn parse_wat(text: &str) -> Result<Vec<u8>> {
    wat::parse_str(text).map_err(|e| Error::invalid(one_line(&e.to_string())))
}

/// wat's error as one line: it renders a snippet under the message over several lines, which
/// the host's logs and tables would show escaped (`\n`); the place is kept as line and column.
#[cfg(feature = "wat")]
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let message = lines.next().unwrap_or_default().trim();
    let place = lines
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|p| {
            let (rest, column) = p.rsplit_once(':')?;
            let (_, line) = rest.rsplit_once(':')?;
            Some(format!(" (line {line}, column {column})"))
        })
        .unwrap_or_default();
    format!("{message}{place}")
}

/// Without the `wat` feature, text is refused with what to do instead.
#[cfg(not(feature = "wat"))]
fn parse_wat(_text: &str) -> Result<Vec<u8>> {
    Err(Error::invalid(
        "`.wat` text, which this build does not read (leadtime's `wat` feature is off): \
         compile it to `.wasm` (`wasm-tools parse`), or build with the feature",
    ))
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
            events: vec![],
            params: Params::new(),
            state: None,
        }
    }

    fn decisions(engine: &Engine) -> Vec<u32> {
        let mut policy = engine
            .load(Source::builtin("target-tracking"), Params::new())
            .unwrap();
        [15.0, 42.0, 230.0]
            .iter()
            .map(|&load| policy.decide(&request(load)).unwrap().replicas)
            .collect()
    }

    #[test]
    fn a_cache_hit_decides_as_a_fresh_compile() {
        let dir = TempDir::new("hit");
        let cold = decisions(&Engine::new(&Limits::default()).unwrap());
        let first = Engine::builder().cache_dir(&dir.0).build().unwrap();
        assert_eq!(decisions(&first), cold);
        let files = dir.files();
        assert_eq!(files.len(), 1, "one precompiled module: {files:?}");
        let written = std::fs::read(&files[0]).unwrap();
        let written_at = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
        // A new engine has an empty memory cache, so this load comes from the file.
        let second = Engine::builder().cache_dir(&dir.0).build().unwrap();
        assert_eq!(decisions(&second), cold);
        assert_eq!(dir.files(), files);
        // A hit reads the file, never rewrites it; it only marks it used (its modification
        // time), which is what pruning goes by.
        assert!(
            std::fs::read(&files[0]).unwrap() == written,
            "a cache hit rewrote the file"
        );
        let used_at = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
        assert!(used_at >= written_at, "a cache hit marks the file used");
    }

    #[test]
    fn a_corrupt_cache_file_is_recompiled_and_replaced() {
        let dir = TempDir::new("corrupt");
        let cold = decisions(&Engine::builder().cache_dir(&dir.0).build().unwrap());
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
            let engine = Engine::builder().cache_dir(&dir.0).build().unwrap();
            assert_eq!(decisions(&engine), cold);
            assert_eq!(std::fs::read(&file).unwrap(), good, "the file is rewritten");
        }
    }

    #[test]
    fn a_foreign_file_with_a_valid_checksum_is_recompiled() {
        // Bytes that pass our checksum but are not wasmtime's: `deserialize` must refuse them.
        let dir = TempDir::new("foreign");
        let cold = decisions(&Engine::builder().cache_dir(&dir.0).build().unwrap());
        let file = dir.files().pop().unwrap();
        let mut foreign = b"\x7fELF this is not compiled code".to_vec();
        foreign.extend_from_slice(&Sha256::digest(&foreign));
        std::fs::write(&file, &foreign).unwrap();
        let engine = Engine::builder().cache_dir(&dir.0).build().unwrap();
        assert_eq!(decisions(&engine), cold);
    }

    #[test]
    fn two_engines_share_a_dir() {
        let dir = TempDir::new("shared");
        let a = Engine::builder().cache_dir(&dir.0).build().unwrap();
        let b = Engine::builder().cache_dir(&dir.0).build().unwrap();
        let expected = decisions(&a);
        assert_eq!(decisions(&b), expected);
        assert_eq!(dir.files().len(), 1, "one file for both");
        // Engines on several threads loading at once leave whole files and no temp files.
        std::fs::remove_file(&dir.files()[0]).unwrap();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let engine = Engine::builder().cache_dir(&dir.0).build().unwrap();
                    assert_eq!(decisions(&engine), expected);
                });
            }
        });
        assert_eq!(dir.files().len(), 1, "{:?}", dir.files());
        let engine = Engine::builder().cache_dir(&dir.0).build().unwrap();
        assert_eq!(decisions(&engine), expected);
    }

    #[cfg(feature = "wat")]
    #[test]
    fn a_wat_error_is_one_line_with_its_place() {
        let engine = Engine::new(&Limits::default()).unwrap();
        let text =
            "(module\n  (func (export \"f\") (result i32)\n    i32.const 1\n    i32.bogus))\n";
        let err = engine
            .load(Source::bytes("bad.wat", text.as_bytes()), Params::new())
            .err()
            .expect("not wat");
        let report = err.report();
        assert!(!report.contains('\n'), "{report}");
        assert!(
            report.contains("unknown operator or unexpected token (line 4, column 5)"),
            "{report}"
        );
    }

    #[test]
    fn the_memory_cache_is_bounded_and_keeps_the_recently_used() {
        let engine = Engine::new(&Limits::default()).unwrap();
        let tt = crate::builtin_wasm("target-tracking").unwrap();
        engine.inspect(Source::bytes("tt", tt)).unwrap();
        // Distinct modules: the same tiny module with a different custom-section name each time.
        for i in 0..MEMORY_CACHE_ENTRIES + 10 {
            let wat = format!(
                r#"(module (@custom "n{i}" "") (memory (export "memory") 1)
                   (func (export "leadtime_abi_version") (result i32) i32.const 1)
                   (func (export "leadtime_alloc") (param i32) (result i32) i32.const 0)
                   (func (export "leadtime_decide") (param i32 i32) (result i64) i64.const 0))"#
            );
            engine.inspect(Source::bytes("n", wat.as_bytes())).unwrap();
            // Touch the built-in so it stays among the recently used.
            engine.inspect(Source::bytes("tt", tt)).unwrap();
        }
        assert_eq!(engine.cached_modules(), MEMORY_CACHE_ENTRIES);
        assert!(engine.lru().entries.contains_key(&ModuleKey::of(tt)));
    }
}
