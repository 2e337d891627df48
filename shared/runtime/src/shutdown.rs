//! SIGTERM and SIGINT as a [`CancellationToken`].
//!
//! Kubernetes sends SIGTERM; a developer presses Ctrl-C. Either cancels the
//! token; every loop of the service selects on it, stops taking new work and
//! hands back what it holds.

use tokio_util::sync::CancellationToken;

/// A token cancelled by the first SIGTERM or SIGINT.
///
/// Must be called inside a Tokio runtime.
pub fn on_signal() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};

    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: no new work is taken, work in hand is finished or handed back");
        cancel.cancel();
    });
    Ok(token)
}
