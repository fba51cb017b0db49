//! `deploy/apim-api`: the API's OpenAPI document as the gateway serves it, wrapped in the ARM bodies
//! that import it and create seed 002's OAuth 2.0 authorization server, offline (the IdP is a
//! local test issuer; `--apply` needs Azure).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use serde_json::Value;
use support::{TempDir, workspace_binary, workspace_root};
use testkit::TestIssuer;

const CONSOLE_CLIENT_ID: &str = "5e7a1c3d-2b4f-4d6e-9a8b-7c6d5e4f3a2b";
const SCOPE: &str = "https://contoso.onmicrosoft.com/hello-api/accessapp";
const SECRET_KEY: &str = "never-in-the-bodies-0123456789";

async fn render(out: &std::path::Path, args: &[&str], envs: &[(&str, String)]) -> Output {
    let mut command = tokio::process::Command::new(workspace_root().join("deploy/apim-api"));
    command
        .arg("--out")
        .arg(out)
        .args(args)
        .env("GATEWAY_BIN", workspace_binary("gateway"));
    for (name, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("GATEWAY_") && k != "GATEWAY_BIN")
    {
        command.env_remove(name);
    }
    command.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    command.output().await.unwrap()
}

fn read(dir: &TempDir, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.path().join(name)).unwrap()).unwrap()
}

#[tokio::test]
async fn imports_the_served_document_and_creates_the_consoles_authorization_server() {
    let issuer = TestIssuer::start().await;
    let dir = TempDir::new("apim-api");
    let settings = [
        (
            "GATEWAY_ALLOWED_ORIGINS",
            "https://contosoweb.z6.web.core.windows.net".to_owned(),
        ),
        ("GATEWAY_OPENID_CONFIG_URLS", issuer.openid_config_url()),
        ("GATEWAY_AUDIENCES", testkit::API_CLIENT_ID.to_owned()),
        ("GATEWAY_API_SCOPES", SCOPE.to_owned()),
        (
            "GATEWAY_BACKEND_URL",
            "https://contoso-fn.azurewebsites.net".to_owned(),
        ),
        ("GATEWAY_BACKEND_FUNCTION_KEY", SECRET_KEY.to_owned()),
    ];
    let output = render(
        dir.path(),
        &["--console-client-id", CONSOLE_CLIENT_ID],
        &settings,
    )
    .await;
    assert!(output.status.success(), "{output:?}");

    let document = read(&dir, "openapi.json");
    assert_eq!(document["openapi"], "3.1.0");
    let api = read(&dir, "api.json");
    let properties = &api["properties"];
    assert_eq!(properties["format"], "openapi+json");
    // The very document `gateway openapi` printed, as text.
    let imported: Value = serde_json::from_str(properties["value"].as_str().unwrap()).unwrap();
    assert_eq!(imported, document);
    assert_eq!(properties["path"], "hello");
    assert_eq!(
        properties["serviceUrl"],
        "https://contoso-fn.azurewebsites.net/api"
    );
    assert_eq!(
        properties["authenticationSettings"]["oAuth2AuthenticationSettings"][0]["authorizationServerId"],
        "b2c-console"
    );

    let server = read(&dir, "authorization-server.json");
    let server = &server["properties"];
    assert_eq!(
        server["authorizationEndpoint"],
        issuer.authorization_endpoint()
    );
    assert_eq!(
        server["tokenEndpoint"],
        format!("{}/oauth2/v2.0/token", issuer.base_url())
    );
    assert_eq!(
        server["grantTypes"],
        serde_json::json!(["authorizationCode"])
    );
    assert_eq!(server["clientId"], CONSOLE_CLIENT_ID);
    assert_eq!(
        server["defaultScope"],
        format!("openid offline_access {SCOPE}")
    );
    assert!(server.get("clientSecret").is_none());
    for name in ["openapi.json", "api.json", "authorization-server.json"] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(!text.contains(SECRET_KEY), "the function key is in {name}");
    }
}

#[tokio::test]
async fn a_missing_setting_or_client_id_is_named_and_nothing_is_written() {
    let dir = TempDir::new("apim-api-bad");
    let output = render(
        dir.path(),
        &["--console-client-id", CONSOLE_CLIENT_ID],
        &[("GATEWAY_AUDIENCES", "api".to_owned())],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GATEWAY_"), "{stderr}");
    assert!(!dir.path().join("openapi.json").exists());
    assert!(!dir.path().join("api.json").exists());

    let output = render(dir.path(), &[], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--console-client-id"));
}
