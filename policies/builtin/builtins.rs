// The built-in policies, declared once: `build.rs` builds each crate to wasm32 from this table and
// `src/lib.rs` exposes it (with the modules) as `BUILTINS`. Adding a built-in is one entry here
// and its crate among the workspace members. The first entry is the default policy.
//
// Plain Rust data (no dependency to parse it), read by `include!` in both places; the `Spec` and
// `Knob` types are in `spec.rs`.

/// The peers' target utilizations: beyond 1 too, since a forecast's own margin (Crane's 1-20%,
/// the maximum over a window) makes them dearer than the reactive HPA at the same utilization,
/// and a curve must reach the predictive policy's cost to be read there: on bursty traces that
/// cost is up to 1.8 times the oracle's (0.3, 0.4), and on AI load a peer's cheapest point at
/// 1.5 was still dearer (2, 3).
const PEER_UTILIZATION: &[f64] = &[
    0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.3, 1.5, 2.0, 3.0,
];

const TABLE: &[Spec] = &[
    Spec {
        name: "predictive",
        krate: "leadtime-policy-predictive",
        summary: "learns the daily cycle and scales one pod ready-time ahead of the load",
        knob: Knob::Param("quantile", &[0.5, 0.7, 0.8, 0.9, 0.95, 0.99]),
    },
    Spec {
        name: "hpa",
        krate: "leadtime-policy-hpa",
        summary: "the Kubernetes HPA replica calculation, the reactive baseline",
        // Down to 0.3: on bursty traces the predictive default costs up to 1.8 times the oracle,
        // and the HPA's curve must reach that cost to be read there.
        knob: Knob::Utilization(&[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0]),
    },
    Spec {
        name: "target-tracking",
        krate: "leadtime-policy-target-tracking",
        summary: "enough pods for the latest load at the target per pod (plus optional headroom)",
        knob: Knob::Param("headroom", &[0.0, 0.1, 0.2, 0.4, 0.6, 1.0]),
    },
    Spec {
        name: "holt-winters",
        krate: "leadtime-policy-holt-winters",
        summary: "comparison peer: additive Holt-Winters as PHPA runs it (alpha/beta/gamma, season)",
        knob: Knob::Utilization(PEER_UTILIZATION),
    },
    Spec {
        name: "crane-dsp",
        krate: "leadtime-policy-crane-dsp",
        summary: "comparison peer: Crane EHPA's DSP predictor (FFT of the daily or weekly cycle)",
        knob: Knob::Utilization(PEER_UTILIZATION),
    },
];
