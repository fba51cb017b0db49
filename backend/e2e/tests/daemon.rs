//! Seed 004 end to end, with the real binaries on free ports: `dev-idp` (built-in tenant) issues
//! the daemon's client-credentials token under the tenant-level Entra issuer; `gateway` and
//! `hello` trust both the user flow's and the tenant's metadata; `hello` requires the app role
//! `access:test-api`. The daemon's call succeeds (as `daemon call` and as the custom handler's
//! `GET /api/call-hello`), a signed-in user's token is refused 403, and each failure of
//! `daemon call` is one line naming it: bad secret, IdP down, 401, 403 and 429 from the API.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{
    ALICE, ALICE_PASSWORD, API_SCOPE, ChildServer, POLICY, SPA_CLIENT_ID, binaries, log,
    test_output_dir, workspace_binary,
};
use testkit::dev_tenant::{
    APP_ROLE as ROLE, APP_SCOPE_URI as APP_SCOPE, DAEMON_CLIENT_ID, DAEMON_SECRET, TENANT_ID,
};
use testkit::{Server, Stack, StackOptions, Trust, free_port};

const FUNCTION_KEY: &str = "daemon-e2e-function-key-0123456789abcdef";
/// The built-in SPA's redirect URI: nothing listens there, the test reads `Location`.
const SPA_REDIRECT: &str = "http://127.0.0.1:8080/";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const STEP: Duration = Duration::from_secs(60);

/// Seed 004's stack: the built-in tenant on 127.0.0.1, both issuers trusted, the function
/// requiring the app role `ROLE` (401 without a token), the gateway allowing `per_subject`.
async fn start_stack(label: &str, per_subject: &str) -> Stack {
    let mut options = StackOptions::new(binaries(), &format!("daemon-{label}"), FUNCTION_KEY);
    options.log_dir = Some(test_output_dir());
    options.ready_timeout = STEP;
    options.wiring.idp_host = "127.0.0.1".into();
    options
        .hello_env
        .extend(unauthenticated_401_requiring(ROLE));
    options.gateway_env.extend(per_subject_limit(per_subject));
    Stack::spawn(options).await
}

fn unauthenticated_401_requiring(role: &str) -> [(&'static str, String); 2] {
    [
        ("EASYAUTH_UNAUTHENTICATED_ACTION", "Return401".to_owned()),
        ("EASYAUTH_REQUIRED_ROLES", role.to_owned()),
    ]
}

fn per_subject_limit(limit: &str) -> [(&'static str, String); 1] {
    [("GATEWAY_RATE_LIMIT_PER_SUBJECT", limit.to_owned())]
}

fn tenant_token_url(stack: &Stack) -> String {
    format!("{}/{TENANT_ID}/oauth2/v2.0/token", stack.idp_url())
}

/// The daemon's settings as seed 004's function app has them, with `overrides`.
fn daemon_env(
    stack: &Stack,
    api_url: &str,
    overrides: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DAEMON_TOKEN_URL", tenant_token_url(stack)),
        ("DAEMON_CLIENT_ID", DAEMON_CLIENT_ID.to_owned()),
        ("DAEMON_CLIENT_SECRET", DAEMON_SECRET.to_owned()),
        ("DAEMON_SCOPE", APP_SCOPE.to_owned()),
        ("DAEMON_API_URL", api_url.to_owned()),
    ];
    for (name, value) in overrides {
        env.retain(|(n, _)| n != name);
        env.push((name, value.clone()));
    }
    env
}

/// `daemon call`: (exit code, stdout, stderr).
async fn daemon_call(env: &[(&'static str, String)]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(workspace_binary("daemon"));
    command
        .arg("call")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let output = testkit::run_command_to_exit(command, Duration::from_secs(60))
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A failed `daemon call`: exit 1 and exactly one line on stderr, which is returned.
async fn failure_line(env: &[(&'static str, String)]) -> String {
    let (code, stdout, stderr) = daemon_call(env).await;
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains(DAEMON_SECRET), "{stderr}");
    stderr.trim_end().to_owned()
}

fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `name="…"` of one HTML tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(html_unescape(&tag[start..end]))
}

/// Alice signs in on the user flow's HTML form (as the SPA's user does, minus the browser) and
/// the SPA redeems the code: her access token for the API.
async fn user_access_token(stack: &Stack) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let policy = format!(
        "{}/devtenant.onmicrosoft.com/{POLICY}/oauth2/v2.0",
        stack.idp_url()
    );
    let mut authorize = reqwest::Url::parse(&format!("{policy}/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", SPA_CLIENT_ID)
        .append_pair("redirect_uri", SPA_REDIRECT)
        .append_pair("response_type", "code")
        .append_pair("scope", &format!("openid offline_access {API_SCOPE}"))
        .append_pair("state", "daemon-e2e")
        .append_pair("nonce", "daemon-e2e-nonce")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let page = client.get(authorize.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let html = page.text().await.unwrap();
    let form_start = html.find("<form method=\"post\"").expect("a sign-in form");
    let form_tag = &html[form_start..form_start + html[form_start..].find('>').unwrap()];
    let action = authorize
        .join(&attribute(form_tag, "action").unwrap())
        .unwrap();
    let mut fields: Vec<(String, String)> = html
        .split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            if attribute(tag, "type")? != "hidden" {
                return None;
            }
            Some((
                attribute(tag, "name")?,
                attribute(tag, "value").unwrap_or_default(),
            ))
        })
        .collect();
    fields.push(("signInName".into(), ALICE.into()));
    fields.push(("password".into(), ALICE_PASSWORD.into()));
    let signed_in = client
        .post(action)
        .header("cookie", cookies.join("; "))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(
        signed_in.status().is_redirection(),
        "{}",
        signed_in.text().await.unwrap()
    );
    let location = reqwest::Url::parse(signed_in.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let token = testkit::json_reply(client.post(format!("{policy}/token")).form(&[
        ("grant_type", "authorization_code"),
        ("client_id", SPA_CLIENT_ID),
        ("code", &code),
        ("redirect_uri", SPA_REDIRECT),
        ("code_verifier", VERIFIER),
    ]))
    .await;
    token["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_daemons_app_token_passes_gateway_and_function_and_a_users_token_gets_403() {
    let stack = start_stack("ok", "15/60").await;
    let api_url = format!("{}/api/hello", stack.gateway_url());

    let (code, stdout, stderr) = daemon_call(&daemon_env(&stack, &api_url, &[])).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let answer: shared::HelloResponse = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        answer
            .message
            .starts_with("Hello World, time and date are "),
        "{answer:?}"
    );
    assert_eq!(answer.caller.subject, DAEMON_CLIENT_ID);
    assert_eq!(answer.caller.roles, [ROLE]);
    assert!(answer.caller.scopes.is_empty());

    // As seed 004's Function App: the custom handler's GET /api/call-hello makes the same call.
    let port = free_port();
    let mut command = std::process::Command::new(workspace_binary("daemon"));
    command
        .env("RUST_LOG", "info")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .envs(daemon_env(&stack, &api_url, &[]));
    let mut function = ChildServer::spawn(command, "daemon", log("daemon-ok.daemon.log"));
    let function_url = format!("http://127.0.0.1:{port}");
    function
        .wait_ready(&format!("{function_url}/healthz"), STEP)
        .await;
    let r = reqwest::get(format!("{function_url}/api/call-hello"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: shared::HelloResponse = r.json().await.unwrap();
    assert_eq!(answer.caller.subject, DAEMON_CLIENT_ID);
    assert_eq!(answer.caller.roles, [ROLE]);

    // Alice's token is valid (the gateway lets it through) but carries no app role: 403.
    let user_token = user_access_token(&stack).await;
    let r = reqwest::Client::new()
        .get(&api_url)
        .bearer_auth(&user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The function's authorization policy, not the gateway: EasyAuth's refusal of a missing role.
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let body: shared::ApiError = r.json().await.unwrap();
    assert_eq!(
        body.message,
        "You do not have permission to view this directory or page."
    );
}

#[tokio::test]
async fn each_failure_of_daemon_call_is_one_line_naming_it() {
    let mut stack = start_stack("failures", "1/60").await;
    let limited = stack.gateway_url();
    let other_role = stack
        .spawn_another(
            Server::Hello,
            "hello-other-role",
            |_| {},
            &unauthenticated_401_requiring("access:other-api"),
        )
        .await;
    // Trusts only the user flow's issuer: the tenant-level app token is refused.
    let user_flow_only = stack
        .spawn_another(
            Server::Gateway,
            "gateway-user-flow-only",
            |w| w.trust = Trust::UserFlow,
            &per_subject_limit("15/60"),
        )
        .await
        .gateway_url();
    let forbidding = stack
        .spawn_another(
            Server::Gateway,
            "gateway-forbidding",
            |w| w.hello_port = other_role.hello_port,
            &per_subject_limit("15/60"),
        )
        .await
        .gateway_url();
    let api = |base: &str| format!("{base}/api/hello");

    let bad_secret = [("DAEMON_CLIENT_SECRET", "not-the-secret".to_owned())];
    let line = failure_line(&daemon_env(&stack, &api(&limited), &bad_secret)).await;
    assert_eq!(
        line,
        "daemon: the identity provider refused the client credentials (invalid_client): check DAEMON_CLIENT_ID and DAEMON_CLIENT_SECRET"
    );

    let down = format!(
        "http://127.0.0.1:{}/{TENANT_ID}/oauth2/v2.0/token",
        free_port()
    );
    let line = failure_line(&daemon_env(
        &stack,
        &api(&limited),
        &[("DAEMON_TOKEN_URL", down.clone())],
    ))
    .await;
    assert!(
        line.starts_with(&format!(
            "daemon: cannot reach the identity provider at {down}: "
        )),
        "{line}"
    );
    assert!(line.to_lowercase().contains("connection refused"), "{line}");

    let line = failure_line(&daemon_env(&stack, &api(&user_flow_only), &[])).await;
    assert_eq!(
        line,
        "daemon: the API refused the token (401 Unauthorized): Unauthorized. Access token is missing or invalid."
    );

    let line = failure_line(&daemon_env(&stack, &api(&forbidding), &[])).await;
    assert_eq!(
        line,
        "daemon: the API refused the call (403 Forbidden): You do not have permission to view this directory or page."
    );

    // 1 call per minute per subject: the first passes, the second is over the limit.
    let (code, _, stderr) = daemon_call(&daemon_env(&stack, &api(&limited), &[])).await;
    assert_eq!(code, 0, "{stderr}");
    let line = failure_line(&daemon_env(&stack, &api(&limited), &[])).await;
    assert!(
        line.starts_with(
            "daemon: the API's rate limit is exceeded (429 Too Many Requests), retry in "
        ),
        "{line}"
    );
    assert!(
        line.contains(": Rate limit is exceeded. Try again in "),
        "{line}"
    );
}
