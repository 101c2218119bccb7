//! Graceful shutdown: one [`Shutdown`] token per process. Every server and loop
//! takes a clone and stops when it fires; SIGTERM and Ctrl-C fire it.

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Returns a token that is cancelled on the first SIGTERM or Ctrl-C (SIGINT).
///
/// A second signal is left to the default handler only after the first has been
/// seen, so an impatient operator can still kill the process.
pub fn on_signals() -> Shutdown {
    let token = Shutdown::new();
    let fire = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining");
        fire.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C will stop the service");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
