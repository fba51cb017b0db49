//! `devstack env`, as `scripts/dev` (shell) and the hardening suite (JSON) read it: the same
//! environments as [`testkit::Wiring`], in both formats, and one line for a bad argument.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::Value;
use testkit::Wiring;

const BIN: &str = env!("CARGO_BIN_EXE_devstack");

fn devstack(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().unwrap()
}

fn json(args: &[&str]) -> Value {
    let output = devstack(&[&["env", "--format", "json"], args].concat());
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn as_map(env: &[(&'static str, String)]) -> BTreeMap<String, String> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn object(value: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(value.clone()).unwrap()
}

#[test]
fn by_default_it_prints_scripts_devs_wiring_with_a_fresh_key() {
    let printed = json(&["--idp-data-dir", "/tmp/idp"]);
    let mut wiring = Wiring::dev(7010, 7071, 7080, 8080);
    wiring.idp_data_dir = Some("/tmp/idp".into());
    let key = printed["hello"]["HELLO_FUNCTION_KEYS"]
        .as_str()
        .unwrap()
        .to_owned();
    // 32 random bytes, URL-safe base64 without padding; the gateway sends the same one.
    assert_eq!(key.len(), 43, "{key}");
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(printed["gateway"]["GATEWAY_BACKEND_FUNCTION_KEY"], key);
    assert_ne!(json(&[])["hello"]["HELLO_FUNCTION_KEYS"], key.as_str());
    wiring.function_key = key;
    let expected = wiring.environments();
    assert_eq!(object(&printed["dev-idp"]), as_map(&expected.dev_idp));
    assert_eq!(object(&printed["hello"]), as_map(&expected.hello));
    assert_eq!(object(&printed["gateway"]), as_map(&expected.gateway));
    assert_eq!(
        printed["urls"]["OPENID_CONFIG"],
        wiring.user_flow_metadata().as_str()
    );
    assert_eq!(printed["urls"]["IDP_URL"], "http://127.0.0.2:7010");
}

#[test]
fn plain_with_a_test_issuer_gives_only_the_links() {
    let printed = json(&[
        "--plain",
        "--hello-port",
        "4001",
        "--gateway-port",
        "4002",
        "--openid-config-url",
        "http://127.0.0.1:9/.well-known/openid-configuration",
        "--function-key",
        "test-key",
        "--spa-origin",
        "http://127.0.0.1:8080",
    ]);
    let metadata = "http://127.0.0.1:9/.well-known/openid-configuration";
    let audience = testkit::API_CLIENT_ID;
    let expected = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        object(&printed["hello"]),
        expected(&[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "4001"),
            ("HELLO_FUNCTION_KEYS", "test-key"),
            ("EASYAUTH_OPENID_CONFIG_URLS", metadata),
            ("EASYAUTH_AUDIENCES", audience),
        ])
    );
    assert_eq!(
        object(&printed["gateway"]),
        expected(&[
            ("GATEWAY_PORT", "4002"),
            ("GATEWAY_BACKEND_URL", "http://127.0.0.1:4001"),
            ("GATEWAY_BACKEND_FUNCTION_KEY", "test-key"),
            ("GATEWAY_ALLOWED_ORIGINS", "http://127.0.0.1:8080"),
            ("GATEWAY_OPENID_CONFIG_URLS", metadata),
            ("GATEWAY_AUDIENCES", audience),
        ])
    );
}

/// What `scripts/dev` does with the shell format: `eval`, then `env "${HELLO_ENV[@]}" …`.
#[test]
fn the_shell_format_evaluates_to_the_same_environments() {
    let args = [
        "--function-key",
        "it's a key",
        "--idp-data-dir",
        "/tmp/a dir/idp",
    ];
    let printed = json(&args);
    let script = format!(
        "set -eu; eval \"$('{BIN}' env {})\"; for a in DEVIDP_ENV HELLO_ENV GATEWAY_ENV; do \
         declare -n arr=$a; echo \"[$a]\"; for w in \"${{arr[@]}}\"; do printf '%s\\n' \"$w\"; done; done; \
         echo \"[URLS]\"; echo \"IDP_URL=$IDP_URL\"; echo \"HELLO_URL=$HELLO_URL\"; echo \"GATEWAY_URL=$GATEWAY_URL\"",
        "--function-key \"it's a key\" --idp-data-dir '/tmp/a dir/idp'"
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        let (k, v) = line.split_once('=').unwrap();
        sections
            .entry(current.clone())
            .or_default()
            .insert(k.to_owned(), v.to_owned());
    }
    assert_eq!(sections["DEVIDP_ENV"], object(&printed["dev-idp"]));
    assert_eq!(sections["HELLO_ENV"], object(&printed["hello"]));
    assert_eq!(sections["GATEWAY_ENV"], object(&printed["gateway"]));
    assert_eq!(sections["HELLO_ENV"]["HELLO_FUNCTION_KEYS"], "it's a key");
    assert_eq!(sections["URLS"]["IDP_URL"], "http://127.0.0.2:7010");
    assert_eq!(sections["URLS"]["GATEWAY_URL"], "http://127.0.0.1:7080");
}

#[test]
fn a_bad_argument_is_one_line_naming_it_and_exit_2() {
    for (args, named) in [
        (&["env", "--idp-port", "70100"][..], "--idp-port: `70100`"),
        (&["env", "--format", "yaml"][..], "--format: `yaml`"),
        (&["env", "--colour", "red"][..], "`--colour`"),
        (&["env", "--hello-port"][..], "--hello-port needs a value"),
        (&["start"][..], "unknown command `start`"),
        (&[][..], "no command"),
    ] {
        let output = devstack(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("devstack: "), "{stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}
