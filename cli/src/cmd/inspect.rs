//! `leadtime inspect`: what a policy module exports and imports, and whether it loads.

use crate::failure::Failure;
use leadtime::{Limits, Params, Source};
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
    let engine = super::engine(&Limits::default())?;
    let source = Source::parse(&args.policy);
    // Read once, under the engine's size cap, then inspected and loaded from memory.
    let bytes = source.read(engine.limits().get_module_bytes())?;
    let source = Source::bytes(source.name(), &bytes[..]);
    let info = engine.inspect(source.clone());
    // Loading runs the start function, the ABI version check and init: the full validation.
    let loaded = match &info {
        Ok(_) => engine
            .load(source, Params::new())
            .map(drop)
            .map_err(Failure::from),
        Err(e) => Err(Failure::from_error(e)),
    };
    let (exports, imports) = match &info {
        Ok(i) => (i.exports.clone(), i.imports.clone()),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let size_bytes = bytes.len();
    drop(bytes);
    let report = Report {
        policy: args.policy,
        size_bytes,
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
