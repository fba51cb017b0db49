//! The userinfo endpoint: the signed-in user's claims for a valid access token of ours.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::json;
use token_validation::bearer_token;

use crate::AppState;
use crate::error_code::ErrorCode;
use crate::internal_error::InternalError;
use crate::user_flow::{Flow, UnknownFlow};

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

fn unauthorized(description: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(
            json!({ "error": ErrorCode::InvalidToken.as_str(), "error_description": description }),
        ),
    )
        .into_response();
    let challenge = format!(
        "Bearer error=\"{}\", error_description=\"{description}\"",
        ErrorCode::InvalidToken
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Userinfo under an unknown tenant or user flow: a bare 404.
pub struct NoSuchFlow;

impl IntoResponse for NoSuchFlow {
    fn into_response(self) -> Response {
        StatusCode::NOT_FOUND.into_response()
    }
}

impl UnknownFlow for NoSuchFlow {
    fn unknown(_tenant: &str, _policy: &str) -> Self {
        Self
    }
}

/// `GET|POST /{tenant}/{policy}/openid/v2.0/userinfo` with `Authorization: Bearer …` (the scheme
/// in any case, RFC 7235 §2.1: the one parser the gateway and the function use).
pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    Flow { policy, .. }: Flow<NoSuchFlow>,
    headers: HeaderMap,
) -> Response {
    let Ok(token) = bearer_token(&headers) else {
        return unauthorized("A bearer access token is required.");
    };
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return unauthorized("The token is malformed.");
    };
    let ring = match state.keys.ring().await {
        Ok(ring) => ring,
        Err(e) => return InternalError::new("loading signing keys", e).response(),
    };
    let Some(key) = header.kid.as_deref().and_then(|kid| ring.decoding_key(kid)) else {
        return unauthorized("The token was not signed by a key of this provider.");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_issuer(&[&state.issuer]);
    // Any audience of ours: an API's or (tokens without an API scope) an app's own.
    let audiences: Vec<&str> = state
        .config
        .apis
        .iter()
        .map(|a| a.client_id.as_str())
        .chain(state.config.spas.iter().map(|s| s.client_id.as_str()))
        .collect();
    validation.set_audience(&audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return unauthorized("The token is invalid or expired."),
    };
    let user_id = claims.sub.clone();
    match state.store.run(move |s| s.user_by_id(&user_id)).await {
        Ok(Some(user)) => Json(json!({
            "sub": user.id,
            "oid": user.id,
            "name": user.display_name,
            "emails": [user.email],
            "email": user.email,
            "tfp": policy.as_str(),
        }))
        .into_response(),
        Ok(None) => unauthorized("The token does not belong to a user."),
        Err(e) => InternalError::new("userinfo lookup", e).response(),
    }
}
