//! `gateway`: serve (no arguments), `gateway render-apim-policy [--product NAME]`, or
//! `gateway usage`, or `gateway explain [TOKEN]` (the token from stdin without the argument), or
//! `gateway openapi` (the API's OpenAPI document).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use gateway::config::{Config, Env, PolicyConfig};
use http_serve::logging::{self, Output};
use http_serve::startup::{BAD_SETTING, listen, runtime, worker_threads};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: gateway [render-apim-policy [--product NAME] | usage | explain [TOKEN] | openapi]"
    );
    ExitCode::from(2)
}

fn bad_setting(error: gateway::config::ConfigError) -> ExitCode {
    fail(BAD_SETTING, format_args!("bad setting {error}"))
}

fn fail(status: u8, line: impl std::fmt::Display) -> ExitCode {
    http_serve::startup::fail("gateway", status, line)
}

// The thread count is a setting, read before the runtime exists (http_serve::startup says why
// the default is one).
fn main() -> ExitCode {
    let threads = match worker_threads(&Env, "GATEWAY_WORKER_THREADS") {
        Ok(threads) => threads,
        Err(error) => return bad_setting(error),
    };
    match runtime(threads) {
        Ok(runtime) => runtime.block_on(start()),
        Err(error) => fail(1, format_args!("cannot start the runtime: {error}")),
    }
}

async fn start() -> ExitCode {
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
        ["render-apim-policy", "--product", name] => render_product(name),
        ["usage"] => print_usage().await,
        ["explain"] => match read_stdin_token() {
            Ok(token) => explain(&token).await,
            Err(error) => {
                eprintln!("gateway: explain: {error}");
                ExitCode::from(2)
            }
        },
        ["explain", token] => explain(token).await,
        ["openapi"] => print_openapi().await,
        _ => usage(),
    }
}

/// The product-scoped policy document of one product in `GATEWAY_PRODUCTS`.
fn render_product(name: &str) -> ExitCode {
    let policy = match PolicyConfig::from_env() {
        Ok(policy) => policy,
        Err(error) => return bad_setting(error),
    };
    let Some(catalogue) = &policy.products else {
        eprintln!("gateway: GATEWAY_PRODUCTS is not set: there are no products to render");
        return ExitCode::from(2);
    };
    match catalogue.products.iter().find(|p| p.name == name) {
        Some(product) => {
            print!("{}", gateway::policy::render_product(product));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("gateway: GATEWAY_PRODUCTS lists no product `{name}`");
            ExitCode::from(2)
        }
    }
}

/// A token is a few KiB; more than this on stdin is not one.
const MAX_STDIN_TOKEN_BYTES: u64 = 64 * 1024;

fn read_stdin_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut token = String::new();
    std::io::stdin()
        .take(MAX_STDIN_TOKEN_BYTES)
        .read_to_string(&mut token)?;
    Ok(token)
}

/// Exit 0 when the gateway would accept the token, 1 when it would refuse it.
async fn explain(token: &str) -> ExitCode {
    let policy = match PolicyConfig::from_env() {
        Ok(policy) => policy,
        Err(error) => return bad_setting(error),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (report, accepted) = gateway::explain::explain(&policy, token, now).await;
    print!("{report}");
    if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The document `GET /openapi.json` serves, once the IdP's metadata has loaded (10 s at most).
async fn print_openapi() -> ExitCode {
    let policy = match PolicyConfig::from_env() {
        Ok(policy) => policy,
        Err(error) => return bad_setting(error),
    };
    let validator = gateway::explain::metadata_validator(&policy).await;
    let Some(endpoints) = gateway::openapi::Endpoints::from_validator(&validator) else {
        eprintln!(
            "gateway: openapi: no metadata in GATEWAY_OPENID_CONFIG_URLS loaded with an authorization and a token endpoint"
        );
        return ExitCode::FAILURE;
    };
    match serde_json::to_string_pretty(&gateway::openapi::published(&policy, &endpoints)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gateway: openapi: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Calls per subscription: every instance's from Redis, else this host's instance's admin port.
async fn print_usage() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return bad_setting(error),
    };
    let rows = match (&config.redis_url, config.admin_port) {
        (Some(url), _) => gateway::quota::shared_usage(url)
            .await
            .map_err(|e| format!("Redis (GATEWAY_REDIS_URL): {:?}", e.kind())),
        (None, Some(port)) => gateway::admin::fetch_usage(port)
            .await
            .map_err(|e| format!("admin port {port} (GATEWAY_ADMIN_PORT): {e}")),
        (None, None) => {
            Err("set GATEWAY_REDIS_URL or GATEWAY_ADMIN_PORT to read usage from".into())
        }
    };
    match rows {
        Ok(rows) => {
            print!("{}", gateway::quota::table(&rows));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gateway: usage: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let (config, filter) = match Config::from_env()
        .and_then(|config| logging::filter(&Env, "info").map(|filter| (config, filter)))
    {
        Ok(settings) => settings,
        Err(error) => return bad_setting(error),
    };
    let _log = logging::init(filter, Output::Stdout);
    let address = std::net::SocketAddr::new(config.bind_address, config.port);
    let listener = match listen(address, "gateway").await {
        Ok(listener) => listener,
        Err(line) => return fail(1, line),
    };
    let gateway = match gateway::Gateway::new(&config).await {
        Ok(gateway) => gateway,
        Err(error) => return fail(1, error),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        }
    };
    if let Some(port) = config.admin_port
        && let Err(code) = start_admin(port, &gateway, shutdown()).await
    {
        return code;
    }
    if let Some(subscriptions) = gateway.subscriptions.clone() {
        tokio::spawn(reload_on_hangup(subscriptions));
    }
    tokio::spawn(async move {
        http_serve::shutdown::signal().await;
        let _ = stop.send(true);
    });
    tracing::info!(tls = config.tls.is_some(), backend = %config.policy.backend_url, "gateway serving");
    match gateway::serve(gateway, listener, shutdown()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// The admin port, on loopback only.
async fn start_admin(
    port: u16,
    gateway: &gateway::Gateway,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ExitCode> {
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(admin)
        .await
        .map_err(|error| {
            fail(
                1,
                format_args!("cannot listen on {admin} (GATEWAY_ADMIN_PORT): {error}"),
            )
        })?;
    let gateway = gateway.clone();
    tokio::spawn(async move { gateway::admin::serve(&gateway, listener, shutdown).await });
    tracing::info!(address = %admin, "admin port listening");
    Ok(())
}

/// SIGHUP re-reads `GATEWAY_PRODUCTS`; the server, its connections and the counters stay.
async fn reload_on_hangup(subscriptions: std::sync::Arc<gateway::subscription::Subscriptions>) {
    #[cfg(unix)]
    {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: GATEWAY_PRODUCTS will not be re-read");
            return;
        };
        while hangup.recv().await.is_some() {
            match subscriptions.reload() {
                Ok(()) => tracing::info!("GATEWAY_PRODUCTS re-read"),
                Err(error) => {
                    tracing::error!(%error, "GATEWAY_PRODUCTS not re-read, the previous products stay");
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = subscriptions;
}
