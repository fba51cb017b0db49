//! OpenID Provider metadata in B2C's three URL forms, the tenant-level (Entra) metadata, and
//! the JWKS.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::internal_error::InternalError;
use crate::user_flow::{Flow, Policy, UnknownFlow};

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "error": "invalid_tenant_or_policy",
            "error_description": format!("AADB2C90008: '{what}' is not a user flow of this tenant."),
        })),
    )
        .into_response()
}

fn document(state: &AppState, policy: &str) -> Response {
    let base = state.policy_url(policy);
    Json(json!({
        "issuer": state.issuer,
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "userinfo_endpoint": format!("{base}/openid/v2.0/userinfo"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": ["openid", "offline_access", "profile", "email"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["login", "none"],
        "claims_supported": [
            "name", "emails", "oid", "sub", "idp", "tfp", "iss", "iat", "exp", "aud", "acr", "nonce", "auth_time",
            "at_hash", "c_hash"
        ],
    }))
    .into_response()
}

/// `/{tenant}/{policy}/v2.0/.well-known/openid-configuration` and the `tfp/` form.
pub async fn by_policy_path(
    State(state): State<Arc<AppState>>,
    Flow { policy, .. }: Flow<Unknown>,
) -> Response {
    document(&state, &policy)
}

/// What a discovery URL named that does not exist here.
pub enum Unknown {
    /// Entra's answer for a tenant it does not know.
    Tenant(String),
    /// B2C's, for `?p=` naming no user flow of the tenant.
    UserFlow(String),
}

impl UnknownFlow for Unknown {
    fn unknown(tenant: &str, policy: &str) -> Self {
        Self::UserFlow(format!("{tenant}/{policy}"))
    }
}

impl IntoResponse for Unknown {
    fn into_response(self) -> Response {
        match self {
            Unknown::Tenant(tenant) => (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": "invalid_tenant",
                    "error_description": format!("AADSTS90002: Tenant '{tenant}' not found."),
                })),
            )
                .into_response(),
            Unknown::UserFlow(asked) => not_found(&asked),
        }
    }
}

/// The tenant-level metadata, as `login.microsoftonline.com/{tenant id}/v2.0` (seed 004's app
/// tokens) and `{tenant}.ciamlogin.com/{tenant id}/v2.0` (External ID's user sign-in) serve it:
/// no policy in any endpoint; the authorize endpoint picks the user flow by app.
fn tenant_document(state: &AppState) -> Response {
    let base = format!("{}/{}", state.base_url, state.config.tenant.id);
    Json(json!({
        "issuer": state.tenant_issuer,
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": ["openid", "offline_access", "profile", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["login", "none"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": [
            "sub", "oid", "tid", "azp", "azpacr", "roles", "scp", "name", "emails", "iss", "iat", "nbf",
            "exp", "aud", "ver", "nonce", "auth_time", "at_hash", "c_hash"
        ],
    }))
    .into_response()
}

/// With `?p=`, that user flow (B2C's query form); without, the tenant itself (`None`).
fn query_policy(
    state: &AppState,
    tenant: &str,
    query: &HashMap<String, String>,
) -> Result<Option<Policy>, Unknown> {
    if !state.is_tenant(tenant) {
        return Err(Unknown::Tenant(tenant.to_owned()));
    }
    match query.get("p") {
        None => Ok(None),
        Some(name) => state
            .resolve(tenant, name)
            .map(Some)
            .ok_or_else(|| Unknown::UserFlow(format!("{tenant}?p={name}"))),
    }
}

/// `/{tenant}/v2.0/.well-known/openid-configuration`, with or without `?p={policy}`.
pub async fn by_query(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query_policy(&state, &tenant, &query) {
        Ok(Some(policy)) => document(&state, &policy),
        Ok(None) => tenant_document(&state),
        Err(unknown) => unknown.into_response(),
    }
}

async fn keys(state: &Arc<AppState>) -> Response {
    match state.keys.ring().await {
        Ok(ring) => Json(json!({ "keys": ring.jwks })).into_response(),
        Err(e) => InternalError::new("loading signing keys", e).response(),
    }
}

/// `/{tenant}/{policy}/discovery/v2.0/keys`
pub async fn jwks(State(state): State<Arc<AppState>>, _: Flow<Unknown>) -> Response {
    keys(&state).await
}

/// `/{tenant}/discovery/v2.0/keys`, with or without `?p={policy}`: one key ring signs for the
/// user flows and the tenant alike.
pub async fn jwks_by_query(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query_policy(&state, &tenant, &query) {
        Ok(_) => keys(&state).await,
        Err(unknown) => unknown.into_response(),
    }
}
