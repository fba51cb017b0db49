//! `hello`: reads its settings, listens on `FUNCTIONS_CUSTOMHANDLER_PORT`, serves until SIGTERM/Ctrl-C.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::process::ExitCode;

use http_serve::logging::{self, Output};
use http_serve::settings::Env;
use http_serve::startup::{BAD_SETTING, fail, listen};

const NAME: &str = "hello";

// One thread: on the two cores it shares with the function (or the gateway) and the load, a
// multi-thread runtime spent a quarter of its CPU per request moving tasks between workers and
// waking them (bench: 52 → 39 µs per request for the gateway, 30 → 22 µs for the function, with
// one worker, same req/s).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (config, filter) = match hello::Config::from_env()
        .and_then(|config| logging::filter(&Env, "info").map(|filter| (config, filter)))
    {
        Ok(settings) => settings,
        Err(error) => return fail(NAME, BAD_SETTING, format_args!("invalid setting {error}")),
    };
    logging::init(filter, Output::Stdout);
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
