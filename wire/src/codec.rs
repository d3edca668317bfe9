//! MessagePack (the ABI's wire format) and JSON (the CLI's form) for the wire types.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::string::{String, ToString};
use std::vec::Vec;

/// A payload that could not be encoded or decoded, with serde's description of where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

/// Encodes `value` as MessagePack with named fields (maps, not arrays).
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    to_msgpack_into(value, &mut out)?;
    Ok(out)
}

/// Encodes `value` as MessagePack with named fields, appending to `out`.
pub fn to_msgpack_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let mut ser = rmp_serde::Serializer::new(out).with_struct_map();
    value
        .serialize(&mut ser)
        .map_err(|e| CodecError(e.to_string()))
}

/// Decodes MessagePack; fields may come as a map (named) or an array (positional).
pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    rmp_serde::from_slice(bytes).map_err(|e| CodecError(e.to_string()))
}

/// Decodes a [`crate::Request`] from MessagePack with the same result or error as
/// `from_msgpack::<Request>`, several times faster on large metric windows: the form hosts send
/// takes a dedicated decoder, anything else serde.
pub fn request_from_msgpack(bytes: &[u8]) -> Result<crate::Request, CodecError> {
    crate::fast::request(bytes).map_or_else(|| from_msgpack(bytes), Ok)
}

/// Encodes `value` as pretty JSON.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, CodecError> {
    serde_json::to_string_pretty(value).map_err(|e| CodecError(e.to_string()))
}

/// Decodes JSON; errors name the line and column.
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, CodecError> {
    serde_json::from_str(text).map_err(|e| CodecError(e.to_string()))
}

/// The fields of a [`crate::Request`] by reference, so that a host can send a request with other
/// params or state without cloning its (possibly large) metric windows. Must serialise exactly as
/// `Request` does: `request_view_encodes_like_request` checks it.
#[derive(serde::Serialize)]
struct RequestView<'a> {
    abi_version: u32,
    now: i64,
    workload: &'a crate::Workload,
    replicas: &'a crate::Replicas,
    metrics: &'a [crate::Metric],
    ready_times: &'a [crate::ReadyTime],
    params: &'a crate::Params,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a serde_bytes::Bytes>,
}

/// Encodes `request` as MessagePack into `out` (cleared first), with `params` and `state` in
/// place of the request's own when given.
pub fn request_to_msgpack_into(
    request: &crate::Request,
    params: Option<&crate::Params>,
    state: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.clear();
    let view = RequestView {
        abi_version: request.abi_version,
        now: request.now,
        workload: &request.workload,
        replicas: &request.replicas,
        metrics: &request.metrics,
        ready_times: &request.ready_times,
        params: params.unwrap_or(&request.params),
        state: state
            .or(request.state.as_deref())
            .map(serde_bytes::Bytes::new),
    };
    to_msgpack_into(&view, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metric, Param, Params, ReadyTime, Replicas, Request, Workload};

    fn request(state: Option<Vec<u8>>) -> Request {
        let mut params = Params::new();
        params.insert("q".into(), Param::Number(0.9));
        Request {
            abi_version: 1,
            now: 5,
            workload: Workload {
                namespace: "n".into(),
                name: "w".into(),
            },
            replicas: Replicas {
                current: 1,
                ready: 1,
                min: 0,
                max: 9,
            },
            metrics: vec![Metric {
                name: "m".into(),
                target_per_pod: 2.0,
                interval_seconds: 60.0,
                end: 5,
                values: vec![1.0, f64::NAN],
            }],
            ready_times: vec![ReadyTime {
                started_at: 1,
                ready_seconds: 3.0,
            }],
            params,
            state,
        }
    }

    #[test]
    fn request_view_encodes_like_request() {
        for state in [None, Some(vec![1, 2, 3])] {
            let req = request(state);
            let mut out = vec![0xff; 3];
            request_to_msgpack_into(&req, None, None, &mut out).unwrap();
            assert_eq!(out, to_msgpack(&req).unwrap());
        }
    }

    #[test]
    fn request_view_substitutes_params_and_state() {
        let req = request(None);
        let mut other = Params::new();
        other.insert("x".into(), Param::Bool(true));
        let mut out = Vec::new();
        request_to_msgpack_into(&req, Some(&other), Some(&[7]), &mut out).unwrap();
        let mut want = req.clone();
        want.params = other;
        want.state = Some(vec![7]);
        assert_eq!(out, to_msgpack(&want).unwrap());
    }
}
