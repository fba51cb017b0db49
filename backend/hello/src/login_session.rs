//! EasyAuth's own sign-in for browsers (`RedirectToLoginPage`): the redirect to the identity
//! provider, the `form_post` callback with the ID token, the `AppServiceAuthSession` cookie that
//! stands for the user afterwards, and `/.auth/logout`.
//!
//! Without a client secret EasyAuth signs in with OpenID Connect's implicit flow: the IdP posts
//! an ID token for the API's web-app registration (`aud` = its client id) to
//! `/.auth/login/aad/callback`. Two cookies carry the state, both HMAC-signed with a key of this
//! instance (a restart signs everyone out), both HttpOnly, Secure where the site is HTTPS:
//! - the login cookie binds one sign-in to this browser: the `state` the IdP must return, the
//!   `nonce` the ID token must carry, where to go afterwards (a path on this site only), and 10
//!   minutes to finish;
//! - the session cookie holds the few claims the function needs, for 8 hours (EasyAuth's
//!   default), and at most [`MAX_COOKIE`] bytes.
//!
//! With a client secret (`MICROSOFT_PROVIDER_AUTHENTICATION_SECRET`) it uses the hybrid flow
//! instead: `response_type=code id_token`; the posted ID token is checked as above, then the code
//! is redeemed at the token endpoint with the secret (`client_secret_post`), and the ID token of
//! that response — same nonce, same `sub` — is the one the session is made of.
//!
//! The callback is a cross-site POST, so a `SameSite=Lax` login cookie does not come with it: the
//! callback answers once with a page that posts the same fields again from this site, and that
//! post carries it (a `SameSite=None` cookie would need HTTPS, which local runs do not have).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use token_validation::{Principal, ValidationError};

use crate::AppState;
use crate::config::ClientSecret;

pub const SESSION_COOKIE: &str = "AppServiceAuthSession";
const LOGIN_COOKIE: &str = "AppServiceAuthLogin";
const CALLBACK: &str = "/.auth/login/aad/callback";
/// The login cookie's path: the login endpoint and its callback.
const LOGIN_PATH: &str = "/.auth/login/aad";
const LOGIN_SECONDS: i64 = 600;
const SESSION_SECONDS: i64 = 8 * 3600;
/// Browsers keep cookies up to about 4 KB; a larger session is refused rather than lost.
pub const MAX_COOKIE: usize = 3800;
/// The claims a session keeps (each a string of at most 256 bytes, or a list of those).
const KEPT_CLAIMS: &[&str] = &[
    "sub", "oid", "name", "emails", "iss", "aud", "tfp", "tid", "idp",
];
const MAX_CLAIM: usize = 256;

/// Signs and checks this instance's cookies.
pub struct Sealer {
    key: hmac::Key,
}

impl Default for Sealer {
    fn default() -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &rand_bytes()),
        }
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // aws-lc-rs's system RNG; failing it means no secure randomness, so nothing can be signed.
    aws_lc_rs::rand::fill(&mut bytes).unwrap_or_else(|_| std::process::abort());
    bytes
}

fn random_id() -> String {
    B64.encode(rand_bytes())
}

impl Sealer {
    /// `base64url(json).base64url(hmac)`, the purpose bound in so one cookie never passes as the other.
    fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> Option<String> {
        let body = B64.encode(serde_json::to_vec(value).ok()?);
        let tag = hmac::sign(&self.key, format!("{purpose}.{body}").as_bytes());
        Some(format!("{body}.{}", B64.encode(tag.as_ref())))
    }

    fn open<T: for<'de> Deserialize<'de>>(&self, purpose: &str, sealed: &str) -> Option<T> {
        if sealed.len() > MAX_COOKIE {
            return None;
        }
        let (body, tag) = sealed.split_once('.')?;
        let tag = B64.decode(tag).ok()?;
        hmac::verify(&self.key, format!("{purpose}.{body}").as_bytes(), &tag).ok()?;
        serde_json::from_slice(&B64.decode(body).ok()?).ok()
    }
}

/// One sign-in in progress.
#[derive(Serialize, Deserialize)]
struct Login {
    state: String,
    nonce: String,
    redirect: String,
    expires: i64,
}

/// A signed-in browser.
#[derive(Serialize, Deserialize)]
struct Session {
    claims: Map<String, Value>,
    expires: i64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Why the callback or the login endpoint refused; the body says it in plain words.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the redirect target must be a path on this site")]
    OpenRedirect,
    #[error("the request has no usable Host header")]
    NoHost,
    #[error("the address to return to is too long to keep in a cookie")]
    TargetTooLong,
    #[error("the identity provider's metadata is not available yet; try again shortly")]
    NoAuthorizeEndpoint,
    #[error("the sign-in was not started here or took over 10 minutes; start it again")]
    NoLogin,
    #[error("the state does not match this browser's sign-in")]
    StateMismatch,
    #[error("the identity provider answered {0}")]
    Provider(String),
    #[error("the ID token was refused: {0}")]
    IdToken(ValidationError),
    #[error("the signed-in identity is too large for a session cookie")]
    TooLarge,
    #[error("the identity provider posted no code to redeem")]
    NoCode,
    #[error("the identity provider's token endpoint is not available; try again shortly")]
    NoTokenEndpoint,
    #[error("the identity provider refused the code: {0}")]
    Redemption(String),
    #[error("the redeemed ID token is for another user")]
    SubjectMismatch,
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        let status = match self {
            LoginError::OpenRedirect | LoginError::NoHost | LoginError::TargetTooLong => {
                StatusCode::BAD_REQUEST
            }
            LoginError::NoAuthorizeEndpoint => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut response = (status, format!("Sign-in failed: {self}.\n")).into_response();
        // A failed sign-in also forgets the one in progress.
        if let Ok(clear) = HeaderValue::from_str(&clear_cookie(LOGIN_COOKIE, LOGIN_PATH)) {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
        response
    }
}

/// Where the site is served: `https` unless the `Host` is a loopback name (local runs).
pub struct Site {
    pub host: String,
    pub https: bool,
}

impl Site {
    pub fn of(headers: &HeaderMap) -> Option<Site> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@', ' ', '\\']))?;
        let loopback =
            host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
        Some(Site {
            host: host.to_owned(),
            https: !loopback,
        })
    }

    fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: i64) -> String {
        let secure = if self.https { "; Secure" } else { "" };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }
}

fn clear_cookie(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax")
}

/// A path on this site (`/…`, not `//host` or `/\host`, which browsers read as another host).
fn local_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && !target.chars().any(|c| c.is_control())
}

/// The 302 to the IdP's authorize endpoint for a new sign-in that ends at `redirect`, with the
/// login cookie that binds it to this browser.
pub async fn start(state: &AppState, site: &Site, redirect: &str) -> Result<Response, LoginError> {
    if !local_path(redirect) {
        return Err(LoginError::OpenRedirect);
    }
    let validator = &state.validator;
    if validator.authorization_endpoint().is_none() {
        // Right after start the metadata may still be loading: wait for the first fetch (bounded).
        validator
            .wait_for_first_fetch(validator.config().http_timeout * 2)
            .await;
    }
    let endpoint = validator
        .authorization_endpoint()
        .ok_or(LoginError::NoAuthorizeEndpoint)?;
    let mut url = url::Url::parse(&endpoint).map_err(|_| LoginError::NoAuthorizeEndpoint)?;
    let client_id = state
        .config
        .audiences
        .first()
        .ok_or(LoginError::NoAuthorizeEndpoint)?;
    let response_type = match state.config.client_secret {
        Some(_) => "code id_token",
        None => "id_token",
    };
    let login = Login {
        state: random_id(),
        nonce: random_id(),
        redirect: redirect.to_owned(),
        expires: now() + LOGIN_SECONDS,
    };
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", response_type)
        .append_pair("response_mode", "form_post")
        .append_pair("redirect_uri", &format!("{}{CALLBACK}", site.origin()))
        .append_pair("scope", "openid profile email")
        .append_pair("nonce", &login.nonce)
        .append_pair("state", &login.state);
    let sealed = state
        .sealer
        .seal("login", &login)
        .filter(|s| s.len() <= MAX_COOKIE)
        .ok_or(LoginError::TargetTooLong)?;
    let cookie = site.cookie(LOGIN_COOKIE, &sealed, LOGIN_PATH, LOGIN_SECONDS);
    Ok(redirect_with(url.as_str(), &[cookie]))
}

fn redirect_with(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub struct LoginQuery {
    post_login_redirect_uri: Option<String>,
}

/// `GET /.auth/login/aad?post_login_redirect_uri=/path`
pub async fn login(
    State(state): State<Arc<AppState>>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Result<Response, LoginError> {
    let site = Site::of(&headers).ok_or(LoginError::NoHost)?;
    let redirect = query.post_login_redirect_uri.as_deref().unwrap_or("/");
    start(&state, &site, redirect).await
}

/// What the IdP posts to the callback.
#[derive(Deserialize, Serialize)]
pub struct Callback {
    id_token: Option<String>,
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// Set by the page that posts the fields again from this site (see the module doc).
    bounced: Option<String>,
}

/// `POST /.auth/login/aad/callback`
pub async fn callback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<Callback>,
) -> Result<Response, LoginError> {
    let site = Site::of(&headers).ok_or(LoginError::NoHost)?;
    if let Some(error) = &form.error {
        let description = form.error_description.as_deref().unwrap_or_default();
        return Err(LoginError::Provider(format!("{error}: {description}")));
    }
    let Some(sealed) = cookie(&headers, LOGIN_COOKIE) else {
        return match form.bounced {
            None => Ok(bounce(&form)),
            Some(_) => Err(LoginError::NoLogin),
        };
    };
    let login: Login = state
        .sealer
        .open("login", sealed)
        .filter(|l: &Login| l.expires > now())
        .ok_or(LoginError::NoLogin)?;
    if form.state.as_deref() != Some(login.state.as_str()) {
        return Err(LoginError::StateMismatch);
    }
    let id_token = form.id_token.as_deref().unwrap_or_default();
    let mut principal = state
        .validator
        .validate_id_token(id_token, &login.nonce)
        .await
        .map_err(LoginError::IdToken)?;
    if let Some(secret) = &state.config.client_secret {
        let code = form.code.as_deref().ok_or(LoginError::NoCode)?;
        let redeemed = redeem(state.as_ref(), &site, secret, code).await?;
        let back = state
            .validator
            .validate_id_token(&redeemed, &login.nonce)
            .await
            .map_err(LoginError::IdToken)?;
        if back.subject != principal.subject {
            return Err(LoginError::SubjectMismatch);
        }
        principal = back;
    }
    let session = Session {
        claims: kept_claims(&principal.claims),
        expires: now() + SESSION_SECONDS,
    };
    let sealed = state
        .sealer
        .seal("session", &session)
        .filter(|s| s.len() <= MAX_COOKIE)
        .ok_or(LoginError::TooLarge)?;
    tracing::info!(subject = %principal.subject, "EasyAuth session started");
    Ok(redirect_with(
        &login.redirect,
        &[
            site.cookie(SESSION_COOKIE, &sealed, "/", SESSION_SECONDS),
            clear_cookie(LOGIN_COOKIE, LOGIN_PATH),
        ],
    ))
}

/// The largest token response read; an ID token and a few fields fit many times over.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// The client of the token endpoint: bounded in time, no redirects (the secret stays where sent).
pub fn token_client(timeout: std::time::Duration) -> reqwest::Client {
    trust_store::reqwest_builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct TokenReply {
    id_token: Option<String>,
    error: Option<String>,
}

/// Redeems the hybrid flow's code with the client secret (`client_secret_post`): the ID token.
async fn redeem(
    state: &AppState,
    site: &Site,
    secret: &ClientSecret,
    code: &str,
) -> Result<String, LoginError> {
    let endpoint = state
        .validator
        .metadata()
        .into_iter()
        .find_map(|m| m.token_endpoint)
        .ok_or(LoginError::NoTokenEndpoint)?;
    let client_id = state
        .config
        .audiences
        .first()
        .ok_or(LoginError::NoTokenEndpoint)?;
    let redirect_uri = format!("{}{CALLBACK}", site.origin());
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.secret()),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    let unreachable = |_| LoginError::Redemption("the token endpoint did not answer".into());
    let client = state
        .token_client
        .as_ref()
        .ok_or_else(|| LoginError::Redemption("no token client without a secret".into()))?;
    let mut response = client
        .post(&endpoint)
        .form(&form)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
            return Err(LoginError::Redemption("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let reply: Option<TokenReply> = serde_json::from_slice(&body).ok();
    match reply {
        Some(TokenReply {
            id_token: Some(id_token),
            ..
        }) if status.is_success() => Ok(id_token),
        Some(TokenReply {
            error: Some(error), ..
        }) => Err(LoginError::Redemption(format!("{error} ({status})"))),
        _ => Err(LoginError::Redemption(format!(
            "{status} without an ID token"
        ))),
    }
}

fn kept_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    let short = |v: &Value| v.as_str().is_some_and(|s| s.len() <= MAX_CLAIM);
    claims
        .iter()
        .filter(|(k, _)| KEPT_CLAIMS.contains(&k.as_str()))
        .filter(|(_, v)| {
            short(v)
                || v.as_array()
                    .is_some_and(|a| a.len() <= 4 && a.iter().all(short))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The named cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    http_serve::cookie::value(headers, name)
}

const RESUBMIT: &str = "document.forms[0].submit();";

/// The callback's fields posted again from this site, so the `SameSite=Lax` login cookie comes along.
fn bounce(form: &Callback) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut fields = String::from(r#"<input type="hidden" name="bounced" value="1">"#);
    for (name, value) in [
        ("id_token", &form.id_token),
        ("code", &form.code),
        ("state", &form.state),
    ] {
        if let Some(value) = value {
            fields.push_str(&format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape(value)
            ));
        }
    }
    let body = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Signing in</title></head><body>
<form method="post" action="{CALLBACK}">{fields}<noscript><button type="submit">Continue</button></noscript></form>
<script>{RESUBMIT}</script></body></html>"#
    );
    let hash = STANDARD.encode(Sha256::digest(RESUBMIT.as_bytes()));
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'"
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The principal of a valid, unexpired session cookie; anything else is no session.
pub fn session_principal(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let session = open_session(&state.sealer, cookie(headers, SESSION_COOKIE)?, now())?;
    let text = |name: &str| {
        session
            .claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Some(Principal {
        subject: text("sub")?,
        object_id: text("oid"),
        name: text("name"),
        scopes: Vec::new(),
        roles: Vec::new(),
        client_app: None,
        issuer: text("iss").unwrap_or_default(),
        audience: text("aud").unwrap_or_default(),
        expires_at: session.expires,
        claims: session.claims,
    })
}

/// A session cookie signed by this instance for a session still running at `now`.
fn open_session(sealer: &Sealer, sealed: &str, now: i64) -> Option<Session> {
    sealer
        .open::<Session>("session", sealed)
        .filter(|s| s.expires > now)
}

#[derive(Deserialize)]
pub struct LogoutQuery {
    post_logout_redirect_uri: Option<String>,
}

/// `GET /.auth/logout`: ends the session, then returns to a path on this site if one is named
/// (anything else is refused, the session ended all the same).
pub async fn logout(Query(query): Query<LogoutQuery>) -> Response {
    let mut response = match query.post_logout_redirect_uri.as_deref() {
        Some(target) if local_path(target) => redirect_with(target, &[]),
        Some(_) => LoginError::OpenRedirect.into_response(),
        None => (StatusCode::OK, "You have been signed out.\n").into_response(),
    };
    if let Ok(clear) = HeaderValue::from_str(&clear_cookie(SESSION_COOKIE, "/")) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn session(expires: i64) -> Session {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("user-1"));
        Session { claims, expires }
    }

    #[test]
    fn sessions_expire_and_are_bound_to_their_purpose_and_key() {
        let sealer = Sealer::default();
        let sealed = sealer.seal("session", &session(1_000)).unwrap();
        assert!(open_session(&sealer, &sealed, 999).is_some());
        assert!(open_session(&sealer, &sealed, 1_000).is_none(), "expired");
        assert!(
            open_session(&Sealer::default(), &sealed, 999).is_none(),
            "another key"
        );
        let as_login = sealer.seal("login", &session(1_000)).unwrap();
        assert!(
            open_session(&sealer, &as_login, 999).is_none(),
            "another purpose"
        );
    }

    #[test]
    fn only_paths_on_this_site_are_redirect_targets() {
        for good in ["/", "/api/hello?code=k", "/a/b#c"] {
            assert!(local_path(good), "{good}");
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "/\nx",
            "evil",
        ] {
            assert!(!local_path(bad), "{bad}");
        }
    }

    #[test]
    fn a_session_keeps_only_short_known_claims() {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("u"));
        claims.insert("emails".into(), serde_json::json!(["a@example.com"]));
        claims.insert("name".into(), Value::from("x".repeat(MAX_CLAIM + 1)));
        claims.insert("groups".into(), serde_json::json!(["g"]));
        let mut kept: Vec<String> = kept_claims(&claims).keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["emails", "sub"]);
    }
}
