//! The authorization endpoint and the user journey behind it: sign-in, sign-up, "Forgot your
//! password?" and cancel. The password-reset and profile-edit user flows start here too and
//! continue in [`crate::password_reset`] and [`crate::profile`].
//!
//! The authorization request travels with the user as hidden form fields and link query strings
//! and is validated again on every step, so no half-finished login lives on the server. Until the
//! client and redirect URI are known good, errors are shown as a page and never redirected.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::config::FlowKind;
use crate::pages::{self, FormContext};
use crate::scope::{self, Granted};
use crate::store::{Attempt, CodeRecord, Inserted, StoreError, User};
use crate::tokens::Authority;
use crate::{
    AppState, csrf, lockout, now, password, password_reset, pkce, profile, random_token,
    secret_hash, session, web_app,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    /// Posted by an auto-submitting form: web apps' ID tokens ([`crate::web_app`]).
    FormPost,
}

/// An authorization request whose client, redirect URI, scopes and PKCE challenge are valid.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub policy: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub granted: Granted,
    pub code_challenge: String,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    /// Whose issuer a token minted at once (a web app's ID token) carries: the tenant's when
    /// the request began at the tenant-level endpoint ([`crate::external_id`]).
    pub authority: Authority,
    /// A web app's hybrid request (`code id_token`): a code is posted beside the ID token.
    pub web_code: bool,
}

/// The parameters that must survive the sign-in and sign-up pages.
const CARRIED: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    AUTHORITY,
];

/// The journey's own field naming the tenant-level shape (like B2C's internal `tx`).
pub(crate) const AUTHORITY: &str = "authority";

/// Where each page's form posts, after the authorize URL.
pub(crate) const SIGN_IN: &str = "";
pub(crate) const SIGN_UP: &str = "/signup";

pub enum AuthorizeError {
    /// Shown to the user; nothing is sent to the (untrusted) redirect URI.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// Sent back to the validated redirect URI.
    Redirect {
        to: String,
    },
    /// Posted back to a web app's validated redirect URI.
    FormPost {
        to: String,
        params: Vec<(String, String)>,
    },
    /// Every hash slot is taken and the client is not a browser: 503, retry shortly.
    Busy,
    Internal(String),
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            Self::Page {
                status,
                title,
                message,
            } => pages::error(status, title, &message),
            Self::Redirect { to } => redirect(StatusCode::FOUND, &to, None),
            Self::FormPost { to, params } => web_app::form_post(&to, &params),
            Self::Busy => retry_soon(
                (StatusCode::SERVICE_UNAVAILABLE, password::BUSY_MESSAGE).into_response(),
            ),
            Self::Internal(detail) => {
                tracing::error!(%detail, "authorization failed");
                pages::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The sign-in service had a problem. Please try again.",
                )
            }
        }
    }
}

pub(crate) fn page(
    status: StatusCode,
    title: &'static str,
    message: impl Into<String>,
) -> AuthorizeError {
    AuthorizeError::Page {
        status,
        title,
        message: message.into(),
    }
}

fn redirect(status: StatusCode, to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// The answer when no hash slot is free: browsers get the form again with the message (still
/// 503, so scripts can tell), other clients a plain 503; both say when to retry.
pub(crate) fn busy(headers: &HeaderMap, form: impl FnOnce(StatusCode) -> Response) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !html {
        return AuthorizeError::Busy.into_response();
    }
    retry_soon(form(StatusCode::SERVICE_UNAVAILABLE))
}

/// A busy answer says when to try again: a hash slot frees within a second or so.
fn retry_soon(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `redirect_uri` with the response parameters in its query or fragment.
pub fn response_url(redirect_uri: &str, mode: ResponseMode, params: &[(&str, &str)]) -> String {
    match mode {
        ResponseMode::Fragment => {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            format!("{redirect_uri}#{encoded}")
        }
        ResponseMode::Query | ResponseMode::FormPost => match Url::parse(redirect_uri) {
            Ok(mut url) => {
                url.query_pairs_mut().extend_pairs(params);
                url.to_string()
            }
            Err(_) => redirect_uri.to_owned(),
        },
    }
}

/// Form or query parameters; a repeated parameter is an error (RFC 6749 §3.1).
pub fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("The parameter '{k}' was given more than once."));
        }
    }
    Ok(map)
}

impl AuthRequest {
    /// Validates in the order that decides who may see an error: client and redirect URI first.
    pub fn validate(
        state: &AppState,
        policy: &str,
        p: &HashMap<String, String>,
    ) -> Result<Self, AuthorizeError> {
        let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let client_id = get("client_id").ok_or_else(|| {
            page(
                StatusCode::BAD_REQUEST,
                "Sign-in request refused",
                "The request has no client_id.",
            )
        })?;
        if let Some(api) = state.config.web_app(client_id) {
            return web_app::validate(api, policy, p);
        }
        let spa = state
            .config
            .spas
            .iter()
            .find(|s| s.client_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| {
                page(
                    StatusCode::BAD_REQUEST,
                    "Sign-in request refused",
                    format!("AADB2C90117: The application '{client_id}' is not registered in this tenant."),
                )
            })?;
        let redirect_uri = get("redirect_uri").ok_or_else(|| {
            page(
                StatusCode::BAD_REQUEST,
                "Sign-in request refused",
                "The request has no redirect_uri.",
            )
        })?;
        if !spa.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "Sign-in request refused",
                format!(
                    "AADB2C90006: The redirect URI '{redirect_uri}' provided in the request is not registered \
                     for the client id '{client_id}'."
                ),
            ));
        }
        let state_param = get("state").map(str::to_owned);
        let response_mode = match get("response_mode") {
            None | Some("query") => ResponseMode::Query,
            Some("fragment") => ResponseMode::Fragment,
            Some(other) => {
                return Err(redirect_error(
                    redirect_uri,
                    ResponseMode::Query,
                    state_param.as_deref(),
                    "invalid_request",
                    &format!(
                        "The response_mode '{other}' is not supported; use 'query' or 'fragment'."
                    ),
                ));
            }
        };
        let fail = |error: &str, description: &str| {
            redirect_error(
                redirect_uri,
                response_mode,
                state_param.as_deref(),
                error,
                description,
            )
        };
        match get("response_type") {
            Some("code") => {}
            None => return Err(fail("invalid_request", "The request has no response_type.")),
            Some(other) => {
                return Err(fail(
                    "unsupported_response_type",
                    &format!("The response_type '{other}' is not supported; use 'code'."),
                ));
            }
        }
        let granted = scope::resolve(&state.config, spa, get("scope").unwrap_or(""))
            .map_err(|description| fail("invalid_scope", &description))?;
        let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
            (None, _) => {
                return Err(fail(
                    "invalid_request",
                    "AADB2C90183: PKCE is required for public clients: send code_challenge with method S256.",
                ));
            }
            (Some(_), None | Some("plain")) => {
                return Err(fail(
                    "invalid_request",
                    "The code_challenge_method must be 'S256'; 'plain' is not allowed.",
                ));
            }
            (Some(c), Some("S256")) if pkce::valid_challenge(c) => c.to_owned(),
            (Some(_), Some("S256")) => {
                return Err(fail(
                    "invalid_request",
                    "The code_challenge is not a base64url SHA-256 value.",
                ));
            }
            (Some(_), Some(other)) => {
                return Err(fail(
                    "invalid_request",
                    &format!("The code_challenge_method '{other}' is not supported; use 'S256'."),
                ));
            }
        };
        Ok(Self {
            policy: policy.to_owned(),
            client_id: spa.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            response_mode,
            state: state_param,
            nonce: get("nonce").map(str::to_owned),
            granted,
            code_challenge,
            prompt: get("prompt").map(str::to_owned),
            login_hint: get("login_hint").map(str::to_owned),
            authority: Authority::UserFlow,
            web_code: false,
        })
    }

    /// The error redirect for this (valid) request.
    pub fn error(&self, error: &str, description: &str) -> AuthorizeError {
        redirect_error(
            &self.redirect_uri,
            self.response_mode,
            self.state.as_deref(),
            error,
            description,
        )
    }
}

fn redirect_error(
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> AuthorizeError {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    if mode == ResponseMode::FormPost {
        return AuthorizeError::FormPost {
            to: redirect_uri.to_owned(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
    }
    AuthorizeError::Redirect {
        to: response_url(redirect_uri, mode, &params),
    }
}

/// The policy named by the path, or a 404 page.
pub(crate) fn policy(
    state: &AppState,
    tenant: &str,
    policy: &str,
) -> Result<String, AuthorizeError> {
    state.resolve(tenant, policy).ok_or_else(|| {
        page(
            StatusCode::NOT_FOUND,
            "Unknown tenant or user flow",
            format!("AADB2C90008: The tenant or user flow '{tenant}/{policy}' does not exist."),
        )
    })
}

pub(crate) fn query_params(query: Option<&str>) -> Result<HashMap<String, String>, AuthorizeError> {
    parse_params(query.unwrap_or("").as_bytes())
        .map_err(|m| page(StatusCode::BAD_REQUEST, "Sign-in request refused", m))
}

/// A form just proved who the user is (sign-in or sign-up): start the SSO session and send the
/// browser back to the app with a code.
pub(crate) async fn signed_in(
    state: &AppState,
    req: &AuthRequest,
    user_id: &str,
) -> Result<Response, AuthorizeError> {
    let (session, cookie) = session::start(state, user_id).await?;
    complete(
        state,
        req,
        user_id,
        session.auth_time,
        Some(cookie),
        StatusCode::SEE_OTHER,
    )
    .await
}

/// Issues a code for `user` and redirects to the app with it.
pub(crate) async fn complete(
    state: &AppState,
    req: &AuthRequest,
    user_id: &str,
    auth_time: i64,
    cookie: Option<HeaderValue>,
    status: StatusCode,
) -> Result<Response, AuthorizeError> {
    if req.response_mode == ResponseMode::FormPost {
        return web_app::respond(state, req, user_id, auth_time, cookie).await;
    }
    let code = issue_code(state, req, user_id, auth_time).await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    Ok(redirect(
        status,
        &response_url(&req.redirect_uri, req.response_mode, &params),
        cookie,
    ))
}

/// Stores a code for `user_id` bound to this request's client, redirect URI, nonce and PKCE
/// challenge (none for a web app's hybrid flow, whose code only its secret redeems).
pub(crate) async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    user_id: &str,
    auth_time: i64,
) -> Result<String, AuthorizeError> {
    let code = random_token();
    let record = CodeRecord {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        user_id: user_id.to_owned(),
        scopes: req.granted.joined(),
        policy: req.policy.clone(),
        auth_time,
        expires_at: now() + state.config.lifetimes.authorization_code_seconds as i64,
    };
    let hash = secret_hash(&code);
    state
        .store
        .run(move |s| s.insert_code(&hash, &record))
        .await?;
    Ok(code)
}

/// Hidden fields, link targets and CSRF cookie for the pages of one authorization request.
pub(crate) struct Journey {
    hidden: Vec<(String, String)>,
    carried_query: String,
    csrf_cookie: Option<HeaderValue>,
    base: String,
    tenant: String,
    /// Whether the flow offers "Sign up now" (only sign-up-or-sign-in flows do).
    sign_up: bool,
}

impl Journey {
    pub(crate) fn new(
        state: &AppState,
        headers: &HeaderMap,
        policy: &str,
        params: &HashMap<String, String>,
    ) -> Self {
        let (token, csrf_cookie) = state.csrf.token(headers, state.secure_cookies);
        let carried: Vec<(String, String)> = CARRIED
            .iter()
            .filter_map(|k| params.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        let carried_query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&carried)
            .finish();
        let mut hidden = carried;
        hidden.push((csrf::FIELD.to_owned(), token));
        let base = format!(
            "/{}/{}/oauth2/v2.0/authorize",
            state.config.tenant.domain(),
            policy.to_ascii_lowercase()
        );
        Self {
            hidden,
            carried_query,
            csrf_cookie,
            base,
            tenant: state.config.tenant.domain(),
            sign_up: state.flow_kind(policy) == FlowKind::SignUpSignIn,
        }
    }

    /// The page `body` renders, its form posting to the authorize URL plus `step`.
    pub(crate) fn render(
        &self,
        status: StatusCode,
        body: impl FnOnce(&FormContext<'_>) -> String,
        step: &str,
        error: Option<&str>,
    ) -> Response {
        let action = format!("{}{step}", self.base);
        let signup_href = if self.sign_up {
            format!("{}/signup?{}", self.base, self.carried_query)
        } else {
            String::new()
        };
        let forgot_href = format!("{}/forgot?{}", self.base, self.carried_query);
        let cancel_href = format!("{}/cancel?{}", self.base, self.carried_query);
        let ctx = FormContext {
            tenant: &self.tenant,
            action: &action,
            hidden: &self.hidden,
            signup_href: &signup_href,
            forgot_href: &forgot_href,
            cancel_href: &cancel_href,
            error,
        };
        let mut response = pages::html(status, body(&ctx));
        if let Some(cookie) = &self.csrf_cookie {
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        response
    }
}

/// `GET …/oauth2/v2.0/authorize`: validate, then use the SSO session or show the sign-in page.
pub async fn start(
    State(state): State<Arc<AppState>>,
    Path((tenant, policy_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AuthorizeError> {
    let policy = policy(&state, &tenant, &policy_name)?;
    let params = query_params(query.as_deref())?;
    begin(&state, &policy, &params, &headers).await
}

/// The authorization request of `policy`, wherever it arrived: the SSO session or the flow's
/// first page.
pub(crate) async fn begin(
    state: &AppState,
    policy: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, AuthorizeError> {
    let req = AuthRequest::validate(state, policy, params)?;
    let kind = state.flow_kind(policy);
    if kind == FlowKind::PasswordReset {
        let journey = Journey::new(state, headers, policy, params);
        return Ok(password_reset::email_page(
            &journey,
            StatusCode::OK,
            "",
            None,
        ));
    }
    let prompt = req.prompt.as_deref().unwrap_or("");
    let forced = prompt.split_whitespace().any(|p| p == "login");
    if !forced && let Some(session) = session::current(state, headers).await? {
        // A session whose user has since been deleted counts as none.
        let user_id = session.user_id.clone();
        if let Some(user) = state.store.run(move |s| s.user_by_id(&user_id)).await? {
            if kind == FlowKind::ProfileEdit {
                let journey = Journey::new(state, headers, policy, params);
                return Ok(profile::page(&journey, StatusCode::OK, &user, None, None));
            }
            return complete(
                state,
                &req,
                &session.user_id,
                session.auth_time,
                None,
                StatusCode::FOUND,
            )
            .await;
        }
    }
    if prompt.split_whitespace().any(|p| p == "none") {
        return Err(req.error(
            "login_required",
            "AADB2C90077: User does not have an existing session and request prompt parameter has a value of 'None'.",
        ));
    }
    let journey = Journey::new(state, headers, policy, params);
    let hint = req.login_hint.clone().unwrap_or_default();
    Ok(journey.render(
        StatusCode::OK,
        |ctx| pages::sign_in(ctx, &hint),
        SIGN_IN,
        None,
    ))
}

/// Parses a posted form and checks its origin and CSRF token before anything else.
pub(crate) fn posted_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<HashMap<String, String>, AuthorizeError> {
    let form =
        parse_params(body).map_err(|m| page(StatusCode::BAD_REQUEST, "Request refused", m))?;
    if !csrf::same_origin(headers, &state.origin())
        || !state
            .csrf
            .verify(headers, form.get(csrf::FIELD).map(String::as_str))
    {
        return Err(page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not submitted from this sign-in page (missing or wrong CSRF token). \
             Go back to the application and sign in again.",
        ));
    }
    Ok(form)
}

/// `POST …/oauth2/v2.0/authorize`: the sign-in form.
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    Path((tenant, policy_name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthorizeError> {
    let policy = policy(&state, &tenant, &policy_name)?;
    let form = posted_form(&state, &headers, &body)?;
    let req = AuthRequest::validate(&state, &policy, &form)?;
    let name = form
        .get("signInName")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let given = form.get("password").cloned().unwrap_or_default();
    let journey = Journey::new(&state, &headers, &policy, &form);
    let answer = |status: StatusCode, message: &str| {
        journey.render(
            status,
            |ctx| pages::sign_in(ctx, &name),
            SIGN_IN,
            Some(message),
        )
    };
    let retry = |message: &str| answer(StatusCode::OK, message);

    if name.is_empty() || given.is_empty() {
        return Ok(retry("Please enter your email address and password."));
    }
    // The slot comes before the lockout reservation: a busy answer must not count as a guess.
    let Some(slot) = state.hashing.slot().await else {
        return Ok(busy(&headers, |status| {
            answer(status, password::BUSY_MESSAGE)
        }));
    };
    let key = lockout::key(&name);
    let (reserve_key, lookup_key) = (key.clone(), key.clone());
    let decide = lockout::after_failure(&state.config.lockout, now());
    let attempt = state
        .store
        .run(move |s| s.reserve_attempt(&reserve_key, now(), decide))
        .await?;
    let Attempt::Reserved(after) = attempt else {
        return Ok(retry(lockout::LOCKED_MESSAGE));
    };
    let user = state
        .store
        .run(move |s| s.user_by_email(&lookup_key))
        .await?;
    // Unknown names are checked against a decoy hash so both cases take the same time.
    let stored_hash = user
        .as_ref()
        .map_or_else(|| state.decoy_hash.clone(), |u| u.password_hash.clone());
    let matches = slot
        .verify(given, stored_hash)
        .await
        .map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    match user {
        Some(user) if matches => {
            state.store.run(move |s| s.clear_failures(&key)).await?;
            if state.flow_kind(&policy) == FlowKind::ProfileEdit {
                // Profile edit signs in first, then shows the profile form in the new session.
                let (_, cookie) = session::start(&state, &user.id).await?;
                return Ok(profile::page(
                    &journey,
                    StatusCode::OK,
                    &user,
                    Some(cookie),
                    None,
                ));
            }
            signed_in(&state, &req, &user.id).await
        }
        // The reservation already counted this failure.
        _ if lockout::is_locked(&after, now()) => Ok(retry(lockout::LOCKED_MESSAGE)),
        _ => Ok(retry(lockout::INVALID_MESSAGE)),
    }
}

/// The path's policy when it is a sign-up-or-sign-in flow: only those create accounts.
fn sign_up_policy(state: &AppState, tenant: &str, name: &str) -> Result<String, AuthorizeError> {
    let policy = policy(state, tenant, name)?;
    if state.flow_kind(&policy) != FlowKind::SignUpSignIn {
        return Err(page(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("The user flow '{policy}' has no sign-up page."),
        ));
    }
    Ok(policy)
}

/// `GET …/authorize/signup`: the sign-up page.
pub async fn sign_up_page(
    State(state): State<Arc<AppState>>,
    Path((tenant, policy_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AuthorizeError> {
    let policy = sign_up_policy(&state, &tenant, &policy_name)?;
    let params = query_params(query.as_deref())?;
    AuthRequest::validate(&state, &policy, &params)?;
    let journey = Journey::new(&state, &headers, &policy, &params);
    Ok(journey.render(
        StatusCode::OK,
        |ctx| pages::sign_up(ctx, "", ""),
        SIGN_UP,
        None,
    ))
}

/// `POST …/authorize/signup`: creates the account, signs it in and returns to the app.
pub async fn sign_up(
    State(state): State<Arc<AppState>>,
    Path((tenant, policy_name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthorizeError> {
    let policy = sign_up_policy(&state, &tenant, &policy_name)?;
    let form = posted_form(&state, &headers, &body)?;
    let req = AuthRequest::validate(&state, &policy, &form)?;
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (email, display_name) = (
        field("email").trim().to_owned(),
        field("displayName").trim().to_owned(),
    );
    let (new_password, reentered) = (field("newPassword"), field("reenterPassword"));
    let journey = Journey::new(&state, &headers, &policy, &form);
    let answer = |status: StatusCode, message: &str| {
        journey.render(
            status,
            |ctx| pages::sign_up(ctx, &email, &display_name),
            SIGN_UP,
            Some(message),
        )
    };
    let retry = |message: &str| answer(StatusCode::OK, message);

    if !password::plausible_email(&email) {
        return Ok(retry("Please enter a valid email address."));
    }
    if let Err(message) = password::check_display_name(&display_name) {
        return Ok(retry(message));
    }
    if let Err(message) = password::check_rules(&new_password) {
        return Ok(retry(message));
    }
    if new_password != reentered {
        return Ok(retry(
            "The password entry fields do not match. Please enter the same password in both fields and try again.",
        ));
    }
    let Some(slot) = state.hashing.slot().await else {
        return Ok(busy(&headers, |status| {
            answer(status, password::BUSY_MESSAGE)
        }));
    };
    let hash = slot
        .hash(new_password)
        .await
        .map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.clone(),
        display_name: display_name.clone(),
        password_hash: hash,
    };
    let stored = user.clone();
    if state
        .store
        .run(move |s| s.insert_user(&stored, now()))
        .await?
        == Inserted::EmailTaken
    {
        return Ok(retry(
            "A user with the specified ID already exists. Please choose a different one.",
        ));
    }
    tracing::info!("new account signed up");
    signed_in(&state, &req, &user.id).await
}

/// `GET …/authorize/forgot`: B2C's sign-up-or-sign-in flow hands password reset back to the app.
pub async fn forgot_password(
    State(state): State<Arc<AppState>>,
    Path((tenant, policy_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, AuthorizeError> {
    let policy = policy(&state, &tenant, &policy_name)?;
    let req = AuthRequest::validate(&state, &policy, &query_params(query.as_deref())?)?;
    Err(req.error(
        "access_denied",
        "AADB2C90118: The user has forgotten their password.",
    ))
}

/// `GET …/authorize/cancel`: the user gave up on signing up.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path((tenant, policy_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, AuthorizeError> {
    let policy = policy(&state, &tenant, &policy_name)?;
    let req = AuthRequest::validate(&state, &policy, &query_params(query.as_deref())?)?;
    Err(req.error(
        "access_denied",
        "AADB2C90091: The user has cancelled entering self-asserted information.",
    ))
}
