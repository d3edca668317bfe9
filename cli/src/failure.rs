//! How the CLI reports failure: one `error: <kind>: <detail>` line.

use std::fmt;

/// A failed command, printed as `<kind>: <detail>`.
#[derive(Debug)]
pub struct Failure {
    /// Short kebab-case kind, e.g. `out-of-fuel` or `bad-request`.
    pub kind: String,
    /// What went wrong and where.
    pub detail: String,
}

impl Failure {
    /// A failure of this kind.
    pub fn new(kind: &str, detail: impl Into<String>) -> Self {
        Failure {
            kind: kind.to_string(),
            detail: detail.into(),
        }
    }
}

impl Failure {
    /// The failure of an engine error: its kind, and the error with its sources.
    pub fn from_error(e: &leadtime::Error) -> Self {
        Failure::new(e.kind().as_str(), e.report())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the detail holds: a line break becomes a space, and any other
        // control character (from a policy, or echoed from an input file) is escaped, so that
        // no text can rewrite the terminal or forge another line.
        let detail = self.detail.replace('\n', " ");
        let detail = leadtime::escape_controls(&detail);
        write!(f, "{}: {}", self.kind, detail)
    }
}

impl From<leadtime::Error> for Failure {
    fn from(e: leadtime::Error) -> Self {
        Failure::from_error(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::Failure;

    #[test]
    fn a_failure_is_one_line_without_control_characters() {
        let f = Failure::new("policy-error", "bad\nthing\r\x1b]0;owned\x07");
        assert_eq!(
            f.to_string(),
            "policy-error: bad thing\\r\\u{1b}]0;owned\\u{7}"
        );
    }
}
