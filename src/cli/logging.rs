//! Log lines on stderr, and their priority for the systemd journal: when stderr is the
//! journal's stream, each line starts with the sd-daemon(3) syslog prefix (`<3>` error,
//! `<4>` warning, `<6>` info, `<7>` debug and trace), which journald reads as the entry's
//! priority, so `journalctl -p err -u plansync` lists failed runs.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The syslog priority journald gives a line of this level.
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Writes `<N>` before each event as the inner format writes it.
#[derive(Debug, Clone)]
pub struct JournalPriority<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for JournalPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Whether stderr is the journal's stream: systemd sets `JOURNAL_STREAM` to the device and
/// inode of the stream it connected, which are compared with stderr's (a redirected stderr
/// of a service keeps the variable but is no longer the journal).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    match (value.to_str(), stderr_identity()) {
        (Some(value), Some(identity)) => names_stream(value, identity),
        _ => false,
    }
}

/// Whether a `JOURNAL_STREAM` value (`DEVICE:INODE`) names the stream of that identity.
fn names_stream(value: &str, (dev, ino): (u64, u64)) -> bool {
    value
        .split_once(':')
        .is_some_and(|(d, i)| d.parse() == Ok(dev) && i.parse() == Ok(ino))
}

#[cfg(unix)]
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn stderr_identity() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn emit_each_level() {
        tracing::error!(kind = "incremental", "run finished");
        tracing::warn!("backing off");
        tracing::info!("daemon started");
        tracing::debug!("holding the lock");
        tracing::trace!("detail");
    }

    /// A subscriber at every level, without colours, writing to a buffer.
    type Builder = tracing_subscriber::fmt::SubscriberBuilder<
        tracing_subscriber::fmt::format::DefaultFields,
        tracing_subscriber::fmt::format::Format,
        tracing::level_filters::LevelFilter,
        tracing_subscriber::fmt::writer::BoxMakeWriter,
    >;

    /// What the subscriber `finish` makes of the builder logs for each level.
    fn logged_by<S>(finish: impl FnOnce(Builder) -> S) -> String
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                move || writer.clone(),
            ));
        tracing::subscriber::with_default(finish(builder), emit_each_level);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn each_level_gets_its_syslog_prefix_in_json() {
        let text = logged_by(|builder| {
            builder
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(JournalPriority(tracing_subscriber::fmt::format().json()))
                .finish()
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        for (line, (prefix, message)) in lines.iter().zip([
            ("<3>{", "run finished"),
            ("<4>{", "backing off"),
            ("<6>{", "daemon started"),
            ("<7>{", "holding the lock"),
            ("<7>{", "detail"),
        ]) {
            assert!(line.starts_with(prefix), "{line}");
            // The rest of the line is still one JSON object.
            let json: serde_json::Value = serde_json::from_str(&line[3..]).unwrap();
            assert_eq!(json["fields"]["message"], message, "{line}");
        }
    }

    #[test]
    fn each_level_gets_its_syslog_prefix_in_text() {
        let text = logged_by(|builder| {
            builder
                .event_format(JournalPriority(tracing_subscriber::fmt::format()))
                .finish()
        });
        let prefixes: Vec<&str> = text.lines().map(|l| &l[..3]).collect();
        assert_eq!(prefixes, ["<3>", "<4>", "<6>", "<7>", "<7>"], "{text}");
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(syslog_priority(Level::ERROR), 3);
        assert_eq!(syslog_priority(Level::WARN), 4);
        assert_eq!(syslog_priority(Level::INFO), 6);
        assert_eq!(syslog_priority(Level::DEBUG), 7);
        assert_eq!(syslog_priority(Level::TRACE), 7);
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(names_stream("8:12345", (8, 12345)));
        assert!(!names_stream("8:12346", (8, 12345)));
        assert!(!names_stream("9:12345", (8, 12345)));
        assert!(!names_stream("812345", (8, 12345)));
        assert!(!names_stream("", (8, 12345)));
        // This test's stderr has an identity to compare with.
        assert!(stderr_identity().is_some());
    }
}
