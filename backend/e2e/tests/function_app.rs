//! `deploy/function-app`: the zip has the custom-handler layout the Functions host expects, and the
//! binary inside it, started the way the host starts it (cwd = app root, port in
//! `FUNCTIONS_CUSTOMHANDLER_PORT`), serves /api/hello behind its function key and EasyAuth checks.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{ChildServer, TempDir, log, workspace_binary, workspace_root};

const FUNCTION_KEY: &str = "e2e-function-key-0123456789abcdefghijklmnopq";

/// Entries of a zip with their Unix modes, read with Python's zipfile (no zip crate here).
fn zip_entries(zip: &Path) -> BTreeMap<String, u32> {
    let script = "import sys, zipfile\n\
        for i in zipfile.ZipFile(sys.argv[1]).infolist():\n    print(i.filename, (i.external_attr >> 16) & 0o7777)";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, mode) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), mode.parse().unwrap())
        })
        .collect()
}

/// Unpacks like the platform does: files with the Unix modes stored in the zip.
fn unzip(zip: &Path, to: &Path) {
    let script = "import os, sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        for i in z.infolist():\n    p = z.extract(i, sys.argv[2])\n    os.chmod(p, (i.external_attr >> 16) & 0o7777)";
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `deploy/function-app <args> --binary <binary> --out <zip>`; its stdout, once it succeeded.
async fn package(args: &[&str], binary: &Path, zip: &Path) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(workspace_root().join("deploy/function-app"))
            .args(args)
            .arg("--binary")
            .arg(binary)
            .arg("--out")
            .arg(zip)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("deploy/function-app took over 120 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The unpacked app's `exe`, started as the Functions host starts it: from the app root, with
/// nothing but `env` and its port in `FUNCTIONS_CUSTOMHANDLER_PORT`, waited for; its base URL.
async fn start_as_the_host_does(
    app: &Path,
    exe: &str,
    env: &[(&str, String)],
) -> (ChildServer, String) {
    let port = testkit::free_port();
    let mut command = std::process::Command::new(app.join(exe));
    command
        .current_dir(app)
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .envs(env.iter().map(|(k, v)| (k, v)));
    let name = format!("{exe} (from the zip)");
    let mut server = ChildServer::spawn(command, &name, log(&format!("function-app-{port}.log")));
    let base = format!("http://127.0.0.1:{port}");
    server
        .wait_ready(&format!("{base}/healthz"), Duration::from_secs(30))
        .await;
    (server, base)
}

#[tokio::test]
async fn packages_a_custom_handler_zip_whose_binary_serves_hello_as_the_host_starts_it() {
    let work = TempDir::new("function-app");
    let zip = work.path().join("app.zip");
    let binary = workspace_binary("hello");
    let stdout = package(&[], &binary, &zip).await;
    assert!(
        stdout.contains("FUNCTIONS_WORKER_RUNTIME=Custom"),
        "{stdout}"
    );
    assert!(stdout.contains("HELLO_FUNCTION_KEYS="), "{stdout}");
    assert!(
        stdout.contains("binary needs: x86_64 Linux with glibc >= 2."),
        "{stdout}"
    );

    // The layout: host.json names the executable, which is in the zip and executable.
    let entries = zip_entries(&zip);
    let app = work.path().join("app");
    unzip(&zip, &app);
    let host: Value =
        serde_json::from_slice(&std::fs::read(app.join("host.json")).unwrap()).unwrap();
    assert_eq!(host["version"], "2.0");
    let handler = &host["customHandler"];
    assert_eq!(handler["enableProxyingHttpRequest"], true);
    let exe = handler["description"]["defaultExecutablePath"]
        .as_str()
        .unwrap();
    // A file `hello` cannot sit beside the function folder `hello/`.
    assert_eq!(exe, "bin/hello");
    // Everything else is host.json as the hello crate wrote it.
    let mut source: Value = serde_json::from_slice(
        &std::fs::read(workspace_root().join("backend/hello/azure/host.json")).unwrap(),
    )
    .unwrap();
    source["customHandler"]["description"]["defaultExecutablePath"] = Value::from(exe);
    assert_eq!(host, source);
    assert_eq!(entries.get(exe), Some(&0o755), "{entries:?}");
    assert!(entries.contains_key("host.json"), "{entries:?}");
    assert_eq!(
        std::fs::read(app.join(exe)).unwrap(),
        std::fs::read(&binary).unwrap(),
        "the packaged binary is the one given"
    );
    let function: Value =
        serde_json::from_slice(&std::fs::read(app.join("hello/function.json")).unwrap()).unwrap();
    let bindings = function["bindings"].as_array().unwrap();
    let trigger = bindings
        .iter()
        .find(|b| b["type"] == "httpTrigger")
        .unwrap();
    assert_eq!(trigger["authLevel"], "function");
    assert_eq!(trigger["methods"], serde_json::json!(["get"]));
    assert!(
        bindings
            .iter()
            .any(|b| b["type"] == "http" && b["direction"] == "out" && b["name"] == "res")
    );
    assert_eq!(
        entries.len(),
        3,
        "host.json, hello/function.json, the binary: {entries:?}"
    );

    // Started as the host does: from the app root, told its port.
    let issuer = testkit::TestIssuer::start().await;
    let (_hello, base) = start_as_the_host_does(
        &app,
        exe,
        &[
            ("HELLO_FUNCTION_KEYS", FUNCTION_KEY.to_owned()),
            ("EASYAUTH_OPENID_CONFIG_URL", issuer.openid_config_url()),
            ("EASYAUTH_AUDIENCES", testkit::API_CLIENT_ID.to_owned()),
        ],
    )
    .await;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let hello = format!("{base}/api/hello");

    let no_key = client.get(&hello).send().await.unwrap();
    assert_eq!(no_key.status(), 401, "no function key");

    // With the key but no token: EasyAuth's default unauthenticated action, a redirect to login.
    let no_token = client
        .get(&hello)
        .header("x-functions-key", FUNCTION_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 302, "key, no token");
    let location = no_token.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&issuer.authorization_endpoint()),
        "{location}"
    );

    let token = issuer.mint(&issuer.user_claims(
        "alice-object-id",
        testkit::API_CLIENT_ID,
        &[testkit::API_SCOPE],
    ));
    let ok = client
        .get(&hello)
        .header("x-functions-key", FUNCTION_KEY)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: shared::HelloResponse = ok.json().await.unwrap();
    assert!(
        body.message.starts_with("Hello World, time and date are "),
        "{body:?}"
    );
    assert_eq!(body.caller.subject, "alice-object-id");
}

/// Seed 004's Function App: `--app daemon` packages the daemon the same way, with its
/// `call-hello` function, and the binary from the zip serves `GET /api/call-hello` as the host
/// starts it (here with its IdP down, so the answer is the 502 naming that).
#[tokio::test]
async fn packages_the_daemon_whose_binary_serves_call_hello_as_the_host_starts_it() {
    let work = TempDir::new("function-app-daemon");
    let zip = work.path().join("daemon.zip");
    let binary = workspace_binary("daemon");
    let stdout = package(&["--app", "daemon"], &binary, &zip).await;
    for setting in [
        "FUNCTIONS_WORKER_RUNTIME=Custom",
        "DAEMON_TOKEN_URL=",
        "DAEMON_CLIENT_ID=",
        "DAEMON_CLIENT_SECRET=",
        "DAEMON_SCOPE=",
        "DAEMON_API_URL=",
    ] {
        assert!(stdout.contains(setting), "{setting}: {stdout}");
    }
    assert!(!stdout.contains("HELLO_FUNCTION_KEYS"), "{stdout}");

    let entries = zip_entries(&zip);
    assert_eq!(
        entries.keys().collect::<Vec<_>>(),
        ["bin/daemon", "call-hello/function.json", "host.json"],
        "{entries:?}"
    );
    assert_eq!(entries["bin/daemon"], 0o755);
    let app = work.path().join("app");
    unzip(&zip, &app);
    let host: Value =
        serde_json::from_slice(&std::fs::read(app.join("host.json")).unwrap()).unwrap();
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "bin/daemon"
    );
    let function: Value =
        serde_json::from_slice(&std::fs::read(app.join("call-hello/function.json")).unwrap())
            .unwrap();
    let trigger = &function["bindings"][0];
    assert_eq!(trigger["type"], "httpTrigger");
    assert_eq!(trigger["route"], "call-hello");
    assert_eq!(trigger["methods"], serde_json::json!(["get"]));

    let idp_down = format!(
        "http://127.0.0.1:{}/tenant/oauth2/v2.0/token",
        testkit::free_port()
    );
    let (_daemon, base) = start_as_the_host_does(
        &app,
        "bin/daemon",
        &[
            ("DAEMON_TOKEN_URL", idp_down),
            ("DAEMON_CLIENT_ID", testkit::DAEMON_CLIENT_ID.to_owned()),
            (
                "DAEMON_CLIENT_SECRET",
                "function-app-test-secret".to_owned(),
            ),
            ("DAEMON_SCOPE", "api://hello/.default".to_owned()),
            ("DAEMON_API_URL", "http://127.0.0.1:9/api/hello".to_owned()),
        ],
    )
    .await;
    let r = reqwest::get(format!("{base}/api/call-hello"))
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["message"],
        "The daemon could not obtain its access token."
    );
}
