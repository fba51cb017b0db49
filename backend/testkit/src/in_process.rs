//! A server run in the test's own process, started the way its `main` starts it.
//!
//! testkit cannot depend on the servers (their tests depend on testkit), so the starter is generic
//! over the one shape every server library exports: `serve(config, listener, shutdown)`. The test
//! hands in a closure that calls it; the listener, the shutdown signal, the readiness wait and the
//! stop on drop are written here once.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Completes when the [`InProcessServer`] is stopped or dropped: the `shutdown` future a server's
/// `serve` waits on for a graceful stop, as SIGTERM is in production.
pub struct Shutdown(oneshot::Receiver<()>);

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender is a stop too.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A server serving on `127.0.0.1:<free port>` in a task of the test's runtime; shuts down
/// gracefully when dropped.
pub struct InProcessServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl InProcessServer {
    /// Binds a free loopback port, runs `serve(listener, shutdown)` in a task, and waits until
    /// `GET /healthz` answers 2xx. A server that fails to serve makes the task panic with its
    /// error, which the readiness wait reports.
    pub async fn start<S, F, E>(serve: S) -> InProcessServer
    where
        S: FnOnce(TcpListener, Shutdown) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let server = Self::start_unready(serve).await;
        let health = format!("{}/healthz", server.url);
        if let Err(e) = crate::wait_for_http_ok(&health, Duration::from_secs(10)).await {
            panic!("in-process server not ready: {e}");
        }
        server
    }

    /// As [`start`](Self::start), without waiting for `/healthz`: the server as right after
    /// its process started.
    pub async fn start_unready<S, F, E>(serve: S) -> InProcessServer
    where
        S: FnOnce(TcpListener, Shutdown) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        let (stop, stopped) = oneshot::channel();
        let serving = serve(listener, Shutdown(stopped));
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                panic!("the in-process server on {addr} failed: {e}");
            }
        });
        InProcessServer {
            url: format!("http://{addr}"),
            addr,
            _stop: stop,
        }
    }
}
