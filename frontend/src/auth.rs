//! The sign-in lifecycle against the identity provider: load config and metadata, start a
//! sign-in, complete it on return, renew silently, sign out.

use crate::discovery::{self, ProviderMetadata};
use crate::flow::{self, PendingSignIn, Redirect, SignInError};
use crate::session::Session;
use crate::{config, fetch, location, storage, token};
use shared::SpaConfig;

/// Everything needed to talk to the identity provider, loaded once per page load.
#[derive(Debug, Clone)]
pub struct Provider {
    pub config: SpaConfig,
    pub metadata: ProviderMetadata,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
}

/// Fetches `config.json`, then the authority's openid-configuration. `Err` is the page's message.
pub async fn load() -> Result<Provider, String> {
    let response = fetch::get(config::CONFIG_PATH, None)
        .await
        .map_err(|e| format!("config.json could not be loaded: {e}"))?;
    let status = response.status();
    let content_type = response.header("content-type");
    let body = response.text().await.unwrap_or_default();
    let config = config::from_response(status, content_type.as_deref(), &body)?;

    let metadata_url = discovery::metadata_url(&config.authority);
    let unreachable =
        |why: String| format!("The identity provider could not be reached ({metadata_url}): {why}");
    let response = fetch::get(&metadata_url, None)
        .await
        .map_err(&unreachable)?;
    if !response.ok() {
        return Err(unreachable(format!("HTTP {}", response.status())));
    }
    let body = response.text().await.map_err(&unreachable)?;
    let metadata = ProviderMetadata::from_json(&body, &config.known_authorities)
        .map_err(|e| format!("Sign-in is unavailable: {e}."))?;

    let redirect_uri = config
        .redirect_uri
        .clone()
        .unwrap_or_else(location::root_url);
    let post_logout_redirect_uri = config
        .post_logout_redirect_uri
        .clone()
        .unwrap_or_else(|| redirect_uri.clone());
    Ok(Provider {
        config,
        metadata,
        redirect_uri,
        post_logout_redirect_uri,
    })
}

/// Remembers state, nonce and verifier in sessionStorage and sends the browser to the IdP.
pub fn start_sign_in(provider: &Provider) -> Result<(), String> {
    let (url, pending) = flow::begin(&provider.metadata, &provider.config, &provider.redirect_uri)
        .ok_or_else(|| "the browser has no secure random number generator".to_owned())?;
    storage::save_pending(&pending)?;
    location::navigate(&url)
}

/// Completes a sign-in from the IdP's redirect: the pending state is consumed whatever happens,
/// the address bar is cleaned, the code is redeemed and the ID token checked.
pub async fn complete_sign_in(
    provider: &Provider,
    redirect: Redirect,
) -> Result<Session, SignInError> {
    let pending: Option<PendingSignIn> = storage::take_pending();
    location::clean();
    let code = flow::accept_redirect(redirect, pending.as_ref())?;
    let pending = pending.ok_or(SignInError::NoPendingSignIn)?;
    let body = flow::code_exchange_body(&provider.config, &code, &pending);
    let response = post_token(provider, body).await?;
    let session = Session::from_sign_in(
        response,
        &provider.metadata,
        &provider.config,
        pending.nonce.secret(),
        location::now(),
    )?;
    storage::save_session(&session).map_err(SignInError::Token)?;
    Ok(session)
}

/// Silent renewal with the stored refresh token; the stored session is replaced on success.
pub async fn renew(provider: &Provider) -> Result<Session, SignInError> {
    let session = storage::load_session()
        .ok_or_else(|| SignInError::Token("there is no session to renew".to_owned()))?;
    let refresh_token = session
        .refresh_token
        .as_ref()
        .ok_or_else(|| SignInError::Token("there is no refresh token".to_owned()))?;
    let body = flow::refresh_body(&provider.config, refresh_token);
    let response = post_token(provider, body).await?;
    let renewed = session.renewed(
        response,
        &provider.metadata,
        &provider.config,
        location::now(),
    )?;
    storage::save_session(&renewed).map_err(SignInError::Token)?;
    Ok(renewed)
}

async fn post_token(
    provider: &Provider,
    body: String,
) -> Result<token::TokenResponse, SignInError> {
    let response = fetch::post_form(&provider.metadata.token_endpoint, &body)
        .await
        .map_err(|e| {
            SignInError::Token(format!("the token endpoint could not be reached ({e})"))
        })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    token::parse_token_response(status, &text).map_err(SignInError::Token)
}

/// Clears sessionStorage and ends the IdP session too (so the next Sign In asks again).
/// Returns `false` when the provider has no end-session endpoint and the page stays.
pub fn sign_out(provider: &Provider) -> bool {
    let id_token = storage::load_session().map(|s| s.id_token);
    storage::clear();
    let url = flow::end_session_url(
        &provider.metadata,
        &provider.config,
        &provider.post_logout_redirect_uri,
        id_token.as_deref(),
    );
    url.is_some_and(|url| location::navigate(&url).is_ok())
}
