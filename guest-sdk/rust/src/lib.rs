//! Write a leadtime scaling policy in Rust.
//!
//! ```ignore
//! use leadtime_guest::{export_policy, Request, Response};
//!
//! fn decide(req: &Request) -> Result<Response, String> {
//!     let m = req.metrics.first().ok_or("no metric")?;
//!     let load = m.last().unwrap_or(0.0);
//!     Ok(Response::new((load / m.target_per_pod).ceil() as u32, "enough pods for the load"))
//! }
//! export_policy!(decide);
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` (crate type `cdylib`). The
//! macro writes the ABI exports of `docs/ABI.md`: the request arrives decoded, the response leaves
//! encoded, an `Err` becomes the response's `error`, and a panic becomes a trap whose message the
//! host reports.

pub use leadtime_wire::{
    codec, stats, Forecast, Metric, Param, Params, ParamsExt, PlannedEvent, ReadyTime, Replicas,
    Request, Response, Workload, ABI_VERSION, DEFAULT_READY_SECONDS, READY_QUANTILE,
};

#[doc(hidden)]
pub mod rt;

/// Log levels understood by the host's `log` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// Fine detail.
    Debug = 0,
    /// Normal events.
    Info = 1,
    /// Something odd.
    Warn = 2,
    /// Something failed; the host keeps the last one as the error's detail.
    Error = 3,
}

/// Sends a line to the host's log (a no-op when built natively).
pub fn log(level: Level, message: &str) {
    rt::host_log(level as i32, message);
}

/// What a policy's `decide` function may return.
pub trait IntoResponse {
    /// The response to encode.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl<E: core::fmt::Display> IntoResponse for Result<Response, E> {
    fn into_response(self) -> Response {
        self.unwrap_or_else(|e| Response::error(e.to_string()))
    }
}

/// Writes the ABI exports for a `decide` function and, optionally, an `init` function that
/// checks the parameters once when the host loads the policy.
///
/// `decide: fn(&Request) -> Response` or `-> Result<Response, impl Display>`;
/// `init: fn(&Params) -> Result<(), impl Display>`.
#[macro_export]
macro_rules! export_policy {
    ($decide:path) => {
        $crate::export_policy!($decide, init = $crate::rt::accept_params);
    };
    ($decide:path, init = $init:path) => {
        #[no_mangle]
        pub extern "C" fn leadtime_abi_version() -> i32 {
            $crate::ABI_VERSION as i32
        }

        #[no_mangle]
        pub extern "C" fn leadtime_alloc(len: i32) -> i32 {
            $crate::rt::alloc(len)
        }

        #[no_mangle]
        pub extern "C" fn leadtime_init(ptr: i32, len: i32) -> i32 {
            $crate::rt::init(ptr, len, $init)
        }

        #[no_mangle]
        pub extern "C" fn leadtime_decide(ptr: i32, len: i32) -> i64 {
            $crate::rt::decide(ptr, len, $decide)
        }
    };
}
