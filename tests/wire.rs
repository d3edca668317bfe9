//! The JSON and MessagePack forms carry the same data, and missing points survive both.

use leadtime::codec::{from_json, from_msgpack, to_json, to_msgpack};
use leadtime::Source;
use leadtime::{Forecast, Param, ReadyTime, Request, Response};
use leadtime_tests::{fixture, replicas, request};

fn full_request() -> Request {
    let mut req = request(&[1.0, f64::NAN, 3.5, 1e300, -0.0], 2.5, replicas(3, 1, 9));
    req.ready_times = vec![ReadyTime {
        started_at: 1_699_999_999_000,
        ready_seconds: 42.5,
    }];
    req.params.insert("quantile".into(), Param::Number(0.95));
    req.params.insert("scale_down".into(), Param::Bool(false));
    req.params
        .insert("mode".into(), Param::Text("observe ✓".into()));
    req.state = Some(vec![0, 1, 2, 255]);
    req
}

/// NaN != NaN, so compare values bit-for-bit through their text form.
fn same(a: &Request, b: &Request) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn request_round_trips_through_msgpack() {
    let req = full_request();
    let back: Request = from_msgpack(&to_msgpack(&req).unwrap()).unwrap();
    assert!(same(&req, &back), "{req:?}\n{back:?}");
}

#[test]
fn request_round_trips_through_json_with_null_for_missing() {
    let req = full_request();
    let json = to_json(&req).unwrap();
    assert!(
        json.contains("null"),
        "a NaN point is written as null: {json}"
    );
    let back: Request = from_json(&json).unwrap();
    assert!(same(&req, &back), "{req:?}\n{back:?}");
}

#[test]
fn response_round_trips_through_both_forms() {
    let resp = Response {
        replicas: Some(7),
        reason: "peak ahead".into(),
        forecast: Some(Forecast {
            start: 1,
            interval_seconds: 60.0,
            values: vec![1.0, f64::NAN],
        }),
        state: Some(vec![9, 9]),
        error: None,
    };
    let from_mp: Response = from_msgpack(&to_msgpack(&resp).unwrap()).unwrap();
    let from_js: Response = from_json(&to_json(&resp).unwrap()).unwrap();
    for back in [from_mp, from_js] {
        assert_eq!(format!("{resp:?}"), format!("{back:?}"));
    }
}

#[test]
fn example_request_parses_and_json_errors_say_where() {
    let text = std::fs::read_to_string(fixture("../examples/request.json")).unwrap();
    let req: Request = from_json(&text).unwrap();
    assert!(req.metrics[0].values[3].is_nan(), "null is a missing point");

    let broken = text.replace("\"max\": 50", "\"max\": \"fifty\"");
    let err = from_json::<Request>(&broken).unwrap_err().to_string();
    assert!(err.contains("line 5"), "error names the line: {err}");
}

/// The test policy that returns its windows' bits (see tests/policies/echo/src/lib.rs).
const ECHO_WASM: &str = env!("LEADTIME_TEST_POLICY_ECHO");

/// What a Rust policy reads is what the host sent, bit for bit: every length the SDK's decoder
/// takes in groups or one at a time, every kind of float, and nil (NaN) in the middle of a run.
#[test]
fn a_rust_policy_reads_every_window_value_bit_for_bit() {
    use rand::{Rng, SeedableRng};
    let engine = leadtime::Engine::new(&leadtime::Limits::default()).unwrap();
    let mut policy = engine
        .load(
            Source::file(std::path::Path::new(ECHO_WASM)),
            leadtime::Params::new(),
        )
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let special = [
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let lengths = (0..=9).chain([15, 16, 17, 4095, 10_081]);
    for (case, len) in lengths.enumerate() {
        for with_nan in [false, true] {
            let sent: Vec<f64> = (0..len)
                .map(|i| match rng.random_range(0..10) {
                    0 => special[i % special.len()],
                    1 if with_nan => f64::NAN,
                    _ => f64::from_bits(
                        rng.random::<u64>() & !(0x7ff << 52) | (rng.random_range(1..0x7ff) << 52),
                    ),
                })
                .collect();
            let mut req = request(&sent, 1.0, replicas(1, 0, u32::MAX));
            // A second metric checks where one window ends and the next begins.
            let mut second = req.metrics[0].clone();
            second.values = sent.iter().rev().copied().collect();
            req.metrics.push(second);
            let d = policy.decide(&req).unwrap();
            let echoed: Vec<u64> = d
                .state
                .unwrap()
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
                .collect();
            let want: Vec<u64> = sent
                .iter()
                .chain(sent.iter().rev())
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(echoed.len(), want.len(), "case {case}: length {len}");
            for (i, (got, want)) in echoed.iter().zip(&want).enumerate() {
                let both_nan = f64::from_bits(*got).is_nan() && f64::from_bits(*want).is_nan();
                assert!(
                    got == want || both_nan,
                    "case {case} (length {len}, nil {with_nan}): value {i} went in as {:e} ({want:#x}) and came out as {:e} ({got:#x})",
                    f64::from_bits(*want),
                    f64::from_bits(*got),
                );
            }
        }
    }
}
