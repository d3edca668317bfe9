// The types of the table in `builtins.rs`, read by `include!` in `build.rs` and `src/lib.rs`.

/// One entry of the table of built-in policies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// The name users type, e.g. `target-tracking`.
    pub name: &'static str,
    /// The workspace crate built to wasm32 for it.
    pub krate: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The QoS knob `leadtime backtest --sweep` varies, and its values.
    pub knob: Knob,
}

/// The QoS knob a backtest sweep varies for a policy, and its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Knob {
    /// A policy param, by name.
    Param(&'static str, &'static [f64]),
    /// The backtest's target utilization (target per pod = capacity × it), as for the HPA.
    Utilization(&'static [f64]),
}
