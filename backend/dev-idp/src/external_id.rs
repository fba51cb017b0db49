//! Microsoft Entra External ID's tenant-level shape (`{tenant}.ciamlogin.com/{tenant id}/…`):
//! authorize and logout with no policy in the path. External ID links each app to one user
//! flow, so the flow is the client's ([`crate::config::Config::linked_flow`]); a `?p=` query
//! still names a B2C user flow, as B2C's query form does. What follows (the flow's pages,
//! sign-in, the code) is the user flow's own, so both shapes share one journey; the tenant-level
//! token endpoint then issues v2 tokens under the tenant issuer ([`crate::tokens::Authority`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::authorize::{self, AUTHORITY, AuthorizeError, page, query_params};
use crate::user_flow::Policy;
use crate::{AppState, logout, pages};

/// `GET /{tenant}/oauth2/v2.0/authorize`
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AuthorizeError> {
    let mut params = query_params(query.as_deref())?;
    let policy = flow(&state, &tenant, &params)?;
    // A web app's ID token is minted at the end of the journey: it carries this shape along.
    let web = params
        .get("client_id")
        .is_some_and(|c| state.config.web_app(c).is_some());
    if web && !params.contains_key("p") {
        params.insert(AUTHORITY.to_owned(), "tenant".to_owned());
    }
    authorize::begin(&state, &policy, &params, &headers).await
}

/// `GET|POST /{tenant}/oauth2/v2.0/logout` (`?p=` accepted, as B2C's query form).
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let known = state.is_tenant(&tenant)
        && query_params(query.as_deref())
            .ok()
            .and_then(|p| p.get("p").cloned())
            .is_none_or(|p| state.policy(&p).is_some());
    if !known {
        return pages::not_found().await;
    }
    logout::end_session(&state, query, &headers, &body).await
}

/// The user flow a tenant-level request runs: `?p=`, else the one the client is linked to.
fn flow(
    state: &AppState,
    tenant: &str,
    params: &HashMap<String, String>,
) -> Result<Policy, AuthorizeError> {
    if !state.is_tenant(tenant) {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Sign-in request refused",
            format!("AADSTS90002: Tenant '{tenant}' not found."),
        ));
    }
    if let Some(name) = params.get("p") {
        return authorize::policy(state, tenant, name);
    }
    let client_id = params.get("client_id").map(String::as_str).unwrap_or("");
    let linked = state
        .config
        .spas
        .iter()
        .find(|s| s.client_id.eq_ignore_ascii_case(client_id))
        .and_then(|spa| state.config.linked_flow(spa));
    // An unknown client still gets the request's own error page (missing or unregistered
    // client id), from the validation every flow runs first.
    let flow = linked.or_else(|| state.config.default_user_flow());
    flow.map(Policy::new).ok_or_else(|| {
        page(
            StatusCode::BAD_REQUEST,
            "Sign-in request refused",
            "No user flow is linked to this application.",
        )
    })
}
