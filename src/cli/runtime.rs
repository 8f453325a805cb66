//! The async runtime every long-running command runs on, started with the signal handlers
//! installed first, so a SIGINT or SIGTERM during start-up still means a clean stop.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

/// Start the async runtime and the signal handlers (before anything listens), then run
/// `main` with the shutdown signal. Either failing is reported and ends the command.
pub fn with_runtime<F, Fut>(main: F) -> ExitCode
where
    F: FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = ExitCode>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        match shutdown_signal() {
            Ok(signal) => main(Box::pin(signal)).await,
            Err(e) => {
                eprintln!("error: cannot install signal handlers: {e}");
                ExitCode::FAILURE
            }
        }
    });
    // The outbox is flushed by now; a blocking task still reading (a page of a listing,
    // a sweep step) must not hold the exit, which dropping the runtime would wait for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, so call
/// it before the listener opens: a signal during start-up then still means a clean stop.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown signal received");
    })
}
