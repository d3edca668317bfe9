//! Planned events declared in the request are kept out of what the policy learns: a surge the
//! operator announced is not taken for part of the daily cycle.

mod common;

use common::{daily_sine, request, DAY, T0};
use leadtime_guest::{PlannedEvent, Request, Response};

/// The peak of the policy's forecast and its reason.
fn forecast_peak(req: &Request) -> (f64, String) {
    let r: Response = leadtime_policy_predictive::decide(req).expect("a decision");
    let peak = r
        .forecast
        .expect("a forecast")
        .values
        .iter()
        .copied()
        .fold(f64::MIN, f64::max);
    (peak, r.reason)
}

#[test]
fn a_declared_surge_is_left_out_of_the_learned_cycle() {
    // 14 days of a daily sine at 1-minute steps, the last value at T0 (midnight). Each of the
    // last eight days had a 4x surge from 23:50 for two hours (a campaign of a week and a day):
    // the hours the forecast covers next. Eight of 14 days move even a robust profile.
    let base = daily_sine(14, 2.0, 7);
    let n = base.len();
    let mut surged = base.clone();
    let mut events = Vec::new();
    for day in 1..=8 {
        let start = n - day * DAY - 10;
        for v in &mut surged[start..(start + 120).min(n)] {
            *v *= 4.0;
        }
        let start_ms = T0 - (n - 1 - start) as i64 * 60_000;
        events.push(PlannedEvent {
            name: format!("sale-{day}"),
            start: start_ms,
            end: start_ms + 120 * 60_000,
            min_replicas: None,
            factor: Some(4.0),
        });
    }
    // Keep the current (surged) point out of the comparison: now is just before the surges.
    let now = T0 - 12 * 60_000;
    let cut = n - 12;
    let plain = forecast_peak(&request(&base[..cut], 10.0, 15, now));
    let undeclared = forecast_peak(&request(&surged[..cut], 10.0, 15, now));
    let mut declared_req = request(&surged[..cut], 10.0, 15, now);
    declared_req.events = events;
    let declared = forecast_peak(&declared_req);
    println!(
        "forecast peak: no surge {:.1}, surges undeclared {:.1}, declared {:.1}",
        plain.0, undeclared.0, declared.0
    );
    assert!(
        undeclared.0 > 1.3 * plain.0,
        "eight surges at the same hour are learned when undeclared: {undeclared:?} vs {plain:?}"
    );
    assert!(
        (declared.0 - plain.0).abs() < 0.1 * plain.0,
        "declared, they are left out: {declared:?} vs {plain:?}"
    );
    assert!(
        declared
            .1
            .contains("points of planned events left out of learning"),
        "{}",
        declared.1
    );
}
