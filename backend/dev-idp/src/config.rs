//! Settings, parsed once at start: the TOML file (or the built-in default) plus environment
//! overrides. Nothing else in the crate reads environment variables.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use crate::password;

/// The built-in development configuration; also shipped as the commented example file.
pub const BUILTIN_TOML: &str = include_str!("../devidp.example.toml");

/// A loopback address of the provider's own: browsers keep cookies per host, not per port, so on
/// 127.0.0.1 any other local server could read its session cookie or plant its CSRF cookie.
pub const DEFAULT_BIND: [u8; 4] = [127, 0, 0, 2];

/// Well-known development secrets that must never be served beyond loopback.
const DEV_SECRETS: &[&str] = &[
    "dev-daemon-secret",
    "dev-easyauth-secret",
    "Hello-B2C-2026!",
];

/// A setting that stops the process at start; `Display` is the one line to print.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        // One line, whatever the underlying error printed.
        let problem: String = problem.into();
        let problem = problem.split_whitespace().collect::<Vec<_>>().join(" ");
        Self {
            setting: setting.into(),
            problem,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub bind_address: IpAddr,
    pub public_url: Option<Url>,
    pub data_dir: PathBuf,
    pub tenant: Tenant,
    pub lifetimes: Lifetimes,
    pub lockout: Lockout,
    pub limits: Limits,
    pub apis: Vec<ApiApp>,
    pub spas: Vec<SpaApp>,
    pub daemons: Vec<DaemonApp>,
    pub users: Vec<SeedUser>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub name: String,
    pub id: String,
    pub policies: Vec<UserFlow>,
}

/// A user flow: a bare name is sign-up-or-sign-in, `{ name, kind }` names the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UserFlow {
    SignUpSignIn(String),
    Other { name: String, kind: FlowKind },
}

/// What a user flow's pages do (B2C's user flow types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    SignUpSignIn,
    PasswordReset,
    ProfileEdit,
}

impl UserFlow {
    pub fn name(&self) -> &str {
        match self {
            Self::SignUpSignIn(name) | Self::Other { name, .. } => name,
        }
    }

    pub fn kind(&self) -> FlowKind {
        match self {
            Self::SignUpSignIn(_) => FlowKind::SignUpSignIn,
            Self::Other { kind, .. } => *kind,
        }
    }
}

impl Tenant {
    /// `devtenant.onmicrosoft.com`
    pub fn domain(&self) -> String {
        format!("{}.onmicrosoft.com", self.name)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    pub access_token_seconds: u64,
    pub id_token_seconds: u64,
    pub refresh_token_seconds: u64,
    pub authorization_code_seconds: u64,
    pub session_seconds: u64,
    /// How long a password-reset verification code is good for (B2C: 5 minutes).
    #[serde(default = "default_verification_code_seconds")]
    pub verification_code_seconds: u64,
}

fn default_verification_code_seconds() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockout {
    pub threshold: u32,
    pub lock_seconds: u64,
}

/// What an unauthenticated client can make the server spend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// argon2id computations at once (19 MiB each); 0 picks two per core, at most 8.
    pub concurrent_password_hashes: usize,
    /// Whole-request deadline, body included.
    pub request_seconds: u64,
    /// Open connections; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Unexpired password-reset codes, all addresses together (each is a row and a mail file).
    pub outstanding_verification_codes: i64,
}

impl Default for Limits {
    fn default() -> Self {
        let serving = http_serve::Limits::default();
        Self {
            concurrent_password_hashes: 0,
            request_seconds: serving.request_timeout.as_secs(),
            max_connections: serving.max_connections,
            outstanding_verification_codes: 1000,
        }
    }
}

impl Limits {
    /// The hash slots actually used: the setting, or two per core capped so that a full set
    /// stays far below 300 MiB.
    pub fn password_hashes(&self) -> usize {
        match self.concurrent_password_hashes {
            0 => std::thread::available_parallelism()
                .map_or(2, |n| n.get() * 2)
                .min(8),
            n => n,
        }
    }

    /// The serving loop's limits, with this table's values.
    pub fn serving(&self) -> http_serve::Limits {
        http_serve::Limits {
            request_timeout: std::time::Duration::from_secs(self.request_seconds),
            max_connections: self.max_connections,
            ..http_serve::Limits::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiApp {
    pub name: String,
    pub client_id: String,
    pub app_id_uri: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// The registration's Web platform redirect URIs (`https://{app}/.auth/login/aad/callback`):
    /// with them the API app is also a web client that signs users in with the implicit flow
    /// and `form_post`, as App Service Authentication does for the function.
    #[serde(default)]
    pub web_redirect_uris: Vec<String>,
    /// The web client's secret (Certificates & secrets): with it the app may also use the hybrid
    /// flow (`code id_token`) and redeem the code with `client_secret_post` or Basic.
    #[serde(default)]
    pub web_client_secret: Option<ClientSecret>,
}

/// A confidential client's secret: compared by digest in constant time, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

impl ApiApp {
    /// Full scope URI, e.g. `https://devtenant.onmicrosoft.com/hello-api/accessapp`.
    pub fn scope_uri(&self, scope: &str) -> String {
        format!("{}/{}", self.app_id_uri.trim_end_matches('/'), scope)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaApp {
    pub name: String,
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub api_permissions: Vec<String>,
    /// The sign-up-or-sign-in user flow the app is linked to (External ID chooses the flow by
    /// app, not by path); default: the tenant's first sign-up-or-sign-in flow.
    #[serde(default)]
    pub user_flow: Option<String>,
}

impl SpaApp {
    pub fn post_logout_uris(&self) -> &[String] {
        self.post_logout_redirect_uris
            .as_deref()
            .unwrap_or(&self.redirect_uris)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonApp {
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub app_roles: Vec<RoleGrant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    pub api: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

/// The file's shape; top-level settings may be overridden by the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    port: Option<u16>,
    bind_address: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    tenant: Tenant,
    lifetimes: Lifetimes,
    lockout: Lockout,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    apis: Vec<ApiApp>,
    #[serde(default)]
    spas: Vec<SpaApp>,
    #[serde(default)]
    daemons: Vec<DaemonApp>,
    #[serde(default)]
    users: Vec<SeedUser>,
}

/// Environment overrides, gathered by `main` (or a test) and handed to [`Config::load`].
#[derive(Debug, Default, Clone)]
pub struct EnvOverrides {
    pub config_file: Option<PathBuf>,
    pub port: Option<String>,
    pub bind_address: Option<String>,
    pub public_url: Option<String>,
    pub data_dir: Option<String>,
}

impl EnvOverrides {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            config_file: var("DEVIDP_CONFIG").map(PathBuf::from),
            port: var("DEVIDP_PORT"),
            bind_address: var("DEVIDP_BIND_ADDRESS"),
            public_url: var("DEVIDP_PUBLIC_URL"),
            data_dir: var("DEVIDP_DATA_DIR"),
        }
    }
}

impl Config {
    /// The built-in development configuration, as it is in `devidp.example.toml`.
    pub fn builtin() -> Result<Self, ConfigError> {
        Self::from_toml(BUILTIN_TOML, "built-in configuration")
    }

    /// Parses and checks a TOML document; `source` names it in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            match line {
                Some(line) => ConfigError::new(source, format!("line {line}: {}", e.message())),
                None => ConfigError::new(source, e.message()),
            }
        })?;
        let bind_address = match &file.bind_address {
            Some(a) => a.parse().map_err(|_| {
                ConfigError::new("bind_address", format!("`{a}` is not an IP address"))
            })?,
            None => IpAddr::from(DEFAULT_BIND),
        };
        let public_url = file
            .public_url
            .as_deref()
            .map(|u| parse_public_url("public_url", u))
            .transpose()?;
        let config = Config {
            port: file.port.unwrap_or(7010),
            bind_address,
            public_url,
            data_dir: file
                .data_dir
                .unwrap_or_else(|| PathBuf::from("target/dev-idp-data")),
            tenant: file.tenant,
            lifetimes: file.lifetimes,
            lockout: file.lockout,
            limits: file.limits,
            apis: file.apis,
            spas: file.spas,
            daemons: file.daemons,
            users: file.users,
        };
        config.check()?;
        Ok(config)
    }

    /// The file named by `DEVIDP_CONFIG` (or the built-in default) with the environment applied.
    pub fn load(env: &EnvOverrides) -> Result<Self, ConfigError> {
        let mut config = match &env.config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        "DEVIDP_CONFIG",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Self::from_toml(&text, &format!("DEVIDP_CONFIG ({})", path.display()))?
            }
            None => Self::builtin()?,
        };
        if let Some(port) = &env.port {
            config.port = port.trim().parse().map_err(|_| {
                ConfigError::new("DEVIDP_PORT", format!("`{port}` is not a port number"))
            })?;
        }
        if let Some(addr) = &env.bind_address {
            config.bind_address = addr.trim().parse().map_err(|_| {
                ConfigError::new(
                    "DEVIDP_BIND_ADDRESS",
                    format!("`{addr}` is not an IP address"),
                )
            })?;
        }
        if let Some(url) = &env.public_url {
            config.public_url = Some(parse_public_url("DEVIDP_PUBLIC_URL", url)?);
        }
        if let Some(dir) = &env.data_dir {
            config.data_dir = PathBuf::from(dir);
        }
        config.check_exposure()?;
        Ok(config)
    }

    /// Refuses the well-known development secrets on anything but loopback.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        self.check_exposure_on(self.bind_address)
    }

    /// The same check for the address actually listened on.
    pub fn check_exposure_on(&self, address: IpAddr) -> Result<(), ConfigError> {
        if address.is_loopback() {
            return Ok(());
        }
        let daemon_secret = self
            .daemons
            .iter()
            .any(|d| DEV_SECRETS.contains(&d.client_secret.as_str()))
            || self
                .apis
                .iter()
                .filter_map(|a| a.web_client_secret.as_ref())
                .any(|s| DEV_SECRETS.contains(&s.expose()));
        let user_password = self
            .users
            .iter()
            .any(|u| DEV_SECRETS.contains(&u.password.as_str()));
        if daemon_secret || user_password {
            return Err(ConfigError::new(
                "bind_address (DEVIDP_BIND_ADDRESS)",
                format!(
                    "{address} is not loopback, and the configuration contains the built-in development \
                     secrets; replace them (DEVIDP_CONFIG) or bind a loopback address"
                ),
            ));
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        let t = &self.tenant;
        if t.name.is_empty()
            || !t
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ConfigError::new(
                "tenant.name",
                "must be lowercase letters, digits and dashes (the part before .onmicrosoft.com)",
            ));
        }
        if uuid::Uuid::parse_str(&t.id).is_err() {
            return Err(ConfigError::new("tenant.id", "must be a GUID"));
        }
        if t.policies.is_empty() {
            return Err(ConfigError::new(
                "tenant.policies",
                "at least one user flow is needed",
            ));
        }
        let mut names = HashSet::new();
        for flow in &t.policies {
            let p = flow.name();
            if !names.insert(p.to_ascii_lowercase()) {
                return Err(ConfigError::new(
                    "tenant.policies",
                    format!("`{p}` is listed twice (names are case-insensitive)"),
                ));
            }
            if p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ConfigError::new(
                    "tenant.policies",
                    format!("`{p}` must be letters, digits, `_` and `-`"),
                ));
            }
        }
        let l = &self.lifetimes;
        for (name, v) in [
            ("lifetimes.access_token_seconds", l.access_token_seconds),
            ("lifetimes.id_token_seconds", l.id_token_seconds),
            ("lifetimes.refresh_token_seconds", l.refresh_token_seconds),
            (
                "lifetimes.authorization_code_seconds",
                l.authorization_code_seconds,
            ),
            ("lifetimes.session_seconds", l.session_seconds),
            (
                "lifetimes.verification_code_seconds",
                l.verification_code_seconds,
            ),
        ] {
            if v == 0 || v > 366 * 86400 {
                return Err(ConfigError::new(
                    name,
                    "must be between 1 second and a year",
                ));
            }
        }
        if self.lockout.threshold == 0 {
            return Err(ConfigError::new("lockout.threshold", "must be at least 1"));
        }
        if self.lockout.lock_seconds == 0 {
            return Err(ConfigError::new(
                "lockout.lock_seconds",
                "must be at least 1",
            ));
        }
        let limits = &self.limits;
        if limits.concurrent_password_hashes > 64 {
            return Err(ConfigError::new(
                "limits.concurrent_password_hashes",
                "must be at most 64 (each hash holds 19 MiB)",
            ));
        }
        if !(1..=3600).contains(&limits.request_seconds) {
            return Err(ConfigError::new(
                "limits.request_seconds",
                "must be between 1 and 3600",
            ));
        }
        if !(1..=100_000).contains(&limits.outstanding_verification_codes) {
            return Err(ConfigError::new(
                "limits.outstanding_verification_codes",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=100_000).contains(&limits.max_connections) {
            return Err(ConfigError::new(
                "limits.max_connections",
                "must be between 1 and 100000",
            ));
        }

        let mut client_ids = HashSet::new();
        let all_ids = self
            .apis
            .iter()
            .map(|a| ("apis", &a.client_id))
            .chain(self.spas.iter().map(|s| ("spas", &s.client_id)))
            .chain(self.daemons.iter().map(|d| ("daemons", &d.client_id)));
        for (table, id) in all_ids {
            if id.trim().is_empty() || id.contains(char::is_whitespace) {
                return Err(ConfigError::new(
                    format!("{table}.client_id"),
                    "must not be empty or contain spaces",
                ));
            }
            if !client_ids.insert(id.to_ascii_lowercase()) {
                return Err(ConfigError::new(
                    format!("{table}.client_id"),
                    format!("`{id}` is registered twice"),
                ));
            }
        }

        let mut exposed = HashSet::new();
        for api in &self.apis {
            if Url::parse(&api.app_id_uri).is_err() {
                return Err(ConfigError::new(
                    "apis.app_id_uri",
                    format!("`{}` is not an absolute URI", api.app_id_uri),
                ));
            }
            for s in &api.scopes {
                if s.is_empty() || s.contains(char::is_whitespace) || s.contains('/') {
                    return Err(ConfigError::new(
                        "apis.scopes",
                        format!("`{s}` is not a scope name"),
                    ));
                }
                exposed.insert(api.scope_uri(s));
            }
        }

        for spa in &self.spas {
            if spa.redirect_uris.is_empty() {
                return Err(ConfigError::new(
                    "spas.redirect_uris",
                    format!("app `{}` needs at least one", spa.name),
                ));
            }
            for uri in spa.redirect_uris.iter().chain(spa.post_logout_uris()) {
                let parsed = Url::parse(uri).map_err(|_| {
                    ConfigError::new(
                        "spas.redirect_uris",
                        format!("`{uri}` is not an absolute URL"),
                    )
                })?;
                if parsed.fragment().is_some() || !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::new(
                        "spas.redirect_uris",
                        format!("`{uri}` must be http(s) without a fragment"),
                    ));
                }
            }
            for p in &spa.api_permissions {
                if !exposed.contains(p) {
                    return Err(ConfigError::new(
                        "spas.api_permissions",
                        format!("`{p}` is not a scope exposed by any of `apis`"),
                    ));
                }
            }
        }

        for api in &self.apis {
            if api
                .web_client_secret
                .as_ref()
                .is_some_and(|s| s.0.len() < 8)
            {
                return Err(ConfigError::new(
                    "apis.web_client_secret",
                    format!("app `{}`: at least 8 characters", api.name),
                ));
            }
        }
        for daemon in &self.daemons {
            if daemon.client_secret.len() < 8 {
                return Err(ConfigError::new(
                    "daemons.client_secret",
                    format!("app `{}`: at least 8 characters", daemon.name),
                ));
            }
            for grant in &daemon.app_roles {
                let api = self
                    .apis
                    .iter()
                    .find(|a| a.client_id.eq_ignore_ascii_case(&grant.api));
                match api {
                    Some(api) if api.app_roles.contains(&grant.role) => {}
                    Some(_) => {
                        return Err(ConfigError::new(
                            "daemons.app_roles",
                            format!(
                                "role `{}` is not defined by API `{}`",
                                grant.role, grant.api
                            ),
                        ));
                    }
                    None => {
                        return Err(ConfigError::new(
                            "daemons.app_roles",
                            format!("`{}` is not the client id of any of `apis`", grant.api),
                        ));
                    }
                }
            }
        }

        self.check_linked_flows()?;
        self.check_web_redirect_uris()?;
        let mut emails = HashSet::new();
        for user in &self.users {
            if !password::plausible_email(&user.email) {
                return Err(ConfigError::new(
                    "users.email",
                    format!("`{}` is not an email address", user.email),
                ));
            }
            if !emails.insert(user.email.to_ascii_lowercase()) {
                return Err(ConfigError::new(
                    "users.email",
                    format!("`{}` is listed twice", user.email),
                ));
            }
            if let Err(problem) = password::check_rules(&user.password) {
                return Err(ConfigError::new(
                    "users.password",
                    format!("{}: {problem}", user.email),
                ));
            }
            if password::check_display_name(&user.display_name).is_err() {
                return Err(ConfigError::new(
                    "users.display_name",
                    format!("{}: 1 to 100 characters", user.email),
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Each app's linked user flow names a sign-up-or-sign-in flow of the tenant, and one exists
    /// for apps that name none.
    fn check_linked_flows(&self) -> Result<(), ConfigError> {
        let sign_in_flow = |name: &str| {
            self.tenant
                .policies
                .iter()
                .any(|f| f.kind() == FlowKind::SignUpSignIn && f.name().eq_ignore_ascii_case(name))
        };
        for spa in &self.spas {
            match &spa.user_flow {
                Some(flow) if !sign_in_flow(flow) => {
                    return Err(ConfigError::new(
                        "spas.user_flow",
                        format!(
                            "app `{}`: `{flow}` is not a sign-up-or-sign-in flow of tenant.policies",
                            spa.name
                        ),
                    ));
                }
                Some(_) => {}
                None if self.default_user_flow().is_none() => {
                    return Err(ConfigError::new(
                        "spas.user_flow",
                        format!(
                            "app `{}` names no user flow and tenant.policies has no sign-up-or-sign-in flow",
                            spa.name
                        ),
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Web redirect URIs are absolute http(s) URLs without a fragment (OAuth 2.0 §3.1.2).
    fn check_web_redirect_uris(&self) -> Result<(), ConfigError> {
        for uri in self.apis.iter().flat_map(|a| &a.web_redirect_uris) {
            let fine = Url::parse(uri)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none());
            if !fine {
                return Err(ConfigError::new(
                    "apis.web_redirect_uris",
                    format!("`{uri}` must be an absolute http(s) URL without a fragment"),
                ));
            }
        }
        Ok(())
    }

    /// The API app `client_id` names when it is registered as a web client.
    pub fn web_app(&self, client_id: &str) -> Option<&ApiApp> {
        self.apis.iter().find(|a| {
            !a.web_redirect_uris.is_empty() && a.client_id.eq_ignore_ascii_case(client_id)
        })
    }

    /// The flow of apps that are linked to none: the first sign-up-or-sign-in flow.
    pub fn default_user_flow(&self) -> Option<&str> {
        self.tenant
            .policies
            .iter()
            .find(|f| f.kind() == FlowKind::SignUpSignIn)
            .map(UserFlow::name)
    }

    /// The user flow `spa` signs users in with at the tenant-level authorize endpoint.
    pub fn linked_flow<'a>(&'a self, spa: &'a SpaApp) -> Option<&'a str> {
        spa.user_flow
            .as_deref()
            .or_else(|| self.default_user_flow())
    }
}

fn parse_public_url(setting: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|_| ConfigError::new(setting, format!("`{value}` is not an absolute URL")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(ConfigError::new(
            setting,
            "must be an http(s) URL without query or fragment",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtin_matches_contract() {
        let c = Config::builtin().unwrap();
        assert_eq!(c.port, 7010);
        assert_eq!(c.bind_address, IpAddr::from(DEFAULT_BIND));
        assert_eq!(c.tenant.domain(), "devtenant.onmicrosoft.com");
        let flows: Vec<(&str, FlowKind)> = c
            .tenant
            .policies
            .iter()
            .map(|f| (f.name(), f.kind()))
            .collect();
        assert_eq!(
            flows,
            [
                ("B2C_1_signupsignin", FlowKind::SignUpSignIn),
                ("B2C_1_passwordreset", FlowKind::PasswordReset),
                ("B2C_1_profileedit", FlowKind::ProfileEdit),
            ]
        );
        assert_eq!(c.lifetimes.verification_code_seconds, 300);
        assert_eq!(c.spas[0].client_id, "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b");
        assert_eq!(
            c.apis[0].scope_uri("accessapp"),
            "https://devtenant.onmicrosoft.com/hello-api/accessapp"
        );
        assert_eq!(c.lifetimes.access_token_seconds, 3600);
    }

    #[test]
    fn env_overrides_apply_and_dev_secrets_stay_on_loopback() {
        let env = EnvOverrides {
            port: Some("0".into()),
            data_dir: Some("/tmp/x".into()),
            ..Default::default()
        };
        let c = Config::load(&env).unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));

        let env = EnvOverrides {
            bind_address: Some("0.0.0.0".into()),
            ..Default::default()
        };
        let err = Config::load(&env).unwrap_err().to_string();
        assert!(
            err.starts_with("bind_address (DEVIDP_BIND_ADDRESS):"),
            "{err}"
        );

        let env = EnvOverrides {
            port: Some("seventy".into()),
            ..Default::default()
        };
        assert!(
            Config::load(&env)
                .unwrap_err()
                .to_string()
                .starts_with("DEVIDP_PORT:")
        );
    }

    #[test]
    fn unknown_flow_kind_and_repeated_flow_are_refused() {
        let text = BUILTIN_TOML.replace("kind = \"profile_edit\"", "kind = \"sign_out\"");
        assert!(Config::from_toml(&text, "test").is_err());
        let text = BUILTIN_TOML.replace("\"B2C_1_profileedit\"", "\"b2c_1_PasswordReset\"");
        let err = Config::from_toml(&text, "test").unwrap_err();
        assert_eq!(err.setting, "tenant.policies", "{err}");
    }

    #[test]
    fn an_app_is_linked_to_a_sign_in_flow() {
        let c = Config::builtin().unwrap();
        assert_eq!(c.linked_flow(&c.spas[0]), Some("B2C_1_signupsignin"));
        let linked = BUILTIN_TOML.replace(
            "name = \"hello-spa\"",
            "name = \"hello-spa\"\nuser_flow = \"B2C_1_profileedit\"",
        );
        let err = Config::from_toml(&linked, "test").unwrap_err();
        assert_eq!(err.setting, "spas.user_flow", "{err}");
        let unknown = BUILTIN_TOML.replace(
            "name = \"hello-spa\"",
            "name = \"hello-spa\"\nuser_flow = \"B2C_1_nope\"",
        );
        assert!(Config::from_toml(&unknown, "test").is_err());
    }

    #[test]
    fn unknown_permission_is_refused() {
        let text = BUILTIN_TOML.replace(
            "api_permissions = [\"https://devtenant.onmicrosoft.com/hello-api/accessapp\"]",
            "api_permissions = [\"https://devtenant.onmicrosoft.com/hello-api/nope\"]",
        );
        let err = Config::from_toml(&text, "test").unwrap_err();
        assert_eq!(err.setting, "spas.api_permissions");
    }
}
