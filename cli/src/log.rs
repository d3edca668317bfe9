//! The log on stderr: text for people (coloured only on a terminal, never with `NO_COLOR`) or
//! JSON lines for log shippers, every value a caller could have written escaped.

use std::fmt::Write as _;
use std::io::IsTerminal;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line of text per event, `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's fields.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown log format `{other}`: text or json")),
        }
    }
}

/// Starts logging to stderr with `filter` (`level` or `target=level` directives, comma
/// separated; `warn`, with a warning, if it does not parse) in `format`. Called once per process.
pub fn init(filter: &str, format: Format) {
    let colour = colour(std::io::stderr().is_terminal());
    match filter.parse::<Targets>() {
        Ok(targets) => subscriber(targets, format, colour, std::io::stderr),
        Err(e) => {
            subscriber(fallback(), format, colour, std::io::stderr);
            tracing::warn!(filter, error = %e, "log filter not understood; logging warnings");
        }
    }
}

/// The filter when the one given does not parse: warnings and errors from every target.
fn fallback() -> Targets {
    Targets::new().with_default(tracing::Level::WARN)
}

/// Installs the process's subscriber for `format`, writing to `writer`.
fn subscriber<W>(filter: Targets, format: Format, colour: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_writer(writer);
    match format {
        Format::Text => builder
            .with_ansi(colour)
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(text_field).delimited(" "))
            .finish()
            .with(filter)
            .with(provoked())
            .init(),
        // serde_json escapes every control character: a value cannot end its line early.
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .finish()
            .with(filter)
            .with(provoked())
            .init(),
    }
}

/// Targets whose warnings a caller provokes at will, one per connection: h2's when a client
/// resets streams faster than it may (HTTP/2 rapid reset) or makes the server reset too many.
/// h2 then closes the connection (GOAWAY), which is the defence; the line says nothing new the
/// second time.
const PROVOKED: &[&str] = &["h2"];

/// How often one of [`PROVOKED`]'s warnings is written at most.
const PROVOKED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// A filter that lets [`PROVOKED`]'s warnings through at most once per [`PROVOKED_INTERVAL`]:
/// a flood of such connections must not flood the log (3,783 lines in 30 s before). Their
/// callsites are asked every time (`sometimes`); every other callsite is left to the filter.
fn provoked<S: tracing::Subscriber>() -> impl tracing_subscriber::Layer<S> {
    use tracing::subscriber::Interest;
    fn is_provoked(meta: &tracing::Metadata<'_>) -> bool {
        let target = meta.target();
        meta.is_event()
            && *meta.level() == tracing::Level::WARN
            && PROVOKED
                .iter()
                .any(|t| target == *t || target.starts_with(&format!("{t}::")))
    }
    let last = std::sync::Mutex::new(None::<std::time::Instant>);
    tracing_subscriber::filter::DynFilterFn::new(move |meta, _| {
        if !is_provoked(meta) {
            return true;
        }
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < PROVOKED_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    })
    .with_callsite_filter(|meta| {
        if is_provoked(meta) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    })
}

/// Whether to colour a stream that is (or is not) a terminal: only a terminal, and never when
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
pub fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// One field of a text line, `name=value` (the message bare), control characters escaped: a
/// name a tenant chose can neither start a forged line nor send escape codes to a terminal.
fn text_field(
    w: &mut Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    let mut raw = String::new();
    write!(raw, "{value:?}")?;
    let value = leadtime::escape_controls(&raw);
    if field.name() == "message" {
        write!(w, "{value}")
    } else {
        write!(w, "{}={value}", field.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the text format writes for one warning with a message and a field.
    fn text_line(message: &str, name: &str) -> String {
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let make = move || Sink(sink.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(make)
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(text_field).delimited(" "))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(policy = %name, "{message}");
        });
        let bytes = buffer.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_lines_escape_what_a_tenant_wrote() {
        // (message, field value, what must appear, what must not)
        let cases = [
            (
                "policy does not load",
                "plain-name",
                "policy=plain-name",
                "\\n",
            ),
            (
                "loaded",
                "x\n2026-01-01T00:00:00Z  WARN forged",
                "policy=x\\n2026",
                "\nWARN",
            ),
            (
                "loaded",
                "\u{1b}]0;pwned\u{7}",
                "policy=\\u{1b}]0;pwned\\u{7}",
                "\u{1b}",
            ),
            (
                "window \"a\nb\" opens",
                "n",
                "window \"a\\nb\" opens",
                "a\nb",
            ),
            (
                "ok",
                "\u{202e}reversed",
                "policy=\\u{202e}reversed",
                "\u{202e}",
            ),
        ];
        for (message, name, want, never) in cases {
            let line = text_line(message, name);
            assert!(line.contains(want), "{line:?} lacks {want:?}");
            assert!(!line.contains(never), "{line:?} has {never:?}");
            assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        }
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("json".parse(), Ok(Format::Json));
        assert_eq!("text".parse(), Ok(Format::Text));
        assert!("xml"
            .parse::<Format>()
            .unwrap_err()
            .contains("text or json"));
    }
}
