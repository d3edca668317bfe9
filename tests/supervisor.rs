//! The supervisor: a decision always comes out, fallbacks say why, the circuit breaker opens and
//! closes in request time, and errors are counted per kind.

use leadtime::supervisor::{BreakerState, Fallback, FallbackCause, Supervisor, SupervisorConfig};
use leadtime::Source;
use leadtime::{Engine, ErrorKind, Limits, Param, Params, Policy, Request};
use leadtime_tests::{corpus_files, fixture, replicas, request};

/// The test policy that panics (tests/policies/panics): answers ceil(load / 10) below
/// `panic_at`, traps at or above it.
const PANICS_WASM: &str = env!("LEADTIME_TEST_POLICY_PANICS");
const PANIC_MESSAGE: &str = "the test policy panics on purpose";

fn engine() -> Engine {
    Engine::new(&Limits::default()).unwrap()
}

/// The panicking policy, failing at loads of 100 and more.
fn flaky(engine: &Engine) -> Policy {
    let mut params = Params::new();
    params.insert("panic_at".into(), Param::Number(100.0));
    engine
        .load(Source::file(std::path::Path::new(PANICS_WASM)), params)
        .unwrap()
}

/// A request at `now` (ms) with latest load `load` at 10 per pod.
fn at(now: i64, load: f64, current: u32, min: u32, max: u32) -> Request {
    let mut r = request(&[load], 10.0, replicas(current, min, max));
    r.now = now;
    r
}

#[test]
fn a_healthy_policy_passes_through_unchanged() {
    let engine = engine();
    let mut bare = flaky(&engine);
    let mut supervisor = Supervisor::new(flaky(&engine), SupervisorConfig::default());
    for load in [10.0, 55.0, 99.0] {
        let req = at(0, load, 3, 1, 20);
        let got = supervisor.decide(&req);
        assert!(!got.is_fallback(), "{load}: {:?}", got.fallback);
        assert_eq!(got.decision, bare.decide(&req).unwrap(), "{load}");
    }
    assert_eq!(supervisor.stats().fallbacks, 0);
    assert_eq!(supervisor.breaker(0), BreakerState::Closed);
}

#[test]
fn fallback_table() {
    let engine = engine();
    // (fallback, current, min, max, want replicas, reason fragment)
    let cases: Vec<(Fallback, u32, u32, u32, u32, &str)> = vec![
        (Fallback::HoldCurrent, 5, 1, 20, 5, "hold current 5"),
        (Fallback::HoldCurrent, 50, 1, 20, 20, "clamped to max 20"),
        (Fallback::HoldCurrent, 0, 2, 20, 2, "clamped to min 2"),
        (Fallback::Fixed(7), 5, 1, 20, 7, "fixed 7"),
        (Fallback::Fixed(0), 5, 3, 20, 3, "clamped to min 3"),
        (Fallback::Fixed(u32::MAX), 5, 1, 9, 9, "clamped to max 9"),
        // target-tracking: ceil(150 / 10) = 15.
        (
            Fallback::Policy(Box::new(
                engine
                    .load(Source::builtin("target-tracking"), Params::new())
                    .unwrap(),
            )),
            5,
            1,
            20,
            15,
            "fallback to policy target-tracking",
        ),
        (
            Fallback::Policy(Box::new(
                engine
                    .load(Source::builtin("target-tracking"), Params::new())
                    .unwrap(),
            )),
            5,
            1,
            12,
            12,
            "clamped to max 12",
        ),
    ];
    for (fallback, current, min, max, want, fragment) in cases {
        let what = format!("{fallback:?} current {current} in [{min}, {max}]");
        let config = SupervisorConfig {
            fallback,
            ..SupervisorConfig::default()
        };
        let mut supervisor = Supervisor::new(flaky(&engine), config);
        let got = supervisor.decide(&at(0, 150.0, current, min, max));
        assert_eq!(
            got.decision.replicas, want,
            "{what}: {}",
            got.decision.reason
        );
        assert!((min..=max).contains(&got.decision.replicas), "{what}");
        let reason = &got.decision.reason;
        assert!(reason.contains(fragment), "{what}: {reason}");
        // The reason names the error's kind and carries its detail.
        assert!(reason.contains("policy failed: trap: "), "{what}: {reason}");
        assert!(reason.contains(PANIC_MESSAGE), "{what}: {reason}");
        match got.fallback {
            Some(FallbackCause::Failed { kind, detail }) => {
                assert_eq!(kind, ErrorKind::Trap, "{what}");
                assert!(detail.contains(PANIC_MESSAGE), "{what}: {detail}");
            }
            other => panic!("{what}: expected a failure cause, got {other:?}"),
        }
    }
}

/// What one supervised call should look like.
#[derive(Debug, PartialEq)]
enum Step {
    /// The policy answered.
    Answered,
    /// The policy was called and failed.
    Failed,
    /// The circuit was open: the policy was not called.
    Skipped,
}

#[test]
fn the_circuit_opens_after_n_failures_and_closes_after_a_good_trial_in_request_time() {
    let engine = engine();
    let config = SupervisorConfig {
        failure_threshold: 3,
        backoff_ms: 60_000,
        ..SupervisorConfig::default()
    };
    let mut supervisor = Supervisor::new(flaky(&engine), config);
    let open = |until| BreakerState::Open { until };
    // (now ms, load, what happens, breaker state right after)
    let steps = [
        (0, 150.0, Step::Failed, BreakerState::Closed),
        (1_000, 50.0, Step::Answered, BreakerState::Closed),
        // A success resets the count: three more failures are needed.
        (2_000, 150.0, Step::Failed, BreakerState::Closed),
        (3_000, 150.0, Step::Failed, BreakerState::Closed),
        (4_000, 150.0, Step::Failed, open(64_000)),
        // Open: the policy is not called, even for a load it would answer.
        (5_000, 50.0, Step::Skipped, open(64_000)),
        (63_999, 50.0, Step::Skipped, open(64_000)),
        // Back-off over: one trial; it fails, so the circuit reopens at once.
        (64_000, 150.0, Step::Failed, open(124_000)),
        (100_000, 50.0, Step::Skipped, open(124_000)),
        // A good trial closes it.
        (130_000, 50.0, Step::Answered, BreakerState::Closed),
        (131_000, 150.0, Step::Failed, BreakerState::Closed),
    ];
    for (now, load, want, state) in steps {
        let before = supervisor.stats().skipped;
        let got = supervisor.decide(&at(now, load, 4, 1, 20));
        let step = match &got.fallback {
            None => Step::Answered,
            Some(FallbackCause::Failed { .. }) => Step::Failed,
            Some(FallbackCause::CircuitOpen { until, last }) => {
                assert_eq!(*last, ErrorKind::Trap, "at {now}");
                assert!(
                    got.decision
                        .reason
                        .contains(&format!("circuit open until {until}")),
                    "at {now}: {}",
                    got.decision.reason
                );
                assert_eq!(supervisor.stats().skipped, before + 1, "at {now}");
                Step::Skipped
            }
        };
        assert_eq!(step, want, "at {now}: {}", got.decision.reason);
        assert_eq!(supervisor.breaker(now), state, "at {now}");
        if step != Step::Answered {
            assert_eq!(got.decision.replicas, 4, "at {now}: hold current");
        }
    }
    assert_eq!(supervisor.stats().opened, 2);
    assert_eq!(supervisor.stats().errors.get(&ErrorKind::Trap), Some(&6));
    assert_eq!(supervisor.stats().skipped, 3);
    assert_eq!(supervisor.stats().decisions, 11);
    assert_eq!(supervisor.stats().fallbacks, 9);
}

#[test]
fn the_breaker_reports_half_open_once_the_back_off_is_over() {
    let engine = engine();
    let config = SupervisorConfig {
        failure_threshold: 1,
        backoff_ms: 10_000,
        ..SupervisorConfig::default()
    };
    let mut supervisor = Supervisor::new(flaky(&engine), config);
    supervisor.decide(&at(1_000, 150.0, 2, 1, 10));
    // (now, state)
    let table = [
        (1_000, BreakerState::Open { until: 11_000 }),
        (10_999, BreakerState::Open { until: 11_000 }),
        (11_000, BreakerState::HalfOpen),
        (50_000, BreakerState::HalfOpen),
    ];
    for (now, want) in table {
        assert_eq!(supervisor.breaker(now), want, "at {now}");
    }
    assert_eq!(BreakerState::HalfOpen.to_string(), "half-open");
    assert_eq!(BreakerState::Open { until: 0 }.to_string(), "open");
    assert_eq!(BreakerState::Closed.to_string(), "closed");
}

#[test]
fn a_zero_threshold_never_opens_the_circuit() {
    let engine = engine();
    let config = SupervisorConfig {
        failure_threshold: 0,
        ..SupervisorConfig::default()
    };
    let mut supervisor = Supervisor::new(flaky(&engine), config);
    for now in 0..20 {
        let got = supervisor.decide(&at(now, 150.0, 2, 1, 10));
        assert!(matches!(got.fallback, Some(FallbackCause::Failed { .. })));
    }
    assert_eq!(supervisor.breaker(20), BreakerState::Closed);
    assert_eq!(supervisor.consecutive_failures(), 20);
    assert_eq!(supervisor.stats().opened, 0);
}

#[test]
fn errors_are_counted_per_kind_and_bad_requests_do_not_trip_the_breaker() {
    let engine = engine();
    let config = SupervisorConfig {
        failure_threshold: 2,
        ..SupervisorConfig::default()
    };
    let mut supervisor = Supervisor::new(flaky(&engine), config);
    // min above max: the host's mistake, not the policy's.
    for now in 0..5 {
        let got = supervisor.decide(&at(now, 50.0, 3, 9, 4));
        assert!(
            got.decision.reason.contains("bad-request"),
            "{}",
            got.decision.reason
        );
    }
    assert_eq!(supervisor.breaker(5), BreakerState::Closed);
    supervisor.decide(&at(6, 150.0, 3, 1, 10));
    let stats = supervisor.stats();
    assert_eq!(stats.errors.get(&ErrorKind::BadRequest), Some(&5));
    assert_eq!(stats.errors.get(&ErrorKind::Trap), Some(&1));
    assert_eq!(stats.errors.len(), 2);

    // Another kind, from another policy: a loop runs out of fuel.
    let looping = engine
        .load(
            Source::file(&fixture("adversarial/loop_decide.wat")),
            Params::new(),
        )
        .unwrap();
    let mut supervisor = Supervisor::new(looping, SupervisorConfig::default());
    let got = supervisor.decide(&at(0, 50.0, 3, 1, 10));
    assert!(
        got.decision.reason.contains("policy failed: out-of-fuel: "),
        "{}",
        got.decision.reason
    );
    assert!(got.decision.fuel > 0, "the failed call's fuel is reported");
    assert_eq!(
        supervisor.stats().errors.get(&ErrorKind::OutOfFuel),
        Some(&1)
    );
}

#[test]
fn a_failing_fallback_policy_holds_current_and_is_counted() {
    let engine = engine();
    let config = SupervisorConfig {
        fallback: Fallback::Policy(Box::new(flaky(&engine))),
        ..SupervisorConfig::default()
    };
    let mut supervisor = Supervisor::new(flaky(&engine), config);
    let got = supervisor.decide(&at(0, 150.0, 6, 1, 10));
    assert_eq!(got.decision.replicas, 6);
    assert!(
        got.decision.reason.contains("fallback policy")
            && got.decision.reason.contains("failed too: trap"),
        "{}",
        got.decision.reason
    );
    assert_eq!(
        supervisor.stats().fallback_errors.get(&ErrorKind::Trap),
        Some(&1)
    );
    assert_eq!(supervisor.stats().errors.get(&ErrorKind::Trap), Some(&1));
}

#[test]
fn every_corpus_module_that_loads_is_supervised_into_a_decision_within_bounds() {
    let engine = engine();
    let files = corpus_files();
    let mut supervised = 0;
    for path in &files {
        let Ok(policy) = engine.load(Source::file(path), Params::new()) else {
            continue;
        };
        supervised += 1;
        let mut supervisor = Supervisor::new(policy, SupervisorConfig::default());
        for now in 0..4 {
            let got = supervisor.decide(&at(now, 150.0, 7, 2, 9));
            let d = &got.decision;
            assert!((2..=9).contains(&d.replicas), "{}: {d:?}", path.display());
            if got.is_fallback() {
                assert_eq!(d.replicas, 7, "{}: hold current", path.display());
            }
        }
    }
    assert!(supervised >= 20, "only {supervised} corpus modules load");
}

#[test]
fn hold_last_holds_the_last_answer_and_before_any_holds_current() {
    let engine = engine();
    let config = SupervisorConfig {
        fallback: Fallback::HoldLast,
        ..SupervisorConfig::default()
    };
    let mut supervisor = Supervisor::new(flaky(&engine), config);
    assert_eq!(supervisor.last_answer(), None);
    // No answer yet: hold current.
    let got = supervisor.decide(&at(0, 150.0, 3, 1, 20));
    assert_eq!(got.decision.replicas, 3, "{}", got.decision.reason);
    assert!(
        got.decision
            .reason
            .contains("hold current (no answer yet) 3"),
        "{}",
        got.decision.reason
    );
    // The policy answers ceil(80 / 10) = 8; the workload still reports 3 replicas.
    let got = supervisor.decide(&at(1_000, 80.0, 3, 1, 20));
    assert!(!got.is_fallback());
    assert_eq!(supervisor.last_answer(), Some(8));
    // A failure holds 8, the last answer, not the current 3; clamped to a lower max.
    let got = supervisor.decide(&at(2_000, 150.0, 3, 1, 20));
    assert_eq!(got.decision.replicas, 8, "{}", got.decision.reason);
    assert!(
        got.decision.reason.contains("hold last 8"),
        "{}",
        got.decision.reason
    );
    let got = supervisor.decide(&at(3_000, 150.0, 3, 1, 6));
    assert_eq!(got.decision.replicas, 6, "{}", got.decision.reason);
    assert_eq!(supervisor.last_answer(), Some(6));
}

#[test]
fn guardrails_limit_the_policys_decisions_but_not_the_fallbacks() {
    let engine = engine();
    // At most +2 pods per minute up.
    let behavior = leadtime::Behavior::parse(
        "scaleUp:\n  stabilizationWindowSeconds: 0\n  policies:\n  - type: Pods\n    value: 2\n    periodSeconds: 60\n",
    )
    .unwrap();
    let guardrails = leadtime::behavior::Controller::try_new(behavior).unwrap();
    let config = SupervisorConfig {
        fallback: Fallback::HoldLast,
        ..SupervisorConfig::default()
    };
    let mut supervisor = Supervisor::new(flaky(&engine), config).with_guardrails(guardrails);
    // The policy wants ceil(90 / 10) = 9 from 3: the rate limit lets 5 through.
    let got = supervisor.decide(&at(0, 90.0, 3, 1, 20));
    assert!(!got.is_fallback());
    assert_eq!(got.decision.proposed, 9, "the policy's own target");
    assert_eq!(got.decision.replicas, 5, "{}", got.decision.reason);
    assert!(got.decision.reason.len() > "ceil".len());
    // A failure holds the guarded answer, 5.
    let got = supervisor.decide(&at(1_000, 150.0, 5, 1, 20));
    assert!(got.is_fallback());
    assert_eq!(got.decision.replicas, 5, "{}", got.decision.reason);
}
