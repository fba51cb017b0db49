#![allow(clippy::unwrap_used)]
//! Over real sockets: requests are served with the peer address, a slowloris client is cut off at
//! the header deadline and a client dribbling its body at the request deadline while others are
//! served, connections beyond the cap wait, and shutdown lets an open request finish.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use http_serve::{Limits, serve_with};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn app() -> Router {
    Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        )
}

async fn start(limits: Limits) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve_with(
            listener,
            app(),
            async { stopped.await.unwrap_or(()) },
            limits,
        )
        .await
        .unwrap();
    });
    (addr, stop, task)
}

#[tokio::test]
async fn handlers_see_the_socket_peer() {
    let (addr, _stop, _task) = start(Limits::default()).await;
    let body = reqwest::get(format!("http://{addr}/peer"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "127.0.0.1");
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_at_the_header_deadline_while_others_are_served() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (addr, _stop, _task) = start(limits).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let dribble = async {
        // One header byte every 200 ms: never a complete head.
        loop {
            if slow.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => break, // hyper answered (408) before closing
                Err(_) => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "slow client still connected"
            );
        }
    };
    let other = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        reqwest::get(format!("http://{addr}/peer"))
            .await
            .unwrap()
            .status()
    };
    let ((), status) = tokio::join!(dribble, other);
    assert_eq!(status, 200);
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(5),
        "cut off after {held:?}"
    );
}

#[tokio::test]
async fn shutdown_lets_an_open_request_finish_then_stops() {
    let (addr, stop, task) = start(Limits::default()).await;
    let request = tokio::spawn(async move {
        reqwest::get(format!("http://{addr}/slow"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    assert_eq!(request.await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve returned after shutdown")
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn a_client_dribbling_its_body_gets_408_at_the_request_deadline_while_others_are_served() {
    let limits = Limits {
        request_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (addr, _stop, _task) = start(limits).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let dribble = async {
        // One body byte every 200 ms: the head is complete, the body never is.
        let mut answer = Vec::new();
        loop {
            if slow.write_all(b"a").await.is_err() {
                break;
            }
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "dribbling client still connected"
            );
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let other = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let client = reqwest::Client::new();
        client
            .post(format!("http://{addr}/echo"))
            .body("hello")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let (answer, echoed) = tokio::join!(dribble, other);
    assert_eq!(echoed, "hello");
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(5),
        "cut off after {held:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (addr, _stop, _task) = start(limits).await;
    // Two idle connections take both slots (a client that connects and says nothing).
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let url = format!("http://{addr}/peer");
    assert!(
        client.get(&url).send().await.is_err(),
        "a third connection was served although the cap is 2"
    );
    drop(first);
    let status = client.get(&url).send().await.unwrap().status();
    assert_eq!(status, 200, "served once a slot is free");
}
