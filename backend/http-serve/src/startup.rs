//! What every server's `main` does before serving, so that all of them start, and fail to start,
//! alike: one line on stderr naming what is wrong, and an exit status (2: a bad setting, 1:
//! anything else).

use std::fmt::Display;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::settings;

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

/// How many threads run a server's tasks when its `*_WORKER_THREADS` setting is unset. One:
/// measured on two cores shared with the other hop and the load, a multi-thread runtime spent a
/// quarter of each server's CPU per request moving tasks between workers and waking them
/// (bench: 52 → 39 µs per request for the gateway, 30 → 22 µs for the function, same req/s).
/// A server given cores of its own (a container with a CPU limit above 1) raises the setting.
pub const DEFAULT_WORKER_THREADS: usize = 1;

/// More threads than this is a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;

/// `var` (e.g. `GATEWAY_WORKER_THREADS`): 1 to 1024 worker threads, [`DEFAULT_WORKER_THREADS`]
/// when unset.
pub fn worker_threads(
    source: &dyn settings::Source,
    var: &'static str,
) -> Result<usize, settings::ConfigError> {
    let Some(text) = settings::value(source, var)? else {
        return Ok(DEFAULT_WORKER_THREADS);
    };
    match text.parse::<usize>() {
        Ok(n @ 1..=MAX_WORKER_THREADS) => Ok(n),
        _ => Err(settings::bad(
            var,
            format!("`{text}` is not a number of threads from 1 to {MAX_WORKER_THREADS}"),
        )),
    }
}

/// The runtime `main` blocks on: tokio's current-thread scheduler for one thread (no work
/// stealing to pay for), the multi-thread one otherwise. A thread about to sleep first writes out
/// the batched log lines ([`crate::logging`]).
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder
        .on_thread_park(crate::logging::flush)
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn threads(value: Option<&str>) -> Result<usize, String> {
        let mut source = HashMap::new();
        if let Some(value) = value {
            source.insert("X_WORKER_THREADS", value.to_owned());
        }
        worker_threads(&source, "X_WORKER_THREADS").map_err(|e| e.to_string())
    }

    #[test]
    fn worker_threads_default_to_one_and_take_a_count() {
        assert_eq!(threads(None), Ok(1));
        assert_eq!(threads(Some("  ")), Ok(1));
        assert_eq!(threads(Some("4")), Ok(4));
        assert_eq!(threads(Some("1024")), Ok(1024));
    }

    #[test]
    fn a_bad_thread_count_is_named() {
        for bad in ["0", "-1", "two", "1025", "99999999999999999999999"] {
            let error = threads(Some(bad)).expect_err(bad);
            assert!(error.contains("X_WORKER_THREADS"), "{error}");
        }
    }

    #[test]
    fn both_runtimes_run_a_task() {
        for n in [1, 2] {
            let value = runtime(n).expect("a runtime").block_on(async { 7 });
            assert_eq!(value, 7);
        }
    }
}
