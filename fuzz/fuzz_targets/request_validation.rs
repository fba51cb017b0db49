//! The gateway's request validation (`validation::Definition::check`, built from the API's own
//! OpenAPI document): any query string and headers give an answer, never a panic.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use gateway::config::PolicyConfig;
use gateway::validation::{Action, Definition};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static DEFINITION: LazyLock<Definition> = LazyLock::new(|| {
    let env = std::collections::HashMap::from([
        ("GATEWAY_ALLOWED_ORIGINS", "http://127.0.0.1:8080".to_owned()),
        (
            "GATEWAY_OPENID_CONFIG_URLS",
            "http://127.0.0.1:7010/a/.well-known/openid-configuration".to_owned(),
        ),
        ("GATEWAY_AUDIENCES", "api".to_owned()),
    ]);
    let policy = PolicyConfig::from_source(&env).expect("fixed settings");
    let document = serde_json::to_value(gateway::openapi::api(&policy)).expect("document");
    Definition::new(&document, Action::Prevent).expect("the document's rules")
});

fuzz_target!(|data: &[u8]| {
    // The query, then `name: value` header lines.
    let mut parts = data.split(|&b| b == b'\n');
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let mut headers = HeaderMap::new();
    for line in parts {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(&line[colon + 1..]),
        ) {
            headers.append(name, value);
        }
    }
    let verdict = DEFINITION.check(&Method::GET, "/api/hello", Some(&query), &headers);
    assert!(verdict.is_some(), "GET /api/hello is in the definition");
});
