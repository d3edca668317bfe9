//! The built-in policies as wasm bytes, compiled from `policies/*` by this crate's build script.

/// One built-in policy.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name users type, e.g. `target-tracking`.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The compiled module.
    pub wasm: &'static [u8],
}

/// Every built-in policy; the first is the default.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "predictive",
        summary: "learns the daily cycle and scales one pod ready-time ahead of the load",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/predictive.wasm")),
    },
    Builtin {
        name: "hpa",
        summary: "the Kubernetes HPA replica calculation, the reactive baseline",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/hpa.wasm")),
    },
    Builtin {
        name: "target-tracking",
        summary: "enough pods for the latest load at the target per pod (plus optional headroom)",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/target-tracking.wasm")),
    },
];

/// The built-in policy called `name`.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
