//! The runtime behind `export_policy!`: buffers, decoding, panics. Not a public API.

use crate::{IntoResponse, Params, Request, Response};
use std::cell::RefCell;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "leadtime")]
extern "C" {
    #[link_name = "log"]
    fn leadtime_log(level: i32, ptr: i32, len: i32);
}

/// Sends one log line to the host.
pub fn host_log(level: i32, message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host only reads `len` bytes at `ptr`, which is a live &str.
    unsafe {
        leadtime_log(level, message.as_ptr() as i32, message.len() as i32)
    };
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

thread_local! {
    // The buffer `alloc` hands the host for each payload (reused from call to call), and the
    // last response, kept alive until the host has copied it out (the next call replaces it).
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            host_log(
                crate::Level::Error as i32,
                &format!("policy panicked: {info}"),
            );
        }))
    });
}

/// `leadtime_alloc`: a buffer of `len` bytes for the host to write the next payload into.
pub fn alloc(len: i32) -> i32 {
    install_panic_hook();
    INPUT.with_borrow_mut(|buf| {
        // The buffer is kept between calls and only its new bytes are zeroed: the host overwrites
        // them all, and in wasm zeroing costs fuel per byte (a 14-day request is 180 KB).
        buf.resize(len.max(0) as usize, 0);
        buf.as_mut_ptr() as i32
    })
}

/// Runs `f` on the `len` bytes the host wrote at `ptr`.
fn with_input<T>(ptr: i32, len: i32, f: impl FnOnce(&[u8]) -> T) -> T {
    INPUT.with_borrow(|buf| {
        // The host writes into the buffer `alloc` returned; anything else is a host bug.
        assert!(
            ptr == buf.as_ptr() as i32 && len as usize <= buf.len(),
            "payload not in the alloc buffer"
        );
        f(&buf[..len as usize])
    })
}

/// `init` for policies that take any parameters.
pub fn accept_params(_: &Params) -> Result<(), String> {
    Ok(())
}

/// `leadtime_init`: decodes the parameters and runs the policy's check; 0 means accepted.
pub fn init<E: core::fmt::Display>(ptr: i32, len: i32, f: fn(&Params) -> Result<(), E>) -> i32 {
    install_panic_hook();
    let result = with_input(ptr, len, crate::codec::from_msgpack::<Params>)
        .map_err(|e| format!("params: {e}"))
        .and_then(|p| f(&p).map_err(|e| e.to_string()));
    match result {
        Ok(()) => 0,
        Err(e) => {
            host_log(crate::Level::Error as i32, &e);
            1
        }
    }
}

/// `leadtime_decide`: decodes the request, runs the policy, encodes the response and returns
/// its address in the high 32 bits and its length in the low 32.
pub fn decide<R: IntoResponse>(ptr: i32, len: i32, f: fn(&Request) -> R) -> i64 {
    install_panic_hook();
    let response = match with_input(ptr, len, crate::codec::request_from_msgpack) {
        Ok(req) => f(&req).into_response(),
        Err(e) => Response::error(format!("request: {e}")),
    };
    OUTPUT.with_borrow_mut(|out| {
        out.clear();
        if let Err(e) = crate::codec::to_msgpack_into(&response, out) {
            out.clear();
            let _ = crate::codec::to_msgpack_into(&Response::error(e.to_string()), out);
        }
        ((out.as_ptr() as u32 as i64) << 32) | out.len() as u32 as i64
    })
}

/// Runs a policy's `decide` natively through the same codec as in wasm, for authors' unit tests.
pub fn decide_native<R: IntoResponse>(req: &Request, f: fn(&Request) -> R) -> Response {
    let bytes = crate::codec::to_msgpack(req).expect("request encodes");
    let req = crate::codec::request_from_msgpack(&bytes).expect("request decodes");
    f(&req).into_response()
}
