//! Supervision of one workload's policy: whatever the policy does, a decision comes out.
//!
//! A [`Supervisor`] wraps a [`Policy`]. When a call fails it answers with a fallback (hold the
//! current replicas, hold its own last answer, a fixed count, or another policy) and says why.
//! With [`Supervisor::with_guardrails`] it applies HPA behavior guardrails to the policy's
//! decisions, as a long-running host (the KEDA scaler) needs. After
//! [`SupervisorConfig::failure_threshold`] failures in a row a circuit breaker opens: the policy
//! is not called for [`SupervisorConfig::backoff_ms`] of request time (`Request::now`, so a
//! replay or a test behaves the same every time), then one trial call decides whether it closes
//! again. Errors are counted per [`ErrorKind`] for metrics.
//!
//! ```no_run
//! use leadtime::supervisor::{Supervisor, SupervisorConfig};
//! use leadtime::{Engine, Limits, Params, Source};
//! # fn request() -> leadtime::Request { unimplemented!() }
//! let engine = Engine::new(&Limits::default())?;
//! let policy = engine.load(Source::builtin("predictive"), Params::new())?;
//! let mut supervisor = Supervisor::new(policy, SupervisorConfig::default());
//! let answer = supervisor.decide(&request()); // never fails
//! if answer.is_fallback() {
//!     eprintln!("fallback: {}", answer.decision.reason);
//! }
//! # Ok::<(), leadtime::Error>(())
//! ```

use crate::behavior::Controller;
use crate::decision::Decision;
use crate::error::{Error, ErrorKind};
use crate::guard;
use crate::policy::Policy;
use leadtime_wire::Request;
use std::collections::BTreeMap;
use std::fmt;

/// What to answer when the policy cannot.
pub enum Fallback {
    /// Keep the replicas the workload has now (`replicas.current`), clamped to `[min, max]`.
    HoldCurrent,
    /// Keep the replicas this supervisor answered last (the target it gave, after guardrails),
    /// clamped to `[min, max]`; before its first answer, hold current. For a host that does not
    /// know the current replicas and answers a target, as a KEDA scaler does.
    HoldLast,
    /// This many replicas, clamped to `[min, max]`.
    Fixed(u32),
    /// Ask another policy (for example the built-in `hpa`); if it fails too, hold current.
    Policy(Box<Policy>),
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::HoldCurrent => f.write_str("HoldCurrent"),
            Fallback::HoldLast => f.write_str("HoldLast"),
            Fallback::Fixed(n) => f.debug_tuple("Fixed").field(n).finish(),
            Fallback::Policy(p) => f.debug_tuple("Policy").field(&p.name()).finish(),
        }
    }
}

/// How a [`Supervisor`] falls back and when its circuit breaker opens.
#[derive(Debug)]
pub struct SupervisorConfig {
    /// The answer when the policy fails or is skipped. Default: hold current.
    pub fallback: Fallback,
    /// Failures in a row that open the circuit. Default 3; 0 never opens it.
    pub failure_threshold: u32,
    /// How long the circuit stays open, in request time (milliseconds of `Request::now`).
    /// Default 60,000 (one minute).
    pub backoff_ms: u64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            fallback: Fallback::HoldCurrent,
            failure_threshold: 3,
            backoff_ms: 60_000,
        }
    }
}

/// The circuit breaker's state at a given request time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// The policy is called.
    Closed,
    /// The policy is not called before `until` (Unix ms, request time).
    Open {
        /// When the back-off ends.
        until: i64,
    },
    /// The back-off is over: the next call is a trial that closes or reopens the circuit.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half-open`, for logs and metrics labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a decision is a fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackCause {
    /// The policy was called and failed.
    Failed {
        /// The error's kind.
        kind: ErrorKind,
        /// The error's text.
        detail: String,
    },
    /// The circuit is open: the policy was not called.
    CircuitOpen {
        /// When the back-off ends (Unix ms, request time).
        until: i64,
        /// The kind of the failure that opened it.
        last: ErrorKind,
    },
}

impl fmt::Display for FallbackCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackCause::Failed { kind, detail } => write!(f, "policy failed: {kind}: {detail}"),
            FallbackCause::CircuitOpen { until, last } => write!(
                f,
                "circuit open until {until} after repeated failures (last: {last}); policy not called"
            ),
        }
    }
}

/// A supervised answer: always a decision, and whether (and why) it is a fallback.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervised {
    /// The decision, within `[min, max]`.
    pub decision: Decision,
    /// `None` when the policy answered; the cause when this is the fallback's answer.
    pub fallback: Option<FallbackCause>,
}

impl Supervised {
    /// Whether the decision came from the fallback rather than the policy.
    pub fn is_fallback(&self) -> bool {
        self.fallback.is_some()
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisorStats {
    /// Decisions returned.
    pub decisions: u64,
    /// Of which fallbacks.
    pub fallbacks: u64,
    /// Calls skipped because the circuit was open.
    pub skipped: u64,
    /// Times the circuit opened.
    pub opened: u64,
    /// The policy's errors by kind (the fallback policy's are not counted here).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Errors of the fallback policy by kind.
    pub fallback_errors: BTreeMap<ErrorKind, u64>,
}

/// A policy for one workload under supervision: see the module docs.
pub struct Supervisor {
    policy: Policy,
    config: SupervisorConfig,
    consecutive_failures: u32,
    open_until: Option<i64>,
    last_error: Option<ErrorKind>,
    stats: SupervisorStats,
    guardrails: Option<Controller>,
    last_answer: Option<u32>,
}

impl Supervisor {
    /// Supervises `policy` with `config`.
    pub fn new(policy: Policy, config: SupervisorConfig) -> Supervisor {
        Supervisor {
            policy,
            config,
            consecutive_failures: 0,
            open_until: None,
            last_error: None,
            stats: SupervisorStats::default(),
            guardrails: None,
            last_answer: None,
        }
    }

    /// Applies `guardrails` (HPA behavior: stabilisation, rate limits, tolerance) to every
    /// decision of the policy; a fallback's decision holds and is not rate limited. The
    /// decision's `proposed` stays the policy's own target, `replicas` is the guarded one.
    pub fn with_guardrails(mut self, guardrails: Controller) -> Supervisor {
        self.guardrails = Some(guardrails);
        self
    }

    /// The replicas of the last decision returned, the policy's or a fallback's; `None` before
    /// the first.
    pub fn last_answer(&self) -> Option<u32> {
        self.last_answer
    }

    /// A decision for `request`: the policy's, or the fallback's when the policy fails or the
    /// circuit is open. Never fails; every decision lies within `[min, max]`.
    pub fn decide(&mut self, request: &Request) -> Supervised {
        let supervised = self.supervise(request);
        self.last_answer = Some(supervised.decision.replicas);
        supervised
    }

    fn supervise(&mut self, request: &Request) -> Supervised {
        self.stats.decisions += 1;
        let now = request.now;
        if let BreakerState::Open { until } = self.breaker(now) {
            self.stats.skipped += 1;
            let cause = FallbackCause::CircuitOpen {
                until,
                last: self.last_error.unwrap_or(ErrorKind::Runtime),
            };
            return self.fall_back(request, cause, 0);
        }
        match self.policy.decide(request) {
            Ok(mut decision) => {
                self.consecutive_failures = 0;
                self.open_until = None;
                if let Some(guardrails) = &mut self.guardrails {
                    let (target, note) =
                        guardrails.apply(request.now, &request.replicas, decision.replicas);
                    if let Some(note) = note {
                        decision.reason = format!("{}; {note}", decision.reason);
                    }
                    decision.replicas = target;
                }
                Supervised {
                    decision,
                    fallback: None,
                }
            }
            Err(error) => {
                let fuel = self.policy.last_fuel();
                self.record_failure(&error, now);
                let cause = FallbackCause::Failed {
                    kind: error.kind(),
                    detail: error.to_string(),
                };
                self.fall_back(request, cause, fuel)
            }
        }
    }

    /// The circuit breaker's state for a request at `now` (Unix ms).
    pub fn breaker(&self, now: i64) -> BreakerState {
        match self.open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open { until },
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Failures in a row so far (0 after any success).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &SupervisorStats {
        &self.stats
    }

    /// The supervised policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The supervised policy, mutably (for example to reset its state).
    pub fn policy_mut(&mut self) -> &mut Policy {
        &mut self.policy
    }

    /// The configuration.
    pub fn config(&self) -> &SupervisorConfig {
        &self.config
    }

    fn record_failure(&mut self, error: &Error, now: i64) {
        *self.stats.errors.entry(error.kind()).or_default() += 1;
        // A request the host got wrong says nothing about the policy's health.
        if error.kind() == ErrorKind::BadRequest {
            return;
        }
        self.last_error = Some(error.kind());
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let threshold = self.config.failure_threshold;
        // A failed trial call (half-open) reopens at once; otherwise the threshold decides.
        let reopen = self.open_until.is_some();
        if threshold > 0 && (reopen || self.consecutive_failures >= threshold) {
            let backoff = i64::try_from(self.config.backoff_ms).unwrap_or(i64::MAX);
            self.open_until = Some(now.saturating_add(backoff));
            self.stats.opened += 1;
        }
    }

    /// The fallback's decision for `request`, clamped, with `cause` in its reason.
    fn fall_back(&mut self, request: &Request, cause: FallbackCause, fuel: u64) -> Supervised {
        self.stats.fallbacks += 1;
        let replicas = &request.replicas;
        let (proposed, what) = match &mut self.config.fallback {
            Fallback::HoldCurrent => (replicas.current, "hold current".to_string()),
            Fallback::HoldLast => match self.last_answer {
                Some(last) => (last, "hold last".to_string()),
                None => (replicas.current, "hold current (no answer yet)".to_string()),
            },
            Fallback::Fixed(n) => (*n, "fixed".to_string()),
            Fallback::Policy(policy) => match policy.decide(request) {
                Ok(mut decision) => {
                    decision.reason = format!(
                        "fallback to policy {}: {}; {cause}",
                        policy.name(),
                        decision.reason
                    );
                    decision.fuel = decision.fuel.saturating_add(fuel);
                    return Supervised {
                        decision,
                        fallback: Some(cause),
                    };
                }
                Err(e) => {
                    *self.stats.fallback_errors.entry(e.kind()).or_default() += 1;
                    let what = format!(
                        "hold current (fallback policy {} failed too: {}: {e})",
                        policy.name(),
                        e.kind()
                    );
                    (replicas.current, what)
                }
            },
        };
        let (target, note) = guard::clamp(proposed, replicas);
        let note = note.map(|n| format!(", {n}")).unwrap_or_default();
        Supervised {
            decision: Decision {
                replicas: target,
                proposed,
                reason: format!("fallback: {what} {proposed}{note}; {cause}"),
                forecast: None,
                fuel,
                state: None,
            },
            fallback: Some(cause),
        }
    }
}
