//! Determinism: the same request to the same policy gives the same decision, on a reused
//! instance, on a fresh one, and on another engine; float NaNs come out canonical whatever the
//! CPU; and nothing but `leadtime::log` is importable, so no clock, randomness or environment
//! reaches a policy except through the request.

use leadtime::Source;
use leadtime::{Decision, Engine, Limits, Modes, Params, ReadyTime, Request};
use leadtime_tests::{replicas, request};

/// A policy that makes NaNs by arithmetic and returns their bits in `state` (16 bytes, little
/// endian): `0.0 / 0.0` (x86 gives a negative NaN), and `1.0 + a signalling NaN with payload 1`
/// (hardware quiets it and keeps the payload). The zero and the NaN come from mutable globals so
/// that the compiler cannot fold them away.
const NAN_POLICY: &str = r#"
(module
  (memory (export "memory") 2)
  (global $zero (mut f64) (f64.const 0))
  (global $snan (mut i64) (i64.const 0x7ff4000000000001))
  (func (export "leadtime_abi_version") (result i32) i32.const 1)
  (func (export "leadtime_alloc") (param i32) (result i32) i32.const 65536)
  ;; {"replicas": 3, "state": bin8 of 16 bytes}, the 16 bytes at 1043.
  (data (i32.const 1024) "\82\a8replicas\03\a5state\c4\10")
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (i64.store (i32.const 1043)
      (i64.reinterpret_f64 (f64.div (global.get $zero) (global.get $zero))))
    (i64.store (i32.const 1051)
      (i64.reinterpret_f64
        (f64.add (f64.const 1) (f64.reinterpret_i64 (global.get $snan)))))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 35)))
)
"#;

/// The canonical quiet NaN of the WebAssembly spec (positive, payload only the quiet bit).
const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

fn nan_bits(d: &Decision) -> [u64; 2] {
    let state = d.state.as_deref().expect("the NaN policy returns state");
    assert_eq!(state.len(), 16);
    [
        u64::from_le_bytes(state[..8].try_into().unwrap()),
        u64::from_le_bytes(state[8..].try_into().unwrap()),
    ]
}

fn engines() -> Vec<(&'static str, Engine)> {
    vec![
        ("reused instances", Engine::new(&Limits::default()).unwrap()),
        (
            "fresh instance per call",
            Engine::builder()
                .modes(Modes::new().fresh_instance_per_call(true))
                .build()
                .unwrap(),
        ),
    ]
}

#[test]
fn nans_from_arithmetic_are_canonical_on_every_call_and_instance() {
    let req = request(&[1.0], 1.0, replicas(1, 1, 10));
    for (what, engine) in engines() {
        for instance in 0..3 {
            let mut policy = engine
                .load(Source::bytes("nan", NAN_POLICY.as_bytes()), Params::new())
                .unwrap();
            for call in 0..3 {
                policy.reset_state();
                let d = policy.decide(&req).unwrap();
                let bits = nan_bits(&d);
                for b in bits {
                    assert!(f64::from_bits(b).is_nan(), "{what}: {b:#x}");
                }
                assert_eq!(
                    bits, [CANONICAL_NAN_BITS; 2],
                    "{what}, instance {instance}, call {call}: {:#x} {:#x}",
                    bits[0], bits[1]
                );
            }
        }
    }
}

/// `canonical_nans: false` trades that for speed: the CPU's own NaNs come through (on x86, a
/// negative NaN from `0.0 / 0.0` and the signalling NaN's payload, quieted).
#[cfg(target_arch = "x86_64")]
#[test]
fn without_canonical_nans_the_cpus_own_nans_come_through() {
    let engine = Engine::builder()
        .modes(Modes::new().canonical_nans(false))
        .build()
        .unwrap();
    let mut policy = engine
        .load(Source::bytes("nan", NAN_POLICY.as_bytes()), Params::new())
        .unwrap();
    let d = policy
        .decide(&request(&[1.0], 1.0, replicas(1, 1, 10)))
        .unwrap();
    assert_eq!(
        nan_bits(&d),
        [0xfff8_0000_0000_0000, 0x7ffc_0000_0000_0001],
        "x86's default NaN, and the quieted signalling NaN with its payload"
    );
}

/// Requests with gaps (NaN), ready times, and a day of a daily cycle, for the built-ins.
fn requests() -> Vec<(&'static str, Request)> {
    let day: Vec<f64> = (0..1440)
        .map(|i| 100.0 + 80.0 * (i as f64 / 1440.0 * std::f64::consts::TAU).sin())
        .collect();
    let mut long = request(&day, 10.0, replicas(10, 1, 50));
    long.metrics[0].interval_seconds = 60.0;
    long.ready_times = (0..20)
        .map(|i| ReadyTime {
            started_at: long.now - 600_000 + i * 1_000,
            ready_seconds: 30.0 + (i as f64) * 7.5,
        })
        .collect();
    vec![
        (
            "steady",
            request(&[50.0, 52.0, 51.0], 10.0, replicas(5, 1, 20)),
        ),
        (
            "gaps",
            request(&[f64::NAN, 40.0, f64::NAN, 90.0], 10.0, replicas(3, 1, 20)),
        ),
        ("a day with ready times", long),
    ]
}

/// A decision without the fuel, which depends on what the instance did before (its allocator).
fn answer(d: &Decision) -> (u32, u32, String, String, Option<Vec<u8>>) {
    (
        d.replicas,
        d.proposed,
        d.reason.clone(),
        format!("{:?}", d.forecast),
        d.state.clone(),
    )
}

#[test]
fn the_same_request_to_the_same_policy_gives_the_same_decision() {
    let requests = requests();
    for name in leadtime::builtin_names() {
        let mut expected: Vec<Option<Decision>> = vec![None; requests.len()];
        for (what, engine) in engines() {
            // Two policies per engine: a loaded module gives the same on every instance.
            for copy in 0..2 {
                let mut policy = engine.load(Source::parse(name), Params::new()).unwrap();
                for _ in 0..3 {
                    for (i, (req_name, req)) in requests.iter().enumerate() {
                        // Same request, state included: forget what the last call returned.
                        policy.reset_state();
                        let d = policy.decide(req).unwrap();
                        let at = format!("{name}, {what}, copy {copy}, {req_name}");
                        match &expected[i] {
                            None => expected[i] = Some(d),
                            Some(first) => assert_eq!(answer(&d), answer(first), "{at}"),
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn on_fresh_instances_even_the_fuel_is_the_same() {
    let engine = Engine::builder()
        .modes(Modes::new().fresh_instance_per_call(true))
        .build()
        .unwrap();
    let (_, req) = requests().pop().unwrap();
    for name in leadtime::builtin_names() {
        let mut policy = engine.load(Source::parse(name), Params::new()).unwrap();
        let first = policy.decide(&req).unwrap();
        for call in 1..4 {
            policy.reset_state();
            let d = policy.decide(&req).unwrap();
            assert_eq!(d, first, "{name}, call {call}");
        }
    }
}

#[test]
fn built_in_policies_import_nothing_but_the_log() {
    let engine = Engine::new(&Limits::default()).unwrap();
    for name in leadtime::builtin_names() {
        let policy = engine.load(Source::parse(name), Params::new()).unwrap();
        for import in &policy.info().imports {
            assert!(import.starts_with("leadtime::log:"), "{name}: {import}");
        }
    }
}
