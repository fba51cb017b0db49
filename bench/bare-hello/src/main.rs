//! The benchmark ceiling: the same hello response as the function, served by axum with no key, no token and no
//! rate limit, so `scripts/bench` can say how much of the raw server speed the real chain keeps.
//! Listens on 127.0.0.1 at `BARE_HELLO_PORT` (default 7090).

// The same allocator as the servers it is compared with, so the ratio measures their work, not malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::{Router, routing::get};

async fn hello() -> String {
    // Same shape and similar work as the function's body (a formatted timestamp), so only auth differs.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("Hello World, time and date are {secs}")
}

#[tokio::main]
async fn main() -> ExitCode {
    let port = match std::env::var("BARE_HELLO_PORT") {
        Ok(value) => match value.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("BARE_HELLO_PORT must be a port number, got {value:?}");
                return ExitCode::from(2);
            }
        },
        Err(_) => 7090,
    };
    let app = Router::new()
        .route("/api/hello", get(hello))
        .route("/healthz", get(|| async { "ok" }));
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot bind 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bare-hello failed: {err}");
            ExitCode::FAILURE
        }
    }
}
