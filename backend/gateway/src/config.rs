//! Settings, parsed once from `GATEWAY_*` environment variables (names in `docs/contract.md`).
//!
//! Nothing below this module reads the environment. [`PolicyConfig`] is the part that has an API
//! Management equivalent (it is all `render-apim-policy` needs, so rendering works without the
//! function key); [`Config`] adds what only a running gateway needs.

use crate::client_addr::TrustedProxies;
use crate::front_door::FrontDoorId;
use crate::ip_filter::IpFilter;
use crate::tls::{ClientCertRules, TlsListener};
use axum::http::HeaderValue;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use token_validation::RequiredClaim;
use url::Url;

pub(crate) use http_serve::settings::bad;
pub use http_serve::settings::{ConfigError, Env, Source};

/// `calls` per `period`, as APIM's `rate-limit-by-key calls=… renewal-period=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub calls: u32,
    pub period: Duration,
}

impl RateLimit {
    /// APIM accepts renewal periods up to 300 s; more would render a policy APIM refuses.
    pub const MAX_PERIOD_SECONDS: u64 = 300;

    pub fn new(calls: u32, period_seconds: u64) -> Self {
        Self {
            calls,
            period: Duration::from_secs(period_seconds),
        }
    }

    pub(crate) fn parse(var: &'static str, text: &str) -> Result<Self, ConfigError> {
        let (calls, seconds) = calls_per_seconds(var, text, Self::MAX_PERIOD_SECONDS)?;
        Ok(Self::new(calls, seconds))
    }
}

/// `calls/seconds` as the limits and quotas are written: at least one call, a period of 1 to
/// `max_seconds`.
pub(crate) fn calls_per_seconds<T: std::str::FromStr + PartialEq + From<u8>>(
    var: &'static str,
    text: &str,
    max_seconds: u64,
) -> Result<(T, u64), ConfigError> {
    let (calls, seconds) = text
        .split_once('/')
        .ok_or_else(|| bad(var, format!("expected `calls/seconds`, got `{text}`")))?;
    let calls: T = calls.trim().parse().map_err(|_| {
        bad(
            var,
            format!("`{calls}` is not a whole number of calls (in `{text}`)"),
        )
    })?;
    let seconds: u64 = seconds.trim().parse().map_err(|_| {
        bad(
            var,
            format!("`{seconds}` is not a whole number of seconds (in `{text}`)"),
        )
    })?;
    if calls == T::from(0) {
        return Err(bad(var, "calls must be at least 1"));
    }
    if !(1..=max_seconds).contains(&seconds) {
        return Err(bad(
            var,
            format!(
                "the period must be 1 to {max_seconds} seconds (API Management's limit), got {seconds}"
            ),
        ));
    }
    Ok((calls, seconds))
}

/// The function key, sent upstream as `x-functions-key`. `Debug` never shows it.
#[derive(Clone)]
pub struct FunctionKey(HeaderValue);

impl FunctionKey {
    pub fn new(key: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "GATEWAY_BACKEND_FUNCTION_KEY";
        let key = key.trim();
        if key.is_empty() {
            return Err(bad(VAR, "must not be empty"));
        }
        // Function keys are URL-safe base64; anything else cannot be a header value anyway.
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(VAR, "must be printable ASCII without spaces"));
        }
        let mut value = HeaderValue::from_str(key).map_err(|_| bad(VAR, "not a header value"))?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Debug for FunctionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FunctionKey(<redacted>)")
    }
}

/// The settings that have an API Management policy equivalent.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Base URL of the function app, without a trailing slash.
    pub backend_url: Url,
    /// Exact origins (`scheme://host[:port]`) the SPA is served from.
    pub allowed_origins: Vec<String>,
    pub openid_config_urls: Vec<Url>,
    pub audiences: Vec<String>,
    /// Empty: the issuers named by the openid-configuration documents.
    pub issuers: Vec<String>,
    pub clock_skew: Duration,
    pub per_ip: RateLimit,
    pub per_subject: RateLimit,
    /// `GATEWAY_PRODUCTS`: products and subscriptions; `None` checks no subscription key.
    pub products: Option<crate::subscription::Catalogue>,
    /// validate-jwt `required-claims` (`GATEWAY_REQUIRED_CLAIMS`); empty: none.
    pub required_claims: Vec<RequiredClaim>,
    /// `GATEWAY_IP_FILTER`.
    pub ip_filter: Option<IpFilter>,
    /// limit-concurrency `max-count` (`GATEWAY_MAX_CONCURRENCY`).
    pub max_concurrency: Option<u32>,
    /// check-header on `X-Azure-FDID` (`GATEWAY_FRONT_DOOR_ID`).
    pub front_door_id: Option<FrontDoorId>,
    /// validate-client-certificate (with `GATEWAY_CLIENT_CA`).
    pub client_certificate: Option<ClientCertRules>,
    /// The API's delegated permissions, for the OpenAPI document's `oauth2` scheme
    /// (`GATEWAY_API_SCOPES`; default `{first audience}/.default`).
    pub api_scopes: Vec<String>,
    /// validate-parameters / -content / -status-code from the OpenAPI document
    /// (`GATEWAY_VALIDATION`); `None`: not validated.
    pub validation: Option<crate::validation::Action>,
}

/// Everything the running gateway needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub policy: PolicyConfig,
    pub bind_address: IpAddr,
    pub port: u16,
    pub function_key: FunctionKey,
    /// Whole backend exchange (connect, send, read the answer); past it the client gets 504.
    pub backend_timeout: Duration,
    pub backend_connect_timeout: Duration,
    /// Shared counters; `None` keeps them in this process.
    pub redis_url: Option<String>,
    /// Per limiter, the most keys (IPs or subjects) kept in memory; see `rate_limit`.
    pub rate_limit_max_keys: u64,
    /// `GATEWAY_ADMIN_PORT`: `/usage` and `/metrics`, on loopback only.
    pub admin_port: Option<u16>,
    /// Peers whose `X-Forwarded-For` names the client (`GATEWAY_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// HTTPS instead of HTTP (`GATEWAY_TLS_CERT`, `GATEWAY_TLS_KEY`, `GATEWAY_CLIENT_CA`).
    pub tls: Option<TlsListener>,
}

/// Set and not blank.
pub(crate) fn value(source: &dyn Source, var: &'static str) -> Result<Option<String>, ConfigError> {
    Ok(source
        .get(var)?
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty()))
}

fn required(source: &dyn Source, var: &'static str) -> Result<String, ConfigError> {
    value(source, var)?.ok_or_else(|| bad(var, "is required"))
}

pub(crate) fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn required_list(source: &dyn Source, var: &'static str) -> Result<Vec<String>, ConfigError> {
    let items = list(&required(source, var)?);
    if items.is_empty() {
        return Err(bad(var, "needs at least one comma-separated value"));
    }
    Ok(items)
}

fn http_url(var: &'static str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| bad(var, format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(var, format!("`{text}` is not an http(s) URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(var, "URLs must not carry credentials"));
    }
    Ok(url)
}

fn number<T: std::str::FromStr>(
    source: &dyn Source,
    var: &'static str,
    default: T,
    what: &str,
) -> Result<T, ConfigError> {
    match value(source, var)? {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| bad(var, format!("`{text}` is not {what}"))),
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn origin(var: &'static str, text: &str) -> Result<String, ConfigError> {
    if text == "*" {
        return Err(bad(
            var,
            "`*` cannot be used: credentials are allowed, so origins must be listed (as APIM requires)",
        ));
    }
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    let url = http_url(var, trimmed)?;
    let canonical = url.origin().ascii_serialization();
    if !canonical.eq_ignore_ascii_case(trimmed) {
        return Err(bad(
            var,
            format!("`{text}` is not an origin (scheme://host[:port], no path)"),
        ));
    }
    Ok(canonical)
}

impl PolicyConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        const BACKEND: &str = "GATEWAY_BACKEND_URL";
        let backend_text =
            value(source, BACKEND)?.unwrap_or_else(|| "http://127.0.0.1:7071".to_owned());
        let mut backend_url = http_url(BACKEND, &backend_text)?;
        if backend_url.query().is_some() || backend_url.fragment().is_some() {
            return Err(bad(BACKEND, "must not have a query or fragment"));
        }
        let path = backend_url.path().trim_end_matches('/').to_owned();
        backend_url.set_path(&path);

        const ORIGINS: &str = "GATEWAY_ALLOWED_ORIGINS";
        let allowed_origins = required_list(source, ORIGINS)?
            .iter()
            .map(|o| origin(ORIGINS, o))
            .collect::<Result<_, _>>()?;

        const OPENID: &str = "GATEWAY_OPENID_CONFIG_URLS";
        let openid_config_urls = required_list(source, OPENID)?
            .iter()
            .map(|u| http_url(OPENID, u))
            .collect::<Result<_, _>>()?;

        let audiences = required_list(source, "GATEWAY_AUDIENCES")?;
        let issuers = value(source, "GATEWAY_ISSUERS")?
            .map(|v| list(&v))
            .unwrap_or_default();

        const SKEW: &str = "GATEWAY_CLOCK_SKEW_SECONDS";
        let skew: u64 = number(source, SKEW, 300, "a whole number of seconds")?;
        if skew > 3600 {
            return Err(bad(SKEW, "more than an hour of clock skew is not sensible"));
        }

        let api_scopes = crate::openapi::parse_scopes(
            value(source, crate::openapi::SCOPES_VAR)?.as_deref(),
            &audiences,
        )?;

        let limit = |var: &'static str, default: RateLimit| -> Result<RateLimit, ConfigError> {
            match value(source, var)? {
                None => Ok(default),
                Some(text) => RateLimit::parse(var, &text),
            }
        };
        Ok(Self {
            backend_url,
            allowed_origins,
            openid_config_urls,
            audiences,
            issuers,
            clock_skew: Duration::from_secs(skew),
            per_ip: limit("GATEWAY_RATE_LIMIT_PER_IP", RateLimit::new(300, 120))?,
            per_subject: limit("GATEWAY_RATE_LIMIT_PER_SUBJECT", RateLimit::new(15, 60))?,
            products: value(source, crate::subscription::VAR)?
                .map(|path| crate::subscription::Catalogue::load(std::path::Path::new(&path)))
                .transpose()?,
            required_claims: match value(source, crate::required_claims::VAR)? {
                Some(text) => crate::required_claims::parse(&text)?,
                None => Vec::new(),
            },
            ip_filter: value(source, crate::ip_filter::VAR)?
                .map(|text| IpFilter::parse(&text))
                .transpose()?,
            max_concurrency: value(source, crate::concurrency::VAR)?
                .map(|text| crate::concurrency::parse(&text))
                .transpose()?,
            front_door_id: value(source, crate::front_door::VAR)?
                .map(|text| FrontDoorId::parse(&text))
                .transpose()?,
            client_certificate: ClientCertRules::from_source(source)?,
            api_scopes,
            validation: value(source, crate::validation::VAR)?
                .map(|text| crate::validation::Action::parse(&text))
                .transpose()?,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }
}

impl Config {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let policy = PolicyConfig::from_source(source)?;

        const BIND: &str = "GATEWAY_BIND_ADDRESS";
        let bind_address = number(source, BIND, IpAddr::from([127, 0, 0, 1]), "an IP address")?;
        const PORT: &str = "GATEWAY_PORT";
        let port: u16 = number(source, PORT, 7080, "a port number")?;
        if port == 0 {
            return Err(bad(PORT, "must be 1 to 65535"));
        }

        let function_key = FunctionKey::new(&required(source, "GATEWAY_BACKEND_FUNCTION_KEY")?)?;

        let seconds = |var: &'static str, default: u64| -> Result<Duration, ConfigError> {
            let s: u64 = number(source, var, default, "a whole number of seconds")?;
            if !(1..=600).contains(&s) {
                return Err(bad(var, "must be 1 to 600 seconds"));
            }
            Ok(Duration::from_secs(s))
        };
        let backend_timeout = seconds("GATEWAY_BACKEND_TIMEOUT_SECONDS", 30)?;
        let backend_connect_timeout = seconds("GATEWAY_BACKEND_CONNECT_TIMEOUT_SECONDS", 5)?;

        const REDIS: &str = "GATEWAY_REDIS_URL";
        let redis_url = value(source, REDIS)?;
        if let Some(url) = &redis_url {
            // The URL may hold a password: the reason names the problem, never the value.
            redis::Client::open(url.as_str())
                .map_err(|e| bad(REDIS, format!("not a usable Redis URL ({:?})", e.kind())))?;
        }

        const MAX_KEYS: &str = "GATEWAY_RATE_LIMIT_MAX_KEYS";
        let rate_limit_max_keys: u64 = number(source, MAX_KEYS, 100_000, "a whole number")?;
        if rate_limit_max_keys < 100 {
            return Err(bad(MAX_KEYS, "must be at least 100"));
        }

        const ADMIN: &str = "GATEWAY_ADMIN_PORT";
        let admin_port: Option<u16> = value(source, ADMIN)?
            .map(|text| {
                text.parse()
                    .ok()
                    .filter(|&p| p != 0 && p != port)
                    .ok_or_else(|| {
                        bad(
                            ADMIN,
                            format!("`{text}` is not a port (1 to 65535, not GATEWAY_PORT's)"),
                        )
                    })
            })
            .transpose()?;

        Ok(Self {
            policy,
            bind_address,
            port,
            function_key,
            backend_timeout,
            backend_connect_timeout,
            redis_url,
            rate_limit_max_keys,
            admin_port,
            trusted_proxies: value(source, crate::client_addr::VAR)?
                .map(|text| TrustedProxies::parse(&text))
                .transpose()?
                .unwrap_or_default(),
            tls: TlsListener::from_source(source)?,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn minimal() -> HashMap<&'static str, String> {
        HashMap::from([
            ("GATEWAY_BACKEND_FUNCTION_KEY", "k3y".to_owned()),
            (
                "GATEWAY_ALLOWED_ORIGINS",
                "http://127.0.0.1:8080, http://localhost:8080/".to_owned(),
            ),
            (
                "GATEWAY_OPENID_CONFIG_URLS",
                "http://127.0.0.1:7010/a/.well-known/openid-configuration".to_owned(),
            ),
            ("GATEWAY_AUDIENCES", "api-client-id".to_owned()),
        ])
    }

    fn error_with(var: &'static str, text: &str) -> ConfigError {
        let mut env = minimal();
        env.insert(var, text.to_owned());
        Config::from_source(&env).unwrap_err()
    }

    #[test]
    fn defaults_are_the_contracts() {
        let config = Config::from_source(&minimal()).unwrap();
        assert_eq!(config.port, 7080);
        assert_eq!(config.policy.backend_url.as_str(), "http://127.0.0.1:7071/");
        assert_eq!(config.policy.clock_skew, Duration::from_secs(300));
        assert_eq!(config.policy.per_ip, RateLimit::new(300, 120));
        assert_eq!(config.policy.per_subject, RateLimit::new(15, 60));
        assert_eq!(
            config.policy.allowed_origins,
            ["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        assert!(config.policy.issuers.is_empty());
        assert!(config.redis_url.is_none());
        assert!(!format!("{config:?}").contains("k3y"));
        // None of issue 17's policies is on unless set: the seed's set-up is unchanged.
        assert!(config.policy.required_claims.is_empty());
        assert!(config.policy.ip_filter.is_none());
        assert!(config.policy.max_concurrency.is_none());
        assert!(config.policy.front_door_id.is_none());
        assert_eq!(config.trusted_proxies, TrustedProxies::default());
        assert!(config.policy.client_certificate.is_none() && config.tls.is_none());
    }

    #[test]
    fn each_bad_setting_is_named() {
        for (var, text) in [
            ("GATEWAY_PORT", "http"),
            ("GATEWAY_PORT", "0"),
            ("GATEWAY_RATE_LIMIT_PER_IP", "300"),
            ("GATEWAY_RATE_LIMIT_PER_IP", "0/10"),
            ("GATEWAY_RATE_LIMIT_PER_SUBJECT", "15/301"),
            ("GATEWAY_RATE_LIMIT_PER_SUBJECT", "x/60"),
            ("GATEWAY_CLOCK_SKEW_SECONDS", "-1"),
            ("GATEWAY_BACKEND_URL", "ftp://x"),
            ("GATEWAY_BACKEND_URL", "http://x/?code=1"),
            ("GATEWAY_ALLOWED_ORIGINS", "*"),
            ("GATEWAY_ALLOWED_ORIGINS", "http://a.example/path"),
            ("GATEWAY_OPENID_CONFIG_URLS", "not a url"),
            ("GATEWAY_AUDIENCES", " , "),
            ("GATEWAY_REDIS_URL", "mysql://x"),
            ("GATEWAY_BACKEND_FUNCTION_KEY", "has space"),
            ("GATEWAY_BACKEND_TIMEOUT_SECONDS", "0"),
            ("GATEWAY_BIND_ADDRESS", "localhost"),
            ("GATEWAY_PRODUCTS", "/nonexistent/products.toml"),
            ("GATEWAY_ADMIN_PORT", "7080"),
            ("GATEWAY_ADMIN_PORT", "admin"),
            ("GATEWAY_REQUIRED_CLAIMS", "scp="),
            ("GATEWAY_IP_FILTER", "permit:10.0.0.0/8"),
            ("GATEWAY_MAX_CONCURRENCY", "0"),
            ("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/40"),
            ("GATEWAY_FRONT_DOOR_ID", "has space"),
            ("GATEWAY_TLS_CERT", "/nonexistent/cert.pem"),
            ("GATEWAY_TLS_KEY", "/nonexistent/key.pem"),
            ("GATEWAY_CLIENT_CA", "/nonexistent/ca.pem"),
            ("GATEWAY_CLIENT_CERT_THUMBPRINTS", "abc"),
            ("GATEWAY_CLIENT_CERT_SUBJECTS", "CN=x"),
            ("GATEWAY_API_SCOPES", "a b"),
            ("GATEWAY_VALIDATION", "block"),
        ] {
            assert_eq!(error_with(var, text).var, var, "{var}={text}");
        }
        for var in [
            "GATEWAY_BACKEND_FUNCTION_KEY",
            "GATEWAY_ALLOWED_ORIGINS",
            "GATEWAY_OPENID_CONFIG_URLS",
            "GATEWAY_AUDIENCES",
        ] {
            let mut env = minimal();
            env.remove(var);
            assert_eq!(Config::from_source(&env).unwrap_err().var, var);
        }
    }

    #[test]
    fn a_bad_key_is_reported_without_its_value() {
        let error = error_with("GATEWAY_BACKEND_FUNCTION_KEY", "secret value");
        assert!(!error.to_string().contains("secret"));
        let error = error_with("GATEWAY_REDIS_URL", "mysql://user:hunter2@x");
        assert!(!error.to_string().contains("hunter2"));
    }
}
