//! OpenID Provider discovery: where an authority's metadata lives, and the endpoints the SPA takes
//! from it.

use crate::json::Json;
use std::fmt;

const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The openid-configuration URL of an authority, in the forms B2C users write:
/// - MSAL's B2C form `https://t.b2clogin.com/tfp/t.onmicrosoft.com/B2C_1_x` and the same without
///   `tfp` (last segment a `B2C_1_`/`B2C_1A_` policy) → `…/v2.0/.well-known/openid-configuration`;
/// - an issuer such as `https://t.ciamlogin.com/{tenant-id}/v2.0` or any other OpenID provider
///   → issuer + `/.well-known/openid-configuration` (OpenID Connect Discovery §4);
/// - a metadata URL already (`…/.well-known/openid-configuration`, e.g. with `?p=policy`) → as is.
pub fn metadata_url(authority: &str) -> String {
    let (path, query) = match authority.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (authority, None),
    };
    let path = path.trim_end_matches('/');
    let mut url = if path.ends_with(WELL_KNOWN) {
        path.to_owned()
    } else if is_b2c_policy_path(path) {
        format!("{path}/v2.0{WELL_KNOWN}")
    } else {
        format!("{path}{WELL_KNOWN}")
    };
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `…/tfp/{tenant}/{policy}` or `…/{tenant}/B2C_1_…`: B2C authorities name a policy, not an issuer.
fn is_b2c_policy_path(path: &str) -> bool {
    let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
    let mut segments = after_scheme.split('/').skip(1);
    let first = segments.next().unwrap_or_default();
    let last = after_scheme
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let names_policy = last.starts_with("b2c_1_") || last.starts_with("b2c_1a_");
    first.eq_ignore_ascii_case("tfp") || names_policy
}

/// The parts of the provider metadata the SPA uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub end_session_endpoint: Option<String>,
}

/// Why the provider metadata cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    Parse(String),
    /// An endpoint that is not an http(s) URL on a host in `knownAuthorities`: the code and the
    /// PKCE verifier would go there, so it must be a host the deployment vouched for.
    UnknownEndpoint {
        field: &'static str,
        value: String,
    },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(why) => write!(f, "the identity provider's metadata is not valid: {why}"),
            Self::UnknownEndpoint { field, value } => write!(
                f,
                "the identity provider's `{field}` ({value}) is not on a host listed in `knownAuthorities`"
            ),
        }
    }
}

impl ProviderMetadata {
    /// Parses the openid-configuration document and checks its endpoints against the known hosts.
    pub fn from_json(text: &str, known_authorities: &[String]) -> Result<Self, DiscoveryError> {
        let doc = Json::parse(text)
            .ok_or_else(|| DiscoveryError::Parse("it is not a JSON document".to_owned()))?;
        let read = || {
            Ok::<_, String>((
                doc.string("issuer")?,
                doc.string("authorization_endpoint")?,
                doc.string("token_endpoint")?,
                doc.optional_string("end_session_endpoint")?,
            ))
        };
        let (issuer, authorize, token, end_session) = read().map_err(DiscoveryError::Parse)?;
        let metadata = Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: authorize.to_owned(),
            token_endpoint: token.to_owned(),
            end_session_endpoint: end_session.map(str::to_owned),
        };
        let endpoints = [
            (
                "authorization_endpoint",
                Some(&metadata.authorization_endpoint),
            ),
            ("token_endpoint", Some(&metadata.token_endpoint)),
            (
                "end_session_endpoint",
                metadata.end_session_endpoint.as_ref(),
            ),
        ];
        for (field, value) in endpoints {
            let Some(value) = value else { continue };
            let known = url_host(value).is_some_and(|host| {
                known_authorities
                    .iter()
                    .any(|k| k.trim().eq_ignore_ascii_case(host))
            });
            if !known {
                return Err(DiscoveryError::UnknownEndpoint {
                    field,
                    value: value.clone(),
                });
            }
        }
        if metadata.issuer.trim().is_empty() {
            return Err(DiscoveryError::Parse("`issuer` is empty".into()));
        }
        Ok(metadata)
    }
}

/// The `host[:port]` of an absolute http(s) URL (no URL parser: its IDNA tables cost wasm size).
pub fn url_host(value: &str) -> Option<&str> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let bad = host.is_empty() || host.contains('@') || host.contains(char::is_whitespace);
    (!bad).then_some(host)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn b2c_tfp_authority_gets_the_v2_metadata_path() {
        assert_eq!(
            metadata_url("http://127.0.0.1:7010/tfp/devtenant.onmicrosoft.com/B2C_1_signupsignin"),
            "http://127.0.0.1:7010/tfp/devtenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            metadata_url("https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1A_signin/"),
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1A_signin/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuer_authority_gets_the_plain_discovery_path() {
        assert_eq!(
            metadata_url(
                "https://contoso.ciamlogin.com/3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b/v2.0/"
            ),
            "https://contoso.ciamlogin.com/3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            metadata_url("https://accounts.example.com"),
            "https://accounts.example.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn metadata_url_is_kept_with_its_policy_query() {
        let url = "https://contoso.b2clogin.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration?p=B2C_1_signupsignin";
        assert_eq!(metadata_url(url), url);
    }

    fn doc(token_endpoint: &str) -> String {
        format!(
            r#"{{"issuer":"http://127.0.0.1:7010/3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b/v2.0/",
                "authorization_endpoint":"http://127.0.0.1:7010/devtenant.onmicrosoft.com/b2c_1_signupsignin/oauth2/v2.0/authorize",
                "token_endpoint":"{token_endpoint}",
                "end_session_endpoint":"http://127.0.0.1:7010/devtenant.onmicrosoft.com/b2c_1_signupsignin/oauth2/v2.0/logout",
                "jwks_uri":"http://127.0.0.1:7010/keys"}}"#
        )
    }

    #[test]
    fn metadata_with_known_endpoints_is_accepted() {
        let known = vec!["127.0.0.1:7010".to_string()];
        let metadata = ProviderMetadata::from_json(
            &doc("http://127.0.0.1:7010/devtenant.onmicrosoft.com/b2c_1_signupsignin/oauth2/v2.0/token"),
            &known,
        )
        .unwrap();
        assert!(metadata.end_session_endpoint.is_some());
    }

    #[test]
    fn metadata_pointing_the_token_endpoint_elsewhere_is_refused() {
        let known = vec!["127.0.0.1:7010".to_string()];
        let err =
            ProviderMetadata::from_json(&doc("https://evil.example/token"), &known).unwrap_err();
        assert!(matches!(
            err,
            DiscoveryError::UnknownEndpoint {
                field: "token_endpoint",
                ..
            }
        ));
        let err = ProviderMetadata::from_json(&doc("http://user@127.0.0.1:7010/token"), &known);
        assert!(err.is_err());
        assert!(matches!(
            ProviderMetadata::from_json("<html>", &known),
            Err(DiscoveryError::Parse(_))
        ));
        let no_token_endpoint = doc("x").replace("\"token_endpoint\"", "\"other\"");
        assert!(matches!(
            ProviderMetadata::from_json(&no_token_endpoint, &known),
            Err(DiscoveryError::Parse(why)) if why == "missing field `token_endpoint`"
        ));
    }
}
