//! `hello`: reads its settings, listens on `FUNCTIONS_CUSTOMHANDLER_PORT`, serves until SIGTERM/Ctrl-C.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match hello::Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("hello: invalid setting {error}");
            return ExitCode::from(2);
        }
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => match EnvFilter::try_new(&value) {
            Ok(filter) => filter,
            Err(error) => {
                eprintln!("hello: invalid setting RUST_LOG: {error}");
                return ExitCode::from(2);
            }
        },
        _ => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let address = (config.bind_address, config.port);
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "hello: cannot listen on {}:{}: {error}",
                address.0, address.1
            );
            return ExitCode::from(1);
        }
    };
    if let Ok(local) = listener.local_addr() {
        tracing::info!(address = %local, "hello function listening");
    }
    match hello::serve(config, listener, http_serve::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hello: server error: {error}");
            ExitCode::from(1)
        }
    }
}
