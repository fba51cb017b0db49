//! `gateway`: serve (no arguments) or `gateway render-apim-policy`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use gateway::config::{Config, PolicyConfig};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: gateway [render-apim-policy]");
    ExitCode::from(2)
}

fn bad_setting(error: gateway::config::ConfigError) -> ExitCode {
    eprintln!("gateway: bad setting {error}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => run().await,
        ["render-apim-policy"] => match PolicyConfig::from_env() {
            Ok(policy) => {
                print!("{}", gateway::policy::render(&policy));
                ExitCode::SUCCESS
            }
            Err(error) => bad_setting(error),
        },
        _ => usage(),
    }
}

async fn run() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return bad_setting(error),
    };
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let address = std::net::SocketAddr::new(config.bind_address, config.port);
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("gateway: cannot listen on {address}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let gateway = match gateway::Gateway::new(&config).await {
        Ok(gateway) => gateway,
        Err(error) => {
            eprintln!("gateway: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%address, tls = config.tls.is_some(), backend = %config.policy.backend_url, "gateway listening");
    match gateway::serve(gateway, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
