//! The backtest simulator (`leadtime-backtest`): trace reading, conservation, the oracle's
//! guarantees, no peeking, ready times fed back, determinism. Properties of the simulator, not
//! of any policy's quality.

use leadtime::{Engine, Limits, Request};
use leadtime_backtest::{
    self as backtest, simulate, simulate_oracle, Columns, Config, Job, ReadyTimes, Trace,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;

const MIN: i64 = 60_000;

fn no_progress(_: u64) {}

/// A daily-ish wave with steps, at one-minute points, from a seed.
fn wave(points: usize, seed: u64) -> Trace {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values = (0..points)
        .map(|i| {
            let noise: f64 = rng.random();
            let phase = i as f64 / 240.0 * std::f64::consts::TAU;
            let step = if (i / 97) % 3 == 0 { 30.0 } else { 0.0 };
            (100.0 + 70.0 * phase.sin() + step + 20.0 * noise).max(0.0)
        })
        .collect();
    Trace::from_values("wave", 1_700_000_000_000, MIN, values)
}

fn config(ready: ReadyTimes) -> Config {
    let mut c = Config::new(10.0, ready);
    c.record_series = true;
    c
}

fn parse(text: &str) -> Result<Trace, String> {
    Trace::parse(text, "t.csv", &Columns::default()).map_err(|e| e.to_string())
}

#[test]
fn trace_formats_and_columns_are_read() {
    let cases: &[(&str, &str, i64, usize)] = &[
        // (what, text, step ms, points)
        (
            "datetime, header, no final newline",
            "timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01 00:30:00,2",
            1_800_000,
            2,
        ),
        ("unix seconds", "ts,value\n1628640000,1\n1628640060,2\n", 60_000, 2),
        (
            "rfc 3339, value first",
            "load,when\n5,2024-01-01T00:00:00Z\n6,2024-01-01T00:05:00Z\n7,2024-01-01T01:10:00+01:00",
            300_000,
            3,
        ),
        ("no header", "1628640000,1\n1628640060,2\n1628640120,3\n", 60_000, 3),
        (
            "a gap is kept as missing",
            "ts,value\n0,1\n60,2\n180,4\n240,5\n",
            60_000,
            5,
        ),
    ];
    for (what, text, step, n) in cases {
        let t = parse(text).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((t.step_ms, t.len()), (*step, *n), "{what}");
    }
    let gap = parse("ts,value\n0,1\n60,2\n180,4\n240,5\n").unwrap();
    assert!(gap.values[2].is_nan() && gap.gaps == 1);
    assert_eq!(
        gap.demand()[2],
        2.0,
        "demand holds the last value through a gap"
    );
    let rfc = parse(
        "load,when\n5,2024-01-01T00:00:00Z\n6,2024-01-01T01:00:00+01:00\n7,2024-01-01T00:10:00Z\n",
    );
    assert!(rfc.is_err(), "the +01:00 time equals the first: a repeat");
}

#[test]
fn columns_can_be_named() {
    let text = "a,b,c\n1,2024-01-01 00:00:00,9\n2,2024-01-01 00:01:00,8\n";
    let named = Columns {
        time: Some("b".into()),
        value: Some("c".into()),
    };
    let t = Trace::parse(text, "x.csv", &named).unwrap();
    assert_eq!(t.values, vec![9.0, 8.0]);
    let by_index = Columns {
        time: Some("1".into()),
        value: Some("0".into()),
    };
    assert_eq!(
        Trace::parse(text, "x.csv", &by_index).unwrap().values,
        vec![1.0, 2.0]
    );
    let err = Trace::parse(
        text,
        "x.csv",
        &Columns {
            time: Some("nope".into()),
            value: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no time column `nope`") && err.contains("a, b, c"),
        "{err}"
    );
}

#[test]
fn trace_errors_name_the_line() {
    let cases = [
        (
            "ts,value\n0,1\n120,2\n60,3\n",
            "t.csv:4:",
            "before the time of line 3",
        ),
        (
            "ts,value\n0,1\n60,2\n60,3\n",
            "t.csv:4:",
            "repeats the time of line 3",
        ),
        (
            "ts,value\n0,1\n60,abc\n",
            "t.csv:3:",
            "value `abc` is not a number",
        ),
        ("ts,value\n0,1\n60,-2\n", "t.csv:3:", "0 or more"),
        ("ts,value\n0,1\n60,inf\n", "t.csv:3:", "finite"),
        (
            "ts,value\n0,1\nyesterday,2\n",
            "t.csv:3:",
            "time `yesterday`",
        ),
        (
            "ts,value\n0,1\n60,2\n120,3\n150,4\n",
            "t.csv:5:",
            "off the trace's 60s grid",
        ),
        ("ts,value\n0,1\n60\n", "t.csv:3:", "no value column"),
        ("ts,value\n0,1\n", "t.csv:", "at least 2 data rows"),
        ("", "t.csv:", "no rows"),
    ];
    for (text, place, message) in cases {
        let err = parse(text).expect_err(text);
        assert!(
            err.starts_with(place) && err.contains(message),
            "{text:?}: got `{err}`, want `{place}` … `{message}`"
        );
    }
}

#[test]
fn bundled_traces_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
    for name in [
        "nyc_taxi.csv",
        "crane_dsp_input0.csv",
        "art_daily_small_noise.csv",
        "Twitter_volume_AMZN.csv",
        "elb_request_count_8c0756.csv",
    ] {
        let t = Trace::from_file(&dir.join(name), &Columns::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(t.len() > 1000 && t.peak() > 0.0, "{name}");
    }
}

#[test]
fn pod_hours_add_up_and_removal_is_immediate() {
    let trace = wave(600, 1);
    let c = config(ReadyTimes::Fixed(300.0));
    // Alternates 10 and 3 pods every 100 minutes.
    let start = trace.start_ms;
    let mut decider = |r: &Request| {
        Ok(if ((r.now - start) / MIN / 100) % 2 == 0 {
            10
        } else {
            3
        })
    };
    let run = simulate(&trace, &c, &mut decider, &no_progress).unwrap();
    let s = run.series.unwrap();
    let from_series: f64 = s.replicas.iter().map(|&r| f64::from(r)).sum::<f64>() / 60.0;
    let row = run.tally.result("x", None);
    assert!(
        (row.pod_hours - from_series).abs() < 1e-9,
        "{} vs {from_series}",
        row.pod_hours
    );
    assert!((row.mean_replicas * 10.0 - row.pod_hours).abs() < 1e-9);
    // Scale-down is delayed by the default 300 s window, then happens in one step.
    let first_down = s.replicas.iter().position(|&r| r == 3).unwrap();
    assert_eq!(
        s.replicas[first_down - 1],
        10,
        "removal is one step, not gradual"
    );
    assert!(row.scale_events >= 5 && row.peak_replicas == 10);
}

#[test]
fn ready_capacity_lags_by_the_ready_time_and_feeds_ready_times() {
    let trace = Trace::from_values("flat", 0, MIN, vec![50.0; 60]);
    let c = config(ReadyTimes::Fixed(300.0));
    let seen = RefCell::new(Vec::new());
    let mut decider = |r: &Request| {
        seen.borrow_mut()
            .push((r.now, r.replicas, r.ready_times.clone()));
        Ok(if r.now >= 10 * MIN { 9 } else { 5 })
    };
    let run = simulate(&trace, &c, &mut decider, &no_progress).unwrap();
    let s = run.series.unwrap();
    // Four pods asked at minute 10 are ready at minute 15, not before.
    assert_eq!(s.ready_capacity[14], 50.0);
    assert_eq!(s.ready_capacity[15], 90.0);
    let seen = seen.into_inner();
    let (_, replicas, ready) = &seen[14];
    assert_eq!((replicas.current, replicas.ready), (9, 5));
    assert!(ready.is_empty(), "not ready yet, nothing observed");
    let (_, replicas, ready) = &seen[15];
    assert_eq!((replicas.current, replicas.ready), (9, 9));
    assert_eq!(ready.len(), 4);
    assert!(ready
        .iter()
        .all(|r| r.started_at == 10 * MIN && r.ready_seconds == 300.0));
}

#[test]
fn requests_carry_no_future_and_at_most_the_lookback() {
    let trace = wave(3000, 2);
    let mut c = config(ReadyTimes::Fixed(120.0));
    c.lookback_ms = 90 * MIN;
    let mut calls = 0;
    let mut decider = |r: &Request| {
        calls += 1;
        let m = &r.metrics[0];
        assert!(
            m.end <= r.now,
            "window ends at {} after now {}",
            m.end,
            r.now
        );
        assert!(
            m.values.len() <= 90,
            "{} values over a 90-point lookback",
            m.values.len()
        );
        let i = ((r.now - trace.start_ms) / MIN) as usize;
        assert_eq!(
            m.values.last(),
            trace.values.get(i),
            "the last value is now's"
        );
        assert_eq!(m.target_per_pod, 10.0);
        Ok(r.replicas.current)
    };
    simulate(&trace, &c, &mut decider, &no_progress).unwrap();
    assert_eq!(calls, 3000);
}

#[test]
fn oracle_is_never_under_provisioned_and_never_costlier() {
    for seed in 1..6 {
        let trace = wave(2000, seed);
        for ready in [
            ReadyTimes::Fixed(300.0),
            ReadyTimes::Fixed(45.0),
            ReadyTimes::LogNormal {
                median: 120.0,
                p90: 400.0,
            },
        ] {
            for interval in [MIN, 5 * MIN] {
                let mut c = config(ready.clone());
                c.interval_ms = Some(interval);
                // Policies cannot start pods before the trace; the oracle's first pods exist.
                c.warmup_ms = 60 * MIN;
                c.seed = seed;
                let oracle = simulate_oracle(&trace, &c)
                    .unwrap()
                    .tally
                    .result("oracle", None);
                assert_eq!(oracle.under_provisioned_pct, 0.0, "{ready:?} seed {seed}");
                assert_eq!(oracle.unmet_demand_pct, 0.0);
                if !ready.is_fixed() {
                    continue; // exact optimum claimed for fixed ready times
                }
                // Policies that look ahead with a margin: those never under-provisioned cost
                // at least the oracle.
                let mut never_under = 0;
                for (ahead, margin) in [(10, 0.0), (15, 0.1), (30, 0.3), (60, 0.0)] {
                    let mut decider = |r: &Request| {
                        let i = ((r.now - trace.start_ms) / MIN) as usize;
                        let peak = trace.values[i..(i + ahead).min(trace.len())]
                            .iter()
                            .fold(0.0f64, |a, &b| a.max(b));
                        Ok((peak * (1.0 + margin) / 10.0).ceil() as u32)
                    };
                    let row = simulate(&trace, &c, &mut decider, &no_progress)
                        .unwrap()
                        .tally
                        .result("p", None);
                    if row.under_provisioned_pct == 0.0 {
                        never_under += 1;
                        assert!(
                            oracle.pod_hours <= row.pod_hours + 1e-9,
                            "oracle {} > policy {} ({ready:?}, ahead {ahead})",
                            oracle.pod_hours,
                            row.pod_hours
                        );
                    }
                }
                assert!(never_under > 0, "no comparison made for {ready:?}");
            }
        }
    }
}

#[test]
fn oracle_keeps_a_pod_through_a_gap_shorter_than_the_ready_time() {
    // Need 2 pods, then 1 for `gap` minutes, then 2 again; ready time 5 minutes.
    for (gap, kept) in [(3usize, true), (4, true), (8, false)] {
        let mut values = vec![20.0; 20];
        values.extend(vec![10.0; gap]);
        values.extend(vec![20.0; 20]);
        let trace = Trace::from_values("gap", 0, MIN, values);
        let c = config(ReadyTimes::Fixed(300.0));
        let s = simulate_oracle(&trace, &c).unwrap().series.unwrap();
        let low = s.replicas[20..20 + gap].iter().min().copied().unwrap();
        assert_eq!(low == 2, kept, "gap {gap}: {:?}", &s.replicas[15..45]);
    }
}

#[test]
fn runs_are_deterministic_per_seed() {
    let trace = wave(1500, 3);
    let mut c = config(ReadyTimes::LogNormal {
        median: 90.0,
        p90: 300.0,
    });
    let engine = Engine::new(&Limits::default()).unwrap();
    let jobs = [Job::new("target-tracking"), Job::new("hpa")];
    let strip = |b: backtest::Backtest| {
        b.results
            .into_iter()
            .map(|mut r| {
                (r.policy_us_p50, r.policy_us_p99) = (0.0, 0.0);
                r
            })
            .collect::<Vec<_>>()
    };
    let a = strip(backtest::run(&engine, &trace, &c, &jobs, &no_progress).unwrap());
    let b = strip(backtest::run(&engine, &trace, &c, &jobs, &no_progress).unwrap());
    assert_eq!(a, b);
    // The same rows one job at a time: parallel runs do not interfere.
    let one = strip(backtest::run(&engine, &trace, &c, &jobs[1..], &no_progress).unwrap());
    assert_eq!(one[0], a[1]);
    c.seed = 2;
    let other = strip(backtest::run(&engine, &trace, &c, &jobs, &no_progress).unwrap());
    assert_ne!(a, other, "another seed draws other ready times");
}

#[test]
fn warmup_is_not_scored_and_errors_hold_replicas() {
    let trace = wave(1000, 4);
    let mut c = config(ReadyTimes::Fixed(60.0));
    c.warmup_ms = 400 * MIN;
    let mut calls = 0;
    let mut decider = |r: &Request| {
        calls += 1;
        if calls % 2 == 0 {
            return Err(leadtime::Error::PolicyError("odd".into()));
        }
        Ok((r.metrics[0].last().unwrap() / 10.0).ceil() as u32)
    };
    let run = simulate(&trace, &c, &mut decider, &no_progress).unwrap();
    assert_eq!(run.series.unwrap().times.len(), 600);
    assert_eq!(run.tally.result("x", None).policy_errors, 300);
    c.warmup_ms = 1000 * MIN;
    let err = simulate(&trace, &c, &mut decider, &no_progress).unwrap_err();
    assert!(err.to_string().contains("warmup"), "{err}");
}

#[test]
fn every_row_has_the_oracle_as_reference() {
    let trace = wave(800, 5);
    let c = Config::new(
        backtest::capacity_for_peak(&trace, 20),
        ReadyTimes::Fixed(300.0),
    );
    let engine = Engine::new(&Limits::default()).unwrap();
    let b = backtest::run(
        &engine,
        &trace,
        &c,
        &[Job::new("target-tracking")],
        &no_progress,
    )
    .unwrap();
    assert_eq!(b.steps, 800);
    let oracle = b.results.last().unwrap();
    assert_eq!(oracle.policy, "oracle");
    assert!(oracle.peak_replicas <= 20 && oracle.peak_replicas >= 19);
    for r in &b.results {
        assert_eq!(r.oracle_pod_hours, oracle.pod_hours);
        assert!((r.cost_vs_oracle - r.pod_hours / oracle.pod_hours).abs() < 1e-12);
        for v in [r.under_provisioned_pct, r.unmet_demand_pct, r.mean_replicas] {
            assert!(v.is_finite() && v >= 0.0);
        }
    }
}

#[test]
fn sweeps_vary_each_policys_knob() {
    let jobs = backtest::sweep_jobs(&Job::new("predictive"));
    assert!(jobs.len() >= 4);
    assert!(jobs.iter().all(|j| j.params.contains_key("quantile")));
    let hpa = backtest::sweep_jobs(&Job::new("hpa"));
    assert!(hpa.iter().all(|j| j.target_utilization.is_some()));
    // The peers are swept as their users tune them: by the target utilization.
    for peer in ["holt-winters", "crane-dsp"] {
        let jobs = backtest::sweep_jobs(&Job::new(peer));
        assert!(jobs.len() >= 4, "{peer}");
        assert!(
            jobs.iter().all(|j| j.target_utilization.is_some()),
            "{peer}"
        );
    }
    // Every built-in has a knob, from the one table of built-ins.
    for name in leadtime::builtin_names() {
        assert!(backtest::knob(name).is_some(), "{name}");
    }
    assert_eq!(backtest::sweep_jobs(&Job::new("my.wasm")).len(), 1);
}

#[test]
fn resample_buckets_an_irregular_export() {
    use leadtime_backtest::{Aggregate, Resample};
    // Times drift off any grid and come unevenly; one bucket has no row.
    let text = "timestamp,value\n\
                2024-01-01 00:00:10,2\n\
                2024-01-01 00:03:50,4\n\
                2024-01-01 00:06:00,9\n\
                2024-01-01 00:17:59,1\n";
    let err = parse(text).unwrap_err();
    assert!(
        err.contains("t.csv:") && err.contains("--resample"),
        "{err}"
    );
    let r = |s: &str| Resample::parse(s).unwrap();
    assert_eq!(
        r("5m"),
        Resample {
            step_ms: 5 * MIN,
            aggregate: Aggregate::Mean
        }
    );
    let read = |spec: &str| {
        Trace::parse_resampled(text, "t.csv", &Columns::default(), Some(r(spec))).unwrap()
    };
    let mean = read("5m");
    assert_eq!(mean.step_ms, 5 * MIN);
    assert_eq!(
        mean.start_ms % (5 * MIN),
        0,
        "buckets start on the epoch's grid"
    );
    assert_eq!(mean.values.len(), 4);
    assert_eq!(mean.values[0], 3.0);
    assert_eq!(mean.values[1], 9.0);
    assert!(mean.values[2].is_nan(), "an empty bucket is a gap");
    assert_eq!(mean.gaps, 1);
    assert_eq!(read("5m:max").values[0], 4.0);
    assert_eq!(read("5m:sum").values[0], 6.0);
    for bad in ["5m:median", "0s", "fast"] {
        assert!(Resample::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn pods_at_a_quantile_ignore_the_outlier_maximum() {
    let mut values = vec![10.0; 99];
    values.push(1000.0);
    let t = Trace::from_values("t", 0, MIN, values);
    assert_eq!(backtest::capacity_for_peak(&t, 20), 50.0);
    let c = backtest::capacity_for_quantile(&t, 0.5, 20).unwrap();
    assert_eq!(c, 0.5, "the median needs 20 pods");
    assert_eq!(backtest::capacity_for_quantile(&t, 0.0, 20), None);
    assert_eq!(
        backtest::capacity_for_quantile(&Trace::from_values("z", 0, MIN, vec![0.0; 5]), 0.9, 3),
        None,
        "a quantile of 0 gives no capacity"
    );
}
