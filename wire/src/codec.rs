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

/// Encodes `request` as MessagePack into `out` (cleared first), with `params` and `state` in
/// place of the request's own when given; the bytes are `to_msgpack`'s for the request it makes.
///
/// The host's side of every call, so it takes no copy of the (possibly large) metric windows,
/// and writes them itself: nine bytes a value into space reserved once. Serde's writer reloads
/// and stores the buffer's length twice a value: 2.7 times slower, and in some processes on a
/// shared VM nine times, those reloads waiting on the stores before them for the whole run.
/// A field added to `Request` or `Metric` must be added here too:
/// `requests_encode_as_serde_encodes_them` fails until it is.
pub fn request_to_msgpack_into(
    request: &crate::Request,
    params: Option<&crate::Params>,
    state: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.clear();
    let state = state.or(request.state.as_deref());
    let mut ser = rmp_serde::Serializer::new(out).with_struct_map();
    // `Request`'s fields in its order; `state` is skipped when absent.
    rmp::encode::write_map_len(ser.get_mut(), if state.is_some() { 8 } else { 7 })
        .map_err(encode_error)?;
    field(&mut ser, "abi_version", &request.abi_version)?;
    field(&mut ser, "now", &request.now)?;
    field(&mut ser, "workload", &request.workload)?;
    field(&mut ser, "replicas", &request.replicas)?;
    write_metrics(ser.get_mut(), &request.metrics)?;
    field(&mut ser, "ready_times", &request.ready_times)?;
    field(&mut ser, "params", params.unwrap_or(&request.params))?;
    if let Some(state) = state {
        field(&mut ser, "state", serde_bytes::Bytes::new(state))?;
    }
    Ok(())
}

/// One field of a struct map: its name, then its value as serde writes it.
fn field<W: std::io::Write, C: rmp_serde::config::SerializerConfig, T: Serialize + ?Sized>(
    ser: &mut rmp_serde::Serializer<W, C>,
    name: &str,
    value: &T,
) -> Result<(), CodecError> {
    rmp::encode::write_str(ser.get_mut(), name).map_err(encode_error)?;
    value.serialize(ser).map_err(|e| CodecError(e.to_string()))
}

/// The `metrics` field as the derived `Serialize` of `Metric` writes it.
fn write_metrics<W: std::io::Write + AsMut<Vec<u8>>>(
    out: &mut W,
    metrics: &[crate::Metric],
) -> Result<(), CodecError> {
    use rmp::encode;
    encode::write_str(out, "metrics").map_err(encode_error)?;
    encode::write_array_len(out, length(metrics.len())?).map_err(encode_error)?;
    for m in metrics {
        encode::write_map_len(out, 5).map_err(encode_error)?;
        encode::write_str(out, "name").map_err(encode_error)?;
        encode::write_str(out, &m.name).map_err(encode_error)?;
        encode::write_str(out, "target_per_pod").map_err(encode_error)?;
        encode::write_f64(out, m.target_per_pod).map_err(encode_error)?;
        encode::write_str(out, "interval_seconds").map_err(encode_error)?;
        encode::write_f64(out, m.interval_seconds).map_err(encode_error)?;
        encode::write_str(out, "end").map_err(encode_error)?;
        encode::write_sint(out, m.end).map_err(encode_error)?;
        encode::write_str(out, "values").map_err(encode_error)?;
        encode::write_array_len(out, length(m.values.len())?).map_err(encode_error)?;
        // Each value as serde writes an f64: the float64 marker, then the bits big-endian.
        let out = out.as_mut();
        let start = out.len();
        out.resize(start + 9 * m.values.len(), 0);
        for (slot, v) in out[start..].chunks_exact_mut(9).zip(&m.values) {
            slot[0] = rmp::Marker::F64.to_u8();
            slot[1..].copy_from_slice(&v.to_be_bytes());
        }
    }
    Ok(())
}

/// A collection's length as MessagePack takes it (serde fails the same way on longer ones).
fn length(len: usize) -> Result<u32, CodecError> {
    u32::try_from(len)
        .map_err(|_| CodecError(format!("{len} items: MessagePack takes at most 2^32 - 1")))
}

fn encode_error<E: core::fmt::Display>(e: E) -> CodecError {
    CodecError(e.to_string())
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

    /// The hand-written windows must be byte for byte serde's, whatever the request holds.
    #[test]
    fn requests_encode_as_serde_encodes_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let special = [
            f64::NAN,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            f64::MAX,
        ];
        let ends = [
            0,
            -1,
            127,
            128,
            -33,
            65_536,
            i64::MIN,
            i64::MAX,
            1_700_000_000_000,
        ];
        for case in 0..200 {
            let mut req = request(if case % 3 == 0 {
                None
            } else {
                Some(vec![9; case])
            });
            req.metrics = (0..case % 4)
                .map(|i| Metric {
                    name: ["", "rps", "équipe-ü 🚀", &"x".repeat(40)][(case + i) % 4].into(),
                    target_per_pod: special[(case + i) % special.len()],
                    interval_seconds: rng.random(),
                    end: ends[(case + i) % ends.len()],
                    values: (0..[0, 1, 2, 9, 15, 16, 17, 70_000][(case + i) % 8])
                        .map(|j| {
                            if rng.random_ratio(1, 10) {
                                special[j % special.len()]
                            } else {
                                f64::from_bits(rng.random())
                            }
                        })
                        .collect(),
                })
                .collect();
            let mut out = Vec::new();
            request_to_msgpack_into(&req, None, None, &mut out).unwrap();
            let lengths: Vec<usize> = req.metrics.iter().map(|m| m.values.len()).collect();
            assert!(
                out == to_msgpack(&req).unwrap(),
                "case {case}, windows {lengths:?}"
            );
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
