//! The API's OpenAPI 3.1 document, generated from the code that serves it: the operation from
//! the `#[utoipa::path]` attribute on [`forward::hello`], its bodies from the shared DTOs. It is
//! what `az apim api import` reads (deploy/), what the developer console lists and calls, and what
//! [`crate::validation`] checks requests and answers against.
//!
//! The document has two parts. [`api`] is fixed by the settings alone (the operation, plus the
//! subscription key when products are configured) — validation is built from it at start. The
//! `oauth2` security scheme ([`published`]) names the identity provider's authorization and token
//! endpoints, which come from its openid-configuration, so `GET /openapi.json` serves the document
//! once that metadata has loaded and answers 503 until then.

use crate::config::{ConfigError, PolicyConfig, bad};
use crate::forward;
use crate::metrics::Outcome;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::ApiError;
use std::sync::{Arc, RwLock};
use token_validation::Validator;
use utoipa::OpenApi;
use utoipa::openapi::InfoBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, AuthorizationCode, Flow, OAuth2, Scopes, SecurityRequirement,
    SecurityScheme,
};

/// `GATEWAY_API_SCOPES`: the delegated permissions a client asks for to call the API.
pub const SCOPES_VAR: &str = "GATEWAY_API_SCOPES";
/// The security scheme's name; APIM's OAuth 2.0 authorization server is linked to it.
pub const OAUTH2_SCHEME: &str = "oauth2";
const SUBSCRIPTION_HEADER_SCHEME: &str = "apiKeyHeader";
const SUBSCRIPTION_QUERY_SCHEME: &str = "apiKeyQuery";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hello API",
        description = "The seed's hello function behind API Management's inbound policy.",
    ),
    // Relative to the document's own URL locally; in APIM the API's URL suffix and service URL
    // (`{function app}/api`) take its place, so the operation is `/hello` in both.
    servers((url = "/api", description = "The gateway that serves this document")),
    paths(forward::hello),
    components(schemas(shared::HelloResponse, shared::Caller, shared::ApiError)),
    tags((name = "hello", description = "The hello function")),
)]
struct HelloApi;

/// `GATEWAY_API_SCOPES`, or the audience's `.default` scope (Entra's form for "what the API app
/// exposes") when unset.
pub fn parse_scopes(text: Option<&str>, audiences: &[String]) -> Result<Vec<String>, ConfigError> {
    let Some(text) = text else {
        return Ok(audiences
            .first()
            .map(|aud| vec![format!("{aud}/.default")])
            .unwrap_or_default());
    };
    let scopes = crate::config::list(text);
    if scopes.is_empty() {
        return Err(bad(SCOPES_VAR, "needs at least one comma-separated scope"));
    }
    if let Some(scope) = scopes
        .iter()
        .find(|s| s.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(bad(SCOPES_VAR, format!("`{scope}` is not a scope")));
    }
    Ok(scopes)
}

/// The operations and schemas, as the settings shape them (no security scheme yet).
pub fn api(policy: &PolicyConfig) -> utoipa::openapi::OpenApi {
    let mut document = HelloApi::openapi();
    document.info = InfoBuilder::new()
        .title(document.info.title.clone())
        .description(document.info.description.clone())
        .version(env!("CARGO_PKG_VERSION"))
        .build();
    if policy.products.is_some() {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SUBSCRIPTION_HEADER_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(
                "Ocp-Apim-Subscription-Key",
            ))),
        );
        components.add_security_scheme(
            SUBSCRIPTION_QUERY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new(
                crate::subscription::KEY_QUERY,
            ))),
        );
    }
    document
}

/// The identity provider's endpoints the `oauth2` scheme names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
}

impl Endpoints {
    /// The first configured openid-configuration that has both endpoints (a tenant-level one,
    /// for client credentials only, has no authorization endpoint).
    pub fn from_validator(validator: &Validator) -> Option<Self> {
        validator.metadata().into_iter().find_map(|m| {
            Some(Self {
                authorization: m.authorization_endpoint?,
                token: m.token_endpoint?,
            })
        })
    }
}

/// The whole document: [`api`] plus the `oauth2` authorization-code scheme (PKCE) every operation
/// requires, with the API's scopes (and the subscription key, either header or query, when
/// products are on).
pub fn published(policy: &PolicyConfig, endpoints: &Endpoints) -> utoipa::openapi::OpenApi {
    let mut document = api(policy);
    let scopes = Scopes::from_iter(
        policy
            .api_scopes
            .iter()
            .map(|s| (s.as_str(), "Call the hello API as the signed-in user")),
    );
    let flow = AuthorizationCode::new(&endpoints.authorization, &endpoints.token, scopes);
    let oauth2 = OAuth2::with_description(
        [Flow::AuthorizationCode(flow)],
        "The identity provider's user flow; public clients use PKCE (S256).",
    );
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(OAUTH2_SCHEME, SecurityScheme::OAuth2(oauth2));
    let oauth2 = SecurityRequirement::new(OAUTH2_SCHEME, policy.api_scopes.iter());
    document.security = Some(if policy.products.is_some() {
        [SUBSCRIPTION_HEADER_SCHEME, SUBSCRIPTION_QUERY_SCHEME]
            .into_iter()
            .map(|key| oauth2.clone().add(key, Vec::<String>::new()))
            .collect()
    } else {
        vec![oauth2]
    });
    document
}

/// `GET /openapi.json`: the [`published`] document, rendered once per set of endpoints.
pub struct Published {
    policy: PolicyConfig,
    validator: Validator,
    rendered: RwLock<Option<(Endpoints, Bytes)>>,
}

impl Published {
    pub fn new(policy: PolicyConfig, validator: Validator) -> Self {
        Self {
            policy,
            validator,
            rendered: RwLock::new(None),
        }
    }

    fn document(&self) -> Option<Bytes> {
        let endpoints = Endpoints::from_validator(&self.validator)?;
        if let Ok(rendered) = self.rendered.read()
            && let Some((seen, bytes)) = rendered.as_ref()
            && *seen == endpoints
        {
            return Some(bytes.clone());
        }
        let bytes =
            Bytes::from(serde_json::to_vec_pretty(&published(&self.policy, &endpoints)).ok()?);
        if let Ok(mut rendered) = self.rendered.write() {
            *rendered = Some((endpoints, bytes.clone()));
        }
        Some(bytes)
    }
}

/// `/openapi.json` could not be served.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// No openid-configuration with authorization and token endpoints has loaded yet.
    #[error("identity provider metadata not loaded")]
    MetadataUnavailable,
}

impl IntoResponse for DocumentError {
    fn into_response(self) -> Response {
        let body = ApiError::new(
            503,
            "The API definition names the identity provider's endpoints, whose metadata has not loaded yet. Try again later.",
        );
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
            Json(body),
        )
            .into_response()
    }
}

pub async fn serve(State(published): State<Arc<Published>>) -> Response {
    let mut response = match published.document() {
        Some(bytes) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        None => DocumentError::MetadataUnavailable.into_response(),
    };
    // Its own line in /metrics, not the function's `forwarded`.
    response.extensions_mut().insert(Outcome("api_definition"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::Value;
    use shared::api::greeting_name;

    fn policy(extra: &[(&'static str, &str)]) -> PolicyConfig {
        let mut env = std::collections::HashMap::from([
            (
                "GATEWAY_ALLOWED_ORIGINS",
                "http://127.0.0.1:8080".to_owned(),
            ),
            (
                "GATEWAY_OPENID_CONFIG_URLS",
                "http://127.0.0.1:7010/a/.well-known/openid-configuration".to_owned(),
            ),
            ("GATEWAY_AUDIENCES", "api-client-id".to_owned()),
        ]);
        for (k, v) in extra {
            env.insert(*k, (*v).to_owned());
        }
        PolicyConfig::from_source(&env).unwrap()
    }

    #[test]
    fn the_name_parameter_is_the_shared_rule() {
        let document = serde_json::to_value(api(&policy(&[]))).unwrap();
        let parameter = &document["paths"]["/hello"]["get"]["parameters"][0];
        assert_eq!(parameter["name"], greeting_name::PARAMETER);
        assert_eq!(parameter["in"], "query");
        assert_eq!(parameter["required"], false);
        let schema = &parameter["schema"];
        assert_eq!(schema["pattern"], greeting_name::PATTERN);
        assert_eq!(schema["minLength"], 1);
        assert_eq!(schema["maxLength"], greeting_name::MAX_CHARS);
    }

    #[test]
    fn scopes_default_to_the_audience_and_name_a_bad_one() {
        assert_eq!(
            parse_scopes(None, &["api".into()]).unwrap(),
            ["api/.default"]
        );
        assert_eq!(parse_scopes(Some("a, b"), &[]).unwrap(), ["a", "b"]);
        assert_eq!(parse_scopes(Some(" , "), &[]).unwrap_err().var, SCOPES_VAR);
    }

    #[test]
    fn the_oauth2_scheme_names_the_endpoints_and_scopes() {
        let policy = policy(&[(SCOPES_VAR, "https://t.example/api/accessapp")]);
        let endpoints = Endpoints {
            authorization: "https://idp.example/authorize".into(),
            token: "https://idp.example/token".into(),
        };
        let document: Value = serde_json::to_value(published(&policy, &endpoints)).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["servers"][0]["url"], "/api");
        let flow =
            &document["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
        assert_eq!(flow["authorizationUrl"], "https://idp.example/authorize");
        assert_eq!(flow["tokenUrl"], "https://idp.example/token");
        assert!(flow["scopes"]["https://t.example/api/accessapp"].is_string());
        assert_eq!(
            document["security"],
            serde_json::json!([{"oauth2": ["https://t.example/api/accessapp"]}])
        );
    }
}
