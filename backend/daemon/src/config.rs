//! Settings, parsed once from `DAEMON_*` environment variables (names in `docs/contract.md`; the
//! seed's `AzureAdB2C` section of `local.settings.json`, as Azure app settings).
//!
//! Nothing below this module reads the environment.

use std::time::Duration;

use oauth2::{ClientId, ClientSecret};
use url::Url;

pub use http_serve::settings::{ConfigError, Env, Source};
use http_serve::settings::{bad, http_url, required};

/// Everything the daemon needs. `Debug` shows no secret: `ClientSecret`'s is redacted by the
/// oauth2 crate, which is also what carries it to the token endpoint.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DAEMON_TOKEN_URL`: the tenant's token endpoint (Entra's
    /// `https://login.microsoftonline.com/{tenant-id}/oauth2/v2.0/token`).
    pub token_url: Url,
    /// `DAEMON_CLIENT_ID`: the daemon's own app registration.
    pub client_id: ClientId,
    /// `DAEMON_CLIENT_SECRET`: that registration's client secret.
    pub client_secret: ClientSecret,
    /// `DAEMON_SCOPE`: the API's `{app id uri}/.default` (client credentials take no other).
    pub scope: String,
    /// `DAEMON_API_URL`: what `daemon call` and `GET /api/call-hello` call with the token.
    pub api_url: Url,
    /// `FUNCTIONS_CUSTOMHANDLER_PORT` (default 7072, beside hello's 7071; the host sets it).
    pub port: u16,
    /// Each request to the IdP or the API. Not an environment setting.
    pub http_timeout: Duration,
}

impl Config {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        const TOKEN_URL: &str = "DAEMON_TOKEN_URL";
        let token_url = http_url(TOKEN_URL, &required(source, TOKEN_URL)?)?;

        const SECRET: &str = "DAEMON_CLIENT_SECRET";
        // Not trimmed: a secret is exactly what the portal showed. Only emptiness is judged.
        let secret = source
            .get(SECRET)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad(SECRET, "is required (the app registration's client secret)"))?;

        const SCOPE: &str = "DAEMON_SCOPE";
        let scope = required(source, SCOPE)?;
        if scope.split_whitespace().count() != 1 || !scope.ends_with("/.default") {
            return Err(bad(
                SCOPE,
                format!(
                    "`{scope}` is not one `{{app id uri}}/.default` scope (the only kind client credentials take)"
                ),
            ));
        }

        const API_URL: &str = "DAEMON_API_URL";
        let api_url = http_url(API_URL, &required(source, API_URL)?)?;

        const PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
        let port = match source.get(PORT)?.map(|p| p.trim().to_owned()) {
            None => 7072,
            Some(p) if p.is_empty() => 7072,
            Some(p) => p
                .parse()
                .map_err(|_| bad(PORT, format!("`{p}` is not a port number")))?,
        };

        Ok(Self {
            token_url,
            client_id: ClientId::new(required(source, "DAEMON_CLIENT_ID")?),
            client_secret: ClientSecret::new(secret),
            scope,
            api_url,
            port,
            http_timeout: Duration::from_secs(10),
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

    const SECRET: &str = "s3cret-value-never-shown";

    fn vars(overrides: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
        let mut map: HashMap<&'static str, String> = [
            (
                "DAEMON_TOKEN_URL",
                "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
            ),
            ("DAEMON_CLIENT_ID", "daemon-app"),
            ("DAEMON_CLIENT_SECRET", SECRET),
            (
                "DAEMON_SCOPE",
                "https://contoso.onmicrosoft.com/hello-api/.default",
            ),
            ("DAEMON_API_URL", "https://apim.example.net/api/hello"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        for (k, v) in overrides {
            map.insert(k, (*v).to_owned());
        }
        map
    }

    #[test]
    fn parses_the_seeds_settings_and_never_shows_the_secret() {
        let config = Config::from_source(&vars(&[])).unwrap();
        assert_eq!(config.port, 7072);
        assert_eq!(config.client_id.as_str(), "daemon-app");
        assert_eq!(config.client_secret.secret(), SECRET);
        assert!(!format!("{config:?}").contains(SECRET));
        let config =
            Config::from_source(&vars(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "9000")])).unwrap();
        assert_eq!(config.port, 9000);
    }

    #[test]
    fn bad_settings_name_their_variable() {
        for (var, value) in [
            ("DAEMON_TOKEN_URL", ""),
            ("DAEMON_TOKEN_URL", "login.microsoftonline.com/tid"),
            ("DAEMON_TOKEN_URL", "ftp://idp/token"),
            ("DAEMON_TOKEN_URL", "https://user:pw@idp/token"),
            ("DAEMON_CLIENT_ID", " "),
            ("DAEMON_CLIENT_SECRET", ""),
            (
                "DAEMON_SCOPE",
                "https://contoso.onmicrosoft.com/hello-api/accessapp",
            ),
            ("DAEMON_SCOPE", "a/.default b/.default"),
            ("DAEMON_API_URL", "not a url"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "70000"),
        ] {
            let error = Config::from_source(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(error.var, var, "{var}={value}: {error}");
            assert!(!error.to_string().contains(SECRET));
        }
        let mut missing = vars(&[]);
        missing.remove("DAEMON_CLIENT_SECRET");
        assert_eq!(
            Config::from_source(&missing).unwrap_err().var,
            "DAEMON_CLIENT_SECRET"
        );
    }
}
