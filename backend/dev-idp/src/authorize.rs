//! The authorization endpoint and the user journey behind it: sign-in, sign-up, "Forgot your
//! password?" and cancel. The password-reset and profile-edit user flows start here too and
//! continue in [`crate::password_reset`] and [`crate::profile`].
//!
//! The authorization request travels with the user as hidden form fields and link query strings
//! and is validated again on every step, so no half-finished login lives on the server. Until the
//! client and redirect URI are known good, errors are shown as a page and never redirected.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::config::{FlowKind, SpaApp};
use crate::error_code::ErrorCode;
use crate::internal_error::InternalError;
use crate::oauth::{AuthorizationCode, ClientId, CodeChallenge, RedirectUri};
use crate::pages::{self, FormContext};
use crate::scope::{self, Granted};
use crate::store::{Attempt, CodeRecord, Grant, Inserted, StoreError, User};
use crate::tokens::Authority;
use crate::user_flow::{Flow, Policy, UnknownFlow};
use crate::{AppState, csrf, lockout, now, password, password_reset, profile, session, web_app};

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
    pub policy: Policy,
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub granted: Granted,
    /// `None` only for a web app ([`crate::web_app`]): public clients must send one.
    pub code_challenge: Option<CodeChallenge>,
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
            Self::Internal(detail) => InternalError {
                what: "authorization",
                detail,
            }
            .attach(pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The sign-in service had a problem. Please try again.",
            )),
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

const REFUSED: &str = "Sign-in request refused";

/// A request parameter, absent when empty.
pub(crate) fn param<'a>(p: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// The registered app and one of its redirect URIs. Until both are known good nothing may be
/// sent to the redirect URI, so each of these errors is a page.
fn trusted_client<'a>(
    state: &'a AppState,
    p: &'a HashMap<String, String>,
) -> Result<(&'a SpaApp, &'a str), AuthorizeError> {
    let client_id = param(p, "client_id").ok_or_else(|| {
        page(
            StatusCode::BAD_REQUEST,
            REFUSED,
            "The request has no client_id.",
        )
    })?;
    let spa = state
        .config
        .spas
        .iter()
        .find(|s| s.client_id.eq_ignore_ascii_case(client_id))
        .ok_or_else(|| {
            page(
                StatusCode::BAD_REQUEST,
                REFUSED,
                format!(
                    "AADB2C90117: The application '{client_id}' is not registered in this tenant."
                ),
            )
        })?;
    let redirect_uri = registered_redirect_uri(p, &spa.redirect_uris, client_id)?;
    Ok((spa, redirect_uri))
}

/// The request's `redirect_uri` when it is one of `registered` (exactly), else an error page
/// naming `client_id`.
pub(crate) fn registered_redirect_uri<'a>(
    p: &'a HashMap<String, String>,
    registered: &[String],
    client_id: &str,
) -> Result<&'a str, AuthorizeError> {
    let redirect_uri = param(p, "redirect_uri").ok_or_else(|| {
        page(
            StatusCode::BAD_REQUEST,
            REFUSED,
            "The request has no redirect_uri.",
        )
    })?;
    if !registered.iter().any(|r| r == redirect_uri) {
        return Err(page(
            StatusCode::BAD_REQUEST,
            REFUSED,
            format!(
                "AADB2C90006: The redirect URI '{redirect_uri}' provided in the request is not registered \
                 for the client id '{client_id}'."
            ),
        ));
    }
    Ok(redirect_uri)
}

/// PKCE with S256 (public clients must use it; `plain` is refused).
fn code_challenge(p: &HashMap<String, String>) -> Result<CodeChallenge, (ErrorCode, String)> {
    let invalid = |description: &str| Err((ErrorCode::InvalidRequest, description.to_owned()));
    match (
        param(p, "code_challenge"),
        param(p, "code_challenge_method"),
    ) {
        (None, _) => invalid(
            "AADB2C90183: PKCE is required for public clients: send code_challenge with method S256.",
        ),
        (Some(_), None | Some("plain")) => {
            invalid("The code_challenge_method must be 'S256'; 'plain' is not allowed.")
        }
        (Some(c), Some("S256")) => CodeChallenge::parse(c).ok_or_else(|| {
            (
                ErrorCode::InvalidRequest,
                "The code_challenge is not a base64url SHA-256 value.".to_owned(),
            )
        }),
        (Some(_), Some(other)) => invalid(&format!(
            "The code_challenge_method '{other}' is not supported; use 'S256'."
        )),
    }
}

/// `response_type=code`, the only one a public client gets.
fn response_type(p: &HashMap<String, String>) -> Result<(), (ErrorCode, String)> {
    match param(p, "response_type") {
        Some("code") => Ok(()),
        None => Err((
            ErrorCode::InvalidRequest,
            "The request has no response_type.".into(),
        )),
        Some(other) => Err((
            ErrorCode::UnsupportedResponseType,
            format!("The response_type '{other}' is not supported; use 'code'."),
        )),
    }
}

impl AuthRequest {
    /// Validates in the order that decides who may see an error: client and redirect URI first
    /// (a page), then the response mode (a redirect in the default mode), then the rest
    /// (redirected in the requested mode).
    pub fn validate(
        state: &AppState,
        policy: &Policy,
        p: &HashMap<String, String>,
    ) -> Result<Self, AuthorizeError> {
        if let Some(api) = param(p, "client_id").and_then(|id| state.config.web_app(id)) {
            return web_app::validate(api, policy, p);
        }
        let (spa, redirect_uri) = trusted_client(state, p)?;
        let state_param = param(p, "state").map(str::to_owned);
        let response_mode = match param(p, "response_mode") {
            None | Some("query") => ResponseMode::Query,
            Some("fragment") => ResponseMode::Fragment,
            Some(other) => {
                return Err(redirect_error(
                    redirect_uri,
                    ResponseMode::Query,
                    state_param.as_deref(),
                    ErrorCode::InvalidRequest,
                    &format!(
                        "The response_mode '{other}' is not supported; use 'query' or 'fragment'."
                    ),
                ));
            }
        };
        let fail = |(error, description): (ErrorCode, String)| {
            redirect_error(
                redirect_uri,
                response_mode,
                state_param.as_deref(),
                error,
                &description,
            )
        };
        response_type(p).map_err(fail)?;
        let requested = param(p, "scope").unwrap_or("").split_whitespace();
        let granted = scope::resolve(&state.config, spa, requested)
            .map_err(|description| fail((ErrorCode::InvalidScope, description)))?;
        let code_challenge = code_challenge(p).map_err(fail)?;
        Ok(Self {
            policy: policy.clone(),
            client_id: ClientId::new(spa.client_id.as_str()),
            redirect_uri: RedirectUri::new(redirect_uri),
            response_mode,
            nonce: param(p, "nonce").map(str::to_owned),
            granted,
            code_challenge: Some(code_challenge),
            prompt: param(p, "prompt").map(str::to_owned),
            login_hint: param(p, "login_hint").map(str::to_owned),
            state: state_param,
            authority: Authority::UserFlow,
            web_code: false,
        })
    }

    /// The error redirect for this (valid) request.
    pub fn error(&self, error: ErrorCode, description: &str) -> AuthorizeError {
        redirect_error(
            &self.redirect_uri,
            self.response_mode,
            self.state.as_deref(),
            error,
            description,
        )
    }
}

/// The error response for a request whose redirect URI is known good, in its response mode.
pub(crate) fn redirect_error(
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    error: ErrorCode,
    description: &str,
) -> AuthorizeError {
    let mut params = vec![
        ("error", error.as_str()),
        ("error_description", description),
    ];
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

/// The user journey's pages answer an unknown tenant or user flow with a 404 page.
impl UnknownFlow for AuthorizeError {
    fn unknown(tenant: &str, policy: &str) -> Self {
        page(
            StatusCode::NOT_FOUND,
            "Unknown tenant or user flow",
            format!("AADB2C90008: The tenant or user flow '{tenant}/{policy}' does not exist."),
        )
    }
}

/// The policy named by `tenant` and `policy`, or a 404 page.
pub(crate) fn policy(
    state: &AppState,
    tenant: &str,
    policy: &str,
) -> Result<Policy, AuthorizeError> {
    state
        .resolve(tenant, policy)
        .ok_or_else(|| AuthorizeError::unknown(tenant, policy))
}

pub(crate) fn query_params(query: Option<&str>) -> Result<HashMap<String, String>, AuthorizeError> {
    parse_params(query.unwrap_or("").as_bytes())
        .map_err(|m| page(StatusCode::BAD_REQUEST, "Sign-in request refused", m))
}

/// A GET step's opening, done once: the user flow resolved from the path, the query's parameters,
/// and the authorization request they carry, validated. Rejected with the same pages (or
/// redirects) the handlers would answer.
pub struct QueryAuthRequest {
    pub policy: Policy,
    pub params: HashMap<String, String>,
    pub req: AuthRequest,
}

impl FromRequestParts<Arc<AppState>> for QueryAuthRequest {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Flow { policy, .. } = Flow::<AuthorizeError>::from_request_parts(parts, state).await?;
        let opened = query_params(parts.uri.query()).and_then(|params| {
            let req = AuthRequest::validate(state, &policy, &params)?;
            Ok((params, req))
        });
        let (params, req) = opened.map_err(IntoResponse::into_response)?;
        Ok(Self {
            policy,
            params,
            req,
        })
    }
}

/// Which user flows a posted step belongs to; under any other its path answers 404.
pub trait StepOf {
    fn admits(state: &AppState, policy: &Policy) -> Result<(), AuthorizeError>;
}

/// A step every user flow has (the sign-in form).
pub struct AnyFlow;

impl StepOf for AnyFlow {
    fn admits(_: &AppState, _: &Policy) -> Result<(), AuthorizeError> {
        Ok(())
    }
}

/// A posted step's opening, done once: the user flow resolved from the path (one `K` admits),
/// the form (its origin and CSRF token checked first), the authorization request it carries,
/// validated, and the journey it continues. Rejected with the pages the handlers answered.
pub struct PostedStep<K> {
    pub(crate) policy: Policy,
    pub(crate) form: HashMap<String, String>,
    pub(crate) req: AuthRequest,
    pub(crate) journey: Journey,
    kind: PhantomData<fn() -> K>,
}

impl<K: StepOf> FromRequest<Arc<AppState>> for PostedStep<K> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Flow { policy, .. } =
            Flow::<AuthorizeError>::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Self::open(state, policy, &headers, &body).map_err(IntoResponse::into_response)
    }
}

impl<K: StepOf> PostedStep<K> {
    /// The step under `policy` from the request's headers and body.
    pub(crate) fn open(
        state: &AppState,
        policy: Policy,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, AuthorizeError> {
        K::admits(state, &policy)?;
        let form = posted_form(state, headers, body)?;
        let req = AuthRequest::validate(state, &policy, &form)?;
        let journey = Journey::new(state, headers, &policy, &form);
        Ok(Self {
            policy,
            form,
            req,
            journey,
            kind: PhantomData,
        })
    }
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
    let mut params = vec![("code", code.secret())];
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
) -> Result<AuthorizationCode, AuthorizeError> {
    let code = AuthorizationCode::random();
    let record = CodeRecord {
        grant: Grant {
            user_id: user_id.to_owned(),
            client_id: req.client_id.clone(),
            scopes: req.granted.scopes.clone(),
            policy: req.policy.clone(),
            auth_time,
            expires_at: now() + state.config.lifetimes.authorization_code_seconds as i64,
        },
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
    };
    let hash = code.hash();
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
    Flow { policy, .. }: Flow<AuthorizeError>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AuthorizeError> {
    let params = query_params(query.as_deref())?;
    begin(&state, &policy, &params, &headers).await
}

/// The authorization request of `policy`, wherever it arrived: the SSO session or the flow's
/// first page.
pub(crate) async fn begin(
    state: &AppState,
    policy: &Policy,
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
            ErrorCode::LoginRequired,
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
    headers: HeaderMap,
    PostedStep {
        policy,
        form,
        req,
        journey,
        ..
    }: PostedStep<AnyFlow>,
) -> Result<Response, AuthorizeError> {
    let name = form
        .get("signInName")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let given = form.get("password").cloned().unwrap_or_default();
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
fn sign_up_policy(state: &AppState, policy: Policy) -> Result<Policy, AuthorizeError> {
    require_kind(
        state,
        &policy,
        FlowKind::SignUpSignIn,
        "has no sign-up page",
    )?;
    Ok(policy)
}

/// A 404 page unless `policy` is a flow of `kind`; `otherwise` ends its message.
pub(crate) fn require_kind(
    state: &AppState,
    policy: &Policy,
    kind: FlowKind,
    otherwise: &str,
) -> Result<(), AuthorizeError> {
    if state.flow_kind(policy) != kind {
        return Err(page(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("The user flow '{policy}' {otherwise}."),
        ));
    }
    Ok(())
}

/// Posts to the sign-up page: sign-up-or-sign-in flows only.
pub struct SignUpFlow;

impl StepOf for SignUpFlow {
    fn admits(state: &AppState, policy: &Policy) -> Result<(), AuthorizeError> {
        sign_up_policy(state, policy.clone()).map(drop)
    }
}

/// `GET …/authorize/signup`: the sign-up page.
pub async fn sign_up_page(
    State(state): State<Arc<AppState>>,
    Flow { policy, .. }: Flow<AuthorizeError>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AuthorizeError> {
    let policy = sign_up_policy(&state, policy)?;
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
    headers: HeaderMap,
    PostedStep {
        form, req, journey, ..
    }: PostedStep<SignUpFlow>,
) -> Result<Response, AuthorizeError> {
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (email, display_name) = (
        field("email").trim().to_owned(),
        field("displayName").trim().to_owned(),
    );
    let (new_password, reentered) = (field("newPassword"), field("reenterPassword"));
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
pub async fn forgot_password(QueryAuthRequest { req, .. }: QueryAuthRequest) -> AuthorizeError {
    req.error(
        ErrorCode::AccessDenied,
        "AADB2C90118: The user has forgotten their password.",
    )
}

/// `GET …/authorize/cancel`: the user gave up on signing up.
pub async fn cancel(QueryAuthRequest { req, .. }: QueryAuthRequest) -> AuthorizeError {
    req.error(
        ErrorCode::AccessDenied,
        "AADB2C90091: The user has cancelled entering self-asserted information.",
    )
}
