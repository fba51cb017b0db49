//! The token endpoint: `authorization_code` (with PKCE), `refresh_token` (rotated on every use,
//! reuse revokes the family) and `client_credentials` (confidential clients, app roles).
//! Errors are RFC 6749 §5.2 JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::authorize::parse_params;
use crate::config::{ApiApp, DaemonApp, SpaApp};
use crate::error_code::ErrorCode;
use crate::internal_error::InternalError;
use crate::keys::KeyError;
use crate::oauth::{AuthorizationCode, ClientId, CodeVerifier, PresentedSecret, RefreshToken};
use crate::scope;
use crate::store::{CodeRecord, Family, Grant, Redemption, Rotation, StoreError, User};
use crate::tokens::{self, Authority, UserGrant};
use crate::user_flow::{Flow, Policy, UnknownFlow};
use crate::{AppState, now};

/// A refusal of the token endpoint: RFC 6749 §5.2's code (from [`TokenError::code`]) and a
/// description.
#[derive(Debug)]
pub enum TokenError {
    InvalidRequest(String),
    InvalidClient {
        description: String,
        basic: bool,
    },
    InvalidGrant(String),
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    InvalidScope(String),
    /// The provider's own failure: the client gets a generic 500, the detail goes to the log.
    Server(String),
}

const SERVER_ERROR_DESCRIPTION: &str = "The server had a problem; try again.";

impl TokenError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::InvalidClient { .. } => ErrorCode::InvalidClient,
            Self::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Self::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            Self::InvalidScope(_) => ErrorCode::InvalidScope,
            Self::Server(_) => ErrorCode::ServerError,
        }
    }

    /// What the client is told.
    fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient { description: d, .. }
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d) => d,
            Self::Server(_) => SERVER_ERROR_DESCRIPTION,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server(detail) => write!(f, "{}: {detail}", self.code()),
            _ => write!(f, "{}: {}", self.code(), self.description()),
        }
    }
}

impl std::error::Error for TokenError {}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        Self::Server(e.to_string())
    }
}

impl From<KeyError> for TokenError {
    fn from(e: KeyError) -> Self {
        Self::Server(e.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            Json(ErrorBody {
                error: self.code().as_str(),
                error_description: self.description(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        no_store(headers);
        match self {
            Self::InvalidClient { basic: true, .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"dev-idp\""),
                );
                response
            }
            Self::Server(detail) => InternalError {
                what: "token endpoint",
                detail,
            }
            .attach(response),
            _ => response,
        }
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A successful response: B2C's fields, including `scope` (MSAL caches tokens under it).
#[derive(Serialize, Default)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    ext_expires_in: u64,
    not_before: i64,
    expires_on: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token_expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_info: Option<String>,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        no_store(response.headers_mut());
        response
    }
}

/// The token request's parameters (RFC 6749 §4.1.3, §4.4.2, §6; §2.3.1's `client_secret`),
/// each once; others are ignored, as the RFC asks.
/// A grant's own parameters (`code`, `redirect_uri`, `code_verifier`, `refresh_token`) count as
/// absent when empty.
#[derive(Debug, Default)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<ClientId>,
    client_secret: Option<PresentedSecret>,
    code: Option<AuthorizationCode>,
    redirect_uri: Option<String>,
    code_verifier: Option<CodeVerifier>,
    refresh_token: Option<RefreshToken>,
    scope: Option<String>,
}

impl TokenForm {
    /// From the parsed body (in which a repeated parameter is already an error).
    fn new(mut params: HashMap<String, String>) -> Self {
        let mut take = |name: &str| params.remove(name);
        let grant_type = take("grant_type");
        let client_id = take("client_id").map(ClientId::new);
        let client_secret = take("client_secret").map(PresentedSecret::new);
        let scope = take("scope");
        let mut given = |name: &str| take(name).filter(|v| !v.is_empty());
        Self {
            grant_type,
            client_id,
            client_secret,
            code: given("code").map(AuthorizationCode::new),
            redirect_uri: given("redirect_uri"),
            code_verifier: given("code_verifier").map(CodeVerifier::new),
            refresh_token: given("refresh_token").map(RefreshToken::new),
            scope,
        }
    }
}

/// The authenticated (or, for SPAs, identified) caller.
enum Client<'a> {
    Spa(&'a SpaApp),
    Daemon(&'a DaemonApp),
    /// An API app's web registration with a secret: EasyAuth redeeming its hybrid-flow code.
    Web(&'a ApiApp),
}

fn sha256(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The client id and secret a request presents, and whether through HTTP Basic (whose refusals
/// carry a `WWW-Authenticate` challenge).
struct Credentials {
    client_id: ClientId,
    secret: Option<PresentedSecret>,
    basic: bool,
}

fn invalid_client(basic: bool, description: &str) -> TokenError {
    TokenError::InvalidClient {
        description: description.into(),
        basic,
    }
}

/// `client_secret_basic`, `client_secret_post`, or a public client's bare `client_id`.
fn authenticate<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<Client<'a>, TokenError> {
    let Credentials {
        client_id,
        secret,
        basic,
    } = credentials(headers, form)?;
    if let Some(secret) = secret {
        let confidential = match state
            .config
            .daemons
            .iter()
            .find(|d| d.client_id.eq_ignore_ascii_case(&client_id))
        {
            Some(d) => Some((Client::Daemon(d), d.client_secret.as_str())),
            None => state.config.web_app(&client_id).and_then(|a| {
                let secret = a.web_client_secret.as_ref()?;
                Some((Client::Web(a), secret.expose()))
            }),
        };
        // Compare digests in constant time; an unknown client still costs one comparison.
        let expected = sha256(confidential.as_ref().map_or("", |(_, s)| s));
        let ok = bool::from(expected.ct_eq(&sha256(secret.secret())));
        return match confidential {
            Some((client, _)) if ok => Ok(client),
            _ => Err(invalid_client(
                basic,
                "The client id or secret is not valid.",
            )),
        };
    }
    if let Some(spa) = state
        .config
        .spas
        .iter()
        .find(|s| s.client_id.eq_ignore_ascii_case(&client_id))
    {
        return Ok(Client::Spa(spa));
    }
    let web_secret = state
        .config
        .web_app(&client_id)
        .is_some_and(|a| a.web_client_secret.is_some());
    if web_secret
        || state
            .config
            .daemons
            .iter()
            .any(|d| d.client_id.eq_ignore_ascii_case(&client_id))
    {
        return Err(invalid_client(
            false,
            "This confidential client must authenticate with its secret.",
        ));
    }
    Err(invalid_client(
        false,
        &format!("The application '{client_id}' is not registered in this tenant."),
    ))
}

/// From the `Authorization: Basic` header, else the form; one method only.
fn credentials(headers: &HeaderMap, form: &TokenForm) -> Result<Credentials, TokenError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let Some(encoded) = basic else {
        let client_id = form.client_id.clone().ok_or_else(|| {
            invalid_client(
                false,
                "The request has no client_id and no client authentication.",
            )
        })?;
        return Ok(Credentials {
            client_id,
            secret: form.client_secret.clone(),
            basic: false,
        });
    };
    if form.client_secret.is_some() {
        return Err(TokenError::InvalidRequest(
            "Use one client authentication method, not both Basic and client_secret.".into(),
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_client(true, "The Basic credentials are not valid base64."))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| invalid_client(true, "The Basic credentials have no ':'."))?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let client_id = ClientId::new(unescape(id));
    if form.client_id.as_ref().is_some_and(|f| *f != client_id) {
        return Err(TokenError::InvalidRequest(
            "client_id differs from the Basic credentials.".into(),
        ));
    }
    Ok(Credentials {
        client_id,
        secret: Some(PresentedSecret::new(unescape(secret))),
        basic: true,
    })
}

/// The token endpoint answers an unknown tenant or user flow as a bad request.
impl UnknownFlow for TokenError {
    fn unknown(tenant: &str, policy: &str) -> Self {
        Self::InvalidRequest(format!(
            "The tenant or user flow '{tenant}/{policy}' does not exist."
        ))
    }
}

/// `POST /{tenant}/{policy}/oauth2/v2.0/token`
pub async fn by_policy(
    State(state): State<Arc<AppState>>,
    Flow { policy, .. }: Flow<TokenError>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenError> {
    handle(&state, Some(policy), &headers, &body).await
}

/// `POST /{tenant}/oauth2/v2.0/token`: the tenant-level endpoint of Entra (seed 004's daemon)
/// and External ID (user sign-in), or with `?p={policy}` B2C's query form of a user flow's.
pub async fn by_tenant(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenError> {
    if !state.is_tenant(&tenant) {
        return Err(TokenError::InvalidRequest(format!(
            "The tenant '{tenant}' does not exist."
        )));
    }
    let policy = match query.get("p") {
        None => None,
        Some(name) => Some(state.resolve(&tenant, name).ok_or_else(|| {
            TokenError::InvalidRequest(format!("The user flow '{name}' does not exist."))
        })?),
    };
    handle(&state, policy, &headers, &body).await
}

async fn handle(
    state: &Arc<AppState>,
    policy: Option<Policy>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, TokenError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(TokenError::InvalidRequest(
            "The body must be application/x-www-form-urlencoded.".into(),
        ));
    }
    let form = TokenForm::new(parse_params(body).map_err(TokenError::InvalidRequest)?);
    let grant_type = form
        .grant_type
        .clone()
        .ok_or_else(|| TokenError::InvalidRequest("The request has no grant_type.".into()))?;
    let client = authenticate(state, headers, &form)?;
    let response = match (grant_type.as_str(), client) {
        ("authorization_code", Client::Spa(spa)) => {
            authorization_code(state, spa, policy, &form).await?
        }
        ("refresh_token", Client::Spa(spa)) => refresh_token(state, spa, policy, &form).await?,
        ("client_credentials", Client::Daemon(daemon)) => {
            client_credentials(state, daemon, authority_of(policy.as_ref()), &form).await?
        }
        ("authorization_code", Client::Web(api)) => {
            return web_authorization_code(state, api, policy, &form).await;
        }
        (_, Client::Web(_)) => {
            return Err(TokenError::UnauthorizedClient(format!(
                "This web app redeems its sign-in codes only, not {grant_type}."
            )));
        }
        ("authorization_code" | "refresh_token", Client::Daemon(_)) => {
            return Err(TokenError::UnauthorizedClient(format!(
                "This confidential client is registered for client_credentials only, not {grant_type}."
            )));
        }
        ("client_credentials", Client::Spa(_)) => {
            return Err(TokenError::UnauthorizedClient(
                "A public client (SPA) cannot use client_credentials: it has no secret.".into(),
            ));
        }
        (other, _) => {
            return Err(TokenError::UnsupportedGrantType(format!(
                "The grant_type '{other}' is not supported."
            )));
        }
    };
    Ok(response.into_response())
}

/// A user flow's endpoint issues B2C's tokens; the tenant's (no policy) v2 tokens.
fn authority_of(policy: Option<&Policy>) -> Authority {
    match policy {
        Some(_) => Authority::UserFlow,
        None => Authority::Tenant,
    }
}

/// A parameter the grant needs (present: [`TokenForm`] drops empty ones).
fn required<'a, T>(value: &'a Option<T>, name: &str) -> Result<&'a T, TokenError> {
    value
        .as_ref()
        .ok_or_else(|| TokenError::InvalidRequest(format!("The request has no {name}.")))
}

fn client_info(state: &AppState, user_id: &str, policy: &str) -> String {
    let info = serde_json::json!({
        "uid": format!("{user_id}-{}", policy.to_ascii_lowercase()),
        "utid": state.config.tenant.id,
    });
    B64.encode(info.to_string())
}

const CODE_REUSED: &str = "AADB2C90090: The authorization code was already redeemed; the tokens issued from it are revoked.";

async fn authorization_code(
    state: &Arc<AppState>,
    spa: &SpaApp,
    policy: Option<Policy>,
    form: &TokenForm,
) -> Result<TokenResponse, TokenError> {
    let code = required(&form.code, "code")?;
    let verifier = required(&form.code_verifier, "code_verifier")?;
    let (record, code_hash) = redeem(state, &spa.client_id, policy.as_ref(), form).await?;
    let now = now();
    let challenge = record.code_challenge.as_ref();
    if !challenge.is_some_and(|c| c.verify(verifier)) {
        return Err(TokenError::InvalidGrant(
            "AADB2C90183: The code_verifier does not match the code_challenge.".into(),
        ));
    }
    let issued = &record.grant;
    let granted = scope::resolve(&state.config, spa, issued.scopes.iter())
        .map_err(TokenError::InvalidGrant)?;
    let user = grant_owner(state, &issued.user_id).await?;
    let authority = authority_of(policy.as_ref());
    let grant = UserGrant {
        nonce: record.nonce.as_deref(),
        code: Some(code.secret()),
        ..UserGrant::of(issued, &user, &spa.client_id, authority, &granted)
    };
    let mut response = user_tokens_response(state, &grant, now).await?;
    if granted.has("offline_access") {
        let lifetime = state.config.lifetimes.refresh_token_seconds as i64;
        let family = Family {
            id: uuid::Uuid::new_v4().to_string(),
            grant: Grant {
                user_id: user.id.clone(),
                client_id: ClientId::new(spa.client_id.as_str()),
                expires_at: now + lifetime,
                ..issued.clone()
            },
        };
        let refresh = start_family(state, family, code_hash).await?;
        response.refresh_token = Some(refresh.secret().to_owned());
        response.refresh_token_expires_in = Some(lifetime);
    }
    Ok(response)
}

/// Consumes a code issued to `client_id` for this redirect URI (and user flow, when the endpoint
/// names one); the caller checks what its client kind adds (PKCE for SPAs). With the record, the
/// code's hash, which keys the refresh-token family a redemption may open.
async fn redeem(
    state: &Arc<AppState>,
    client_id: &str,
    policy: Option<&Policy>,
    form: &TokenForm,
) -> Result<(CodeRecord, String), TokenError> {
    let code = required(&form.code, "code")?;
    let redirect_uri = required(&form.redirect_uri, "redirect_uri")?;
    let code_hash = code.hash();
    let lookup = code_hash.clone();
    let record = match state.store.run(move |s| s.redeem_code(&lookup)).await? {
        Redemption::Valid(record) => record,
        Redemption::Unknown => {
            return Err(TokenError::InvalidGrant(
                "The authorization code is not valid.".into(),
            ));
        }
        Redemption::Reused => {
            tracing::warn!("authorization code reused; its grant is revoked");
            return Err(TokenError::InvalidGrant(CODE_REUSED.into()));
        }
    };
    let now = now();
    let grant = &record.grant;
    if grant.expires_at <= now {
        return Err(TokenError::InvalidGrant(
            "AADB2C90080: The authorization code has expired.".into(),
        ));
    }
    if grant.client_id.as_str() != client_id {
        return Err(TokenError::InvalidGrant(
            "The authorization code was issued to another client.".into(),
        ));
    }
    if record.redirect_uri.as_str() != redirect_uri {
        return Err(TokenError::InvalidGrant(
            "The redirect_uri does not match the one the code was issued for.".into(),
        ));
    }
    if policy.is_some_and(|p| *p != grant.policy) {
        return Err(TokenError::InvalidGrant(
            "The authorization code was issued by another user flow.".into(),
        ));
    }
    Ok((record, code_hash))
}

/// EasyAuth's hybrid-flow code, redeemed with the web app's secret: the ID token only (the code
/// carried no API scope), with the nonce of the sign-in request.
async fn web_authorization_code(
    state: &Arc<AppState>,
    api: &ApiApp,
    policy: Option<Policy>,
    form: &TokenForm,
) -> Result<Response, TokenError> {
    let (record, _) = redeem(state, &api.client_id, policy.as_ref(), form).await?;
    let issued = &record.grant;
    let user = grant_owner(state, &issued.user_id).await?;
    let granted = scope::Granted {
        scopes: issued.scopes.clone(),
        api: None,
    };
    let now = now();
    let authority = authority_of(policy.as_ref());
    let grant = UserGrant {
        nonce: record.nonce.as_deref(),
        ..UserGrant::of(issued, &user, &api.client_id, authority, &granted)
    };
    let ring = state.keys.ring().await?;
    let id_token = tokens::web_id_token(state, &ring, &grant, now)?;
    let mut response = Json(serde_json::json!({
        "id_token": id_token,
        "token_type": "Bearer",
        "not_before": now,
        "id_token_expires_in": state.config.lifetimes.id_token_seconds,
        "scope": granted.joined(),
        "client_info": client_info(state, &user.id, &issued.policy),
    }))
    .into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Opens a refresh-token family for a redeemed code; its first refresh token. The store refuses
/// a second family for one code (a replay racing the first redemption).
async fn start_family(
    state: &Arc<AppState>,
    family: Family,
    code_hash: String,
) -> Result<RefreshToken, TokenError> {
    let refresh = RefreshToken::random();
    let refresh_hash = refresh.hash();
    let created = state
        .store
        .run(move |s| s.create_family(&family, Some(&code_hash), &refresh_hash))
        .await?;
    if !created {
        return Err(TokenError::InvalidGrant(CODE_REUSED.into()));
    }
    Ok(refresh)
}

/// The user a code or refresh token was issued to; gone since means the grant is void.
async fn grant_owner(state: &Arc<AppState>, user_id: &str) -> Result<User, TokenError> {
    let user_id = user_id.to_owned();
    state
        .store
        .run(move |s| s.user_by_id(&user_id))
        .await?
        .ok_or_else(|| TokenError::InvalidGrant("The account no longer exists.".into()))
}

/// Mints a user grant's tokens (code redemption and refresh alike) and the response that carries
/// them; the caller adds the refresh token, whose lifetime rules differ between the two.
async fn user_tokens_response(
    state: &Arc<AppState>,
    grant: &UserGrant<'_>,
    now: i64,
) -> Result<TokenResponse, TokenError> {
    let ring = state.keys.ring().await?;
    let minted = tokens::user_tokens(state, &ring, grant, now)?;
    let lifetimes = &state.config.lifetimes;
    Ok(TokenResponse {
        access_token: minted.access_token,
        token_type: "Bearer",
        expires_in: lifetimes.access_token_seconds,
        ext_expires_in: lifetimes.access_token_seconds,
        not_before: now,
        expires_on: now + lifetimes.access_token_seconds as i64,
        scope: Some(grant.granted.joined()),
        id_token_expires_in: minted.id_token.as_ref().map(|_| lifetimes.id_token_seconds),
        id_token: minted.id_token,
        client_info: Some(client_info(state, &grant.user.id, grant.policy)),
        ..Default::default()
    })
}

async fn refresh_token(
    state: &Arc<AppState>,
    spa: &SpaApp,
    policy: Option<Policy>,
    form: &TokenForm,
) -> Result<TokenResponse, TokenError> {
    let presented = required(&form.refresh_token, "refresh_token")?;
    // A narrower or different scope is checked before the token is consumed.
    let requested = match form.scope.as_ref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Some(
            scope::resolve(&state.config, spa, s.split_whitespace())
                .map_err(TokenError::InvalidScope)?,
        ),
        None => None,
    };
    let successor = RefreshToken::random();
    let (old_hash, new_hash, client_id) =
        (presented.hash(), successor.hash(), spa.client_id.clone());
    let now = now();
    let family = match state
        .store
        .run(move |s| s.rotate_refresh(&old_hash, &new_hash, &client_id, now))
        .await?
    {
        Rotation::Rotated(family) => family,
        Rotation::Invalid => {
            return Err(TokenError::InvalidGrant(
                "AADB2C90129: The refresh token is not valid, has expired or was revoked.".into(),
            ));
        }
        Rotation::Reused => {
            tracing::warn!("refresh token reused; its family is revoked");
            return Err(TokenError::InvalidGrant(
                "AADB2C90129: The refresh token was already used; every token of this sign-in is revoked.".into(),
            ));
        }
    };
    let issued = &family.grant;
    if policy.as_ref().is_some_and(|p| *p != issued.policy) {
        return Err(TokenError::InvalidGrant(
            "The refresh token was issued by another user flow.".into(),
        ));
    }
    let granted = match requested {
        Some(g) => g,
        None => scope::resolve(&state.config, spa, issued.scopes.iter())
            .map_err(TokenError::InvalidGrant)?,
    };
    let user = grant_owner(state, &issued.user_id).await?;
    let authority = authority_of(policy.as_ref());
    let grant = UserGrant::of(issued, &user, &spa.client_id, authority, &granted);
    let mut response = user_tokens_response(state, &grant, now).await?;
    response.refresh_token = Some(successor.secret().to_owned());
    // SPA refresh tokens keep the window of the original sign-in: rotation does not extend it.
    response.refresh_token_expires_in = Some(issued.expires_at - now);
    Ok(response)
}

async fn client_credentials(
    state: &Arc<AppState>,
    daemon: &DaemonApp,
    authority: Authority,
    form: &TokenForm,
) -> Result<TokenResponse, TokenError> {
    let scope = required(&form.scope, "scope")?;
    let mut scopes = scope.split_whitespace();
    let (Some(only), None) = (scopes.next(), scopes.next()) else {
        return Err(TokenError::InvalidScope(
            "The client credentials grant takes exactly one scope: '{app id uri}/.default'.".into(),
        ));
    };
    let resource = only.strip_suffix("/.default").ok_or_else(|| {
        TokenError::InvalidScope(format!(
            "The scope '{only}' is not valid for client credentials; use '{{app id uri}}/.default'."
        ))
    })?;
    let api = state
        .config
        .apis
        .iter()
        .find(|a| {
            a.app_id_uri
                .trim_end_matches('/')
                .eq_ignore_ascii_case(resource)
                || a.client_id.eq_ignore_ascii_case(resource)
                || format!("api://{}", a.client_id).eq_ignore_ascii_case(resource)
        })
        .ok_or_else(|| {
            TokenError::InvalidScope(format!(
                "No API in this tenant is identified by '{resource}'."
            ))
        })?;
    let roles: Vec<String> = daemon
        .app_roles
        .iter()
        .filter(|g| g.api.eq_ignore_ascii_case(&api.client_id))
        .map(|g| g.role.clone())
        .collect();
    let ring = state.keys.ring().await?;
    let now = now();
    let access_token = tokens::app_token(
        state,
        &ring,
        authority,
        &daemon.client_id,
        &api.client_id,
        &roles,
        now,
    )?;
    let lifetime = state.config.lifetimes.access_token_seconds;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime,
        ext_expires_in: lifetime,
        not_before: now,
        expires_on: now + lifetime as i64,
        ..Default::default()
    })
}
