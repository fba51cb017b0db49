//! Which scopes an app may get: OpenID scopes, its own client id, and the delegated
//! permissions its registration lists — all for at most one API (one audience per token).

use crate::config::{ApiApp, Config, SpaApp};
use crate::oauth::{ClientId, Scopes};

const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Scopes granted to a user sign-in.
#[derive(Debug, Clone)]
pub struct Granted {
    /// Canonical spellings, in request order: what the token response's `scope` lists.
    pub scopes: Scopes,
    /// The API the access token is for, and the short scope names for `scp`.
    pub api: Option<(ClientId, Vec<String>)>,
}

impl Granted {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.has(scope)
    }

    pub fn joined(&self) -> String {
        self.scopes.joined()
    }
}

/// Checks the requested scopes (the words of a `scope` parameter) against the SPA's
/// registration; the error is the `error_description` for `invalid_scope`.
pub fn resolve<'a>(
    config: &Config,
    spa: &SpaApp,
    requested: impl IntoIterator<Item = &'a str>,
) -> Result<Granted, String> {
    let mut scopes = Scopes::default();
    let mut api: Option<(&ApiApp, Vec<String>)> = None;
    for raw in requested {
        let canonical = if let Some(oidc) = OIDC_SCOPES.iter().find(|s| s.eq_ignore_ascii_case(raw))
        {
            (*oidc).to_owned()
        } else if raw.eq_ignore_ascii_case(&spa.client_id) {
            spa.client_id.clone()
        } else {
            let Some((permission, spelled)) = permission(config, spa, raw) else {
                return Err(format!(
                    "The scope '{raw}' is not exposed to application '{}' by its registration.",
                    spa.client_id
                ));
            };
            let (owner, short) = config
                .apis
                .iter()
                .find_map(|a| {
                    a.scopes
                        .iter()
                        .find(|s| a.scope_uri(s) == *permission)
                        .map(|s| (a, s.clone()))
                })
                .ok_or_else(|| format!("The scope '{raw}' is not exposed by any API."))?;
            match &mut api {
                Some((current, names)) if current.client_id == owner.client_id => names.push(short),
                Some(_) => return Err("Scopes for more than one resource were requested.".into()),
                None => api = Some((owner, vec![short])),
            }
            spelled
        };
        scopes.insert(&canonical);
    }
    if scopes.is_empty() {
        return Err("The request must include a scope, e.g. 'openid'.".into());
    }
    if scopes.iter().all(|s| s == "offline_access") {
        return Err("'offline_access' alone grants nothing: add 'openid' or an API scope.".into());
    }
    Ok(Granted {
        scopes,
        api: api.map(|(a, names)| (ClientId::new(a.client_id.as_str()), names)),
    })
}

/// The registered permission `raw` asks for, and its canonical spelling: the registered URI, or
/// `api://{api client id}/{scope}`, the default Application ID URI every Entra app answers to
/// (External ID's scope form), for a permission the app holds under the API's configured URI.
fn permission<'a>(config: &Config, spa: &'a SpaApp, raw: &str) -> Option<(&'a String, String)> {
    if let Some(p) = spa
        .api_permissions
        .iter()
        .find(|p| p.eq_ignore_ascii_case(raw))
    {
        return Some((p, p.clone()));
    }
    let rest = raw
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("api://"))
        .map(|_| &raw[6..])?;
    let (client_id, short) = rest.rsplit_once('/')?;
    let api = config
        .apis
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))?;
    let short = api.scopes.iter().find(|s| s.eq_ignore_ascii_case(short))?;
    let registered = api.scope_uri(short);
    let held = spa.api_permissions.iter().find(|p| **p == registered)?;
    Some((held, format!("api://{}/{short}", api.client_id)))
}
