//! What every server's `main` does before serving, so that all of them start, and fail to start,
//! alike: one line on stderr naming what is wrong, and an exit status (2: a bad setting, 1:
//! anything else).

use std::fmt::Display;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::TcpListener;

/// Exit status of a bad setting; scripts and the Functions host tell it from a crash by it.
pub const BAD_SETTING: u8 = 2;

/// Prints `program: line` on stderr and returns `status` for `main` to exit with.
pub fn fail(program: &str, status: u8, line: impl Display) -> ExitCode {
    eprintln!("{program}: {line}");
    ExitCode::from(status)
}

/// Binds `address`, logging where it listens; the error is the line `fail` prints.
pub async fn listen(address: SocketAddr, what: &str) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let local = listener.local_addr().unwrap_or(address);
    tracing::info!(address = %local, "{what} listening");
    Ok(listener)
}
