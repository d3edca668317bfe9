//! Reading the CLI's inputs: requests, params, policy files.

use crate::failure::Failure;
use leadtime::{Param, Params, Request};
use std::io::Read;

/// Reads a file, or stdin for `-`.
pub fn read_text(path: &str) -> Result<String, Failure> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::new("io", format!("reading stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| Failure::new("io", format!("reading {path}: {e}")))
}

/// Reads a request in its JSON form; errors name the file, line and column.
pub fn read_request(path: &str) -> Result<Request, Failure> {
    let text = read_text(path)?;
    leadtime::codec::from_json(&text)
        .map_err(|e| Failure::new("bad-request", format!("{path}: {e}")))
}

/// Parses `--param name=value` flags: numbers, `true`/`false`, or text.
pub fn parse_params(pairs: &[String]) -> Result<Params, Failure> {
    let mut params = Params::new();
    for pair in pairs {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            Failure::new(
                "bad-request",
                format!("--param `{pair}`: expected name=value"),
            )
        })?;
        params.insert(name.trim().to_string(), parse_param(value.trim()));
    }
    Ok(params)
}

/// A parameter value from text: a number, `true`/`false`, or the text itself.
pub fn parse_param(value: &str) -> Param {
    match value {
        "true" => Param::Bool(true),
        "false" => Param::Bool(false),
        _ => match value.parse::<f64>() {
            Ok(n) if n.is_finite() => Param::Number(n),
            _ => Param::Text(value.to_string()),
        },
    }
}
