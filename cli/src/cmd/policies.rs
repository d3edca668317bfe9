//! `leadtime policies`: the built-in policies.

use crate::failure::Failure;
use std::process::ExitCode;

/// Runs the command.
pub fn run() -> Result<ExitCode, Failure> {
    for (i, (name, summary)) in leadtime::builtins().into_iter().enumerate() {
        let default = if i == 0 { " (default)" } else { "" };
        println!("{name:<18} {summary}{default}");
    }
    Ok(ExitCode::SUCCESS)
}
