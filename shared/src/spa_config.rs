//! The SPA's run-time configuration, `config.json` beside `index.html`.
//!
//! One `dist/` serves every environment: deployment writes this file, nobody rebuilds.
//! Field names are those of the seed's MSAL config, so a B2C user recognises them.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpaConfig {
    /// The SPA app registration's client id.
    pub client_id: String,
    /// The user flow's authority, e.g. `https://{tenant}.b2clogin.com/tfp/{tenant}.onmicrosoft.com/{policy}`
    /// (MSAL's B2C form) or an issuer URL; discovery appends `/v2.0/.well-known/openid-configuration`
    /// or `/.well-known/openid-configuration` as the form requires.
    pub authority: String,
    /// Hosts (`host[:port]`) the authority is allowed to live on, as MSAL's `knownAuthorities`.
    pub known_authorities: Vec<String>,
    /// Where the IdP sends the browser back; defaults to the page's own URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Where the IdP sends the browser after sign-out; defaults to the redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uri: Option<String>,
    /// API scopes (full URIs), requested beside `openid offline_access`.
    pub scopes: Vec<String>,
    /// The gateway's `/api/hello`.
    pub api_url: String,
    /// The tenant's user flows (MSAL's B2C sample calls them `b2cPolicies.names`). Without it, or
    /// without a flow, the page offers no such action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<UserFlows>,
    /// The developer console at `/console` (seed 002): its own app registration. Without it the
    /// page has no console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleConfig>,
}

/// The developer console's app registration ("Developer Console", a public client granted the
/// API's scopes). It reads the API's OpenAPI document at `{apiUrl's origin}/openapi.json`, where
/// the gateway serves it, unless `openapiUrl` names another copy (API Management's gateway serves
/// none: deploy/README.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsoleConfig {
    pub client_id: String,
    /// Where the IdP sends the browser back to the console; defaults to `{origin}/console`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi_url: Option<String>,
}

/// User-flow names. The authority names the sign-up/sign-in flow; each other flow's authority is
/// the same URL with that last segment replaced, as B2C's are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserFlows {
    pub sign_up_sign_in: String,
    /// Started when the sign-in page answers `AADB2C90118` ("Forgot your password?").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgot_password: Option<String>,
    /// Behind the signed-in user's "Edit profile".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_profile: Option<String>,
}

/// Why a `config.json` cannot be used; shown on the page as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaConfigError {
    Parse(String),
    Empty(&'static str),
    NotAbsoluteUrl {
        field: &'static str,
        value: String,
    },
    UnknownAuthority {
        host: String,
    },
    /// `policies.signUpSignIn` is not the authority's last path segment.
    PolicyNotInAuthority {
        policy: String,
    },
    /// A user-flow name that cannot be a URL path segment.
    BadPolicyName {
        field: &'static str,
        value: String,
    },
}

impl fmt::Display for SpaConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(why) => write!(f, "config.json is not valid: {why}"),
            Self::Empty(field) => write!(f, "config.json: `{field}` must not be empty"),
            Self::NotAbsoluteUrl { field, value } => {
                write!(
                    f,
                    "config.json: `{field}` must be an http(s) URL, got `{value}`"
                )
            }
            Self::UnknownAuthority { host } => write!(
                f,
                "config.json: the authority's host `{host}` is not listed in `knownAuthorities`"
            ),
            Self::PolicyNotInAuthority { policy } => write!(
                f,
                "config.json: `policies.signUpSignIn` ({policy}) is not the last segment of `authority`"
            ),
            Self::BadPolicyName { field, value } => write!(
                f,
                "config.json: `{field}` must be a user-flow name, got `{value}`"
            ),
        }
    }
}

impl std::error::Error for SpaConfigError {}

impl SpaConfig {
    /// Parses and validates `config.json`'s text.
    pub fn from_json(text: &str) -> Result<Self, SpaConfigError> {
        let config: Self =
            serde_json::from_str(text).map_err(|e| SpaConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: non-empty values, absolute URLs, and that the authority is known
    /// (MSAL refuses an authority outside `knownAuthorities`; so do we).
    pub fn validate(&self) -> Result<(), SpaConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(SpaConfigError::Empty("clientId"));
        }
        if self.scopes.is_empty() || self.scopes.iter().any(|s| s.trim().is_empty()) {
            return Err(SpaConfigError::Empty("scopes"));
        }
        let authority_host = url_host("authority", &self.authority)?;
        url_host("apiUrl", &self.api_url)?;
        for (field, value) in [
            ("redirectUri", &self.redirect_uri),
            ("postLogoutRedirectUri", &self.post_logout_redirect_uri),
        ] {
            if let Some(value) = value {
                url_host(field, value)?;
            }
        }
        let known = self
            .known_authorities
            .iter()
            .any(|k| k.trim().eq_ignore_ascii_case(authority_host));
        if !known {
            return Err(SpaConfigError::UnknownAuthority {
                host: authority_host.to_owned(),
            });
        }
        if let Some(flows) = &self.policies {
            flows.validate(&self.authority)?;
        }
        if let Some(console) = &self.console {
            console.validate()?;
        }
        Ok(())
    }

    /// The OpenAPI document the console lists: `console.openapiUrl`, else `/openapi.json` at the
    /// origin of `apiUrl` (the gateway's). `None` without a console.
    pub fn openapi_url(&self) -> Option<String> {
        let console = self.console.as_ref()?;
        if let Some(url) = &console.openapi_url {
            return Some(url.clone());
        }
        let host = url_host("apiUrl", &self.api_url).ok()?;
        let scheme_end = self.api_url.find("://")? + 3;
        let mut url = String::from(&self.api_url[..scheme_end]);
        url.push_str(host);
        url.push_str("/openapi.json");
        Some(url)
    }

    /// The authority of another user flow of the tenant: the configured one with its last path
    /// segment (the sign-up/sign-in flow) replaced. `None` without `policies`.
    pub fn authority_for(&self, flow: &str) -> Option<String> {
        self.policies.as_ref()?;
        let base = self.authority.trim_end_matches('/');
        let (tenant, _) = base.rsplit_once('/')?;
        let mut authority = String::from(tenant);
        authority.push('/');
        authority.push_str(flow);
        Some(authority)
    }
}

impl ConsoleConfig {
    fn validate(&self) -> Result<(), SpaConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(SpaConfigError::Empty("console.clientId"));
        }
        for (field, value) in [
            ("console.redirectUri", &self.redirect_uri),
            ("console.openapiUrl", &self.openapi_url),
        ] {
            if let Some(value) = value {
                url_host(field, value)?;
            }
        }
        Ok(())
    }
}

impl UserFlows {
    fn validate(&self, authority: &str) -> Result<(), SpaConfigError> {
        for (field, value) in [
            ("policies.signUpSignIn", Some(&self.sign_up_sign_in)),
            ("policies.forgotPassword", self.forgot_password.as_ref()),
            ("policies.editProfile", self.edit_profile.as_ref()),
        ] {
            let Some(value) = value else { continue };
            let name_ok = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !name_ok {
                return Err(SpaConfigError::BadPolicyName {
                    field,
                    value: value.clone(),
                });
            }
        }
        let last = authority.trim_end_matches('/').rsplit('/').next();
        if !last.is_some_and(|l| l.eq_ignore_ascii_case(&self.sign_up_sign_in)) {
            return Err(SpaConfigError::PolicyNotInAuthority {
                policy: self.sign_up_sign_in.clone(),
            });
        }
        Ok(())
    }
}

/// The `host[:port]` of an absolute http(s) URL, without pulling a URL parser into the wasm.
fn url_host<'a>(field: &'static str, value: &'a str) -> Result<&'a str, SpaConfigError> {
    let bad = || SpaConfigError::NotAbsoluteUrl {
        field,
        value: value.to_owned(),
    };
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(host)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DEV: &str = r#"{
        "clientId": "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b",
        "authority": "http://127.0.0.1:7010/tfp/devtenant.onmicrosoft.com/B2C_1_signupsignin",
        "knownAuthorities": ["127.0.0.1:7010"],
        "scopes": ["https://devtenant.onmicrosoft.com/hello-api/accessapp"],
        "apiUrl": "http://127.0.0.1:7080/api/hello"
    }"#;

    #[test]
    fn parses_the_dev_config() {
        let config = SpaConfig::from_json(DEV).unwrap();
        assert_eq!(config.known_authorities, ["127.0.0.1:7010"]);
        assert_eq!(config.redirect_uri, None);
    }

    #[test]
    fn refuses_an_authority_that_is_not_known() {
        let text = DEV.replace(r#"["127.0.0.1:7010"]"#, r#"["contoso.b2clogin.com"]"#);
        assert_eq!(
            SpaConfig::from_json(&text).unwrap_err(),
            SpaConfigError::UnknownAuthority {
                host: "127.0.0.1:7010".into()
            }
        );
    }

    #[test]
    fn refuses_bad_json_unknown_fields_and_relative_urls() {
        assert!(matches!(
            SpaConfig::from_json("{"),
            Err(SpaConfigError::Parse(_))
        ));
        let typo = DEV.replace("\"apiUrl\"", "\"apiURL\"");
        assert!(matches!(
            SpaConfig::from_json(&typo),
            Err(SpaConfigError::Parse(_))
        ));
        let relative = DEV.replace("http://127.0.0.1:7080/api/hello", "/api/hello");
        assert!(matches!(
            SpaConfig::from_json(&relative),
            Err(SpaConfigError::NotAbsoluteUrl {
                field: "apiUrl",
                ..
            })
        ));
        let no_client = DEV.replace("6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b", " ");
        assert_eq!(
            SpaConfig::from_json(&no_client).unwrap_err(),
            SpaConfigError::Empty("clientId")
        );
    }

    fn with_policies(policies: &str) -> String {
        DEV.replace(
            "\n    }",
            &format!(",\n        \"policies\": {policies}\n    }}"),
        )
    }

    #[test]
    fn user_flows_name_the_other_authorities() {
        let text = with_policies(
            r#"{"signUpSignIn": "B2C_1_signupsignin", "forgotPassword": "B2C_1_passwordreset"}"#,
        );
        let config = SpaConfig::from_json(&text).unwrap();
        let flows = config.policies.as_ref().unwrap();
        assert_eq!(
            flows.forgot_password.as_deref(),
            Some("B2C_1_passwordreset")
        );
        assert_eq!(flows.edit_profile, None);
        assert_eq!(
            config.authority_for("B2C_1_passwordreset").unwrap(),
            "http://127.0.0.1:7010/tfp/devtenant.onmicrosoft.com/B2C_1_passwordreset"
        );
        assert_eq!(
            SpaConfig::from_json(DEV).unwrap().authority_for("B2C_1_x"),
            None
        );
    }

    #[test]
    fn the_console_is_optional_and_reads_the_gateway_s_document() {
        assert_eq!(SpaConfig::from_json(DEV).unwrap().openapi_url(), None);
        let text = DEV.replace(
            "\"apiUrl\"",
            r#""console": {"clientId": "console-app"}, "apiUrl""#,
        );
        let config = SpaConfig::from_json(&text).unwrap();
        assert_eq!(config.console.as_ref().unwrap().client_id, "console-app");
        assert_eq!(
            config.openapi_url().unwrap(),
            "http://127.0.0.1:7080/openapi.json"
        );
        let elsewhere = text.replace(
            r#""clientId": "console-app""#,
            r#""clientId": "console-app", "openapiUrl": "https://site.example/openapi.json""#,
        );
        assert_eq!(
            SpaConfig::from_json(&elsewhere)
                .unwrap()
                .openapi_url()
                .unwrap(),
            "https://site.example/openapi.json"
        );
        for (bad, refused) in [
            (
                r#""clientId": " ""#,
                SpaConfigError::Empty("console.clientId"),
            ),
            (
                r#""clientId": "c", "redirectUri": "/console""#,
                SpaConfigError::NotAbsoluteUrl {
                    field: "console.redirectUri",
                    value: "/console".into(),
                },
            ),
        ] {
            let text = text.replace(r#""clientId": "console-app""#, bad);
            assert_eq!(SpaConfig::from_json(&text).unwrap_err(), refused, "{bad}");
        }
        let typo = text.replace("\"clientId\": \"console-app\"", "\"client\": \"x\"");
        assert!(matches!(
            SpaConfig::from_json(&typo),
            Err(SpaConfigError::Parse(_))
        ));
    }

    #[test]
    fn refuses_user_flows_that_do_not_fit_the_authority() {
        let other = with_policies(r#"{"signUpSignIn": "B2C_1_other"}"#);
        assert_eq!(
            SpaConfig::from_json(&other).unwrap_err(),
            SpaConfigError::PolicyNotInAuthority {
                policy: "B2C_1_other".into()
            }
        );
        let slash =
            with_policies(r#"{"signUpSignIn": "B2C_1_signupsignin", "editProfile": "../x"}"#);
        assert!(matches!(
            SpaConfig::from_json(&slash).unwrap_err(),
            SpaConfigError::BadPolicyName {
                field: "policies.editProfile",
                ..
            }
        ));
        let unknown = with_policies(r#"{"signUpSignIn": "B2C_1_signupsignin", "reset": "x"}"#);
        assert!(matches!(
            SpaConfig::from_json(&unknown),
            Err(SpaConfigError::Parse(_))
        ));
    }
}
