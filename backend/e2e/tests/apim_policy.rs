//! `deploy/apim-policy`: the gateway's rendered policy, wrapped in the ARM body `az rest` PUTs,
//! without the function key; a missing setting stops it with the setting's name.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use serde_json::Value;
use support::{TempDir, workspace_binary, workspace_root};

const SECRET_KEY: &str = "never-in-the-policy-0123456789";

fn render(out: &std::path::Path, envs: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(workspace_root().join("deploy/apim-policy"));
    command
        .arg("--out")
        .arg(out)
        .env("GATEWAY_BIN", workspace_binary("gateway"));
    for (name, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("GATEWAY_") && k != "GATEWAY_BIN")
    {
        command.env_remove(name);
    }
    command.envs(envs.iter().copied()).output().unwrap()
}

#[test]
fn writes_the_policy_and_the_arm_body_without_the_function_key() {
    let dir = TempDir::new("apim-policy");
    let output = render(
        dir.path(),
        &[
            (
                "GATEWAY_ALLOWED_ORIGINS",
                "https://contosoweb.z6.web.core.windows.net",
            ),
            (
                "GATEWAY_OPENID_CONFIG_URLS",
                "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration",
            ),
            ("GATEWAY_AUDIENCES", "9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e"),
            (
                "GATEWAY_BACKEND_URL",
                "https://contoso-fn.azurewebsites.net",
            ),
            ("GATEWAY_BACKEND_FUNCTION_KEY", SECRET_KEY),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let xml = std::fs::read_to_string(dir.path().join("policy.xml")).unwrap();
    let body: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("policy.json")).unwrap()).unwrap();
    assert_eq!(body["properties"]["format"], "rawxml");
    assert_eq!(body["properties"]["value"], xml.as_str());
    assert!(xml.starts_with("<policies>"), "{xml}");
    for part in [
        "<origin>https://contosoweb.z6.web.core.windows.net</origin>",
        "<audience>9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e</audience>",
        "<set-backend-service base-url=\"https://contoso-fn.azurewebsites.net/api\" />",
        "{{function-key}}",
        "calls=\"15\" renewal-period=\"60\"",
    ] {
        assert!(xml.contains(part), "{part} missing from\n{xml}");
    }
    assert!(!xml.contains(SECRET_KEY));
}

#[test]
fn a_missing_setting_is_named_and_nothing_is_written() {
    let dir = TempDir::new("apim-policy-bad");
    let output = render(dir.path(), &[("GATEWAY_AUDIENCES", "api")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GATEWAY_"), "{stderr}");
    assert!(!dir.path().join("policy.json").exists());
}
