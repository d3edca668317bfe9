//! A planned surge, declared: on a bundled trace with a 3x surge added for two hours, the event
//! in the schedule takes under-provisioning during the surge to about zero for the predictive
//! policy and the HPA alike, at a small cost; undeclared, both are short at least one ready time
//! (5 minutes) of it. And a declared event is left out of what the predictive policy learns.

use leadtime::{Engine, Limits};
use leadtime_backtest::{self as simulate, Columns, Config, Job, ReadyTimes, Schedule, Trace};

/// 2014-07-22 20:00 UTC (a Tuesday evening of the trace), Unix ms.
const SURGE_START: i64 = 1_406_059_200_000;
const SURGE_MS: i64 = 2 * 3_600_000;

const SCHEDULE: &str = "
events:
  - name: launch
    start: 2014-07-22 20:00
    duration: 2h
    factor: 3
";

/// The first five weeks of nyc_taxi with every value during the surge tripled, and the
/// capacity per pod at which their usual peak needs 20 pods (the surge's needs about 60).
fn surged() -> (Trace, f64) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
    let full = Trace::from_file(&dir.join("nyc_taxi.csv"), &Columns::default()).expect("trace");
    let points = (35 * 86_400_000 / full.step_ms) as usize;
    let values: Vec<f64> = full.values[..points]
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = full.start_ms + i as i64 * full.step_ms;
            if (SURGE_START..SURGE_START + SURGE_MS).contains(&t) {
                3.0 * v
            } else {
                v
            }
        })
        .collect();
    let usual = Trace::from_values(
        "usual",
        full.start_ms,
        full.step_ms,
        full.values[..points].to_vec(),
    );
    let trace = Trace::from_values("nyc_taxi_surge", full.start_ms, full.step_ms, values);
    (trace, simulate::capacity_for_peak(&usual, 20))
}

#[test]
fn a_declared_surge_is_met_at_a_small_cost() {
    let (trace, capacity) = surged();
    let mut config = Config::new(capacity, ReadyTimes::Fixed(300.0));
    config.interval_ms = Some(60_000);
    config.warmup_ms = 14 * 86_400_000;
    config.schedule = Some(Schedule::parse(SCHEDULE).expect("schedule"));
    let mut jobs = Vec::new();
    for policy in ["predictive", "hpa"] {
        jobs.push(Job {
            scheduled: false,
            ..Job::new(policy)
        });
        jobs.push(Job {
            label: format!("{policy}+schedule"),
            ..Job::new(policy)
        });
    }
    let engine = Engine::new(&Limits::default()).expect("engine");
    let run = simulate::run(&engine, &trace, &config, &jobs, &|_: u64| {}).expect("runs");
    let row = |label: &str| {
        run.results
            .iter()
            .find(|r| r.policy == label)
            .unwrap_or_else(|| panic!("a row for {label}"))
    };
    for policy in ["predictive", "hpa"] {
        let (without, with) = (row(policy), row(&format!("{policy}+schedule")));
        let during = |r: &simulate::PolicyResult| r.event_under_provisioned_pct.expect("scored");
        let extra = with.pod_hours / without.pod_hours - 1.0;
        println!(
            "{policy}: during the surge {:.1}% under-provisioned undeclared, {:.1}% declared; \
             whole trace {:.2}% -> {:.2}%; pod-hours {:.1} -> {:.1} ({:+.2}%)",
            during(without),
            during(with),
            without.under_provisioned_pct,
            with.under_provisioned_pct,
            without.pod_hours,
            with.pod_hours,
            100.0 * extra
        );
        // Undeclared, a step surge is met one ready time late at best: 5 of its 120 minutes.
        assert!(
            during(without) > 4.0,
            "{policy}: an undeclared surge should hurt"
        );
        assert!(
            during(with) < 2.0,
            "{policy}: declared, the surge should be met"
        );
        assert!(
            (0.0..0.02).contains(&extra),
            "{policy}: the schedule should cost under 2% more pod-hours"
        );
    }
    // The oracle is scored during the event too, and is never short.
    assert_eq!(row("oracle").event_under_provisioned_pct, Some(0.0));
}
