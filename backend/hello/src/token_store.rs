//! EasyAuth's token store endpoint, `GET /.auth/me`: the signed-in caller's token and claims.

use axum::Json;
use axum::extract::Extension;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client_principal;
use crate::easyauth::Authenticated;

/// `GET /.auth/me` in EasyAuth's shape.
pub async fn me(Extension(auth): Extension<Authenticated>) -> Response {
    let principal = &auth.principal;
    let expires_on = OffsetDateTime::from_unix_timestamp(principal.expires_at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok());
    Json(json!([{
        "access_token": auth.access_token,
        "expires_on": expires_on,
        "id_token": "",
        "provider_name": client_principal::IDP,
        "user_claims": client_principal::claim_list(&principal.claims),
        "user_id": principal.name.clone().unwrap_or_else(|| principal.subject.clone()),
    }]))
    .into_response()
}
