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

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the detail holds.
        let detail = self.detail.replace('\n', " ");
        write!(f, "{}: {}", self.kind, detail)
    }
}

impl From<leadtime::Error> for Failure {
    fn from(e: leadtime::Error) -> Self {
        Failure::new(e.kind().as_str(), e.to_string())
    }
}
