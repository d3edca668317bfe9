//! The seam between the scaler and a failing policy: the engine's [`Supervisor`] (circuit
//! breaker, error classification) with the workload's behavior guardrails after it, and the
//! hold-last-target fallback the scaler answers with.

use leadtime::supervisor::{BreakerState, Fallback, FallbackCause, Supervisor, SupervisorConfig};
use leadtime::{Decision, ErrorKind, Guardrails, Policy, Request};
use std::time::Duration;

/// The breaker's state, exported as a gauge (0 closed, 1 open, 2 half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls go to the policy.
    Closed,
    /// The policy failed too often: calls skip it until the cool-down ends.
    Open,
    /// The cool-down ended: the next call tries the policy once.
    HalfOpen,
}

impl Circuit {
    /// The gauge value.
    pub fn gauge(self) -> i64 {
        match self {
            Circuit::Closed => 0,
            Circuit::Open => 1,
            Circuit::HalfOpen => 2,
        }
    }
}

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// How long it stays open (in request time).
    pub open_for: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failures: 3,
            open_for: Duration::from_secs(30),
        }
    }
}

/// Why the policy gave no decision.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The policy failed (trap, fuel, bad answer, ...).
    #[error("policy failed: {kind}: {detail}")]
    Policy {
        /// The engine's error kind.
        kind: ErrorKind,
        /// The error's text.
        detail: String,
    },
    /// The circuit is open: the policy was not called.
    #[error("circuit open after repeated policy failures (last: {0}); policy not called")]
    CircuitOpen(ErrorKind),
}

impl Failure {
    /// The engine's error kind, when the policy ran.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Failure::Policy { kind, .. } => Some(*kind),
            Failure::CircuitOpen(_) => None,
        }
    }
}

/// One workload's policy under the engine's supervisor, with its behavior guardrails.
pub struct Supervised {
    supervisor: Supervisor,
    guardrails: Guardrails,
}

impl Supervised {
    /// Supervises `policy`, applying `guardrails` to its decisions.
    pub fn new(policy: Policy, guardrails: Guardrails, breaker: Breaker) -> Supervised {
        let config = SupervisorConfig {
            fallback: Fallback::HoldCurrent,
            failure_threshold: breaker.failures,
            backoff_ms: u64::try_from(breaker.open_for.as_millis()).unwrap_or(u64::MAX),
        };
        Supervised {
            supervisor: Supervisor::new(policy, config),
            guardrails,
        }
    }

    /// The breaker's state for a request at `now_ms`.
    pub fn circuit(&self, now_ms: i64) -> Circuit {
        match self.supervisor.breaker(now_ms) {
            BreakerState::Closed => Circuit::Closed,
            BreakerState::Open { .. } => Circuit::Open,
            BreakerState::HalfOpen => Circuit::HalfOpen,
        }
    }

    /// The policy's decision with the guardrails applied, unless it fails or the circuit is open.
    /// The supervisor's own fallback answer is not used: the scaler decides what to hold.
    pub fn decide(&mut self, request: &Request) -> Result<Decision, Failure> {
        let supervised = self.supervisor.decide(request);
        match supervised.fallback {
            None => {
                let mut decision = supervised.decision;
                let (target, note) =
                    self.guardrails
                        .apply(request.now, &request.replicas, decision.replicas);
                if let Some(note) = note {
                    decision.reason = format!("{}; {note}", decision.reason);
                }
                decision.replicas = target;
                Ok(decision)
            }
            Some(FallbackCause::Failed { kind, detail }) => Err(Failure::Policy { kind, detail }),
            Some(FallbackCause::CircuitOpen { last, .. }) => Err(Failure::CircuitOpen(last)),
        }
    }

    /// Fuel the last policy call used.
    pub fn last_fuel(&self) -> u64 {
        self.supervisor.policy().last_fuel()
    }
}

/// The hold fallback: the last target given, or none when there is none yet.
pub fn hold(last: Option<u32>) -> Option<u32> {
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadtime::{Engine, Limits, Params, Replicas, Source, Workload};

    fn request(now: i64) -> Request {
        Request {
            abi_version: leadtime::abi::ABI_VERSION,
            now,
            workload: Workload::default(),
            replicas: Replicas {
                current: 2,
                ready: 2,
                min: 1,
                max: 10,
            },
            metrics: vec![],
            ready_times: vec![],
            params: Params::new(),
            state: None,
        }
    }

    #[test]
    fn breaker_opens_after_consecutive_traps_and_half_opens_in_request_time() {
        let engine = Engine::new(&Limits::default()).unwrap();
        let wat = "(module (memory (export \"memory\") 1)
            (func (export \"leadtime_abi_version\") (result i32) i32.const 1)
            (func (export \"leadtime_alloc\") (param i32) (result i32) i32.const 1024)
            (func (export \"leadtime_decide\") (param i32 i32) (result i64) unreachable))";
        let policy = engine
            .load(Source::bytes("trap", wat.as_bytes()), Params::new())
            .unwrap();
        let breaker = Breaker {
            failures: 2,
            open_for: Duration::from_millis(50),
        };
        let mut sup = Supervised::new(policy, Guardrails::default(), breaker);
        let t0 = 1_700_000_000_000;
        let kinds: Vec<_> = (0..3)
            .map(|i| sup.decide(&request(t0 + i)).unwrap_err())
            .collect();
        assert_eq!(kinds[0].kind(), Some(ErrorKind::Trap));
        assert_eq!(kinds[1].kind(), Some(ErrorKind::Trap));
        assert!(
            matches!(kinds[2], Failure::CircuitOpen(ErrorKind::Trap)),
            "{}",
            kinds[2]
        );
        assert_eq!(sup.circuit(t0 + 10), Circuit::Open);
        // Request time, not wall time: 60 ms later the back-off of 50 ms is over.
        assert_eq!(sup.circuit(t0 + 60), Circuit::HalfOpen);
        let trial = sup.decide(&request(t0 + 60)).unwrap_err();
        assert_eq!(trial.kind(), Some(ErrorKind::Trap));
        assert_eq!(sup.circuit(t0 + 61), Circuit::Open);
        assert_eq!(hold(Some(4)), Some(4));
        assert_eq!(hold(None), None);
    }
}
