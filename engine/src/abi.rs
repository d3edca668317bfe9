//! ABI v1, host side: the exports a policy must have, the imports it may have, and how a packed
//! `(pointer, length)` is read. `docs/ABI.md` is the same contract in prose.

use crate::error::{Error, Result};
use wasmtime::{ExternType, FuncType, Module, ValType};

pub use leadtime_wire::ABI_VERSION;

/// The module name of every host function.
pub const HOST_MODULE: &str = "leadtime";
/// `log(level: i32, ptr: i32, len: i32)`: a UTF-8 line for the host's log.
pub const HOST_LOG: &str = "log";

/// `memory`: the linear memory payloads travel through.
pub const EXPORT_MEMORY: &str = "memory";
/// `leadtime_abi_version() -> i32`.
pub const EXPORT_ABI_VERSION: &str = "leadtime_abi_version";
/// `leadtime_alloc(len: i32) -> i32`: a buffer for the host to write a payload into.
pub const EXPORT_ALLOC: &str = "leadtime_alloc";
/// `leadtime_decide(ptr: i32, len: i32) -> i64`: a request in, a packed response out.
pub const EXPORT_DECIDE: &str = "leadtime_decide";
/// Optional `leadtime_init(ptr: i32, len: i32) -> i32`: parameters in, 0 when accepted.
pub const EXPORT_INIT: &str = "leadtime_init";

/// What `inspect` reports about a module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuleInfo {
    /// Every export as `name: type`.
    pub exports: Vec<String>,
    /// Every import as `module::name: type`.
    pub imports: Vec<String>,
    /// Whether the module exports `leadtime_init`.
    pub has_init: bool,
}

fn func(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("func({}) -> ({})", list(params), list(results))
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => describe_func(f),
        ExternType::Memory(m) => format!("memory({} pages min)", m.minimum()),
        ExternType::Table(_) => "table".into(),
        ExternType::Global(_) => "global".into(),
        ExternType::Tag(_) => "tag".into(),
    }
}

fn describe_func(f: &FuncType) -> String {
    let params: Vec<ValType> = f.params().collect();
    let results: Vec<ValType> = f.results().collect();
    func(&params, &results)
}

fn same_func(f: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    f.params().len() == params.len()
        && f.results().len() == results.len()
        && f.params().zip(params).all(|(a, b)| ValType::eq(&a, b))
        && f.results().zip(results).all(|(a, b)| ValType::eq(&a, b))
}

/// The signature of the host's `log` import.
pub fn log_signature() -> (&'static [ValType], &'static [ValType]) {
    (&[ValType::I32, ValType::I32, ValType::I32], &[])
}

/// Checks a compiled module against ABI v1: required exports and their types, and imports.
pub fn check(module: &Module) -> Result<ModuleInfo> {
    use ValType::{I32, I64};

    for import in module.imports() {
        let (params, results) = log_signature();
        let ok = import.module() == HOST_MODULE
            && import.name() == HOST_LOG
            && matches!(import.ty(), ExternType::Func(ref f) if same_func(f, params, results));
        if !ok {
            return Err(Error::ForbiddenImport {
                module: import.module().to_string(),
                name: format!("{} ({})", import.name(), describe(&import.ty())),
            });
        }
    }

    let required: [(&str, &[ValType], &[ValType]); 3] = [
        (EXPORT_ABI_VERSION, &[], &[I32]),
        (EXPORT_ALLOC, &[I32], &[I32]),
        (EXPORT_DECIDE, &[I32, I32], &[I64]),
    ];
    let export = |name: &str| module.exports().find(|e| e.name() == name).map(|e| e.ty());

    match export(EXPORT_MEMORY) {
        None => return Err(Error::MissingExport(EXPORT_MEMORY.into())),
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => {}
        Some(other) => {
            return Err(Error::WrongSignature {
                name: EXPORT_MEMORY.into(),
                expected: "a 32-bit unshared memory".into(),
                found: describe(&other),
            })
        }
    }
    let init = (EXPORT_INIT, &[I32, I32][..], &[I32][..]);
    for (name, params, results) in required.iter().copied().chain([init]) {
        match export(name) {
            None if name == EXPORT_INIT => {}
            None => return Err(Error::MissingExport(name.into())),
            Some(ExternType::Func(f)) if same_func(&f, params, results) => {}
            Some(other) => {
                return Err(Error::WrongSignature {
                    name: name.into(),
                    expected: func(params, results),
                    found: describe(&other),
                })
            }
        }
    }

    Ok(ModuleInfo {
        exports: module
            .exports()
            .map(|e| format!("{}: {}", e.name(), describe(&e.ty())))
            .collect(),
        imports: module
            .imports()
            .map(|i| format!("{}::{}: {}", i.module(), i.name(), describe(&i.ty())))
            .collect(),
        has_init: export(EXPORT_INIT).is_some(),
    })
}

/// Splits `leadtime_decide`'s result into (pointer, length): pointer high, length low.
pub fn unpack(packed: i64) -> (u32, u32) {
    ((packed as u64 >> 32) as u32, packed as u64 as u32)
}

/// The byte range `ptr..ptr + len` if it lies inside a memory of `size` bytes.
pub fn span(ptr: u32, len: u32, size: usize) -> Option<std::ops::Range<usize>> {
    let start = ptr as usize;
    let end = start.checked_add(len as usize)?;
    (end <= size).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_splits_high_and_low_halves() {
        assert_eq!(unpack((7i64 << 32) | 9), (7, 9));
        assert_eq!(unpack(-1), (u32::MAX, u32::MAX));
    }

    #[test]
    fn span_rejects_ranges_past_the_end_or_overflowing() {
        assert_eq!(span(10, 5, 15), Some(10..15));
        assert_eq!(span(10, 6, 15), None);
        assert_eq!(
            span(u32::MAX, u32::MAX, usize::MAX),
            Some(4294967295..8589934590)
        );
        assert_eq!(span(u32::MAX, 1, 100), None);
    }
}
