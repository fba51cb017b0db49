//! OpenID Provider metadata in B2C's three URL forms, and the JWKS.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

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
    Path((tenant, policy)): Path<(String, String)>,
) -> Response {
    match state.resolve(&tenant, &policy) {
        Some(policy) => document(&state, &policy),
        None => not_found(&format!("{tenant}/{policy}")),
    }
}

/// The policy named by `?p=`; without it (the issuer-relative form, `{iss}.well-known/…`) the
/// first configured policy.
fn query_policy(
    state: &AppState,
    tenant: &str,
    query: &HashMap<String, String>,
) -> (String, Option<String>) {
    let first = state
        .config
        .tenant
        .policies
        .first()
        .cloned()
        .unwrap_or_default();
    let name = query.get("p").cloned().unwrap_or(first);
    let resolved = state.resolve(tenant, &name);
    (format!("{tenant}?p={name}"), resolved)
}

/// `/{tenant}/v2.0/.well-known/openid-configuration?p={policy}`
pub async fn by_query(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query_policy(&state, &tenant, &query) {
        (_, Some(policy)) => document(&state, &policy),
        (asked, None) => not_found(&asked),
    }
}

async fn keys(state: &Arc<AppState>) -> Response {
    match state.keys.ring().await {
        Ok(ring) => Json(json!({ "keys": ring.jwks })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "loading signing keys failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `/{tenant}/{policy}/discovery/v2.0/keys`
pub async fn jwks(
    State(state): State<Arc<AppState>>,
    Path((tenant, policy)): Path<(String, String)>,
) -> Response {
    if state.resolve(&tenant, &policy).is_none() {
        return not_found(&format!("{tenant}/{policy}"));
    }
    keys(&state).await
}

/// `/{tenant}/discovery/v2.0/keys?p={policy}`
pub async fn jwks_by_query(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query_policy(&state, &tenant, &query) {
        (_, Some(_)) => keys(&state).await,
        (asked, None) => not_found(&asked),
    }
}
