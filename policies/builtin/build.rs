//! Compiles each built-in policy crate of the table in `builtins.rs` to wasm32 with a nested
//! cargo, so that the host binary embeds them and a fresh clone needs no separate build step.

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

    leadtime_wasm_build::rerun_if_guest_changes(workspace);
    println!("cargo:rerun-if-changed=builtins.rs");
    println!("cargo:rerun-if-changed=spec.rs");
    for spec in table::SPECS {
        let path = policies_dir.join(spec.name);
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let crates: Vec<&str> = table::SPECS.iter().map(|s| s.krate).collect();
    let built = leadtime_wasm_build::build_policies(workspace, "wasm-policies", &crates)
        .unwrap_or_else(|e| panic!("{e}"));
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
