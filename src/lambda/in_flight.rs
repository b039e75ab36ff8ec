//! How many invocations are running, so that shutdown can wait for them
//! ([`super::shutdown::close_on_shutdown`]).

use std::sync::Arc;
use std::time::Duration;

/// The count of running invocations, shared by the runtime's layer and shutdown.
#[derive(Clone, Debug)]
pub struct InFlight(Arc<tokio::sync::watch::Sender<usize>>);

impl Default for InFlight {
    fn default() -> Self {
        InFlight(Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

impl InFlight {
    /// Counts one invocation until the guard is dropped (also when its future is dropped).
    pub fn enter(&self) -> InFlightGuard {
        self.0.send_modify(|count| *count += 1);
        InFlightGuard(self.0.clone())
    }

    pub fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits until no invocation is running, at most `within`; whether they all finished.
    pub async fn drained(&self, within: Duration) -> bool {
        let mut count = self.0.subscribe();
        tokio::time::timeout(within, count.wait_for(|count| *count == 0)).await.is_ok_and(|seen| seen.is_ok())
    }
}

/// One running invocation of [`InFlight`].
pub struct InFlightGuard(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// Counts an invocation in [`InFlight`] from the moment the runtime hands it over until its
/// answer has been posted to the Runtime API (the outermost layer), so a shutdown that waits
/// for the count to reach zero never cuts a response off.
pub struct CountInFlight(pub InFlight);

impl<S> lambda_runtime::tower::Layer<S> for CountInFlight {
    type Service = CountedService<S>;

    fn layer(&self, inner: S) -> CountedService<S> {
        CountedService { inner, in_flight: self.0.clone() }
    }
}

/// The runtime's service, counted by [`CountInFlight`].
#[derive(Clone)]
pub struct CountedService<S> {
    inner: S,
    in_flight: InFlight,
}

impl<S> lambda_runtime::Service<lambda_runtime::LambdaInvocation> for CountedService<S>
where
    S: lambda_runtime::Service<lambda_runtime::LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), lambda_runtime::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: lambda_runtime::LambdaInvocation) -> Self::Future {
        let running = self.in_flight.enter();
        let answered = self.inner.call(invocation);
        Box::pin(async move {
            let result = answered.await;
            drop(running);
            result
        })
    }
}
