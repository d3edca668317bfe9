//! The host's request encoder: a request written straight into the buffer a policy allocated.

use super::CodecError;
use serde::Serialize;
use std::format;
use std::vec::Vec;

/// Encodes `request` as MessagePack into `out` (cleared first), with `params` and `state` in
/// place of the request's own when given; the bytes are `to_msgpack`'s for the request it makes.
pub fn request_to_msgpack_into(
    request: &crate::Request,
    params: Option<&crate::Params>,
    state: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let mut frame = RequestFrame::default();
    frame.encode(request, params, state)?;
    out.clear();
    out.resize(frame.len(), 0);
    frame.write(request, out)
}

/// A request encoded all but its metric windows' values, which [`RequestFrame::write`] puts
/// where the bytes finally go: for a host, straight into the buffer the policy allocated, so the
/// bulk of a request is written once and never copied.
///
/// Serde writes the rest; the values are written here, nine bytes each into space reserved once.
/// (Serde's writer reloads and stores the buffer's length twice a value: 2.7 times slower, and
/// in some processes on a shared VM nine times, those reloads waiting on the stores before them
/// for the whole run.) A field added to `Request` or `Metric` must be added here too:
/// `requests_encode_as_serde_encodes_them` fails until it is.
#[derive(Debug, Default)]
pub struct RequestFrame {
    /// Everything but the values.
    envelope: Vec<u8>,
    /// Where each window's values go: (offset in `envelope`, metric index, value count).
    windows: Vec<(usize, usize, usize)>,
}

impl RequestFrame {
    /// Encodes `request` but its windows' values, with `params` and `state` in place of the
    /// request's own when given; replaces what the frame held.
    pub fn encode(
        &mut self,
        request: &crate::Request,
        params: Option<&crate::Params>,
        state: Option<&[u8]>,
    ) -> Result<(), CodecError> {
        self.envelope.clear();
        self.windows.clear();
        let state = state.or(request.state.as_deref());
        let mut ser = rmp_serde::Serializer::new(&mut self.envelope).with_struct_map();
        // `Request`'s fields in its order; `events` and `state` are skipped when absent.
        let fields = 7 + u32::from(!request.events.is_empty()) + u32::from(state.is_some());
        rmp::encode::write_map_len(ser.get_mut(), fields).map_err(encode_error)?;
        field(&mut ser, "abi_version", &request.abi_version)?;
        field(&mut ser, "now", &request.now)?;
        field(&mut ser, "workload", &request.workload)?;
        field(&mut ser, "replicas", &request.replicas)?;
        write_metrics(ser.get_mut(), &request.metrics, &mut self.windows)?;
        field(&mut ser, "ready_times", &request.ready_times)?;
        if !request.events.is_empty() {
            field(&mut ser, "events", &request.events)?;
        }
        field(&mut ser, "params", params.unwrap_or(&request.params))?;
        if let Some(state) = state {
            field(&mut ser, "state", serde_bytes::Bytes::new(state))?;
        }
        Ok(())
    }

    /// The length of the whole encoding.
    pub fn len(&self) -> usize {
        self.envelope.len() + self.windows.iter().map(|w| 9 * w.2).sum::<usize>()
    }

    /// Whether nothing is encoded yet.
    pub fn is_empty(&self) -> bool {
        self.envelope.is_empty()
    }

    /// Writes the whole encoding into `out`, which must be [`RequestFrame::len`] bytes, taking
    /// the values from `request`: the one the frame was encoded from.
    pub fn write(&self, request: &crate::Request, out: &mut [u8]) -> Result<(), CodecError> {
        if out.len() != self.len() {
            return Err(CodecError(format!(
                "{} bytes to write a request of {}",
                out.len(),
                self.len()
            )));
        }
        let (mut from, mut to) = (0, 0);
        for &(at, metric, count) in &self.windows {
            let values = match request.metrics.get(metric) {
                Some(m) if m.values.len() == count => &m.values,
                _ => {
                    return Err(CodecError(
                        "the request changed since it was encoded".into(),
                    ))
                }
            };
            out[to..to + at - from].copy_from_slice(&self.envelope[from..at]);
            to += at - from;
            // Each value as serde writes an f64: the float64 marker, then the bits big-endian.
            for (slot, v) in out[to..to + 9 * count].chunks_exact_mut(9).zip(values) {
                slot[0] = rmp::Marker::F64.to_u8();
                slot[1..].copy_from_slice(&v.to_be_bytes());
            }
            to += 9 * count;
            from = at;
        }
        out[to..].copy_from_slice(&self.envelope[from..]);
        Ok(())
    }
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

/// The `metrics` field as the derived `Serialize` of `Metric` writes it, but each window's
/// values, whose place (offset, metric, count) goes to `windows`.
fn write_metrics<W: std::io::Write + AsRef<Vec<u8>>>(
    out: &mut W,
    metrics: &[crate::Metric],
    windows: &mut Vec<(usize, usize, usize)>,
) -> Result<(), CodecError> {
    use rmp::encode;
    encode::write_str(out, "metrics").map_err(encode_error)?;
    encode::write_array_len(out, length(metrics.len())?).map_err(encode_error)?;
    for (i, m) in metrics.iter().enumerate() {
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
        windows.push((out.as_ref().len(), i, m.values.len()));
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
    use crate::codec::to_msgpack;
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
            events: vec![crate::PlannedEvent {
                name: "sale".into(),
                start: 10,
                end: 20,
                min_replicas: None,
                factor: Some(3.0),
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
    fn a_frame_refuses_a_wrong_buffer_or_another_request() {
        let req = request(None);
        let mut frame = RequestFrame::default();
        frame.encode(&req, None, None).unwrap();
        let mut out = vec![0; frame.len() + 1];
        let err = frame.write(&req, &mut out).unwrap_err();
        assert!(err.0.contains("bytes to write a request of"), "{err}");
        let mut other = req.clone();
        other.metrics[0].values.push(1.0);
        let err = frame.write(&other, &mut out[1..]).unwrap_err();
        assert!(err.0.contains("changed since it was encoded"), "{err}");
        frame.write(&req, &mut out[1..]).unwrap();
        assert_eq!(out[1..], to_msgpack(&req).unwrap());
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
