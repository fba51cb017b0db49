//! Settings, read once from the environment (`contract.md`'s names; Azure app settings in the cloud).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;

/// What EasyAuth does with a request that carries no valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnauthenticatedAction {
    /// 302 to the identity provider's authorize endpoint (the seed's setting).
    RedirectToLoginPage,
    Return401,
    Return403,
}

/// The function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HELLO_BIND_ADDRESS` (default 127.0.0.1; the Functions host talks to the handler on loopback).
    pub bind_address: IpAddr,
    /// `FUNCTIONS_CUSTOMHANDLER_PORT` (default 7071).
    pub port: u16,
    /// `HELLO_FUNCTION_KEYS`: accepted function keys.
    pub function_keys: Vec<String>,
    /// `EASYAUTH_OPENID_CONFIG_URLS` (or the singular `EASYAUTH_OPENID_CONFIG_URL`): EasyAuth's
    /// "Issuer URL", the policy's metadata document, plus any other issuer trusted beside it
    /// (seed 004: the tenant-level Entra issuer of client-credentials tokens).
    pub openid_config_urls: Vec<String>,
    /// `EASYAUTH_AUDIENCES`: accepted `aud` values; the first is the client id of the login redirect.
    pub audiences: Vec<String>,
    /// `EASYAUTH_UNAUTHENTICATED_ACTION` (default `RedirectToLoginPage`).
    pub unauthenticated_action: UnauthenticatedAction,
    /// `EASYAUTH_REQUIRED_SCOPES`: delegated permissions a user token must all have.
    pub required_scopes: Vec<String>,
    /// `EASYAUTH_REQUIRED_ROLES`: app roles an application token must all have.
    pub required_roles: Vec<String>,
    /// `EASYAUTH_ALLOWED_APPLICATIONS`: when set, the token's `azp`/`appid` must be one of these.
    pub allowed_applications: Vec<String>,
    /// `EASYAUTH_ALLOWED_IDENTITIES`: when set, the token's `oid` must be one of these.
    pub allowed_identities: Vec<String>,
    /// `MICROSOFT_PROVIDER_AUTHENTICATION_SECRET`: the API web app's client secret; with it the
    /// browser sign-in uses `code id_token` and redeems the code at the IdP's token endpoint.
    pub client_secret: Option<ClientSecret>,
    /// `HELLO_ALLOWED_IPS`: when set, only these networks may call (judged on the socket peer).
    pub allowed_ips: Option<Vec<IpNet>>,
    /// Leeway for `exp`/`nbf` (EasyAuth allows 5 minutes). Not an environment setting.
    pub clock_skew: Duration,
    /// How often a token with an unknown `kid` may refetch the JWKS. Not an environment setting.
    pub min_key_refetch_interval: Duration,
}

/// EasyAuth's client secret: sent only in the token request's body, never printed.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// A setting that stops the process at start: `<VARIABLE>: <why>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any source of variables (tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // Empty counts as unset, as an Azure app setting left blank.
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let bind_address = match get("HELLO_BIND_ADDRESS") {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(v) => v.parse().map_err(|_| {
                invalid("HELLO_BIND_ADDRESS", format!("`{v}` is not an IP address"))
            })?,
        };
        let port = match get("FUNCTIONS_CUSTOMHANDLER_PORT") {
            None => 7071,
            Some(v) => v.parse().map_err(|_| {
                invalid(
                    "FUNCTIONS_CUSTOMHANDLER_PORT",
                    format!("`{v}` is not a port number"),
                )
            })?,
        };

        const KEYS: &str = "HELLO_FUNCTION_KEYS";
        let function_keys = list(get(KEYS).as_deref(), &[',']);
        if function_keys.is_empty() {
            return Err(invalid(KEYS, "required: comma-separated function keys"));
        }
        if let Some(short) = function_keys.iter().find(|k| k.len() < 16) {
            return Err(invalid(
                KEYS,
                format!(
                    "a key of {} characters is too short (at least 16)",
                    short.len()
                ),
            ));
        }

        let openid_config_urls = openid_config_urls(&get)?;

        const AUDIENCES: &str = "EASYAUTH_AUDIENCES";
        let audiences = list(get(AUDIENCES).as_deref(), &[',']);
        if audiences.is_empty() {
            return Err(invalid(AUDIENCES, "required: the API app's client id"));
        }

        const ACTION: &str = "EASYAUTH_UNAUTHENTICATED_ACTION";
        let unauthenticated_action = match get(ACTION) {
            None => UnauthenticatedAction::RedirectToLoginPage,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "redirecttologinpage" => UnauthenticatedAction::RedirectToLoginPage,
                "return401" => UnauthenticatedAction::Return401,
                "return403" => UnauthenticatedAction::Return403,
                _ => {
                    return Err(invalid(
                        ACTION,
                        format!("`{v}` is not RedirectToLoginPage, Return401 or Return403"),
                    ));
                }
            },
        };

        let allowed_ips = match get("HELLO_ALLOWED_IPS") {
            None => None,
            Some(v) => Some(
                list(Some(&v), &[','])
                    .iter()
                    .map(|cidr| parse_net(cidr))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|bad| {
                        invalid(
                            "HELLO_ALLOWED_IPS",
                            format!("`{bad}` is not an IP address or CIDR"),
                        )
                    })?,
            ),
        };

        Ok(Config {
            bind_address,
            port,
            function_keys,
            openid_config_urls,
            audiences,
            unauthenticated_action,
            required_scopes: list(get("EASYAUTH_REQUIRED_SCOPES").as_deref(), &[',', ' ']),
            required_roles: list(get("EASYAUTH_REQUIRED_ROLES").as_deref(), &[',', ' ']),
            allowed_applications: list(get("EASYAUTH_ALLOWED_APPLICATIONS").as_deref(), &[',']),
            allowed_identities: list(get("EASYAUTH_ALLOWED_IDENTITIES").as_deref(), &[',']),
            client_secret: get("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET").map(ClientSecret),
            allowed_ips,
            clock_skew: Duration::from_secs(300),
            min_key_refetch_interval: Duration::from_secs(60),
        })
    }
}

/// The plural name takes a comma-separated list; the singular one (the first name, kept working)
/// one URL. Both at once would leave it unclear which was meant, so that stops the start.
fn openid_config_urls(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    const ONE: &str = "EASYAUTH_OPENID_CONFIG_URL";
    const MANY: &str = "EASYAUTH_OPENID_CONFIG_URLS";
    let (var, urls) = match (get(ONE), get(MANY)) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                MANY,
                format!("set either {MANY} or {ONE}, not both"),
            ));
        }
        (Some(one), None) => (ONE, vec![one]),
        (None, Some(many)) => (MANY, list(Some(&many), &[','])),
        (None, None) => (MANY, Vec::new()),
    };
    if urls.is_empty() {
        return Err(invalid(
            var,
            "required: the identity provider's openid-configuration URL(s)",
        ));
    }
    for url in &urls {
        let parsed =
            url::Url::parse(url).map_err(|e| invalid(var, format!("`{url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(var, format!("`{url}` is not an http(s) URL")));
        }
    }
    Ok(urls)
}

/// Non-empty, trimmed items of a list separated by any of `separators`.
fn list(value: Option<&str>, separators: &[char]) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(separators)
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `10.0.0.0/8`, or a single address (`/32` or `/128`).
fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = [
            ("HELLO_FUNCTION_KEYS", "0123456789abcdef0123"),
            (
                "EASYAUTH_OPENID_CONFIG_URL",
                "http://127.0.0.1:7010/.well-known/openid-configuration",
            ),
            ("EASYAUTH_AUDIENCES", "api"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in vars {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.port, 7071);
        assert_eq!(c.bind_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            c.unauthenticated_action,
            UnauthenticatedAction::RedirectToLoginPage
        );
        assert!(c.allowed_ips.is_none() && c.required_scopes.is_empty());
    }

    #[test]
    fn lists_and_actions_parse() {
        let c = parse(&[
            (
                "HELLO_FUNCTION_KEYS",
                " key-one-0123456789 , key-two-0123456789,",
            ),
            ("EASYAUTH_REQUIRED_SCOPES", "accessapp read,write"),
            ("EASYAUTH_REQUIRED_ROLES", "access:test-api"),
            ("EASYAUTH_UNAUTHENTICATED_ACTION", "return401"),
            ("HELLO_ALLOWED_IPS", "127.0.0.1/32, 10.0.0.0/8,::1"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
        ])
        .unwrap();
        assert_eq!(
            c.function_keys,
            ["key-one-0123456789", "key-two-0123456789"]
        );
        assert_eq!(c.required_scopes, ["accessapp", "read", "write"]);
        assert_eq!(c.required_roles, ["access:test-api"]);
        assert_eq!(c.unauthenticated_action, UnauthenticatedAction::Return401);
        assert_eq!(c.allowed_ips.unwrap().len(), 3);
        assert_eq!(c.port, 0);
    }

    #[test]
    fn several_metadata_urls_or_the_singular_name() {
        let singular = parse(&[]).unwrap();
        assert_eq!(
            singular.openid_config_urls,
            ["http://127.0.0.1:7010/.well-known/openid-configuration"]
        );
        let plural = parse(&[
            ("EASYAUTH_OPENID_CONFIG_URL", ""),
            (
                "EASYAUTH_OPENID_CONFIG_URLS",
                " https://idp/a/.well-known/openid-configuration , https://idp/b/.well-known/openid-configuration,",
            ),
        ])
        .unwrap();
        assert_eq!(
            plural.openid_config_urls,
            [
                "https://idp/a/.well-known/openid-configuration",
                "https://idp/b/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn bad_settings_name_their_variable() {
        for (vars, variable) in [
            (vec![("HELLO_FUNCTION_KEYS", " , ")], "HELLO_FUNCTION_KEYS"),
            (
                vec![("HELLO_FUNCTION_KEYS", "short")],
                "HELLO_FUNCTION_KEYS",
            ),
            (
                vec![("EASYAUTH_OPENID_CONFIG_URL", "")],
                "EASYAUTH_OPENID_CONFIG_URLS",
            ),
            (
                vec![
                    ("EASYAUTH_OPENID_CONFIG_URL", ""),
                    ("EASYAUTH_OPENID_CONFIG_URLS", "https://idp/a, ftp://idp/b"),
                ],
                "EASYAUTH_OPENID_CONFIG_URLS",
            ),
            (
                vec![(
                    "EASYAUTH_OPENID_CONFIG_URLS",
                    "https://idp/.well-known/openid-configuration",
                )],
                "EASYAUTH_OPENID_CONFIG_URLS",
            ),
            (
                vec![("EASYAUTH_OPENID_CONFIG_URL", "ftp://x/")],
                "EASYAUTH_OPENID_CONFIG_URL",
            ),
            (vec![("EASYAUTH_AUDIENCES", ",")], "EASYAUTH_AUDIENCES"),
            (
                vec![("EASYAUTH_UNAUTHENTICATED_ACTION", "AllowAnonymous")],
                "EASYAUTH_UNAUTHENTICATED_ACTION",
            ),
            (
                vec![("HELLO_ALLOWED_IPS", "10.0.0.0/33")],
                "HELLO_ALLOWED_IPS",
            ),
            (
                vec![("FUNCTIONS_CUSTOMHANDLER_PORT", "70000")],
                "FUNCTIONS_CUSTOMHANDLER_PORT",
            ),
            (
                vec![("HELLO_BIND_ADDRESS", "localhost")],
                "HELLO_BIND_ADDRESS",
            ),
        ] {
            assert_eq!(parse(&vars).unwrap_err().variable, variable);
        }
    }
}
