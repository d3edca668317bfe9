//! The built-in policies as wasm bytes, compiled from `policies/*` by this crate's build script.
//! The list is declared once, in `builtins.rs` (name, crate, summary, sweep knob).

include!("../spec.rs");
include!("../builtins.rs");
include!(concat!(env!("OUT_DIR"), "/modules.rs"));

/// One built-in policy.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name users type, e.g. `target-tracking`.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The QoS knob a backtest sweep varies, and its values.
    pub knob: Knob,
    /// The workspace crate it is built from.
    pub krate: &'static str,
    /// The compiled module.
    pub wasm: &'static [u8],
}

const fn join<const N: usize>() -> [Builtin; N] {
    assert!(
        TABLE.len() == N && MODULES.len() == N,
        "one module per entry"
    );
    let mut out = [Builtin {
        name: "",
        summary: "",
        knob: Knob::Param("", &[]),
        krate: "",
        wasm: &[],
    }; N];
    let mut i = 0;
    while i < N {
        let s = TABLE[i];
        out[i] = Builtin {
            name: s.name,
            summary: s.summary,
            knob: s.knob,
            krate: s.krate,
            wasm: MODULES[i],
        };
        i += 1;
    }
    out
}

/// Every built-in policy; the first is the default.
pub const BUILTINS: &[Builtin] = &join::<{ TABLE.len() }>();

/// The built-in policy called `name`.
pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The table as declared, without the modules (what the build script reads).
pub fn specs() -> &'static [Spec] {
    TABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_a_module_and_a_unique_name() {
        assert_eq!(BUILTINS.len(), TABLE.len());
        for (i, b) in BUILTINS.iter().enumerate() {
            assert!(
                b.wasm.starts_with(b"\0asm"),
                "{}: not a wasm module",
                b.name
            );
            assert!(
                BUILTINS[..i].iter().all(|o| o.name != b.name),
                "{} twice",
                b.name
            );
        }
        assert_eq!(BUILTINS[0].name, "predictive", "the default comes first");
    }
}
