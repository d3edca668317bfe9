//! A loaded policy for one workload: its instance, its parameters, the state it carries between
//! calls, and the call itself: request in, checked decision out.

use crate::abi::{self, ModuleInfo};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::guard;
use crate::sandbox::{self, Limits, LogLine, StoreState};
use crate::text::escape_controls;
use leadtime_wire::codec;
use leadtime_wire::{Params, Request, Response};
use std::sync::Arc;
use wasmtime::{
    Extern, Instance, InstancePre, Memory, ModuleExport, Store, TypedFunc, WasmParams, WasmResults,
};

/// A policy ready to decide for one workload. Create it with [`crate::Engine::load`].
pub struct Policy {
    name: Arc<str>,
    engine: wasmtime::Engine,
    pre: InstancePre<StoreState>,
    exports: Exports,
    limits: Limits,
    /// `Modes::fresh_instance_per_call`.
    fresh: bool,
    params: Params,
    /// `params` encoded for `leadtime_init`, when the module has one: every instance gets them.
    init_payload: Option<Vec<u8>>,
    info: ModuleInfo,
    live: Option<Live>,
    state: Option<Vec<u8>>,
    last_logs: Vec<LogLine>,
    last_fuel: u64,
    /// The request encoded but its windows' values, kept to reuse its allocations.
    frame: codec::RequestFrame,
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
        fresh: bool,
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
        let mut policy = Policy {
            name: name.into(),
            engine,
            pre,
            exports,
            limits,
            fresh,
            params,
            init_payload,
            info,
            live: None,
            state: None,
            last_logs: Vec::new(),
            last_fuel: 0,
            frame: codec::RequestFrame::default(),
        };
        // Instantiate now, so that a bad start function, ABI version or params fail the load
        // rather than the first decision. A fresh-per-call policy lets the instance go: it would
        // otherwise hold a slot of the engine's pool while the policy sits idle.
        let live = policy.instantiate()?;
        if !policy.fresh {
            policy.live = Some(live);
        }
        Ok(policy)
    }

    /// The name the policy was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The module's exports and imports.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The parameters given at load.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Lines the policy logged during the last call.
    pub fn last_logs(&self) -> &[LogLine] {
        &self.last_logs
    }

    /// Fuel the last call used (also set when it failed).
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }

    /// Forgets the state the policy returned, as after a restart.
    pub fn reset_state(&mut self) {
        self.state = None;
    }

    /// Asks the policy for a replica target.
    ///
    /// The request goes out with the policy's load-time params when it carries none, and with
    /// the state the policy returned last time when it carries none. The answer is checked and
    /// clamped to `[min, max]`. On any error the instance is replaced before the next call.
    pub fn decide(&mut self, request: &Request) -> Result<Decision> {
        guard::check_request(&request.replicas)?;
        // The policy's own params and last state go out when the request carries none. Windows
        // can hold tens of thousands of points: the frame takes them by reference, and they are
        // written once, into the policy's memory (`invoke`).
        let params = (request.params.is_empty() && !self.params.is_empty()).then_some(&self.params);
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
        if result.is_err() || self.fresh {
            self.live = None;
        }
        let response = result?;
        let mut decision = guard::check(&request.replicas, response)?;
        decision.fuel = self.last_fuel;
        self.state = decision.state.clone();
        Ok(decision)
    }

    /// One `leadtime_decide` call on a live instance; the raw response, decoded.
    fn call(&mut self, frame: &codec::RequestFrame, request: &Request) -> Result<Response> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        let live = self.live.as_mut().expect("instantiated above");
        live.store.data_mut().begin_call();
        live.store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| Error::wasmtime("setting the fuel", e))?;
        let result = invoke(live, frame, request, self.limits.response_bytes);
        let fuel_left = live.store.get_fuel().unwrap_or(0);
        self.last_fuel = self.limits.fuel_per_call.saturating_sub(fuel_left);
        // Classify before taking the logs: a trap's detail is the policy's last error line
        // (a Rust panic's message, for one).
        let result = result.map_err(|fail| match fail {
            Fail::Wasm(e) => sandbox::to_error(&mut live.store, e),
            Fail::Host(e) => e,
        });
        self.last_logs = std::mem::take(&mut live.store.data_mut().logs);
        result
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

    /// The size of the live instance's linear memory in bytes (`None` between a failed call and
    /// the next, and with `fresh_instance_per_call`, which keeps no instance between calls): what
    /// one instance of this policy holds, for `leadtime bench`.
    pub fn memory_bytes(&self) -> Option<usize> {
        self.live.as_ref().map(|l| l.memory.data_size(&l.store))
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
