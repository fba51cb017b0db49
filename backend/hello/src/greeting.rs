//! The function itself: `GET /api/hello`, the seed's greeting and who called.

use axum::Json;
use axum::extract::Request;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use shared::{Caller, HelloResponse};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::easyauth::Authenticated;
use crate::negotiation;
use crate::refusal::Refusal;

/// `?name=`: whom to greet (`World` without it), checked again here as the gateway checks it
/// from the API definition. Given twice or outside the rule: `None`.
fn greeted(uri: &Uri) -> Option<String> {
    let mut names = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(key, _)| key == shared::api::greeting_name::PARAMETER)
        .map(|(_, value)| value);
    match (names.next(), names.next()) {
        (None, _) => Some("World".to_owned()),
        (Some(name), None) if shared::api::greeting_name::is_valid(&name) => {
            Some(name.into_owned())
        }
        _ => None,
    }
}

/// `GET /api/hello`: the seed's greeting and who called. The identity is EasyAuth's
/// [`Authenticated`] extension, the same principal `X-MS-CLIENT-PRINCIPAL` was built from, so the
/// handler does not decode again what EasyAuth encoded a moment ago.
pub async fn hello(request: Request) -> Response {
    let Some(Authenticated { principal, .. }) = request.extensions().get::<Authenticated>() else {
        // Only reachable if the EasyAuth layer was not in front: refuse rather than guess.
        return Refusal::Unauthenticated(token_validation::ValidationError::MissingToken)
            .into_response();
    };
    let Some(name) = greeted(request.uri()) else {
        return Refusal::InvalidName.into_response();
    };
    let now = OffsetDateTime::now_utc();
    let message = format!(
        "Hello {name}, time and date are {}",
        now.format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
    );
    if negotiation::prefers_text(request.headers()) {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response();
    }
    let caller = Caller {
        name: principal.name.clone(),
        subject: principal.subject.clone(),
        scopes: principal.scopes.clone(),
        roles: principal.roles.clone(),
    };
    Json(HelloResponse {
        message,
        caller,
        time: now.format(&Rfc3339).unwrap_or_default(),
    })
    .into_response()
}
