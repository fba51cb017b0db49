//! App Service Authentication ("EasyAuth"): re-validates the bearer token independently of the
//! gateway, applies the unauthenticated action, then the authorization policy, and hands the
//! identity to the function as `X-MS-CLIENT-PRINCIPAL*` headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use token_validation::{Principal, ValidationError, bearer_token};

use crate::AppState;
use crate::client_principal;
use crate::config::{Config, UnauthenticatedAction};
use crate::login_session::{self, Site};
use crate::refusal::Refusal;

/// The caller, for handlers that need more than the headers (e.g. `/.auth/me`'s access token).
#[derive(Clone)]
pub struct Authenticated {
    pub principal: Arc<Principal>,
    pub access_token: String,
}

/// Middleware for `/.auth/me`: EasyAuth answers 401 there whatever the configured action.
pub async fn authenticate_api(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, request, UnauthenticatedAction::Return401).await {
        Ok(request) => next.run(request).await,
        Err(refused) => refused,
    }
}

/// The request with its identity attached ([`Authenticated`] and the `X-MS-CLIENT-PRINCIPAL*`
/// headers), or EasyAuth's answer instead of the function's: `action` for a caller without a
/// valid token, 403 for one the authorization policy refuses.
// The request on the other side is as large as the response: boxing the refusal saves nothing.
#[allow(clippy::result_large_err)]
pub async fn authenticate(
    state: &AppState,
    mut request: Request,
    action: UnauthenticatedAction,
) -> Result<Request, Response> {
    client_principal::strip_incoming(request.headers_mut());
    let token = match bearer_token(request.headers()) {
        Ok(token) => token.to_owned(),
        // Without a bearer token, EasyAuth's own session cookie (a browser it signed in).
        Err(ValidationError::MissingToken)
            if let Some(principal) = login_session::session_principal(state, request.headers()) =>
        {
            return admit(state, request, Arc::new(principal), String::new());
        }
        Err(why) => return Err(unauthenticated(state, Origin::of(&request), action, why).await),
    };
    let principal = match state.validator.validate(&token).await {
        Ok(principal) => principal,
        Err(why @ ValidationError::KeysUnavailable) => {
            return Err(Refusal::KeysUnavailable(why).into_response());
        }
        Err(why) => return Err(unauthenticated(state, Origin::of(&request), action, why).await),
    };
    admit(state, request, principal, token)
}

/// The authorization policy, then the identity handed to the function.
#[allow(clippy::result_large_err)]
fn admit(
    state: &AppState,
    mut request: Request,
    principal: Arc<Principal>,
    access_token: String,
) -> Result<Request, Response> {
    if let Err(why) = authorize(&state.config, &principal) {
        tracing::info!(reason = %why, subject = %principal.subject, "authorization policy refused the caller");
        return Err(Refusal::Forbidden(Some(why)).into_response());
    }
    state
        .principal_headers
        .inject(request.headers_mut(), &principal);
    request.extensions_mut().insert(Authenticated {
        principal,
        access_token,
    });
    Ok(request)
}

/// EasyAuth's built-in authorization: allowed client applications, allowed identities, and the
/// required scopes or roles. Required scopes serve user tokens and required roles app tokens:
/// with both configured, a token passes with all the scopes or all the roles.
pub fn authorize(config: &Config, principal: &Principal) -> Result<(), ValidationError> {
    let refuse = |claim: &str| {
        Err(ValidationError::RequiredClaim {
            claim: claim.into(),
        })
    };
    if !config.allowed_applications.is_empty()
        && !principal
            .client_app
            .as_ref()
            .is_some_and(|app| config.allowed_applications.contains(app))
    {
        return refuse("azp");
    }
    if !config.allowed_identities.is_empty()
        && !principal
            .object_id
            .as_ref()
            .is_some_and(|oid| config.allowed_identities.contains(oid))
    {
        return refuse("oid");
    }
    let (scopes, roles) = (&config.required_scopes, &config.required_roles);
    if scopes.is_empty() && roles.is_empty() {
        return Ok(());
    }
    let has_scopes = !scopes.is_empty() && scopes.iter().all(|s| principal.has_scope(s));
    let has_roles = !roles.is_empty() && roles.iter().all(|r| principal.has_role(r));
    if has_scopes || has_roles {
        Ok(())
    } else if principal.scopes.is_empty() && !roles.is_empty() {
        refuse("roles")
    } else {
        refuse("scp")
    }
}

/// What the unauthenticated action needs from the request, copied out before any await.
struct Origin {
    /// A script (XHR) request: EasyAuth answers it 401 rather than with a redirect it cannot follow.
    xhr: bool,
    /// Where the site is, from a plain `Host`.
    site: Option<Site>,
    /// Path and query: where the browser returns after signing in (the query may hold the
    /// function key, so it stays in this site's own cookie and never travels to the IdP).
    target: String,
}

impl Origin {
    fn of(request: &Request) -> Self {
        let headers = request.headers();
        Self {
            xhr: headers
                .get("x-requested-with")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest")),
            site: Site::of(headers),
            target: request
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        }
    }
}

async fn unauthenticated(
    state: &AppState,
    origin: Origin,
    action: UnauthenticatedAction,
    why: ValidationError,
) -> Response {
    tracing::info!(reason = %why, ?action, "unauthenticated request");
    match (action, &origin.site) {
        (UnauthenticatedAction::RedirectToLoginPage, Some(site)) if !origin.xhr => {
            match login_session::start(state, site, &origin.target).await {
                Ok(redirect) => return redirect,
                Err(failed) => {
                    tracing::info!(reason = %failed, "no login redirect");
                    Refusal::Unauthenticated(why)
                }
            }
        }
        (UnauthenticatedAction::Return403, _) => Refusal::Forbidden(None),
        _ => Refusal::Unauthenticated(why),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn principal(scopes: &[&str], roles: &[&str]) -> Principal {
        Principal {
            subject: "s".into(),
            object_id: Some("oid-1".into()),
            name: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            client_app: Some("spa".into()),
            issuer: "i".into(),
            audience: "a".into(),
            expires_at: 0,
            claims: Default::default(),
        }
    }

    fn config(scopes: &[&str], roles: &[&str]) -> Config {
        let mut c = Config::from_source(&std::collections::HashMap::from([
            ("HELLO_FUNCTION_KEYS", "0123456789abcdef0123".to_owned()),
            (
                "EASYAUTH_OPENID_CONFIG_URL",
                "http://127.0.0.1:1/.well-known/openid-configuration".to_owned(),
            ),
            ("EASYAUTH_AUDIENCES", "api".to_owned()),
        ]))
        .unwrap();
        c.required_scopes = scopes.iter().map(|s| s.to_string()).collect();
        c.required_roles = roles.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn scopes_serve_users_and_roles_serve_apps() {
        let both = config(&["accessapp"], &["access:test-api"]);
        assert!(authorize(&both, &principal(&["accessapp"], &[])).is_ok());
        assert!(authorize(&both, &principal(&[], &["access:test-api"])).is_ok());
        assert_eq!(
            authorize(&both, &principal(&[], &["other"])),
            Err(ValidationError::RequiredClaim {
                claim: "roles".into()
            })
        );
        assert_eq!(
            authorize(&both, &principal(&["read"], &[])),
            Err(ValidationError::RequiredClaim {
                claim: "scp".into()
            })
        );
        assert!(authorize(&config(&[], &[]), &principal(&[], &[])).is_ok());
        let scopes_only = config(&["accessapp", "read"], &[]);
        assert!(
            authorize(
                &scopes_only,
                &principal(&["accessapp"], &["access:test-api"])
            )
            .is_err()
        );
    }

    #[test]
    fn allowed_applications_and_identities() {
        let mut c = config(&[], &[]);
        c.allowed_applications = vec!["spa".into()];
        assert!(authorize(&c, &principal(&[], &[])).is_ok());
        c.allowed_applications = vec!["other".into()];
        assert!(authorize(&c, &principal(&[], &[])).is_err());
        c.allowed_applications.clear();
        c.allowed_identities = vec!["oid-2".into()];
        assert!(authorize(&c, &principal(&[], &[])).is_err());
    }
}
