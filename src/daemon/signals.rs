//! SIGTERM and SIGINT: the first asks for a clean stop (the run in progress stops at its next
//! page or batch, commits, and the daemon exits 0); a second one exits at once.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The exit code after a second signal: the run in progress was cut short.
pub const EXIT_SECOND_SIGNAL: i32 = 130;

/// Installs the handlers (before the daemon reports ready, so no signal is lost) and cancels
/// `shutdown` on the first signal.
pub fn install(shutdown: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = |term: bool| if term { "SIGTERM" } else { "SIGINT" };
        let first = tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => false,
        };
        tracing::info!(
            signal = name(first),
            "stopping: the run in progress ends at its next page or batch (a second signal exits at once)"
        );
        shutdown.cancel();
        let second = tokio::select! {
            _ = term.recv() => true,
            _ = int.recv() => false,
        };
        tracing::warn!(signal = name(second), "second signal: exiting at once");
        std::process::exit(EXIT_SECOND_SIGNAL);
    });
    Ok(())
}
