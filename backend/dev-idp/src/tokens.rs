//! The tokens B2C issues, claim for claim (see platform.md): user access tokens, ID tokens and
//! app-only (client credentials) access tokens.

use serde_json::{Value, json};

use crate::AppState;
use crate::keys::{KeyError, KeyRing, half_hash};
use crate::scope::Granted;
use crate::store::{Grant, User};

/// Who signed in, for which app, and what was granted.
pub struct UserGrant<'a> {
    pub user: &'a User,
    pub client_id: &'a str,
    pub policy: &'a str,
    /// Which token endpoint redeemed the grant: B2C's user flow or the tenant's (External ID).
    pub authority: Authority,
    pub auth_time: i64,
    pub granted: &'a Granted,
    /// Only on the first ID token of a sign-in (code redemption), not on refresh.
    pub nonce: Option<&'a str>,
    pub code: Option<&'a str>,
}

impl<'a> UserGrant<'a> {
    /// The tokens' view of a stored grant (a redeemed code or refresh token) for `client_id`,
    /// redeemed at `authority`, granting `granted`; no nonce or code to bind unless set after.
    pub fn of(
        issued: &'a Grant,
        user: &'a User,
        client_id: &'a str,
        authority: Authority,
        granted: &'a Granted,
    ) -> Self {
        Self {
            user,
            client_id,
            policy: &issued.policy,
            authority,
            auth_time: issued.auth_time,
            granted,
            nonce: None,
            code: None,
        }
    }
}

pub struct Minted {
    pub access_token: String,
    pub id_token: Option<String>,
}

pub fn user_tokens(
    state: &AppState,
    ring: &KeyRing,
    grant: &UserGrant<'_>,
    now: i64,
) -> Result<Minted, KeyError> {
    let lifetimes = &state.config.lifetimes;
    let user = grant.user;
    let (issuer, version) = grant.authority.shape(state);
    let mut access = json!({
        "iss": issuer,
        "exp": now + lifetimes.access_token_seconds as i64,
        "nbf": now,
        "iat": now,
        "sub": user.id,
        "oid": user.id,
        "name": user.display_name,
        "emails": [user.email],
        "azp": grant.client_id,
        "ver": version,
        "auth_time": grant.auth_time,
    });
    grant.authority.mark_flow(&mut access, state, grant.policy);
    match &grant.granted.api {
        Some((api_client_id, scopes)) => {
            access["aud"] = json!(api_client_id);
            access["scp"] = json!(scopes.join(" "));
        }
        // Only OpenID scopes (or the app's own client id): B2C's token for the app itself.
        None => access["aud"] = json!(grant.client_id),
    }
    let access_token = ring.sign(&access)?;

    let id_token = if grant.granted.has("openid") {
        let mut id = id_claims(state, grant, now);
        id["at_hash"] = json!(half_hash(&access_token));
        if let Some(code) = grant.code {
            id["c_hash"] = json!(half_hash(code));
        }
        Some(ring.sign(&id)?)
    } else {
        None
    };
    Ok(Minted {
        access_token,
        id_token,
    })
}

/// The ID token's claims for `grant.client_id` (the SPA, or a web app such as EasyAuth's).
fn id_claims(state: &AppState, grant: &UserGrant<'_>, now: i64) -> Value {
    let (issuer, version) = grant.authority.shape(state);
    let user = grant.user;
    let mut id = json!({
        "iss": issuer,
        "exp": now + state.config.lifetimes.id_token_seconds as i64,
        "nbf": now,
        "iat": now,
        "aud": grant.client_id,
        "sub": user.id,
        "oid": user.id,
        "name": user.display_name,
        "emails": [user.email],
        "ver": version,
        "auth_time": grant.auth_time,
    });
    grant.authority.mark_flow(&mut id, state, grant.policy);
    if let Some(nonce) = grant.nonce {
        id["nonce"] = json!(nonce);
    }
    id
}

/// The ID token alone, as the implicit flow's `response_type=id_token` returns it to a web app
/// (EasyAuth's sign-in without a client secret): no access token to bind with `at_hash`.
pub fn web_id_token(
    state: &AppState,
    ring: &KeyRing,
    grant: &UserGrant<'_>,
    now: i64,
) -> Result<String, KeyError> {
    let mut id = id_claims(state, grant, now);
    // The hybrid flow's front-channel ID token binds the code posted beside it.
    if let Some(code) = grant.code {
        id["c_hash"] = json!(half_hash(code));
    }
    ring.sign(&id)
}

/// Which token endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A user flow's (`/{tenant}/{policy}/oauth2/v2.0/token`): B2C's issuer and v1 claims.
    UserFlow,
    /// The tenant's (`/{tenant}/oauth2/v2.0/token`): v2 tokens under `{base}/{tenant id}/v2.0`,
    /// as Entra (seed 004's app tokens) and External ID (user tokens) issue them.
    Tenant,
}

impl Authority {
    /// The `iss` and `ver` of its tokens.
    fn shape(self, state: &AppState) -> (&str, &'static str) {
        match self {
            Authority::UserFlow => (&state.issuer, "1.0"),
            Authority::Tenant => (&state.tenant_issuer, "2.0"),
        }
    }

    /// B2C names the user flow in `tfp`; External ID's tokens carry the tenant id instead.
    fn mark_flow(self, claims: &mut Value, state: &AppState, policy: &str) {
        match self {
            Authority::UserFlow => claims["tfp"] = json!(policy),
            Authority::Tenant => claims["tid"] = json!(state.config.tenant.id),
        }
    }
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
    let (issuer, version) = authority.shape(state);
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
