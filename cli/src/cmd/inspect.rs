//! `leadtime inspect`: what a policy module exports and imports, and whether it loads.

use crate::failure::Failure;
use leadtime::{Limits, Params};
use serde::Serialize;
use std::process::ExitCode;

/// Arguments of `leadtime inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// A built-in policy name or a `.wasm`/`.wat` file.
    policy: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    policy: String,
    size_bytes: usize,
    abi_version: Option<u32>,
    valid: bool,
    error: Option<String>,
    exports: Vec<String>,
    imports: Vec<String>,
}

/// Runs the command: exit 0 when the module loads, 1 when it does not.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let bytes = match leadtime::builtin_wasm(&args.policy) {
        Some(b) => b.to_vec(),
        None => std::fs::read(&args.policy)
            .map_err(|e| Failure::new("io", format!("reading {}: {e}", args.policy)))?,
    };
    let engine = super::engine(Limits::default())?;
    let info = engine.inspect(&bytes);
    // Loading runs the start function, the ABI version check and init: the full validation.
    let loaded = match &info {
        Ok(_) => engine
            .load_bytes(&args.policy, &bytes, Params::new())
            .map(drop)
            .map_err(Failure::from),
        Err(e) => Err(Failure::new(e.kind().as_str(), e.to_string())),
    };
    let (exports, imports) = match &info {
        Ok(i) => (i.exports.clone(), i.imports.clone()),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let report = Report {
        policy: args.policy,
        size_bytes: bytes.len(),
        abi_version: loaded.as_ref().ok().map(|_| leadtime::abi::ABI_VERSION),
        valid: loaded.is_ok(),
        error: loaded.as_ref().err().map(|f| f.to_string()),
        exports,
        imports,
    };
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new("internal", e.to_string()))?;
        println!("{json}");
    } else {
        println!("policy:      {}", report.policy);
        println!("size:        {} bytes", report.size_bytes);
        match report.abi_version {
            Some(v) => println!("abi version: {v}"),
            None => println!("abi version: unknown"),
        }
        println!("valid:       {}", if report.valid { "yes" } else { "no" });
        if let Some(e) = &report.error {
            println!("error:       {e}");
        }
        println!("exports:");
        for e in &report.exports {
            println!("  {e}");
        }
        println!(
            "imports:{}",
            if report.imports.is_empty() {
                " none"
            } else {
                ""
            }
        );
        for i in &report.imports {
            println!("  {i}");
        }
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
