//! A local OpenID Connect provider shaped like Azure AD B2C, for development and tests.
//!
//! It speaks B2C's URL shapes (`/{tenant}.onmicrosoft.com/{policy}/…`, the `?p=` and `tfp/`
//! discovery forms, case-insensitive tenant and policy names), issues RS256 tokens with B2C's
//! claims, runs the Authorization Code + PKCE flow with server-rendered sign-in and sign-up pages,
//! rotating refresh tokens with reuse detection, and the client credentials grant with app roles.
//! Besides sign-up-or-sign-in, it runs B2C's password-reset (codes mailed as `.eml` files) and
//! profile-edit user flows.
//! State (users, keys, sessions, grants) lives in SQLite in the data directory.
//!
//! `main.rs` only parses [`config::Config`], binds, and calls [`serve`]; tests do the same on
//! `127.0.0.1:0`.

pub mod authorize;
pub mod config;
pub mod cors;
pub mod csrf;
pub mod discovery;
pub mod email;
pub mod error_code;
pub mod external_id;
pub mod internal_error;
pub mod keys;
pub mod lockout;
pub mod logout;
pub mod mail;
pub mod oauth;
pub mod pages;
pub mod password;
pub mod password_reset;
pub mod pkce;
pub mod profile;
pub mod scope;
pub mod session;
pub mod store;
pub mod token;
pub mod tokens;
pub mod user_flow;
pub mod userinfo;
pub mod verification;
pub mod web_app;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::Request;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::keys::Keys;
use crate::store::{Inserted, Store, User};
use crate::user_flow::Policy;

/// Why the server could not start; `Display` is one line naming the problem.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("DEVIDP_DATA_DIR: {0}")]
    DataDir(String),
    #[error("signing keys in DEVIDP_DATA_DIR: {0}")]
    Keys(String),
    #[error("users: {0}")]
    Users(String),
    #[error("listener: {0}")]
    Listener(String),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
}

/// Everything a handler needs, shared behind an `Arc`.
pub struct AppState {
    pub config: Config,
    /// Public base URL without a trailing slash, e.g. `http://127.0.0.1:7010`.
    pub base_url: String,
    /// `{base}/{tenant id}/v2.0/`, B2C's issuer shape.
    pub issuer: String,
    /// `{base}/{tenant id}/v2.0`, the tenant-level (Entra) issuer of client-credentials tokens
    /// from `/{tenant}/oauth2/v2.0/token`, as `login.microsoftonline.com/{tenant id}/v2.0`.
    pub tenant_issuer: String,
    pub store: Arc<Store>,
    pub keys: Arc<Keys>,
    /// Verified against when the sign-in name is unknown, so timing does not reveal accounts.
    pub decoy_hash: String,
    /// Bounds the argon2id computations requests can start.
    pub hashing: password::Hashing,
    /// Signs the forms' CSRF tokens with a secret of this instance.
    pub csrf: csrf::Csrf,
    /// MACs the password-reset verification codes with a secret of this instance.
    pub codes: verification::Codes,
    pub secure_cookies: bool,
}

impl AppState {
    /// Opens the data directory, loads (or creates) the signing keys and seeds the users.
    pub fn new(config: Config, local_addr: SocketAddr) -> Result<Self, StartError> {
        // Also checked when loading, but library callers build configs by hand: fail closed here.
        config.check_exposure_on(local_addr.ip())?;
        let base_url = match &config.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => {
                let ip = if local_addr.ip().is_unspecified() {
                    std::net::IpAddr::from([127, 0, 0, 1])
                } else {
                    local_addr.ip()
                };
                format!("http://{}", SocketAddr::new(ip, local_addr.port()))
            }
        };
        let tenant_issuer = format!("{base_url}/{}/v2.0", config.tenant.id);
        let issuer = format!("{tenant_issuer}/");
        let secure_cookies = base_url.starts_with("https://");

        let dir = &config.data_dir;
        if dir.exists() && !dir.is_dir() {
            return Err(StartError::DataDir(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::DataDir(format!("{}: {e}", dir.display())))?;
        let store = Arc::new(
            Store::open(dir).map_err(|e| StartError::DataDir(format!("{}: {e}", dir.display())))?,
        );
        let keys = Arc::new(
            Keys::load(Arc::clone(&store), now()).map_err(|e| StartError::Keys(e.to_string()))?,
        );
        seed_users(&config, &store)?;
        let decoy_hash = password::hash("decoy password for unknown accounts")
            .map_err(|e| StartError::Users(e.to_string()))?;
        let hashing = password::Hashing::new(config.limits.password_hashes());
        Ok(Self {
            config,
            base_url,
            issuer,
            tenant_issuer,
            store,
            keys,
            decoy_hash,
            hashing,
            csrf: csrf::Csrf::new(),
            codes: verification::Codes::new(),
            secure_cookies,
        })
    }

    /// `scheme://host:port` of the public URL: what browsers send as `Origin` on its forms.
    pub fn origin(&self) -> String {
        url::Url::parse(&self.base_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| self.base_url.clone())
    }

    /// The configured policy matching `name` case-insensitively (B2C does; MSAL lowercases).
    pub fn policy(&self, name: &str) -> Option<&str> {
        self.flow(name).map(config::UserFlow::name)
    }

    /// The configured user flow matching `name` case-insensitively.
    pub fn flow(&self, name: &str) -> Option<&config::UserFlow> {
        self.config
            .tenant
            .policies
            .iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The kind of the (canonical) policy `name`.
    pub fn flow_kind(&self, name: &str) -> config::FlowKind {
        self.flow(name)
            .map_or(config::FlowKind::SignUpSignIn, config::UserFlow::kind)
    }

    /// Whether a path's tenant segment names this tenant: `x.onmicrosoft.com`, `x`, or its id.
    pub fn is_tenant(&self, segment: &str) -> bool {
        let t = &self.config.tenant;
        segment.eq_ignore_ascii_case(&t.domain())
            || segment.eq_ignore_ascii_case(&t.name)
            || segment.eq_ignore_ascii_case(&t.id)
    }

    /// Resolves `/{tenant}/{policy}/…` path segments to the canonical policy name.
    pub fn resolve(&self, tenant: &str, policy: &str) -> Option<Policy> {
        if !self.is_tenant(tenant) {
            return None;
        }
        self.policy(policy).map(Policy::new)
    }

    /// `{base}/{tenant}.onmicrosoft.com/{policy}` as discovery advertises it (lowercase policy).
    pub fn policy_url(&self, policy: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base_url,
            self.config.tenant.domain(),
            policy.to_ascii_lowercase()
        )
    }

    /// Origins (`scheme://host:port`) of every SPA redirect URI: the only CORS origins.
    pub fn spa_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .config
            .spas
            .iter()
            .flat_map(|s| s.redirect_uris.iter())
            .filter_map(|u| url::Url::parse(u).ok())
            .map(|u| u.origin().ascii_serialization())
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }
}

fn seed_users(config: &Config, store: &Store) -> Result<(), StartError> {
    for seed in &config.users {
        let existing = store
            .user_by_email(&seed.email)
            .map_err(|e| StartError::DataDir(e.to_string()))?;
        if existing.is_some() {
            continue;
        }
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            email: seed.email.clone(),
            display_name: seed.display_name.trim().to_owned(),
            password_hash: password::hash(&seed.password)
                .map_err(|e| StartError::Users(e.to_string()))?,
        };
        if store
            .insert_user(&user, now())
            .map_err(|e| StartError::DataDir(e.to_string()))?
            == Inserted::Created
        {
            tracing::info!(email = %seed.email, "seeded user");
        }
    }
    Ok(())
}

/// All routes, with the layers composed here in one place.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors::layer(&state.spa_origins());
    // Only what MSAL fetches from the page (discovery, keys, token, userinfo) answers CORS;
    // navigations never do.
    let per_policy = policy_api().layer(cors.clone()).merge(pages());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(tenant_api().layer(cors))
        .merge(tenant_pages())
        .merge(per_policy.clone())
        // MSAL's B2C authority form: every per-policy URL also under `/tfp`.
        .nest("/tfp", per_policy)
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(internal_error::log))
        .layer(
            // Spans name the path only: query strings can carry id_token_hint.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(state)
}

/// What a page's scripts fetch under a user flow: metadata, keys, token, userinfo.
fn policy_api() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/{tenant}/{policy}/v2.0/.well-known/openid-configuration",
            get(discovery::by_policy_path),
        )
        .route(
            "/{tenant}/{policy}/discovery/v2.0/keys",
            get(discovery::jwks),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/token",
            post(token::by_policy),
        )
        .route(
            "/{tenant}/{policy}/openid/v2.0/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
}

/// The tenant-level endpoints (no user flow in the path).
fn tenant_api() -> Router<Arc<AppState>> {
    Router::new()
        // With `?p=`: a user flow's metadata (B2C's query form); without: the tenant's own
        // (Entra's tenant-level metadata, for the client-credentials issuer).
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::by_query),
        )
        .route(
            "/{tenant}/discovery/v2.0/keys",
            get(discovery::jwks_by_query),
        )
        // The tenant-level token endpoint: seed 004's daemon (Entra), External ID's sign-in.
        .route("/{tenant}/oauth2/v2.0/token", post(token::by_tenant))
}

/// External ID's tenant-level navigations: no policy in the path.
fn tenant_pages() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(external_id::authorize),
        )
        .route(
            "/{tenant}/oauth2/v2.0/logout",
            get(external_id::logout).post(external_id::logout),
        )
}

/// The user journey's navigations: authorize and its steps, logout.
fn pages() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize",
            get(authorize::start).post(authorize::sign_in),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize/signup",
            get(authorize::sign_up_page).post(authorize::sign_up),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize/forgot",
            get(authorize::forgot_password),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize/cancel",
            get(authorize::cancel),
        )
        // The password-reset and profile-edit user flows' steps.
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize/reset/send",
            post(password_reset::send_code),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize/reset/verify",
            post(password_reset::verify_code),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize/reset/password",
            post(password_reset::set_password),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/authorize/profile",
            post(profile::update),
        )
        .route(
            "/{tenant}/{policy}/oauth2/v2.0/logout",
            get(logout::logout).post(logout::logout),
        )
}

/// Serves until `shutdown` completes.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let local = listener
        .local_addr()
        .map_err(|e| StartError::Listener(e.to_string()))?;
    // Key generation and password hashing are slow: keep them off the async workers.
    let state = tokio::task::spawn_blocking(move || AppState::new(config, local))
        .await
        .map_err(|e| StartError::Listener(e.to_string()))??;
    serve_state(Arc::new(state), listener, shutdown).await
}

/// Serves an already-built state (lets callers report start-up errors before serving).
pub async fn serve_state(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let store = Arc::clone(&state.store);
    let purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = store.run(|s| s.purge_expired(now())).await {
                tracing::warn!(error = %e, "purging expired grants failed");
            }
        }
    });
    let limits = state.config.limits.serving();
    let result = http_serve::serve_with(listener, router(state), shutdown, limits)
        .await
        .map_err(|e| StartError::Listener(e.to_string()));
    purge.abort();
    result
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// 32 random bytes, base64url: codes, refresh tokens, session ids, CSRF tokens.
pub fn random_token() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

/// How secrets are stored and looked up: never in the clear.
pub fn secret_hash(secret: &str) -> String {
    B64.encode(Sha256::digest(secret.as_bytes()))
}
