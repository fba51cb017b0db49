//! `dev-idp` — serve (default), `rotate-keys`, `retire-keys`. See the crate docs.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use dev_idp::config::{Config, EnvOverrides};
use dev_idp::store::Store;
use dev_idp::{AppState, keys, now};
use http_serve::logging::{self, Output};
use http_serve::settings::Env;
use http_serve::startup::BAD_SETTING;

const USAGE: &str = "usage: dev-idp [serve | rotate-keys | retire-keys]";

/// Every failure to start is reported as a bad setting (2): the scripts tell it from a crash.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    http_serve::startup::fail("dev-idp", BAD_SETTING, message)
}

fn main() -> ExitCode {
    let filter = match logging::filter(&Env, "info") {
        Ok(filter) => filter,
        Err(e) => return fail(e),
    };
    // Its stdout is the one "listening" line; logs go to stderr.
    let _log = logging::init(filter, Output::Stderr);

    let command = std::env::args().nth(1);
    let config = match EnvOverrides::from_env() {
        Ok(env) => Config::load(&env).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match command.as_deref() {
        None | Some("serve") => serve(config),
        Some("rotate-keys") => with_store(&config, |store| {
            let kid = keys::rotate(store, now()).map_err(|e| e.to_string())?;
            println!("new signing key {kid}; running servers sign with it from their next request");
            Ok(())
        }),
        Some("retire-keys") => with_store(&config, |store| {
            let retired = store.retire_old_keys(now()).map_err(|e| e.to_string())?;
            println!("retired {retired} signing key(s); only the newest stays published");
            Ok(())
        }),
        Some(_) => fail(USAGE),
    }
}

fn with_store(config: &Config, f: impl FnOnce(&Store) -> Result<(), String>) -> ExitCode {
    let dir = &config.data_dir;
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(format!("DEVIDP_DATA_DIR: {}: {e}", dir.display()));
    }
    let store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => return fail(format!("DEVIDP_DATA_DIR: {}: {e}", dir.display())),
    };
    match f(&store) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn serve(config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("runtime: {e}")),
    };
    runtime.block_on(async move {
        let addr = SocketAddr::new(config.bind_address, config.port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => return fail(format!("DEVIDP_PORT: cannot listen on {addr}: {e}")),
        };
        let local = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => return fail(format!("DEVIDP_PORT: {e}")),
        };
        let state = match tokio::task::spawn_blocking(move || AppState::new(config, local)).await {
            Ok(Ok(state)) => Arc::new(state),
            Ok(Err(e)) => return fail(e),
            Err(e) => return fail(format!("start-up: {e}")),
        };
        let policy = state
            .config
            .tenant
            .policies
            .first()
            .map(|f| f.name().to_owned())
            .unwrap_or_default();
        println!(
            "dev-idp listening on {} — discovery: {}/v2.0/.well-known/openid-configuration",
            state.base_url,
            state.policy_url(&policy)
        );
        match dev_idp::serve_state(state, listener, http_serve::shutdown::signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}
