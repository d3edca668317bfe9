//! The Kubernetes HPA `behavior` rules (autoscaling/v2), applied after any policy: stabilisation
//! windows and rate limits, with the history the HPA controller keeps per workload.
//!
//! The arithmetic follows the upstream controller (`pkg/controller/podautoscaler/horizontal.go`:
//! `stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`,
//! `calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`,
//! `storeScaleEvent`), including its float rounding and the way it reuses history slots, so that
//! a backtest with these guardrails matches what a cluster would have done.
//!
//! ```
//! use leadtime::behavior::{Behavior, Controller};
//! use leadtime::Replicas;
//! let behavior = Behavior::parse("scaleDown:\n  stabilizationWindowSeconds: 60\n").unwrap();
//! let mut controller = Controller::new(behavior);
//! let r = Replicas { current: 10, ready: 10, min: 1, max: 100 };
//! let (target, note) = controller.apply(0, &r, 4);
//! assert_eq!(target, 4); // no earlier recommendation is higher
//! assert!(note.is_none());
//! ```

mod controller;
mod spec;

pub use controller::Controller;
pub use spec::{
    Behavior, BehaviorError, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy,
    DEFAULT_SCALE_DOWN_WINDOW_SECONDS, MAX_PERIOD_SECONDS, MAX_STABILIZATION_WINDOW_SECONDS,
};
