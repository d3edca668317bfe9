//! A Rust policy that answers with the windows it was given (never a built-in).
//!
//! `state` is every metric's values as little-endian f64 bits, one after another, so a test can
//! check that what the SDK's decoder hands a policy is bit for bit what the host sent; `replicas`
//! is the number of values.

use leadtime_guest::{export_policy, Request, Response};

/// The policy: see the crate docs.
pub fn decide(req: &Request) -> Result<Response, String> {
    let values = req.metrics.iter().flat_map(|m| &m.values);
    let state: Vec<u8> = values.clone().flat_map(|v| v.to_le_bytes()).collect();
    let count = u32::try_from(values.count()).map_err(|e| e.to_string())?;
    let mut response = Response::new(count, "echo");
    response.state = Some(state);
    Ok(response)
}

export_policy!(decide);
