//! Loading `config.json`: the answer to `GET config.json` becomes a validated `SpaConfig` or one
//! sentence for the page (never a blank screen).

use crate::json::Json;
use shared::{ConsoleConfig, SpaConfig, SpaConfigError, UserFlows};

/// Where the config lives: next to `index.html` at the site's root (`dist/`), whichever route
/// the page was loaded on (`/no/such/page` must not ask for `/no/such/config.json`).
pub const CONFIG_PATH: &str = "/config.json";

/// Interprets the HTTP answer for `config.json`.
pub fn from_response(
    status: u16,
    content_type: Option<&str>,
    body: &str,
) -> Result<SpaConfig, String> {
    match status {
        200..=299 => {}
        404 => {
            return Err(
                "This app is not configured: config.json was not found next to index.html. \
                        Deploy a config.json (see README) and reload."
                    .to_owned(),
            );
        }
        _ => return Err(format!("config.json could not be loaded (HTTP {status}).")),
    }
    // Dev servers answer unknown paths with index.html (SPA fallback); say so instead of
    // reporting a JSON syntax error about `<`.
    let html =
        content_type.is_some_and(|t| t.contains("text/html")) || body.trim_start().starts_with('<');
    if html {
        return Err(
            "This app is not configured: config.json was not found next to index.html \
                    (the server answered with a web page). Deploy a config.json and reload."
                .to_owned(),
        );
    }
    parse(body).map_err(|e| e.to_string())
}

/// The fields `shared::SpaConfig` accepts (it denies unknown ones: a typo must not pass silently).
const FIELDS: [&str; 9] = [
    "clientId",
    "authority",
    "knownAuthorities",
    "redirectUri",
    "postLogoutRedirectUri",
    "scopes",
    "apiUrl",
    "policies",
    "console",
];

/// `policies`' fields (`shared::UserFlows`, which denies unknown ones too).
const POLICY_FIELDS: [&str; 3] = ["signUpSignIn", "forgotPassword", "editProfile"];

/// `console`'s fields (`shared::ConsoleConfig`).
const CONSOLE_FIELDS: [&str; 3] = ["clientId", "redirectUri", "openapiUrl"];

/// `SpaConfig::from_json` without serde_json: the same fields, types and checks
/// (`SpaConfig::validate`), read from the browser's `JSON.parse`.
fn parse(body: &str) -> Result<SpaConfig, SpaConfigError> {
    let doc = Json::parse(body)
        .ok_or_else(|| SpaConfigError::Parse("it is not a JSON document".to_owned()))?;
    let fields = doc
        .fields()
        .ok_or_else(|| SpaConfigError::Parse("it is not a JSON object".to_owned()))?;
    refuse_unknown(fields, &FIELDS)?;
    let read = || {
        Ok::<_, String>((
            doc.string("clientId")?,
            doc.string("authority")?,
            doc.strings("knownAuthorities")?,
            doc.optional_string("redirectUri")?,
            doc.optional_string("postLogoutRedirectUri")?,
            doc.strings("scopes")?,
            doc.string("apiUrl")?,
        ))
    };
    let (client_id, authority, known, redirect, post_logout, scopes, api_url) =
        read().map_err(SpaConfigError::Parse)?;
    let owned = |list: Vec<&str>| list.into_iter().map(str::to_owned).collect();
    let config = SpaConfig {
        client_id: client_id.to_owned(),
        authority: authority.to_owned(),
        known_authorities: owned(known),
        redirect_uri: redirect.map(str::to_owned),
        post_logout_redirect_uri: post_logout.map(str::to_owned),
        scopes: owned(scopes),
        api_url: api_url.to_owned(),
        policies: user_flows(doc.get("policies"))?,
        console: console(doc.get("console"))?,
    };
    config.validate()?;
    Ok(config)
}

fn refuse_unknown(fields: &[(String, Json)], known: &[&str]) -> Result<(), SpaConfigError> {
    match fields.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((unknown, _)) => {
            let mut why = String::from("unknown field `");
            why.push_str(unknown);
            why.push('`');
            Err(SpaConfigError::Parse(why))
        }
        None => Ok(()),
    }
}

/// An optional object of config.json (`policies`, `console`): absent or `null` is none;
/// otherwise an object with only the `known` fields, which `read` turns into its type.
fn section<T>(
    value: Option<&Json>,
    name: &str,
    known: &[&str],
    read: impl FnOnce(&Json) -> Result<T, String>,
) -> Result<Option<T>, SpaConfigError> {
    let doc = match value {
        None | Some(Json::Null) => return Ok(None),
        Some(doc) => doc,
    };
    let fields = doc
        .fields()
        .ok_or_else(|| SpaConfigError::Parse(format!("`{name}` is not a JSON object")))?;
    refuse_unknown(fields, known)?;
    read(doc).map(Some).map_err(SpaConfigError::Parse)
}

/// `policies`: the tenant's user flows, with a `signUpSignIn`.
fn user_flows(value: Option<&Json>) -> Result<Option<UserFlows>, SpaConfigError> {
    section(value, "policies", &POLICY_FIELDS, |doc| {
        Ok(UserFlows {
            sign_up_sign_in: doc.string("signUpSignIn")?.to_owned(),
            forgot_password: doc.optional_string("forgotPassword")?.map(str::to_owned),
            edit_profile: doc.optional_string("editProfile")?.map(str::to_owned),
        })
    })
}

/// `console`: the developer console's app registration, with a `clientId`.
fn console(value: Option<&Json>) -> Result<Option<ConsoleConfig>, SpaConfigError> {
    section(value, "console", &CONSOLE_FIELDS, |doc| {
        Ok(ConsoleConfig {
            client_id: doc.string("clientId")?.to_owned(),
            redirect_uri: doc.optional_string("redirectUri")?.map(str::to_owned),
            openapi_url: doc.optional_string("openapiUrl")?.map(str::to_owned),
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SHIPPED: &str = include_str!("../config.json");

    #[test]
    fn the_shipped_dev_config_is_valid() {
        let config = from_response(200, Some("application/json"), SHIPPED).unwrap();
        assert_eq!(config.api_url, "http://127.0.0.1:7080/api/hello");
        assert_eq!(
            crate::discovery::metadata_url(&config.authority),
            "http://127.0.0.2:7010/tfp/devtenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn missing_config_says_so() {
        let err = from_response(404, None, "").unwrap_err();
        assert!(err.contains("config.json was not found"), "{err}");
        let fallback = from_response(200, Some("text/html"), "<!doctype html><html>").unwrap_err();
        assert!(fallback.contains("config.json was not found"), "{fallback}");
        assert!(
            from_response(500, None, "")
                .unwrap_err()
                .contains("HTTP 500")
        );
    }

    #[test]
    fn invalid_config_names_the_problem() {
        let err = from_response(200, None, "{\"clientId\": 1}").unwrap_err();
        assert!(err.starts_with("config.json is not valid"), "{err}");
        let unknown = SHIPPED.replace("[\"127.0.0.2:7010\"]", "[\"contoso.b2clogin.com\"]");
        let err = from_response(200, None, &unknown).unwrap_err();
        assert!(err.contains("knownAuthorities"), "{err}");
    }

    /// The SPA's reader and `shared`'s serde one (used by the servers) accept the same documents
    /// and yield the same config.
    #[test]
    fn agrees_with_the_shared_serde_reader() {
        let documents = [
            SHIPPED.to_owned(),
            SHIPPED.replace(
                "\"apiUrl\"",
                "\"redirectUri\": \"http://127.0.0.1:8080/\", \"apiUrl\"",
            ),
            SHIPPED.replace("\"apiUrl\"", "\"redirectUri\": null, \"apiUrl\""),
            SHIPPED.replace("\"apiUrl\"", "\"redirectUri\": 5, \"apiUrl\""),
            SHIPPED.replace("\"apiUrl\"", "\"typo\": 1, \"apiUrl\""),
            SHIPPED.replace("\"scopes\"", "\"scopesX\""),
            SHIPPED.replace("[\"127.0.0.2:7010\"]", "\"127.0.0.2:7010\""),
            SHIPPED.replace("[\"127.0.0.2:7010\"]", "[\"127.0.0.2:7010\", 1]"),
            SHIPPED.replace("http://127.0.0.1:7080", "ftp://127.0.0.1:7080"),
            SHIPPED.replace("\"policies\": {", "\"policies\": {\"x\": 1, "),
            SHIPPED.replace("\"B2C_1_profileedit\"", "7"),
            SHIPPED.replace(
                "\"signUpSignIn\": \"B2C_1_signupsignin\"",
                "\"signUpSignIn\": \"B2C_1_other\"",
            ),
            SHIPPED.replace("\"console\": {", "\"console\": {\"x\": 1, "),
            SHIPPED.replace(
                "\"console\": {",
                "\"console\": {\"openapiUrl\": \"/o.json\", ",
            ),
            SHIPPED.replace("\"console\": {", "\"console\": {\"redirectUri\": null, "),
            SHIPPED.replace("\"console\": {", "\"console\": 1, \"c\": {"),
            "[]".to_owned(),
            "{}".to_owned(),
            "not json".to_owned(),
        ];
        for doc in &documents {
            assert_eq!(parse(doc).ok(), SpaConfig::from_json(doc).ok(), "{doc}");
        }
        assert!(parse(&documents[1]).unwrap().redirect_uri.is_some());
        assert!(parse(&documents[0]).unwrap().policies.is_some());
        for refused in documents[9..14].iter().chain(&documents[15..16]) {
            assert!(parse(refused).is_err(), "{refused}");
        }
        assert!(parse(&documents[0]).unwrap().console.is_some());
        assert!(parse(&documents[14]).unwrap().console.is_some());
        let err = parse(&documents[4]).unwrap_err().to_string();
        assert_eq!(err, "config.json is not valid: unknown field `typo`");
    }
}
