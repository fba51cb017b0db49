//! The real `gateway` binary: start-up with bad settings, `render-apim-policy`, and serving.
#![allow(clippy::unwrap_used)]

mod common;

use common::spawn_logged;
use std::process::Stdio;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gateway");
const KEY: &str = "cli-test-key-never-printed";

fn dev_env() -> Vec<(&'static str, String)> {
    vec![
        ("GATEWAY_BACKEND_URL", "http://127.0.0.1:7071".into()),
        ("GATEWAY_BACKEND_FUNCTION_KEY", KEY.into()),
        (
            "GATEWAY_ALLOWED_ORIGINS",
            "http://127.0.0.1:8080,http://localhost:8080".into(),
        ),
        (
            "GATEWAY_OPENID_CONFIG_URLS",
            "http://127.0.0.1:7010/devtenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration".into(),
        ),
        ("GATEWAY_AUDIENCES", "9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e".into()),
    ]
}

/// [`dev_env`] serving on `port`, trusting `issuer`.
fn serving_env(issuer: &testkit::TestIssuer, port: u16) -> Vec<(&'static str, String)> {
    let mut env = dev_env();
    env.push(("GATEWAY_OPENID_CONFIG_URLS", issuer.openid_config_url()));
    env.push(("GATEWAY_PORT", port.to_string()));
    env.push(("GATEWAY_AUDIENCES", testkit::API_CLIENT_ID.into()));
    env
}

/// Runs the binary with exactly `env` (nothing inherited) and returns (exit code, stdout, stderr).
async fn run(args: &[&str], env: &[(&'static str, String)]) -> (Option<i32>, String, String) {
    let child = tokio::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("gateway did not exit")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn a_bad_setting_stops_it_with_one_line_naming_the_setting() {
    let cases: Vec<(&'static str, Option<&str>)> = vec![
        ("GATEWAY_PORT", Some("seventy")),
        ("GATEWAY_PORT", Some("70000")),
        ("GATEWAY_RATE_LIMIT_PER_SUBJECT", Some("15 per minute")),
        ("GATEWAY_RATE_LIMIT_PER_IP", Some("300/900")),
        ("GATEWAY_CLOCK_SKEW_SECONDS", Some("five")),
        ("GATEWAY_WORKER_THREADS", Some("many")),
        ("GATEWAY_BACKEND_URL", Some("127.0.0.1:7071")),
        ("GATEWAY_ALLOWED_ORIGINS", Some("*")),
        ("GATEWAY_OPENID_CONFIG_URLS", Some("file:///etc/passwd")),
        ("GATEWAY_REDIS_URL", Some("http://127.0.0.1:6379")),
        ("GATEWAY_REQUIRED_CLAIMS", Some("scp=accessapp,roles=a||b")),
        ("GATEWAY_IP_FILTER", Some("10.0.0.0/8")),
        ("GATEWAY_IP_FILTER", Some("allow:10.0.0.0/99")),
        ("GATEWAY_MAX_CONCURRENCY", Some("lots")),
        ("GATEWAY_TRUSTED_PROXIES", Some("frontdoor.example")),
        ("GATEWAY_FRONT_DOOR_ID", Some("two words")),
        ("GATEWAY_TLS_CERT", Some("/nonexistent/gateway-cert.pem")),
        ("GATEWAY_TLS_KEY", Some("/nonexistent/gateway-key.pem")),
        ("GATEWAY_CLIENT_CA", Some("/nonexistent/ca.pem")),
        ("GATEWAY_CLIENT_CERT_THUMBPRINTS", Some("not-a-sha1")),
        ("GATEWAY_CLIENT_CERT_SUBJECTS", Some("CN=needs-a-ca")),
        ("GATEWAY_BACKEND_FUNCTION_KEY", None),
        ("GATEWAY_AUDIENCES", None),
        ("GATEWAY_OPENID_CONFIG_URLS", None),
        ("GATEWAY_ALLOWED_ORIGINS", None),
    ];
    for (var, value) in cases {
        let mut env = dev_env();
        env.retain(|(k, _)| *k != var);
        if let Some(value) = value {
            env.push((var, value.to_owned()));
        }
        let (code, stdout, stderr) = run(&[], &env).await;
        assert_eq!(code, Some(2), "{var}={value:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(!stderr.contains(KEY));
        assert!(stdout.is_empty());
    }
    let (code, _, stderr) = run(&["no-such-command"], &dev_env()).await;
    assert_eq!(code, Some(2), "{stderr}");
}

/// The seed's `<inbound>` (000), with the counter-key quoted so it is well-formed XML.
const SEED_INBOUND: &str = r#"<inbound>
      <cors allow-credentials="true">
            <allowed-origins>
                <origin>{StorageAccountRootURL}</origin>
            </allowed-origins>
            <allowed-methods preflight-result-max-age="120">
                <method>GET</method>
            </allowed-methods>
            <allowed-headers>
                <header>*</header>
            </allowed-headers>
            <expose-headers>
                <header>*</header>
            </expose-headers>
        </cors>
      <validate-jwt header-name="Authorization" failed-validation-httpcode="401" failed-validation-error-message="Unauthorized. Access token is missing or invalid." require-expiration-time="true" require-signed-tokens="true" clock-skew="300">
         <openid-config url="{b2cpolicy-well-known-openid}" />
         <required-claims>
            <claim name="aud">
               <value>{backend-api-application-client-id}</value>
            </claim>
         </required-claims>
      </validate-jwt>
      <rate-limit-by-key calls="300" renewal-period="120" counter-key="@(context.Request.IpAddress)" />
      <rate-limit-by-key calls="15" renewal-period="60" counter-key='@(context.Request.Headers.GetValueOrDefault("Authorization","").AsJwt()?.Subject)' />
      <base />
   </inbound>"#;

fn elements<'a>(node: roxmltree::Node<'a, 'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    node.children().filter(|n| n.is_element()).collect()
}

fn texts(node: roxmltree::Node, tag: &str) -> Vec<String> {
    node.descendants()
        .filter(|n| n.has_tag_name(tag))
        .map(|n| n.text().unwrap_or_default().trim().to_owned())
        .collect()
}

#[tokio::test]
async fn render_apim_policy_prints_the_seeds_policy_for_the_current_settings() {
    let mut env = dev_env();
    env.push((
        "GATEWAY_OPENID_CONFIG_URLS",
        "https://t.b2clogin.com/t.onmicrosoft.com/B2C_1_a/v2.0/.well-known/openid-configuration,https://login.microsoftonline.com/t.onmicrosoft.com/B2C_1_a/v2.0/.well-known/openid-configuration?p=x&y=z".into(),
    ));
    env.push((
        "GATEWAY_ISSUERS",
        "https://t.b2clogin.com/aaaabbbb/v2.0/,https://login.microsoftonline.com/aaaabbbb/v2.0/"
            .into(),
    ));
    env.push(("GATEWAY_AUDIENCES", "aud-1,aud-2".into()));
    env.push(("GATEWAY_RATE_LIMIT_PER_SUBJECT", "20/90".into()));
    env.push(("GATEWAY_CLOCK_SKEW_SECONDS", "120".into()));
    // Later duplicates win, as in a shell environment.
    let (code, xml, stderr) = run(&["render-apim-policy"], &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!xml.contains(KEY), "the function key was printed");

    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let policies = doc.root_element();
    assert_eq!(policies.tag_name().name(), "policies");
    let sections: Vec<&str> = elements(policies)
        .iter()
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(sections, ["inbound", "backend", "outbound", "on-error"]);
    let inbound = elements(policies)[0];
    let steps: Vec<&str> = elements(inbound)
        .iter()
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(
        steps,
        [
            "cors",
            "validate-jwt",
            "rate-limit-by-key",
            "rate-limit-by-key",
            "set-backend-service",
            "set-header",
            "set-query-parameter",
            "base"
        ]
    );
    let step = |i: usize| elements(inbound)[i];

    // Every attribute the seed sets is there with the seed's value, unless a setting changed it.
    let seed = roxmltree::Document::parse(SEED_INBOUND).unwrap();
    let seed_steps = elements(seed.root_element());
    for (ours, theirs) in [
        (step(0), seed_steps[0]),
        (step(1), seed_steps[1]),
        (step(2), seed_steps[2]),
    ] {
        for attribute in theirs.attributes() {
            let expected = match (theirs.tag_name().name(), attribute.name()) {
                ("validate-jwt", "clock-skew") => "120",
                _ => attribute.value(),
            };
            assert_eq!(
                ours.attribute(attribute.name()),
                Some(expected),
                "{}@{}",
                theirs.tag_name().name(),
                attribute.name()
            );
        }
    }
    let seed_cors = seed_steps[0];
    for tag in ["method", "header"] {
        assert_eq!(texts(step(0), tag), texts(seed_cors, tag), "{tag}");
    }
    assert_eq!(
        texts(step(0), "origin"),
        ["http://127.0.0.1:8080", "http://localhost:8080"]
    );
    let methods = step(0)
        .descendants()
        .find(|n| n.has_tag_name("allowed-methods"))
        .unwrap();
    assert_eq!(methods.attribute("preflight-result-max-age"), Some("120"));

    let jwt = step(1);
    let urls: Vec<&str> = jwt
        .children()
        .filter(|n| n.has_tag_name("openid-config"))
        .map(|n| n.attribute("url").unwrap())
        .collect();
    assert_eq!(urls.len(), 2);
    assert!(
        urls[1].ends_with("?p=x&y=z"),
        "escaped and unescaped: {}",
        urls[1]
    );
    assert_eq!(texts(jwt, "audience"), ["aud-1", "aud-2"]);
    assert_eq!(
        texts(jwt, "issuer"),
        [
            "https://t.b2clogin.com/aaaabbbb/v2.0/",
            "https://login.microsoftonline.com/aaaabbbb/v2.0/"
        ]
    );

    let subject_limit = step(3);
    assert_eq!(subject_limit.attribute("calls"), Some("20"));
    assert_eq!(subject_limit.attribute("renewal-period"), Some("90"));
    assert_eq!(
        subject_limit.attribute("counter-key"),
        seed_steps[3].attribute("counter-key")
    );
    assert_eq!(
        subject_limit.attribute("remaining-calls-header-name"),
        Some("x-ratelimit-remaining-subject")
    );
    assert_eq!(step(2).attribute("calls"), Some("300"));
    assert_eq!(step(2).attribute("renewal-period"), Some("120"));

    assert_eq!(
        step(4).attribute("base-url"),
        Some("http://127.0.0.1:7071/api")
    );
    let set_header = step(5);
    assert_eq!(set_header.attribute("name"), Some("x-functions-key"));
    assert_eq!(set_header.attribute("exists-action"), Some("override"));
    assert_eq!(texts(set_header, "value"), ["{{function-key}}"]);
    assert_eq!(step(6).attribute("name"), Some("code"));
    assert_eq!(step(6).attribute("exists-action"), Some("delete"));

    // Rendering needs no function key (it is never part of the policy).
    let mut keyless = dev_env();
    keyless.retain(|(k, _)| *k != "GATEWAY_BACKEND_FUNCTION_KEY");
    let (code, without_key, _) = run(&["render-apim-policy"], &keyless).await;
    assert_eq!(code, Some(0));
    assert!(without_key.contains("{{function-key}}"));
    // ...but a bad policy setting stops it like the server.
    let mut broken = dev_env();
    broken.push(("GATEWAY_RATE_LIMIT_PER_IP", "many".into()));
    let (code, _, stderr) = run(&["render-apim-policy"], &broken).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("GATEWAY_RATE_LIMIT_PER_IP"));
}

#[tokio::test]
async fn render_apim_policy_covers_claims_ip_filter_front_door_certificates_and_concurrency() {
    let mut env = dev_env();
    env.push((
        "GATEWAY_REQUIRED_CLAIMS",
        "scp=accessapp,roles=access:test-api|admin,tid".into(),
    ));
    env.push((
        "GATEWAY_IP_FILTER",
        "allow:10.0.0.0/8, 192.0.2.7, 2001:db8::/126".into(),
    ));
    env.push(("GATEWAY_MAX_CONCURRENCY", "25".into()));
    env.push((
        "GATEWAY_FRONT_DOOR_ID",
        "7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b".into(),
    ));
    // Rendering reads no certificate file: APIM holds the CA itself.
    env.push(("GATEWAY_CLIENT_CA", "/nonexistent/ca.pem".into()));
    env.push((
        "GATEWAY_CLIENT_CERT_THUMBPRINTS",
        "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678".into(),
    ));
    env.push((
        "GATEWAY_CLIENT_CERT_SUBJECTS",
        "CN=daemon, O=Contoso; CN=other".into(),
    ));
    // Not a policy of its own in APIM: it changes nothing in the document.
    env.push(("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8".into()));
    let (code, xml, stderr) = run(&["render-apim-policy"], &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let sections = elements(doc.root_element());
    let inbound = sections[0];
    let steps: Vec<&str> = elements(inbound)
        .iter()
        .map(|n| n.tag_name().name())
        .collect();
    // APIM's order: cors, then the caller checks, then validate-jwt.
    assert_eq!(
        steps[..6],
        [
            "cors",
            "check-header",
            "ip-filter",
            "validate-client-certificate",
            "validate-jwt",
            "rate-limit-by-key"
        ]
    );
    let step = |i: usize| elements(inbound)[i];

    let check = step(1);
    for (name, value) in [
        ("name", "X-Azure-FDID"),
        ("failed-check-httpcode", "403"),
        ("failed-check-error-message", "Forbidden"),
        ("ignore-case", "false"),
    ] {
        assert_eq!(check.attribute(name), Some(value), "check-header@{name}");
    }
    assert_eq!(
        texts(check, "value"),
        ["7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b"]
    );

    let filter = step(2);
    assert_eq!(filter.attribute("action"), Some("allow"));
    assert_eq!(texts(filter, "address"), ["192.0.2.7"]);
    let ranges: Vec<(&str, &str)> = elements(filter)
        .iter()
        .filter(|n| n.has_tag_name("address-range"))
        .map(|n| (n.attribute("from").unwrap(), n.attribute("to").unwrap()))
        .collect();
    assert_eq!(
        ranges,
        [
            ("10.0.0.0", "10.255.255.255"),
            ("2001:db8::", "2001:db8::3")
        ]
    );

    let certificate = step(3);
    for (name, value) in [
        ("validate-revocation", "false"),
        ("validate-trust", "true"),
        ("validate-not-before", "true"),
        ("validate-not-after", "true"),
        ("ignore-error", "false"),
    ] {
        assert_eq!(certificate.attribute(name), Some(value), "{name}");
    }
    let identities: Vec<(Option<&str>, Option<&str>)> = certificate
        .descendants()
        .filter(|n| n.has_tag_name("identity"))
        .map(|n| (n.attribute("thumbprint"), n.attribute("subject")))
        .collect();
    assert_eq!(
        identities,
        [
            (Some("A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"), None),
            (None, Some("CN=daemon, O=Contoso")),
            (None, Some("CN=other")),
        ]
    );

    let claims: Vec<roxmltree::Node> = step(4)
        .descendants()
        .filter(|n| n.has_tag_name("required-claims"))
        .flat_map(elements)
        .collect();
    let described: Vec<(&str, &str, Option<&str>, Vec<String>)> = claims
        .iter()
        .map(|c| {
            (
                c.attribute("name").unwrap(),
                c.attribute("match").unwrap(),
                c.attribute("separator"),
                texts(*c, "value"),
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            ("scp", "all", Some(" "), vec!["accessapp".to_owned()]),
            (
                "roles",
                "any",
                None,
                vec!["access:test-api".to_owned(), "admin".to_owned()]
            ),
            ("tid", "all", None, vec![]),
        ]
    );

    let backend = sections[1];
    let limit = elements(backend)[0];
    assert_eq!(limit.tag_name().name(), "limit-concurrency");
    assert_eq!(limit.attribute("max-count"), Some("25"));
    assert!(limit.attribute("key").is_some_and(|k| !k.is_empty()));
    assert_eq!(
        elements(limit)
            .iter()
            .map(|n| n.tag_name().name())
            .collect::<Vec<_>>(),
        ["forward-request"]
    );

    // None of them without their settings: the seed's document is unchanged.
    let (_, plain, _) = run(&["render-apim-policy"], &dev_env()).await;
    for tag in [
        "check-header",
        "ip-filter",
        "required-claims",
        "limit-concurrency",
    ] {
        assert!(!plain.contains(tag), "{tag} rendered without its setting");
    }
}

#[tokio::test]
async fn the_binary_serves_on_its_configured_port() {
    let issuer = testkit::TestIssuer::start().await;
    let port = testkit::free_port();
    let mut env = serving_env(&issuer, port);
    let dead_backend = format!("http://127.0.0.1:{}", testkit::free_port());
    env.push(("GATEWAY_BACKEND_URL", dead_backend));
    let base = format!("http://127.0.0.1:{port}");
    let server = testkit::ChildServer::start(
        BIN,
        env,
        &format!("{base}/healthz"),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .get(format!("{base}/api/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let token =
        issuer.mint(&issuer.user_claims("bin-user", testkit::API_CLIENT_ID, &[testkit::API_SCOPE]));
    // Valid token, but nothing listens on the backend: 502 from the real binary.
    let response = client
        .get(format!("{base}/api/hello"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    server.stop().await;
}

/// [`serving_env`] with the access log on and a backend that is not there (every call a 502).
fn logging_env(issuer: &testkit::TestIssuer, port: u16) -> Vec<(&'static str, String)> {
    let mut env = serving_env(issuer, port);
    env.push((
        "GATEWAY_BACKEND_URL",
        format!("http://127.0.0.1:{}", testkit::free_port()),
    ));
    env.push(("RUST_LOG", "info".into()));
    env
}

/// The log is batched (http_serve::logging), not held back: a call's line is in the file while
/// the gateway keeps running, once it has nothing else to do.
#[tokio::test]
async fn a_calls_access_line_is_written_while_the_gateway_runs() {
    let issuer = testkit::TestIssuer::start().await;
    let port = testkit::free_port();
    let env = logging_env(&issuer, port);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.log");
    let mut command = tokio::process::Command::new(BIN);
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child =
        testkit::ChildServer::spawn(command, "gateway", testkit::ChildOutput::Log(path.clone()));
    let base = format!("http://127.0.0.1:{port}");
    child
        .wait_ready(&format!("{base}/healthz"), Duration::from_secs(20))
        .await;
    let response = reqwest::Client::new()
        .get(format!("{base}/api/hello"))
        .header("x-request-id", "written-while-running")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        if log
            .lines()
            .any(|l| l.contains("gateway::access") && l.contains("written-while-running"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access line after 5 s while running:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.assert_running();
    child.stop().await;
}

#[tokio::test]
async fn the_access_log_names_each_call_but_never_the_token_or_key() {
    let issuer = testkit::TestIssuer::start().await;
    let port = testkit::free_port();
    let mut env = logging_env(&issuer, port);
    env.push(("GATEWAY_TRUSTED_PROXIES", "127.0.0.1".into()));
    let mut child = spawn_logged(BIN, &env);
    let base = format!("http://127.0.0.1:{port}");
    child
        .wait_ready(&format!("{base}/healthz"), Duration::from_secs(20))
        .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = issuer.mint(&issuer.user_claims(
        "log-subject-42",
        testkit::API_CLIENT_ID,
        &[testkit::API_SCOPE],
    ));
    let response = client
        .get(format!("{base}/api/hello?code=query-secret-code"))
        .bearer_auth(&token)
        .header("x-functions-key", "header-secret-key")
        .header("x-request-id", "log-req-1")
        .header("x-forwarded-for", "198.51.100.23")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let response = client
        .get(format!("{base}/api/hello"))
        .bearer_auth(format!("{token}x"))
        .header("x-request-id", "log-req-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // SIGTERM: the last batched lines are written out as the gateway stops.
    let log = child.stop_and_read().await;
    let line = |id: &str| {
        log.lines()
            .find(|l| l.contains("gateway::access") && l.contains(id))
            .unwrap_or_else(|| panic!("no access line for {id} in:\n{log}"))
            .to_owned()
    };
    let first = line("log-req-1");
    for part in [
        "GET",
        "path=\"/api/hello\"",
        "status=502",
        "latency_ms=",
        "subject=\"log-subject-42\"",
        // Behind the trusted proxy (this test), the client it names.
        "client=\"198.51.100.23\"",
    ] {
        assert!(first.contains(part), "{part} missing: {first}");
    }
    let second = line("log-req-2");
    assert!(second.contains("status=401"), "{second}");
    assert!(second.contains("subject=\"-\""), "{second}");
    assert!(second.contains("client=\"127.0.0.1\""), "{second}");
    for secret in [
        token.as_str(),
        KEY,
        "query-secret-code",
        "header-secret-key",
    ] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
    // A token's signature alone is secret enough: no fragment of it either.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(&signature[..20]));
}
