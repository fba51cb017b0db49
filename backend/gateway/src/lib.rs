//! The API gateway in API Management's role, for the SPA → gateway → function path.
//!
//! Each call to `GET /api/hello` runs the seed's inbound policy in APIM's order — `cors` →
//! [`check-header` (Front Door) → `ip-filter` → `validate-client-certificate` (TLS with a client CA)
//! → subscription key →] `validate-jwt` (with optional `required-claims`) → `rate-limit-by-key`
//! (client IP) → `rate-limit-by-key` (token subject) [→ the product's `rate-limit` and `quota` →
//! `limit-concurrency`]
//! — and is then forwarded to the function app with the function key the browser never sees. The
//! pipeline is assembled in [`router`]; `gateway render-apim-policy` prints the same policy as
//! APIM XML ([`policy::render`]).

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod client_addr;
pub mod concurrency;
pub mod config;
pub mod cors;
pub mod envelope;
pub mod error;
pub mod explain;
pub mod forward;
pub mod front_door;
pub mod ip_filter;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod quota;
pub mod rate_limit;
pub mod required_claims;
pub mod subscription;
pub mod tls;
pub mod trace_context;
pub mod validation;

use auth::Admission;
use axum::Router;
use axum::middleware::{FromFnLayer, from_fn_with_state};
use axum::routing::get;
use client_addr::TrustedProxies;
use concurrency::ConcurrencyLimit;
use config::Config;
use cors::CorsPolicy;
use envelope::Envelope;
use error::GatewayError;
use forward::Backend;
use front_door::FrontDoorId;
use ip_filter::IpFilter;
use rate_limit::{IpThenSubject, Limiter, RedisCounters};
use std::future::Future;
use std::sync::Arc;
use subscription::Subscriptions;
use tls::{ClientCertRules, TlsHandshake, TlsListener};
use token_validation::{Validator, ValidatorConfig};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// Everything the pipeline holds, built once from [`Config`].
#[derive(Clone)]
pub struct Gateway {
    pub cors: Arc<CorsPolicy>,
    pub validator: Validator,
    /// validate-jwt's validator and the API's `rate-limit-by-key` policies, by IP then by subject.
    pub admission: Arc<Admission>,
    pub backend: Arc<Backend>,
    /// Present with `GATEWAY_REDIS_URL`.
    pub redis: Option<Arc<RedisCounters>>,
    /// Present with `GATEWAY_PRODUCTS`.
    pub subscriptions: Option<Arc<Subscriptions>>,
    /// Served at `/metrics` on the admin port.
    pub metrics: Arc<metrics::Metrics>,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub front_door: Option<Arc<FrontDoorId>>,
    pub ip_filter: Option<Arc<IpFilter>>,
    pub concurrency: Option<Arc<ConcurrencyLimit>>,
    pub client_certificate: Option<Arc<ClientCertRules>>,
    /// Present with `GATEWAY_TLS_CERT`: connections are TLS.
    pub tls: Option<TlsHandshake>,
    /// `GET /openapi.json`.
    pub openapi: Arc<openapi::Published>,
    /// Present with `GATEWAY_VALIDATION`: the rules of the API's OpenAPI document.
    pub validation: Option<Arc<validation::Definition>>,
}

/// Why the gateway could not be assembled from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("backend client: {0}")]
    Backend(#[from] forward::BackendError),
    #[error("Redis client: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Definition(#[from] validation::DefinitionError),
}

impl Gateway {
    pub async fn new(config: &Config) -> Result<Self, StartError> {
        let policy = &config.policy;
        let validator = Validator::new(ValidatorConfig {
            openid_config_urls: policy
                .openid_config_urls
                .iter()
                .map(|u| u.to_string())
                .collect(),
            issuers: policy.issuers.clone(),
            audiences: policy.audiences.clone(),
            clock_skew: policy.clock_skew,
            required_claims: policy.required_claims.clone(),
            ..ValidatorConfig::default()
        })
        .await;
        let redis = match &config.redis_url {
            Some(url) => Some(RedisCounters::connect(url)?),
            None => None,
        };
        let validation = match policy.validation {
            Some(action) => {
                let document = serde_json::to_value(openapi::api(policy))
                    .map_err(|e| validation::DefinitionError::from(e.to_string()))?;
                Some(Arc::new(validation::Definition::new(&document, action)?))
            }
            None => None,
        };
        Ok(Self {
            cors: Arc::new(CorsPolicy::new(policy.allowed_origins.clone())),
            openapi: Arc::new(openapi::Published::new(policy.clone(), validator.clone())),
            validation,
            admission: Arc::new(Admission {
                validator: validator.clone(),
                rate_limits: Arc::new(IpThenSubject {
                    ip: Arc::new(Limiter::new(
                        "ip",
                        policy.per_ip,
                        config.rate_limit_max_keys,
                        redis.clone(),
                        (rate_limit::IP_REMAINING_HEADER, rate_limit::IP_LIMIT_HEADER),
                    )),
                    subject: Arc::new(Limiter::new(
                        "subject",
                        policy.per_subject,
                        config.rate_limit_max_keys,
                        redis.clone(),
                        (
                            rate_limit::SUBJECT_REMAINING_HEADER,
                            rate_limit::SUBJECT_LIMIT_HEADER,
                        ),
                    )),
                }),
            }),
            validator,
            backend: Arc::new(Backend::new(config)?),
            subscriptions: policy.products.clone().map(|catalogue| {
                Arc::new(Subscriptions::new(
                    catalogue,
                    config.rate_limit_max_keys,
                    redis.clone(),
                ))
            }),
            redis,
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            front_door: policy.front_door_id.clone().map(Arc::new),
            ip_filter: policy.ip_filter.clone().map(Arc::new),
            concurrency: policy
                .max_concurrency
                .map(|max| Arc::new(ConcurrencyLimit::new(max))),
            client_certificate: policy.client_certificate.clone().map(Arc::new),
            tls: config.tls.as_ref().map(TlsListener::handshake),
            metrics: Arc::default(),
        })
    }
}

/// The whole server: the API route behind APIM's inbound pipeline, `/healthz`, and JSON 404s.
/// Serve it with [`http_serve::serve`] or `into_make_service_with_connect_info::<SocketAddr>()`
/// (the client address starts from the socket peer, see [`client_addr`]).
pub fn router(gateway: &Gateway) -> Router {
    // APIM's inbound order, outermost first. A preflight stops in `cors`; the optional policies
    // are absent (not no-ops) when their setting is.
    let inbound = ServiceBuilder::new()
        .layer(from_fn_with_state(gateway.cors.clone(), cors::apply))
        .option_layer(optional(&gateway.front_door, front_door::check))
        .option_layer(optional(&gateway.ip_filter, ip_filter::apply))
        .option_layer(optional(
            &gateway.client_certificate,
            tls::validate_client_certificate,
        ))
        .option_layer(optional(&gateway.subscriptions, subscription::check_key))
        // validate-parameters / validate-content: cheap, so before the signature check.
        .option_layer(optional(&gateway.validation, validation::request))
        // validate-jwt, then rate-limit-by-key by IP, then by subject: one layer (and with
        // Redis one round trip for both counters).
        .layer(from_fn_with_state(
            gateway.admission.clone(),
            auth::validate_jwt_then_rate_limit,
        ))
        // The product's rate-limit and quota (product scope: after the API's policies).
        .option_layer(optional(&gateway.subscriptions, subscription::limits))
        // APIM renders this one in <backend>, around the forward.
        .option_layer(optional(&gateway.concurrency, concurrency::limit))
        // <outbound>: validate-status-code / -headers / -content on the function's answer.
        .option_layer(optional(&gateway.validation, validation::response));
    let api = Router::new()
        .route(
            "/api/hello",
            get(forward::hello).fallback(|| async { GatewayError::MethodNotAllowed }),
        )
        .layer(inbound)
        .with_state(gateway.backend.clone());

    // The API's definition: public (no token, no rate limit), CORS as for the API.
    let definition = Router::new()
        .route(
            "/openapi.json",
            get(openapi::serve)
                .fallback(|| async { GatewayError::MethodNotAllowed })
                .layer(from_fn_with_state(gateway.cors.clone(), cors::apply)),
        )
        .with_state(gateway.openapi.clone());

    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .merge(definition)
        .fallback(|| async { GatewayError::NotFound })
        // Around every call: request id → client address → metrics → traceparent → access log.
        .layer(from_fn_with_state(
            Arc::new(Envelope {
                trusted_proxies: gateway.trusted_proxies.clone(),
                metrics: gateway.metrics.clone(),
            }),
            envelope::around,
        ))
}

/// An optional policy's layer: there when its setting is, absent (not a no-op) otherwise.
fn optional<S: Clone, F, T>(state: &Option<S>, policy: F) -> Option<FromFnLayer<F, S, T>> {
    state.clone().map(|state| from_fn_with_state(state, policy))
}

/// Serves until `shutdown` completes.
pub async fn serve(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(&gateway);
    match gateway.tls {
        Some(tls) => {
            let limits = http_serve::Limits::default();
            http_serve::serve_handshaking(listener, router, shutdown, limits, tls).await
        }
        None => http_serve::serve(listener, router, shutdown).await,
    }
}
