//! Compiles each built-in policy crate of the table in `builtins.rs` to wasm32 with a nested
//! cargo, so that the host binary embeds them and a fresh clone needs no separate build step.
//!
//! A published package has no workspace to build from: it carries the modules built when it was
//! packaged (`wasm/NAME.wasm`, written by `scripts/package.sh`) and embeds those instead.

use std::path::PathBuf;

#[allow(dead_code)] // The build reads names and crates; the library reads the rest.
mod table {
    include!("spec.rs");
    include!("builtins.rs");
    /// The table.
    pub const SPECS: &[Spec] = TABLE;
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let policies_dir = manifest_dir.parent().unwrap();
    let workspace = policies_dir.parent().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-changed=builtins.rs");
    println!("cargo:rerun-if-changed=spec.rs");
    let in_workspace = table::SPECS
        .iter()
        .all(|spec| policies_dir.join(spec.name).join("Cargo.toml").is_file());
    let built: Vec<PathBuf> = if in_workspace {
        leadtime_wasm_build::rerun_if_guest_changes(workspace);
        for spec in table::SPECS {
            let path = policies_dir.join(spec.name);
            println!("cargo:rerun-if-changed={}", path.display());
        }
        let crates: Vec<&str> = table::SPECS.iter().map(|s| s.krate).collect();
        leadtime_wasm_build::build_policies(workspace, "wasm-policies", &crates)
            .unwrap_or_else(|e| panic!("{e}"))
    } else {
        let packaged = manifest_dir.join("wasm");
        println!("cargo:rerun-if-changed={}", packaged.display());
        table::SPECS
            .iter()
            .map(|spec| {
                let module = packaged.join(format!("{}.wasm", spec.name));
                if !module.is_file() {
                    panic!(
                        "{} is missing: outside the leadtime workspace this crate embeds the \
                         modules packaged with it (scripts/package.sh writes them)",
                        module.display()
                    );
                }
                module
            })
            .collect()
    };
    // The modules, in table order, for `src/lib.rs` to embed.
    let mut modules = String::from("const MODULES: &[&[u8]] = &[\n");
    for (spec, module) in table::SPECS.iter().zip(built) {
        let to = out_dir.join(format!("{}.wasm", spec.name));
        std::fs::copy(&module, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", module.display(), to.display()));
        modules.push_str(&format!(
            "    include_bytes!({:?}),\n",
            to.display().to_string()
        ));
    }
    modules.push_str("];\n");
    let generated = out_dir.join("modules.rs");
    std::fs::write(&generated, modules)
        .unwrap_or_else(|e| panic!("writing {}: {e}", generated.display()));
}
