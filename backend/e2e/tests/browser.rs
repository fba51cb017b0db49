//! The seed's scenario in a real headless Chromium, against the whole stack started here on free
//! loopback ports: the release `dist/` served as the static site (with a `config.json` pointing at
//! this run's ports), the dev identity provider, the hello function and the gateway.
//!
//! Needs `dist/` (`trunk build --release`; scripts/test builds it first), `/usr/bin/chromium` and
//! `/usr/bin/chromedriver`. A missing one fails the test with a message saying so.
//! On failure each test leaves `test-output/browser-<test>.png` (screenshot), `.console.log` (the
//! browser console), `.html` (the page) and the child processes' logs beside them.
//!
//! Each test has its own stack and browser (fresh users, sessions and rate-limit counters), and
//! the tests take turns: two Chromiums at once on a 2-core machine only make both slower.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};
use support::browser::{Browser, STEP, Step, err};
use support::{
    ALICE, ALICE_NAME, ALICE_PASSWORD, API_CLIENT_ID, API_SCOPE, CONSOLE_CLIENT_ID, IDP_HOST,
    POLICY, SPA_CLIENT_ID, TENANT_ID, TempDir, browser_stack, dev_idp_toml, workspace_root,
};
use testkit::Trust;

const FUNCTION_KEY: &str = "e2e-browser-function-key-0123456789abcdef";
const SIGNED_OUT: &str = "Please sign in to continue";
const HELLO: &str = "Hello World, time and date are ";
/// The seed's per-subject limit (15 calls / 60 s) is the gateway's default.
const PER_SUBJECT_LIMIT: usize = 15;

/// One step's patience; the whole test is bounded by `TEST_TIMEOUT`.
const TEST_TIMEOUT: Duration = Duration::from_secs(150);

/// The tests take turns (see the crate doc).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// The stack

struct Options {
    access_token_seconds: u64,
    gateway_clock_skew_seconds: u64,
    /// How late the site answers `config.json`: holds the app in its loading phase.
    config_delay: Duration,
    /// config.json names an authority on a port nothing listens on: discovery fails.
    idp_unreachable: bool,
    /// config.json's `apiUrl` is a port nothing listens on: every call is a network failure.
    api_unreachable: bool,
    /// The whole stack in Entra External ID's shape: the tenant-level authority and metadata,
    /// `api://` scopes, the gateway and the function trusting the tenant issuer.
    external_id: bool,
    /// The function's `MICROSOFT_PROVIDER_AUTHENTICATION_SECRET`, registered as the API web
    /// app's secret at the IdP: EasyAuth's confidential sign-in (`code id_token`).
    easyauth_secret: Option<&'static str>,
    /// config.json has a `console` section (the developer console's app registration).
    console: bool,
    /// An OpenAPI document the site itself serves at `/e2e-openapi.json`, which the console then
    /// reads instead of the gateway's (`console.openapiUrl`).
    site_openapi: Option<Value>,
    /// The gateway validates requests against its document (`GATEWAY_VALIDATION=prevent`).
    validation: bool,
}

impl Options {
    /// config.json 1.5 s late: long enough to act on the page before the app is ready.
    fn slow_config() -> Self {
        Self {
            config_delay: Duration::from_millis(1500),
            ..Self::default()
        }
    }
}

impl Options {
    /// Access tokens that live 10 s, and a gateway without clock skew: renewal within the test.
    fn short_tokens() -> Self {
        Self {
            access_token_seconds: 10,
            gateway_clock_skew_seconds: 0,
            ..Self::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            access_token_seconds: 3600,
            gateway_clock_skew_seconds: 300,
            config_delay: Duration::ZERO,
            idp_unreachable: false,
            api_unreachable: false,
            external_id: false,
            easyauth_secret: None,
            console: true,
            site_openapi: None,
            validation: false,
        }
    }
}

struct Stack {
    spa_url: String,
    /// The gateway's origin (where it serves `/openapi.json`).
    gateway_url: String,
    idp_origin: String,
    /// The dev IdP's data folder (its verification mails are in `mail/`).
    idp_data: PathBuf,
    /// The function itself, as a browser would open it beside the gateway.
    hello_url: String,
    /// Whether the function signs browsers in as a confidential client ([`Options`]).
    easyauth_secret: bool,
    servers: testkit::Stack,
    _site: tokio::task::JoinHandle<()>,
    _data: TempDir,
}

fn dist_dir() -> PathBuf {
    let dist = workspace_root().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "{} has no index.html: build the SPA first with `trunk build --release` in {} \
         (scripts/test does this before the tests)",
        dist.display(),
        workspace_root().display()
    );
    dist
}

impl Stack {
    async fn start(name: &str, options: &Options) -> Stack {
        let dist = dist_dir();
        let data = TempDir::new(&format!("browser-{name}"));

        // The static site: dist/ as built, plus this run's config.json.
        let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let spa_port = site.local_addr().unwrap().port();
        let spa_origin = format!("http://127.0.0.1:{spa_port}");
        let spa_url = format!("{spa_origin}/");

        let mut stack = browser_stack(&format!("browser-{name}"), FUNCTION_KEY, &spa_origin, &data);
        let skew = options.gateway_clock_skew_seconds.to_string();
        stack.gateway_env.push(("GATEWAY_CLOCK_SKEW_SECONDS", skew));
        let wiring = &mut stack.wiring;
        // deploy/README.md's two configurations: B2C's user flow, or External ID's tenant.
        if options.external_id {
            wiring.trust = Trust::Tenant;
        }
        wiring.easyauth_secret = options.easyauth_secret.map(str::to_owned);
        let idp_config = wiring.idp_config.clone().unwrap();
        let (idp_port, hello_port, gateway_port) =
            (wiring.idp_port, wiring.hello_port, wiring.gateway_port);
        let idp_origin = wiring.idp_url();
        std::fs::write(
            &idp_config,
            // The API app is also EasyAuth's web client, at this run's function.
            dev_idp_toml(&spa_url, options.access_token_seconds).replace(
                "app_roles = [\"access:test-api\"]\n",
                &format!(
                    "app_roles = [\"access:test-api\"]\nweb_redirect_uris = \
                     [\"http://127.0.0.1:{hello_port}/.auth/login/aad/callback\"]\n{}",
                    options
                        .easyauth_secret
                        .map(|s| format!("web_client_secret = \"{s}\"\n"))
                        .unwrap_or_default()
                ),
            ),
        )
        .unwrap();

        let authority_port = if options.idp_unreachable {
            testkit::free_port()
        } else {
            idp_port
        };
        let api_port = if options.api_unreachable {
            testkit::free_port()
        } else {
            gateway_port
        };
        let authority_origin = format!("http://{IDP_HOST}:{authority_port}");
        let (authority, scope) = if options.external_id {
            (
                format!("{authority_origin}/{TENANT_ID}/v2.0"),
                format!("api://{API_CLIENT_ID}/accessapp"),
            )
        } else {
            (
                format!("{authority_origin}/tfp/devtenant.onmicrosoft.com/{POLICY}"),
                API_SCOPE.to_owned(),
            )
        };
        let mut config = json!({
            "clientId": SPA_CLIENT_ID,
            "authority": authority,
            "knownAuthorities": [format!("{IDP_HOST}:{authority_port}")],
            "redirectUri": spa_url,
            "postLogoutRedirectUri": spa_url,
            "scopes": [scope],
            "apiUrl": format!("http://127.0.0.1:{api_port}/api/hello"),
        });
        // B2C's other user flows (the dev IdP's tenant has them); External ID has none.
        if !options.external_id {
            config["policies"] = json!({
                "signUpSignIn": POLICY,
                "forgotPassword": "B2C_1_passwordreset",
                "editProfile": "B2C_1_profileedit",
            });
        }
        if options.console {
            config["console"] = json!({"clientId": CONSOLE_CLIENT_ID});
            if options.site_openapi.is_some() {
                config["console"]["openapiUrl"] = json!(format!("{spa_origin}/e2e-openapi.json"));
            }
        }
        shared::SpaConfig::from_json(&config.to_string()).expect("the test's config.json is valid");
        let site_task = tokio::spawn(serve_site(
            site,
            dist,
            config,
            options.config_delay,
            options.site_openapi.clone(),
        ));

        // The console's authorization server names the API's scope (the OpenAPI document's).
        stack.wiring.api_scopes = Some(scope.clone());
        stack.wiring.validation = options.validation.then(|| "prevent".to_owned());
        let servers = testkit::Stack::spawn(stack).await;
        Stack {
            spa_url,
            gateway_url: format!("http://127.0.0.1:{gateway_port}"),
            idp_origin,
            idp_data: servers.idp_data_dir.clone(),
            hello_url: servers.hello_url(),
            easyauth_secret: options.easyauth_secret.is_some(),
            servers,
            _site: site_task,
            _data: data,
        }
    }

    fn log_paths(&self) -> Vec<&Path> {
        self.servers.log_paths()
    }
}

/// dist/ as a static website would serve it, with `config.json` answered from memory.
async fn serve_site(
    listener: tokio::net::TcpListener,
    dist: PathBuf,
    config: Value,
    config_delay: Duration,
    openapi: Option<Value>,
) {
    use axum::routing::get;
    use tower_http::services::{ServeDir, ServeFile};
    let config = Arc::new(config);
    let openapi = Arc::new(openapi.unwrap_or(Value::Null));
    let app = axum::Router::new()
        .route(
            "/e2e-openapi.json",
            get(move || async move { axum::Json((*openapi).clone()) }),
        )
        .route(
            "/config.json",
            get(move || {
                let config = config.clone();
                async move {
                    tokio::time::sleep(config_delay).await;
                    (
                        [(axum::http::header::CACHE_CONTROL, "no-cache")],
                        axum::Json((*config).clone()),
                    )
                }
            }),
        )
        .fallback_service(
            ServeDir::new(&dist).not_found_service(ServeFile::new(dist.join("index.html"))),
        );
    let _ = axum::serve(listener, app).await;
}

// ---------------------------------------------------------------------------------------------
// The browser

impl Browser {
    /// The page's `#message` text, `#cardheader` class and `#app[data-phase]`.
    async fn card(&self) -> Step<Card> {
        let value = self
            .js(
                "const m = document.getElementById('message'), h = document.getElementById('cardheader'),
                       a = document.getElementById('app');
                 return [m ? m.textContent.trim() : null, h ? h.className : '', a ? a.dataset.phase : null,
                         location.origin];",
            )
            .await?;
        let text = |i: usize| value[i].as_str().unwrap_or_default().to_owned();
        Ok(Card {
            message: text(0),
            class: text(1),
            phase: text(2),
            origin: text(3),
        })
    }

    /// Polls the card until `done` holds; fails with what it last saw.
    async fn wait_card(&self, what: &str, done: impl Fn(&Card) -> bool) -> Step<Card> {
        let deadline = Instant::now() + STEP;
        let mut last = None;
        loop {
            if let Ok(card) = self.card().await {
                if done(&card) {
                    return Ok(card);
                }
                last = Some(card);
            }
            ensure!(
                Instant::now() < deadline,
                "waited {STEP:?} for {what}; last seen: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks Call API and waits for that call's outcome (seen through a MutationObserver, so a
    /// result equal to the previous one is not mistaken for this call's).
    async fn call_api(&self) -> Step<Card> {
        self.js("window.__e2eSeen = [];
             if (window.__e2eObserver) window.__e2eObserver.disconnect();
             window.__e2eObserver = new MutationObserver(() => {
                 const m = document.getElementById('message');
                 window.__e2eSeen.push(m ? m.textContent.trim() : '');
             });
             window.__e2eObserver.observe(document.body,
                 {subtree: true, childList: true, characterData: true, attributes: true});
             return null;")
            .await?;
        self.click("#callapi").await?;
        let deadline = Instant::now() + STEP;
        loop {
            let state = self
                .js(
                    "const seen = window.__e2eSeen || [], i = seen.indexOf('Calling backend ...');
                     const b = document.getElementById('callapi');
                     return i >= 0 && seen.slice(i + 1).some(t => t !== 'Calling backend ...')
                         && !document.getElementById('progress') && !!b && !b.disabled;",
                )
                .await?;
            if state == Value::Bool(true) {
                return self.card().await;
            }
            ensure!(
                Instant::now() < deadline,
                "Call API did not finish within {STEP:?}; card: {:?}",
                self.card().await.ok()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The SPA's sessionStorage and localStorage and the URL, as the page sees them.
    async fn storage(&self) -> Step<Value> {
        self.js(
            "const dump = s => Object.fromEntries(Array.from({length: s.length}, (_, i) => s.key(i))
                                                   .map(k => [k, s.getItem(k)]));
             return {session: dump(sessionStorage), local: dump(localStorage),
                     cookie: document.cookie, url: location.href};",
        )
        .await
    }

    /// Every string stored under a key ending in `token` in the SPA's sessionStorage.
    async fn stored_tokens(&self) -> Step<Vec<String>> {
        fn collect(value: &Value, key: &str, out: &mut Vec<String>) {
            match value {
                Value::String(s)
                    if key.to_ascii_lowercase().ends_with("token") && !s.is_empty() =>
                {
                    out.push(s.clone())
                }
                Value::String(s) => {
                    if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                        serde_json::from_str(s)
                    {
                        collect(&inner, key, out);
                    }
                }
                Value::Object(map) => map.iter().for_each(|(k, v)| collect(v, k, out)),
                Value::Array(items) => items.iter().for_each(|v| collect(v, key, out)),
                _ => {}
            }
        }
        let mut tokens = Vec::new();
        collect(&self.storage().await?["session"], "", &mut tokens);
        Ok(tokens)
    }
}

#[derive(Debug, Clone)]
struct Card {
    message: String,
    class: String,
    phase: String,
    origin: String,
}

/// Runs one scenario with its own stack and browser; on failure saves the evidence and fails.
async fn run<F>(name: &str, options: Options, scenario: F)
where
    F: AsyncFnOnce(&Browser, &Stack) -> Step,
{
    let _turn = TURN.lock().await;
    let started = Instant::now();
    let stack = Stack::start(name, &options).await;
    let browser = Browser::start(&format!("browser-{name}")).await;
    let outcome = match tokio::time::timeout(TEST_TIMEOUT, scenario(&browser, &stack)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("the scenario took over {TEST_TIMEOUT:?}")),
    };
    let console = browser.console_log().await;
    if let Err(why) = outcome {
        let saved = browser
            .save_evidence(&format!("browser-{name}"), &console)
            .await;
        let _ = browser.client.clone().close().await;
        panic!(
            "{name}: {why}\nevidence: {saved:?}\nchild logs: {:?}\nbrowser console:\n{console}",
            stack.log_paths()
        );
    }
    let _ = browser.client.clone().close().await;
    eprintln!("{name}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// Steps the scenarios share

/// Opens the SPA signed out, clicks Sign In, and returns once the IdP's sign-in form is shown.
async fn open_sign_in_form(b: &Browser, s: &Stack) -> Step {
    b.goto(&s.spa_url).await?;
    b.wait_card("the signed-out page", |c| {
        c.phase == "signed-out" && c.message == SIGNED_OUT
    })
    .await?;
    b.click("#signin").await?;
    b.wait_for_element("#signInName").await?;
    let url = b.client.current_url().await.map_err(err("url"))?;
    ensure!(
        url.as_str().starts_with(&s.idp_origin),
        "the sign-in form is not the IdP's: {url}"
    );
    Ok(())
}

async fn sign_in(b: &Browser, s: &Stack, email: &str, password: &str, name: &str) -> Step {
    open_sign_in_form(b, s).await?;
    submit_sign_in_form(b, email, password, name).await
}

/// On the IdP's sign-in form: signs in and waits for the SPA's welcome.
async fn submit_sign_in_form(b: &Browser, email: &str, password: &str, name: &str) -> Step {
    fill_sign_in_form(b, email, password).await?;
    let welcome = format!("Welcome, {name}");
    b.wait_card(&format!("\"{welcome}\""), |c| {
        c.message == welcome && c.phase == "signed-in"
    })
    .await?;
    Ok(())
}

/// On the IdP's sign-in form: the credentials, then "Sign in".
async fn fill_sign_in_form(b: &Browser, email: &str, password: &str) -> Step {
    b.type_into("#signInName", email).await?;
    b.type_into("#password", password).await?;
    b.click("#next").await
}

fn is_green(card: &Card) -> bool {
    card.class.split_whitespace().any(|c| c == "status-success")
}

fn is_yellow(card: &Card) -> bool {
    card.class.split_whitespace().any(|c| c == "status-warning")
}

async fn call_api_green(b: &Browser) -> Step<Card> {
    let card = b.call_api().await?;
    ensure!(
        is_green(&card) && card.message.starts_with(HELLO),
        "Call API did not answer green with the hello message: {card:?}"
    );
    Ok(card)
}

fn looks_like_jwt(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .any(|word| word.starts_with("eyJ") && word.split('.').count() == 3)
}

/// No token in localStorage, in the cookies the SPA's origin sees, or in the URL.
async fn assert_tokens_only_in_session_storage(b: &Browser) -> Step {
    let tokens = b.stored_tokens().await?;
    ensure!(
        tokens.iter().any(|t| looks_like_jwt(t)),
        "no access token in sessionStorage to look for (keys ending in 'token'): {:?}",
        b.storage().await?["session"]
            .as_object()
            .map(|m| m.keys().collect::<Vec<_>>())
    );
    let storage = b.storage().await?;
    let local = storage["local"].to_string();
    let url = storage["url"].as_str().unwrap_or_default().to_owned();
    let mut cookies = storage["cookie"].as_str().unwrap_or_default().to_owned();
    for cookie in b.client.get_all_cookies().await.map_err(err("cookies"))? {
        cookies.push_str(&format!(";{}={}", cookie.name(), cookie.value()));
    }
    for token in &tokens {
        ensure!(
            !local.contains(token.as_str()),
            "a token is in localStorage"
        );
        ensure!(
            !cookies.contains(token.as_str()),
            "a token is in a cookie of the SPA's origin"
        );
        ensure!(!url.contains(token.as_str()), "a token is in the URL");
    }
    ensure!(!looks_like_jwt(&local), "a JWT is in localStorage");
    ensure!(
        !looks_like_jwt(&cookies),
        "a JWT is in a cookie of the SPA's origin"
    );
    ensure!(!looks_like_jwt(&url), "a JWT is in the URL");
    for leftover in ["code=", "access_token", "id_token", "state="] {
        ensure!(
            !url.contains(leftover),
            "the URL still carries `{leftover}`: {url}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Seed 000, "Test the client application": sign in, Call API, click until the rate limit, sign out.
/// Also: the token never appears in localStorage, the SPA origin's cookies or the URL.
#[tokio::test]
async fn sign_in_call_api_until_rate_limited_and_sign_out() {
    run("seed-scenario", Options::default(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        assert_tokens_only_in_session_storage(b).await?;

        let card = call_api_green(b).await?;
        ensure!(card.message.len() > HELLO.len(), "no date in {card:?}");
        assert_tokens_only_in_session_storage(b).await?;

        // Already one call; the limit allows PER_SUBJECT_LIMIT per window, then 429.
        for call in 2..=PER_SUBJECT_LIMIT {
            let card = b.call_api().await?;
            ensure!(
                is_green(&card),
                "call {call} of {PER_SUBJECT_LIMIT} was refused: {card:?}"
            );
        }
        let card = b.call_api().await?;
        ensure!(
            is_yellow(&card)
                && card
                    .message
                    .starts_with("Error: 429 Rate limit is exceeded. Try again in ")
                && card.message.ends_with(" seconds."),
            "call {} was not the yellow 429: {card:?}",
            PER_SUBJECT_LIMIT + 1
        );

        b.click("#signout").await?;
        b.wait_card("the signed-out page after sign-out", |c| {
            c.phase == "signed-out" && c.message == SIGNED_OUT && c.origin != s.idp_origin
        })
        .await?;
        ensure!(
            b.stored_tokens().await?.is_empty(),
            "tokens are left in sessionStorage after sign-out"
        );
        // Signed out at the IdP too: Sign In shows the form again instead of single sign-on.
        b.click("#signin").await?;
        b.wait_for_element("#signInName").await?;
        Ok(())
    })
    .await;
}

/// Issue 16: the same SPA, gateway and function against Entra External ID's shape, by
/// configuration only — sign in at the tenant-level authority, Call API, the hello, sign out.
#[tokio::test]
async fn external_id_sign_in_and_call_api() {
    let options = Options {
        external_id: true,
        ..Options::default()
    };
    run("external-id", options, async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        let url = b.client.current_url().await.map_err(err("url"))?;
        ensure!(
            url.as_str()
                .starts_with(&format!("{}/", s.spa_url.trim_end_matches('/'))),
            "not back on the SPA: {url}"
        );
        let claims = jwt_claims(&access_token(b).await?)?;
        let issuer = format!("{}/{TENANT_ID}/v2.0", s.idp_origin);
        ensure!(
            claims["iss"] == issuer.as_str()
                && claims["ver"] == "2.0"
                && claims.get("tfp").is_none(),
            "not External ID's v2 token under {issuer}: {claims}"
        );
        call_api_green(b).await?;
        assert_tokens_only_in_session_storage(b).await?;
        b.click("#signout").await?;
        b.wait_card("the signed-out page after sign-out", |c| {
            c.phase == "signed-out" && c.message == SIGNED_OUT && c.origin != s.idp_origin
        })
        .await?;
        Ok(())
    })
    .await;
}

/// Issue 16: the function's own `RedirectToLoginPage` — a browser opening the function's URL
/// without a token goes to the IdP, signs in, comes back through EasyAuth's `form_post`
/// callback with a session cookie and gets the hello; `/.auth/logout` ends the session. The
/// function has a client secret: `code id_token`, the code redeemed at the token endpoint.
#[tokio::test]
async fn easyauth_login_redirect_signs_a_browser_in() {
    let options = Options {
        easyauth_secret: Some(EASYAUTH_SECRET),
        ..Options::default()
    };
    run("easyauth-login", options, easyauth_sign_in).await;
}

/// The same against External ID's shape (the function trusts only the tenant-level metadata),
/// without a secret: the implicit flow (`id_token`).
#[tokio::test]
async fn easyauth_login_redirect_in_external_id_shape() {
    let options = Options {
        external_id: true,
        ..Options::default()
    };
    run("easyauth-login-external-id", options, easyauth_sign_in).await;
}

const EASYAUTH_SECRET: &str = "browser-test-easyauth-secret";

/// Opens the function's URL, signs in at the IdP, gets the hello through EasyAuth's session,
/// then signs out with `/.auth/logout`.
async fn easyauth_sign_in(b: &Browser, s: &Stack) -> Step {
    let function_url = format!("{}/api/hello?code={FUNCTION_KEY}", s.hello_url);
    b.goto(&function_url).await?;
    b.wait_for_element("#signInName").await?;
    let url = b.client.current_url().await.map_err(err("url"))?;
    ensure!(
        url.as_str().starts_with(&s.idp_origin) && !url.as_str().contains(FUNCTION_KEY),
        "not the IdP's sign-in (or the function key went along): {url}"
    );
    let response_type = match s.easyauth_secret {
        true => "code id_token",
        false => "id_token",
    };
    ensure!(
        url.query_pairs()
            .any(|(k, v)| k == "response_type" && v == response_type),
        "EasyAuth did not ask for {response_type}: {url}"
    );
    b.type_into("#signInName", ALICE).await?;
    b.type_into("#password", ALICE_PASSWORD).await?;
    b.click("#next").await?;
    let deadline = Instant::now() + STEP;
    loop {
        let source = b.client.source().await.map_err(err("page source"))?;
        if source.contains(HELLO) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "no hello within {STEP:?}; at {:?}: {source}",
            b.client.current_url().await.ok()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = b.client.current_url().await.map_err(err("url"))?;
    ensure!(
        url.as_str() == function_url,
        "not back at the function's URL: {url}"
    );
    let session = b
        .client
        .get_named_cookie("AppServiceAuthSession")
        .await
        .map_err(err("the session cookie"))?;
    ensure!(
        session.http_only() == Some(true),
        "the session cookie is readable by scripts"
    );
    ensure!(
        b.js("return document.cookie;").await? == json!(""),
        "a script sees the session cookie"
    );

    b.goto(&format!("{}/.auth/logout", s.hello_url)).await?;
    let cookies = b.client.get_all_cookies().await.map_err(err("cookies"))?;
    ensure!(
        cookies.iter().all(|c| c.name() != "AppServiceAuthSession"),
        "the session cookie outlived /.auth/logout"
    );
    Ok(())
}

/// A new user signs up through the IdP's page and calls the API as that user.
#[tokio::test]
async fn sign_up_a_new_user_and_call_the_api() {
    run("sign-up", Options::default(), async |b, s| {
        open_sign_in_form(b, s).await?;
        b.click("#createAccount").await?;
        let email = format!("bob-{}@example.com", std::process::id());
        b.type_into("#email", &email).await?;
        b.type_into("#displayName", "Bob Builder").await?;
        b.type_into("#newPassword", "Sign-Up-2026!").await?;
        b.type_into("#reenterPassword", "Sign-Up-2026!").await?;
        b.click("#continue").await?;
        b.wait_card("\"Welcome, Bob Builder\"", |c| {
            c.message == "Welcome, Bob Builder" && c.phase == "signed-in"
        })
        .await?;
        call_api_green(b).await?;
        Ok(())
    })
    .await;
}

/// A wrong password: the IdP says so on its page, and the SPA stores no token.
#[tokio::test]
async fn wrong_password_shows_the_idp_error_and_stores_no_token() {
    run("wrong-password", Options::default(), async |b, s| {
        open_sign_in_form(b, s).await?;
        b.type_into("#signInName", ALICE).await?;
        b.type_into("#password", "Not-Her-Password-1").await?;
        b.click("#next").await?;
        let error = b.wait_for_element("#error").await?;
        let text = error.text().await.map_err(err("#error"))?;
        ensure!(
            text == "Invalid username or password.",
            "the IdP's error: {text:?}"
        );
        // The form is shown again, still on the IdP.
        b.wait_for_element("#password").await?;

        b.goto(&s.spa_url).await?;
        b.wait_card("the signed-out page", |c| {
            c.phase == "signed-out" && c.message == SIGNED_OUT
        })
        .await?;
        let storage = b.storage().await?;
        ensure!(
            b.stored_tokens().await?.is_empty(),
            "a token is stored: {storage}"
        );
        ensure!(
            !looks_like_jwt(&storage.to_string()),
            "a JWT is stored: {storage}"
        );
        Ok(())
    })
    .await;
}

/// Issue 15, item 4: a tab opened while another is signed in signs in by itself — no click, no
/// form (the tabs say so over a BroadcastChannel, the IdP's single sign-on does the rest); and
/// signing out in one tab signs the other out within a second.
#[tokio::test]
async fn tabs_share_sign_in_and_sign_out() {
    run("second-tab", Options::default(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        let first = b.client.window().await.map_err(err("window"))?;
        let tab = b.client.new_window(true).await.map_err(err("new tab"))?;
        b.client
            .switch_to_window(tab.handle.clone())
            .await
            .map_err(err("switch tab"))?;
        // sessionStorage is per tab: the new tab has no session of its own, and nobody clicks.
        b.goto(&s.spa_url).await?;
        signs_in_without_the_form(b, "the second tab").await?;
        call_api_green(b).await?;

        b.click("#signout").await?;
        let signed_out = Instant::now();
        b.client
            .switch_to_window(first)
            .await
            .map_err(err("switch back"))?;
        let card = b
            .wait_card("the first tab signed out", |c| c.phase == "signed-out")
            .await?;
        let took = signed_out.elapsed();
        ensure!(
            took < Duration::from_secs(1),
            "the first tab took {took:?} to sign out"
        );
        ensure!(
            card.message == "You signed out in another tab. Please sign in to continue",
            "{card:?}"
        );
        ensure!(
            b.stored_tokens().await?.is_empty(),
            "the first tab kept its tokens after the sign-out elsewhere"
        );
        Ok(())
    })
    .await;
}

/// Waits for the welcome of a tab that signs in by itself: the IdP's single sign-on, never its form.
async fn signs_in_without_the_form(b: &Browser, tab: &str) -> Step {
    let deadline = Instant::now() + STEP;
    loop {
        ensure!(
            b.client.find(Locator::Css("#signInName")).await.is_err(),
            "the IdP showed its sign-in form in {tab} (no single sign-on)"
        );
        let card = b.card().await.ok();
        if card.as_ref().is_some_and(|c| {
            c.message == format!("Welcome, {ALICE_NAME}") && c.phase == "signed-in"
        }) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{tab} did not sign in by itself: {card:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Access tokens that live 10 s, and a gateway without clock skew: after the first token has
/// expired the page is still signed in, holds a different, unexpired token obtained without the
/// form, and Call API succeeds.
#[tokio::test]
async fn an_expired_access_token_is_renewed_silently() {
    run("renewal", Options::short_tokens(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        // Gone if the page navigates (a redirect to the IdP would not be silent).
        b.js("window.__e2eSamePage = true; return null;").await?;
        let first = access_token(b).await?;
        let expires = jwt_exp(&first)?;
        let now = unix_now();
        ensure!(
            expires <= now + 11,
            "the first token lives {} s, not 10",
            expires - now
        );
        // Past its expiry (plus a second for the clocks).
        tokio::time::sleep(Duration::from_secs((expires + 2).saturating_sub(now))).await;

        let card = b.card().await?;
        ensure!(
            card.phase == "signed-in" && card.origin != s.idp_origin,
            "the page left the signed-in state: {card:?}"
        );
        call_api_green(b).await?;
        let second = access_token(b).await?;
        ensure!(second != first, "the access token was not renewed");
        ensure!(
            jwt_exp(&second)? > unix_now(),
            "the renewed token is expired"
        );
        ensure!(
            b.js("return window.__e2eSamePage === true;").await? == Value::Bool(true),
            "the page navigated away to renew (not silent)"
        );
        Ok(())
    })
    .await;
}

/// Issue 20: Sign In works from the first paint, as on the seed's page. config.json answers 1.5 s
/// late, which holds the app in its loading phase; Sign In is clicked the moment it is on the page
/// and the browser still reaches the IdP's sign-in form (the click is kept until the app is ready).
#[tokio::test]
async fn sign_in_clicked_before_the_app_is_ready_reaches_the_idp() {
    run("early-sign-in", Options::slow_config(), async |b, s| {
        let phase = click_sign_in_at_first_sight(b, &s.spa_url).await?;
        ensure!(
            phase == "loading",
            "Sign In was first clickable in phase {phase:?}, not while the app was still loading"
        );
        b.wait_for_element("#signInName").await?;
        let url = b.client.current_url().await.map_err(err("url"))?;
        ensure!(
            url.as_str().starts_with(&s.idp_origin),
            "the sign-in form is not the IdP's: {url}"
        );
        submit_sign_in_form(b, ALICE, ALICE_PASSWORD, ALICE_NAME).await
    })
    .await;
}

/// A discovery that fails still ends in the red error, also when Sign In was clicked before: the
/// kept click is dropped, and the page offers no Sign In that cannot work.
#[tokio::test]
async fn failed_discovery_shows_the_red_error_after_an_early_click() {
    let options = Options {
        idp_unreachable: true,
        ..Options::slow_config()
    };
    run("discovery-fails", options, async |b, s| {
        click_sign_in_at_first_sight(b, &s.spa_url).await?;
        let card = b
            .wait_card("the red error", |c| c.phase == "unconfigured")
            .await?;
        ensure!(
            card.class.split_whitespace().any(|c| c == "status-danger")
                && card
                    .message
                    .starts_with("The identity provider could not be reached"),
            "not the red discovery error: {card:?}"
        );
        ensure!(
            b.client.find(Locator::Css("#signin")).await.is_err(),
            "a Sign In button is offered although discovery failed"
        );
        Ok(())
    })
    .await;
}

/// Issue 20: index.html's shell is the app's signed-out page: when the app takes over, Sign In
/// and the status line stay exactly where they were painted (no layout shift).
#[tokio::test]
async fn the_app_takes_over_from_the_shell_without_moving_anything() {
    run("shell-takeover", Options::slow_config(), async |b, s| {
        const BOXES: &str = "const box = id => { const e = document.getElementById(id);
                                 if (!e) return null; const r = e.getBoundingClientRect();
                                 return [r.x, r.y, r.width, r.height].map(Math.round).join(','); };
                             const a = document.getElementById('app');
                             return [a ? a.dataset.phase : null, box('signin'), box('message'),
                                     box('cardheader')];";
        b.js(&format!("location.href = {}; return null;", json!(s.spa_url)))
            .await?;
        let deadline = Instant::now() + STEP;
        let shell = loop {
            if let Ok(seen) = b.js(BOXES).await
                && seen[0] == "loading"
                && seen[1].is_string()
            {
                break seen;
            }
            ensure!(Instant::now() < deadline, "no shell with Sign In within {STEP:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        b.wait_card("the signed-out page", |c| c.phase == "signed-out")
            .await?;
        let app = b.js(BOXES).await?;
        let boxes = |seen: &Value| seen.as_array().and_then(|all| all.get(1..)).map(<[Value]>::to_vec);
        ensure!(
            boxes(&shell) == boxes(&app),
            "Sign In, message and card header moved when the app took over: shell {shell}, app {app}"
        );
        Ok(())
    })
    .await;
}

/// Navigates without waiting for the load event (WebDriver's `goto` would), clicks `#signin` as
/// soon as it is on the page and enabled, and returns the page's phase just before the click.
async fn click_sign_in_at_first_sight(b: &Browser, url: &str) -> Step<String> {
    b.js(&format!("location.href = {}; return null;", json!(url)))
        .await?;
    let deadline = Instant::now() + STEP;
    loop {
        // Errors while the new document replaces the old one are expected: try again.
        if let Ok(button) = b.client.find(Locator::Css("#signin")).await {
            let phase = b
                .js("const a = document.getElementById('app'), s = document.getElementById('signin');
                     return s && !s.disabled && a ? a.dataset.phase : null;")
                .await;
            if let Ok(Value::String(phase)) = phase {
                button.click().await.map_err(err("click #signin"))?;
                return Ok(phase);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no enabled #signin on {url} within {STEP:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn access_token(b: &Browser) -> Step<String> {
    session_string(b, "access_token").await
}

/// A string field of the session the SPA keeps in sessionStorage.
async fn session_string(b: &Browser, field: &str) -> Step<String> {
    let storage = b.storage().await?;
    let session = storage["session"]
        .as_object()
        .and_then(|m| {
            m.values().find_map(|v| {
                serde_json::from_str::<Value>(v.as_str()?)
                    .ok()
                    .filter(|v| v.get(field).is_some())
            })
        })
        .ok_or_else(|| format!("no session with a {field} in sessionStorage: {storage}"))?;
    session[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{field} is not a string"))
}

fn jwt_claims(token: &str) -> Step<Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1).ok_or("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(err("JWT payload"))?;
    serde_json::from_slice(&bytes).map_err(err("JWT claims"))
}

fn jwt_exp(token: &str) -> Step<u64> {
    jwt_claims(token)?["exp"]
        .as_u64()
        .ok_or_else(|| "no exp".to_owned())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// Issue 15: the routes, B2C's other user flows, and one renewal at a time

const PROFILE_PROMPT: &str = "Please sign in to see your profile";

/// Wraps the page's `fetch`: requests whose URL contains `part` (and whose method is `method`)
/// are counted in `window.__e2eCount` and sent `delay_ms` late. The SPA's HTTP calls go through
/// `window.fetch` (gloo-net), so this is what its network sees.
fn slow_fetch(part: &str, method: &str, delay_ms: u64) -> String {
    format!(
        "window.__e2eCount = 0;
         const real = window.fetch.bind(window), part = {part}, method = {method};
         window.fetch = (input, init) => {{
             const url = typeof input === 'string' ? input : input.url;
             const m = (init && init.method) || (typeof input === 'string' ? 'GET' : input.method);
             if (url.includes(part) && m.toUpperCase() === method) {{
                 window.__e2eCount += 1;
                 return new Promise(r => setTimeout(r, {delay_ms})).then(() => real(input, init));
             }}
             return real(input, init);
         }};
         window.__e2eSamePage = true;
         return null;",
        part = json!(part),
        method = json!(method),
    )
}

impl Browser {
    /// Polls `script` (which returns a boolean) until it returns true.
    async fn wait_true(&self, what: &str, script: &str) -> Step {
        let deadline = Instant::now() + STEP;
        loop {
            if self.js(script).await.ok() == Some(Value::Bool(true)) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "waited {STEP:?} for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn same_page(&self) -> Step<bool> {
        Ok(self.js("return window.__e2eSamePage === true;").await? == Value::Bool(true))
    }

    async fn path(&self) -> Step<String> {
        Ok(self
            .js("return location.pathname;")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The profile page's table: claim name → shown value.
    async fn claims(&self) -> Step<Vec<(String, String)>> {
        let rows = self
            .js(
                "return Array.from(document.querySelectorAll('#claims tbody tr'))
                       .map(r => [r.cells[0].textContent, r.cells[1].textContent]);",
            )
            .await?;
        Ok(rows
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        let cell = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
                        (cell(0), cell(1))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Opens `/profile` signed out, signs in from its prompt, and returns once the browser is back on
/// `/profile`, signed in (the redirect URI is `/`: the page the sign-in started from is restored).
async fn sign_in_on_profile(b: &Browser, s: &Stack) -> Step {
    b.goto(&format!("{}profile", s.spa_url)).await?;
    b.wait_card("the profile's prompt", |c| c.message == PROFILE_PROMPT)
        .await?;
    b.click("#signin").await?;
    b.type_into("#signInName", ALICE).await?;
    b.type_into("#password", ALICE_PASSWORD).await?;
    b.click("#next").await?;
    let heading = format!("Profile of {ALICE_NAME}");
    b.wait_card("the profile after sign-in", |c| {
        c.phase == "signed-in" && c.message == heading
    })
    .await?;
    ensure!(b.path().await? == "/profile", "not back on /profile");
    Ok(())
}

fn claim<'a>(claims: &'a [(String, String)], name: &str) -> Step<&'a str> {
    claims
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("no `{name}` row in the profile table: {claims:?}"))
}

/// Each route by URL: `/` is home, `/profile` signed out is a prompt to sign in, any other path
/// is "Page not found" with a link home that the router follows without reloading the page.
#[tokio::test]
async fn each_route_by_url() {
    run("routes", Options::default(), async |b, s| {
        b.goto(&s.spa_url).await?;
        b.wait_card("home", |c| {
            c.phase == "signed-out" && c.message == SIGNED_OUT
        })
        .await?;
        b.goto(&format!("{}profile", s.spa_url)).await?;
        b.wait_card("the profile's prompt", |c| {
            c.phase == "signed-out" && c.message == PROFILE_PROMPT
        })
        .await?;
        ensure!(
            b.client.find(Locator::Css("#signin")).await.is_ok(),
            "no Sign In on the profile's prompt"
        );
        b.goto(&format!("{}no/such/page", s.spa_url)).await?;
        b.wait_card("not found", |c| c.message == "Page not found")
            .await?;
        b.js("window.__e2eSamePage = true; return null;").await?;
        b.click("#notfound a").await?;
        b.wait_card("home after the link", |c| c.message == SIGNED_OUT)
            .await?;
        ensure!(b.path().await? == "/", "the link did not lead home");
        ensure!(b.same_page().await?, "the link reloaded the page");
        Ok(())
    })
    .await;
}

/// A sign-in started on `/profile` comes back to `/profile` (the redirect URI stays `/`) with the
/// ID token's claims; a deep link to `/profile` keeps the session; moving between the pages
/// never signs in again.
#[tokio::test]
async fn deep_link_to_profile_after_sign_in() {
    run("profile", Options::default(), async |b, s| {
        sign_in_on_profile(b, s).await?;
        let (profile, heading) = (
            format!("{}profile", s.spa_url),
            format!("Profile of {ALICE_NAME}"),
        );
        assert_tokens_only_in_session_storage(b).await?;

        // A deep link: a fresh load of /profile, signed in from this tab's session.
        b.goto(&profile).await?;
        b.wait_card("the profile by deep link", |c| {
            c.phase == "signed-in" && c.message == heading
        })
        .await?;
        b.wait_true(
            "the claims table",
            "return !!document.querySelector('#claims tbody tr');",
        )
        .await?;
        let claims = b.claims().await?;
        ensure!(claim(&claims, "name")? == ALICE_NAME, "{claims:?}");
        ensure!(claim(&claims, "emails")?.contains(ALICE), "{claims:?}");
        ensure!(claim(&claims, "aud")? == SPA_CLIENT_ID, "{claims:?}");
        ensure!(claim(&claims, "tfp")? == POLICY, "{claims:?}");
        ensure!(
            claim(&claims, "iss")?.starts_with(&s.idp_origin),
            "{claims:?}"
        );
        ensure!(!claim(&claims, "sub")?.is_empty(), "{claims:?}");
        for time in ["iat", "exp"] {
            let shown = claim(&claims, time)?;
            ensure!(
                shown.contains(':') && shown.parse::<u64>().is_err(),
                "`{time}` is not shown as a local time: {shown:?}"
            );
        }

        b.js("window.__e2eSamePage = true; return null;").await?;
        b.click("nav.pages a[href='/']").await?;
        b.wait_card("home", |c| c.message == format!("Welcome, {ALICE_NAME}"))
            .await?;
        call_api_green(b).await?;
        b.click("nav.pages a[href='/profile']").await?;
        b.wait_card("the profile again", |c| c.message == heading)
            .await?;
        ensure!(
            b.same_page().await?,
            "moving between the pages reloaded the page or signed in again"
        );
        Ok(())
    })
    .await;
}

/// "Forgot your password?" on the sign-in page: the IdP answers AADB2C90118, the SPA starts the
/// password-reset user flow, and after the mailed code and a new password the user is back,
/// signed in (by the reset flow: its `tfp`).
#[tokio::test]
async fn forgot_password_resets_and_comes_back_signed_in() {
    run("forgot-password", Options::default(), async |b, s| {
        open_sign_in_form(b, s).await?;
        b.click("#forgotPassword").await?;
        b.wait_for_element("#email_ver_but_send").await?;
        let url = b.client.current_url().await.map_err(err("url"))?;
        ensure!(
            url.as_str()
                .to_ascii_lowercase()
                .contains("b2c_1_passwordreset"),
            "not the password-reset flow: {url}"
        );
        b.type_into("#email", ALICE).await?;
        b.click("#email_ver_but_send").await?;
        b.wait_for_element("#email_ver_input").await?;
        let code = verification_code(&s.idp_data)?;
        b.type_into("#email_ver_input", &code).await?;
        b.click("#email_ver_but_verify").await?;
        let new_password = "Reset-In-Browser-2027?";
        b.type_into("#newPassword", new_password).await?;
        b.type_into("#reenterPassword", new_password).await?;
        b.click("#continue").await?;
        b.wait_card("signed in after the reset", |c| {
            c.phase == "signed-in" && c.message == format!("Welcome, {ALICE_NAME}")
        })
        .await?;
        b.click("nav.pages a[href='/profile']").await?;
        b.wait_true(
            "the claims table",
            "return !!document.querySelector('#claims tbody tr');",
        )
        .await?;
        let claims = b.claims().await?;
        ensure!(
            claim(&claims, "tfp")?.eq_ignore_ascii_case("B2C_1_passwordreset"),
            "{claims:?}"
        );
        Ok(())
    })
    .await;
}

/// The six digits of the dev IdP's newest verification mail.
fn verification_code(idp_data: &Path) -> Step<String> {
    let mut mails: Vec<PathBuf> = std::fs::read_dir(idp_data.join("mail"))
        .map_err(err("the IdP's mail folder"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    mails.sort();
    let newest = mails.pop().ok_or("no verification mail")?;
    let text = std::fs::read_to_string(&newest).map_err(err("the mail"))?;
    text.split("Your code is: ")
        .nth(1)
        .and_then(|rest| rest.get(..6))
        .map(str::to_owned)
        .ok_or_else(|| format!("no code in {text}"))
}

/// "Edit profile" runs the profile-edit user flow (single sign-on: no sign-in form) and the page
/// shows the new name.
#[tokio::test]
async fn edit_profile_shows_the_new_name() {
    run("edit-profile", Options::default(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        b.click("#editprofile").await?;
        b.wait_for_element("#displayName").await?;
        ensure!(
            b.client.find(Locator::Css("#password")).await.is_err(),
            "the profile edit asked for the password (no single sign-on)"
        );
        b.type_into("#displayName", "Alice Renamed").await?;
        b.click("#continue").await?;
        b.wait_card("the new name", |c| {
            c.phase == "signed-in" && c.message == "Welcome, Alice Renamed"
        })
        .await?;
        let shown = b
            .wait_for_element("#username")
            .await?
            .text()
            .await
            .map_err(err("#username"))?;
        ensure!(shown == "Alice Renamed", "the top bar shows {shown:?}");
        Ok(())
    })
    .await;
}

/// Access tokens that live 10 s: the renewal timer fires about 8 s after sign-in. Its token
/// request is held 1.5 s, and Call API is clicked meanwhile (the call must renew too: the token
/// is about to expire). Both must share the one renewal — a second redemption of the rotated
/// refresh token would revoke the family and sign the user out.
#[tokio::test]
async fn the_renewal_timer_and_a_call_share_one_renewal() {
    run("one-renewal", Options::short_tokens(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        b.js(&slow_fetch("/oauth2/v2.0/token", "POST", 1500))
            .await?;
        b.wait_true("the timer's renewal", "return window.__e2eCount >= 1;")
            .await?;
        call_api_green(b).await?;
        one_renewal_and_the_family_intact(b).await
    })
    .await;
}

/// After a call that shared a renewal: [`slow_fetch`] counted one token request, and the family
/// is intact — the next renewal works too, the call after it succeeds, the page never left.
async fn one_renewal_and_the_family_intact(b: &Browser) -> Step {
    let requests = b.js("return window.__e2eCount;").await?;
    ensure!(
        requests == json!(1),
        "{requests} token requests for one renewal"
    );
    b.wait_true("the next renewal", "return window.__e2eCount >= 2;")
        .await?;
    call_api_green(b).await?;
    let card = b.card().await?;
    ensure!(
        card.phase == "signed-in" && b.same_page().await?,
        "the user was signed out or sent to sign in again: {card:?}"
    );
    Ok(())
}

/// Records the HTTP status of every answer to a request whose URL contains `part`, in
/// `window.__e2eStatuses` (after whatever [`slow_fetch`] installed).
fn record_statuses(part: &str) -> String {
    format!(
        "window.__e2eStatuses = [];
         const inner = window.fetch, part = {part};
         window.fetch = (input, init) => {{
             const url = typeof input === 'string' ? input : input.url;
             const answer = inner(input, init);
             if (url.includes(part)) answer.then(r => window.__e2eStatuses.push(r.status));
             return answer;
         }};
         return null;",
        part = json!(part),
    )
}

/// Item 5, the 401 path: the API refuses a token the page still believes fresh just as the
/// renewal timer's renewal is under way. The cause is the device's clock, set back a minute
/// after sign-in (the page now reckons its 10 s token has over a minute to live; the gateway,
/// without clock skew, sees it expire). The timer fires about 8 s after sign-in and its token
/// request is held 8 s; Call API is clicked once the token has expired for the gateway: the
/// call gets 401, renews — sharing the timer's renewal — and its retry succeeds. One token
/// request; a second would redeem the rotated refresh token again and revoke the family.
#[tokio::test]
async fn a_401_retry_and_the_renewal_timer_share_one_renewal() {
    run("retry-and-timer", Options::short_tokens(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        let expires = jwt_exp(&access_token(b).await?)?;
        b.js(&slow_fetch("/oauth2/v2.0/token", "POST", 8000))
            .await?;
        b.js(&record_statuses("/api/hello")).await?;
        b.js("const real = Date.now.bind(Date); Date.now = () => real() - 60000; return null;")
            .await?;
        b.wait_true("the timer's renewal", "return window.__e2eCount >= 1;")
            .await?;
        // Past the token's expiry for the gateway (a second for the clocks).
        tokio::time::sleep(Duration::from_secs(
            (expires + 1).saturating_sub(unix_now()),
        ))
        .await;
        ensure!(
            b.js("return window.__e2eCount;").await? == json!(1),
            "the timer's renewal is not the only token request before the call"
        );
        call_api_green(b).await?;
        let statuses = b.js("return window.__e2eStatuses;").await?;
        ensure!(
            statuses == json!([401, 200]),
            "not a refused call and its successful retry: statuses {statuses}"
        );
        one_renewal_and_the_family_intact(b).await
    })
    .await;
}

/// Item 5 across tabs: a tab opened from a signed-in one (`window.open`, or the browser's
/// Duplicate) starts with a copy of its sessionStorage — the same refresh token. Were both to
/// renew it (with 10 s tokens each renews within seconds), the second redemption would revoke
/// the family. The first tab holds its family under a Web Lock; the copy finds it held, drops
/// the copied tokens and signs in on its own through the IdP's session (no form). Both tabs then
/// renew their own families, stay on their pages signed in, and call the API.
#[tokio::test]
async fn an_opened_tab_never_redeems_its_openers_refresh_token() {
    run("opened-tab", Options::short_tokens(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        b.js("window.__e2eSamePage = true; return null;").await?;
        let first = b.client.window().await.map_err(err("window"))?;
        let first_family = session_string(b, "nonce").await?;
        b.js("window.open(location.href); return null;").await?;
        let windows = b.client.windows().await.map_err(err("windows"))?;
        let opened = windows
            .into_iter()
            .find(|w| *w != first)
            .ok_or("window.open opened no window")?;
        b.client
            .switch_to_window(opened.clone())
            .await
            .map_err(err("switch to the opened tab"))?;
        signs_in_without_the_form(b, "the opened tab").await?;
        let opened_family = session_string(b, "nonce").await?;
        b.js("window.__e2eSamePage = true; return null;").await?;
        // Both tabs' timers renew at least once (10 s tokens renew 8 s after they were issued).
        tokio::time::sleep(Duration::from_secs(12)).await;
        for window in [opened, first] {
            b.client
                .switch_to_window(window)
                .await
                .map_err(err("switch tab"))?;
            let card = b.card().await?;
            ensure!(
                card.phase == "signed-in" && b.same_page().await?,
                "a tab was signed out or sent to sign in again: {card:?}"
            );
            call_api_green(b).await?;
        }
        ensure!(
            opened_family != first_family,
            "the opened tab renewed its opener's refresh-token family"
        );
        let idp_log = s
            .log_paths()
            .into_iter()
            .find(|path| path.to_string_lossy().ends_with(".dev-idp.log"))
            .ok_or("the stack keeps no dev-idp log")
            .and_then(|path| {
                std::fs::read_to_string(path).map_err(|_| "the dev-idp log is unreadable")
            })
            .map_err(err("dev-idp log"))?;
        ensure!(
            !idp_log.contains("refresh token reused"),
            "a refresh token was redeemed twice (the IdP revoked its family)"
        );
        Ok(())
    })
    .await;
}

/// The spinner is on screen (and Call API disabled) while a call is in flight — also after
/// visiting another page and coming back — and gone with the answer.
#[tokio::test]
async fn the_spinner_shows_while_a_call_is_in_flight() {
    run("spinner", Options::default(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        b.js(&slow_fetch("/api/hello", "GET", 2500)).await?;
        const SPINNING: &str = "const p = document.getElementById('progress'),
                                      c = document.getElementById('callapi');
                                if (!p || !c) return false;
                                const r = p.getBoundingClientRect();
                                return r.width > 0 && r.height > 0 && c.disabled
                                    && getComputedStyle(p).visibility === 'visible';";
        b.click("#callapi").await?;
        b.wait_true("the spinner", SPINNING).await?;
        b.click("nav.pages a[href='/profile']").await?;
        b.wait_card("the profile", |c| c.message.starts_with("Profile of"))
            .await?;
        b.click("nav.pages a[href='/']").await?;
        b.wait_true("the spinner after coming back", SPINNING)
            .await?;
        let card = b
            .wait_card("the answer", |c| c.message.starts_with(HELLO))
            .await?;
        ensure!(is_green(&card), "{card:?}");
        ensure!(
            b.client.find(Locator::Css("#progress")).await.is_err(),
            "the spinner outlived the call"
        );
        Ok(())
    })
    .await;
}

/// A call that gets no answer at all (nothing listens at `apiUrl`) is the red "Error: …" — on
/// home reached through the router after a sign-in on another page.
#[tokio::test]
async fn a_network_failure_is_red() {
    let options = Options {
        api_unreachable: true,
        ..Options::default()
    };
    run("network-failure", options, async |b, s| {
        sign_in_on_profile(b, s).await?;
        b.click("nav.pages a[href='/']").await?;
        b.wait_card("home", |c| c.message == format!("Welcome, {ALICE_NAME}"))
            .await?;
        let card = b.call_api().await?;
        ensure!(
            card.class.split_whitespace().any(|c| c == "status-danger")
                && card.message == "Error: TypeError: Failed to fetch",
            "not the red network error: {card:?}"
        );
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Issue 18: the developer console (/console), signing in as its own app registration

const CONSOLE_NOT_CONFIGURED: &str =
    "The developer console is not configured: config.json has no `console` section.";

/// What `#exchange` shows after a "Try it".
#[derive(Debug)]
struct Exchange {
    request: String,
    status: String,
    class: String,
    time: String,
    headers: String,
    body: String,
}

impl Browser {
    /// Waits for the console's operation list (its document loaded).
    async fn console_ready(&self) -> Step<Card> {
        self.wait_true(
            "the console's operation list",
            "const c = document.getElementById('console');
             return !!c && c.dataset.state === 'ready' && !!document.querySelector('li.operation');",
        )
        .await?;
        self.card().await
    }

    /// Types `value` into the operation's parameter `name` and clicks its "Try it".
    async fn try_it(&self, operation: &str, parameter: Option<(&str, &str)>) -> Step {
        // The answer shown so far is marked, so that only the new one counts.
        self.js("const e = document.getElementById('response-status'); if (e) e.dataset.stale = '1'; return null;")
            .await?;
        if let Some((name, value)) = parameter {
            self.type_into(&format!("{operation} input[name='{name}']"), value)
                .await?;
        }
        self.click(&format!("{operation} button.try")).await
    }

    /// Waits for `#exchange` (the answer to the last "Try it") and reads it.
    async fn exchange(&self) -> Step<Exchange> {
        self.wait_true(
            "the console's answer",
            "const e = document.getElementById('response-status'); return !!e && !e.dataset.stale;",
        )
        .await?;
        let value = self
            .js(
                "const t = id => { const e = document.getElementById(id); return e ? e.textContent : null; };
                 return [t('request'), t('response-status'), document.getElementById('response-status').className,
                         t('response-time'), t('response-headers'), t('response-body')];",
            )
            .await?;
        let text = |i: usize| value[i].as_str().unwrap_or_default().to_owned();
        Ok(Exchange {
            request: text(0),
            status: text(1),
            class: text(2),
            time: text(3),
            headers: text(4),
            body: text(5),
        })
    }

    /// The access token of the session stored under `key` in sessionStorage.
    async fn session_token(&self, key: &str) -> Step<Option<String>> {
        let storage = self.storage().await?;
        let Some(text) = storage["session"][key].as_str() else {
            return Ok(None);
        };
        let session: Value = serde_json::from_str(text).map_err(err(key))?;
        Ok(session["access_token"].as_str().map(str::to_owned))
    }
}

const HELLO_OPERATION: &str = "li.operation[data-method='GET'][data-path='/hello']";

/// On the IdP's form for the console's sign-in: the authorize request names the console's own
/// client id and redirect URI, not the SPA's.
async fn console_sign_in_form(b: &Browser, s: &Stack) -> Step {
    b.wait_for_element("#signInName").await?;
    let url = b.client.current_url().await.map_err(err("url"))?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    ensure!(
        url.as_str().starts_with(&s.idp_origin),
        "not the IdP's form: {url}"
    );
    ensure!(
        param("client_id") == CONSOLE_CLIENT_ID,
        "the console signed in as {:?}, not its own app registration: {url}",
        param("client_id")
    );
    ensure!(
        param("redirect_uri") == format!("{}console", s.spa_url),
        "the console's redirect URI is {:?}: {url}",
        param("redirect_uri")
    );
    ensure!(param("code_challenge_method") == "S256", "no PKCE: {url}");
    Ok(())
}

fn ensure_hello_ada(exchange: &Exchange, s: &Stack) -> Step {
    ensure!(
        exchange.status == "200 OK" && exchange.class == "status-success",
        "Try it did not answer 200: {exchange:?}"
    );
    ensure!(
        exchange
            .body
            .contains("\"message\": \"Hello Ada, time and date are "),
        "the body is not hello's greeting of Ada: {exchange:?}"
    );
    ensure!(
        exchange
            .request
            .starts_with(&format!("GET {}/api/hello?name=Ada\n", s.gateway_url))
            && exchange
                .request
                .contains("Authorization: Bearer (the console's access token)"),
        "the request line: {exchange:?}"
    );
    ensure!(
        !looks_like_jwt(&exchange.request),
        "the page shows the token: {exchange:?}"
    );
    ensure!(
        exchange.headers.contains("content-type: application/json"),
        "the response headers: {exchange:?}"
    );
    let ms = exchange.time.strip_suffix(" ms").unwrap_or_default();
    ensure!(ms.parse::<u64>().is_ok(), "the time: {exchange:?}");
    Ok(())
}

/// The console lists the gateway's document (fetched cross-origin: the gateway's CORS covers
/// /openapi.json), Try it on GET /hello signs in through the console's own client, and shows
/// 200 with hello's greeting; an invalid name then shows APIM's 400 naming the parameter.
#[tokio::test]
async fn console_signs_in_as_its_own_client_and_tries_the_api() {
    let options = Options {
        validation: true,
        ..Options::default()
    };
    run("console", options, async |b, s| {
        let spa_origin = s.spa_url.trim_end_matches('/');
        let preflight = reqwest::Client::new()
            .get(format!("{}/openapi.json", s.gateway_url))
            .header("Origin", spa_origin)
            .send()
            .await
            .map_err(err("GET /openapi.json"))?;
        ensure!(
            preflight
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok())
                == Some(spa_origin),
            "the gateway's CORS does not allow the SPA's origin for /openapi.json: {:?}",
            preflight.headers()
        );

        b.goto(&s.spa_url).await?;
        b.click("nav.pages a[href='/console']").await?;
        let card = b.console_ready().await?;
        ensure!(
            card.message == "Hello API 0.1.0: 1 operation",
            "the console's header: {card:?}"
        );
        let listed = b
            .js(&format!(
                "const li = document.querySelector(\"{HELLO_OPERATION}\");
                 return [li.querySelector('.method').textContent, li.querySelector('.path').textContent,
                         li.querySelector('.summary').textContent,
                         Array.from(li.querySelectorAll('input')).map(i => i.name)];"
            ))
            .await?;
        ensure!(
            listed[0] == "GET"
                && listed[1] == "/hello"
                && !listed[2].as_str().unwrap_or_default().is_empty()
                && listed[3] == json!(["name"]),
            "the operation as listed: {listed}"
        );

        b.try_it(HELLO_OPERATION, Some(("name", "Ada"))).await?;
        console_sign_in_form(b, s).await?;
        fill_sign_in_form(b, ALICE, ALICE_PASSWORD).await?;
        let exchange = b.exchange().await?;
        ensure_hello_ada(&exchange, s)?;
        ensure!(b.path().await? == "/console", "not back on /console");

        // The console's token is the console's (azp), and the SPA has no session of its own.
        let token = b
            .session_token("console.session")
            .await?
            .ok_or("no console session in sessionStorage")?;
        ensure!(
            jwt_claims(&token)?["azp"] == CONSOLE_CLIENT_ID,
            "the console's token: {}",
            jwt_claims(&token)?
        );
        ensure!(
            b.session_token("spa.session").await?.is_none(),
            "the console's sign-in made an SPA session"
        );

        // Signed in: an invalid name goes straight to the gateway, whose validation refuses it.
        b.try_it(HELLO_OPERATION, Some(("name", "Ada!"))).await?;
        let refused = b.exchange().await?;
        let message = shared::api::messages::invalid_greeting_name();
        ensure!(
            refused.status.starts_with("400 ")
                && refused.class == "status-warning"
                && refused.body.contains(&format!("\"message\": \"{message}\""))
                && refused.body.contains("\"statusCode\": 400"),
            "an invalid name: {refused:?}"
        );
        ensure!(
            refused.request.contains("?name=Ada%21"),
            "the request line: {refused:?}"
        );
        Ok(())
    })
    .await;
}

/// Signed in on `/`, then in the console: two sessions of two clients side by side, each still
/// working afterwards (Call API on `/`, Try it on the console without a new sign-in).
#[tokio::test]
async fn the_spa_and_the_console_keep_their_own_sessions() {
    run("console-sessions", Options::default(), async |b, s| {
        sign_in(b, s, ALICE, ALICE_PASSWORD, ALICE_NAME).await?;
        call_api_green(b).await?;
        let spa_token = b
            .session_token("spa.session")
            .await?
            .ok_or("no SPA session")?;

        b.click("nav.pages a[href='/console']").await?;
        b.console_ready().await?;
        b.try_it(HELLO_OPERATION, Some(("name", "Ada"))).await?;
        // The IdP's session may sign the console in without its form.
        let deadline = Instant::now() + STEP;
        loop {
            if b.client.find(Locator::Css("#signInName")).await.is_ok() {
                console_sign_in_form(b, s).await?;
                fill_sign_in_form(b, ALICE, ALICE_PASSWORD).await?;
                break;
            }
            if b.client
                .find(Locator::Css("#response-status"))
                .await
                .is_ok()
            {
                break;
            }
            ensure!(Instant::now() < deadline, "no sign-in and no answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure_hello_ada(&b.exchange().await?, s)?;
        let console_token = b
            .session_token("console.session")
            .await?
            .ok_or("no console session")?;
        ensure!(
            b.session_token("spa.session").await? == Some(spa_token.clone()),
            "the console's sign-in replaced the SPA's session"
        );
        ensure!(console_token != spa_token, "one token for both clients");
        ensure!(
            jwt_claims(&spa_token)?["azp"] == SPA_CLIENT_ID
                && jwt_claims(&console_token)?["azp"] == CONSOLE_CLIENT_ID,
            "each token is its own client's"
        );

        // Both keep working, and neither signs in again.
        b.js("window.__e2eSamePage = true; return null;").await?;
        b.click("nav.pages a[href='/']").await?;
        b.wait_card("home, still signed in", |c| {
            c.phase == "signed-in" && c.message == format!("Welcome, {ALICE_NAME}")
        })
        .await?;
        call_api_green(b).await?;
        b.click("nav.pages a[href='/console']").await?;
        b.console_ready().await?;
        b.try_it(HELLO_OPERATION, Some(("name", "Ada"))).await?;
        ensure_hello_ada(&b.exchange().await?, s)?;
        ensure!(
            b.same_page().await?,
            "the console signed in again (or the page reloaded)"
        );
        ensure!(
            b.session_token("console.session").await? == Some(console_token)
                && b.session_token("spa.session").await? == Some(spa_token),
            "a session changed"
        );
        Ok(())
    })
    .await;
}

/// Without a `console` section: no nav link, and /console says it is not configured.
#[tokio::test]
async fn the_console_unconfigured() {
    let options = Options {
        console: false,
        ..Options::default()
    };
    run("console-unconfigured", options, async |b, s| {
        b.goto(&s.spa_url).await?;
        b.wait_card("home", |c| c.phase == "signed-out").await?;
        ensure!(
            b.client
                .find(Locator::Css("nav.pages a[href='/console']"))
                .await
                .is_err(),
            "a Console link without a console"
        );
        b.goto(&format!("{}console", s.spa_url)).await?;
        let card = b
            .wait_card("the console's explanation", |c| {
                c.message == CONSOLE_NOT_CONFIGURED
            })
            .await?;
        ensure!(is_yellow(&card), "{card:?}");
        ensure!(
            b.client.find(Locator::Css("li.operation")).await.is_err(),
            "operations without a console"
        );
        Ok(())
    })
    .await;
}

/// The document cannot be fetched (the gateway's port is closed): a red sentence naming the URL,
/// and the page keeps working (a panic would have stopped the wasm).
#[tokio::test]
async fn the_console_without_its_document_is_red_not_dead() {
    let options = Options {
        api_unreachable: true,
        ..Options::default()
    };
    run("console-no-document", options, async |b, s| {
        b.goto(&format!("{}console", s.spa_url)).await?;
        let card = b
            .wait_card("the console's red error", |c| {
                c.message
                    .starts_with("The API definition could not be loaded from http://127.0.0.1:")
            })
            .await?;
        ensure!(
            card.class.split_whitespace().any(|c| c == "status-danger")
                && card.message.contains("/openapi.json: "),
            "{card:?}"
        );
        b.click("nav.pages a[href='/']").await?;
        b.wait_card("home after the console", |c| {
            c.phase == "signed-out" && c.message == SIGNED_OUT
        })
        .await?;
        Ok(())
    })
    .await;
}

/// An operation without parameters or security (a document of the site's own, its server the
/// site): listed with "No parameters", tried without any sign-in.
#[tokio::test]
async fn the_console_tries_an_operation_without_parameters() {
    let document = json!({
        "openapi": "3.1.0",
        "info": {"title": "Site", "version": "1"},
        "servers": [{"url": "/"}],
        "paths": {"/config.json": {"get": {"summary": "The SPA's own settings"}}},
    });
    let options = Options {
        site_openapi: Some(document),
        ..Options::default()
    };
    run("console-no-parameters", options, async |b, s| {
        b.goto(&format!("{}console", s.spa_url)).await?;
        let card = b.console_ready().await?;
        ensure!(card.message == "Site 1: 1 operation", "{card:?}");
        let operation = "li.operation[data-method='GET'][data-path='/config.json']";
        let shown = b
            .js(&format!(
                "const li = document.querySelector(\"{operation}\");
                 return [li.querySelectorAll('input').length, li.querySelector('.no-parameters').textContent];"
            ))
            .await?;
        ensure!(shown == json!([0, "No parameters"]), "{shown}");
        b.try_it(operation, None).await?;
        let exchange = b.exchange().await?;
        ensure!(
            exchange.status == "200 OK"
                && exchange.request == format!("GET {}config.json", s.spa_url)
                && exchange.body.contains(CONSOLE_CLIENT_ID),
            "{exchange:?}"
        );
        ensure!(
            b.session_token("console.session").await?.is_none(),
            "it signed in for an operation that needs no token"
        );
        Ok(())
    })
    .await;
}
