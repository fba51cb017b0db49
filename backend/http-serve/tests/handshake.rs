#![allow(clippy::unwrap_used)]
//! A [`Handshake`] over real sockets: what it learns reaches every request of its connection,
//! and a client that never completes it is cut off at the header-read deadline.

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use http_serve::{Handshake, Limits, serve_handshaking};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one line naming the client before HTTP starts (a stand-in for a TLS handshake).
#[derive(Clone)]
struct Introduction;

#[derive(Clone)]
struct Name(String);

impl Handshake for Introduction {
    type Stream = TcpStream;
    type Info = Name;
    async fn handshake(&self, mut socket: TcpStream) -> std::io::Result<(TcpStream, Name)> {
        let mut name = Vec::new();
        loop {
            let byte = socket.read_u8().await?;
            if byte == b'\n' {
                break;
            }
            name.push(byte);
        }
        Ok((socket, Name(String::from_utf8_lossy(&name).into_owned())))
    }
}

async fn start() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/name",
        get(|Extension(Name(n)): Extension<Name>| async { n }),
    );
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    tokio::spawn(serve_handshaking(
        listener,
        app,
        std::future::pending(),
        limits,
        Introduction,
    ));
    addr
}

#[tokio::test]
async fn what_the_handshake_learns_reaches_each_request_of_the_connection() {
    let addr = start().await;
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(b"alice\n").await.unwrap();
    for _ in 0..2 {
        socket
            .write_all(b"GET /name HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0; 4096];
        let n = socket.read(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("alice"), "{text}");
    }
}

#[tokio::test]
async fn a_handshake_never_finished_is_cut_off_at_the_header_deadline() {
    let addr = start().await;
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(b"no newline, ever").await.unwrap();
    let started = Instant::now();
    let mut buffer = [0; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection was not closed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
