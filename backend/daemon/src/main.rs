//! `daemon call`: one call of the API, its answer on stdout (exit 0) or one line on stderr naming
//! what failed (exit 1). `daemon`: the Azure Functions custom handler on
//! `FUNCTIONS_CUSTOMHANDLER_PORT`, until SIGTERM/Ctrl-C. A bad setting: one line, exit 2.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;

use daemon::{Config, Daemon};
use http_serve::logging::{self, Output};
use http_serve::settings::Env;
use http_serve::startup::{BAD_SETTING, listen};

const USAGE: &str = "usage: daemon [call]   (settings: DAEMON_TOKEN_URL, DAEMON_CLIENT_ID, DAEMON_CLIENT_SECRET, DAEMON_SCOPE, DAEMON_API_URL; see backend/daemon/README.md)";

enum Mode {
    Serve,
    Call,
}

fn fail(code: u8, line: impl std::fmt::Display) -> ExitCode {
    http_serve::startup::fail("daemon", code, line)
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
    // `call` keeps stderr for its one line unless RUST_LOG asks for more.
    let default_filter = match mode {
        Mode::Serve => "info",
        Mode::Call => "off",
    };
    let (config, filter) = match Config::from_env()
        .and_then(|config| logging::filter(&Env, default_filter).map(|filter| (config, filter)))
    {
        Ok(settings) => settings,
        Err(error) => return fail(BAD_SETTING, format_args!("invalid setting {error}")),
    };
    let _log = logging::init(filter, Output::Stderr);
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
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match listen(address, "daemon function").await {
        Ok(listener) => listener,
        Err(line) => return fail(1, line),
    };
    match daemon::serve(daemon, listener, http_serve::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(1, format_args!("server error: {error}")),
    }
}
