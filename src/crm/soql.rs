//! SOQL literals: quoted strings with every SOQL escape, unquoted date and dateTime literals,
//! and Id lists for `IN (...)`.

use chrono::{DateTime, NaiveDate, Utc};
use std::fmt::Write;

/// A single-quoted SOQL string literal: `Bob's` → `'Bob\'s'`. Escapes `\` `'` `"` and the
/// control characters SOQL names (`\n \r \t \b \f`); any other control character becomes
/// `\uXXXX`. The result can be placed anywhere a string literal goes, except as a `LIKE`
/// pattern where `%` and `_` should stay literal (see [`like_literal`]).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    push_escaped(&mut out, s, false);
    out.push('\'');
    out
}

/// A quoted literal for `LIKE` that matches `s` literally: like [`quote`], and `%` and `_`
/// are escaped as `\%` and `\_`. Use [`like_pattern`] to add wildcards around it.
pub fn like_literal(s: &str) -> String {
    like_pattern("", s, "")
}

/// A `LIKE` pattern literal: `prefix` and `suffix` are raw wildcards (`%`, `_`), `s` is matched
/// literally. `like_pattern("", "50%", "%")` → `'50\%%'`.
pub fn like_pattern(prefix: &str, s: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(s.len() + prefix.len() + suffix.len() + 2);
    out.push('\'');
    push_wildcards(&mut out, prefix);
    push_escaped(&mut out, s, true);
    push_wildcards(&mut out, suffix);
    out.push('\'');
    out
}

fn push_wildcards(out: &mut String, w: &str) {
    for c in w.chars() {
        if c == '%' || c == '_' {
            out.push(c);
        }
    }
}

fn push_escaped(out: &mut String, s: &str, like: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '%' if like => out.push_str("\\%"),
            '_' if like => out.push_str("\\_"),
            c if c.is_control() => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// An unquoted SOQL dateTime literal in UTC with milliseconds: `2024-01-01T00:00:00.000Z`.
pub fn datetime(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An unquoted SOQL date literal: `2024-01-31`.
pub fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A parenthesised list of quoted values for `IN`: `('a','b')`. An empty input gives `('')`,
/// which is valid SOQL and matches no Id.
pub fn id_list<I, S>(ids: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let items: Vec<String> = ids.into_iter().map(|id| quote(id.as_ref())).collect();
    if items.is_empty() {
        return "('')".to_string();
    }
    format!("({})", items.join(","))
}
