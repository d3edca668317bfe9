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

/// Refuses a YAML or JSON file nested deeper than [`crate::cases::MAX_NESTING`] before a YAML
/// parser sees it (its time grows faster than linearly with nesting).
pub fn check_nesting(path: &std::path::Path) -> Result<(), Failure> {
    let text = read_text(&path.display().to_string())?;
    let depth = crate::cases::nesting_depth(&text);
    if depth > crate::cases::MAX_NESTING {
        return Err(Failure::new(
            "bad-request",
            format!(
                "{}: nests {depth} levels deep, over the {} accepted",
                path.display(),
                crate::cases::MAX_NESTING
            ),
        ));
    }
    Ok(())
}
