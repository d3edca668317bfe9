//! What is checked on a module before it is compiled: compiling is not metered by fuel, and its
//! time and memory grow with a module's function count, body sizes, locals and nesting (a module
//! of deeply nested blocks takes minutes to compile, a million empty functions gigabytes). One
//! pass of wasmparser's validator sees all four; a module over a limit is refused by name
//! without being compiled. A module the validator refuses is left to wasmtime, which refuses it
//! too (the validator here accepts every feature, wasmtime a subset) and says why in its words.

use crate::error::Error;
use crate::sandbox::Limits;
use wasmparser::{
    FuncValidatorAllocations, Imports, Parser, Payload, TypeRef, ValidPayload, Validator,
    WasmFeatures,
};

/// Checks a binary module against the compile-time limits.
pub(crate) fn check(binary: &[u8], limits: &Limits) -> Result<(), Error> {
    match walk(binary, limits) {
        Ok(()) | Err(Stop::Invalid) => Ok(()),
        Err(Stop::Over(e)) => Err(e),
    }
}

/// Why the walk stopped early.
enum Stop {
    /// A limit is exceeded.
    Over(Error),
    /// The module is invalid: wasmtime will say so when it compiles it.
    Invalid,
}

impl From<wasmparser::BinaryReaderError> for Stop {
    fn from(_: wasmparser::BinaryReaderError) -> Stop {
        Stop::Invalid
    }
}

fn over(what: &'static str, limit: &'static str, found: u64, cap: usize) -> Stop {
    Stop::Over(Error::ModuleOverLimit {
        what,
        limit,
        found,
        cap: cap as u64,
    })
}

fn walk(binary: &[u8], limits: &Limits) -> Result<(), Stop> {
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut allocs = FuncValidatorAllocations::default();
    let mut functions = 0u64;
    let count_functions = |functions: &mut u64, n: u64| {
        *functions = functions.saturating_add(n);
        if *functions > limits.module_functions as u64 {
            return Err(over(
                "function count",
                "module_functions",
                *functions,
                limits.module_functions,
            ));
        }
        Ok(())
    };
    for payload in Parser::new(0).parse_all(binary) {
        let payload = payload?;
        // Counts come from the section headers, before any body is read or validated.
        match &payload {
            Payload::ImportSection(reader) => {
                for group in reader.clone() {
                    let n = match group? {
                        Imports::Single(_, import) => u64::from(is_func(import.ty)),
                        Imports::Compact1 { items, .. } => {
                            let mut n = 0;
                            for item in items {
                                n += u64::from(is_func(item?.ty));
                            }
                            n
                        }
                        Imports::Compact2 { ty, names, .. } => {
                            if is_func(ty) {
                                u64::from(names.count())
                            } else {
                                0
                            }
                        }
                    };
                    count_functions(&mut functions, n)?;
                }
            }
            Payload::FunctionSection(reader) => {
                count_functions(&mut functions, u64::from(reader.count()))?
            }
            _ => {}
        }
        let ValidPayload::Func(to_validate, body) = validator.payload(&payload)? else {
            continue;
        };
        let size = body.range().len();
        if size > limits.function_bytes {
            return Err(over(
                "largest function body (bytes)",
                "function_bytes",
                size as u64,
                limits.function_bytes,
            ));
        }
        let mut func = to_validate.into_validator(std::mem::take(&mut allocs));
        let mut locals = body.get_locals_reader()?;
        let mut declared = 0u64;
        for _ in 0..locals.get_count() {
            let offset = locals.original_position();
            let (count, ty) = locals.read()?;
            declared = declared.saturating_add(u64::from(count));
            if declared > limits.function_locals as u64 {
                return Err(over(
                    "local count of a function",
                    "function_locals",
                    declared,
                    limits.function_locals,
                ));
            }
            func.define_locals(offset, count, ty)?;
        }
        let mut ops = body.get_operators_reader()?;
        while !ops.eof() {
            let (op, offset) = ops.read_with_offset()?;
            func.op(offset, &op)?;
            // The function's own frame counts as one level; blocks, loops and ifs add one each.
            let depth = (func.control_stack_height() as usize).saturating_sub(1);
            if depth > limits.nesting_depth {
                return Err(over(
                    "block nesting depth",
                    "nesting_depth",
                    depth as u64,
                    limits.nesting_depth,
                ));
            }
        }
        ops.finish()?;
        allocs = func.into_allocations();
    }
    Ok(())
}

fn is_func(ty: TypeRef) -> bool {
    matches!(ty, TypeRef::Func(_) | TypeRef::FuncExact(_))
}
