//! The hello function: an Azure Functions custom handler with EasyAuth-style defence in depth.
//!
//! `GET /api/hello` answers the seed's greeting to a caller who passed, in this order:
//!
//! 1. **IP allow-list** (App Service access restrictions): on the socket peer address. First,
//!    because it is the outermost platform layer and costs nothing.
//! 2. **Method**: only GET is bound (405 otherwise). The host routes by method before it runs
//!    anything of the function.
//! 3. **Function key** (authLevel `function`): checked before the token because it is cheap,
//!    constant-time and stops scanners before any RSA work.
//! 4. **EasyAuth**: bearer token re-validated against the IdP's metadata; the unauthenticated
//!    action otherwise; forged `X-MS-CLIENT-PRINCIPAL*` headers stripped.
//! 5. **Authorization policy**: allowed applications/identities, required scopes or roles (403).
//! 6. The handler, which reads the identity EasyAuth attached (the principal the injected
//!    `X-MS-CLIENT-PRINCIPAL` was built from).
//!
//! `GET /.auth/me` (IP filter, then EasyAuth) and `GET /healthz` (IP filter only) complete it;
//! `/.auth/login/aad`, its callback and `/.auth/logout` are EasyAuth's browser sign-in
//! ([`login_session`]), whose session cookie EasyAuth accepts when no bearer token is sent.

pub mod binding;
pub mod client_principal;
pub mod config;
pub mod easyauth;
pub mod envelope;
pub mod function_key;
pub mod greeting;
pub mod health;
pub mod host;
pub mod ip_filter;
pub mod login_session;
pub mod negotiation;
pub mod refusal;
pub mod token_store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{any, get, post};
use token_validation::{Validator, ValidatorConfig};
use tokio::net::TcpListener;

use client_principal::PrincipalHeaders;
pub use config::{Config, ConfigError, FunctionKey, UnauthenticatedAction};
use function_key::FunctionKeys;
use ip_filter::AllowList;
use refusal::Refusal;

/// How long a principal's built `X-MS-CLIENT-PRINCIPAL` is reused (then built again, if its token
/// is still cached): bounds what the entries of expired tokens hold.
const PRINCIPAL_HEADERS_TTL: Duration = Duration::from_secs(600);

/// Everything the handlers and middleware share.
pub struct AppState {
    pub config: Config,
    pub validator: Validator,
    pub function_keys: FunctionKeys,
    pub allow_list: Option<AllowList>,
    pub principal_headers: PrincipalHeaders,
    /// Signs EasyAuth's login and session cookies.
    pub sealer: login_session::Sealer,
    /// Redeems the sign-in code at the IdP's token endpoint: present with a client secret only
    /// (it has nothing to redeem without one).
    pub token_client: Option<reqwest::Client>,
}

impl AppState {
    /// Starts loading the IdP's keys in the background; never waits for the IdP.
    pub async fn new(config: Config) -> Arc<AppState> {
        let validator = Validator::new(ValidatorConfig {
            openid_config_urls: config.openid_config_urls.clone(),
            // EasyAuth takes `iss` from the metadata.
            issuers: Vec::new(),
            audiences: config.audiences.clone(),
            clock_skew: config.clock_skew,
            min_refetch_interval: config.min_key_refetch_interval,
            ..ValidatorConfig::default()
        })
        .await;
        let principal_headers = PrincipalHeaders::new(
            validator.config().token_cache_capacity,
            PRINCIPAL_HEADERS_TTL,
        );
        Arc::new(AppState {
            principal_headers,
            function_keys: FunctionKeys::new(&config.function_keys),
            allow_list: config.allowed_ips.clone().map(AllowList::new),
            sealer: login_session::Sealer::default(),
            token_client: config
                .client_secret
                .is_some()
                .then(|| login_session::token_client(validator.config().http_timeout)),
            validator,
            config,
        })
    }
}

/// The routes and their layers, in the order documented at the top of this crate.
pub fn router(state: Arc<AppState>) -> Router {
    // The host's steps before the handler, in order: method, function key, EasyAuth.
    let function = Router::new()
        .route("/api/hello", any(greeting::hello))
        .route_layer(from_fn_with_state(state.clone(), host::admit));
    let auth_me = Router::new()
        .route("/.auth/me", get(token_store::me))
        .route_layer(from_fn_with_state(
            state.clone(),
            easyauth::authenticate_api,
        ));
    // EasyAuth's own sign-in for browsers; the callback's form is one ID token and a state.
    let login = Router::new()
        .route("/.auth/login/aad", get(login_session::login))
        .route(
            "/.auth/login/aad/callback",
            post(login_session::callback).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .route("/.auth/logout", get(login_session::logout))
        .with_state(state.clone());
    let routes = Router::new()
        .merge(function)
        .merge(auth_me)
        .merge(login)
        .route("/healthz", get(health::healthz))
        .fallback(|| async { Refusal::NotFound });
    // Absent, not a no-op, without HELLO_ALLOWED_IPS.
    let routes = match state.allow_list {
        Some(_) => routes.layer(from_fn_with_state(state, ip_filter::allow_listed)),
        None => routes,
    };
    // Around everything, whatever answers: request id, deadline, access line.
    routes.layer(from_fn(envelope::around))
}

/// Serves until `shutdown` completes, with peer addresses for the IP allow-list.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_state(AppState::new(config).await, listener, shutdown).await
}

/// [`serve`] with an already-built state (tests keep it to look inside, e.g. at the validator).
pub async fn serve_state(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http_serve::serve(listener, router(state), shutdown).await
}
