//! The behavior rules applied to a stream of recommendations, with the history the HPA controller
//! keeps per workload: stabilisation windows and rate limits.

use super::spec::{Behavior, BehaviorError, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy};
use leadtime_wire::Replicas;
use std::fmt;

/// One direction's rules with every default filled in.
#[derive(Debug, Clone)]
struct Rules {
    window_seconds: u32,
    select: SelectPolicy,
    policies: Vec<ScalingPolicy>,
    tolerance: Option<f64>,
}

impl Rules {
    fn from(rules: Option<&ScalingRules>, defaults: ScalingRules) -> Rules {
        let r = rules.cloned().unwrap_or_default().or_defaults(defaults);
        Rules {
            window_seconds: r.stabilization_window_seconds.unwrap_or(0),
            select: r.select_policy.unwrap_or(SelectPolicy::Max),
            policies: r.policies.unwrap_or_default(),
            tolerance: r.tolerance,
        }
    }

    fn longest_period(&self) -> u32 {
        self.policies
            .iter()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0)
    }
}

/// A recommendation the guardrails saw, as upstream's `timestampedRecommendation`.
#[derive(Debug, Clone, Copy)]
struct Recommendation {
    at_ms: i64,
    replicas: u32,
}

/// A change of replicas the guardrails made, as upstream's `timestampedScaleEvent`.
#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    at_ms: i64,
    change: i64,
    outdated: bool,
}

/// The behavior rules plus the history they need, for one workload.
#[derive(Debug, Clone)]
pub struct Controller {
    behavior: Behavior,
    up: Rules,
    down: Rules,
    recommendations: Vec<Recommendation>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller::new(Behavior::default())
    }
}

/// Which of the two directions a rule belongs to, for notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Up => "scale-up",
            Direction::Down => "scale-down",
        })
    }
}

impl Controller {
    /// Controller with these rules and no history. Absent fields take the autoscaling/v2
    /// defaults; use [`Controller::try_new`] to refuse values Kubernetes would refuse.
    pub fn new(behavior: Behavior) -> Self {
        let up = Rules::from(behavior.scale_up.as_ref(), ScalingRules::default_scale_up());
        let down = Rules::from(
            behavior.scale_down.as_ref(),
            ScalingRules::default_scale_down(),
        );
        Controller {
            behavior,
            up,
            down,
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    /// Controller with these rules once they pass Kubernetes' validation.
    pub fn try_new(behavior: Behavior) -> Result<Self, BehaviorError> {
        behavior.validate()?;
        Ok(Controller::new(behavior))
    }

    /// The rules.
    pub fn behavior(&self) -> &Behavior {
        &self.behavior
    }

    /// Forgets every recommendation and scale event, as a restarted controller would.
    pub fn reset(&mut self) {
        self.recommendations.clear();
        self.scale_up_events.clear();
        self.scale_down_events.clear();
    }

    /// Records a change of replicas made at `at_ms`, as the controller does after each rescale:
    /// for a host that restores the history of a workload, or that changed the replicas by
    /// other means and wants the rate limits to count it. `from == to` records nothing.
    pub fn record_scale_event(&mut self, at_ms: i64, from: u32, to: u32) {
        if from != to {
            self.store_scale_event(at_ms, from, to);
        }
    }

    /// Appends a recommendation made at `at_ms` to the kept ones, in the order given, without
    /// reusing old slots: for a host that restores the history of a workload it saved.
    pub fn restore_recommendation(&mut self, at_ms: i64, replicas: u32) {
        self.recommendations
            .push(Recommendation { at_ms, replicas });
    }

    /// The recommendations kept, in slot order (upstream reuses old slots): (Unix ms, replicas).
    pub fn recommendations(&self) -> Vec<(i64, u32)> {
        self.recommendations
            .iter()
            .map(|r| (r.at_ms, r.replicas))
            .collect()
    }

    /// The target after stabilisation and rate limits, given the policy's `proposed` target at
    /// `now_ms`, and a note naming the rule that changed it, if any. Records the history.
    ///
    /// Records the returned target as applied: a change from `replicas.current` becomes a scale
    /// event that later rate limits count, as the controller stores one after each rescale.
    pub fn apply(
        &mut self,
        now_ms: i64,
        replicas: &Replicas,
        proposed: u32,
    ) -> (u32, Option<String>) {
        let current = replicas.current;
        let (min, max) = (replicas.min, replicas.max.max(replicas.min));
        // reconcileAutoscaler: a current count outside the bounds goes straight to the bound,
        // without stabilisation or rate limits.
        let (target, note) = if current > max {
            (
                max,
                Some(format!(
                    "current {current} above max {max}: scaled to max, no behavior rule applies"
                )),
            )
        } else if current < min {
            (
                min,
                Some(format!(
                    "current {current} below min {min}: scaled to min, no behavior rule applies"
                )),
            )
        } else {
            let mut notes = Vec::new();
            let desired = self.tolerate(current, proposed, &mut notes);
            let stabilized = self.stabilize(now_ms, current, desired, &mut notes);
            let target = self.rate_limit(now_ms, current, stabilized, min, max, &mut notes);
            (target, (!notes.is_empty()).then(|| notes.join("; ")))
        };
        if target != current {
            self.store_scale_event(now_ms, current, target);
        }
        (target, note)
    }

    /// The behavior tolerance (autoscaling/v2 `tolerance`): a relative change from `current`
    /// within it keeps `current`. Upstream applies it to the metric ratio; for a policy whose
    /// target is ceil(ratio × current) the two agree.
    fn tolerate(&self, current: u32, proposed: u32, notes: &mut Vec<String>) -> u32 {
        if current == 0 || proposed == current {
            return proposed;
        }
        let ratio = f64::from(proposed) / f64::from(current);
        let (direction, tolerance) = if proposed > current {
            (Direction::Up, self.up.tolerance)
        } else {
            (Direction::Down, self.down.tolerance)
        };
        let Some(tolerance) = tolerance else {
            return proposed;
        };
        // Upstream's `isWithin`: 1 - down <= ratio <= 1 + up (the form matters in float64).
        let within = match direction {
            Direction::Up => ratio <= 1.0 + tolerance,
            Direction::Down => 1.0 - tolerance <= ratio,
        };
        if within {
            notes.push(format!(
                "{direction} tolerance {tolerance}: {proposed} is within it of current {current}, holding {current}"
            ));
            current
        } else {
            proposed
        }
    }

    /// `stabilizeRecommendationWithBehaviors`: the lowest recommendation in the scale-up window
    /// and the highest in the scale-down window bound the target; records `desired`.
    fn stabilize(
        &mut self,
        now_ms: i64,
        current: u32,
        desired: u32,
        notes: &mut Vec<String>,
    ) -> u32 {
        let up_cutoff = cutoff(now_ms, self.up.window_seconds);
        let down_cutoff = cutoff(now_ms, self.down.window_seconds);
        let mut up_rec = desired;
        let mut down_rec = desired;
        let mut old_slot = None;
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.at_ms > up_cutoff {
                up_rec = up_rec.min(rec.replicas);
            }
            if rec.at_ms > down_cutoff {
                down_rec = down_rec.max(rec.replicas);
            }
            if rec.at_ms < up_cutoff && rec.at_ms < down_cutoff {
                old_slot = Some(i);
            }
        }
        let stabilized = current.max(up_rec).min(down_rec);
        let rec = Recommendation {
            at_ms: now_ms,
            replicas: desired,
        };
        match old_slot {
            Some(i) => self.recommendations[i] = rec,
            None => self.recommendations.push(rec),
        }
        if stabilized != desired {
            notes.push(if desired >= current {
                format!(
                    "scale-up stabilization window {}s: lowest recent recommendation gives {stabilized} (asked {desired})",
                    self.up.window_seconds
                )
            } else {
                format!(
                    "scale-down stabilization window {}s: highest recent recommendation gives {stabilized} (asked {desired})",
                    self.down.window_seconds
                )
            });
        }
        stabilized
    }

    /// `convertDesiredReplicasWithBehaviorRate`: the policies' rate limits and the bounds.
    fn rate_limit(
        &self,
        now_ms: i64,
        current: u32,
        desired: u32,
        min: u32,
        max: u32,
        notes: &mut Vec<String>,
    ) -> u32 {
        let cur = i64::from(current);
        if desired > current {
            let (limit, why) = self.limit(now_ms, cur, Direction::Up);
            // Upstream: never below current because of old events.
            let limit = limit.max(cur);
            if i64::from(max) > limit {
                if i64::from(desired) > limit {
                    notes.push(format!("{why}: limited to {limit} (asked {desired})"));
                    return to_u32(limit);
                }
            } else if desired > max {
                notes.push(format!("clamped to max {max} (asked {desired})"));
                return max;
            }
        } else if desired < current {
            let (limit, why) = self.limit(now_ms, cur, Direction::Down);
            let limit = limit.min(cur);
            if i64::from(min) < limit {
                if i64::from(desired) < limit {
                    notes.push(format!("{why}: limited to {limit} (asked {desired})"));
                    return to_u32(limit);
                }
            } else if desired < min {
                notes.push(format!("clamped to min {min} (asked {desired})"));
                return min;
            }
        }
        desired
    }

    /// The furthest the replicas may go in `direction` now, and the rule that sets it:
    /// `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`.
    fn limit(&self, now_ms: i64, current: i64, direction: Direction) -> (i64, String) {
        let rules = match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        };
        if rules.select == SelectPolicy::Disabled {
            return (
                current,
                format!("{direction} disabled (selectPolicy: Disabled)"),
            );
        }
        // Which policy wins: for scale-up Max takes the highest limit, Min the lowest; for
        // scale-down Max takes the lowest (largest change), Min the highest.
        let take_higher = (direction == Direction::Up) == (rules.select == SelectPolicy::Max);
        let mut best: Option<(i64, &ScalingPolicy)> = None;
        for policy in &rules.policies {
            let added = changes_within(&self.scale_up_events, now_ms, policy.period_seconds);
            let removed = changes_within(&self.scale_down_events, now_ms, policy.period_seconds);
            let start = current - added + removed;
            let value = f64::from(policy.value);
            let proposed = match (direction, policy.kind) {
                (Direction::Up, PolicyKind::Pods) => start + i64::from(policy.value),
                // Rounded up, as upstream, so that a small percentage still adds a pod; in
                // float64 as upstream, so that rounding agrees to the last bit.
                (Direction::Up, PolicyKind::Percent) => {
                    ceil_to_i64(start as f64 * (1.0 + value / 100.0))
                }
                (Direction::Down, PolicyKind::Pods) => start - i64::from(policy.value),
                // Truncated toward zero, as Go's int32 conversion.
                (Direction::Down, PolicyKind::Percent) => {
                    trunc_to_i64(start as f64 * (1.0 - value / 100.0))
                }
            };
            let better = match best {
                None => true,
                Some((b, _)) if take_higher => proposed > b,
                Some((b, _)) => proposed < b,
            };
            if better {
                best = Some((proposed, policy));
            }
        }
        match best {
            Some((limit, policy)) => {
                let many = rules.policies.len() > 1;
                let select = if many {
                    format!(", selectPolicy {}", rules.select)
                } else {
                    String::new()
                };
                (limit, format!("{direction} policy {policy}{select}"))
            }
            // No policy (only reachable when validation was skipped): no limit in this direction.
            None => (
                match direction {
                    Direction::Up => i64::from(u32::MAX),
                    Direction::Down => 0,
                },
                format!("{direction} has no policy"),
            ),
        }
    }

    /// `storeScaleEvent`: records a change, reusing a slot that fell out of the longest period.
    fn store_scale_event(&mut self, now_ms: i64, previous: u32, new: u32) {
        let (events, longest, change) = if new > previous {
            (
                &mut self.scale_up_events,
                self.up.longest_period(),
                i64::from(new - previous),
            )
        } else {
            (
                &mut self.scale_down_events,
                self.down.longest_period(),
                i64::from(previous - new),
            )
        };
        let cutoff = cutoff(now_ms, longest);
        let mut old_slot = None;
        for (i, e) in events.iter_mut().enumerate() {
            if e.at_ms < cutoff {
                e.outdated = true;
            }
            if e.outdated {
                old_slot = Some(i);
            }
        }
        let event = ScaleEvent {
            at_ms: now_ms,
            change,
            outdated: false,
        };
        match old_slot {
            Some(i) => events[i] = event,
            None => events.push(event),
        }
    }
}

/// `getReplicasChangePerPeriod`: the replicas changed by events strictly inside the period.
fn changes_within(events: &[ScaleEvent], now_ms: i64, period_seconds: u32) -> i64 {
    let cutoff = cutoff(now_ms, period_seconds);
    events
        .iter()
        .filter(|e| e.at_ms > cutoff)
        .map(|e| e.change)
        .sum()
}

/// `now - seconds`, in Unix ms; saturating, so that no timestamp overflows.
fn cutoff(now_ms: i64, seconds: u32) -> i64 {
    now_ms.saturating_sub(i64::from(seconds) * 1000)
}

fn ceil_to_i64(x: f64) -> i64 {
    // Finite here: replica counts times at most (1 + u32::MAX / 100). `as` saturates.
    x.ceil() as i64
}

fn trunc_to_i64(x: f64) -> i64 {
    x.trunc() as i64
}

fn to_u32(x: i64) -> u32 {
    x.clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(current: u32, min: u32, max: u32) -> Replicas {
        Replicas {
            current,
            ready: current,
            min,
            max,
        }
    }

    #[test]
    fn default_scale_up_is_max_of_four_pods_or_double() {
        // 3 -> at most max(3 + 4, 3 × 2) = 7; 10 -> at most max(14, 20) = 20.
        let mut g = Controller::default();
        assert_eq!(g.apply(0, &r(3, 1, 100), 50).0, 7);
        let mut g = Controller::default();
        assert_eq!(g.apply(0, &r(10, 1, 100), 50).0, 20);
    }

    #[test]
    fn scale_events_reuse_outdated_slots() {
        let mut g = Controller::default();
        for i in 0..10 {
            let cur = 1 + i;
            g.apply(i64::from(i) * 60_000, &r(cur, 1, 100), cur + 1);
        }
        // Every event is older than 15 s when the next comes, so one slot is reused.
        assert_eq!(g.scale_up_events.len(), 1);
    }

    #[test]
    fn the_target_lies_between_current_and_the_bounded_proposal() {
        // The rules only hold back: whatever the rules and history, the target is between the
        // current count and the proposal clamped to the bounds. A seeded ChaCha keeps it
        // repeatable.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x2545_f491_4f6c_dd1d);
        let mut next = |n: u64| rng.random_range(0..n);
        let behaviors = [
            Behavior::default(),
            Behavior::parse("scaleUp:\n  stabilizationWindowSeconds: 60\n  selectPolicy: Min\n  policies:\n  - type: Pods\n    value: 2\n    periodSeconds: 30\n  - type: Percent\n    value: 50\n    periodSeconds: 90\nscaleDown:\n  stabilizationWindowSeconds: 120\n  policies:\n  - type: Percent\n    value: 20\n    periodSeconds: 60\n  tolerance: 0.1\n").unwrap(),
            Behavior::parse("scaleDown:\n  selectPolicy: Disabled\n").unwrap(),
        ];
        for behavior in behaviors {
            let mut g = Controller::new(behavior);
            let mut current = 5;
            for step in 0..2000i64 {
                let (min, max) = (next(3) as u32, 20 + next(30) as u32);
                let current_now = current.clamp(min, max);
                let proposed = next(80) as u32;
                let (target, _) = g.apply(step * 7_000, &r(current_now, min, max), proposed);
                let bounded = proposed.clamp(min, max);
                let (lo, hi) = (current_now.min(bounded), current_now.max(bounded));
                assert!(
                    (lo..=hi).contains(&target),
                    "step {step}: current {current_now}, proposed {proposed} in [{min}, {max}] gave {target}"
                );
                current = target;
            }
        }
    }
}
