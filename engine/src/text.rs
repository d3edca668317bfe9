//! Text a policy wrote, made safe for a terminal or a log line.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) and every bidirectional override escaped
/// (`\n`, `\r`, `\t`, `\u{1b}`, ...), so that text a policy chose (its error, reason or log
/// line) cannot move a terminal's cursor, set its title, erase or forge output lines, or reorder
/// what is shown. Text without them is returned as is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    // U+202A..U+202E and U+2066..U+2069 reorder the text around them ("Trojan Source").
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn controls_are_escaped_and_plain_text_is_kept() {
        assert_eq!(
            escape_controls("3 pods, p90 = 1.5 → ok"),
            "3 pods, p90 = 1.5 → ok"
        );
        assert!(matches!(
            escape_controls("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\rb\x1b]0;title\x07\nc\u{9b}d\u{202e}e\t"),
            "a\\rb\\u{1b}]0;title\\u{7}\\nc\\u{9b}d\\u{202e}e\\t"
        );
    }
}
