//! Rough throughput of a running dev-idp's token endpoint (built-in configuration):
//! client credentials and refresh-token rotation, each for a fixed time with N workers.
//!
//! ```sh
//! cargo run --release -p dev-idp &                       # serves on 127.0.0.1:7010
//! cargo run --release -p dev-idp --example token_load -- http://127.0.0.1:7010 10 8
//! ```
//! Arguments: base URL, seconds per grant type, concurrent workers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

const SPA: &str = "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b";
const REDIRECT: &str = "http://127.0.0.1:8080/";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const POLICY: &str = "devtenant.onmicrosoft.com/b2c_1_signupsignin";

fn attribute_after(html: &str, marker: &str) -> String {
    let start = html.find(marker).expect("marker") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// Signs Alice in through the HTML form and returns a refresh token.
async fn refresh_token(client: &reqwest::Client, base: &str) -> String {
    let params = [
        ("client_id", SPA),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        (
            "scope",
            "openid offline_access https://devtenant.onmicrosoft.com/hello-api/accessapp",
        ),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let page = client
        .get(format!("{base}/{POLICY}/oauth2/v2.0/authorize"))
        .query(&params)
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let csrf = attribute_after(&html, "name=\"csrf\" value=\"");
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.extend([
        ("csrf", csrf.as_str()),
        ("signInName", "alice@example.com"),
        ("password", "Hello-B2C-2026!"),
    ]);
    let redirect = client
        .post(format!("{base}/{POLICY}/oauth2/v2.0/authorize"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: serde_json::Value = client
        .post(format!("{base}/{POLICY}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

async fn run(name: &str, workers: usize, seconds: u64, base: &str, client: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, base, name) = (client.clone(), base.to_owned(), name.to_owned());
        let mut rt = if name == "refresh_token" {
            Some(refresh_token(&client, &base).await)
        } else {
            None
        };
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let url = format!("{base}/{POLICY}/oauth2/v2.0/token");
            while Instant::now() < deadline {
                let request = match &rt {
                    Some(token) => client.post(&url).form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", SPA),
                        ("refresh_token", token.as_str()),
                    ]),
                    None => client
                        .post(&url)
                        .basic_auth(
                            "2b4d6f8a-1c3e-4a5b-9c7d-3e5f7a9b1c2d",
                            Some("dev-daemon-secret"),
                        )
                        .form(&[
                            ("grant_type", "client_credentials"),
                            (
                                "scope",
                                "https://devtenant.onmicrosoft.com/hello-api/.default",
                            ),
                        ]),
                };
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.unwrap();
                        if rt.is_some() {
                            rt = body["refresh_token"].as_str().map(str::to_owned);
                        }
                        ok += 1;
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let started = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (o, f) = t.await.unwrap();
        ok += o;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{name}: {ok} ok, {failed} failed in {elapsed:.1} s = {:.0} req/s ({workers} workers)",
        ok as f64 / elapsed
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:7010".into());
    let seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let workers = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    run("client_credentials", workers, seconds, &base, &client).await;
    run("refresh_token", workers, seconds, &base, &client).await;
}
