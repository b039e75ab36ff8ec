//! The Lambda adapter: the runtime hands us `SqsEvent`s, we hand back `SqsBatchResponse`s.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use crate::handler::Handler;
use crate::loader::Loader;
use crate::metrics;

/// Serves invocations until the runtime stops. Requires `FunctionResponseTypes:
/// [ReportBatchItemFailures]` on the event source mapping, or Lambda ignores the response and
/// treats every batch as wholly successful.
pub async fn run(handler: Handler) -> Result<(), lambda_runtime::Error> {
    let handler = &handler;
    let function_name = &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "login-etl".into());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let started = Instant::now();
        let outcome = handler.handle(&event.payload.records).await?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
        // EMF goes to stdout as its own line; CloudWatch Logs extracts the metrics.
        println!("{}", metrics::emf_line(&outcome, started.elapsed(), now, function_name));
        Ok::<_, lambda_runtime::Error>(outcome.response())
    }))
    .await
}

/// One invocation: the response names exactly the failed records. An `Err` (an event whose
/// failures cannot be named) makes Lambda retry the whole batch.
pub async fn handle_event(handler: &Handler, event: SqsEvent) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let outcome = handler.handle(&event.records).await?;
    Ok(outcome.response())
}

/// Closes the loader's connections when Lambda shuts the instance down, so the server (or
/// pooler) does not keep sessions whose client is gone until they time out.
///
/// Lambda sends SIGTERM only to functions with a registered extension, so a no-op internal
/// extension is registered first (what `lambda_runtime`'s graceful-shutdown helper does, but
/// where no Extensions API answers, as under some local harnesses, this logs and goes on
/// instead of panicking). Must run before [`run`]: extensions register during init.
pub async fn close_on_shutdown(loader: Loader) {
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
        loader.close();
        tracing::info!("SIGTERM: database connections closed");
        std::process::exit(0);
    });
}
