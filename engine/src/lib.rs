//! leadtime: run autoscaling policies compiled to WebAssembly, sandboxed, and get replica targets.
//!
//! ```no_run
//! use leadtime::{Engine, Limits, Params, Source};
//! # fn request() -> leadtime::Request { unimplemented!() }
//! let engine = Engine::new(Limits::new().fuel_per_call(100_000_000))?;
//! let mut policy = engine.load(Source::builtin("target-tracking"), Params::new())?;
//! let decision = policy.decide(&request())?;
//! println!("{} replicas: {}", decision.replicas, decision.reason);
//! # Ok::<(), leadtime::Error>(())
//! ```
//!
//! Data flows one way: request → [`sandbox`] → policy → [`guard`] → [`Decision`].

pub mod abi;
pub mod behavior;
mod bounds;
mod cache;
mod decision;
mod engine;
mod error;
mod flight;
mod guard;
mod policy;
pub mod sandbox;
mod source;
pub mod supervisor;
mod text;
mod worker;

pub use behavior::{Behavior, BehaviorError};
pub use cache::{DISK_CACHE_BYTES, DISK_CACHE_MAX_AGE};
pub use decision::Decision;
pub use engine::{Engine, EngineBuilder};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use flight::FAILURE_MEMORY;
pub use leadtime_wire::{
    codec, Forecast, Metric, Param, Params, PlannedEvent, ReadyTime, Replicas, Request, Response,
    Workload,
};
pub use policy::Policy;

/// The engine's internal steps that the fuzz targets drive directly; not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::guard::check;
    pub use crate::policy::{decode_response, MAX_RESPONSE_DEPTH};
}
pub use sandbox::{Level, Limits, LogLine, Modes};
pub use source::Source;
pub use supervisor::{
    BreakerState, Fallback, FallbackCause, Supervised, Supervisor, SupervisorConfig,
    SupervisorStats,
};
pub use text::escape_controls;
pub use worker::{run_compile_worker, CompileWorker};

/// The names of the built-in policies, default first.
pub fn builtin_names() -> Vec<&'static str> {
    #[cfg(feature = "builtin")]
    return leadtime_builtin::BUILTINS.iter().map(|b| b.name).collect();
    #[cfg(not(feature = "builtin"))]
    return Vec::new();
}

/// The built-in policies: (name, one-line summary), default first.
pub fn builtins() -> Vec<(&'static str, &'static str)> {
    #[cfg(feature = "builtin")]
    return leadtime_builtin::BUILTINS
        .iter()
        .map(|b| (b.name, b.summary))
        .collect();
    #[cfg(not(feature = "builtin"))]
    return Vec::new();
}

/// The wasm bytes of a built-in policy.
pub fn builtin_wasm(name: &str) -> Option<&'static [u8]> {
    #[cfg(feature = "builtin")]
    return leadtime_builtin::get(name).map(|b| b.wasm);
    #[cfg(not(feature = "builtin"))]
    return {
        let _ = name;
        None
    };
}
