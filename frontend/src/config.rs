//! Loading `config.json`: the answer to `GET config.json` becomes a validated `SpaConfig` or one
//! sentence for the page (never a blank screen).

use shared::SpaConfig;

/// Where the config lives, relative to the page (next to `index.html` in `dist/`).
pub const CONFIG_PATH: &str = "config.json";

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
    SpaConfig::from_json(body).map_err(|e| e.to_string())
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
            "http://127.0.0.1:7010/tfp/devtenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"
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
        let unknown = SHIPPED.replace("[\"127.0.0.1:7010\"]", "[\"contoso.b2clogin.com\"]");
        let err = from_response(200, None, &unknown).unwrap_err();
        assert!(err.contains("knownAuthorities"), "{err}");
    }
}
