//! End session: clears the single sign-on cookie, then returns only to a registered
//! post-logout redirect URI.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::authorize::{ResponseMode, parse_params, response_url};
use crate::internal_error::InternalError;
use crate::user_flow::Flow;
use crate::{AppState, pages, session};

/// `GET|POST /{tenant}/{policy}/oauth2/v2.0/logout?post_logout_redirect_uri=…&state=…`
pub async fn logout(
    State(state): State<Arc<AppState>>,
    _: Flow<pages::NotFound>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    end_session(&state, query, &headers, &body).await
}

/// Ends the SSO session and returns to the registered post-logout redirect URI, if any.
pub(crate) async fn end_session(
    state: &AppState,
    query: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    // Parameters come in the query (GET) or the form body (POST).
    let raw = if body.is_empty() {
        query.unwrap_or_default().into_bytes()
    } else {
        body.to_vec()
    };
    let params = match parse_params(&raw) {
        Ok(p) => p,
        Err(message) => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "Sign-out request refused",
                &message,
            );
        }
    };
    let clear = match session::end(state, headers).await {
        Ok(cookie) => cookie,
        Err(e) => {
            return InternalError::new("ending session", e).attach(pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            ));
        }
    };
    let with_cookie = |mut response: Response| {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear.clone());
        response
    };
    let Some(target) = params
        .get("post_logout_redirect_uri")
        .filter(|u| !u.is_empty())
    else {
        return with_cookie(pages::html(StatusCode::OK, pages::signed_out()));
    };
    // Registered for the named client, or for any SPA when the request names none.
    let client = params.get("client_id");
    let registered = state
        .config
        .spas
        .iter()
        .filter(|s| client.is_none_or(|c| s.client_id.eq_ignore_ascii_case(c)))
        .any(|s| s.post_logout_uris().iter().any(|u| u == target));
    if !registered {
        return with_cookie(pages::error(
            StatusCode::BAD_REQUEST,
            "Signed out",
            &format!(
                "You have been signed out, but '{target}' is not a registered post-logout redirect URI, \
                 so you were not sent back to it."
            ),
        ));
    }
    let mut pairs = Vec::new();
    if let Some(s) = params.get("state") {
        pairs.push(("state", s.as_str()));
    }
    let to = response_url(target, ResponseMode::Query, &pairs);
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(&to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    with_cookie(response)
}
