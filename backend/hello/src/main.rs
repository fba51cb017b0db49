//! `hello`: reads its settings, listens on `FUNCTIONS_CUSTOMHANDLER_PORT`, serves until SIGTERM/Ctrl-C.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::process::ExitCode;

use http_serve::logging::{self, Output};
use http_serve::settings::Env;
use http_serve::startup::{BAD_SETTING, fail, listen, runtime, worker_threads};

const NAME: &str = "hello";

// The thread count is a setting, read before the runtime exists (http_serve::startup says why
// the default is one).
fn main() -> ExitCode {
    let threads = match worker_threads(&Env, "HELLO_WORKER_THREADS") {
        Ok(threads) => threads,
        Err(error) => return fail(NAME, BAD_SETTING, format_args!("invalid setting {error}")),
    };
    match runtime(threads) {
        Ok(runtime) => runtime.block_on(start()),
        Err(error) => fail(NAME, 1, format_args!("cannot start the runtime: {error}")),
    }
}

async fn start() -> ExitCode {
    let (config, filter) = match hello::Config::from_env()
        .and_then(|config| logging::filter(&Env, "info").map(|filter| (config, filter)))
    {
        Ok(settings) => settings,
        Err(error) => return fail(NAME, BAD_SETTING, format_args!("invalid setting {error}")),
    };
    let _log = logging::init(filter, Output::Stdout);
    let address = SocketAddr::new(config.bind_address, config.port);
    let listener = match listen(address, "hello function").await {
        Ok(listener) => listener,
        Err(line) => return fail(NAME, 1, line),
    };
    match hello::serve(config, listener, http_serve::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(NAME, 1, format_args!("server error: {error}")),
    }
}
