//! Settings, read once from the environment (`contract.md`'s names; Azure app settings in the cloud).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use http_serve::settings::{Env, Source, bad, value};
use ipnet::IpNet;

pub use http_serve::settings::ConfigError;

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
    pub function_keys: Vec<FunctionKey>,
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

http_serve::secret_type!(
    /// One accepted function key (`HELLO_FUNCTION_KEYS`); `Debug` never shows it.
    pub struct FunctionKey
);

http_serve::secret_type!(
    /// EasyAuth's client secret: sent only in the token request's body, never printed.
    pub struct ClientSecret
);

/// The shortest key accepted: the host's own keys are far longer, and a short one is guessable.
const MIN_KEY_LENGTH: usize = 16;

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_source(&Env)
    }

    /// From any source of variables (tests pass a map). Empty counts as unset, as an Azure app
    /// setting left blank.
    pub fn from_source(source: &dyn Source) -> Result<Config, ConfigError> {
        let lists = |var, separators: &[char]| -> Result<Vec<String>, ConfigError> {
            Ok(list(value(source, var)?.as_deref(), separators))
        };
        Ok(Config {
            bind_address: bind_address(source)?,
            port: port(source)?,
            function_keys: function_keys(source)?,
            openid_config_urls: openid_config_urls(source)?,
            audiences: audiences(source)?,
            unauthenticated_action: unauthenticated_action(source)?,
            required_scopes: lists("EASYAUTH_REQUIRED_SCOPES", &[',', ' '])?,
            required_roles: lists("EASYAUTH_REQUIRED_ROLES", &[',', ' '])?,
            allowed_applications: lists("EASYAUTH_ALLOWED_APPLICATIONS", &[','])?,
            allowed_identities: lists("EASYAUTH_ALLOWED_IDENTITIES", &[','])?,
            client_secret: value(source, "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET")?
                .map(ClientSecret::new),
            allowed_ips: allowed_ips(source)?,
            clock_skew: Duration::from_secs(300),
            min_key_refetch_interval: Duration::from_secs(60),
        })
    }
}

fn bind_address(source: &dyn Source) -> Result<IpAddr, ConfigError> {
    const VAR: &str = "HELLO_BIND_ADDRESS";
    match value(source, VAR)? {
        None => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(v) => v
            .parse()
            .map_err(|_| bad(VAR, format!("`{v}` is not an IP address"))),
    }
}

fn port(source: &dyn Source) -> Result<u16, ConfigError> {
    const VAR: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
    match value(source, VAR)? {
        None => Ok(7071),
        Some(v) => v
            .parse()
            .map_err(|_| bad(VAR, format!("`{v}` is not a port number"))),
    }
}

fn function_keys(source: &dyn Source) -> Result<Vec<FunctionKey>, ConfigError> {
    const VAR: &str = "HELLO_FUNCTION_KEYS";
    let keys = list(value(source, VAR)?.as_deref(), &[',']);
    if keys.is_empty() {
        return Err(bad(VAR, "required: comma-separated function keys"));
    }
    if let Some(short) = keys.iter().find(|k| k.len() < MIN_KEY_LENGTH) {
        return Err(bad(
            VAR,
            format!(
                "a key of {} characters is too short (at least {MIN_KEY_LENGTH})",
                short.len()
            ),
        ));
    }
    Ok(keys.into_iter().map(FunctionKey::new).collect())
}

fn audiences(source: &dyn Source) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "EASYAUTH_AUDIENCES";
    let audiences = list(value(source, VAR)?.as_deref(), &[',']);
    if audiences.is_empty() {
        return Err(bad(VAR, "required: the API app's client id"));
    }
    Ok(audiences)
}

fn unauthenticated_action(source: &dyn Source) -> Result<UnauthenticatedAction, ConfigError> {
    const VAR: &str = "EASYAUTH_UNAUTHENTICATED_ACTION";
    let Some(v) = value(source, VAR)? else {
        return Ok(UnauthenticatedAction::RedirectToLoginPage);
    };
    match v.to_ascii_lowercase().as_str() {
        "redirecttologinpage" => Ok(UnauthenticatedAction::RedirectToLoginPage),
        "return401" => Ok(UnauthenticatedAction::Return401),
        "return403" => Ok(UnauthenticatedAction::Return403),
        _ => Err(bad(
            VAR,
            format!("`{v}` is not RedirectToLoginPage, Return401 or Return403"),
        )),
    }
}

fn allowed_ips(source: &dyn Source) -> Result<Option<Vec<IpNet>>, ConfigError> {
    const VAR: &str = "HELLO_ALLOWED_IPS";
    let Some(v) = value(source, VAR)? else {
        return Ok(None);
    };
    list(Some(&v), &[','])
        .iter()
        .map(|cidr| parse_net(cidr))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|text| bad(VAR, format!("`{text}` is not an IP address or CIDR")))
}

/// The plural name takes a comma-separated list; the singular one (the first name, kept working)
/// one URL. Both at once would leave it unclear which was meant, so that stops the start.
fn openid_config_urls(source: &dyn Source) -> Result<Vec<String>, ConfigError> {
    const ONE: &str = "EASYAUTH_OPENID_CONFIG_URL";
    const MANY: &str = "EASYAUTH_OPENID_CONFIG_URLS";
    let (var, urls) = match (value(source, ONE)?, value(source, MANY)?) {
        (Some(_), Some(_)) => {
            return Err(bad(MANY, format!("set either {MANY} or {ONE}, not both")));
        }
        (Some(one), None) => (ONE, vec![one]),
        (None, Some(many)) => (MANY, list(Some(&many), &[','])),
        (None, None) => (MANY, Vec::new()),
    };
    if urls.is_empty() {
        return Err(bad(
            var,
            "required: the identity provider's openid-configuration URL(s)",
        ));
    }
    for url in &urls {
        let parsed =
            url::Url::parse(url).map_err(|e| bad(var, format!("`{url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(var, format!("`{url}` is not an http(s) URL")));
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

    fn parse(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<&'static str, String> = [
            ("HELLO_FUNCTION_KEYS", "0123456789abcdef0123"),
            (
                "EASYAUTH_OPENID_CONFIG_URL",
                "http://127.0.0.1:7010/.well-known/openid-configuration",
            ),
            ("EASYAUTH_AUDIENCES", "api"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        for (k, v) in vars {
            map.insert(k, (*v).to_owned());
        }
        Config::from_source(&map)
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
            c.function_keys
                .iter()
                .map(FunctionKey::secret)
                .collect::<Vec<_>>(),
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
            assert_eq!(parse(&vars).unwrap_err().var, variable);
        }
    }

    #[test]
    fn debug_shows_no_function_key() {
        let c = parse(&[(
            "HELLO_FUNCTION_KEYS",
            "first-secret-key-0123,second-secret-key-4567",
        )])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("FunctionKey(<redacted>)"), "{shown}");
        for secret in ["first-secret-key-0123", "second-secret-key-4567"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
