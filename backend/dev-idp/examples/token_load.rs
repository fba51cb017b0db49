//! Rough throughput of dev-idp's token endpoint: client credentials and refresh-token rotation,
//! each for a fixed time with N workers, against a provider the example starts in-process with
//! the tests' configuration and a temporary data directory (the tests' own start-up and sign-in,
//! `tests/common`).
//!
//! ```sh
//! cargo run --release -p dev-idp --example token_load -- 10 8
//! ```
//! Arguments: seconds per grant type, concurrent workers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{DAEMON, DAEMON_SECRET, Idp, SPA, alice_tokens, config};
use testkit::dev_tenant::APP_SCOPE_URI;

/// What each worker asks the token endpoint for, over and over.
#[derive(Clone, Copy, PartialEq)]
enum Grant {
    ClientCredentials,
    RefreshToken,
}

async fn run(grant: Grant, workers: usize, seconds: u64, idp: &Idp, client: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        // Each worker rotates a refresh token of its own sign-in.
        let mut refresh = match grant {
            Grant::RefreshToken => alice_tokens(idp).await["refresh_token"]
                .as_str()
                .map(str::to_owned),
            Grant::ClientCredentials => None,
        };
        let (client, url) = (client.clone(), idp.token_url());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                let request = match &refresh {
                    Some(token) => client.post(&url).form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", SPA),
                        ("refresh_token", token.as_str()),
                    ]),
                    None => client
                        .post(&url)
                        .basic_auth(DAEMON, Some(DAEMON_SECRET))
                        .form(&[
                            ("grant_type", "client_credentials"),
                            ("scope", APP_SCOPE_URI),
                        ]),
                };
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.unwrap();
                        if refresh.is_some() {
                            refresh = body["refresh_token"].as_str().map(str::to_owned);
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
    let name = match grant {
        Grant::ClientCredentials => "client_credentials",
        Grant::RefreshToken => "refresh_token",
    };
    println!(
        "{name}: {ok} ok, {failed} failed in {elapsed:.1} s = {:.0} req/s ({workers} workers)",
        ok as f64 / elapsed
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let workers = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let client = reqwest::Client::new();
    for grant in [Grant::ClientCredentials, Grant::RefreshToken] {
        run(grant, workers, seconds, &idp, &client).await;
    }
    idp.stop().await;
}
