//! The oracle: the cheapest pod schedule that is never under-provisioned, knowing the whole
//! future demand and every pod's ready time.
//!
//! Pods are identical, so the need (`ceil(demand / capacity)` pods) splits into layers: layer `i`
//! is needed whenever the need is at least `i`. Each layer is served by one pod at a time. A run of
//! need `[u, v)` takes a pod created at the latest decision time `s` with `s + ready(s) <= u`,
//! removed at the first decision time at or after `v`. Between two runs, keeping the pod costs the
//! gap; removing it and creating another costs the new pod's start-up. Keeping is cheaper exactly
//! when the next creation time would come no later than the removal time, so each gap is decided
//! on its own. With a fixed ready time this is the exact optimum; with random ready times each
//! pod's own draw decides (see docs/backtest.md).

use super::ready::ReadyTimes;
use super::Grid;
use std::collections::HashMap;

/// One pod of the oracle's schedule (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedPod {
    /// Creation (a decision time; at most the window start for pods that exist at it).
    pub created: i64,
    /// When it is Ready.
    pub ready: i64,
    /// Removal (a decision time, or the end of the trace).
    pub removed: i64,
}

/// The oracle's pods for the scored window `[grid.score_start, grid.end)`, given the need in
/// pods of each trace slot.
pub fn plan(grid: &Grid, need: &[u32], ready: &ReadyTimes, seed: u64) -> Vec<PlannedPod> {
    let start = grid.score_start;
    let end = grid.end;
    // Runs of need per layer: (u, v) with layer = index.
    let mut runs: Vec<Vec<(i64, i64)>> = Vec::new();
    let mut open: Vec<i64> = Vec::new(); // open[i]: start of the open run of layer i+1
    let first_slot = ((start - grid.trace_start) / grid.trace_step).max(0) as usize;
    for (slot, &n) in need.iter().enumerate().skip(first_slot) {
        let t = (grid.trace_start + slot as i64 * grid.trace_step).max(start);
        if t >= end {
            break;
        }
        let n = n as usize;
        while open.len() > n {
            let layer = open.len() - 1;
            let u = open.pop().expect("non-empty");
            runs[layer].push((u, t));
        }
        while open.len() < n {
            if runs.len() <= open.len() {
                runs.push(Vec::new());
            }
            open.push(t);
        }
    }
    while let Some(u) = open.pop() {
        runs[open.len()].push((u, end));
    }

    let mut created_at: HashMap<i64, u32> = HashMap::new();
    let mut pods = Vec::new();
    for layer in runs {
        let mut current: Option<PlannedPod> = None;
        for (u, v) in layer {
            let removal = grid.ceil(v).min(end);
            if u <= start {
                // Need from the first scored moment: a pod that already exists, Ready.
                current = Some(PlannedPod {
                    created: start,
                    ready: start,
                    removed: removal,
                });
                continue;
            }
            let (s, index, ready_at) = latest_creation(grid, u, ready, seed, &created_at);
            match current.as_mut() {
                Some(pod) if s <= pod.removed => pod.removed = removal,
                _ => {
                    if let Some(pod) = current.take() {
                        pods.push(pod);
                    }
                    created_at.insert(s, index + 1);
                    current = Some(PlannedPod {
                        created: s,
                        ready: ready_at,
                        removed: removal,
                    });
                }
            }
        }
        if let Some(pod) = current {
            pods.push(pod);
        }
    }
    pods
}

/// The latest decision time `s` whose next pod is Ready by `u`: (s, index at s, ready time).
fn latest_creation(
    grid: &Grid,
    u: i64,
    ready: &ReadyTimes,
    seed: u64,
    created_at: &HashMap<i64, u32>,
) -> (i64, u32, i64) {
    let mut s = grid.floor(u);
    loop {
        let index = created_at.get(&s).copied().unwrap_or(0);
        let r = ready.draw_ms(seed, s, index);
        if s + r <= u {
            return (s, index, s + r);
        }
        // Far enough back, the fixed case's direct answer bounds the search.
        s = if ready.is_fixed() {
            grid.floor(u - r)
        } else {
            s - grid.interval
        };
    }
}
