//! The sign-in lifecycle against the identity provider: load config and metadata, start a
//! sign-in (any of the tenant's user flows, as either [`Client`]), complete it on return, renew
//! the SPA's session silently, sign out.

use crate::client::Client;
use crate::discovery::{self, ProviderMetadata};
use crate::flow::{self, PendingSignIn, Redirect, SignInError, Start};
use crate::session::Session;
use crate::{config, fetch, location, renewal, storage, token};
use shared::SpaConfig;

/// Everything needed to talk to the identity provider, loaded once per page load.
#[derive(Debug, Clone)]
pub struct Provider {
    pub config: SpaConfig,
    pub metadata: ProviderMetadata,
    /// The SPA's app registration.
    pub client: Client,
    /// The developer console's, when config.json has one.
    pub console: Option<Client>,
    pub post_logout_redirect_uri: String,
}

/// Fetches `config.json`, then the authority's openid-configuration. `Err` is the page's message.
pub async fn load() -> Result<Provider, String> {
    let response = fetch::get(config::CONFIG_PATH, None)
        .await
        .map_err(|e| format!("config.json could not be loaded: {e}"))?;
    let status = response.status();
    let content_type = fetch::header(&response, "content-type");
    let body = fetch::text(&response).await.unwrap_or_default();
    let config = config::from_response(status, content_type.as_deref(), &body)?;
    let metadata = metadata(&config, &config.authority).await?;

    let root_url = location::root_url();
    let client = Client::spa(&config, &root_url);
    let console = Client::console(&config, &root_url);
    let post_logout_redirect_uri = config
        .post_logout_redirect_uri
        .clone()
        .unwrap_or_else(|| client.redirect_uri.clone());
    Ok(Provider {
        config,
        metadata,
        client,
        console,
        post_logout_redirect_uri,
    })
}

/// One authority's openid-configuration, checked against `knownAuthorities`.
async fn metadata(config: &SpaConfig, authority: &str) -> Result<ProviderMetadata, String> {
    let metadata_url = discovery::metadata_url(authority);
    let unreachable =
        |why: String| format!("The identity provider could not be reached ({metadata_url}): {why}");
    let response = fetch::get(&metadata_url, None)
        .await
        .map_err(&unreachable)?;
    if !response.ok() {
        return Err(unreachable(format!("HTTP {}", response.status())));
    }
    let body = fetch::text(&response).await.map_err(&unreachable)?;
    ProviderMetadata::from_json(&body, &config.known_authorities)
        .map_err(|e| format!("Sign-in is unavailable: {e}."))
}

/// The metadata of a user flow: the loaded one for sign-up/sign-in, else fetched.
async fn flow_metadata(
    provider: &Provider,
    flow: Option<&str>,
) -> Result<ProviderMetadata, String> {
    match flow.and_then(|f| provider.config.authority_for(f)) {
        Some(authority) => metadata(&provider.config, &authority).await,
        None => Ok(provider.metadata.clone()),
    }
}

/// Remembers state, nonce, verifier and the way back in sessionStorage and sends the browser to
/// the user flow's authorize endpoint.
pub async fn start_sign_in(provider: &Provider, start: Start<'_>) -> Result<(), String> {
    let metadata = flow_metadata(provider, start.flow).await?;
    let (url, pending) = flow::begin(&metadata, &provider.config, start)
        .ok_or_else(|| "the browser has no secure random number generator".to_owned())?;
    storage::save_pending(start.client.keys, &pending)?;
    location::navigate(&url)
}

/// Completes a sign-in from the IdP's redirect with the pending state that `take_pending` already
/// consumed: the code is redeemed at its flow's token endpoint as `client` (the one that started
/// it), the ID token checked, and the session kept under the client's keys.
pub async fn complete_sign_in(
    provider: &Provider,
    client: &Client,
    redirect: Redirect,
    pending: Option<PendingSignIn>,
) -> Result<Session, SignInError> {
    let code = flow::accept_redirect(redirect, pending.as_ref())?;
    let pending = pending.ok_or(SignInError::NoPendingSignIn)?;
    let metadata = flow_metadata(provider, pending.flow.as_deref())
        .await
        .map_err(SignInError::Token)?;
    let body = flow::code_exchange_body(&provider.config, &client.id, &code, &pending);
    let response = post_token(&metadata.token_endpoint, body).await?;
    let session = Session::from_sign_in(
        response,
        &metadata,
        &client.id,
        pending.nonce.secret(),
        location::now(),
    )?;
    storage::save_session(client.keys, &session).map_err(SignInError::Token)?;
    Ok(session)
}

/// Silent renewal with the stored refresh token. One at a time: callers in this tab share the
/// renewal in flight, and tabs of this origin take turns (see [`renewal`]).
pub async fn renew(provider: &Provider) -> Result<Session, SignInError> {
    let requested_at = location::now();
    let (config, metadata) = (provider.config.clone(), provider.metadata.clone());
    let client = provider.client.clone();
    renewal::one_at_a_time(async move {
        let session = storage::load_session(client.keys)
            .ok_or_else(|| SignInError::Token("there is no session to renew".to_owned()))?;
        // Renewed while this call waited for its turn: that one is as good as ours.
        if session.issued_at > requested_at && session.is_fresh(location::now()) {
            return Ok(session);
        }
        let refresh_token = session
            .refresh_token
            .as_ref()
            .ok_or_else(|| SignInError::Token("there is no refresh token".to_owned()))?;
        let body = flow::refresh_body(&config, &client.id, refresh_token);
        let response = post_token(&session.token_endpoint, body).await?;
        let renewed = session.renewed(response, &metadata, &client.id, location::now())?;
        storage::save_session(client.keys, &renewed).map_err(SignInError::Token)?;
        Ok(renewed)
    })
    .await
}

async fn post_token(endpoint: &str, body: String) -> Result<token::TokenResponse, SignInError> {
    let response = fetch::post_form(endpoint, &body).await.map_err(|e| {
        SignInError::Token(format!("the token endpoint could not be reached ({e})"))
    })?;
    let status = response.status();
    let text = fetch::text(&response).await.unwrap_or_default();
    token::parse_token_response(status, &text).map_err(SignInError::Token)
}

/// Clears sessionStorage and ends the IdP session too (so the next Sign In asks again).
/// Returns `false` when the provider has no end-session endpoint and the page stays.
pub fn sign_out(provider: &Provider) -> bool {
    let id_token = storage::load_session(provider.client.keys).map(|s| s.id_token);
    storage::clear();
    let url = flow::end_session_url(
        &provider.metadata,
        &provider.client.id,
        &provider.post_logout_redirect_uri,
        id_token.as_deref(),
    );
    url.is_some_and(|url| location::navigate(&url).is_ok())
}
