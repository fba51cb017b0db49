//! The signed-in session kept in sessionStorage: tokens, who the user is, and when to renew.

use crate::discovery::ProviderMetadata;
use crate::flow::SignInError;
use crate::id_token::{self, NonceRule};
use crate::token::TokenResponse;
use oauth2::{AccessToken, ClientId, RefreshToken};
use serde::{Deserialize, Serialize};

/// Renew this long before the access token expires (less for short-lived tokens).
const RENEW_AHEAD_SECONDS: u64 = 300;

/// Stored in sessionStorage as a JSON object (serde); unknown or missing fields make it unreadable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    /// Kept for `id_token_hint` at sign-out.
    pub id_token: String,
    /// The display name from the ID token.
    pub name: String,
    /// The sign-in's nonce: a refreshed ID token may only repeat it.
    pub nonce: String,
    /// When the access token was received and when it expires, seconds since the epoch.
    pub issued_at: u64,
    pub expires_at: u64,
    /// The token endpoint of the user flow that signed in: B2C redeems a refresh token only at
    /// the flow that issued it (a password reset or profile edit signs in through its own).
    pub token_endpoint: String,
}

impl Session {
    /// The session a completed sign-in yields; the ID token must carry this sign-in's nonce and
    /// be meant for the client that signed in.
    pub fn from_sign_in(
        response: TokenResponse,
        metadata: &ProviderMetadata,
        client_id: &ClientId,
        nonce: &str,
        now: u64,
    ) -> Result<Self, SignInError> {
        let id_token = response.id_token.clone().ok_or_else(|| {
            SignInError::Token("the token endpoint returned no ID token".to_owned())
        })?;
        let identity = id_token::verify(
            &id_token,
            &metadata.issuer,
            client_id.as_str(),
            NonceRule::Required(nonce),
            now,
        )
        .map_err(|e| SignInError::IdToken(e.to_string()))?;
        let expires_at = expiry(&response, now).unwrap_or(identity.expires_at);
        Ok(Self {
            access_token: response.access_token,
            refresh_token: response.refresh_token,
            id_token,
            name: identity.name,
            nonce: nonce.to_owned(),
            issued_at: now,
            expires_at,
            token_endpoint: metadata.token_endpoint.clone(),
        })
    }

    /// The session after a refresh: new tokens; the old refresh/ID token stay if none came back.
    pub fn renewed(
        &self,
        response: TokenResponse,
        metadata: &ProviderMetadata,
        client_id: &ClientId,
        now: u64,
    ) -> Result<Self, SignInError> {
        let mut next = self.clone();
        if let Some(id_token) = response.id_token.clone() {
            let identity = id_token::verify(
                &id_token,
                &metadata.issuer,
                client_id.as_str(),
                NonceRule::AbsentOr(&self.nonce),
                now,
            )
            .map_err(|e| SignInError::IdToken(e.to_string()))?;
            next.name = identity.name;
            next.id_token = id_token;
        }
        next.expires_at = expiry(&response, now).unwrap_or(now + 3600);
        next.issued_at = now;
        next.access_token = response.access_token;
        if let Some(refresh_token) = response.refresh_token {
            next.refresh_token = Some(refresh_token);
        }
        Ok(next)
    }

    /// Seconds from `now` until silent renewal is due (0 if already due).
    pub fn renew_in(&self, now: u64) -> u64 {
        let lifetime = self.expires_at.saturating_sub(self.issued_at);
        let ahead = RENEW_AHEAD_SECONDS.min(lifetime / 5);
        self.expires_at.saturating_sub(ahead).saturating_sub(now)
    }

    /// Whether the access token can still be sent (with a margin for the request's flight time).
    pub fn is_fresh(&self, now: u64) -> bool {
        now + 30 < self.expires_at
    }
}

fn expiry(response: &TokenResponse, now: u64) -> Option<u64> {
    Some(now.saturating_add(response.expires_in?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::id_token::tests::{CLIENT, ISSUER, NOW, good_claims, jwt};
    use crate::token::parse_token_response;

    fn metadata() -> ProviderMetadata {
        ProviderMetadata {
            issuer: ISSUER.into(),
            authorization_endpoint: "http://127.0.0.1:7010/authorize".into(),
            token_endpoint: "http://127.0.0.1:7010/token".into(),
            end_session_endpoint: None,
        }
    }

    fn client_id() -> ClientId {
        let config = shared::SpaConfig::from_json(include_str!("../config.json")).unwrap();
        assert_eq!(config.client_id, CLIENT);
        ClientId::new(config.client_id)
    }

    fn response(id_token: Option<String>, refresh: Option<&str>) -> TokenResponse {
        let body = serde_json::json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 3600,
            "id_token": id_token, "refresh_token": refresh,
        });
        parse_token_response(200, &body.to_string()).unwrap()
    }

    #[test]
    fn sign_in_session_checks_the_nonce_and_schedules_renewal() {
        let session = Session::from_sign_in(
            response(Some(jwt(good_claims())), Some("rt")),
            &metadata(),
            &client_id(),
            "n-1",
            NOW,
        )
        .unwrap();
        assert_eq!(session.name, "Alice Example");
        assert_eq!(session.expires_at, NOW + 3600);
        assert_eq!(session.renew_in(NOW), 3300);
        assert_eq!(session.renew_in(NOW + 4000), 0);
        assert!(session.is_fresh(NOW + 3000));
        assert!(!session.is_fresh(NOW + 3590));

        let replayed = Session::from_sign_in(
            response(Some(jwt(good_claims())), Some("rt")),
            &metadata(),
            &client_id(),
            "n-other",
            NOW,
        );
        assert!(matches!(replayed, Err(SignInError::IdToken(_))));
        let no_id_token = Session::from_sign_in(
            response(None, Some("rt")),
            &metadata(),
            &client_id(),
            "n-1",
            NOW,
        );
        assert!(matches!(no_id_token, Err(SignInError::Token(_))));
    }

    /// What gloo-storage does with it: serde_json both ways.
    fn stored(session: &Session) -> serde_json::Result<Session> {
        serde_json::from_str(&serde_json::to_string(session)?)
    }

    #[test]
    fn session_survives_session_storage() {
        let session = Session::from_sign_in(
            response(Some(jwt(good_claims())), Some("rt")),
            &metadata(),
            &client_id(),
            "n-1",
            NOW,
        )
        .unwrap();
        let back = stored(&session).unwrap();
        assert_eq!(back.access_token.secret(), "at");
        assert_eq!(back.refresh_token.as_ref().unwrap().secret(), "rt");
        assert_eq!(back.id_token, session.id_token);
        assert_eq!(back.name, "Alice Example");
        assert_eq!(back.nonce, "n-1");
        assert_eq!((back.issued_at, back.expires_at), (NOW, NOW + 3600));
        // Renewals go to the flow that signed in (B2C refuses another flow's refresh token).
        assert_eq!(back.token_endpoint, "http://127.0.0.1:7010/token");
        let without_refresh = Session {
            refresh_token: None,
            ..session.clone()
        };
        let back = stored(&without_refresh).unwrap();
        assert!(back.refresh_token.is_none());
        let broken = serde_json::to_string(&session)
            .unwrap()
            .replace("\"expires_at\"", "\"expires\"");
        assert!(serde_json::from_str::<Session>(&broken).is_err());
    }

    #[test]
    fn renewal_keeps_what_the_provider_did_not_resend() {
        let session = Session::from_sign_in(
            response(Some(jwt(good_claims())), Some("rt")),
            &metadata(),
            &client_id(),
            "n-1",
            NOW,
        )
        .unwrap();
        let later = NOW + 3300;
        let renewed = session
            .renewed(response(None, None), &metadata(), &client_id(), later)
            .unwrap();
        assert_eq!(renewed.refresh_token.unwrap().secret(), "rt");
        assert_eq!(renewed.id_token, session.id_token);
        assert_eq!(renewed.expires_at, later + 3600);

        let mut foreign = good_claims();
        foreign["nonce"] = "n-other".into();
        let refused = session.renewed(
            response(Some(jwt(foreign)), Some("rt2")),
            &metadata(),
            &client_id(),
            NOW + 60,
        );
        assert!(matches!(refused, Err(SignInError::IdToken(_))));
    }
}
