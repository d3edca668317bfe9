//! The file of cases `leadtime test --cases` reads (YAML or JSON), and its parser: bounded in
//! nesting before the YAML parser sees it. Also compiled into the fuzz target `parse_cases`
//! (fuzz/src/targets.rs), so this file uses nothing else of the CLI.

use leadtime::Params;
use serde::Deserialize;

/// Deepest nesting of maps and lists accepted in a YAML or JSON input. A cases file nests about
/// six deep; the YAML parser's time grows faster than linearly with nesting (a 400 KB file of
/// nested lists took over a minute before its recursion limit), so deeper text is refused
/// before it is parsed.
pub const MAX_NESTING: usize = 64;

/// A cases file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    /// Params the policy is loaded with.
    #[serde(default)]
    pub params: Params,
    pub cases: Vec<Case>,
}

/// One case: a request and what to expect, or a short sequence of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: Option<serde_json::Value>,
    pub expect: Option<Expect>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub request: serde_json::Value,
    pub expect: Expect,
}

/// What a call must give.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub replicas: Option<Count>,
    pub reason: Option<String>,
    /// The call must fail, with this text in its error.
    pub error: Option<String>,
}

/// An exact count or an inclusive range.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Count {
    Exact(u32),
    Range { min: u32, max: u32 },
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::Range { min, max } => write!(f, "{min}..={max}"),
        }
    }
}

impl Count {
    pub fn contains(&self, n: u32) -> bool {
        match self {
            Count::Exact(e) => n == *e,
            Count::Range { min, max } => (*min..=*max).contains(&n),
        }
    }
}

/// Parses a cases file; `source` names it in errors, which carry line and column.
pub fn parse(text: &str, source: &str) -> Result<CasesFile, String> {
    let depth = nesting_depth(text);
    if depth > MAX_NESTING {
        return Err(format!(
            "{source}: nests {depth} levels deep, over the {MAX_NESTING} accepted"
        ));
    }
    // serde_norway reads JSON too (YAML is a superset).
    serde_norway::from_str(text).map_err(|e| format!("{source}: {e}"))
}

/// How deep YAML or JSON text nests, over-estimated rather than under: flow brackets (`[`,
/// `{`) open outside quotes and comments, plus per line the indentation levels open and the
/// `- ` items that start it. Linear in the text, whatever it holds.
pub fn nesting_depth(text: &str) -> usize {
    let (mut deepest, mut flow) = (0usize, 0usize);
    let mut indents: Vec<usize> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let mut block = 0;
        if flow == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - - x` opens a list per dash on one line.
            let mut rest = trimmed;
            while let Some(r) = rest
                .strip_prefix("- ")
                .or_else(|| rest.strip_prefix("? "))
                .or_else(|| (rest == "-").then_some(""))
            {
                block += 1;
                rest = r.trim_start_matches(' ');
            }
        }
        let mut quote: Option<char> = None;
        let mut escaped = false;
        let mut previous = ' ';
        for c in trimmed.chars() {
            match quote {
                Some('"') if escaped => escaped = false,
                Some('"') if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '#' if previous == ' ' || previous == '\t' => break,
                    '[' | '{' => {
                        flow += 1;
                        deepest = deepest.max(indents.len() + block + flow);
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
        deepest = deepest.max(indents.len() + block + flow);
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_in_flow_block_and_dash_form() {
        assert!(nesting_depth("cases:\n  - name: a\n    request: {x: [1, 2]}\n") <= 6);
        assert!(nesting_depth(&"[".repeat(10_000)) >= 10_000);
        assert!(nesting_depth(&"- ".repeat(1_000)) >= 1_000);
        let indented: String = (0..200).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert!(nesting_depth(&indented) >= 200);
        // Brackets in quotes and comments do not count.
        assert!(nesting_depth("a: \"[[[[\" # [[[[\nb: '{{{{'\n") <= 2);
    }

    #[test]
    fn a_deeply_nested_file_is_refused_before_it_is_parsed() {
        // 400 KB of nested lists: over a minute in the YAML parser before this check.
        let text = format!("cases: {}", "[".repeat(400_000));
        let err = parse(&text, "deep.yaml").err().unwrap();
        assert!(err.contains("over the 64 accepted"), "{err}");
        let text = format!("cases:\n{}", "- ".repeat(200_000));
        assert!(parse(&text, "deep.yaml").is_err());
    }

    #[test]
    fn an_ordinary_cases_file_parses() {
        let text = "params: {headroom: 0.1}\ncases:\n  - name: one\n    request: {replicas: {current: 1, ready: 1, min: 1, max: 5}, metrics: []}\n    expect: {replicas: 1}\n";
        let file = parse(text, "ok.yaml").unwrap();
        assert_eq!(file.cases.len(), 1);
        assert!(file.cases[0]
            .expect
            .as_ref()
            .unwrap()
            .replicas
            .as_ref()
            .unwrap()
            .contains(1));
    }
}
