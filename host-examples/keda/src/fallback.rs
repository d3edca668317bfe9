//! The seam between the scaler and a failing policy: a circuit breaker around the policy, and
//! the hold-current fallback. Kept small so that `leadtime::supervisor` can replace it.

use leadtime::{Decision, Error, ErrorKind, Guardrails, Policy, Request};
use std::time::{Duration, Instant};

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
    /// How long it stays open.
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
    #[error("policy failed: {0}")]
    Policy(Error),
    /// The circuit is open: the policy was not called.
    #[error("circuit open after {0} consecutive policy failures")]
    CircuitOpen(u32),
}

impl Failure {
    /// The engine's error kind, when the policy ran.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Failure::Policy(e) => Some(e.kind()),
            Failure::CircuitOpen(_) => None,
        }
    }
}

/// One workload's policy behind a circuit breaker, with its behavior guardrails.
pub struct Supervised {
    policy: Policy,
    guardrails: Guardrails,
    breaker: Breaker,
    consecutive: u32,
    open_until: Option<Instant>,
}

impl Supervised {
    /// Supervises `policy`, applying `guardrails` to its decisions.
    pub fn new(policy: Policy, guardrails: Guardrails, breaker: Breaker) -> Supervised {
        Supervised {
            policy,
            guardrails,
            breaker,
            consecutive: 0,
            open_until: None,
        }
    }

    /// The breaker's state now.
    pub fn circuit(&self) -> Circuit {
        match self.open_until {
            None => Circuit::Closed,
            Some(t) if Instant::now() < t => Circuit::Open,
            Some(_) => Circuit::HalfOpen,
        }
    }

    /// The policy's decision with the guardrails applied, unless it fails or the circuit is open.
    pub fn decide(&mut self, request: &Request) -> Result<Decision, Failure> {
        if self.circuit() == Circuit::Open {
            return Err(Failure::CircuitOpen(self.consecutive));
        }
        match self.policy.decide(request) {
            Ok(mut decision) => {
                self.consecutive = 0;
                self.open_until = None;
                let (target, note) =
                    self.guardrails
                        .apply(request.now, &request.replicas, decision.replicas);
                if let Some(note) = note {
                    decision.reason = format!("{}; {note}", decision.reason);
                }
                decision.replicas = target;
                Ok(decision)
            }
            Err(e) => {
                self.consecutive = self.consecutive.saturating_add(1);
                // A half-open trial that fails re-opens at once; otherwise after N in a row.
                if self.open_until.is_some() || self.consecutive >= self.breaker.failures {
                    self.open_until = Some(Instant::now() + self.breaker.open_for);
                }
                Err(Failure::Policy(e))
            }
        }
    }

    /// Fuel the last policy call used.
    pub fn last_fuel(&self) -> u64 {
        self.policy.last_fuel()
    }
}

/// The hold-current fallback: the last target given, or none when there is none yet.
pub fn hold(last: Option<u32>) -> Option<u32> {
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadtime::{Engine, Limits, Params, Replicas, Workload};

    fn request() -> Request {
        Request {
            abi_version: leadtime::abi::ABI_VERSION,
            now: 1_700_000_000_000,
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
    fn breaker_opens_after_consecutive_traps_and_half_opens_after_cooldown() {
        let engine = Engine::new(Limits::default()).unwrap();
        let wat = "(module (memory (export \"memory\") 1)
            (func (export \"leadtime_abi_version\") (result i32) i32.const 1)
            (func (export \"leadtime_alloc\") (param i32) (result i32) i32.const 1024)
            (func (export \"leadtime_decide\") (param i32 i32) (result i64) unreachable))";
        let policy = engine
            .load_bytes("trap", wat.as_bytes(), Params::new())
            .unwrap();
        let breaker = Breaker {
            failures: 2,
            open_for: Duration::from_millis(50),
        };
        let mut sup = Supervised::new(policy, Guardrails::default(), breaker);
        let kinds: Vec<_> = (0..3)
            .map(|_| sup.decide(&request()).unwrap_err())
            .collect();
        assert_eq!(kinds[0].kind(), Some(ErrorKind::Trap));
        assert_eq!(kinds[1].kind(), Some(ErrorKind::Trap));
        assert!(matches!(kinds[2], Failure::CircuitOpen(2)), "{}", kinds[2]);
        assert_eq!(sup.circuit(), Circuit::Open);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(sup.circuit(), Circuit::HalfOpen);
        assert_eq!(
            sup.decide(&request()).unwrap_err().kind(),
            Some(ErrorKind::Trap)
        );
        assert_eq!(sup.circuit(), Circuit::Open);
        assert_eq!(hold(Some(4)), Some(4));
        assert_eq!(hold(None), None);
    }
}
