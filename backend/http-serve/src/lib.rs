//! Serves an axum [`Router`] like `axum::serve`, plus the limits it leaves out.
//!
//! `axum::serve` builds hyper's connection without a timer, so hyper's header-read timeout never
//! applies: a client that sends one header byte every few seconds holds a connection (a socket and
//! a task) forever — the slowloris attack, found by `scripts/harden`. Here every connection gets a
//! timer and a deadline for its request head. The same trick on the body (announce a length, send a
//! byte every few seconds) held a connection unanswered for ever, so each request also has a whole
//! deadline, body read included; and the number of open connections is capped, so that no number of
//! such clients can exhaust sockets, tasks and memory. The three servers (dev-idp, hello, gateway)
//! share it, so they behave alike.
//!
//! The peer address is put into each request as axum's [`ConnectInfo`], so handlers and layers
//! that judge the socket's address (IP allow-list, per-IP rate limit) keep working.
//!
//! A [`Handshake`] turns each accepted socket into the stream HTTP is spoken over (TLS, for the
//! gateway) inside the connection's own task, within the header-read deadline, so a client that
//! never finishes its handshake is bounded like one that never finishes its headers; whatever the
//! handshake learnt (a client certificate) goes into every request of that connection.

pub mod cookie;
pub mod logging;
pub mod markup;
pub mod request_id;
pub mod settings;
pub mod shutdown;
pub mod startup;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::{Layer, ServiceExt};
use tower_http::timeout::{Timeout, TimeoutLayer};

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a request's whole head (request line and headers), for the first
    /// request and after each keep-alive response. hyper's default is 30 s once a timer exists.
    pub header_read_timeout: Duration,
    /// Time from a request's head to its response's head, reading the body included; past it the
    /// client gets 408 and the connection is closed. Longer than the servers' own deadlines (the
    /// gateway's backend timeout, the function's 30 s), which keep their own answers.
    pub request_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// What happens to an accepted socket before HTTP is spoken on it.
pub trait Handshake: Clone + Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Facts about the connection, inserted into the extensions of each of its requests.
    type Info: Clone + Send + Sync + 'static;
    fn handshake(
        &self,
        socket: TcpStream,
    ) -> impl Future<Output = io::Result<(Self::Stream, Self::Info)>> + Send;
}

/// Plain HTTP: the socket as it is.
#[derive(Debug, Clone, Copy)]
pub struct PlainTcp;

impl Handshake for PlainTcp {
    type Stream = TcpStream;
    type Info = ();
    async fn handshake(&self, socket: TcpStream) -> io::Result<(TcpStream, ())> {
        Ok((socket, ()))
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, Limits::default()).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) -> std::io::Result<()> {
    serve_handshaking(listener, router, shutdown, limits, PlainTcp).await
}

/// [`serve_with`], speaking HTTP over what `handshake` makes of each socket.
pub async fn serve_handshaking<H: Handshake>(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
    handshake: H,
) -> std::io::Result<()> {
    let service =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout)
            .layer(router);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Shutdown is signalled to the connections by dropping `stop_tx`; it is complete when every
    // connection has dropped its `done_rx`.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            () = &mut shutdown => break,
        };
        let connection = Connection {
            stream: accepted.0,
            peer: accepted.1,
            _slot: accepted.2,
            _done: done_rx.clone(),
        };
        tokio::spawn(connection.serve(service.clone(), limits, stop_rx.clone(), handshake.clone()));
    }
    drop(listener);
    drop(stop_rx);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// The next connection, once a slot is free (the slot travels with the connection).
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    loop {
        // The semaphore is never closed, so acquiring only waits.
        let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
            continue;
        };
        match listener.accept().await {
            Ok((stream, peer)) => return (stream, peer, slot),
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One accepted connection and what it holds until it ends.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
    _done: watch::Receiver<()>,
}

impl Connection {
    async fn serve(
        self,
        service: Timeout<Router>,
        limits: Limits,
        mut stop: watch::Receiver<()>,
        handshake: impl Handshake,
    ) {
        let peer = self.peer;
        let shaken =
            tokio::time::timeout(limits.header_read_timeout, handshake.handshake(self.stream))
                .await;
        let (stream, info) = match shaken {
            Ok(Ok(shaken)) => shaken,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "handshake timed out");
                return;
            }
        };
        let service = service.map_request(move |mut request: axum::http::Request<Incoming>| {
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo::<SocketAddr>(peer));
            extensions.insert(info.clone());
            request
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut connection = pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed() => connection.as_mut().graceful_shutdown(),
        }
        if let Err(error) = connection.await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}
