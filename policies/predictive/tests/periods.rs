//! Period detection, table-driven: generated series with known periods, the bundled traces, and
//! the 16 real production series Crane labels in its own tests (where they are: see
//! `common::crane_series`), each with the period and confidence found. The tables are what users can rely on: a change to the
//! detector that moves a row must move the table with it, on purpose.

mod common;

use common::Noise;
use leadtime_policy_predictive::clean::clean;
use leadtime_policy_predictive::period::{calendar_lags, detect_near_calendar, Period};
use std::f64::consts::TAU;
use std::path::PathBuf;

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;

/// The period the policy would find in `values` at `step` seconds, with its defaults (the last
/// 14 days, periods up to a week, calendar periods preferred).
fn find(values: &[f64], step: f64) -> Option<Period> {
    let keep = (14.0 * DAY / step) as usize;
    let window = &values[values.len().saturating_sub(keep)..];
    let cleaned = clean(window).expect("finite values");
    let max_lag = (WEEK / step) as usize;
    detect_near_calendar(&cleaned.values, max_lag, &calendar_lags(step))
}

/// `days` of 1-minute points from `f(minute)` plus noise of sd `sd`.
fn series(days: usize, sd: f64, seed: u64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..days * 1440)
        .map(|i| f(i as f64) + sd * noise.normal())
        .collect()
}

/// A weekday's daily wave (peak at 14:00) at 1-minute `i`, with weekends (days 5 and 6 of each
/// week) at `weekend` times the weekday amplitude.
fn office(i: f64, weekend: f64) -> f64 {
    let day = (i / 1440.0).floor() as usize % 7;
    let amp = if day >= 5 { 40.0 * weekend } else { 40.0 };
    100.0 + amp * (TAU * (i / 1440.0 - 0.33)).sin()
}

#[test]
fn generated_series_give_their_known_period() {
    // (case, series at 1-minute steps, period expected in seconds, lowest confidence accepted)
    let cases: Vec<(&str, Vec<f64>, Option<f64>, f64)> = vec![
        (
            "daily sine",
            series(14, 5.0, 1, |i| 100.0 + 40.0 * (TAU * i / 1440.0).sin()),
            Some(DAY),
            0.9,
        ),
        (
            "weekends at half the weekday amplitude",
            series(14, 3.0, 2, |i| office(i, 0.5)),
            Some(WEEK),
            0.9,
        ),
        (
            "weekends flat",
            series(14, 3.0, 3, |i| office(i, 0.0)),
            Some(WEEK),
            0.9,
        ),
        (
            "weekends as weekdays: the day, not the week",
            series(14, 3.0, 4, |i| office(i, 1.0)),
            Some(DAY),
            0.9,
        ),
        (
            "an hourly cycle",
            series(4, 3.0, 5, |i| 50.0 + 20.0 * (TAU * i / 60.0).sin()),
            Some(HOUR),
            0.9,
        ),
        (
            "a 5-minute cycle",
            series(14, 3.0, 6, |i| 50.0 + 20.0 * (TAU * i / 5.0).sin()),
            Some(300.0),
            0.9,
        ),
        (
            "an hourly ripple on a stronger day: the day",
            series(14, 3.0, 7, |i| {
                100.0 + 40.0 * (TAU * i / 1440.0).sin() + 8.0 * (TAU * i / 60.0).sin()
            }),
            Some(DAY),
            0.8,
        ),
        ("white noise", series(14, 10.0, 8, |_| 50.0), None, 0.0),
        ("constant", vec![3.0; 14 * 1440], None, 0.0),
        (
            "a trend without a cycle",
            series(14, 2.0, 9, |i| 10.0 + i / 100.0),
            None,
            0.0,
        ),
    ];
    for (case, values, want, min_confidence) in cases {
        let got = find(&values, 60.0);
        match (want, got) {
            (None, None) => {}
            (Some(seconds), Some(p)) => {
                // Calendar periods exactly (snapped), others within 1%.
                let calendar = [HOUR, DAY, WEEK].contains(&seconds);
                let off = (p.refined * 60.0 - seconds).abs();
                assert!(
                    if calendar {
                        off == 0.0
                    } else {
                        off <= 0.01 * seconds
                    },
                    "{case}: found {} s, want {seconds} s ({p:?})",
                    p.refined * 60.0
                );
                assert!(
                    p.confidence >= min_confidence,
                    "{case}: confidence {:.2} under {min_confidence}",
                    p.confidence
                );
            }
            _ => panic!("{case}: found {got:?}, want a period of {want:?} s"),
        }
    }
}

/// The values and step of a `ts,value` file of Unix-second times.
fn read(file: &std::path::Path) -> (Vec<f64>, f64) {
    let path = file.display();
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let (t, v) = line
                .split_once(',')
                .unwrap_or_else(|| panic!("{path}:{}: no comma", i + 2));
            let parse = |s: &str| {
                s.trim()
                    .parse::<f64>()
                    .unwrap_or_else(|e| panic!("{path}:{}: {e}", i + 2))
            };
            (parse(t), parse(v))
        })
        .collect();
    (rows.iter().map(|r| r.1).collect(), rows[1].0 - rows[0].0)
}

/// A period in seconds as the table writes it.
fn label(p: Option<Period>, step: f64) -> String {
    p.map_or("none".into(), |p| {
        leadtime_policy_predictive::duration(p.refined * step)
    })
}

#[test]
fn crane_labelled_production_series() {
    // gocrane/crane pkg/prediction/dsp/test_data/inputN.csv (Apache-2.0), labelled by Crane's
    // pkg/prediction/dsp/signal_test.go (`periodic`, and `periods` for the periodic ones). Ours: what the policy
    // finds in the last 14 days, and its confidence. The disagreements are kept in the table,
    // with why.
    let table: [(&str, &str, &str, f64); 16] = [
        ("input0", "1d", "1d", 0.98),
        // Its week repeats better than its day (0.82 against 0.75): the days of a week differ.
        ("input1", "1d", "7d", 0.82),
        ("input2", "7d", "7d", 0.89),
        // A 6-minute oscillation (0.43) on near-constant tiny values; Crane: not periodic.
        ("input3", "none", "5m56s", 0.43),
        ("input4", "none", "none", 0.0),
        ("input5", "none", "none", 0.0),
        // A 3-day cycle Crane's daily test does not look for.
        ("input6", "none", "3d1h", 0.66),
        ("input7", "none", "none", 0.0),
        ("input8", "7d", "7d", 0.67),
        ("input9", "1d", "1d", 0.98),
        // Autocorrelation 0.17 at a day and 0.13 at a week: nothing repeats enough to rely on.
        ("input10", "7d", "none", 0.0),
        ("input11", "1d", "1d", 0.92),
        ("input12", "7d", "7d", 0.96),
        ("input13", "7d", "7d", 0.98),
        // Its days repeat at 0.98 and every multiple of a day as well (0.97-0.98): the week
        // adds too little (0.99) to prefer it.
        ("input14", "7d", "1d", 0.98),
        ("input15", "7d", "7d", 1.0),
    ];
    let Some(dir) = common::crane_series() else {
        return;
    };
    let mut agree = 0;
    for (name, crane, ours, confidence) in table {
        let (values, step) = read(&dir.join(format!("{name}.csv")));
        let p = find(&values, step);
        assert_eq!(label(p, step), ours, "{name} ({p:?})");
        let c = p.map_or(0.0, |p| p.confidence);
        assert!((c - confidence).abs() < 0.01, "{name}: confidence {c:.3}");
        agree += usize::from(crane == ours);
    }
    // Before the check of a period's multiples the policy agreed on 4 of the 11 periodic series
    // (issue #21); now on 8 of them and on 3 of the 5 that are not periodic.
    assert!(agree >= 11, "{agree} of 16 agree with Crane's labels");
}

#[test]
fn bundled_traces() {
    // (file under testdata, step in seconds, period found, confidence)
    let table: [(&str, f64, &str, f64); 5] = [
        // Weekends ride lower than weekdays: the week.
        ("traces/nyc_taxi.csv", 1800.0, "7d", 0.81),
        ("traces/art_daily_small_noise.csv", 300.0, "1d", 0.99),
        ("traces/crane_dsp_input0.csv", 60.0, "1d", 0.98),
        ("traces/elb_request_count_8c0756.csv", 300.0, "none", 0.0),
        ("traces/Twitter_volume_AMZN.csv", 300.0, "1d", 0.46),
    ];
    for (path, step, want, confidence) in table {
        let text = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata")
                .join(path),
        )
        .unwrap();
        // These files are on their grid with no gap; the time column is not needed.
        let values: Vec<f64> = text
            .lines()
            .skip(1)
            .map(|l| {
                l.rsplit(',')
                    .next()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or_else(|| panic!("{path}: {l}"))
            })
            .collect();
        let p = find(&values, step);
        assert_eq!(label(p, step), want, "{path} ({p:?})");
        let c = p.map_or(0.0, |p| p.confidence);
        assert!((c - confidence).abs() < 0.01, "{path}: confidence {c:.3}");
    }
}
