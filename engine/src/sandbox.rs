//! The sandbox: every limit a policy runs under, the store it runs in, the one host function it
//! may call, and how a failed wasm call becomes a typed [`Error`].

use crate::abi;
use crate::error::Error;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Caller, Config, Enabled, InstanceAllocationStrategy, Linker, OperatorCost,
    PoolConcurrencyLimitError, PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};

/// Every bound a policy is loaded and runs under, each a named option with a safe default, set
/// in the style of wasmtime's `Config`:
///
/// ```
/// let mut limits = leadtime::Limits::new();
/// limits.fuel_per_call(50_000_000).memory_bytes(32 << 20);
/// assert_eq!(limits.get_memory_bytes(), 32 << 20);
/// ```
///
/// How instances run (reused or fresh, how many kept idle, pooled, NaN canonicalisation) is not
/// a bound: see [`Modes`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    pub(crate) fuel_per_call: u64,
    pub(crate) memory_bytes: usize,
    pub(crate) table_elements: usize,
    pub(crate) stack_bytes: usize,
    pub(crate) module_bytes: usize,
    pub(crate) response_bytes: usize,
    pub(crate) log_line_bytes: usize,
    pub(crate) log_lines_per_call: usize,
    pub(crate) fuel_per_log: u64,
    pub(crate) module_functions: usize,
    pub(crate) function_bytes: usize,
    pub(crate) function_locals: usize,
    pub(crate) nesting_depth: usize,
    pub(crate) compile_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_call: 400_000_000,
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            stack_bytes: 512 << 10,
            module_bytes: 16 << 20,
            response_bytes: 4 << 20,
            log_line_bytes: 16 << 10,
            log_lines_per_call: 32,
            fuel_per_log: 10_000,
            module_functions: 20_000,
            function_bytes: 1 << 20,
            function_locals: 50_000,
            nesting_depth: 1_000,
            compile_time: Duration::from_secs(20),
        }
    }
}

/// A setter (wasmtime `Config` style: `&mut self` in, `&mut Self` out, so calls chain) and its
/// getter (`get_` prefixed, as `std::process::Command`'s, since the option's name is the setter).
macro_rules! options {
    ($(
        $(#[$doc:meta])*
        $name:ident, $get:ident: $ty:ty;
    )*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, value: $ty) -> &mut Self {
                self.$name = value;
                self
            }

            #[doc = concat!("The value of [`Self::", stringify!($name), "`].")]
            pub fn $get(&self) -> $ty {
                self.$name
            }
        )*
    };
}

impl Limits {
    /// The default limits.
    pub fn new() -> Limits {
        Limits::default()
    }

    options! {
        /// CPU bound per call (and per instantiation), in wasmtime fuel (about one unit per wasm
        /// instruction). Default 400 million (docs/performance.md relates fuel to time).
        fuel_per_call, get_fuel_per_call: u64;
        /// Linear memory cap per policy instance, in bytes. Default 64 MiB.
        memory_bytes, get_memory_bytes: usize;
        /// Table cap per instance, in elements. Default 100,000.
        table_elements, get_table_elements: usize;
        /// Native stack the policy's wasm may use, in bytes. Default 512 KiB.
        stack_bytes, get_stack_bytes: usize;
        /// Largest module accepted, in bytes (binary, or `.wat` text before it is parsed); a
        /// file is refused on its size before it is read. Default 16 MiB.
        module_bytes, get_module_bytes: usize;
        /// Largest response accepted, in bytes. Default 4 MiB.
        response_bytes, get_response_bytes: usize;
        /// Longest log line accepted, in bytes; a longer one fails the call. Default 16 KiB.
        log_line_bytes, get_log_line_bytes: usize;
        /// Log lines kept per call; later ones are counted, not kept. Default 32.
        log_lines_per_call, get_log_lines_per_call: usize;
        /// Fuel charged per `log` call, so that a log loop runs out of budget. Default 10,000.
        fuel_per_log, get_fuel_per_log: u64;
        /// Functions a module may define or import, checked before compiling: compile time and
        /// memory grow with the count (a million empty functions take tens of seconds and GBs).
        /// Default 20,000 (the built-in policies have a few hundred).
        module_functions, get_module_functions: usize;
        /// Largest function body, in bytes, checked before compiling. Default 1 MiB.
        function_bytes, get_function_bytes: usize;
        /// Locals one function may declare, checked before compiling. Default 50,000.
        function_locals, get_function_locals: usize;
        /// Deepest nesting of blocks, loops and ifs in a function, checked before compiling: the
        /// compiler's time grows faster than linearly with it (20,000 levels: seconds). Default
        /// 1,000.
        nesting_depth, get_nesting_depth: usize;
        /// Longest a compile may take; a module still compiling then is refused (the compile
        /// runs off the caller's thread, which gets its answer at the deadline). The limits
        /// above keep a module far inside it; this is the backstop. Default 20 s.
        compile_time, get_compile_time: Duration;
    }
}

/// How policy instances are run: choices between speed and isolation that change no bound and
/// no decision. Set in the style of wasmtime's `Config`, like [`Limits`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Modes {
    pub(crate) fresh_instance_per_call: bool,
    pub(crate) idle_instances: usize,
    pub(crate) instance_pool: u32,
    pub(crate) pool_bounds_checks: bool,
    pub(crate) canonical_nans: bool,
    pub(crate) signal_traps: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Modes {
            fresh_instance_per_call: false,
            idle_instances: 4,
            instance_pool: 32,
            pool_bounds_checks: true,
            canonical_nans: true,
            signal_traps: true,
        }
    }
}

impl Modes {
    /// The default modes.
    pub fn new() -> Modes {
        Modes::default()
    }

    options! {
        /// Start each call on a fresh instance, so no memory survives between calls (not even
        /// from one workload's call to another's, see [`Self::idle_instances`]). Default false:
        /// an instance is reused, by every handle of its policy in turn, until a call fails,
        /// then dropped.
        fresh_instance_per_call, get_fresh_instance_per_call: bool;
        /// Instances kept idle per loaded policy for its handles ([`crate::Policy::fork`]) to
        /// reuse; more calls at once instantiate more, which are dropped after. A call takes an
        /// idle instance, so one instance serves the calls of every handle in turn, whatever
        /// their number, and memory one workload's call left behind is there for the next
        /// workload's: a policy keeps what a workload needs in `state` (docs/ABI.md). 0 keeps
        /// none: every call instantiates on demand. Unused with `fresh_instance_per_call`, which
        /// keeps no instance between calls. Default 4.
        idle_instances, get_idle_instances: usize;
        /// Instance slots of the engine's pool, used when `fresh_instance_per_call` is on:
        /// wasmtime's pooling allocator then resets a used slot in place instead of mapping and
        /// unmapping memory for every instance (see docs/performance.md). A slot is held only
        /// while a call (or a load) runs, so this bounds calls at once per engine, not policies;
        /// one more fails with `runtime`. Each slot reserves `Limits::memory_bytes` of address
        /// space (not memory; 4 GiB without `pool_bounds_checks`) for the engine's life, and
        /// keeps up to [`POOL_KEEP_RESIDENT_BYTES`] of the memory a call touched. 0 allocates
        /// every instance on demand. Reused instances (the default mode) are always allocated
        /// on demand: each loaded policy keeps up to [`Self::idle_instances`] of them between
        /// calls, shared by its handles, and a pool would cap how many policies an engine can
        /// load. Default 32.
        instance_pool, get_instance_pool: u32;
        /// With the instance pool, check memory bounds in the compiled code rather than with
        /// guard pages: nothing past a memory's size has to be made inaccessible, so a fresh
        /// instance whose call grew memory costs no `mprotect`, threads do not queue on the
        /// process's memory map, and a slot reserves only `Limits::memory_bytes` of address
        /// space; policy code runs somewhat slower (see docs/performance.md). Results are the
        /// same either way. Default true.
        pool_bounds_checks, get_pool_bounds_checks: bool;
        /// Give every NaN a float operation makes the canonical bits, so that the same request
        /// gives the same bits on every CPU (x86 and ARM make different NaNs). It costs a check
        /// after each float operation (see docs/performance.md), and a policy can only tell the
        /// difference by reading a NaN's bits. Default true.
        canonical_nans, get_canonical_nans: bool;
        /// Let a policy's traps (division by zero, `unreachable`, out-of-bounds memory) raise
        /// signals (SIGFPE, SIGILL, SIGSEGV) that wasmtime's handlers turn into errors, the
        /// fastest. Turn it off in a process where other code installs its own handlers for
        /// these signals after the engine is made (Python's `faulthandler.enable()`, Ray, some
        /// JVMs): they do not hand wasmtime the fault, and the trap then ends the process. Off,
        /// every check is in the compiled code, which is slower (see docs/security.md), and no
        /// handler is installed. Decisions are the same either way. Default true.
        signal_traps, get_signal_traps: bool;
    }

    /// Whether instances come from a pool (see [`Modes::instance_pool`]).
    pub(crate) fn pooled(&self) -> bool {
        self.fresh_instance_per_call && self.instance_pool > 0
    }
}

/// The wasmtime configuration these limits and modes need.
pub(crate) fn wasmtime_config(limits: &Limits, modes: &Modes) -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .max_wasm_stack(limits.stack_bytes)
        // Determinism: the same request gives the same bits whatever the CPU.
        .cranelift_nan_canonicalization(modes.canonical_nans)
        .relaxed_simd_deterministic(true)
        .operator_cost(operator_cost());
    if modes.pooled() {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(
            limits, modes,
        )));
    }
    if !modes.signal_traps || (modes.pooled() && modes.pool_bounds_checks) {
        checks_in_code(&mut config, limits);
    }
    config
}

/// Checks in code: without guard pages nothing past a memory's size needs to be inaccessible,
/// so wasmtime neither protects a pool slot's pages on reset nor unprotects them on growth, and
/// a memory reserves only what the limits allow.
fn checks_in_code(config: &mut Config, limits: &Limits) {
    config
        .signals_based_traps(false)
        .memory_guard_size(0)
        .guard_before_linear_memory(false)
        .memory_reservation(limits.memory_bytes.min(wasm32_memory_bytes()) as u64);
}

/// The config a compile worker builds code with: the engine's, without the instance pool (which
/// shapes no code, and whose reservations would count against the worker's memory cap).
pub(crate) fn compile_config(limits: &Limits, modes: &Modes) -> Config {
    let mut plain = modes.clone();
    plain.instance_pool = 0;
    let mut config = wasmtime_config(limits, &plain);
    if modes.pooled() && modes.pool_bounds_checks {
        // The pooled engine's checks-in-code layout, which `wasmtime_config` sets only for a pool.
        checks_in_code(&mut config, limits);
    }
    config
}

/// wasmtime's fuel costs, but for `table.grow`: wasmtime charges a fuel unit per element asked
/// for, before the growth is tried, so a `table.grow` of 4 billion elements would end the call as
/// `out-of-fuel` without the limiter ever hearing of it, where growing memory past its cap (no
/// charge per page) is `out-of-memory`. Here, as for memory, the limiter refuses growth past
/// `Limits::table_elements`, so growth that succeeds costs at most that many element writes per
/// instance, and growth refused is the typed `out-of-memory` whatever its size.
fn operator_cost() -> OperatorCost {
    let mut cost = OperatorCost::new();
    cost.variable.table_grow_per_element = 0;
    cost
}

/// The pool: a slot per instance, each sized by the limits, so the pool refuses nothing the
/// limiter would allow (and `diagnose_pool_refusal` names what it refuses).
fn pool_config(limits: &Limits, modes: &Modes) -> PoolingAllocationConfig {
    let slots = modes.instance_pool;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots.saturating_mul(MAX_MEMORIES as u32))
        .total_tables(slots.saturating_mul(MAX_TABLES as u32))
        .max_memories_per_module(MAX_MEMORIES as u32)
        .max_tables_per_module(MAX_TABLES as u32)
        // A wasm32 memory cannot outgrow 4 GiB (what a slot reserves with guard pages); the
        // limiter holds the exact cap either way.
        .max_memory_size(limits.memory_bytes.min(wasm32_memory_bytes()))
        .table_elements(limits.table_elements)
        // An instance's own bookkeeping is allocated per instance, not reserved, and has no
        // bound on demand: none here either, so the pool refuses no module on its account.
        .max_core_instance_size(isize::MAX as usize);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        // Reset only the pages an instance dirtied (the kernel's page map says which; Linux
        // 6.7 and later), and keep them, instead of returning all of them to the kernel and
        // faulting them in again on the next instance. Without the page map the first bytes
        // would be reset whole, dirty or not: not worth it.
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(POOL_KEEP_RESIDENT_BYTES)
            .table_keep_resident(POOL_KEEP_RESIDENT_BYTES);
    }
    pool
}

/// Memory of a pool slot kept resident between instances (with the kernel's page map): at most
/// this much of what the last instance touched is reset in place rather than released, so the
/// next instance does not fault it in again. A slot costs up to this much RAM while idle. 4 MiB:
/// above what the built-in policies touch (docs/performance.md, `leadtime bench`'s memory).
pub const POOL_KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// The largest a wasm32 linear memory can be (4 GiB), or the address space if smaller.
fn wasm32_memory_bytes() -> usize {
    usize::try_from(1u64 << 32).unwrap_or(usize::MAX)
}

/// A policy's log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 0.
    Debug,
    /// 1.
    Info,
    /// 2.
    Warn,
    /// 3 (and anything higher).
    Error,
}

impl Level {
    fn from_i32(level: i32) -> Level {
        match level {
            i32::MIN..=0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            _ => Level::Error,
        }
    }
}

/// A line the policy logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its text (invalid UTF-8 replaced).
    pub message: String,
}

/// What the host keeps per instance.
pub(crate) struct StoreState {
    limits: Limits,
    /// The policy's name, for log context (shared: a store is made per instance).
    pub(crate) policy: Arc<str>,
    /// Lines logged during the current call.
    pub(crate) logs: Vec<LogLine>,
    /// Lines dropped during the current call (over `log_lines_per_call`).
    pub(crate) dropped_logs: usize,
    /// Why the sandbox stopped the current call, when it did.
    violation: Option<Error>,
}

impl StoreState {
    pub(crate) fn new(limits: &Limits, policy: &Arc<str>) -> Self {
        StoreState {
            limits: limits.clone(),
            policy: Arc::clone(policy),
            logs: Vec::new(),
            dropped_logs: 0,
            violation: None,
        }
    }

    /// Clears per-call records before a call.
    pub(crate) fn begin_call(&mut self) {
        self.logs.clear();
        self.dropped_logs = 0;
        self.violation = None;
    }

    /// The last error-level line of this call, which a policy uses to say why it failed.
    pub(crate) fn last_error_log(&self) -> Option<&str> {
        self.logs
            .iter()
            .rev()
            .find(|l| l.level == Level::Error)
            .map(|l| l.message.as_str())
    }

    /// Stops the call with `error`: wasmtime unwinds, and [`to_error`] returns it.
    fn violate(&mut self, error: Error) -> wasmtime::Error {
        let message = error.to_string();
        self.violation = Some(error);
        wasmtime::Error::msg(message)
    }
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            // A trap, not a quiet -1 from memory.grow: a policy at its cap is broken, and the
            // caller should hear so by name rather than as whatever the guest does next.
            let cap = self.limits.memory_bytes;
            return Err(self.violate(Error::OutOfMemory {
                what: "memory",
                desired,
                cap,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            let cap = self.limits.table_elements;
            return Err(self.violate(Error::OutOfMemory {
                what: "table",
                desired,
                cap,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Memories an instance may have (the ABI's one).
pub(crate) const MAX_MEMORIES: usize = 1;
/// Tables an instance may have.
pub(crate) const MAX_TABLES: usize = 4;

/// Refuses a module that needs more memories or tables than an instance may have, as
/// `out-of-memory`: wasmtime's own refusal at instantiation is an untyped error that would read as
/// a failure of the runtime rather than of the policy.
pub(crate) fn check_resources(module: &wasmtime::Module) -> Result<(), Error> {
    let needs = module.resources_required();
    for (what, desired, cap) in [
        ("memory count", needs.num_memories as usize, MAX_MEMORIES),
        ("table count", needs.num_tables as usize, MAX_TABLES),
    ] {
        if desired > cap {
            return Err(Error::OutOfMemory { what, desired, cap });
        }
    }
    Ok(())
}

/// Why a pooled engine refused a valid module (its binary) at compile, when that is a cap the same module
/// would meet at instantiation on demand ([`check_resources`], then the limiter on each memory and
/// table's initial size): the same typed `out-of-memory`, so that a module fails the same way
/// whichever allocator the engine uses. `None` for anything else. The pool checks a module's
/// declared resources against its slots when wasmtime builds it, before `abi::check`, so a
/// module that is both over a cap and off the ABI reports the cap here.
pub(crate) fn diagnose_pool_refusal(
    engine: &wasmtime::Engine,
    binary: &[u8],
    limits: &Limits,
) -> Option<Error> {
    // An invalid module stays `invalid-module`, whatever it declares.
    wasmtime::Module::validate(engine, binary).ok()?;
    let (mut memories, mut tables) = (Vec::new(), Vec::new());
    for payload in wasmparser::Parser::new(0).parse_all(binary) {
        match payload.ok()? {
            wasmparser::Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.ok()?;
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    memories.push(memory.initial.saturating_mul(page));
                }
            }
            wasmparser::Payload::TableSection(reader) => {
                for table in reader {
                    tables.push(table.ok()?.ty.initial);
                }
            }
            _ => {}
        }
    }
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    for (what, desired, cap) in [
        ("memory count", memories.len(), MAX_MEMORIES),
        ("table count", tables.len(), MAX_TABLES),
    ] {
        if desired > cap {
            return Some(Error::OutOfMemory { what, desired, cap });
        }
    }
    let memory = memories
        .into_iter()
        .map(size)
        .find(|&m| m > limits.memory_bytes);
    if let Some(desired) = memory {
        let cap = limits.memory_bytes;
        return Some(Error::OutOfMemory {
            what: "memory",
            desired,
            cap,
        });
    }
    let table = tables
        .into_iter()
        .map(size)
        .find(|&t| t > limits.table_elements);
    table.map(|desired| Error::OutOfMemory {
        what: "table",
        desired,
        cap: limits.table_elements,
    })
}

/// A store with the limiter and fuel set up.
pub(crate) fn new_store(engine: &wasmtime::Engine, state: StoreState) -> Store<StoreState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| s);
    store
}

/// The linker with the host functions of module `leadtime`.
pub(crate) fn linker(engine: &wasmtime::Engine) -> Linker<StoreState> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(abi::HOST_MODULE, abi::HOST_LOG, host_log)
        .expect("defining leadtime::log in a fresh linker cannot clash");
    linker
}

/// `leadtime::log(level, ptr, len)`.
fn host_log(
    mut caller: Caller<'_, StoreState>,
    level: i32,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<()> {
    let cost = caller.data().limits.fuel_per_log;
    let fuel = caller.get_fuel()?;
    if fuel < cost {
        caller.set_fuel(0)?;
        let budget = caller.data().limits.fuel_per_call;
        return Err(caller.data_mut().violate(Error::OutOfFuel { budget }));
    }
    caller.set_fuel(fuel - cost)?;

    let cap = caller.data().limits.log_line_bytes;
    if len as u32 as usize > cap {
        let e = Error::HostCall(format!(
            "log: a line of {} bytes is over the cap of {cap} bytes",
            len as u32
        ));
        return Err(caller.data_mut().violate(e));
    }
    let Some(memory) = caller
        .get_export(abi::EXPORT_MEMORY)
        .and_then(|e| e.into_memory())
    else {
        let e = Error::HostCall("log: the module exports no memory".into());
        return Err(caller.data_mut().violate(e));
    };
    let data = memory.data(&caller);
    let Some(range) = abi::span(ptr as u32, len as u32, data.len()) else {
        let e = Error::HostCall(format!(
            "log: buffer {}+{} is outside the policy's memory of {} bytes",
            ptr as u32,
            len as u32,
            data.len()
        ));
        return Err(caller.data_mut().violate(e));
    };
    // Escaped as it enters the host: the line goes to the host's log and the caller's terminal.
    let message = crate::text::escape_controls(&String::from_utf8_lossy(&data[range])).into_owned();
    let level = Level::from_i32(level);
    let state = caller.data_mut();
    match level {
        Level::Debug => tracing::debug!(target: "policy", policy = %state.policy, "{message}"),
        Level::Info => tracing::info!(target: "policy", policy = %state.policy, "{message}"),
        Level::Warn => tracing::warn!(target: "policy", policy = %state.policy, "{message}"),
        Level::Error => tracing::error!(target: "policy", policy = %state.policy, "{message}"),
    }
    if state.logs.len() < state.limits.log_lines_per_call {
        state.logs.push(LogLine { level, message });
    } else {
        state.dropped_logs += 1;
    }
    Ok(())
}

/// Turns a failed wasm call into a typed error: a sandbox violation the host recorded wins,
/// then wasmtime's trap codes, then the policy's own last error log for context.
pub(crate) fn to_error(store: &mut Store<StoreState>, err: wasmtime::Error) -> Error {
    if let Some(violation) = store.data_mut().violation.take() {
        return violation;
    }
    let limits = &store.data().limits;
    if err.is::<PoolConcurrencyLimitError>() {
        return Error::Wasmtime {
            context: "the instance pool is full: `Modes::instance_pool` bounds the calls and \
                      loads in progress at once on one engine",
            source: err.into(),
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Error::OutOfFuel {
            budget: limits.fuel_per_call,
        },
        Some(Trap::StackOverflow) => Error::StackOverflow {
            cap: limits.stack_bytes,
        },
        Some(trap) => {
            let detail = store
                .data()
                .last_error_log()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            Error::Trap(format!("{trap}{detail}"))
        }
        // Not a trap: instantiation failed for a resource reason, or similar.
        None => Error::wasmtime("running the policy", err),
    }
}
