//! For each trace in testdata/traces: the period found, the forecast error at a 5-minute lead
//! (MASE against the last value, which is what a reactive policy assumes, and sMAPE), and the
//! time per decision natively and in wasm. Run from the repo root:
//! `cargo run --release -p leadtime-policy-predictive --example trace_report`.

use leadtime::Source;
use leadtime::{Engine, Limits, Param, Params};
use leadtime_guest::{codec, Metric, Replicas, Request, Workload};
use leadtime_policy_predictive::{decide, State};
use std::time::Instant;

const LEAD_SECONDS: f64 = 300.0;

/// Seconds since the epoch of `YYYY-MM-DD HH:MM:SS` (UTC) or of plain Unix seconds.
fn parse_time(s: &str) -> Option<i64> {
    if let Ok(v) = s.parse::<f64>() {
        return Some(v as i64);
    }
    let (date, time) = s.split_once(' ')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (y, m, day) = (d[0], d[1], d[2]);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + t[0] * 3600 + t[1] * 60 + t.get(2).copied().unwrap_or(0))
}

fn read(path: &std::path::Path) -> (Vec<i64>, Vec<f64>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut times = Vec::new();
    let mut values = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split(',');
        let (Some(t), Some(v)) = (cols.next(), cols.next()) else {
            continue;
        };
        if let (Some(t), Ok(v)) = (parse_time(t.trim()), v.trim().parse::<f64>()) {
            times.push(t);
            values.push(v);
        }
    }
    (times, values)
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/traces");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut params = Params::new();
    params.insert("lead_seconds".into(), Param::Number(LEAD_SECONDS));
    println!("| trace | step | period found | MASE @5m | sMAPE @5m | native µs/decision | wasm µs/decision (p50) |");
    println!("|---|---|---|---|---|---|---|");
    for path in files {
        let (times, values) = read(&path);
        let step = times[1] - times[0];
        let h = ((LEAD_SECONDS / step as f64).ceil() as usize).max(1);
        let keep = (14 * 86_400 / step) as usize;
        let start = (86_400 / step) as usize;
        let mut policy = engine
            .load(Source::builtin("predictive"), params.clone())
            .unwrap();
        let (mut ae, mut naive, mut smape, mut n) = (0.0, 0.0, 0.0, 0usize);
        let mut state = None;
        let mut native_time = 0.0;
        let mut wasm_times = Vec::new();
        let mut period = String::from("none");
        for t in start..values.len() - h {
            let now = times[t] * 1000;
            let mut req = Request {
                abi_version: 1,
                now,
                workload: Workload::default(),
                replicas: Replicas {
                    current: 1,
                    ready: 1,
                    min: 1,
                    max: 10_000,
                },
                metrics: vec![Metric {
                    name: "load".into(),
                    target_per_pod: 1.0,
                    interval_seconds: step as f64,
                    end: now,
                    values: values[(t + 1).saturating_sub(keep)..=t].to_vec(),
                }],
                ready_times: vec![],
                events: vec![],
                params: params.clone(),
                state: None,
            };
            let clock = Instant::now();
            let wasm = policy.decide(&req).unwrap();
            wasm_times.push(clock.elapsed().as_secs_f64() * 1e6);
            req.state = state.take();
            let clock = Instant::now();
            let out = decide(&req).unwrap();
            native_time += clock.elapsed().as_secs_f64() * 1e6;
            state = out.state.clone();
            assert_eq!(Some(wasm.proposed), out.replicas);
            let Some(f) = out.forecast else { continue };
            let (pred, actual) = (f.values[h - 1], values[t + h]);
            ae += (pred - actual).abs();
            naive += (values[t] - actual).abs();
            let denom = pred.abs() + actual.abs();
            if denom > 0.0 {
                smape += 2.0 * (pred - actual).abs() / denom;
            }
            n += 1;
            if let Some(s) = state
                .as_deref()
                .and_then(|b| codec::from_msgpack::<State>(b).ok())
            {
                if let Some((_, m)) = s.models.first() {
                    period = if m.lag == 0 {
                        "none".into()
                    } else {
                        format!(
                            "{} ({:.2})",
                            leadtime_policy_predictive::duration(m.period_points * step as f64),
                            m.confidence
                        )
                    };
                }
            }
        }
        wasm_times.sort_by(f64::total_cmp);
        let decisions = values.len() - h - start;
        println!(
            "| {} | {}s | {period} | {:.2} | {:.1}% | {:.0} | {:.0} |",
            path.file_name().unwrap().to_string_lossy(),
            step,
            ae / naive.max(f64::MIN_POSITIVE),
            100.0 * smape / n.max(1) as f64,
            native_time / decisions as f64,
            wasm_times[wasm_times.len() / 2],
        );
    }
}
