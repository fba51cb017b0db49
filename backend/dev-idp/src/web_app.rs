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

use crate::authorize::{
    AUTHORITY, AuthRequest, AuthorizeError, ResponseMode, param, redirect_error,
    registered_redirect_uri,
};
use crate::config::ApiApp;
use crate::error_code::ErrorCode;
use crate::oauth::{AuthorizationCode, ClientId, RedirectUri, Scopes};
use crate::scope::Granted;
use crate::tokens::{self, Authority, UserGrant};
use crate::user_flow::Policy;
use crate::{AppState, authorize, now, pages};

/// What a web sign-in may ask for: an ID token carries no API scope.
const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Validates a web client's request: the redirect URI first (until it is known good errors are
/// a page), then `response_type=id_token`, `form_post`, a nonce and `openid`.
pub(crate) fn validate(
    api: &ApiApp,
    policy: &Policy,
    p: &HashMap<String, String>,
) -> Result<AuthRequest, AuthorizeError> {
    let get = |k: &str| param(p, k);
    let redirect_uri = registered_redirect_uri(p, &api.web_redirect_uris, &api.client_id)?;
    let state = get("state").map(str::to_owned);
    let fail = |error: ErrorCode, description: &str| {
        redirect_error(
            redirect_uri,
            ResponseMode::FormPost,
            state.as_deref(),
            error,
            description,
        )
    };
    if get("response_mode") != Some("form_post") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "A web app receives its ID token with response_mode 'form_post'.",
        ));
    }
    let web_code = hybrid(api, get("response_type"))
        .map_err(|description| fail(ErrorCode::UnsupportedResponseType, description))?;
    let nonce = get("nonce").ok_or_else(|| {
        fail(
            ErrorCode::InvalidRequest,
            "The request has no nonce; the implicit flow requires one.",
        )
    })?;
    let scopes = sign_in_scopes(get("scope").unwrap_or(""))
        .map_err(|description| fail(ErrorCode::InvalidScope, &description))?;
    Ok(AuthRequest {
        policy: policy.clone(),
        client_id: ClientId::new(api.client_id.as_str()),
        redirect_uri: RedirectUri::new(redirect_uri),
        response_mode: ResponseMode::FormPost,
        state,
        nonce: Some(nonce.to_owned()),
        granted: Granted { scopes, api: None },
        code_challenge: None,
        prompt: get("prompt").map(str::to_owned),
        login_hint: get("login_hint").map(str::to_owned),
        authority: match get(AUTHORITY) {
            Some("tenant") => Authority::Tenant,
            _ => Authority::UserFlow,
        },
        web_code,
    })
}

/// Whether the `response_type` asks for the hybrid flow (`code id_token`, only for an app with a
/// secret) rather than the implicit one (`id_token`); the error's description otherwise.
fn hybrid(api: &ApiApp, response_type: Option<&str>) -> Result<bool, &'static str> {
    let mut response_type: Vec<&str> = response_type.unwrap_or("").split(' ').collect();
    response_type.sort_unstable();
    match response_type.as_slice() {
        ["id_token"] => Ok(false),
        ["code", "id_token"] if api.web_client_secret.is_some() => Ok(true),
        _ if api.web_client_secret.is_some() => {
            Err("Use response_type 'code id_token' (or 'id_token').")
        }
        _ => Err("This web app has no client secret: use response_type 'id_token'."),
    }
}

/// The OpenID scopes a web sign-in asks for (`openid` among them), canonically spelt.
fn sign_in_scopes(requested: &str) -> Result<Scopes, String> {
    let mut scopes = Scopes::default();
    for raw in requested.split_whitespace() {
        let known = SCOPES.iter().find(|s| s.eq_ignore_ascii_case(raw));
        let Some(scope) = known else {
            return Err(format!(
                "The scope '{raw}' cannot be granted to a web sign-in."
            ));
        };
        scopes.insert(scope);
    }
    if !scopes.has("openid") {
        return Err("The request must include the scope 'openid'.".into());
    }
    Ok(scopes)
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
        code: code.as_ref().map(AuthorizationCode::secret),
    };
    let id_token = tokens::web_id_token(state, &ring, &grant, now())
        .map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    let mut params = vec![("id_token".to_owned(), id_token)];
    if let Some(code) = code {
        params.push(("code".to_owned(), code.secret().to_owned()));
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
