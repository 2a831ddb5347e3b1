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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn soql_quote_escapes_every_reserved_character() {
        assert_eq!(quote("Bob's BBQ"), r"'Bob\'s BBQ'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote("say \"hi\""), r#"'say \"hi\"'"#);
        assert_eq!(quote("l1\nl2\rl3\tx\u{8}y\u{c}z"), r"'l1\nl2\rl3\tx\by\fz'");
        assert_eq!(quote("bell\u{7}"), r"'bell\u0007'");
        assert_eq!(quote("50% off_now"), "'50% off_now'");
        assert_eq!(quote("Zürich"), "'Zürich'");
        assert_eq!(quote(""), "''");
        assert_eq!(like_literal("50%_x"), r"'50\%\_x'");
        assert_eq!(like_pattern("%", "O'Neil", "%"), r"'%O\'Neil%'");
    }

    #[test]
    fn soql_dates_and_id_lists() {
        let dt =
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(7);
        assert_eq!(datetime(dt), "2024-01-01T00:00:00.007Z");
        assert_eq!(
            date(chrono::NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()),
            "2024-01-31"
        );
        assert_eq!(id_list(["001A", "001B"]), "('001A','001B')");
        assert_eq!(id_list(vec!["x'y".to_string()]), r"('x\'y')");
        assert_eq!(id_list(Vec::<String>::new()), "('')");
    }

    /// Reads a quoted SOQL literal back, or says where it is malformed.
    fn unquote(literal: &str) -> Result<String, String> {
        let inner = literal
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .ok_or("not quoted")?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => return Err("unescaped quote".into()),
                '\\' => match chars.next().ok_or("dangling backslash")? {
                    'n' | 'N' => out.push('\n'),
                    'r' | 'R' => out.push('\r'),
                    't' | 'T' => out.push('\t'),
                    'b' | 'B' => out.push('\u{8}'),
                    'f' | 'F' => out.push('\u{c}'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    '\\' => out.push('\\'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                        out.push(char::from_u32(code).ok_or("bad code point")?);
                    }
                    other => return Err(format!("invalid escape \\{other}")),
                },
                c => out.push(c),
            }
        }
        Ok(out)
    }

    proptest::proptest! {
        #[test]
        fn quote_never_leaves_an_unescaped_quote(s in "\\PC*|[\\\\'\"\\n\\r\\t\\x00-\\x1f%_a]*") {
            let quoted = quote(&s);
            proptest::prop_assert_eq!(unquote(&quoted), Ok(s.clone()));
        }
    }
}
