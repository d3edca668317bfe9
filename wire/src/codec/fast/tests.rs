//! The fast decoder against serde. Generated requests, written in every form a host may use
//! (field order, integer widths, nil for NaN, unknown fields, defaulted fields left out), must take
//! the fast path and decode exactly as serde does; anything else (other forms, bad types,
//! truncated or mutated bytes) must get serde's exact answer from `request_from_msgpack`.

use super::request as fast;
use crate::codec::{from_msgpack, request_from_msgpack, to_msgpack};
use crate::{Metric, Param, Params, PlannedEvent, ReadyTime, Replicas, Request, Workload};
use rmp::encode;
use rmp::Marker;
use std::string::String;
use std::vec::Vec;
use std::{format, vec};

/// Seeded test data (ChaCha: the same on every platform), with the few draws the tests use.
struct Rng(rand_chacha::ChaCha8Rng);

impl Rng {
    fn new(seed: u64) -> Rng {
        use rand::SeedableRng;
        Rng(rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }

    fn next(&mut self) -> u64 {
        use rand::RngCore;
        self.0.next_u64()
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// Equal down to the bits of every float (NaN payloads and the sign of zero included): the
/// encoding writes each f64's bits and is otherwise one-to-one.
fn assert_same(got: &Request, want: &Request, what: &str) {
    assert_eq!(
        to_msgpack(got).unwrap(),
        to_msgpack(want).unwrap(),
        "{what}: got {got:?}, want {want:?}"
    );
}

/// `request_from_msgpack` answers exactly as serde does: the same request, or the same error.
fn assert_like_serde(bytes: &[u8], what: &str) {
    let want = from_msgpack::<Request>(bytes);
    match (request_from_msgpack(bytes), &want) {
        (Ok(got), Ok(want)) => assert_same(&got, want, what),
        (Err(got), Err(want)) => assert_eq!(got, *want, "{what}"),
        (got, want) => panic!("{what}: got {got:?}, serde gave {want:?}"),
    }
}

// ---- Generated requests ----

/// A float of the kinds that need care: NaNs (nil's NaN, negative, with a payload), infinities,
/// -0.0, whole numbers (which may travel as integers), f32-exact values, extremes.
fn float(rng: &mut Rng) -> f64 {
    match rng.below(14) {
        0 => f64::NAN,
        1 => -f64::NAN,
        2 => f64::from_bits(0x7ff8_0000_dead_beef),
        3 => f64::INFINITY,
        4 => f64::NEG_INFINITY,
        5 => -0.0,
        6 => rng.below(2001) as f64 - 1000.0,
        7 => rng.pick(&[
            9_007_199_254_740_992.0,
            -9_223_372_036_854_775_808.0,
            18_446_744_073_709_549_568.0,
            4_294_967_296.0,
            -2_147_483_649.0,
        ]),
        8 => (rng.below(1 << 24) as f32 / 1024.0) as f64,
        9 => rng.pick(&[f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324]),
        10 => f64::from_bits(rng.next()),
        _ => (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 2000.0 - 500.0,
    }
}

/// Mostly ordinary load values, sometimes a special one.
fn value(rng: &mut Rng) -> f64 {
    if rng.chance(70) {
        (rng.next() >> 11) as f64 / (1u64 << 40) as f64
    } else {
        float(rng)
    }
}

fn int(rng: &mut Rng) -> i64 {
    match rng.below(4) {
        0 => rng.pick(&[
            0,
            1,
            -1,
            127,
            128,
            -32,
            -33,
            255,
            256,
            -129,
            65_536,
            i64::MIN,
            i64::MAX,
        ]),
        1 => rng.below(200) as i64 - 100,
        2 => 1_700_000_000_000 + rng.below(1 << 32) as i64,
        _ => rng.next() as i64,
    }
}

fn count(rng: &mut Rng) -> u32 {
    match rng.below(3) {
        0 => rng.pick(&[0, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX]),
        1 => rng.below(100) as u32,
        _ => rng.next() as u32,
    }
}

fn text(rng: &mut Rng) -> String {
    let len = rng.pick(&[0, 3, 20, 40, 300]);
    (0..len)
        .map(|_| rng.pick(&['a', 'z', '_', '-', '7', 'é', '€', '𝄞']))
        .collect()
}

fn request(rng: &mut Rng, max_window: u64) -> Request {
    let metrics = (0..rng.below(4))
        .map(|_| {
            let len = if rng.chance(30) {
                rng.below(max_window + 1)
            } else {
                rng.below(300)
            };
            Metric {
                name: text(rng),
                target_per_pod: float(rng),
                interval_seconds: float(rng),
                end: int(rng),
                values: (0..len).map(|_| value(rng)).collect(),
            }
        })
        .collect();
    let mut params = Params::new();
    for _ in 0..rng.below(6) {
        let param = match rng.below(3) {
            0 => Param::Bool(rng.chance(50)),
            1 => Param::Number(float(rng)),
            _ => Param::Text(text(rng)),
        };
        params.insert(text(rng), param);
    }
    Request {
        abi_version: count(rng),
        now: int(rng),
        workload: if rng.chance(30) {
            Workload::default()
        } else {
            Workload {
                namespace: text(rng),
                name: text(rng),
            }
        },
        replicas: Replicas {
            current: count(rng),
            ready: count(rng),
            min: count(rng),
            max: count(rng),
        },
        metrics,
        ready_times: (0..rng.below(5))
            .map(|_| ReadyTime {
                started_at: int(rng),
                ready_seconds: float(rng),
            })
            .collect(),
        events: (0..rng.below(3))
            .map(|_| PlannedEvent {
                name: text(rng),
                start: int(rng),
                end: int(rng),
                min_replicas: rng.chance(50).then(|| count(rng)),
                factor: rng.chance(50).then(|| float(rng)),
            })
            .collect(),
        params,
        state: rng.chance(50).then(|| {
            (0..rng.pick(&[0, 5, 300]))
                .map(|_| rng.next() as u8)
                .collect()
        }),
    }
}

/// Writes requests as MessagePack in any form a host may choose, with some unknown fields.
struct Writer {
    rng: Rng,
    out: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bin,
    Array,
    Map,
}

impl Writer {
    /// A str, bin, array or map header for `len`, in any width that fits.
    fn len(&mut self, kind: Kind, len: usize) {
        let (fix, w8, w16, w32) = match kind {
            Kind::Str => (
                (len < 32).then_some(Marker::FixStr(len as u8)),
                Some(Marker::Str8),
                Marker::Str16,
                Marker::Str32,
            ),
            Kind::Bin => (None, Some(Marker::Bin8), Marker::Bin16, Marker::Bin32),
            Kind::Array => (
                (len < 16).then_some(Marker::FixArray(len as u8)),
                None,
                Marker::Array16,
                Marker::Array32,
            ),
            Kind::Map => (
                (len < 16).then_some(Marker::FixMap(len as u8)),
                None,
                Marker::Map16,
                Marker::Map32,
            ),
        };
        let mut forms = vec![(w32, 4)];
        if len <= 0xffff {
            forms.push((w16, 2));
        }
        if let (Some(marker), true) = (w8, len <= 0xff) {
            forms.push((marker, 1));
        }
        if let Some(marker) = fix {
            forms.push((marker, 0));
        }
        let (marker, width) = self.rng.pick(&forms);
        self.out.push(marker.to_u8());
        self.out
            .extend_from_slice(&(len as u32).to_be_bytes()[4 - width..]);
    }

    fn str(&mut self, s: &[u8]) {
        self.len(Kind::Str, s.len());
        self.out.extend_from_slice(s);
    }

    /// An integer in any MessagePack integer form that holds it.
    fn int(&mut self, v: i128) {
        let out = &mut self.out;
        let mut forms: Vec<fn(&mut Vec<u8>, i128)> = Vec::new();
        if (0..=127).contains(&v) {
            forms.push(|o, v| encode::write_pfix(o, v as u8).unwrap());
        }
        if (-32..0).contains(&v) {
            forms.push(|o, v| encode::write_nfix(o, v as i8).unwrap());
        }
        if u8::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_u8(o, v as u8).unwrap());
        }
        if u16::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_u16(o, v as u16).unwrap());
        }
        if u32::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_u32(o, v as u32).unwrap());
        }
        if u64::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_u64(o, v as u64).unwrap());
        }
        if i8::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_i8(o, v as i8).unwrap());
        }
        if i16::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_i16(o, v as i16).unwrap());
        }
        if i32::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_i32(o, v as i32).unwrap());
        }
        if i64::try_from(v).is_ok() {
            forms.push(|o, v| encode::write_i64(o, v as i64).unwrap());
        }
        self.rng.pick(&forms)(out, v);
    }

    /// A float as float64, or in a form that decodes to the same bits: float32, an integer, or
    /// nil (where `nil_ok`) for the NaN that nil stands for.
    fn float(&mut self, v: f64, nil_ok: bool) {
        let whole = v.fract() == 0.0 && v >= -(2f64.powi(63)) && v < 2f64.powi(64);
        let forms = [
            true,
            nil_ok && v.to_bits() == f64::NAN.to_bits(),
            whole && (v as i128 as f64).to_bits() == v.to_bits(),
            !v.is_nan() && (v as f32 as f64).to_bits() == v.to_bits(),
        ];
        match self.rng.below(4) as usize {
            1 if forms[1] => encode::write_nil(&mut self.out).unwrap(),
            2 if forms[2] => self.int(v as i128),
            3 if forms[3] => encode::write_f32(&mut self.out, v as f32).unwrap(),
            _ => encode::write_f64(&mut self.out, v).unwrap(),
        }
    }

    /// Any MessagePack value but ext, for unknown fields: strs need not be UTF-8.
    fn junk(&mut self, depth: u32) {
        match self.rng.below(if depth < 3 { 10 } else { 8 }) {
            0 => encode::write_nil(&mut self.out).unwrap(),
            1 => encode::write_bool(&mut self.out, self.rng.chance(50)).unwrap(),
            2 => {
                let v = int(&mut self.rng);
                self.int(v.into())
            }
            3 => encode::write_f32(&mut self.out, self.rng.next() as f32).unwrap(),
            4 => encode::write_f64(&mut self.out, f64::from_bits(self.rng.next())).unwrap(),
            5 => {
                let s = text(&mut self.rng);
                self.str(s.as_bytes())
            }
            6 => self.str(&[0xff, 0xc3, 0x28]),
            7 => {
                self.len(Kind::Bin, 3);
                self.out.extend_from_slice(&[1, 2, 3]);
            }
            8 => {
                let n = self.rng.below(4) as usize;
                self.len(Kind::Array, n);
                (0..n).for_each(|_| self.junk(depth + 1));
            }
            _ => {
                let n = self.rng.below(3) as usize;
                self.len(Kind::Map, n);
                (0..n * 2).for_each(|_| self.junk(depth + 1));
            }
        }
    }

    /// A map of `fields`, written by `put`, plus maybe unknown fields, in random order.
    fn fields(&mut self, fields: &[&'static str], put: &mut dyn FnMut(&mut Self, &str)) {
        let mut keys: Vec<Option<&str>> = fields.iter().copied().map(Some).collect();
        if self.rng.chance(30) {
            keys.extend((0..1 + self.rng.below(2)).map(|_| None));
        }
        self.rng.shuffle(&mut keys);
        self.len(Kind::Map, keys.len());
        for key in keys {
            match key {
                Some(name) => {
                    self.str(name.as_bytes());
                    put(self, name);
                }
                None => {
                    let names: [&[u8]; 6] = [
                        b"extra",
                        b"",
                        b"abi_versio",
                        b"Now",
                        b"\xff\xfe",
                        "é".as_bytes(),
                    ];
                    let name = self.rng.pick(&names);
                    self.str(name);
                    self.junk(0);
                }
            }
        }
    }

    /// `fields` with each defaulted field kept anyway half the time.
    fn keep(&mut self, fields: &[(&'static str, bool)]) -> Vec<&'static str> {
        fields
            .iter()
            .filter(|(_, is_default)| !is_default || self.rng.chance(50))
            .map(|(name, _)| *name)
            .collect()
    }

    fn request(&mut self, r: &Request) {
        let fields = self.keep(&[
            ("abi_version", false),
            ("now", false),
            ("workload", r.workload == Workload::default()),
            ("replicas", false),
            ("metrics", r.metrics.is_empty()),
            ("ready_times", r.ready_times.is_empty()),
            ("events", r.events.is_empty()),
            ("params", r.params.is_empty()),
            ("state", r.state.is_none()),
        ]);
        self.fields(&fields, &mut |w, name| match name {
            "abi_version" => w.int(r.abi_version.into()),
            "now" => w.int(r.now.into()),
            "workload" => w.workload(&r.workload),
            "replicas" => w.replicas(&r.replicas),
            "metrics" => {
                w.len(Kind::Array, r.metrics.len());
                r.metrics.iter().for_each(|m| w.metric(m));
            }
            "ready_times" => {
                w.len(Kind::Array, r.ready_times.len());
                r.ready_times.iter().for_each(|t| w.ready_time(t));
            }
            "events" => {
                w.len(Kind::Array, r.events.len());
                r.events.iter().for_each(|e| w.event(e));
            }
            "params" => w.params(&r.params),
            "state" => match &r.state {
                None => encode::write_nil(&mut w.out).unwrap(),
                Some(bytes) => {
                    w.len(Kind::Bin, bytes.len());
                    w.out.extend_from_slice(bytes);
                }
            },
            _ => unreachable!(),
        });
    }

    fn workload(&mut self, workload: &Workload) {
        let fields = self.keep(&[
            ("namespace", workload.namespace.is_empty()),
            ("name", workload.name.is_empty()),
        ]);
        self.fields(&fields, &mut |w, name| match name {
            "namespace" => w.str(workload.namespace.as_bytes()),
            _ => w.str(workload.name.as_bytes()),
        });
    }

    fn replicas(&mut self, r: &Replicas) {
        self.fields(&["current", "ready", "min", "max"], &mut |w, name| {
            w.int(match name {
                "current" => r.current,
                "ready" => r.ready,
                "min" => r.min,
                _ => r.max,
            } as i128)
        });
    }

    fn metric(&mut self, m: &Metric) {
        let fields = [
            "name",
            "target_per_pod",
            "interval_seconds",
            "end",
            "values",
        ];
        self.fields(&fields, &mut |w, name| match name {
            "name" => w.str(m.name.as_bytes()),
            "target_per_pod" => w.float(m.target_per_pod, false),
            "interval_seconds" => w.float(m.interval_seconds, false),
            "end" => w.int(m.end.into()),
            _ => {
                w.len(Kind::Array, m.values.len());
                m.values.iter().for_each(|v| w.float(*v, true));
            }
        });
    }

    fn ready_time(&mut self, t: &ReadyTime) {
        self.fields(
            &["started_at", "ready_seconds"],
            &mut |w, name| match name {
                "started_at" => w.int(t.started_at.into()),
                _ => w.float(t.ready_seconds, false),
            },
        );
    }

    /// An event; its absent options are left out, as the host leaves them.
    fn event(&mut self, e: &PlannedEvent) {
        let mut fields = vec!["name", "start", "end"];
        if e.min_replicas.is_some() {
            fields.push("min_replicas");
        }
        if e.factor.is_some() {
            fields.push("factor");
        }
        self.fields(&fields, &mut |w, name| match name {
            "name" => w.str(e.name.as_bytes()),
            "start" => w.int(e.start.into()),
            "end" => w.int(e.end.into()),
            "min_replicas" => w.int(e.min_replicas.unwrap_or(0).into()),
            _ => w.float(e.factor.unwrap_or(0.0), false),
        });
    }

    /// Params in random order, sometimes with a name given twice: the last value counts.
    fn params(&mut self, params: &Params) {
        let mut entries: Vec<(&String, &Param)> = params.iter().collect();
        self.rng.shuffle(&mut entries);
        let repeat = !entries.is_empty() && self.rng.chance(30);
        self.len(Kind::Map, entries.len() + repeat as usize);
        if repeat {
            self.str(entries[0].0.as_bytes());
            encode::write_bool(&mut self.out, true).unwrap();
        }
        for (name, param) in entries {
            self.str(name.as_bytes());
            match param {
                Param::Bool(b) => encode::write_bool(&mut self.out, *b).unwrap(),
                Param::Number(n) => self.float(*n, false),
                Param::Text(t) => self.str(t.as_bytes()),
            }
        }
    }
}

/// A generated request and its bytes in one of the forms a host may write.
fn generated(seed: u64, max_window: u64) -> (Request, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let req = request(&mut rng, max_window);
    let mut w = Writer {
        rng,
        out: Vec::new(),
    };
    w.request(&req);
    (req, w.out)
}

#[test]
fn generated_requests_take_the_fast_path_and_decode_as_serde_does() {
    let mut values = 0;
    for seed in 0..300 {
        let (req, bytes) = generated(seed, 5000);
        values += req.metrics.iter().map(|m| m.values.len()).sum::<usize>();
        let what = format!("seed {seed}");
        // The writer is faithful: serde reads back the request it wrote.
        assert_same(&from_msgpack(&bytes).unwrap(), &req, &what);
        let got = fast(&bytes).unwrap_or_else(|| panic!("{what}: fast path refused it"));
        assert_same(&got, &req, &what);
        assert_same(&request_from_msgpack(&bytes).unwrap(), &req, &what);
        // And the host's own encoding.
        let host = to_msgpack(&req).unwrap();
        assert_same(&fast(&host).expect("host form"), &req, &what);
    }
    // The windows are large enough to matter.
    assert!(values > 100_000, "{values} values");
}

#[test]
fn truncated_requests_fail_as_with_serde() {
    for seed in 0..20 {
        let (_, bytes) = generated(seed, 40);
        for end in 0..bytes.len() {
            assert_like_serde(&bytes[..end], &format!("seed {seed}, first {end} bytes"));
        }
    }
}

#[test]
fn mutated_requests_answer_as_with_serde() {
    let mut rng = Rng::new(99);
    // Bytes that change a value's type or length.
    let markers = [
        0xc0, 0xc1, 0xc2, 0xca, 0xcb, 0xcc, 0xd3, 0xd4, 0xd9, 0xdc, 0xde, 0x00, 0xff,
    ];
    for seed in 0..3000 {
        let (_, mut bytes) = generated(seed, 40);
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(4) {
                0 => bytes[at] = rng.pick(&markers),
                1 => bytes[at] ^= 1 << rng.below(8),
                2 => drop(bytes.remove(at)),
                _ => bytes.insert(at, rng.pick(&markers)),
            }
        }
        assert_like_serde(&bytes, &format!("mutated seed {seed}: {bytes:02x?}"));
    }
}

// ---- Hand-made cases ----

fn mp<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    to_msgpack(value).unwrap()
}

/// A map of encoded keys and values, in order.
fn entries(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::write_map_len(&mut out, pairs.len() as u32).unwrap();
    for (key, value) in pairs {
        out.extend_from_slice(key);
        out.extend_from_slice(value);
    }
    out
}

/// A map of named fields given as encoded values, in order.
fn map(fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let pairs: Vec<_> = fields.iter().map(|(k, v)| (mp(*k), v.clone())).collect();
    entries(&pairs)
}

/// An array of encoded values.
fn array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::write_array_len(&mut out, items.len() as u32).unwrap();
    items.iter().for_each(|item| out.extend_from_slice(item));
    out
}

/// Leaves a field out in [`with`].
const OMIT: Vec<u8> = Vec::new();

/// `fields` after the fields of `base` that `fields` does not name, leaving out those given as
/// [`OMIT`].
fn with(base: &[(&str, Vec<u8>)], fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut all: Vec<(&str, Vec<u8>)> = base
        .iter()
        .filter(|(key, _)| fields.iter().all(|(k, _)| k != key))
        .cloned()
        .collect();
    all.extend(fields.iter().cloned());
    all.retain(|(_, value)| !value.is_empty());
    map(&all)
}

fn replicas_fields() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("current", mp(&1)),
        ("ready", mp(&1)),
        ("min", mp(&0)),
        ("max", mp(&9)),
    ]
}

/// A request with these fields and otherwise the three required ones.
fn req(fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let base = [
        ("abi_version", mp(&1)),
        ("now", mp(&5)),
        ("replicas", map(&replicas_fields())),
    ];
    with(&base, fields)
}

/// A request with one metric with these fields and otherwise valid ones.
fn metric(fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let base = [
        ("name", mp("m")),
        ("target_per_pod", mp(&10.0)),
        ("interval_seconds", mp(&60.0)),
        ("end", mp(&5)),
        ("values", mp(&[1.0, f64::NAN])),
    ];
    req(&[("metrics", array(&[with(&base, fields)]))])
}

/// Raw MessagePack bytes.
fn raw(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

/// A metric whose values are two float64s around `middle`, a one-byte value, followed by enough
/// bytes that nine per value would fit: the values are not all float64s.
fn mixed(middle: u8) -> Vec<u8> {
    let mut values = vec![0x93];
    values.extend(mp(&1.5));
    values.push(middle);
    values.extend(mp(&-2.5));
    let fields = [
        ("values", values),
        ("name", mp(&"m".repeat(40))),
        ("target_per_pod", mp(&10.0)),
        ("interval_seconds", mp(&60.0)),
        ("end", mp(&5)),
    ];
    req(&[("metrics", array(&[map(&fields)]))])
}

/// An unknown field nested in `depth` arrays.
fn nested(depth: usize) -> Vec<u8> {
    let mut v = vec![0x91; depth];
    v.push(0xc0);
    v
}

/// Each case: what it is, the bytes, and whether the fast path takes them (else serde answers).
fn cases() -> Vec<(&'static str, Vec<u8>, bool)> {
    let (model, host) = generated(7, 100);
    let mut trailing = host.clone();
    trailing.extend_from_slice(&[0xc1, 0xff, 0x00]);
    let required = [
        ("abi_version", mp(&1)),
        ("now", mp(&5)),
        ("replicas", map(&replicas_fields())),
    ];
    let keyed = |key: Vec<u8>| {
        let mut pairs: Vec<_> = required.iter().map(|(k, v)| (mp(*k), v.clone())).collect();
        pairs.push((key, mp(&0)));
        entries(&pairs)
    };
    vec![
        ("generated", host, true),
        ("trailing bytes", trailing, true),
        (
            "positional arrays",
            rmp_serde::to_vec(&model).unwrap(),
            false,
        ),
        ("minimal", req(&[]), true),
        ("a nil among float64s", mixed(0xc0), true),
        ("an integer among float64s", mixed(0x07), true),
        ("a bool among float64s", mixed(0xc3), false),
        ("metric", metric(&[]), true),
        (
            "integer values",
            metric(&[(
                "values",
                mp(&(1u8, -3i8, 70_000u32, -70_000i32, u64::MAX, i64::MIN)),
            )]),
            true,
        ),
        (
            "f32 values",
            metric(&[("values", mp(&(1.5f32, f32::NAN, f32::INFINITY)))]),
            true,
        ),
        (
            "nil values",
            metric(&[("values", raw(&[0x92, 0xc0, 0xc0]))]),
            true,
        ),
        (
            "values as strings",
            metric(&[("values", mp(&["1", "2"]))]),
            false,
        ),
        (
            "values as bin",
            metric(&[("values", raw(&[0xc4, 2, 1, 2]))]),
            false,
        ),
        (
            "values as map",
            metric(&[("values", map(&[("a", mp(&1.0))]))]),
            false,
        ),
        (
            "a bool value",
            metric(&[("values", mp(&(1.0, true)))]),
            false,
        ),
        (
            "a nested value",
            metric(&[("values", mp(&(1.0, [2.0])))]),
            false,
        ),
        (
            "an ext value",
            metric(&[("values", raw(&[0x91, 0xd4, 1, 2]))]),
            false,
        ),
        (
            "a reserved value",
            metric(&[("values", raw(&[0x91, 0xc1]))]),
            false,
        ),
        (
            "values claim 2^32-1",
            metric(&[("values", raw(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xcb]))]),
            false,
        ),
        (
            "nil target",
            metric(&[("target_per_pod", raw(&[0xc0]))]),
            false,
        ),
        (
            "nil interval",
            metric(&[("interval_seconds", raw(&[0xc0]))]),
            false,
        ),
        (
            "integer target",
            metric(&[("target_per_pod", mp(&-7))]),
            true,
        ),
        (
            "text target",
            metric(&[("target_per_pod", mp("10"))]),
            false,
        ),
        ("float end", metric(&[("end", mp(&5.0))]), false),
        ("end beyond i64", metric(&[("end", mp(&u64::MAX))]), false),
        ("missing name", metric(&[("name", OMIT)]), false),
        ("missing values", metric(&[("values", OMIT)]), false),
        (
            "duplicate values",
            metric(&[("values", mp(&[1.0])), ("values", mp(&[2.0]))]),
            false,
        ),
        (
            "name as bin",
            metric(&[("name", raw(&[0xc4, 1, b'm']))]),
            false,
        ),
        (
            "name not UTF-8",
            metric(&[("name", raw(&[0xa1, 0xff]))]),
            false,
        ),
        (
            "negative replicas",
            req(&[(
                "replicas",
                with(&replicas_fields(), &[("current", mp(&-1))]),
            )]),
            false,
        ),
        (
            "replicas beyond u32",
            req(&[(
                "replicas",
                with(&replicas_fields(), &[("max", mp(&(1u64 << 32)))]),
            )]),
            false,
        ),
        (
            "u32::MAX replicas",
            req(&[(
                "replicas",
                with(&replicas_fields(), &[("max", mp(&u32::MAX))]),
            )]),
            true,
        ),
        (
            "float replicas",
            req(&[("replicas", with(&replicas_fields(), &[("min", mp(&1.0))]))]),
            false,
        ),
        (
            "missing replicas.max",
            req(&[("replicas", with(&replicas_fields(), &[("max", OMIT)]))]),
            false,
        ),
        (
            "replicas as array",
            req(&[("replicas", mp(&[1, 1, 0, 9]))]),
            false,
        ),
        (
            "replicas as bin",
            req(&[("replicas", raw(&[0xc4, 4, 1, 1, 0, 9]))]),
            false,
        ),
        ("now beyond i64", req(&[("now", mp(&u64::MAX))]), false),
        ("now as i64::MIN", req(&[("now", mp(&i64::MIN))]), true),
        ("now as float", req(&[("now", mp(&5.0))]), false),
        (
            "abi_version as text",
            req(&[("abi_version", mp("1"))]),
            false,
        ),
        (
            "abi_version negative",
            req(&[("abi_version", mp(&-1))]),
            false,
        ),
        (
            "duplicate now",
            req(&[("now", mp(&6)), ("now", mp(&7))]),
            false,
        ),
        ("missing now", req(&[("now", OMIT)]), false),
        (
            "workload",
            req(&[(
                "workload",
                map(&[("name", mp("w")), ("namespace", mp("n"))]),
            )]),
            true,
        ),
        ("empty workload", req(&[("workload", map(&[]))]), true),
        (
            "duplicate workload name",
            req(&[("workload", map(&[("name", mp("a")), ("name", mp("b"))]))]),
            false,
        ),
        (
            "workload name as bin",
            req(&[("workload", map(&[("name", raw(&[0xc4, 1, b'w']))]))]),
            false,
        ),
        (
            "workload name nil",
            req(&[("workload", map(&[("name", raw(&[0xc0]))]))]),
            false,
        ),
        (
            "ready times",
            req(&[(
                "ready_times",
                mp(&[ReadyTime {
                    started_at: -1,
                    ready_seconds: 3.5,
                }]),
            )]),
            true,
        ),
        (
            "ready time nil seconds",
            req(&[(
                "ready_times",
                array(&[map(&[
                    ("started_at", mp(&1)),
                    ("ready_seconds", raw(&[0xc0])),
                ])]),
            )]),
            false,
        ),
        (
            "ready time missing seconds",
            req(&[("ready_times", array(&[map(&[("started_at", mp(&1))])]))]),
            false,
        ),
        ("state", req(&[("state", raw(&[0xc4, 2, 7, 8]))]), true),
        ("state nil", req(&[("state", raw(&[0xc0]))]), true),
        ("state as str", req(&[("state", mp("ab"))]), false),
        ("state as array", req(&[("state", mp(&[1, 2]))]), false),
        ("state as int", req(&[("state", mp(&1))]), false),
        (
            "params",
            req(&[(
                "params",
                map(&[
                    ("b", mp(&true)),
                    ("n", mp(&-3)),
                    ("f", mp(&0.5f32)),
                    ("t", mp("x")),
                ]),
            )]),
            true,
        ),
        (
            "param given twice",
            req(&[("params", map(&[("q", mp(&1)), ("q", mp("x"))]))]),
            true,
        ),
        (
            "param nil",
            req(&[("params", map(&[("q", raw(&[0xc0]))]))]),
            false,
        ),
        (
            "param array",
            req(&[("params", map(&[("q", mp(&[1]))]))]),
            false,
        ),
        (
            "param as bin",
            req(&[("params", map(&[("q", raw(&[0xc4, 1, b'x']))]))]),
            false,
        ),
        (
            "param name as int",
            req(&[("params", raw(&[0x81, 0x01, 0xc3]))]),
            false,
        ),
        (
            "param name as bin",
            req(&[("params", raw(&[0x81, 0xc4, 1, b'q', 0xc3]))]),
            false,
        ),
        ("params as array", req(&[("params", mp(&[1]))]), false),
        (
            "field index as key",
            entries(&[
                (mp(&0), mp(&1)),
                (mp(&1), mp(&5)),
                (mp(&2), map(&replicas_fields())),
            ]),
            false,
        ),
        (
            "field name as bin",
            entries(&[
                (mp(&0), mp(&1)),
                (raw(&[0xc4, 3, b'n', b'o', b'w']), mp(&5)),
                (mp("replicas"), map(&replicas_fields())),
            ]),
            false,
        ),
        ("unknown integer key", keyed(mp(&9)), false),
        ("unknown bin key", keyed(raw(&[0xc4, 1, b'x'])), false),
        (
            "unknown fields",
            req(&[("x", mp(&[1, 2])), ("y", map(&[("z", mp("w"))]))]),
            true,
        ),
        (
            "unknown invalid UTF-8",
            req(&[("x", raw(&[0xa2, 0xff, 0xfe]))]),
            true,
        ),
        (
            "unknown key invalid UTF-8",
            keyed(raw(&[0xa2, 0xff, 0xfe])),
            true,
        ),
        ("unknown nested 20", req(&[("x", nested(20))]), true),
        ("unknown nested 40", req(&[("x", nested(40))]), false),
        ("unknown ext", req(&[("x", raw(&[0xd4, 1, 2]))]), false),
        ("unknown reserved", req(&[("x", raw(&[0xc1]))]), false),
        ("unknown truncated", req(&[("x", raw(&[0xcb, 1]))]), false),
        ("nil", raw(&[0xc0]), false),
        ("integer", raw(&[0x05]), false),
        ("empty array", raw(&[0x90]), false),
        ("empty map", raw(&[0x80]), false),
        ("nothing", Vec::new(), false),
        (
            "map claims more",
            {
                let mut b = req(&[]);
                b[0] += 1;
                b
            },
            false,
        ),
    ]
}

#[test]
fn hand_made_cases_answer_as_with_serde() {
    for (what, bytes, takes) in cases() {
        assert_like_serde(&bytes, what);
        assert_eq!(fast(&bytes).is_some(), takes, "{what}: fast path taken");
    }
}
