//! A loaded policy and the call itself: request in, checked decision out.
//!
//! A [`Policy`] is a handle for one workload: it keeps the state the policy returned last for that
//! workload, the call's logs and fuel. The handles of one loaded policy ([`Policy::fork`]) share
//! the rest: the compiled module, the params, and a pool of idle instances. A call takes an idle
//! instance (or instantiates one when none is idle) and puts it back when the call succeeded, so
//! one instance serves every handle of a policy in turn. Policies are stateless between calls by
//! the ABI: what a workload's next decision needs travels in the request's `state`
//! (docs/ABI.md), and memory a call of another workload left behind is not to be relied on.

use crate::abi::{self, ModuleInfo};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::guard;
use crate::sandbox::{self, Limits, LogLine, Modes, StoreState};
use crate::text::escape_controls;
use leadtime_wire::codec;
use leadtime_wire::{Params, Request, Response};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use wasmtime::{
    Extern, Instance, InstancePre, Memory, ModuleExport, Store, TypedFunc, WasmParams, WasmResults,
};

/// A policy ready to decide for one workload. Create it with [`crate::Engine::load`], and a
/// handle for each further workload with [`Policy::fork`]: the handles share the module, the
/// params and the instances, and each keeps its own state.
pub struct Policy {
    shared: Arc<Shared>,
    state: Option<Vec<u8>>,
    last_logs: Vec<LogLine>,
    last_fuel: u64,
    /// The request encoded but its windows' values, kept to reuse its allocations.
    frame: codec::RequestFrame,
}

/// What the handles of one loaded policy share.
struct Shared {
    name: Arc<str>,
    engine: wasmtime::Engine,
    pre: InstancePre<StoreState>,
    exports: Exports,
    limits: Limits,
    /// `Modes::fresh_instance_per_call`.
    fresh: bool,
    /// `Modes::idle_instances`: the most instances `idle` keeps.
    idle_cap: usize,
    params: Params,
    /// `params` encoded for `leadtime_init`, when the module has one: every instance gets them.
    init_payload: Option<Vec<u8>>,
    info: ModuleInfo,
    /// Instances between calls, the one put back last on top. Locked only to take or put back
    /// one, never during a call, so that handles on different threads call at once.
    idle: Mutex<Vec<Live>>,
}

/// The ABI's exports, looked up by name once per module rather than once per instance.
struct Exports {
    memory: ModuleExport,
    abi_version: ModuleExport,
    alloc: ModuleExport,
    decide: ModuleExport,
    init: Option<ModuleExport>,
}

impl Exports {
    fn of(module: &wasmtime::Module) -> Result<Exports> {
        let find = |name: &str| {
            module
                .get_export_index(name)
                .ok_or_else(|| Error::MissingExport(name.into()))
        };
        Ok(Exports {
            memory: find(abi::EXPORT_MEMORY)?,
            abi_version: find(abi::EXPORT_ABI_VERSION)?,
            alloc: find(abi::EXPORT_ALLOC)?,
            decide: find(abi::EXPORT_DECIDE)?,
            init: module.get_export_index(abi::EXPORT_INIT),
        })
    }
}

/// A running instance and its typed entry points.
struct Live {
    store: Store<StoreState>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    decide: TypedFunc<(i32, i32), i64>,
}

impl Policy {
    pub(crate) fn new(
        name: String,
        engine: wasmtime::Engine,
        pre: InstancePre<StoreState>,
        limits: Limits,
        modes: &Modes,
        params: Params,
        info: ModuleInfo,
    ) -> Result<Policy> {
        sandbox::check_resources(pre.module())?;
        let exports = Exports::of(pre.module())?;
        let init_payload = match exports.init {
            Some(_) => Some(
                codec::to_msgpack(&params)
                    .map_err(|e| Error::BadRequest(format!("params do not encode: {e}")))?,
            ),
            None => None,
        };
        let shared = Shared {
            name: name.into(),
            engine,
            pre,
            exports,
            limits,
            fresh: modes.fresh_instance_per_call,
            idle_cap: modes.idle_instances,
            params,
            init_payload,
            info,
            idle: Mutex::new(Vec::new()),
        };
        // Instantiate now, so that a bad start function, ABI version or params fail the load
        // rather than the first decision. The instance then waits for the first call, unless
        // the policy is fresh-per-call: it would otherwise hold a slot of the engine's pool while
        // the policy sits idle.
        let live = shared.instantiate()?;
        shared.put_back(live);
        Ok(Policy::handle(Arc::new(shared)))
    }

    /// A handle on `shared` with no state, logs or fuel of its own yet.
    fn handle(shared: Arc<Shared>) -> Policy {
        Policy {
            shared,
            state: None,
            last_logs: Vec::new(),
            last_fuel: 0,
            frame: codec::RequestFrame::default(),
        }
    }

    /// A new handle for another workload: the same module, params and instances, with its own
    /// (empty) state, logs and fuel.
    pub fn fork(&self) -> Policy {
        Policy::handle(Arc::clone(&self.shared))
    }

    /// How many handles (this one, the one it was forked from, their forks) share this policy's
    /// instances; 1 when no other handle is left, so a host that keeps this one as a template to
    /// fork from can drop it.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.shared)
    }

    /// The name the policy was loaded under.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The module's exports and imports.
    pub fn info(&self) -> &ModuleInfo {
        &self.shared.info
    }

    /// The parameters given at load.
    pub fn params(&self) -> &Params {
        &self.shared.params
    }

    /// Lines the policy logged during this handle's last call.
    pub fn last_logs(&self) -> &[LogLine] {
        &self.last_logs
    }

    /// Fuel this handle's last call used (also set when it failed).
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }

    /// Forgets the state the policy returned to this handle, as after a restart.
    pub fn reset_state(&mut self) {
        self.state = None;
    }

    /// Asks the policy for a replica target.
    ///
    /// The request goes out with the policy's load-time params when it carries none, and with
    /// the state the policy returned to this handle last time when it carries none. The answer
    /// is checked and clamped to `[min, max]`. The call runs on an idle instance of the policy
    /// (a new one when none is idle), which is dropped on any error rather than reused.
    pub fn decide(&mut self, request: &Request) -> Result<Decision> {
        guard::check_request(&request.replicas)?;
        // The policy's own params and last state go out when the request carries none. Windows
        // can hold tens of thousands of points: the frame takes them by reference, and they are
        // written once, into the policy's memory (`invoke`).
        let own = &self.shared.params;
        let params = (request.params.is_empty() && !own.is_empty()).then_some(own);
        let state = match request.state {
            None => self.state.as_deref(),
            Some(_) => None,
        };
        let mut frame = std::mem::take(&mut self.frame);
        frame
            .encode(request, params, state)
            .map_err(|e| Error::BadRequest(format!("request does not encode: {e}")))?;
        let result = self.call(&frame, request);
        self.frame = frame;
        let response = result?;
        let mut decision = guard::check(&request.replicas, response)?;
        decision.fuel = self.last_fuel;
        self.state = decision.state.clone();
        Ok(decision)
    }

    /// One `leadtime_decide` call on an instance of the pool; the raw response, decoded. The
    /// instance goes back to the pool only when the call succeeded: a failed call may have left
    /// its memory in any state.
    fn call(&mut self, frame: &codec::RequestFrame, request: &Request) -> Result<Response> {
        let shared = &*self.shared;
        let mut live = match shared.take_idle() {
            Some(live) => live,
            None => shared.instantiate()?,
        };
        live.store.data_mut().begin_call();
        live.store
            .set_fuel(shared.limits.fuel_per_call)
            .map_err(|e| Error::wasmtime("setting the fuel", e))?;
        let result = invoke(&mut live, frame, request, shared.limits.response_bytes);
        let fuel_left = live.store.get_fuel().unwrap_or(0);
        self.last_fuel = shared.limits.fuel_per_call.saturating_sub(fuel_left);
        // Classify before taking the logs: a trap's detail is the policy's last error line
        // (a Rust panic's message, for one).
        let result = result.map_err(|fail| match fail {
            Fail::Wasm(e) => sandbox::to_error(&mut live.store, e),
            Fail::Host(e) => e,
        });
        self.last_logs = std::mem::take(&mut live.store.data_mut().logs);
        if result.is_ok() {
            shared.put_back(live);
        }
        result
    }

    /// The size in bytes of the linear memory of this policy's largest idle instance: what one
    /// instance of it holds, for `leadtime bench`. `None` when no instance is idle: with
    /// `fresh_instance_per_call` (no instance is kept between calls), with `idle_instances` 0,
    /// or while every instance is in a call or was dropped after a failed one.
    pub fn memory_bytes(&self) -> Option<usize> {
        let idle = self.shared.idle();
        idle.iter().map(|l| l.memory.data_size(&l.store)).max()
    }
}

impl Shared {
    fn idle(&self) -> MutexGuard<'_, Vec<Live>> {
        // Nothing panics while the lock is held (a push or a pop), and the list is whole
        // between them anyway.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The instance put back last, if any is idle.
    fn take_idle(&self) -> Option<Live> {
        self.idle().pop()
    }

    /// Keeps an instance that a call succeeded on for the next call, unless the policy is
    /// fresh-per-call or `idle_instances` are idle already: it is then dropped (after the lock
    /// is released: unmapping its memory takes a while).
    fn put_back(&self, live: Live) {
        if self.fresh {
            return;
        }
        let extra = {
            let mut idle = self.idle();
            if idle.len() < self.idle_cap {
                idle.push(live);
                None
            } else {
                Some(live)
            }
        };
        drop(extra);
    }

    /// A fresh instance: start function run, ABI version checked, params accepted.
    fn instantiate(&self) -> Result<Live> {
        let state = StoreState::new(&self.limits, &self.name);
        let mut store = sandbox::new_store(&self.engine, state);
        store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| Error::wasmtime("setting the fuel", e))?;
        let instance = match self.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(sandbox::to_error(&mut store, e)),
        };
        let memory = instance
            .get_module_export(&mut store, &self.exports.memory)
            .and_then(Extern::into_memory)
            .ok_or_else(|| Error::MissingExport(abi::EXPORT_MEMORY.into()))?;
        let e = &self.exports;
        let version = abi_func::<(), i32>(&mut store, instance, &e.abi_version)?;
        let alloc = abi_func::<i32, i32>(&mut store, instance, &e.alloc)?;
        let decide = abi_func::<(i32, i32), i64>(&mut store, instance, &e.decide)?;

        let found = match version.call(&mut store, ()) {
            Ok(v) => v,
            Err(e) => return Err(sandbox::to_error(&mut store, e)),
        };
        if found as i64 != abi::ABI_VERSION as i64 {
            return Err(Error::AbiMismatch {
                found: found as i64,
                expected: abi::ABI_VERSION,
            });
        }
        let mut live = Live {
            store,
            memory,
            alloc,
            decide,
        };
        if let (Some(init), Some(params)) = (&self.exports.init, &self.init_payload) {
            self.init(&mut live, instance, init, params)?;
        }
        Ok(live)
    }

    /// Runs `leadtime_init` on a new instance with the encoded params.
    fn init(
        &self,
        live: &mut Live,
        instance: Instance,
        init: &ModuleExport,
        params: &[u8],
    ) -> Result<()> {
        let init = abi_func::<(i32, i32), i32>(&mut live.store, instance, init)?;
        live.store.data_mut().begin_call();
        let code = match write_payload(live, params)
            .and_then(|(ptr, len)| init.call(&mut live.store, (ptr, len)).map_err(Fail::Wasm))
        {
            Ok(code) => code,
            Err(Fail::Wasm(e)) => return Err(sandbox::to_error(&mut live.store, e)),
            Err(Fail::Host(e)) => return Err(e),
        };
        if code != 0 {
            let why = live
                .store
                .data()
                .last_error_log()
                .unwrap_or("the policy gave no reason")
                .to_string();
            return Err(Error::InitFailed(format!(
                "leadtime_init rejected the params (code {code}): {why}"
            )));
        }
        Ok(())
    }
}

/// Deepest nesting of maps and arrays accepted in a response. A valid response nests three
/// deep (response, forecast, values); the decoder recurses once per level, so a policy that
/// answers thousands of nested arrays would otherwise overflow the host's own stack.
pub const MAX_RESPONSE_DEPTH: usize = 32;

/// Decodes a policy's raw response bytes as the engine does after every call: one MessagePack
/// map (docs/ABI.md) and nothing after it, nested at most [`MAX_RESPONSE_DEPTH`] deep; an
/// `error` becomes [`Error::PolicyError`], and anything else that is not a response with
/// `replicas` is [`Error::BadResponse`].
pub fn decode_response(bytes: &[u8]) -> Result<Response> {
    use serde::Deserialize;
    // serde would also take a struct written as an array (`[5, "x"]`), which the ABI does not.
    match bytes.first() {
        Some(0x80..=0x8f | 0xde | 0xdf) => {}
        Some(_) => return Err(Error::BadResponse("response is not a map".into())),
        None => return Err(Error::BadResponse("response is empty".into())),
    }
    // Read from a slice that the decoder advances, so that what is left after the map shows.
    let mut unread = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut unread);
    de.set_max_depth(MAX_RESPONSE_DEPTH);
    let response =
        Response::deserialize(&mut de).map_err(|source| Error::UndecodableResponse { source })?;
    let rest = unread.len();
    if rest > 0 {
        return Err(Error::BadResponse(format!(
            "response has {rest} bytes after its map"
        )));
    }
    if let Some(message) = response.error {
        return Err(Error::PolicyError(escape_controls(&message).into_owned()));
    }
    if response.replicas.is_none() {
        return Err(Error::BadResponse(
            "response has neither `replicas` nor `error`".into(),
        ));
    }
    Ok(response)
}

/// An ABI function of a new instance. `abi::check` vetted the export's type at load, so this
/// fails only if the engine itself is broken.
fn abi_func<P: WasmParams, R: WasmResults>(
    store: &mut Store<StoreState>,
    instance: Instance,
    export: &ModuleExport,
) -> Result<TypedFunc<P, R>> {
    let func = instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
        .ok_or_else(|| Error::Runtime("an ABI export vanished from its module".into()))?;
    func.typed(&*store)
        .map_err(|e| Error::Runtime(format!("ABI export: {e}")))
}

/// Why a call failed: inside wasm (to be classified), or a check of the host's.
enum Fail {
    Wasm(wasmtime::Error),
    Host(Error),
}

/// Copies `payload` into a buffer from `leadtime_alloc`; returns the buffer's (ptr, len).
fn write_payload(live: &mut Live, payload: &[u8]) -> Result<(i32, i32), Fail> {
    let (ptr, len, buffer) = alloc_buffer(live, payload.len())?;
    buffer.copy_from_slice(payload);
    Ok((ptr, len))
}

/// A buffer of `len` bytes from `leadtime_alloc`: its (ptr, len) and the bytes, in the policy's
/// memory.
fn alloc_buffer(live: &mut Live, len: usize) -> Result<(i32, i32, &mut [u8]), Fail> {
    let len = i32::try_from(len)
        .map_err(|_| Fail::Host(Error::BadRequest("payload over 2 GiB".into())))?;
    let ptr = live.alloc.call(&mut live.store, len).map_err(Fail::Wasm)?;
    let data = live.memory.data_mut(&mut live.store);
    let size = data.len();
    let range = abi::span(ptr as u32, len as u32, size).ok_or_else(|| {
        Fail::Host(Error::BadResponse(format!(
            "leadtime_alloc({len}) returned {}, outside the policy's memory of {size} bytes",
            ptr as u32
        )))
    })?;
    Ok((ptr, len, &mut data[range]))
}

/// Writes the request straight into the policy's memory, calls `leadtime_decide`, and decodes
/// the response where it lies there.
fn invoke(
    live: &mut Live,
    frame: &codec::RequestFrame,
    request: &Request,
    cap: usize,
) -> Result<Response, Fail> {
    let (ptr, len, buffer) = alloc_buffer(live, frame.len())?;
    frame
        .write(request, buffer)
        .map_err(|e| Fail::Host(Error::BadRequest(format!("request does not encode: {e}"))))?;
    let packed = live
        .decide
        .call(&mut live.store, (ptr, len))
        .map_err(Fail::Wasm)?;
    let (out_ptr, out_len) = abi::unpack(packed);
    if out_len as usize > cap {
        return Err(Fail::Host(Error::BadResponse(format!(
            "response length {out_len} is over the cap of {cap} bytes"
        ))));
    }
    let data = live.memory.data(&live.store);
    let range = abi::span(out_ptr, out_len, data.len()).ok_or_else(|| {
        Fail::Host(Error::BadResponse(format!(
            "response at {out_ptr}+{out_len} is outside the policy's memory of {} bytes",
            data.len()
        )))
    })?;
    decode_response(&data[range]).map_err(Fail::Host)
}
