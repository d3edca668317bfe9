//! Conformance of the built-in `hpa` policy (run as wasm through the engine) with the Kubernetes
//! HPA controller, `pkg/controller/podautoscaler` in kubernetes/kubernetes (the behavior rules
//! have their own tests, tests/behavior.rs). Every case says where its expected value comes from: an upstream test
//! (`replica_calculator_test.go`, `horizontal_test.go`) whose numbers it reuses, or the rule of
//! the controller it checks. Upstream quantities are milli-values: a level of 8600 is 8.6 here.

use leadtime::behavior::{Behavior, Controller};
use leadtime::Source;
use leadtime::{Engine, ErrorKind, Limits, Metric, Param, Params, Replicas, Request, Workload};

const NOW: i64 = 1_700_000_000_000;
const NAN: f64 = f64::NAN;

/// One metric: its window (oldest first) and target per pod.
type M = (&'static [f64], f64);

struct PolicyCase {
    /// Where the expected value comes from.
    source: &'static str,
    metrics: &'static [M],
    current: u32,
    ready: u32,
    min: u32,
    max: u32,
    params: &'static [(&'static str, P)],
    want: u32,
    /// Must appear in the decision's reason.
    reason: &'static str,
}

/// A parameter value in a const table.
#[derive(Clone, Copy)]
enum P {
    N(f64),
    T(&'static str),
}

fn params(list: &[(&str, P)]) -> Params {
    list.iter()
        .map(|(k, v)| {
            let v = match v {
                P::N(n) => Param::Number(*n),
                P::T(t) => Param::Text((*t).to_string()),
            };
            ((*k).to_string(), v)
        })
        .collect()
}

fn request(metrics: &[M], current: u32, ready: u32, min: u32, max: u32) -> Request {
    Request {
        abi_version: leadtime::abi::ABI_VERSION,
        now: NOW,
        workload: Workload {
            namespace: "default".into(),
            name: "web".into(),
        },
        replicas: Replicas {
            current,
            ready,
            min,
            max,
        },
        metrics: metrics
            .iter()
            .enumerate()
            .map(|(i, (values, target))| Metric {
                name: format!("m{i}"),
                target_per_pod: *target,
                interval_seconds: 15.0,
                end: NOW,
                values: values.to_vec(),
            })
            .collect(),
        ready_times: vec![],
        events: vec![],
        params: Params::new(),
        state: None,
    }
}

const PODS: (&str, P) = ("metric_type", P::T("pods"));

#[rustfmt::skip]
const POLICY_CASES: &[PolicyCase] = &[
    // --- External metric, AverageValue target (the default form) ---
    PolicyCase { source: "TestReplicaCalcScaleUpPerPodCMExternal: 8600m total, 2150m per pod, 3 pods -> 4",
        metrics: &[(&[8.6], 2.15)], current: 3, ready: 3, min: 1, max: 100, params: &[], want: 4, reason: "ceil(8.6 / 2.15) = 4" },
    PolicyCase { source: "TestReplicaCalcScaleDownPerPodCMExternal: 8600m total, 2867m per pod, 5 pods -> 3",
        metrics: &[(&[8.6], 2.867)], current: 5, ready: 5, min: 1, max: 100, params: &[], want: 3, reason: "= 3" },
    PolicyCase { source: "TestReplicaCalcTolerancePerPodCMExternal: ratio 0.989 is within 10%, 3 pods stay",
        metrics: &[(&[8.6], 2.9)], current: 3, ready: 3, min: 1, max: 100, params: &[], want: 3, reason: "within tolerance" },
    PolicyCase { source: "TestReplicaCalcConfigurableTolerancePerPodCMExternal: scale-up tolerance 1%, ratio 1.024 -> 4",
        metrics: &[(&[8.6], 2.8)], current: 3, ready: 3, min: 1, max: 100, params: &[("scale_up_tolerance", P::N(0.01))], want: 4, reason: "= 4" },
    PolicyCase { source: "TestScaleDownPerPodCMExternal (horizontal_test.go): 8600m total, AverageValue 3000m, 5 pods -> 3",
        metrics: &[(&[8.6], 3.0)], current: 5, ready: 5, min: 2, max: 6, params: &[], want: 3, reason: "= 3" },
    PolicyCase { source: "TestExternalPerPodMetricReplicaOverflow: the count saturates at the type's largest value (u32 here)",
        metrics: &[(&[1e15], 0.001)], current: 1, ready: 1, min: 1, max: u32::MAX, params: &[], want: u32::MAX, reason: "" },
    PolicyCase { source: "TestExternalPerPodMetricUsageOverflow: usage equal to a huge target keeps 1 pod",
        metrics: &[(&[9.2e15], 9.2e15)], current: 1, ready: 1, min: 1, max: 100, params: &[], want: 1, reason: "within tolerance" },
    PolicyCase { source: "rule: tolerance is inclusive, ratio exactly 1.1 keeps current (isWithin: ratio <= 1 + tolerance)",
        metrics: &[(&[11.0], 1.0)], current: 10, ready: 10, min: 1, max: 100, params: &[], want: 10, reason: "ratio 1.100 within tolerance" },
    PolicyCase { source: "rule: ratio 1.1001 is outside a 10% tolerance, ceil(11.001) = 12",
        metrics: &[(&[11.001], 1.0)], current: 10, ready: 10, min: 1, max: 100, params: &[], want: 12, reason: "= 12" },
    PolicyCase { source: "rule: tolerance is inclusive below too, ratio exactly 0.9 keeps current (1 - tolerance <= ratio)",
        metrics: &[(&[9.0], 1.0)], current: 10, ready: 10, min: 1, max: 100, params: &[], want: 10, reason: "within tolerance" },
    PolicyCase { source: "rule: ratio 0.8999 is outside a 10% tolerance, ceil(8.999) = 9",
        metrics: &[(&[8.999], 1.0)], current: 10, ready: 10, min: 1, max: 100, params: &[], want: 9, reason: "= 9" },
    PolicyCase { source: "TestReplicaCalcConfigurableTolerance 'Outside of a 0% tolerance': any change scales",
        metrics: &[(&[10.5], 1.0)], current: 10, ready: 10, min: 1, max: 100, params: &[("tolerance", P::N(0.0))], want: 11, reason: "= 11" },
    PolicyCase { source: "TestReplicaCalcConfigurableTolerance 'Within a 36% scale-down tolerance': ratio 0.65 keeps 3",
        metrics: &[(&[1.95], 1.0)], current: 3, ready: 3, min: 1, max: 100, params: &[("scale_down_tolerance", P::N(0.36))], want: 3, reason: "within tolerance" },
    PolicyCase { source: "TestReplicaCalcConfigurableTolerance 'Outside a 34% scale-down tolerance': ratio 0.65 -> 2",
        metrics: &[(&[1.95], 1.0)], current: 3, ready: 3, min: 1, max: 100, params: &[("scale_down_tolerance", P::N(0.34))], want: 2, reason: "= 2" },
    PolicyCase { source: "TestReplicaCalcConfigurableTolerance 'Within a 200% scale-up tolerance': ratio 1.9 keeps 3",
        metrics: &[(&[5.7], 1.0)], current: 3, ready: 3, min: 1, max: 100, params: &[("scale_up_tolerance", P::N(2.0))], want: 3, reason: "within tolerance" },
    PolicyCase { source: "TestReplicaCalcConfigurableTolerance 'Outside 8% scale-up tolerance (and superfluous scale-down tolerance)'",
        metrics: &[(&[3.27], 1.0)], current: 3, ready: 3, min: 1, max: 100, params: &[("scale_up_tolerance", P::N(0.08)), ("scale_down_tolerance", P::N(2.0))], want: 4, reason: "= 4" },
    PolicyCase { source: "rule: values are milli-quantities, 1100m / 100m is exactly 11 (float64 1.1/0.1 would give 12)",
        metrics: &[(&[1.1], 0.1)], current: 5, ready: 5, min: 1, max: 100, params: &[], want: 11, reason: "= 11" },
    PolicyCase { source: "rule (GetExternalPerPodMetricReplicas): the ratio counts all current pods, not only ready ones",
        metrics: &[(&[10.5], 1.0)], current: 10, ready: 5, min: 1, max: 100, params: &[], want: 10, reason: "within tolerance" },
    // --- Pods metric (metric_type = pods): average over ready pods ---
    PolicyCase { source: "TestReplicaCalcScaleUpCM: pods at 20, 10, 30 (total 60), target 15 -> 4",
        metrics: &[(&[60.0], 15.0)], current: 3, ready: 3, min: 1, max: 100, params: &[PODS], want: 4, reason: "= 4" },
    PolicyCase { source: "TestReplicaCalcScaleDownCM: five pods at 12 (total 60), target 20 -> 3",
        metrics: &[(&[60.0], 20.0)], current: 5, ready: 5, min: 1, max: 100, params: &[PODS], want: 3, reason: "= 3" },
    PolicyCase { source: "TestReplicaCalcToleranceCM: pods at 20, 21, 21, target 20: average 20.666 within 10%",
        metrics: &[(&[62.0], 20.0)], current: 3, ready: 3, min: 1, max: 100, params: &[PODS], want: 3, reason: "within tolerance" },
    PolicyCase { source: "TestReplicaCalcConfigurableToleranceCM: same load, scale-up tolerance 1% -> 4",
        metrics: &[(&[62.0], 20.0)], current: 3, ready: 3, min: 1, max: 100, params: &[PODS, ("scale_up_tolerance", P::N(0.01))], want: 4, reason: "= 4" },
    PolicyCase { source: "rule (calcPlainMetricReplicas): on a scale-up the not-ready pods count as idle: 60 over 4 pods at 10 -> 6",
        metrics: &[(&[60.0], 10.0)], current: 4, ready: 2, min: 1, max: 100, params: &[PODS], want: 6, reason: "not-ready pods as idle" },
    PolicyCase { source: "rule (calcPlainMetricReplicas): a scale-up that idle not-ready pods turn into a scale-down holds",
        metrics: &[(&[24.0], 10.0)], current: 4, ready: 2, min: 1, max: 100, params: &[PODS], want: 4, reason: "holding 4" },
    PolicyCase { source: "rule (calcPlainMetricReplicas): no ready pod reports the metric, so it is invalid and nothing changes",
        metrics: &[(&[60.0], 10.0)], current: 3, ready: 0, min: 1, max: 100, params: &[PODS], want: 3, reason: "no ready pod" },
    PolicyCase { source: "rule (getUsageRatioReplicaCount): the Pods form from zero replicas is ceil(total / target)",
        metrics: &[(&[25.0], 10.0)], current: 0, ready: 0, min: 0, max: 100, params: &[PODS], want: 3, reason: "from zero" },
    // --- several metrics (computeReplicasForMetrics) ---
    PolicyCase { source: "rule (computeReplicasForMetrics): the largest proposal wins",
        metrics: &[(&[40.0], 10.0), (&[90.0], 10.0)], current: 5, ready: 5, min: 1, max: 100, params: &[], want: 9, reason: "m1" },
    PolicyCase { source: "rule (computeReplicasForMetrics): a metric within tolerance outvotes one that scales down",
        metrics: &[(&[20.0], 10.0), (&[52.0], 10.0)], current: 5, ready: 5, min: 1, max: 100, params: &[], want: 5, reason: "m1: ratio 1.040 within tolerance" },
    PolicyCase { source: "TestNoScaleDownOneMetricEmpty / TestNoScaleDownOneMetricInvalid: one metric missing, no scale-down (5 stays 5)",
        metrics: &[(&[NAN, NAN], 10.0), (&[20.0], 10.0)], current: 5, ready: 5, min: 2, max: 6, params: &[], want: 5, reason: "not scaling down" },
    PolicyCase { source: "TestScaleUpOneMetricEmpty: one metric missing, the other still scales up (3 -> 4)",
        metrics: &[(&[NAN], 1.0), (&[4.0], 1.0)], current: 3, ready: 3, min: 2, max: 6, params: &[], want: 4, reason: "ignoring metric `m0`" },
    PolicyCase { source: "TestScaleUpBothMetricsEmpty: no metric has a value, 3 stays 3",
        metrics: &[(&[NAN], 1.0), (&[], 1.0)], current: 3, ready: 3, min: 2, max: 6, params: &[], want: 3, reason: "no metric is usable" },
    PolicyCase { source: "rule (computeReplicasForMetrics): no metric at all, nothing changes",
        metrics: &[], current: 3, ready: 3, min: 1, max: 6, params: &[], want: 3, reason: "no metric" },
    // --- the window: latest value ---
    PolicyCase { source: "rule: the latest value of the window counts, a trailing missing point is skipped",
        metrics: &[(&[100.0, 50.0, NAN], 10.0)], current: 2, ready: 2, min: 1, max: 100, params: &[], want: 5, reason: "= 5" },
    PolicyCase { source: "rule: the latest value of the window counts, not the peak",
        metrics: &[(&[300.0, 95.0], 10.0)], current: 2, ready: 2, min: 1, max: 100, params: &[], want: 10, reason: "= 10" },
    // --- zero replicas ---
    PolicyCase { source: "rule (getUsageRatioReplicaCount, currentReplicas = 0): scale from zero to ceil(ratio)",
        metrics: &[(&[8.6], 2.15)], current: 0, ready: 0, min: 0, max: 100, params: &[], want: 4, reason: "from zero" },
    PolicyCase { source: "rule (getUsageRatioReplicaCount, currentReplicas = 0): no load keeps zero",
        metrics: &[(&[0.0], 2.15)], current: 0, ready: 0, min: 0, max: 100, params: &[], want: 0, reason: "from zero" },
    PolicyCase { source: "TestScaleDownToZeroCMExternal: no load with minReplicas 0 scales 5 -> 0",
        metrics: &[(&[0.0], 14.4)], current: 5, ready: 5, min: 0, max: 6, params: &[], want: 0, reason: "= 0" },
    // --- min and max ---
    PolicyCase { source: "TestScaleDownRCImmediately: current 6 above max 5 goes to 5 whatever the metrics",
        metrics: &[(&[1000.0], 1.0)], current: 6, ready: 6, min: 2, max: 5, params: &[], want: 5, reason: "above max" },
    PolicyCase { source: "TestScaleUpRCImmediately: current 1 below min 2 goes to 2 whatever the metrics",
        metrics: &[(&[0.0], 1.0)], current: 1, ready: 1, min: 2, max: 6, params: &[], want: 2, reason: "below min" },
    PolicyCase { source: "TestScalingWithRules 'maxReplicas is the limit' (TooManyReplicas): the engine clamps to max",
        metrics: &[(&[100.0], 1.0)], current: 3, ready: 3, min: 1, max: 6, params: &[], want: 6, reason: "clamped to max 6" },
    PolicyCase { source: "TestScalingWithRules 'prenormalized desired replicas < minReplicas' (TooFewReplicas): clamped to min",
        metrics: &[(&[1.0], 1.0)], current: 3, ready: 3, min: 2, max: 8, params: &[], want: 2, reason: "clamped to min 2" },
];

#[test]
fn hpa_policy_conformance() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut failures = Vec::new();
    for case in POLICY_CASES {
        let mut policy = engine
            .load(Source::builtin("hpa"), params(case.params))
            .unwrap();
        let req = request(case.metrics, case.current, case.ready, case.min, case.max);
        match policy.decide(&req) {
            Ok(d) if d.replicas == case.want && d.reason.contains(case.reason) => {}
            Ok(d) => failures.push(format!(
                "{}\n    got {} ({}), want {} with reason containing {:?}",
                case.source, d.replicas, d.reason, case.want, case.reason
            )),
            Err(e) => failures.push(format!("{}\n    error: {e}", case.source)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        POLICY_CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn hpa_params_are_checked_at_load() {
    let engine = Engine::new(&Limits::default()).unwrap();
    for (bad, fragment) in [
        (vec![("tolerance", P::N(-0.1))], "tolerance"),
        (vec![("tolerance", P::T("ten"))], "tolerance"),
        (vec![("metric_type", P::T("Object"))], "metric_type"),
        (vec![("tolerence", P::N(0.1))], "unknown param `tolerence`"),
    ] {
        let err = engine
            .load(Source::builtin("hpa"), params(&bad))
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InitFailed, "{err}");
        assert!(err.to_string().contains(fragment), "{err}");
    }
}

#[test]
fn hpa_rejects_a_target_kubernetes_would_refuse() {
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut policy = engine.load(Source::builtin("hpa"), Params::new()).unwrap();
    let err = policy
        .decide(&request(&[(&[10.0], 0.0)], 3, 3, 1, 10))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyError);
    assert!(err.to_string().contains("target_per_pod"), "{err}");
}

#[test]
fn hpa_policy_with_default_behavior_over_a_load_step() {
    // The wasm policy and the guardrails together, as the backtest runs them. Expected values
    // from the rules: load 200 at 10 per pod asks 20; the default scale-up allows max(+4, ×2)
    // per 15 s (2 -> 6 -> 12 -> 20); after the load falls to 50 (asking 5), the default 300 s
    // scale-down window holds the highest recommendation (20) until the last 20, made at 30 s,
    // is a window old at 330 s; then 100% per 15 s lets it fall to 5 at once.
    let engine = Engine::new(&Limits::default()).unwrap();
    let mut policy = engine.load(Source::builtin("hpa"), Params::new()).unwrap();
    let mut guard = Controller::new(Behavior::default());
    let mut current = 2;
    for (t, load, want) in [
        (0, 200.0, 6),
        (15, 200.0, 12),
        (30, 200.0, 20),
        (45, 50.0, 20),
        (315, 50.0, 20),
        (330, 50.0, 5),
    ] {
        let mut req = request(&[(&[], 10.0)], current, current, 1, 100);
        req.now = NOW + t * 1000;
        req.metrics[0].values = vec![load];
        let decision = policy.decide(&req).unwrap();
        let (target, note) = guard.apply(req.now, &req.replicas, decision.proposed);
        assert_eq!(
            target, want,
            "at {t}s: policy {} ({}), guardrails {note:?}",
            decision.proposed, decision.reason
        );
        current = target;
    }
}
