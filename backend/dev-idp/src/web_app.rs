//! The API app as a web client: App Service Authentication ("EasyAuth") on the function signs
//! users in with OpenID Connect's implicit flow when it has no client secret —
//! `response_type=id_token`, `response_mode=form_post`, a `nonce` — and gets the ID token posted
//! to its `/.auth/login/aad/callback`. With a secret (`[[apis]] web_client_secret`) it uses the
//! hybrid flow instead — `response_type=code id_token` — and redeems the code at the token
//! endpoint with the secret. The registration's Web redirect URIs
//! (`[[apis]] web_redirect_uris`) are the only places a token is posted to.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::authorize::{AUTHORITY, AuthRequest, AuthorizeError, ResponseMode, page};
use crate::config::ApiApp;
use crate::scope::Granted;
use crate::tokens::{self, Authority, UserGrant};
use crate::{AppState, authorize, now, pages};

const REFUSED: &str = "Sign-in request refused";
/// What a web sign-in may ask for: an ID token carries no API scope.
const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Validates a web client's request: the redirect URI first (until it is known good errors are
/// a page), then `response_type=id_token`, `form_post`, a nonce and `openid`.
pub(crate) fn validate(
    api: &ApiApp,
    policy: &str,
    p: &HashMap<String, String>,
) -> Result<AuthRequest, AuthorizeError> {
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let redirect_uri = get("redirect_uri").ok_or_else(|| {
        page(
            StatusCode::BAD_REQUEST,
            REFUSED,
            "The request has no redirect_uri.",
        )
    })?;
    if !api.web_redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(page(
            StatusCode::BAD_REQUEST,
            REFUSED,
            format!(
                "AADB2C90006: The redirect URI '{redirect_uri}' provided in the request is not registered \
                 for the client id '{}'.",
                api.client_id
            ),
        ));
    }
    let state = get("state").map(str::to_owned);
    let fail = |error: &str, description: &str| {
        let mut params = vec![
            ("error".to_owned(), error.to_owned()),
            ("error_description".to_owned(), description.to_owned()),
        ];
        if let Some(s) = &state {
            params.push(("state".to_owned(), s.clone()));
        }
        AuthorizeError::FormPost {
            to: redirect_uri.to_owned(),
            params,
        }
    };
    if get("response_mode") != Some("form_post") {
        return Err(fail(
            "invalid_request",
            "A web app receives its ID token with response_mode 'form_post'.",
        ));
    }
    let mut response_type: Vec<&str> = get("response_type").unwrap_or("").split(' ').collect();
    response_type.sort_unstable();
    let web_code = match response_type.as_slice() {
        ["id_token"] => false,
        ["code", "id_token"] if api.web_client_secret.is_some() => true,
        _ if api.web_client_secret.is_some() => {
            return Err(fail(
                "unsupported_response_type",
                "Use response_type 'code id_token' (or 'id_token').",
            ));
        }
        _ => {
            return Err(fail(
                "unsupported_response_type",
                "This web app has no client secret: use response_type 'id_token'.",
            ));
        }
    };
    let nonce = get("nonce").ok_or_else(|| {
        fail(
            "invalid_request",
            "The request has no nonce; the implicit flow requires one.",
        )
    })?;
    let mut scopes = Vec::new();
    for raw in get("scope").unwrap_or("").split_whitespace() {
        let known = SCOPES.iter().find(|s| s.eq_ignore_ascii_case(raw));
        match known {
            Some(s) if !scopes.iter().any(|have: &String| have == s) => {
                scopes.push((*s).to_owned())
            }
            Some(_) => {}
            None => {
                return Err(fail(
                    "invalid_scope",
                    &format!("The scope '{raw}' cannot be granted to a web sign-in."),
                ));
            }
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(fail(
            "invalid_scope",
            "The request must include the scope 'openid'.",
        ));
    }
    Ok(AuthRequest {
        policy: policy.to_owned(),
        client_id: api.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        response_mode: ResponseMode::FormPost,
        state,
        nonce: Some(nonce.to_owned()),
        granted: Granted { scopes, api: None },
        code_challenge: String::new(),
        prompt: get("prompt").map(str::to_owned),
        login_hint: get("login_hint").map(str::to_owned),
        authority: match get(AUTHORITY) {
            Some("tenant") => Authority::Tenant,
            _ => Authority::UserFlow,
        },
        web_code,
    })
}

/// The signed-in user's ID token, posted to the web app.
pub(crate) async fn respond(
    state: &AppState,
    req: &AuthRequest,
    user_id: &str,
    auth_time: i64,
    cookie: Option<HeaderValue>,
) -> Result<Response, AuthorizeError> {
    let id = user_id.to_owned();
    let user = state
        .store
        .run(move |s| s.user_by_id(&id))
        .await?
        .ok_or_else(|| AuthorizeError::Internal("the signed-in user is gone".into()))?;
    let ring = state
        .keys
        .ring()
        .await
        .map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    let code = match req.web_code {
        true => Some(authorize::issue_code(state, req, user_id, auth_time).await?),
        false => None,
    };
    let grant = UserGrant {
        user: &user,
        client_id: &req.client_id,
        policy: &req.policy,
        authority: req.authority,
        auth_time,
        granted: &req.granted,
        nonce: req.nonce.as_deref(),
        code: code.as_deref(),
    };
    let id_token = tokens::web_id_token(state, &ring, &grant, now())
        .map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    let mut params = vec![("id_token".to_owned(), id_token)];
    if let Some(code) = code {
        params.push(("code".to_owned(), code));
    }
    if let Some(s) = &req.state {
        params.push(("state".to_owned(), s.clone()));
    }
    let mut response = form_post(&req.redirect_uri, &params);
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The script that submits the form at once; the CSP allows exactly it, by hash.
const SUBMIT: &str = "document.forms[0].submit();";

/// `form_post` (OAuth 2.0 Form Post Response Mode): a page whose form posts `params` to `to`.
pub(crate) fn form_post(to: &str, params: &[(String, String)]) -> Response {
    let fields: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                pages::escape(k),
                pages::escape(v)
            )
        })
        .collect();
    let body = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Signing in</title></head><body>
<form method="post" action="{}">{fields}<noscript><button type="submit">Continue</button></noscript></form>
<script>{SUBMIT}</script></body></html>"#,
        pages::escape(to)
    );
    let mut response = pages::html(StatusCode::OK, body);
    let hash = STANDARD.encode(Sha256::digest(SUBMIT.as_bytes()));
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors 'none'"
    )) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}
