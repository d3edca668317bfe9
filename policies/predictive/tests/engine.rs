//! The built-in `predictive` through the engine (wasm), against the same crate run natively.

mod common;

use common::{daily_sine, request, Noise, DAY, T0};
use leadtime::Source;
use leadtime::{Engine, ErrorKind, Limits, Param, Params};
use leadtime_guest::Request;
use leadtime_policy_predictive::decide;

fn engine() -> Engine {
    Engine::new(&Limits::default()).unwrap()
}

fn params(pairs: &[(&str, Param)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn fixed_seed_cases_decide_the_same_in_wasm_and_natively() {
    let engine = engine();
    let mut gappy = daily_sine(3, 4.0, 31);
    for i in (0..gappy.len()).step_by(13) {
        gappy[i] = f64::NAN;
    }
    let mut noise = Noise::new(32);
    let white: Vec<f64> = (0..3 * DAY).map(|_| 80.0 + 8.0 * noise.normal()).collect();
    let cases: Vec<(&str, Vec<f64>, Params)> = vec![
        ("daily 7d", daily_sine(7, 5.0, 30), Params::new()),
        ("daily 3d gaps", gappy, Params::new()),
        ("white noise", white, Params::new()),
        ("short history", daily_sine(1, 2.0, 33), Params::new()),
        (
            "q0.8 lead 60s no scale-down",
            daily_sine(4, 5.0, 34),
            params(&[
                ("quantile", Param::Number(0.8)),
                ("lead_seconds", Param::Number(60.0)),
                ("scale_down", Param::Bool(false)),
            ]),
        ),
    ];
    for (name, values, p) in cases {
        let mut policy = engine
            .load(Source::builtin("predictive"), p.clone())
            .unwrap();
        let mut native_state = None;
        // Three calls a minute apart: the first fits, the next ones reuse the cached model.
        for step in 0..3 {
            let now = T0 + step * 60_000;
            let mut req = request(&values, 10.0, 12, now);
            req.params = p.clone();
            let wasm = policy.decide(&req).unwrap();
            req.state = native_state.take();
            let native = decide(&req).unwrap();
            native_state = native.state.clone();
            assert_eq!(Some(wasm.proposed), native.replicas, "{name} #{step}");
            assert_eq!(wasm.reason, native.reason, "{name} #{step}");
            let (a, b) = (wasm.forecast, native.forecast);
            assert_eq!(a.is_some(), b.is_some(), "{name}");
            if let (Some(a), Some(b)) = (a, b) {
                assert_eq!(a.start, b.start);
                for (x, y) in a.values.iter().zip(&b.values) {
                    assert!(
                        (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                        "{name}: {x} vs {y}"
                    );
                }
            }
        }
    }
}

/// Three days of history, then a fourth day: flat at 20 overnight, a ramp to 300 from 06:00 to
/// 09:00, flat, and back down in the evening. Returns the full series (1-minute steps).
fn daily_ramp(days: usize, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..days * DAY)
        .map(|i| {
            let minute = (i % DAY) as f64;
            let base = match minute {
                m if m < 360.0 => 20.0,
                m if m < 540.0 => 20.0 + 280.0 * (m - 360.0) / 180.0,
                m if m < 1080.0 => 300.0,
                m if m < 1260.0 => 300.0 - 280.0 * (m - 1080.0) / 180.0,
                _ => 20.0,
            };
            base + 3.0 * noise.normal()
        })
        .collect()
}

#[test]
fn a_rising_daily_ramp_with_a_5_minute_lead_scales_up_at_least_5_minutes_before_reactive() {
    let series = daily_ramp(4, 40);
    let mut policy = engine()
        .load(
            Source::builtin("predictive"),
            params(&[("lead_seconds", Param::Number(300.0))]),
        )
        .unwrap();
    let target = 10.0;
    // Decide every minute of day 4 from 05:00 to 09:00 on the history so far.
    let mut current = 2;
    let mut first_predictive = [None; 3];
    let mut first_reactive = [None; 3];
    let levels = [5u32, 15, 25];
    for minute in 300..540 {
        let upto = 3 * DAY + minute + 1;
        let now = T0 + minute as i64 * 60_000;
        let req = request(&series[..upto], target, current, now);
        let d = policy.decide(&req).unwrap();
        current = d.replicas;
        let reactive = (series[upto - 1] / target).ceil() as u32;
        for (i, level) in levels.iter().enumerate() {
            if first_predictive[i].is_none() && d.replicas >= *level {
                first_predictive[i] = Some(minute);
            }
            if first_reactive[i].is_none() && reactive >= *level {
                first_reactive[i] = Some(minute);
            }
        }
    }
    for (i, level) in levels.iter().enumerate() {
        let (p, r) = (first_predictive[i].unwrap(), first_reactive[i].unwrap());
        assert!(
            p + 5 <= r,
            "{level} pods: predictive at minute {p}, reactive at {r}"
        );
    }
}

#[test]
fn short_history_says_so_and_acts_reactively() {
    let mut policy = engine()
        .load(Source::builtin("predictive"), Params::new())
        .unwrap();
    let values = vec![40.0; 600];
    let d = policy.decide(&request(&values, 10.0, 1, T0)).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(d.reason.contains("under two periods"), "{}", d.reason);
    assert!(d.reason.contains("reactively"), "{}", d.reason);
    // The next call, a minute later, reuses the search's answer from `state` instead of
    // searching the window again: the same answer for a fraction of the work.
    let first_fuel = d.fuel;
    let mut later = values.clone();
    later.push(60.0);
    let d = policy
        .decide(&request(&later[1..], 10.0, 4, T0 + 60_000))
        .unwrap();
    assert_eq!(d.replicas, 6);
    assert!(d.reason.contains("under two periods"), "{}", d.reason);
    assert!(
        d.fuel * 3 < first_fuel,
        "second call {} fuel, first {first_fuel}",
        d.fuel
    );
}

#[test]
fn observer_mode_answers_reactively_and_reports_the_predictive_target() {
    // At 05:55 on day 4 of the ramp the load is still flat (20: 2 pods); the forecast sees the
    // rise that starts at 06:00 within a 10-minute lead.
    let series = daily_ramp(4, 41);
    let upto = 3 * DAY + 356;
    let lead = ("lead_seconds", Param::Number(900.0));
    let mut observer = engine()
        .load(
            Source::builtin("predictive"),
            params(&[lead.clone(), ("observer", Param::Bool(true))]),
        )
        .unwrap();
    let mut active = engine()
        .load(Source::builtin("predictive"), params(&[lead]))
        .unwrap();
    let req = request(&series[..upto], 10.0, 3, T0);
    let o = observer.decide(&req).unwrap();
    let a = active.decide(&req).unwrap();
    let reactive = (series[upto - 1] / 10.0).ceil() as u32;
    assert_eq!(o.proposed, reactive, "{}", o.reason);
    assert!(a.proposed > reactive, "{}", a.reason);
    assert!(o.reason.contains("observer"), "{}", o.reason);
    assert!(
        o.reason
            .contains(&format!("predictive would be {}", a.proposed)),
        "{}",
        o.reason
    );
}

#[test]
fn scale_down_false_never_lowers_and_the_reason_explains() {
    let series = daily_sine(3, 2.0, 42);
    let req = |current| request(&series, 10.0, current, T0);
    let mut free = engine()
        .load(Source::builtin("predictive"), Params::new())
        .unwrap();
    let mut held = engine()
        .load(
            Source::builtin("predictive"),
            params(&[("scale_down", Param::Bool(false))]),
        )
        .unwrap();
    let low = free.decide(&req(100)).unwrap();
    assert!(low.proposed < 100, "{}", low.reason);
    let says = format!(
        "scaling down: the forecast stays within {} pods",
        low.proposed
    );
    assert!(low.reason.contains(&says), "{}", low.reason);
    let d = held.decide(&req(100)).unwrap();
    assert_eq!(d.proposed, 100, "{}", d.reason);
    assert!(d.reason.contains("scale_down=false"), "{}", d.reason);
}

#[test]
fn the_reason_and_forecast_say_what_was_found() {
    let mut policy = engine()
        .load(
            Source::builtin("predictive"),
            params(&[("lead_seconds", Param::Number(300.0))]),
        )
        .unwrap();
    let d = policy
        .decide(&request(&daily_sine(4, 3.0, 43), 10.0, 10, T0))
        .unwrap();
    for fragment in [
        "period 1d",
        "horizon 5m15s",
        "proactive",
        "reactive",
        "q95 margin",
    ] {
        assert!(d.reason.contains(fragment), "{fragment}: {}", d.reason);
    }
    assert!(
        ["proactive won", "reactive won", "both agree"]
            .iter()
            .any(|w| d.reason.contains(w)),
        "{}",
        d.reason
    );
    let f = d.forecast.expect("a forecast");
    assert_eq!(f.start, T0 + 60_000);
    // 300 s lead + 15 s decision interval at 1-minute steps: the points starting at
    // +1m..+5m (the last one covers +5m15s; the current one is known).
    assert_eq!(f.values.len(), 5);
}

#[test]
fn bad_params_fail_the_load_with_the_param_named() {
    for (name, value) in [
        ("quantile", Param::Number(2.0)),
        ("lead_seconds", Param::Text("soon".into())),
        ("observer", Param::Number(1.0)),
        ("nonsense", Param::Bool(true)),
    ] {
        let err = engine()
            .load(Source::builtin("predictive"), params(&[(name, value)]))
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InitFailed, "{name}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[allow(dead_code)]
fn _types_match(r: Request) -> leadtime::Request {
    r
}

#[test]
fn metrics_of_one_name_keep_their_own_models_between_calls() {
    // Two metrics both named "rps", one ten times the other: each call must reuse each one's
    // own cached model, in order, not the first one's twice.
    let series = daily_sine(3, 2.0, 44);
    let mut req = request(&series, 10.0, 10, T0);
    let mut big = req.metrics[0].clone();
    big.values.iter_mut().for_each(|v| *v *= 10.0);
    req.metrics.push(big);
    let profiles = |state: &Option<Vec<u8>>| -> Vec<Vec<f64>> {
        let state: leadtime_policy_predictive::State =
            leadtime_guest::codec::from_msgpack(state.as_deref().expect("a state")).unwrap();
        state.models.into_iter().map(|(_, m)| m.profile).collect()
    };
    let first = decide(&req).unwrap();
    let fitted = profiles(&first.state);
    assert_eq!(fitted.len(), 2);
    assert!(fitted[1][0] != fitted[0][0], "two different models fitted");
    // New values that a refit would learn a different profile from: the cached ones stay.
    let mut next = req.clone();
    next.now += 15_000;
    next.state = first.state;
    for m in &mut next.metrics {
        m.values.iter_mut().for_each(|v| *v *= 1.5);
    }
    let second = decide(&next).unwrap();
    assert_eq!(profiles(&second.state), fitted);
}

#[test]
fn scale_down_false_holds_while_history_is_short_too() {
    // Two hours of a low load: too short for a cycle, so the answer is reactive.
    let series: Vec<f64> = daily_sine(3, 2.0, 7).into_iter().take(120).collect();
    let mut held = engine()
        .load(
            leadtime::Source::builtin("predictive"),
            params(&[("scale_down", Param::Bool(false))]),
        )
        .unwrap();
    let d = held.decide(&request(&series, 10.0, 50, T0)).unwrap();
    assert_eq!(d.proposed, 50, "{}", d.reason);
    assert!(d.reason.contains("scale_down=false"), "{}", d.reason);
    let mut free = engine()
        .load(leadtime::Source::builtin("predictive"), Params::new())
        .unwrap();
    assert!(
        free.decide(&request(&series, 10.0, 50, T0))
            .unwrap()
            .proposed
            < 50
    );
}
