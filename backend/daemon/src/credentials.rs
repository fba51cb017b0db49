//! The daemon's own access token: the client credentials grant (RFC 6749 §4.4) through the
//! oauth2 crate, as MSAL's `AcquireTokenForClient` does in the seed, kept until shortly before it
//! expires.
//!
//! One token serves every call until then: the IdP's token endpoint is slow (it signs) and
//! rate-limited in Azure, and seed 004's function would otherwise ask it once per request. The
//! lock is held while fetching, so callers that find the token stale together cause one request.

use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AccessToken, EndpointNotSet, EndpointSet, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use tokio::sync::Mutex;

use crate::config::Config;
use crate::failure::{Failure, one_line};
use crate::outbound;

/// Renew this long before expiry (MSAL's margin), or at half-life for tokens shorter than twice it.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

struct Cached {
    token: AccessToken,
    renew_at: Instant,
}

pub struct AppTokens {
    client: TokenClient,
    scope: Scope,
    http: outbound::TokenHttp,
    token_url: String,
    cached: Mutex<Option<Cached>>,
}

impl AppTokens {
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        let client = BasicClient::new(config.client_id.clone())
            .set_client_secret(config.client_secret.clone())
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()));
        Self {
            client,
            scope: Scope::new(config.scope.clone()),
            http: outbound::TokenHttp {
                client: http,
                timeout: config.http_timeout,
            },
            token_url: config.token_url.to_string(),
            cached: Mutex::new(None),
        }
    }

    /// The cached token, or a new one when it is due for renewal.
    pub async fn token(&self) -> Result<AccessToken, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(current.token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        tracing::info!(
            lifetime_seconds = lifetime.as_secs(),
            "obtained an app token (client credentials)"
        );
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + renew_after(lifetime),
        });
        Ok(token)
    }

    /// Drops the cached token (the API refused it: revoked, or keys rotated), so the next call
    /// asks for a new one instead of failing until it expires.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<(AccessToken, Duration), Failure> {
        let response = self
            .client
            .exchange_client_credentials()
            .add_scope(self.scope.clone())
            .request_async(&self.http)
            .await
            .map_err(|error| self.failure(error))?;
        // Without `expires_in` the token is used once and not kept.
        let lifetime = response.expires_in().unwrap_or_default();
        Ok((response.access_token().clone(), lifetime))
    }

    fn failure(
        &self,
        error: RequestTokenError<outbound::Transport, oauth2::basic::BasicErrorResponse>,
    ) -> Failure {
        match error {
            RequestTokenError::ServerResponse(refusal) => {
                let code = refusal.error().as_ref().to_owned();
                match refusal.error() {
                    BasicErrorResponseType::InvalidClient
                    | BasicErrorResponseType::UnauthorizedClient => {
                        Failure::BadCredentials { code }
                    }
                    _ => Failure::TokenRefused {
                        code,
                        description: one_line(
                            refusal.error_description().map_or("", String::as_str),
                        ),
                    },
                }
            }
            RequestTokenError::Request(why) => Failure::IdpUnreachable {
                url: self.token_url.clone(),
                why,
            },
            RequestTokenError::Parse(why, _) => Failure::IdpAnswer(one_line(&why.to_string())),
            RequestTokenError::Other(why) => Failure::IdpAnswer(one_line(&why)),
        }
    }
}

fn renew_after(lifetime: Duration) -> Duration {
    lifetime - RENEW_BEFORE.min(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_five_minutes_early_or_at_half_life() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3300)
        );
        assert_eq!(
            renew_after(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }
}
