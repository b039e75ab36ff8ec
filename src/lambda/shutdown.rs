//! SIGTERM: the invocations in flight finish, the database connections close, the process
//! exits.

use std::time::Duration;

use super::in_flight::InFlight;
use crate::adapters::loader::Loader;

/// How long a SIGTERM waits for the invocations in flight before the connections are closed.
/// Lambda gives a function with an internal extension 500 ms between SIGTERM and SIGKILL; this
/// leaves room to close the pool and exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(400);

/// Closes the loader's connections when Lambda shuts the instance down, so the server (or
/// pooler) does not keep sessions whose client is gone until they time out.
///
/// Invocations still running (several at once on Lambda Managed Instances) get
/// [`SHUTDOWN_GRACE`] to finish and answer; then the pool is closed and the process exits. A
/// batch still unfinished then never answers, so Lambda counts its invocation failed and its
/// messages return to the queue after the visibility timeout: retried, not lost. Its insert is
/// idempotent (`message_id` is unique), so even one that commits after the exit only turns
/// the redelivered records into duplicates.
///
/// Lambda sends SIGTERM only to functions with a registered extension, so a no-op internal
/// extension is registered first (what `lambda_runtime`'s graceful-shutdown helper does, but
/// where no Extensions API answers, as under some local harnesses, this logs and goes on
/// instead of panicking). Must run before [`super::runtime::run`]: extensions register during
/// init.
pub async fn close_on_shutdown(loader: Loader, in_flight: InFlight) {
    // The extension client reads AWS_LAMBDA_RUNTIME_API itself (and panics without it): the
    // bootstrap refuses to start without the runtime's variables before it gets here.
    match lambda_extension::Extension::new()
        .with_events(&[])
        .with_extension_name("login-etl-graceful-shutdown")
        .register()
        .await
    {
        Ok(extension) => {
            tokio::spawn(async move {
                // Waits for events it never subscribed to; costs nothing.
                let _ = extension.run().await;
            });
        }
        Err(err) => tracing::warn!(error = %err, "no Extensions API: connections are not closed on shutdown"),
    }
    let Ok(mut sigterm) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        tracing::warn!("cannot listen for SIGTERM: connections are not closed on shutdown");
        return;
    };
    tokio::spawn(async move {
        sigterm.recv().await;
        let running = in_flight.count();
        let finished = running == 0 || in_flight.drained(SHUTDOWN_GRACE).await;
        loader.close();
        if finished {
            tracing::info!(in_flight = running, "SIGTERM: database connections closed");
        } else {
            tracing::warn!(
                in_flight = running,
                unfinished = in_flight.count(),
                grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
                "SIGTERM: database connections closed; unfinished batches return to the queue"
            );
        }
        std::process::exit(0);
    });
}
