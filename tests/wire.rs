//! The JSON and MessagePack forms carry the same data, and missing points survive both.

use leadtime::codec::{from_json, from_msgpack, to_json, to_msgpack};
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
