//! The function itself: `GET /api/hello`, plus EasyAuth's `/.auth/me` and the readiness probe.

use axum::Json;
use axum::extract::{Extension, Request};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shared::{Caller, HelloResponse};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::client_principal;
use crate::easyauth::Authenticated;
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
    let headers = request.headers();
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
    if prefers_text(headers) {
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

/// Whether `Accept` ranks `text/plain` above `application/json` (JSON wins ties and `*/*`).
fn prefers_text(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let quality = |wanted: &str| {
        let (kind, _) = wanted.split_once('/').unwrap_or((wanted, ""));
        accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next()?.to_ascii_lowercase();
                let q = parts
                    .find_map(|p| p.strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                // Specific ranges beat wildcards: rank by (specificity, q).
                let specificity = if media == wanted {
                    2
                } else if media == format!("{kind}/*") {
                    1
                } else if media == "*/*" {
                    0
                } else {
                    return None;
                };
                Some((specificity, q))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, q)| q)
            .unwrap_or(0.0)
    };
    let text = quality("text/plain");
    text > 0.0 && text > quality("application/json")
}

/// Route layer: the function is bound to GET only (function.json `methods: ["get"]`).
pub async fn only_get(request: Request, next: Next) -> Response {
    if request.method() == Method::GET {
        next.run(request).await
    } else {
        Refusal::MethodNotAllowed.into_response()
    }
}

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

/// `GET /healthz`: ready as soon as the listener is up (keys load in the background).
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, value.parse().unwrap());
        h
    }

    #[test]
    fn negotiates_text_only_when_preferred() {
        assert!(prefers_text(&accept("text/plain")));
        assert!(prefers_text(&accept("text/plain, application/json;q=0.5")));
        assert!(prefers_text(&accept("text/*")));
        assert!(!prefers_text(&accept("application/json")));
        assert!(!prefers_text(&accept("*/*")));
        assert!(!prefers_text(&accept("text/plain;q=0.5, application/json")));
        assert!(!prefers_text(&accept("text/plain;q=0")));
        assert!(!prefers_text(&HeaderMap::new()));
        assert!(!prefers_text(&accept("text/html")));
    }
}
