//! Splitting SOQL text into tokens, each with its byte span for error carets. Date and
//! datetime literals are recognised and normalised here (datetimes to UTC in the wire format
//! `YYYY-MM-DDThh:mm:ss.SSS+0000`); string literals keep their raw text, since whether `\_` and
//! `\%` are allowed depends on the operator.

use chrono::{DateTime, NaiveDate, Utc};

use super::error::{located, MALFORMED_QUERY};
use super::SoqlError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word: keyword, object name or (dotted) field path.
    Word,
    /// A quoted string; the span covers the quotes, `raw` is the text between them.
    Str {
        raw: String,
    },
    Num,
    /// `YYYY-MM-DD`.
    Date(String),
    /// UTC, `YYYY-MM-DDThh:mm:ss.SSS+0000`.
    DateTime(String),
    Comma,
    LParen,
    RParen,
    Op(CmpOp),
    Eof,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token's source text (`<EOF>` at the end).
    pub fn text<'q>(&self, query: &'q str) -> &'q str {
        if self.tok == Tok::Eof {
            "<EOF>"
        } else {
            &query[self.start..self.end]
        }
    }

    /// Whether the token is the keyword `kw` (case-insensitively).
    pub fn is_kw(&self, query: &str, kw: &str) -> bool {
        self.tok == Tok::Word && query[self.start..self.end].eq_ignore_ascii_case(kw)
    }
}

pub(crate) fn tokenize(query: &str) -> Result<Vec<Token>, SoqlError> {
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'=' => {
                i += 1;
                Tok::Op(CmpOp::Eq)
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::Op(CmpOp::Le)
                }
                Some(b'>') => {
                    i += 2;
                    Tok::Op(CmpOp::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Op(CmpOp::Lt)
                }
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Op(CmpOp::Ge)
                } else {
                    i += 1;
                    Tok::Op(CmpOp::Gt)
                }
            }
            b'\'' => {
                i += 1;
                let content = i;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(located(
                                query,
                                start,
                                MALFORMED_QUERY,
                                "unexpected token: '<EOF>'",
                            ))
                        }
                        Some(b'\\') => i += 2,
                        Some(b'\'') => break,
                        Some(_) => i += 1,
                    }
                }
                let raw = query.get(content..i).unwrap_or_default().to_string();
                i += 1;
                Tok::Str { raw }
            }
            b'0'..=b'9' if is_date_at(bytes, i) => lex_date(query, &mut i)?,
            b'0'..=b'9' | b'-' | b'+' | b'.'
                if c.is_ascii_digit() || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                Tok::Num
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                Tok::Word
            }
            _ => {
                let ch = query[i..].chars().next().unwrap_or('?');
                return Err(located(
                    query,
                    i,
                    MALFORMED_QUERY,
                    &format!("unexpected token: '{ch}'"),
                ));
            }
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: query.len(),
        end: query.len(),
    });
    Ok(out)
}

/// `DDDD-DD-DD` starts at `i`.
fn is_date_at(b: &[u8], i: usize) -> bool {
    let d = |k: usize| b.get(i + k).is_some_and(u8::is_ascii_digit);
    d(0) && d(1)
        && d(2)
        && d(3)
        && b.get(i + 4) == Some(&b'-')
        && d(5)
        && d(6)
        && b.get(i + 7) == Some(&b'-')
        && d(8)
        && d(9)
}

fn lex_date(query: &str, i: &mut usize) -> Result<Tok, SoqlError> {
    let b = query.as_bytes();
    let start = *i;
    *i += 10;
    let bad = |end: usize| {
        located(
            query,
            start,
            MALFORMED_QUERY,
            &format!("unexpected token: '{}'", &query[start..end]),
        )
    };
    if !matches!(b.get(*i), Some(b'T') | Some(b't')) {
        let text = &query[start..*i];
        return match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(_) => Ok(Tok::Date(text.to_string())),
            Err(_) => Err(bad(*i)),
        };
    }
    *i += 1;
    while *i < b.len() && matches!(b[*i], b'0'..=b'9' | b':' | b'.' | b'+' | b'-' | b'Z' | b'z') {
        *i += 1;
    }
    let text = &query[start..*i];
    match DateTime::parse_from_rfc3339(text) {
        Ok(dt) => Ok(Tok::DateTime(
            dt.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string(),
        )),
        Err(_) => Err(bad(*i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(q: &str) -> Vec<Tok> {
        tokenize(q).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_punctuation() {
        assert_eq!(
            toks("= != <> < <= > >= ( ) ,"),
            vec![
                Tok::Op(CmpOp::Eq),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Lt),
                Tok::Op(CmpOp::Le),
                Tok::Op(CmpOp::Gt),
                Tok::Op(CmpOp::Ge),
                Tok::LParen,
                Tok::RParen,
                Tok::Comma,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn datetimes_are_normalised_to_utc() {
        assert_eq!(
            toks("2024-01-01T00:00:00Z")[0],
            Tok::DateTime("2024-01-01T00:00:00.000+0000".into())
        );
        assert_eq!(
            toks("2024-01-01T01:30:00.123+02:00")[0],
            Tok::DateTime("2023-12-31T23:30:00.123+0000".into())
        );
        assert_eq!(
            toks("2024-01-01T00:00:00-05:00")[0],
            Tok::DateTime("2024-01-01T05:00:00.000+0000".into())
        );
        assert_eq!(toks("2024-02-29")[0], Tok::Date("2024-02-29".into()));
    }

    #[test]
    fn impossible_dates_are_refused() {
        let e = tokenize("x = 2023-02-29").unwrap_err();
        assert_eq!(e.error_code, MALFORMED_QUERY);
        assert!(tokenize("x = 2023-01-01T25:00:00Z").is_err());
        assert!(tokenize("x = 2023-01-01T10:00:00").is_err());
    }

    #[test]
    fn strings_keep_raw_text_and_skip_escaped_quotes() {
        let t = tokenize(r"Name = 'Bob\'s' AND").unwrap();
        assert_eq!(
            t[2].tok,
            Tok::Str {
                raw: r"Bob\'s".into()
            }
        );
        assert_eq!(t[3].text(r"Name = 'Bob\'s' AND"), "AND");
        let e = tokenize("Name = 'open").unwrap_err();
        assert!(
            e.message.ends_with("unexpected token: '<EOF>'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn numbers_may_be_signed_and_fractional() {
        assert_eq!(toks("-12.5 3"), vec![Tok::Num, Tok::Num, Tok::Eof]);
    }
}
