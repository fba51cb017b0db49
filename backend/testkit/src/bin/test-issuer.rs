//! `test-issuer`: testkit's [`TestIssuer`] as a process, for test drivers outside Rust (the
//! hardening suite in `bench/harness/`), so that every layer and every language is attacked with
//! the one list of hostile tokens, [`TestIssuer::attack_tokens`], and signs with the same code.
//!
//! On start it prints one JSON line — `{"openid_config_url", "issuer", "control_url"}` — and then
//! serves, on loopback only, the issuer (discovery + JWKS) and a control API beside it:
//!
//! | request | answer |
//! |---|---|
//! | `GET /claims?sub=S` | a valid user access token's claims for the API (the harness edits them) |
//! | `POST /token` `{"claims": {…}, "header": {…}?, "unpublished": false}` | the compact JWS; `header` fields are merged over `{"alg":"RS256","typ":"JWT","kid":<current>}` (`null` removes one); `unpublished` signs with the key never published |
//! | `GET /attack-tokens` | `[{"name", "token"}]`, aimed at the API's audience |
//! | `POST /rotate` | `{"kid"}` of the new signing key (the old one stays published) |
//! | `GET /stats` | `{"discovery_fetches", "jwks_fetches", "attacker_fetches"}` |
//!
//! It runs until killed (SIGTERM or SIGINT).

#![allow(clippy::unwrap_used)] // test support: a failed set-up must fail loudly

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use testkit::{API_CLIENT_ID, API_SCOPE, APP_ROLE, TestIssuer};

#[tokio::main]
async fn main() {
    let issuer = Arc::new(TestIssuer::start().await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control_url = format!("http://{}", listener.local_addr().unwrap());
    println!(
        "{}",
        json!({
            "openid_config_url": issuer.openid_config_url(),
            "issuer": issuer.issuer(),
            "control_url": control_url,
        })
    );
    let app = Router::new()
        .route("/claims", get(claims))
        .route("/token", post(token))
        .route("/attack-tokens", get(attack_tokens))
        .route("/rotate", post(rotate))
        .route("/stats", get(stats))
        .with_state(issuer);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
        .unwrap();
}

#[derive(Deserialize)]
struct Subject {
    sub: Option<String>,
}

/// A user access token for the API with both the delegated scope and the app role, so one token
/// passes every claims policy the suite configures.
async fn claims(State(issuer): State<Arc<TestIssuer>>, Query(q): Query<Subject>) -> Json<Value> {
    let sub = q
        .sub
        .unwrap_or_else(|| format!("harden-{}", testkit::now()));
    let mut claims = issuer.user_claims(&sub, API_CLIENT_ID, &[API_SCOPE]);
    claims["roles"] = json!([APP_ROLE]);
    Json(claims)
}

#[derive(Deserialize)]
struct TokenRequest {
    claims: Value,
    #[serde(default)]
    header: Map<String, Value>,
    #[serde(default)]
    unpublished: bool,
}

async fn token(State(issuer): State<Arc<TestIssuer>>, Json(req): Json<TokenRequest>) -> String {
    let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": issuer.current_kid()});
    let fields = header.as_object_mut().unwrap();
    for (name, value) in req.header {
        if value.is_null() {
            fields.remove(&name);
        } else {
            fields.insert(name, value);
        }
    }
    if req.unpublished {
        issuer.mint_with_unpublished_key(&header, &req.claims)
    } else {
        issuer.mint_with_header(&header, &req.claims)
    }
}

async fn attack_tokens(State(issuer): State<Arc<TestIssuer>>) -> Json<Value> {
    let attacks: Vec<Value> = issuer
        .attack_tokens(API_CLIENT_ID)
        .into_iter()
        .map(|a| json!({"name": a.name, "token": a.token}))
        .collect();
    Json(Value::Array(attacks))
}

async fn rotate(State(issuer): State<Arc<TestIssuer>>) -> Json<Value> {
    Json(json!({"kid": issuer.rotate_key().await}))
}

async fn stats(State(issuer): State<Arc<TestIssuer>>) -> Json<Value> {
    Json(json!({
        "discovery_fetches": issuer.discovery_fetches(),
        "jwks_fetches": issuer.jwks_fetches(),
        "attacker_fetches": issuer.attacker_fetches(),
    }))
}
