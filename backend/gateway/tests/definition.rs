//! The API's OpenAPI document (`GET /openapi.json`, `gateway openapi`) and the validation built
//! from it (`GATEWAY_VALIDATION`), driven over HTTP against the real gateway binary.
#![allow(clippy::unwrap_used)]

mod common;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{API_CLIENT_ID, TestIssuer};

const BIN: &str = env!("CARGO_BIN_EXE_gateway");
const SCOPE: &str = "https://devtenant.onmicrosoft.com/hello-api/accessapp";
/// In a non-conforming backend body: must never reach the client.
const BACKEND_SECRET: &str = "backend-internal-detail-5d1e";
/// The Python validator scripts/setup installs (deploy/requirements.txt).
const VALIDATOR_PYTHON: &str = ".cache/hello-b2c/deploy-venv/bin/python";

/// Stands in for the function: `x-test-answer` picks a conforming or a non-conforming answer.
async fn function(headers: HeaderMap) -> Response {
    let answer = headers
        .get("x-test-answer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("ok");
    let hello = json!({
        "message": "Hello Ada, time and date are 2026-12-02 01:00:00",
        "caller": {"subject": "sub-1", "scopes": ["accessapp"], "roles": []},
        "time": "2026-12-02T01:00:00Z",
    });
    match answer {
        "ok" => Json(hello).into_response(),
        "text" => ([("content-type", "text/plain; charset=utf-8")], "Hello Ada").into_response(),
        "teapot" => (
            StatusCode::IM_A_TEAPOT,
            Json(json!({"statusCode": 418, "message": BACKEND_SECRET})),
        )
            .into_response(),
        "bad-body" => Json(json!({"message": BACKEND_SECRET, "caller": "nobody"})).into_response(),
        "html" => (
            [("content-type", "text/html")],
            format!("<p>{BACKEND_SECRET}</p>"),
        )
            .into_response(),
        "bad-header" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "soon")],
            Json(json!({"statusCode": 429, "message": BACKEND_SECRET})),
        )
            .into_response(),
        _ => StatusCode::NOT_IMPLEMENTED.into_response(),
    }
}

async fn start_function() -> String {
    let app = axum::Router::new().route("/api/hello", get(function));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn env(
    issuer: &TestIssuer,
    backend: &str,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = env_for(&[issuer], backend).into_iter().collect();
    env.push(("GATEWAY_API_SCOPES", SCOPE.into()));
    env.push(("RUST_LOG", "info".into()));
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

/// The binary on a free port; its log is returned by [`stop`].
struct Binary {
    base: String,
    child: testkit::ChildServer,
}

async fn start(env: &[(&'static str, String)]) -> Binary {
    let port = testkit::free_port();
    let mut env = env.to_vec();
    env.push(("GATEWAY_PORT", port.to_string()));
    let mut child = spawn_logged(BIN, &env);
    let base = format!("http://127.0.0.1:{port}");
    child
        .wait_ready(&format!("{base}/healthz"), Duration::from_secs(20))
        .await;
    Binary { base, child }
}

async fn stop(binary: Binary) -> String {
    binary.child.stop_and_read().await
}

/// `/openapi.json` once the issuer's metadata has loaded (503 until then).
async fn document(base: &str) -> (reqwest::header::HeaderMap, Value) {
    for _ in 0..100 {
        let response = client()
            .get(format!("{base}/openapi.json"))
            .header("origin", SPA_ORIGIN)
            .send()
            .await
            .unwrap();
        let (status, headers, body) = read(response).await;
        if status == 200 {
            return (headers, json_body(&body));
        }
        assert_eq!(status, 503, "{body}");
        assert_api_error(status, &headers, &body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/openapi.json never became available");
}

/// openapi-spec-validator's verdict on `document` (OpenAPI 3.1).
fn validate_with_python(document: &Value) {
    let home = std::env::var("HOME").unwrap();
    let python = std::path::Path::new(&home).join(VALIDATOR_PYTHON);
    assert!(
        python.exists(),
        "{} missing: run scripts/setup",
        python.display()
    );
    let file = std::env::temp_dir().join(format!("openapi-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(document).unwrap()).unwrap();
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import json,sys; from openapi_spec_validator import validate; \
             from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator; \
             validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator); print('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success() && output.stdout.starts_with(b"valid"),
        "openapi-spec-validator refused the document:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_document_is_public_names_the_idp_and_validates() {
    let issuer = TestIssuer::start().await;
    let backend = start_function().await;
    // A per-IP limit of 2 calls: the document is not rate-limited.
    let binary = start(&env(
        &issuer,
        &backend,
        &[("GATEWAY_RATE_LIMIT_PER_IP", "2/60")],
    ))
    .await;
    let (headers, served) = document(&binary.base).await;
    for _ in 0..4 {
        let (again_headers, again) = document(&binary.base).await;
        assert_eq!(again, served);
        assert!(again_headers.get("x-ratelimit-remaining-ip").is_none());
    }
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["servers"][0]["url"], "/api");
    let flow = &served["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    assert_eq!(flow["authorizationUrl"], issuer.authorization_endpoint());
    assert_eq!(
        flow["tokenUrl"],
        format!("{}/oauth2/v2.0/token", issuer.base_url())
    );
    assert!(flow["scopes"][SCOPE].is_string(), "{flow}");
    assert_eq!(served["security"], json!([{"oauth2": [SCOPE]}]));
    let operation = &served["paths"]["/hello"]["get"];
    let statuses: Vec<&str> = operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for status in [
        "200", "400", "401", "403", "404", "405", "429", "502", "504",
    ] {
        assert!(
            statuses.contains(&status),
            "{status} missing from {statuses:?}"
        );
    }
    assert_eq!(
        operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/HelloResponse"
    );
    for schema in ["HelloResponse", "Caller", "ApiError"] {
        assert!(
            served["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
    validate_with_python(&served);

    // `gateway openapi` prints the same document.
    let output = tokio::process::Command::new(BIN)
        .arg("openapi")
        .env_clear()
        .envs(env(&issuer, &backend, &[]))
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, served);
    stop(binary).await;
}

#[tokio::test]
async fn without_the_idps_metadata_there_is_no_document_and_the_command_says_why() {
    let dead = format!(
        "http://127.0.0.1:{}/.well-known/openid-configuration",
        testkit::free_port()
    );
    let settings = vec![
        ("GATEWAY_BACKEND_FUNCTION_KEY", FUNCTION_KEY.to_owned()),
        ("GATEWAY_ALLOWED_ORIGINS", SPA_ORIGIN.to_owned()),
        ("GATEWAY_OPENID_CONFIG_URLS", dead),
        ("GATEWAY_AUDIENCES", API_CLIENT_ID.to_owned()),
    ];
    let binary = start(&settings).await;
    let response = client()
        .get(format!("{}/openapi.json", binary.base))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(response).await;
    assert_eq!(status, 503);
    assert!(headers.get("retry-after").is_some());
    assert_api_error(status, &headers, &body);
    stop(binary).await;

    let output = tokio::process::Command::new(BIN)
        .arg("openapi")
        .env_clear()
        .envs(settings)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GATEWAY_OPENID_CONFIG_URLS"), "{stderr}");
}

/// An issuer, the stand-in function, the binary validating with `action`, and a user's token.
async fn validating(action: &str) -> (TestIssuer, Binary, String) {
    let issuer = TestIssuer::start().await;
    let backend = start_function().await;
    let binary = start(&env(&issuer, &backend, &[("GATEWAY_VALIDATION", action)])).await;
    let token = token(&issuer, "validated-user");
    (issuer, binary, token)
}

/// The call, with a valid token; (status, headers, body).
async fn call(
    base: &str,
    query: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client()
        .get(format!("{base}/api/hello{query}"))
        .bearer_auth(token)
        .header("origin", SPA_ORIGIN);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn requests_outside_the_definition_get_400_naming_what() {
    let (_issuer, binary, token) = validating("prevent").await;
    let base = binary.base.as_str();

    let (status, _, body) = call(base, "?name=Ada", &token, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_body(&body)["message"],
        "Hello Ada, time and date are 2026-12-02 01:00:00"
    );
    let (status, _, _) = call(base, "", &token, &[]).await;
    assert_eq!(status, 200);

    let long = format!("?name={}", "a".repeat(65));
    let huge = "x".repeat(17 * 1024);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (
            "?colour=blue",
            vec![],
            "Unspecified query parameter colour is not allowed.".into(),
        ),
        (
            "?name=Ada&debug",
            vec![],
            "Unspecified query parameter debug is not allowed.".into(),
        ),
        (
            "?code=stolen",
            vec![],
            "Unspecified query parameter code is not allowed.".into(),
        ),
        (
            "?name=Ada&name=Bob",
            vec![],
            "Request cannot contain multiple values for the query parameter name.".into(),
        ),
        (
            "?name=Ada!",
            vec![],
            "The value of the query parameter name does not conform to the definition.".into(),
        ),
        (
            "?name=",
            vec![],
            "The value of the query parameter name does not conform to the definition.".into(),
        ),
        (
            &long,
            vec![],
            "The value of the query parameter name does not conform to the definition.".into(),
        ),
        (
            "?name=%3Cscript%3E",
            vec![],
            "The value of the query parameter name does not conform to the definition.".into(),
        ),
        (
            "?%FF%FE=1",
            vec![],
            "Unspecified query parameter \u{FFFD}\u{FFFD} is not allowed.".into(),
        ),
        (
            "",
            vec![("x-padding", huge.as_str())],
            format!(
                "The value of the header x-padding is {} bytes long, more than the 16384 allowed.",
                huge.len()
            ),
        ),
        (
            "",
            vec![
                ("content-type", "application/json"),
                ("content-length", "2"),
            ],
            "Unspecified content type application/json is not allowed.".into(),
        ),
    ];
    for (query, headers, message) in cases {
        let (status, response_headers, body) = call(base, query, &token, &headers).await;
        assert_eq!(status, 400, "{query} {headers:?}: {body}");
        assert_eq!(
            assert_api_error(400, &response_headers, &body),
            message,
            "{query}"
        );
        // CORS on the refusal, so the SPA and the console can read it.
        assert_eq!(response_headers["access-control-allow-origin"], SPA_ORIGIN);
    }
    // A body on the GET, however it is framed.
    let response = client()
        .get(format!("{base}/api/hello"))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(response).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        assert_api_error(400, &headers, &body),
        "Request's body is 2 bytes long and it exceeds the limit of 0 bytes."
    );
    // Validation runs before validate-jwt: no token needed to be told, and no key material spent.
    let response = client()
        .get(format!("{base}/api/hello?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A method the operation does not bind is still the router's 405.
    let response = client()
        .post(format!("{base}/api/hello?x=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    stop(binary).await;
}

#[tokio::test]
async fn backend_answers_outside_the_definition_get_502_and_a_log_line() {
    let (_issuer, binary, token) = validating("prevent").await;
    let base = binary.base.as_str();

    for good in ["ok", "text"] {
        let (status, _, body) = call(base, "", &token, &[("x-test-answer", good)]).await;
        assert_eq!(status, 200, "{good}: {body}");
    }
    for bad in ["teapot", "bad-body", "html", "bad-header"] {
        let (status, headers, body) = call(base, "", &token, &[("x-test-answer", bad)]).await;
        assert_eq!(status, 502, "{bad}: {body}");
        assert_eq!(
            assert_api_error(502, &headers, &body),
            "The request could not be processed due to an internal error. Contact the API owner."
        );
        assert!(
            !body.contains(BACKEND_SECRET),
            "{bad}: the backend's body leaked"
        );
        assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    }
    let log = stop(binary).await;
    for reason in [
        "Response status code 418 is not allowed.",
        "Body of the response does not conform to the definition HelloResponse",
        "Unspecified content type text/html is not allowed.",
        "Value of the header retry-after does not conform to the definition.",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("ERROR") && l.contains(reason)),
            "no error line with {reason:?} in:\n{log}"
        );
    }
}

#[tokio::test]
async fn detect_logs_and_lets_the_call_through() {
    let (_issuer, binary, token) = validating("detect").await;
    let (status, _, _) = call(&binary.base, "?colour=blue", &token, &[]).await;
    assert_eq!(status, 200);
    let (status, _, body) = call(&binary.base, "", &token, &[("x-test-answer", "teapot")]).await;
    assert_eq!(status, 418, "{body}");
    let log = stop(binary).await;
    assert!(
        log.contains("Unspecified query parameter colour is not allowed."),
        "{log}"
    );
    assert!(
        log.contains("Response status code 418 is not allowed."),
        "{log}"
    );
}

#[tokio::test]
async fn the_apim_policy_renders_the_validation_policies_only_when_set() {
    let render = |validation: Option<&str>| {
        let mut command = std::process::Command::new(BIN);
        command
            .arg("render-apim-policy")
            .env_clear()
            .env("GATEWAY_ALLOWED_ORIGINS", SPA_ORIGIN)
            .env(
                "GATEWAY_OPENID_CONFIG_URLS",
                "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration",
            )
            .env("GATEWAY_AUDIENCES", API_CLIENT_ID);
        if let Some(action) = validation {
            command.env("GATEWAY_VALIDATION", action);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let xml = render(Some("prevent"));
    let document = roxmltree::Document::parse(&xml).unwrap();
    let section = |name: &str| {
        document
            .descendants()
            .find(|n| n.has_tag_name(name))
            .unwrap()
            .children()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name().to_owned())
            .collect::<Vec<_>>()
    };
    let inbound = section("inbound");
    let at = |tag: &str| inbound.iter().position(|t| t == tag).unwrap();
    // Before validate-jwt, as the gateway runs them.
    assert!(
        at("validate-parameters") < at("validate-jwt"),
        "{inbound:?}"
    );
    assert!(at("validate-content") < at("validate-jwt"), "{inbound:?}");
    assert_eq!(
        section("outbound"),
        [
            "base",
            "validate-status-code",
            "validate-headers",
            "validate-content"
        ]
    );
    for node in document.descendants().filter(|n| {
        n.tag_name().name().starts_with("validate-") && n.tag_name().name() != "validate-jwt"
    }) {
        let actions: Vec<&str> = node
            .attributes()
            .filter(|a| {
                a.name().ends_with("-action") && !a.name().starts_with("unspecified-header")
            })
            .map(|a| a.value())
            .collect();
        assert!(
            actions.iter().all(|a| *a == "prevent"),
            "{node:?}: {actions:?}"
        );
    }
    assert!(render(Some("detect")).contains("unspecified-status-code-action=\"detect\""));
    let plain = render(None);
    assert!(!plain.contains("validate-parameters") && !plain.contains("validate-status-code"));
}
