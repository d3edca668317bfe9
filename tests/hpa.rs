//! Conformance of the built-in `hpa` policy (run as wasm through the engine) and of the behavior
//! [`Guardrails`] with the Kubernetes HPA controller, `pkg/controller/podautoscaler` in
//! kubernetes/kubernetes. Every case says where its expected value comes from: an upstream test
//! (`replica_calculator_test.go`, `horizontal_test.go`) whose numbers it reuses, or the rule of
//! the controller it checks. Upstream quantities are milli-values: a level of 8600 is 8.6 here.

use leadtime::behavior::{
    Behavior, BehaviorError, Guardrails, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy,
};
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

// ------------------------------------------------------------------------------------------
// Guardrails

/// upstream's `generateScalingRules(pods, podsPeriod, percent, percentPeriod, window)`.
fn rules(
    pods: u32,
    pods_period: u32,
    percent: u32,
    percent_period: u32,
    window: u32,
) -> ScalingRules {
    let mut policies = Vec::new();
    if pods != 0 {
        policies.push(ScalingPolicy {
            kind: PolicyKind::Pods,
            value: pods,
            period_seconds: pods_period,
        });
    }
    if percent != 0 {
        policies.push(ScalingPolicy {
            kind: PolicyKind::Percent,
            value: percent,
            period_seconds: percent_period,
        });
    }
    ScalingRules {
        stabilization_window_seconds: Some(window),
        select_policy: Some(SelectPolicy::Max),
        policies: Some(policies),
        tolerance: None,
    }
}

/// upstream's `generateEventsUniformDistribution(events, 120)`: seconds ago of each event.
fn uniform_ages(n: usize, period: f64) -> Vec<i64> {
    let seg = period / n as f64;
    (0..n)
        .map(|i| (period - seg * (i as f64 + 1.0) + seg / 2.0) as i64)
        .collect()
}

fn bounds(current: u32, min: u32, max: u32) -> Replicas {
    Replicas {
        current,
        ready: current,
        min,
        max,
    }
}

struct RateCase {
    name: &'static str,
    up_events: &'static [i64],
    down_events: &'static [i64],
    min: u32,
    max: u32,
    up: Option<ScalingRules>,
    down: Option<ScalingRules>,
    current: u32,
    desired: u32,
    want: u32,
    /// Must appear in the note ("" for no note).
    note: &'static str,
}

/// TestScalingWithRules (horizontal_test.go): the rate limits with upstream's event histories.
/// The names are upstream's; the expected values are upstream's. One note differs: upstream's
/// test calls the rate function with current (20) above max (10), which reconcileAutoscaler
/// never does; `apply` takes the controller's shortcut to max, with the same result.
fn rate_cases() -> Vec<RateCase> {
    let c =
        |name, up_events, down_events, min, max, up, down, current, desired, want, note| RateCase {
            name,
            up_events,
            down_events,
            min,
            max,
            up,
            down,
            current,
            desired,
            want,
            note,
        };
    vec![
        c("prenormalized desired replicas within range", &[], &[], 3, 8, None, None, 5, 7, 7, ""),
        c("prenormalized desired replicas < minReplicas", &[], &[], 2, 8, None, None, 3, 1, 2, "clamped to min 2"),
        c("prenormalized desired replicas within range when minReplicas is 0", &[], &[], 0, 10, None, None, 1, 0, 0, ""),
        c("maxReplicas is the limit because maxReplicas < scaleUpLimit", &[], &[], 1, 10, None, None, 20, 1000, 10, "current 20 above max 10"),
        c("desired replica count is more than the maximum replica count", &[], &[], 100, 150, None, None, 100, 1000, 150, "clamped to max 150"),
        c("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", &[], &[], 1, 2000, Some(rules(0, 0, 1, 60, 0)), None, 3, 1000, 4, "scale-up policy 1% per 60s"),
        c("scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies", &[], &[], 3, 2000, None, Some(rules(20, 60, 0, 0, 0)), 1000, 3, 980, "scale-down policy 20 pods per 60s"),
        c("scaleUp with default behavior", &[], &[], 1, 1000, None, None, 10, 50, 20, "scale-up policy 100% per 15s, selectPolicy Max"),
        c("scaleUp with pods policy larger than percent policy", &[], &[], 1, 1000, Some(rules(100, 60, 100, 60, 0)), None, 10, 500, 110, "100 pods per 60s"),
        c("scaleUp with percent policy larger than pods policy", &[], &[], 1, 1000, Some(rules(2, 60, 100, 60, 0)), None, 10, 500, 20, "100% per 60s"),
        c("scaleUp with spec MaxReplicas limitation with large pod policy", &[], &[], 1, 1000, Some(rules(100, 60, 0, 0, 0)), None, 10, 50, 50, ""),
        c("scaleUp with spec MaxReplicas limitation with large percent policy", &[], &[], 1, 1000, Some(rules(10000, 60, 0, 0, 0)), None, 10, 50, 50, ""),
        c("scaleUp with pod policy limitation", &[], &[], 1, 1000, Some(rules(30, 60, 0, 0, 0)), None, 10, 50, 40, "30 pods per 60s"),
        c("scaleUp with percent policy limitation", &[], &[], 1, 1000, Some(rules(0, 0, 200, 60, 0)), None, 10, 50, 30, "200% per 60s"),
        c("scaleDown with percent policy larger than pod policy", &[], &[], 1, 1000, None, Some(rules(20, 60, 1, 60, 300)), 100, 2, 80, "20 pods per 60s"),
        c("scaleDown with pod policy larger than percent policy", &[], &[], 1, 1000, None, Some(rules(2, 60, 1, 60, 300)), 100, 2, 98, "2 pods per 60s"),
        c("scaleDown with spec MinReplicas=nil limitation with large pod policy", &[], &[], 1, 1000, None, Some(rules(100, 60, 0, 0, 300)), 10, 0, 1, "clamped to min 1"),
        c("scaleDown with spec MinReplicas limitation with large percent policy", &[], &[], 5, 1000, None, Some(rules(0, 0, 100, 60, 300)), 10, 2, 5, "clamped to min 5"),
        c("scaleDown with pod policy limitation", &[], &[], 1, 1000, None, Some(rules(5, 60, 0, 0, 300)), 10, 2, 5, "5 pods per 60s"),
        c("scaleDown with percent policy limitation", &[], &[], 1, 1000, None, Some(rules(0, 0, 50, 60, 300)), 10, 5, 5, ""),
        c("scaleUp with spec MaxReplicas limitation with large pod policy and events", &[1, 5, 9], &[], 1, 200, Some(rules(300, 60, 0, 0, 0)), None, 100, 500, 200, "clamped to max 200"),
        c("scaleUp with spec MaxReplicas limitation with large percent policy and events", &[1, 5, 9], &[], 1, 200, Some(rules(0, 0, 10000, 60, 0)), None, 100, 500, 200, "clamped to max 200"),
        c("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events", &[1, 5, 9], &[], 1, 1000, Some(rules(5, 120, 0, 0, 0)), None, 100, 500, 100, "5 pods per 120s"),
        c("scaleUp with pod policy and previous scale up events", &[1, 5, 9], &[], 1, 1000, Some(rules(150, 120, 0, 0, 0)), None, 100, 500, 235, "150 pods per 120s"),
        c("scaleUp with percent policy and previous scale up events", &[1, 5, 9], &[], 1, 1000, Some(rules(0, 0, 200, 120, 0)), None, 100, 500, 255, "200% per 120s"),
        c("scaleUp with percent policy and previous scale up and down events", &[4], &[2], 1, 1000, Some(rules(0, 0, 300, 300, 0)), None, 6, 24, 16, "300% per 300s"),
        c("scaleDown with default policy and previous events", &[], &[1, 5, 9], 1, 1000, None, None, 10, 5, 5, ""),
        c("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", &[], &[1, 5, 9], 1, 1000, None, Some(rules(115, 120, 0, 0, 300)), 100, 0, 1, "clamped to min 1"),
        c("scaleDown with spec MinReplicas limitation with large pod policy and previous events", &[], &[1, 5, 9], 5, 1000, None, Some(rules(130, 120, 0, 0, 300)), 100, 0, 5, "clamped to min 5"),
        c("scaleDown with spec MinReplicas limitation with large percent policy and previous events", &[], &[1, 5, 9], 5, 1000, None, Some(rules(0, 0, 100, 120, 300)), 100, 2, 5, "clamped to min 5"),
        c("scaleDown with pod policy limitation and previous events", &[], &[1, 5, 9], 1, 1000, None, Some(rules(5, 120, 0, 0, 300)), 100, 2, 100, "5 pods per 120s"),
        c("scaleDown with percent policy limitation and previous events", &[], &[2, 4, 6], 1, 1000, None, Some(rules(0, 0, 50, 120, 300)), 100, 0, 56, "50% per 120s"),
        c("scaleDown with percent policy and previous scale up and down events", &[2], &[4], 1, 1000, None, Some(rules(0, 0, 50, 180, 0)), 10, 1, 6, "50% per 180s"),
        c("scaleDown with previous events preventing further scale down", &[], &[10, 10, 10], 1, 1000, None, Some(rules(0, 0, 10, 120, 300)), 100, 0, 100, "10% per 120s"),
        c("scaleDown with with previous events still allowing more scale down", &[], &[10, 10, 10], 1, 1000, None, Some(rules(0, 0, 1000, 120, 300)), 10, 5, 5, ""),
        c("check 'outdated' flag for events for one behavior for up", &[8, 12, 9, 11], &[], 1, 1000, Some(rules(1000, 60, 0, 0, 0)), None, 100, 200, 200, ""),
        c("check that events were not marked 'outdated' for two different policies in the behavior for up", &[8, 12, 9, 11], &[], 1, 1000, Some(rules(1000, 120, 100, 60, 0)), None, 100, 200, 200, ""),
        c("check that events were marked 'outdated' for two different policies in the behavior for up", &[8, 12, 9, 11], &[], 1, 1000, Some(rules(1000, 30, 100, 60, 0)), None, 100, 200, 200, ""),
        c("check 'outdated' flag for events for one behavior for down", &[], &[8, 12, 9, 11], 1, 1000, None, Some(rules(1000, 60, 0, 0, 300)), 100, 5, 5, ""),
        c("check that events were not marked 'outdated' for two different policies in the behavior for down", &[], &[8, 12, 9, 11], 1, 1000, None, Some(rules(1000, 120, 100, 60, 300)), 100, 5, 5, ""),
        c("check that events were marked 'outdated' for two different policies in the behavior for down", &[], &[8, 12, 9, 11], 1, 1000, None, Some(rules(1000, 30, 100, 60, 300)), 100, 5, 5, ""),
    ]
}

#[test]
fn guardrail_rates_match_upstream_scaling_with_rules() {
    let mut failures = Vec::new();
    let cases = rate_cases();
    for case in &cases {
        let mut g = Guardrails::try_new(Behavior {
            scale_up: case.up.clone(),
            scale_down: case.down.clone(),
        })
        .unwrap();
        // Seed the histories oldest first, as upstream's generateEventsUniformDistribution lays
        // them over the last 120 s.
        let mut seeded: Vec<(i64, i64)> = Vec::new();
        for (events, sign) in [(case.up_events, 1), (case.down_events, -1)] {
            for (age, change) in uniform_ages(events.len(), 120.0).into_iter().zip(events) {
                seeded.push((NOW - age * 1000, sign * change));
            }
        }
        seeded.sort_by_key(|(at, _)| *at);
        for (at, change) in seeded {
            let to = (1000 + change) as u32;
            g.record_scale_event(at, 1000, to);
        }
        let (got, note) = g.apply(NOW, &bounds(case.current, case.min, case.max), case.desired);
        let note = note.unwrap_or_default();
        let note_ok = if case.note.is_empty() {
            note.is_empty()
        } else {
            note.contains(case.note)
        };
        if got != case.want || !note_ok {
            failures.push(format!(
                "TestScalingWithRules {:?}: got {got} ({note:?}), want {} with note {:?}",
                case.name, case.want, case.note
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

struct StabilizeCase {
    name: &'static str,
    /// (replicas, seconds ago), in upstream's order.
    recommendations: &'static [(u32, i64)],
    current: u32,
    desired: u32,
    want: u32,
    up_window: u32,
    down_window: u32,
    /// The recommendations kept afterwards, when upstream checks them.
    kept: Option<&'static [u32]>,
}

/// TestNormalizeDesiredReplicasWithBehavior (horizontal_test.go): stabilisation windows. Rate
/// limits are wide open so that only the windows act; the names and values are upstream's.
const STABILIZE_CASES: &[StabilizeCase] = &[
    StabilizeCase {
        name: "empty recommendations for scaling down",
        recommendations: &[],
        current: 100,
        desired: 5,
        want: 5,
        up_window: 0,
        down_window: 0,
        kept: Some(&[5]),
    },
    StabilizeCase {
        name: "simple scale down stabilization",
        recommendations: &[(4, 120), (5, 60)],
        current: 100,
        desired: 3,
        want: 5,
        up_window: 0,
        down_window: 180,
        kept: Some(&[4, 5, 3]),
    },
    StabilizeCase {
        name: "simple scale up stabilization",
        recommendations: &[(4, 120), (5, 60)],
        current: 1,
        desired: 7,
        want: 4,
        up_window: 300,
        down_window: 0,
        kept: Some(&[4, 5, 7]),
    },
    StabilizeCase {
        name: "no scale down stabilization",
        recommendations: &[(1, 120), (2, 60)],
        current: 100,
        desired: 3,
        want: 3,
        up_window: 300,
        down_window: 0,
        kept: Some(&[1, 2, 3]),
    },
    StabilizeCase {
        name: "no scale up stabilization",
        recommendations: &[(4, 120), (5, 60)],
        current: 1,
        desired: 3,
        want: 3,
        up_window: 0,
        down_window: 300,
        kept: Some(&[4, 5, 3]),
    },
    StabilizeCase {
        name: "no scale down stabilization, reuse recommendation element",
        recommendations: &[(10, 600), (9, 540)],
        current: 100,
        desired: 3,
        want: 3,
        up_window: 0,
        down_window: 0,
        kept: Some(&[10, 3]),
    },
    StabilizeCase {
        name: "no scale up stabilization, reuse recommendation element",
        recommendations: &[(10, 600), (9, 540)],
        current: 1,
        desired: 100,
        want: 100,
        up_window: 0,
        down_window: 0,
        kept: Some(&[10, 100]),
    },
    StabilizeCase {
        name: "scale down stabilization, reuse one of obsolete recommendation element",
        recommendations: &[(10, 600), (4, 60), (5, 120), (9, 540)],
        current: 100,
        desired: 3,
        want: 5,
        up_window: 0,
        down_window: 180,
        kept: Some(&[10, 4, 5, 3]),
    },
    StabilizeCase {
        name: "scale up stabilization, reuse one of obsolete recommendation element",
        recommendations: &[(10, 6000), (6, 60), (5, 120), (9, 180)],
        current: 1,
        desired: 100,
        want: 5,
        up_window: 300,
        down_window: 0,
        kept: Some(&[100, 6, 5, 9]),
    },
    StabilizeCase {
        name: "scale up and down stabilization, do not scale up when prenormalized rec goes down",
        recommendations: &[(2, 6000), (3, 180)],
        current: 2,
        desired: 1,
        want: 2,
        up_window: 300,
        down_window: 300,
        kept: None,
    },
    StabilizeCase {
        name: "scale up and down stabilization, do not scale down when prenormalized rec goes up",
        recommendations: &[(2, 6000), (1, 180)],
        current: 2,
        desired: 3,
        want: 2,
        up_window: 300,
        down_window: 300,
        kept: None,
    },
];

#[test]
fn guardrail_windows_match_upstream_stabilization() {
    let open = |window| ScalingRules {
        stabilization_window_seconds: Some(window),
        select_policy: Some(SelectPolicy::Max),
        policies: Some(vec![ScalingPolicy {
            kind: PolicyKind::Pods,
            value: 1_000_000,
            period_seconds: 15,
        }]),
        tolerance: None,
    };
    let mut failures = Vec::new();
    for case in STABILIZE_CASES {
        let mut g = Guardrails::new(Behavior {
            scale_up: Some(open(case.up_window)),
            scale_down: Some(open(case.down_window)),
        });
        // Upstream injects its log as is, in its order.
        for (replicas, ago) in case.recommendations {
            g.restore_recommendation(NOW - ago * 1000, *replicas);
        }
        let (got, _) = g.apply(NOW, &bounds(case.current, 0, 1000), case.desired);
        let kept: Vec<u32> = g.recommendations().into_iter().map(|(_, r)| r).collect();
        if got != case.want || case.kept.is_some_and(|k| k != kept.as_slice()) {
            failures.push(format!(
                "TestNormalizeDesiredReplicasWithBehavior {:?}: got {got} keeping {kept:?}, want {} keeping {:?}",
                case.name, case.want, case.kept
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One step of a run: at `t` seconds the policy proposes `proposed` with `current` replicas.
struct Step {
    t: i64,
    current: u32,
    proposed: u32,
    want: u32,
    note: &'static str,
}

const fn step(t: i64, current: u32, proposed: u32, want: u32, note: &'static str) -> Step {
    Step {
        t,
        current,
        proposed,
        want,
        note,
    }
}

struct RunCase {
    source: &'static str,
    behavior: &'static str,
    min: u32,
    max: u32,
    steps: &'static [Step],
}

/// Runs over time, each step applied to the replicas the previous one returned: windows, rates
/// across several periods, select policies, tolerance. The behavior blocks are YAML as in a
/// manifest.
#[rustfmt::skip]
const RUNS: &[RunCase] = &[
    RunCase { source: "autoscaling/v2 default scale-up (docs, 'Default Behavior'): max(4 pods, 100%) per 15 s; an event exactly one period old no longer counts (getReplicasChangePerPeriod: After(cutoff))",
        behavior: "", min: 1, max: 1000, steps: &[
        step(0, 1, 100, 5, "scale-up policy 4 pods per 15s, selectPolicy Max"),
        step(10, 5, 100, 5, "limited to 5"),
        step(15, 5, 100, 10, "scale-up policy 100% per 15s"),
        step(30, 10, 100, 20, "limited to 20"),
        step(45, 20, 100, 40, "limited to 40"),
        step(60, 40, 100, 80, "limited to 80"),
        step(75, 80, 100, 100, ""),
    ]},
    RunCase { source: "rule: Pods 4 per 60 s counts every pod added in the last 60 s (periodStartReplicas = current - added)",
        behavior: "scaleUp:\n  policies:\n  - type: Pods\n    value: 4\n    periodSeconds: 60\n", min: 1, max: 100, steps: &[
        step(0, 1, 50, 5, "scale-up policy 4 pods per 60s"),
        step(15, 5, 50, 5, "limited to 5"),
        step(30, 5, 50, 5, "limited to 5"),
        step(59, 5, 50, 5, "limited to 5"),
        step(60, 5, 50, 9, "limited to 9"),
        step(90, 9, 50, 9, "limited to 9"),
        step(120, 9, 50, 13, "limited to 13"),
    ]},
    RunCase { source: "rule: rates over several periods: Pods 2 per 30 s and Percent 50 per 120 s, selectPolicy Min takes the smaller",
        behavior: "scaleUp:\n  selectPolicy: Min\n  policies:\n  - type: Pods\n    value: 2\n    periodSeconds: 30\n  - type: Percent\n    value: 50\n    periodSeconds: 120\n", min: 1, max: 100, steps: &[
        // 10: min(10 + 2, ceil(10 x 1.5) = 15) = 12.
        step(0, 10, 40, 12, "scale-up policy 2 pods per 30s, selectPolicy Min"),
        // 30 s: the +2 is a period old for Pods: 12 + 2 = 14; Percent: start 10, 15.
        step(30, 12, 40, 14, "2 pods per 30s"),
        // 60 s: Pods 16; Percent: start 10 (both events within 120 s), 15 -> the Min is 15.
        step(60, 14, 40, 15, "50% per 120s"),
        // 90 s: Pods 17; Percent still from 10: 15, holding.
        step(90, 15, 40, 15, "limited to 15"),
        // 120 s: the event at 0 leaves the 120 s period: start 12, ceil(18) = 18; Pods 17.
        step(120, 15, 40, 17, "2 pods per 30s"),
    ]},
    RunCase { source: "autoscaling/v2 default scale-down: 300 s stabilization window (highest recommendation), then 100% per 15 s",
        behavior: "", min: 1, max: 100, steps: &[
        step(0, 10, 10, 10, ""),
        step(60, 10, 2, 10, "scale-down stabilization window 300s"),
        step(240, 10, 3, 10, "highest recent recommendation"),
        // 300 s: the 10 at 0 s is a window old, the highest left is 3.
        step(300, 10, 2, 3, "gives 3 (asked 2)"),
        step(541, 3, 2, 2, ""),
    ]},
    RunCase { source: "rule: scale-up stabilization window takes the lowest recommendation in the window",
        behavior: "scaleUp:\n  stabilizationWindowSeconds: 60\n", min: 1, max: 100, steps: &[
        step(0, 4, 4, 4, ""),
        step(15, 4, 9, 4, "scale-up stabilization window 60s"),
        step(30, 4, 8, 4, "lowest recent recommendation"),
        step(60, 4, 9, 8, "gives 8 (asked 9)"),
        // 75 s: the 8 of 30 s is still inside the window.
        step(75, 8, 9, 8, "gives 8 (asked 9)"),
        step(91, 8, 9, 9, ""),
    ]},
    RunCase { source: "rule: Percent scale-down truncates (int32(start x (1 - v/100))): 5 at 50% may go to 2",
        behavior: "scaleDown:\n  stabilizationWindowSeconds: 0\n  policies:\n  - type: Percent\n    value: 50\n    periodSeconds: 60\n", min: 0, max: 100, steps: &[
        step(0, 5, 0, 2, "scale-down policy 50% per 60s"),
        step(30, 2, 0, 2, "limited to 2"),
        step(60, 2, 0, 1, "limited to 1"),
        step(120, 1, 0, 0, ""),
    ]},
    RunCase { source: "rule: Pods 1 per 60 s for scale-down, several periods",
        behavior: "scaleDown:\n  stabilizationWindowSeconds: 0\n  policies:\n  - type: Pods\n    value: 1\n    periodSeconds: 60\n", min: 1, max: 100, steps: &[
        step(0, 10, 1, 9, "scale-down policy 1 pod per 60s"),
        step(30, 9, 1, 9, "limited to 9"),
        step(60, 9, 1, 8, "limited to 8"),
        step(120, 8, 1, 7, "limited to 7"),
    ]},
    RunCase { source: "TestCalculateScaleUpLimitWithScalingRules: selectPolicy Min of Pods 2 and Percent 50 per 60 s from 1 is 2",
        behavior: "scaleUp:\n  stabilizationWindowSeconds: 300\n  selectPolicy: Min\n  policies:\n  - type: Pods\n    value: 2\n    periodSeconds: 60\n  - type: Percent\n    value: 50\n    periodSeconds: 60\n", min: 1, max: 100, steps: &[
        step(0, 1, 50, 2, "scale-up policy 50% per 60s, selectPolicy Min"),
    ]},
    RunCase { source: "TestCalculateScaleDownLimitWithBehaviors: selectPolicy Min of Pods 2 and Percent 50 per 60 s from 5 is 3",
        behavior: "scaleDown:\n  stabilizationWindowSeconds: 300\n  selectPolicy: Min\n  policies:\n  - type: Pods\n    value: 2\n    periodSeconds: 60\n  - type: Percent\n    value: 50\n    periodSeconds: 60\n", min: 0, max: 100, steps: &[
        step(0, 5, 0, 3, "scale-down policy 2 pods per 60s, selectPolicy Min"),
    ]},
    RunCase { source: "rule: selectPolicy Max for scale-down takes the largest change (lowest limit)",
        behavior: "scaleDown:\n  stabilizationWindowSeconds: 0\n  policies:\n  - type: Pods\n    value: 2\n    periodSeconds: 60\n  - type: Percent\n    value: 50\n    periodSeconds: 60\n", min: 0, max: 100, steps: &[
        step(0, 5, 0, 2, "scale-down policy 50% per 60s, selectPolicy Max"),
    ]},
    RunCase { source: "rule (calculateScaleDownLimitWithBehaviors): selectPolicy Disabled never scales down",
        behavior: "scaleDown:\n  selectPolicy: Disabled\n  stabilizationWindowSeconds: 0\n", min: 1, max: 100, steps: &[
        step(0, 10, 2, 10, "scale-down disabled (selectPolicy: Disabled)"),
        step(600, 10, 2, 10, "scale-down disabled"),
        step(615, 10, 40, 20, "scale-up policy 100% per 15s"),
    ]},
    RunCase { source: "rule (calculateScaleUpLimitWithScalingRules): selectPolicy Disabled never scales up",
        behavior: "scaleUp:\n  selectPolicy: Disabled\nscaleDown:\n  stabilizationWindowSeconds: 0\n", min: 1, max: 100, steps: &[
        step(0, 3, 30, 3, "scale-up disabled (selectPolicy: Disabled)"),
        step(15, 3, 1, 1, ""),
    ]},
    RunCase { source: "autoscaling/v2 tolerance (HPAConfigurableTolerance): a change within it keeps current, per direction",
        behavior: "scaleUp:\n  tolerance: 0.05\nscaleDown:\n  tolerance: '0.2'\n  stabilizationWindowSeconds: 0\n", min: 1, max: 1000, steps: &[
        step(0, 100, 105, 100, "scale-up tolerance 0.05"),
        step(15, 100, 106, 106, ""),
        step(30, 106, 85, 106, "scale-down tolerance 0.2"),
        step(45, 106, 84, 84, ""),
    ]},
    RunCase { source: "reconcileAutoscaler: current above max goes to max and current below min to min, before any rule",
        behavior: "scaleDown:\n  selectPolicy: Disabled\nscaleUp:\n  selectPolicy: Disabled\n", min: 2, max: 6, steps: &[
        step(0, 9, 9, 6, "current 9 above max 6"),
        step(15, 1, 1, 2, "current 1 below min 2"),
    ]},
];

#[test]
fn guardrail_runs_over_time() {
    let mut failures = Vec::new();
    for run in RUNS {
        let behavior =
            Behavior::parse(run.behavior).unwrap_or_else(|e| panic!("{}: {e}", run.source));
        let mut g = Guardrails::new(behavior);
        for s in run.steps {
            let (got, note) = g.apply(
                NOW + s.t * 1000,
                &bounds(s.current, run.min, run.max),
                s.proposed,
            );
            let note = note.unwrap_or_default();
            let note_ok = if s.note.is_empty() {
                note.is_empty()
            } else {
                note.contains(s.note)
            };
            if got != s.want || !note_ok {
                failures.push(format!(
                    "{}\n    at {}s ({} proposed, {} current): got {got} ({note:?}), want {} with note {:?}",
                    run.source, s.t, s.proposed, s.current, s.want, s.note
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn behavior_reads_yaml_and_json_as_copied_from_a_manifest() {
    let block = "
    behavior:
      scaleDown:
        stabilizationWindowSeconds: 60
        policies:
        - type: Percent
          value: 10
          periodSeconds: 60
      scaleUp:
        selectPolicy: Max
        policies:
        - type: Pods
          value: 2
          periodSeconds: 30
";
    let content_only = "
scaleDown:
  stabilizationWindowSeconds: 60
  policies:
  - type: Percent
    value: 10
    periodSeconds: 60
scaleUp:
  selectPolicy: Max
  policies:
  - type: Pods
    value: 2
    periodSeconds: 30
";
    let manifest = format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  minReplicas: 1\n  maxReplicas: 10\n  metrics: []\n{}",
        block.replace("\n    ", "\n  ")
    );
    let json = r#"{"scaleDown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]},
                  "scaleUp": {"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}]}}"#;
    let want = Behavior::parse(content_only).unwrap();
    assert_eq!(
        want.scale_down
            .as_ref()
            .unwrap()
            .stabilization_window_seconds,
        Some(60)
    );
    assert_eq!(
        want.scale_up.as_ref().unwrap().policies.as_deref(),
        Some(
            &[ScalingPolicy {
                kind: PolicyKind::Pods,
                value: 2,
                period_seconds: 30
            }][..]
        )
    );
    for (what, text) in [
        ("with the behavior key", block.to_string()),
        ("a whole manifest", manifest),
        ("JSON", json.to_string()),
    ] {
        assert_eq!(Behavior::parse(&text).unwrap(), want, "{what}");
    }
    let spec_content = format!(
        "minReplicas: 1\nmaxReplicas: 10\n{}",
        block.replace("\n    ", "\n")
    );
    assert_eq!(
        Behavior::parse(&spec_content).unwrap(),
        want,
        "HPA spec content"
    );
    let wrapped_json = format!("{{\"behavior\": {json}}}");
    assert_eq!(Behavior::parse(&wrapped_json).unwrap(), want);
    // Absent fields take the autoscaling/v2 defaults.
    let defaults = Behavior::parse("").unwrap().with_defaults();
    assert_eq!(
        defaults.scale_down.unwrap().stabilization_window_seconds,
        Some(300)
    );
}

#[test]
fn behavior_errors_say_where() {
    let cases: &[(&str, &str)] = &[
        ("scaleup:\n  selectPolicy: Max\n", "unknown field `scaleup`"),
        ("scaleUp:\n  selectPolicy: Maximum\n", "line 2"),
        (
            "scaleUp:\n  policies:\n  - type: pods\n    value: 1\n    periodSeconds: 15\n",
            "unknown variant `pods`",
        ),
        (
            "scaleDown:\n  policies:\n  - type: Pods\n    value: 1\n    periodSeconds: 0\n",
            "scaleDown.policies[0].periodSeconds",
        ),
        (
            "scaleDown:\n  policies:\n  - type: Pods\n    value: 0\n    periodSeconds: 15\n",
            "scaleDown.policies[0].value",
        ),
        (
            "scaleUp:\n  stabilizationWindowSeconds: 3601\n",
            "scaleUp.stabilizationWindowSeconds",
        ),
        ("scaleUp:\n  policies: []\n", "scaleUp.policies"),
        ("scaleUp:\n  tolerance: lots\n", "tolerance"),
        ("{\"scaleUp\": {\"selectPolicy\": \"Max\",}}", "JSON"),
    ];
    for (text, fragment) in cases {
        let err: BehaviorError = Behavior::parse(text).unwrap_err();
        assert!(err.to_string().contains(fragment), "{text:?}: {err}");
    }
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
    let mut guard = Guardrails::new(Behavior::default());
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
