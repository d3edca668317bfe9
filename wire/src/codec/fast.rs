//! A fast MessagePack decoder for [`Request`], the one payload big enough for decoding to matter:
//! a 14-day window at 1-minute steps is 20,160 values, and serde spends ~200 wasm instructions on
//! each. This reads the form hosts send (maps with named fields) with `rmp`'s low-level reader and
//! gives up (`None`) on anything else, valid or not; `codec::request_from_msgpack` then decodes
//! with serde, so every result and error is serde's. Whatever it accepts, it must decode exactly
//! as `rmp_serde` with the derived `Deserialize` impls would: each function says which serde
//! behaviour it mirrors.

use crate::{Metric, Param, Params, PlannedEvent, ReadyTime, Replicas, Request, Workload};
use rmp::decode;
use rmp::Marker;
use std::string::String;
use std::vec::Vec;

#[cfg(test)]
mod tests;

/// The float64 marker, as a byte to match on.
const F64: u8 = Marker::F64.to_u8();

/// Unknown fields nested deeper than this are left to serde (whose limit is 1024).
const MAX_SKIP_DEPTH: u32 = 32;

/// Decodes a request in the form hosts send, or `None` if serde must decide. Like
/// `rmp_serde::from_slice`, bytes after the request are ignored.
pub(crate) fn request(bytes: &[u8]) -> Option<Request> {
    let mut rd = bytes;
    let rd = &mut rd;
    let mut abi_version = None;
    let mut now = None;
    let mut workload = None;
    let mut replicas = None;
    let mut metrics = None;
    let mut ready_times = None;
    let mut events = None;
    let mut params = None;
    let mut state = None;
    for _ in 0..decode::read_map_len(rd).ok()? {
        match key(rd)? {
            b"abi_version" => once(&mut abi_version, decode::read_int(rd).ok()?)?,
            b"now" => once(&mut now, decode::read_int(rd).ok()?)?,
            b"workload" => once(&mut workload, read_workload(rd)?)?,
            b"replicas" => once(&mut replicas, read_replicas(rd)?)?,
            b"metrics" => once(&mut metrics, list(rd, read_metric)?)?,
            b"ready_times" => once(&mut ready_times, list(rd, read_ready_time)?)?,
            b"events" => once(&mut events, list(rd, read_event)?)?,
            b"params" => once(&mut params, read_params(rd)?)?,
            b"state" => once(&mut state, read_state(rd)?)?,
            _ => skip(rd, 0)?,
        }
    }
    Some(Request {
        abi_version: abi_version?,
        now: now?,
        workload: workload.unwrap_or_default(),
        replicas: replicas?,
        metrics: metrics.unwrap_or_default(),
        ready_times: ready_times.unwrap_or_default(),
        events: events.unwrap_or_default(),
        params: params.unwrap_or_default(),
        state: state.unwrap_or_default(),
    })
}

fn read_workload(rd: &mut &[u8]) -> Option<Workload> {
    let mut namespace = None;
    let mut name = None;
    for _ in 0..decode::read_map_len(rd).ok()? {
        match key(rd)? {
            b"namespace" => once(&mut namespace, text(rd)?)?,
            b"name" => once(&mut name, text(rd)?)?,
            _ => skip(rd, 0)?,
        }
    }
    Some(Workload {
        namespace: namespace.unwrap_or_default(),
        name: name.unwrap_or_default(),
    })
}

fn read_replicas(rd: &mut &[u8]) -> Option<Replicas> {
    let mut current = None;
    let mut ready = None;
    let mut min = None;
    let mut max = None;
    for _ in 0..decode::read_map_len(rd).ok()? {
        match key(rd)? {
            b"current" => once(&mut current, decode::read_int(rd).ok()?)?,
            b"ready" => once(&mut ready, decode::read_int(rd).ok()?)?,
            b"min" => once(&mut min, decode::read_int(rd).ok()?)?,
            b"max" => once(&mut max, decode::read_int(rd).ok()?)?,
            _ => skip(rd, 0)?,
        }
    }
    Some(Replicas {
        current: current?,
        ready: ready?,
        min: min?,
        max: max?,
    })
}

fn read_metric(rd: &mut &[u8]) -> Option<Metric> {
    let mut name = None;
    let mut target_per_pod = None;
    let mut interval_seconds = None;
    let mut end = None;
    let mut values = None;
    for _ in 0..decode::read_map_len(rd).ok()? {
        match key(rd)? {
            b"name" => once(&mut name, text(rd)?)?,
            b"target_per_pod" => once(&mut target_per_pod, number(rd, None)?)?,
            b"interval_seconds" => once(&mut interval_seconds, number(rd, None)?)?,
            b"end" => once(&mut end, decode::read_int(rd).ok()?)?,
            b"values" => once(&mut values, read_values(rd)?)?,
            _ => skip(rd, 0)?,
        }
    }
    Some(Metric {
        name: name?,
        target_per_pod: target_per_pod?,
        interval_seconds: interval_seconds?,
        end: end?,
        values: values?,
    })
}

fn read_ready_time(rd: &mut &[u8]) -> Option<ReadyTime> {
    let mut started_at = None;
    let mut ready_seconds = None;
    for _ in 0..decode::read_map_len(rd).ok()? {
        match key(rd)? {
            b"started_at" => once(&mut started_at, decode::read_int(rd).ok()?)?,
            b"ready_seconds" => once(&mut ready_seconds, number(rd, None)?)?,
            _ => skip(rd, 0)?,
        }
    }
    Some(ReadyTime {
        started_at: started_at?,
        ready_seconds: ready_seconds?,
    })
}

/// Serde's `BTreeMap` visitor inserts each entry in turn, so a repeated name keeps its last value.
fn read_event(rd: &mut &[u8]) -> Option<PlannedEvent> {
    let mut name = None;
    let mut start = None;
    let mut end = None;
    let mut min_replicas = None;
    let mut factor = None;
    for _ in 0..decode::read_map_len(rd).ok()? {
        match key(rd)? {
            b"name" => once(&mut name, text(rd)?)?,
            b"start" => once(&mut start, decode::read_int(rd).ok()?)?,
            b"end" => once(&mut end, decode::read_int(rd).ok()?)?,
            b"min_replicas" => once(&mut min_replicas, decode::read_int(rd).ok()?)?,
            b"factor" => once(&mut factor, number(rd, None)?)?,
            _ => skip(rd, 0)?,
        }
    }
    Some(PlannedEvent {
        name: name?,
        start: start?,
        end: end?,
        min_replicas,
        factor,
    })
}

fn read_params(rd: &mut &[u8]) -> Option<Params> {
    let mut params = Params::new();
    for _ in 0..decode::read_map_len(rd).ok()? {
        let name = text(rd)?;
        params.insert(name, read_param(rd)?);
    }
    Some(params)
}

/// The untagged `Param` tries bool, then f64 (which takes any integer or float), then text.
fn read_param(rd: &mut &[u8]) -> Option<Param> {
    Some(match Marker::from_u8(*rd.first()?) {
        Marker::True | Marker::False => Param::Bool(decode::read_bool(rd).ok()?),
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => Param::Text(text(rd)?),
        _ => Param::Number(number(rd, None)?),
    })
}

/// The hot loop. `values.rs` reads each element as an `Option<f64>`, nil being NaN.
fn read_values(rd: &mut &[u8]) -> Option<Vec<f64>> {
    let len = decode::read_array_len(rd).ok()? as usize;
    // Each value takes at least a byte: a longer claimed length is a bad payload and must not
    // reserve memory.
    if len > rd.len() {
        return None;
    }
    // Hosts write only float64s: nine bytes each, the marker then the bits big-endian.
    if let Some((run, rest)) = len.checked_mul(9).and_then(|n| rd.split_at_checked(n)) {
        let mut values = vec![0.0; len];
        if read_f64_run(run, &mut values) {
            *rd = rest;
            return Some(values);
        }
    }
    // Anything else (nil, integers, float32), one value at a time.
    let mut values = Vec::with_capacity(len);
    for _ in 0..len {
        values.push(number(rd, Some(f64::NAN))?);
    }
    Some(values)
}

/// Reads `out.len()` float64s from `run` (nine bytes each) and says whether every marker was a
/// float64's. Values go four at a time and the markers are checked all at once after, so the
/// loop has one branch per 36 bytes.
// In wasm, `be_f64x2`'s SIMD shuffle only inlines into a function with SIMD enabled.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn read_f64_run(run: &[u8], out: &mut [f64]) -> bool {
    let mut floats = true;
    let quads = run.chunks_exact(36);
    let rest = quads.remainder();
    let mut outs = out.chunks_exact_mut(4);
    for (quad, out) in quads.zip(&mut outs) {
        floats &= (quad[0] == F64) & (quad[9] == F64) & (quad[18] == F64) & (quad[27] == F64);
        // Quads are 36 bytes: the defaults are never used.
        let [a, b] = be_f64x2(
            quad[1..9].try_into().unwrap_or_default(),
            quad[10..18].try_into().unwrap_or_default(),
        );
        let [c, d] = be_f64x2(
            quad[19..27].try_into().unwrap_or_default(),
            quad[28..36].try_into().unwrap_or_default(),
        );
        out.copy_from_slice(&[a, b, c, d]);
    }
    for (value, out) in rest.chunks_exact(9).zip(outs.into_remainder()) {
        floats &= value[0] == F64;
        *out = be_f64x2(value[1..].try_into().unwrap_or_default(), [0; 8])[0];
    }
    floats
}

/// Two floats from their big-endian bits.
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn be_f64x2(a: [u8; 8], b: [u8; 8]) -> [f64; 2] {
    [f64::from_be_bytes(a), f64::from_be_bytes(b)]
}

/// Two floats from their big-endian bits. wasm has no byte swap instruction: LLVM's scalar one is
/// ~40 instructions, where one SIMD shuffle swaps two values. (Hosts run policies with SIMD on:
/// wasmtime's default.)
#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn be_f64x2(a: [u8; 8], b: [u8; 8]) -> [f64; 2] {
    use core::arch::wasm32::{f64x2_extract_lane, i8x16_shuffle, u64x2};
    let v = u64x2(u64::from_le_bytes(a), u64::from_le_bytes(b));
    let swapped = i8x16_shuffle::<7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8>(v, v);
    [
        f64x2_extract_lane::<0>(swapped),
        f64x2_extract_lane::<1>(swapped),
    ]
}

/// `serde_bytes` reads an absent state from nil; the bytes come as bin.
fn read_state(rd: &mut &[u8]) -> Option<Option<Vec<u8>>> {
    let mut peek = *rd;
    if decode::read_nil(&mut peek).is_ok() {
        *rd = peek;
        return Some(None);
    }
    let len = decode::read_bin_len(rd).ok()?;
    Some(Some(take(rd, len)?.to_vec()))
}

/// Stores a field's value; `None` if it is the field's second, which serde rejects as a duplicate.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    slot.replace(value).is_none().then_some(())
}

/// A field name's bytes. Derived impls compare names as bytes (serde hands them invalid UTF-8 as
/// bytes), so no UTF-8 check is needed; non-str keys (integers are field indices) are serde's.
fn key<'a>(rd: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = decode::read_str_len(rd).ok()?;
    take(rd, len)
}

/// A str as a `String`; serde fails on invalid UTF-8 (and also takes bin, which is left to it).
fn text(rd: &mut &[u8]) -> Option<String> {
    let len = decode::read_str_len(rd).ok()?;
    let bytes = take(rd, len)?;
    Some(core::str::from_utf8(bytes).ok()?.into())
}

/// The next `len` bytes.
fn take<'a>(rd: &mut &'a [u8], len: u32) -> Option<&'a [u8]> {
    let (head, rest) = rd.split_at_checked(usize::try_from(len).ok()?)?;
    *rd = rest;
    Some(head)
}

/// The next `N` bytes, for a fixed-width number.
#[inline(always)]
fn bytes<const N: usize>(rd: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = rd.split_first_chunk::<N>()?;
    *rd = rest;
    Some(*head)
}

/// An array, each element read by `item` (serde's `Vec` visitor: a seq, not a map or bin).
fn list<'a, T>(
    rd: &mut &'a [u8],
    mut item: impl FnMut(&mut &'a [u8]) -> Option<T>,
) -> Option<Vec<T>> {
    let len = decode::read_array_len(rd).ok()?;
    // Every element takes at least a byte: a longer claimed length is a truncated or bad payload,
    // and must not reserve memory.
    if len as usize > rd.len() {
        return None;
    }
    let mut out = Vec::with_capacity(len as usize);
    for _ in 0..len {
        out.push(item(rd)?);
    }
    Some(out)
}

/// A number of any MessagePack width as an f64, converted with `as` like serde's f64 visitor, or
/// `nil` if it is nil (`None` where nil is not a number).
fn number(rd: &mut &[u8], nil: Option<f64>) -> Option<f64> {
    let (&byte, rest) = rd.split_first()?;
    *rd = rest;
    Some(match Marker::from_u8(byte) {
        Marker::F64 => f64::from_be_bytes(bytes(rd)?),
        Marker::Null => nil?,
        Marker::FixPos(v) => v as f64,
        Marker::FixNeg(v) => v as f64,
        Marker::F32 => f32::from_be_bytes(bytes(rd)?) as f64,
        Marker::U8 => u8::from_be_bytes(bytes(rd)?) as f64,
        Marker::U16 => u16::from_be_bytes(bytes(rd)?) as f64,
        Marker::U32 => u32::from_be_bytes(bytes(rd)?) as f64,
        Marker::U64 => u64::from_be_bytes(bytes(rd)?) as f64,
        Marker::I8 => i8::from_be_bytes(bytes(rd)?) as f64,
        Marker::I16 => i16::from_be_bytes(bytes(rd)?) as f64,
        Marker::I32 => i32::from_be_bytes(bytes(rd)?) as f64,
        Marker::I64 => i64::from_be_bytes(bytes(rd)?) as f64,
        _ => return None,
    })
}

/// Skips the value of an unknown field, as serde's `IgnoredAny` does: anything but ext types
/// (left to serde) and the reserved marker. Strings need not be UTF-8: serde ignores them as bytes.
fn skip(rd: &mut &[u8], depth: u32) -> Option<()> {
    match Marker::from_u8(*rd.first()?) {
        Marker::True | Marker::False => {
            decode::read_bool(rd).ok()?;
        }
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            let len = decode::read_str_len(rd).ok()?;
            take(rd, len)?;
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let len = decode::read_bin_len(rd).ok()?;
            take(rd, len)?;
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let len = decode::read_array_len(rd).ok()?;
            for _ in 0..len {
                skip(rd, deeper(depth)?)?;
            }
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let len = decode::read_map_len(rd).ok()?;
            for _ in 0..len {
                skip(rd, deeper(depth)?)?;
                skip(rd, deeper(depth)?)?;
            }
        }
        // Nil and numbers; `number` refuses ext types and the reserved marker.
        _ => {
            number(rd, Some(0.0))?;
        }
    }
    Some(())
}

/// One level deeper, or `None` past [`MAX_SKIP_DEPTH`].
fn deeper(depth: u32) -> Option<u32> {
    (depth < MAX_SKIP_DEPTH).then_some(depth + 1)
}
