//! The seed's own SPA page — the HTML under "Upload the JS SPA sample", built on Microsoft's
//! MSAL.js 2.11.1 — signs in against the dev identity provider in a real headless Chromium, then
//! calls the API through the gateway to the hello function. This proves the dev IdP (and the
//! gateway's CORS and token checks) serve the client library written for B2C, not only our SPA.
//!
//! The page (`tests/msal/seed_index.html`, copied byte for byte from the seed; scripts/bench times it too) is served with
//! only its config placeholders filled in, its MSAL `<script>` pointed at a local copy, and its
//! Bootstrap `<link>` (cosmetic) dropped. MSAL.js itself comes from `node_modules/@azure/msal-browser`
//! (`npm install` in the repository root; scripts/setup does) with one check relaxed, see
//! [`allow_loopback_http_authority`].
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`. On failure the test leaves
//! `test-output/msal-seed-page.png`, `.console.log`, `.html` and the child processes' logs.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{Browser, STEP, Step, err};
use support::{
    ALICE, ALICE_NAME, ALICE_PASSWORD, API_SCOPE, IDP_HOST, POLICY, SPA_CLIENT_ID, TempDir,
    browser_stack, dev_idp_toml, workspace_root,
};

const NAME: &str = "msal-seed-page";
const SIGNED_OUT: &str = "Please sign in to continue";
const FUNCTION_KEY: &str = "e2e-msal-seed-function-key-0123456789abcdef";
const HELLO: &str = "Hello World, time and date are ";

/// The seed page, verbatim.
const SEED_PAGE: &str = include_str!("msal/seed_index.html");
const MSAL_CDN: &str = "https://alcdn.msauth.net/browser/2.11.1/js/msal-browser.min.js";
const BOOTSTRAP_LINK: &str = r#"<link href="https://cdn.jsdelivr.net/npm/bootstrap@5.0.0-beta2/dist/css/bootstrap.min.css" rel="stylesheet" integrity="sha384-BmbxuPwQa2lc/FVzBcNJ7UAyJxM6wuqIj61tLrc4wSX0szH/Ev+nYRRuWlolflfl" crossorigin="anonymous">"#;

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// `text` with `from` (which must occur exactly once, so a changed seed or MSAL build fails
/// loudly instead of silently serving something else) replaced by `to`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    let found = text.matches(from).count();
    assert_eq!(found, 1, "expected exactly one {from:?}, found {found}");
    text.replacen(from, to, 1)
}

/// The seed page as its author would deploy it for this run: the config placeholders filled in,
/// the MSAL script served from this origin, the Bootstrap stylesheet (looks only) left out.
/// Nothing else in the HTML or the script changes.
fn seed_page(idp_origin: &str, idp_host: &str, spa_url: &str, api_url: &str) -> String {
    let mut page = SEED_PAGE.to_owned();
    for (placeholder, value) in [
        ("{CLIENTID}", SPA_CLIENT_ID.to_owned()),
        (
            "{YOURAUTHORITYB2C}",
            format!("{idp_origin}/tfp/devtenant.onmicrosoft.com/{POLICY}"),
        ),
        ("{SPAHOSTINGADDRESS}", spa_url.to_owned()),
        ("{B2CTENANTDOMAIN}", idp_host.to_owned()),
        ("{APISCOPEWITHFULLURI}", API_SCOPE.to_owned()),
        ("{APIMBACKENDADDRESS}", api_url.to_owned()),
    ] {
        page = replace_once(
            &page,
            &format!("\"{placeholder}\""),
            &format!("\"{value}\""),
        );
    }
    page = replace_once(&page, MSAL_CDN, "/msal-browser.min.js");
    replace_once(&page, BOOTSTRAP_LINK, "")
}

/// MSAL.js 2.11.1 exactly as published, except for the one check that refuses an authority whose
/// scheme is not `https:` (`authority_uri_insecure`, in msal-common's `UrlString.validateAsUri`).
/// Real B2C is always https; this test's dev IdP listens on plain http on loopback. The rewritten
/// condition still refuses every non-https authority except `http:` on loopback (`127.x.y.z`, where the
/// dev IdP listens on an address of its own, or `localhost`)
/// (any port), so discovery, the redirect, the code exchange and the caching are MSAL's own code.
fn allow_loopback_http_authority(msal: &str) -> String {
    const CHECK: &str = r#"if(!e.Protocol||"https:"!==e.Protocol.toLowerCase())throw yt.createInsecureAuthorityUriError(this.urlString)"#;
    const LOOPBACK_TOO: &str = r#"if(!e.Protocol||"https:"!==e.Protocol.toLowerCase()&&!("http:"===e.Protocol.toLowerCase()&&/^(127(\.\d{1,3}){3}|localhost)(:\d+)?$/.test(e.HostNameAndPort)))throw yt.createInsecureAuthorityUriError(this.urlString)"#;
    replace_once(msal, CHECK, LOOPBACK_TOO)
}

fn msal_script() -> String {
    let path = workspace_root().join("node_modules/@azure/msal-browser/lib/msal-browser.min.js");
    let package = workspace_root().join("node_modules/@azure/msal-browser/package.json");
    let version = std::fs::read_to_string(&package)
        .ok()
        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
        .and_then(|p| p["version"].as_str().map(str::to_owned));
    assert_eq!(
        version.as_deref(),
        Some("2.11.1"),
        "{} is not msal-browser 2.11.1 (the seed's version): run `npm install` in {}",
        package.display(),
        workspace_root().display()
    );
    let msal = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    allow_loopback_http_authority(&msal)
}

/// The static website: the page at `/` (where MSAL also redirects back) and the script.
async fn serve_site(listener: tokio::net::TcpListener, page: String, msal: String) {
    use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
    use axum::routing::get;
    let (page, msal) = (Arc::new(page), Arc::new(msal));
    let app = axum::Router::new()
        .route(
            "/",
            get(move || {
                let page = page.clone();
                async move {
                    (
                        [
                            (CONTENT_TYPE, "text/html; charset=utf-8"),
                            (CACHE_CONTROL, "no-cache"),
                        ],
                        (*page).clone(),
                    )
                }
            }),
        )
        .route(
            "/msal-browser.min.js",
            get(move || {
                let msal = msal.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
                        (*msal).clone(),
                    )
                }
            }),
        );
    axum::serve(listener, app).await.unwrap();
}

impl Browser {
    /// `#message`'s text and the page's origin.
    async fn message(&self) -> Step<(String, String)> {
        let value = self
            .client
            .execute(
                "const m = document.getElementById('message');
                 return [m ? m.textContent.trim() : null, location.origin];",
                vec![],
            )
            .await
            .map_err(err("script"))?;
        let text = |i: usize| value[i].as_str().unwrap_or_default().to_owned();
        Ok((text(0), text(1)))
    }

    async fn wait_message(&self, what: &str, done: impl Fn(&str, &str) -> bool) -> Step {
        let deadline = Instant::now() + STEP;
        let mut last = None;
        loop {
            if let Ok((message, origin)) = self.message().await {
                if done(&message, &origin) {
                    return Ok(());
                }
                last = Some((message, origin));
            }
            ensure!(
                Instant::now() < deadline,
                "waited {STEP:?} for {what}; last seen (#message, origin): {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Seed 000's own page: Sign In goes to the dev IdP's form (MSAL's redirect), Alice signs in, and
/// back on the page MSAL's `handleRedirectPromise` yields her account: "Welcome, Alice Example".
/// Then Call API gets an access token from MSAL's cache and the gateway lets it through (green).
#[tokio::test]
async fn the_seed_msal_page_signs_in_against_the_dev_idp() {
    let started = Instant::now();
    let data = TempDir::new(NAME);
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spa_origin = format!("http://127.0.0.1:{}", site.local_addr().unwrap().port());
    // MSAL sends redirectUri as configured; the IdP compares it exactly with the registered one.
    let spa_url = format!("{spa_origin}/");
    let stack = browser_stack(NAME, FUNCTION_KEY, &spa_origin, &data);
    let wiring = &stack.wiring;
    let idp_host = format!("{IDP_HOST}:{}", wiring.idp_port);
    let idp_origin = wiring.idp_url();
    let api_url = format!("{}/api/hello", wiring.gateway_url());
    let page = seed_page(&idp_origin, &idp_host, &spa_url, &api_url);
    let _site = tokio::spawn(serve_site(site, page, msal_script()));
    let idp_config = wiring.idp_config.clone().unwrap();
    std::fs::write(idp_config, dev_idp_toml(&spa_url, 3600)).unwrap();
    let servers = testkit::Stack::spawn(stack).await;

    let browser = Browser::start(NAME).await;
    let scenario = async {
        let b = &browser;
        b.client.goto(&spa_url).await.map_err(err(&spa_url))?;
        b.wait_message("the seed page signed out", |m, _| m == SIGNED_OUT)
            .await?;
        b.click("#signinbtn").await?;
        b.wait_for_element("#signInName").await?;
        let url = b.client.current_url().await.map_err(err("url"))?;
        ensure!(
            url.as_str().starts_with(&idp_origin),
            "the sign-in form is not the IdP's: {url}"
        );
        b.type_into("#signInName", ALICE).await?;
        b.type_into("#password", ALICE_PASSWORD).await?;
        b.click("#next").await?;
        let welcome = format!("Welcome, {ALICE_NAME}");
        b.wait_message(&format!("{welcome:?} on the seed page"), |m, origin| {
            m == welcome && origin == spa_origin
        })
        .await?;
        // The page's own reaction to a signed-in account: Sign In hidden, Call API shown.
        let buttons = b
            .client
            .execute(
                "return [document.getElementById('signinbtn').hidden,
                         document.getElementById('callapibtn').hidden];",
                vec![],
            )
            .await
            .map_err(err("script"))?;
        ensure!(
            buttons == json!([true, false]),
            "after sign-in [signinbtn.hidden, callapibtn.hidden] = {buttons}"
        );

        // Call API: MSAL's acquireTokenSilent, then the page's fetch through the gateway. The page
        // shows the response body as text; this project's hello answers JSON (shared's
        // `HelloResponse`), so the hello text appears inside it as its `message`.
        b.click("#callapibtn").await?;
        b.wait_message("the hello function's answer on the seed page", |m, _| {
            serde_json::from_str::<Value>(m)
                .ok()
                .and_then(|body| body["message"].as_str().map(|t| t.starts_with(HELLO)))
                .unwrap_or(false)
        })
        .await?;
        let class = b
            .client
            .execute(
                "return document.getElementById('cardheader').className;",
                vec![],
            )
            .await
            .map_err(err("script"))?;
        ensure!(
            class
                .as_str()
                .is_some_and(|c| c.split_whitespace().any(|c| c == "bg-success")),
            "the card is not green after Call API: {class}"
        );
        Ok::<(), String>(())
    };
    let outcome = match tokio::time::timeout(TEST_TIMEOUT, scenario).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("the scenario took over {TEST_TIMEOUT:?}")),
    };
    let console = browser.console_log().await;
    let saved = match &outcome {
        Err(_) => browser.save_evidence(NAME, &console).await,
        Ok(()) => Vec::new(),
    };
    let _ = browser.client.clone().close().await;
    if let Err(why) = outcome {
        panic!(
            "{NAME}: {why}\nevidence: {saved:?}\nchild logs: {:?}\nbrowser console:\n{console}",
            servers.log_paths()
        );
    }
    eprintln!("{NAME}: passed in {:.1} s", started.elapsed().as_secs_f64());
}
