//! `daemon call`: one call of the API, its answer on stdout (exit 0) or one line on stderr naming
//! what failed (exit 1). `daemon`: the Azure Functions custom handler on
//! `FUNCTIONS_CUSTOMHANDLER_PORT`, until SIGTERM/Ctrl-C. A bad setting: one line, exit 2.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;

use daemon::{Config, Daemon};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: daemon [call]   (settings: DAEMON_TOKEN_URL, DAEMON_CLIENT_ID, DAEMON_CLIENT_SECRET, DAEMON_SCOPE, DAEMON_API_URL; see backend/daemon/README.md)";

enum Mode {
    Serve,
    Call,
}

fn fail(code: u8, line: impl std::fmt::Display) -> ExitCode {
    eprintln!("daemon: {line}");
    ExitCode::from(code)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => Mode::Serve,
        ["call"] => Mode::Call,
        ["-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => return fail(2, USAGE),
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return fail(2, format_args!("invalid setting {error}")),
    };
    // `call` keeps stderr for its one line unless RUST_LOG asks for more.
    let default_filter = match mode {
        Mode::Serve => "info",
        Mode::Call => "off",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => match EnvFilter::try_new(&value) {
            Ok(filter) => filter,
            Err(error) => return fail(2, format_args!("invalid setting RUST_LOG: {error}")),
        },
        _ => EnvFilter::new(default_filter),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let daemon = match Daemon::new(&config) {
        Ok(daemon) => daemon,
        Err(error) => return fail(1, format_args!("cannot build the HTTP client: {error}")),
    };
    match mode {
        Mode::Call => call(&daemon).await,
        Mode::Serve => serve(daemon, config.port).await,
    }
}

async fn call(daemon: &Daemon) -> ExitCode {
    match daemon.call().await {
        Ok(answer) => {
            let mut stdout = std::io::stdout().lock();
            let written = stdout
                .write_all(&answer.body)
                .and_then(|()| match answer.body.last() {
                    Some(b'\n') => Ok(()),
                    _ => stdout.write_all(b"\n"),
                })
                .and_then(|()| stdout.flush());
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(1, format_args!("cannot write the answer: {error}")),
            }
        }
        Err(failure) => fail(1, failure),
    }
}

async fn serve(daemon: Daemon, port: u16) -> ExitCode {
    // Loopback only: the Functions host proxies to the handler there.
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            return fail(
                1,
                format_args!("cannot listen on 127.0.0.1:{port}: {error}"),
            );
        }
    };
    if let Ok(local) = listener.local_addr() {
        tracing::info!(address = %local, "daemon function listening");
    }
    match daemon::serve(daemon, listener, http_serve::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(1, format_args!("server error: {error}")),
    }
}
