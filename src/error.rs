//! How errors are printed: one convention for every error type of the crate.
//!
//! An error's own message says what failed, with the context a user acts on (a file, a key, an
//! object); when it wraps a cause it keeps it as its `source` (`#[source]` or `#[from]`) and
//! does not repeat it in its message. [`chain`] (or [`Chain`] in a format string or a log
//! field) then prints the whole story once, `outer: cause: root cause`. A wrapper that adds
//! nothing is `#[error(transparent)]`.
//!
//! Errors of other crates do not all follow this (some print their cause too), so a cause
//! whose text the message already ends with is not printed twice.

use std::error::Error;
use std::fmt;

/// An error and its causes, `outer: cause: root cause`.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Displays an error with its causes, for format strings and log fields:
/// `warn!(error = %Chain(&err), "...")`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("cannot read {path}")]
        Read {
            path: String,
            #[source]
            source: std::io::Error,
        },
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("the local store")]
        Store(#[from] Inner),
        #[error(transparent)]
        Same(Inner),
    }

    /// A foreign error that prints its cause in its own message as well.
    #[derive(Debug, thiserror::Error)]
    #[error("request failed: {0}")]
    struct Chatty(#[source] std::io::Error);

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied")
    }

    #[test]
    fn each_cause_is_printed_once_outermost_first() {
        let inner = || Inner::Read {
            path: "/etc/plansync/key".into(),
            source: io(),
        };
        assert_eq!(
            chain(&Outer::Store(inner())),
            "the local store: cannot read /etc/plansync/key: permission denied"
        );
        assert_eq!(
            chain(&Outer::Same(inner())),
            "cannot read /etc/plansync/key: permission denied"
        );
        assert_eq!(chain(&Chatty(io())), "request failed: permission denied");
        assert_eq!(
            format!("{}", Chain(&Outer::Store(inner()))),
            chain(&Outer::Store(inner()))
        );
    }
}
