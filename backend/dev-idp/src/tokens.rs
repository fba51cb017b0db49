//! The tokens B2C issues, claim for claim (see platform.md): user access tokens, ID tokens and
//! app-only (client credentials) access tokens.

use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::keys::{KeyError, KeyRing, half_hash};
use crate::scope::Granted;
use crate::store::User;

/// Who signed in, for which app, and what was granted.
pub struct UserGrant<'a> {
    pub user: &'a User,
    pub client_id: &'a str,
    pub policy: &'a str,
    pub auth_time: i64,
    pub granted: &'a Granted,
    /// Only on the first ID token of a sign-in (code redemption), not on refresh.
    pub nonce: Option<&'a str>,
    pub code: Option<&'a str>,
}

pub struct Minted {
    pub access_token: String,
    pub id_token: Option<String>,
}

/// The claims both of a user's tokens carry (B2C's v1.0 tokens, platform.md).
#[derive(Serialize)]
struct UserClaims<'a> {
    iss: &'a str,
    exp: i64,
    nbf: i64,
    iat: i64,
    aud: &'a str,
    sub: &'a str,
    oid: &'a str,
    name: &'a str,
    emails: [&'a str; 1],
    tfp: &'a str,
    ver: &'static str,
    auth_time: i64,
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    #[serde(flatten)]
    user: UserClaims<'a>,
    azp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scp: Option<String>,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    #[serde(flatten)]
    user: UserClaims<'a>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c_hash: Option<String>,
}

pub fn user_tokens<'a>(
    state: &'a AppState,
    ring: &KeyRing,
    grant: &UserGrant<'a>,
    now: i64,
) -> Result<Minted, KeyError> {
    let lifetimes = &state.config.lifetimes;
    let user = grant.user;
    let claims = |lifetime: u64, aud: &'a str| UserClaims {
        iss: &state.issuer,
        exp: now + lifetime as i64,
        nbf: now,
        iat: now,
        aud,
        sub: &user.id,
        oid: &user.id,
        name: &user.display_name,
        emails: [&user.email],
        tfp: grant.policy,
        ver: "1.0",
        auth_time: grant.auth_time,
    };
    let access = match &grant.granted.api {
        Some((api_client_id, scopes)) => AccessClaims {
            user: claims(lifetimes.access_token_seconds, api_client_id),
            azp: grant.client_id,
            scp: Some(scopes.join(" ")),
        },
        // Only OpenID scopes (or the app's own client id): B2C's token for the app itself.
        None => AccessClaims {
            user: claims(lifetimes.access_token_seconds, grant.client_id),
            azp: grant.client_id,
            scp: None,
        },
    };
    let access_token = ring.sign(&access)?;
    let id_token = if grant.granted.has("openid") {
        Some(ring.sign(&IdClaims {
            user: claims(lifetimes.id_token_seconds, grant.client_id),
            at_hash: half_hash(&access_token),
            nonce: grant.nonce,
            c_hash: grant.code.map(half_hash),
        })?)
    } else {
        None
    };
    Ok(Minted {
        access_token,
        id_token,
    })
}

/// Which token endpoint a client-credentials request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A user flow's (`/{tenant}/{policy}/oauth2/v2.0/token`): B2C's issuer and v1 claims.
    UserFlow,
    /// The tenant's (`/{tenant}/oauth2/v2.0/token`, seed 004's): Entra's v2 token under
    /// `{base}/{tenant id}/v2.0`, as `login.microsoftonline.com/{tenant id}/v2.0` issues it.
    Tenant,
}

/// An app-only token (client credentials): `roles` instead of `scp`, no user.
pub fn app_token(
    state: &AppState,
    ring: &KeyRing,
    authority: Authority,
    client_id: &str,
    api_client_id: &str,
    roles: &[String],
    now: i64,
) -> Result<String, KeyError> {
    let (issuer, version) = match authority {
        Authority::UserFlow => (&state.issuer, "1.0"),
        Authority::Tenant => (&state.tenant_issuer, "2.0"),
    };
    let mut claims: Value = json!({
        "iss": issuer,
        "exp": now + state.config.lifetimes.access_token_seconds as i64,
        "nbf": now,
        "iat": now,
        "aud": api_client_id,
        // The calling app is the subject; Entra uses its service principal's object id.
        "sub": client_id,
        "oid": client_id,
        "azp": client_id,
        "azpacr": "1",
        "tid": state.config.tenant.id,
        "ver": version,
    });
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    ring.sign(&claims)
}
