//! An OpenID Connect issuer for tests: discovery + JWKS over HTTP, token minting in process.

#![allow(clippy::unwrap_used)] // test support: a failed set-up must fail the test loudly

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Value, json};

use crate::dev_tenant::{POLICY, SPA_CLIENT_ID, TENANT_ID};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A `kid` unique across issuers (real IdPs' kids never collide either): `key-<n>-<random>`.
fn kid(generation: usize) -> String {
    let mut random = [0u8; 4];
    aws_lc_rs::rand::fill(&mut random).unwrap();
    format!("key-{generation}-{}", URL_SAFE_NO_PAD.encode(random))
}

/// An RSA signing key with its `kid`.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pair: KeyPair,
}

impl SigningKey {
    pub(crate) fn generate(kid: String) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        Self { kid, pair }
    }

    /// The public half as a JWK, as B2C publishes it.
    pub(crate) fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kid": self.kid,
            "use": "sig",
            "kty": "RSA",
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key as a SubjectPublicKeyInfo PEM: the text an HS256-confusion attacker uses as secret.
    pub(crate) fn public_pem(&self) -> String {
        let der = self.pair.public_key().as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .unwrap();
        signature
    }
}

/// `base64url(header).base64url(claims)`.
pub(crate) fn signing_input(header: &impl Serialize, claims: &impl Serialize) -> String {
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{claims}")
}

/// A compact JWS: signing input, a dot, the base64url signature.
pub(crate) fn compact(input: String, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

struct Keys {
    /// Signs new tokens; always published.
    current: Arc<SigningKey>,
    /// Published in the JWKS besides `current` (rotated-out keys until retired).
    previous: Vec<Arc<SigningKey>>,
    generation: usize,
}

struct Shared {
    base_url: String,
    issuer: String,
    keys: Mutex<Keys>,
    /// Never published: signs tokens that must be refused.
    pub(crate) rogue: SigningKey,
    down: AtomicBool,
    /// Milliseconds discovery and the JWKS wait before answering (a slow IdP).
    delay_ms: AtomicU64,
    discovery_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
    attacker_fetches: AtomicUsize,
    /// What the token endpoint answers (status, JSON body), and the forms it was posted.
    token_reply: Mutex<(u16, Value)>,
    token_requests: Mutex<Vec<HashMap<String, String>>>,
}

/// An OpenID Connect issuer on `127.0.0.1:<free port>`, shaped like an Azure AD B2C policy.
///
/// Serves `/.well-known/openid-configuration` and the JWKS at `/discovery/v2.0/keys`; the
/// attacker's own JWKS (for `jku` attacks) at `/attacker/keys`, counted separately so a test
/// can prove it was never fetched. Stops serving when dropped.
pub struct TestIssuer {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIssuer {
    /// Generates a signing key and starts serving. Needs a Tokio runtime.
    pub async fn start() -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base_url = format!("http://{addr}");
        let (current, rogue) = tokio::task::spawn_blocking(|| {
            (
                SigningKey::generate(kid(1)),
                SigningKey::generate("rogue-key".into()),
            )
        })
        .await
        .unwrap();
        let shared = Arc::new(Shared {
            issuer: format!("{base_url}/{TENANT_ID}/v2.0/"),
            base_url,
            keys: Mutex::new(Keys {
                current: Arc::new(current),
                previous: Vec::new(),
                generation: 1,
            }),
            rogue,
            down: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            discovery_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            attacker_fetches: AtomicUsize::new(0),
            token_reply: Mutex::new((400, json!({"error": "invalid_grant"}))),
            token_requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/discovery/v2.0/keys", get(jwks))
            .route("/attacker/keys", get(attacker_jwks))
            .route("/oauth2/v2.0/token", axum::routing::post(token))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestIssuer { shared, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The metadata URL to configure validators with.
    pub fn openid_config_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.base_url)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/discovery/v2.0/keys", self.shared.base_url)
    }

    /// The authorize endpoint advertised in the metadata.
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/oauth2/v2.0/authorize", self.shared.base_url)
    }

    /// The `iss` of every token: `http://127.0.0.1:<port>/<tenant id>/v2.0/`, B2C's shape.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The `kid` tokens are currently signed with.
    pub fn current_kid(&self) -> String {
        self.current().kid.clone()
    }

    fn current(&self) -> Arc<SigningKey> {
        self.shared.keys.lock().unwrap().current.clone()
    }

    /// RS256 token with the current key and `{"alg":"RS256","typ":"JWT","kid":<current>}`.
    pub fn mint(&self, claims: &Value) -> String {
        let key = self.current();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.kid});
        let input = signing_input(&header, claims);
        let signature = key.sign(input.as_bytes());
        compact(input, &signature)
    }

    /// Signs with the current key under any header: a `jsonwebtoken::Header` or raw JSON
    /// (`json!({"alg": "RS256", "kid": "…", "crit": ["x"]})`). The header is not checked.
    pub fn mint_with_header(&self, header: &impl Serialize, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = self.current().sign(input.as_bytes());
        compact(input, &signature)
    }

    /// Signs raw claim bytes (not necessarily JSON, not necessarily UTF-8) with the current key.
    pub fn mint_raw_claims(&self, header: &impl Serialize, claims: &[u8]) -> String {
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let signature = self.current().sign(input.as_bytes());
        compact(input, &signature)
    }

    /// The current key's public JWK, as published.
    pub fn current_jwk(&self) -> Value {
        self.current().jwk()
    }

    /// Signs with a key that is NOT in the JWKS, under any header (use the current kid to make
    /// it look legitimate). Every validator must refuse the result.
    pub fn mint_with_unpublished_key(&self, header: &impl Serialize, claims: &Value) -> String {
        let input = signing_input(header, claims);
        compact(input.clone(), &self.shared.rogue.sign(input.as_bytes()))
    }

    /// The unpublished key's public JWK (what an attacker would embed or serve from `jku`).
    pub fn unpublished_jwk(&self) -> Value {
        self.shared.rogue.jwk()
    }

    /// The current public key as SPKI PEM (the secret of the HS256 key-confusion attack).
    pub fn public_key_pem(&self) -> String {
        self.current().public_pem()
    }

    /// Publishes a new key and signs with it from now on; the old key stays published until
    /// [`retire_old_keys`](Self::retire_old_keys), as a real IdP's rollover does. Returns the new kid.
    pub async fn rotate_key(&self) -> String {
        let generation = self.shared.keys.lock().unwrap().generation + 1;
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(kid(generation)))
            .await
            .unwrap();
        let kid = key.kid.clone();
        let mut keys = self.shared.keys.lock().unwrap();
        let old = std::mem::replace(&mut keys.current, Arc::new(key));
        keys.previous.push(old);
        keys.generation = generation;
        kid
    }

    /// Stops publishing every key but the current one.
    pub fn retire_old_keys(&self) {
        self.shared.keys.lock().unwrap().previous.clear();
    }

    /// While down, discovery and the JWKS answer `503 Service Unavailable`.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Discovery and the JWKS answer only after `delay` (a slow IdP, e.g. at a validator's start).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The token endpoint answers `status` with `body` from now on (at first 400 `invalid_grant`).
    pub fn set_token_reply(&self, status: u16, body: Value) {
        *self.shared.token_reply.lock().unwrap() = (status, body);
    }

    /// The forms posted to the token endpoint so far.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.shared.token_requests.lock().unwrap().clone()
    }

    /// Requests for the metadata so far (including those answered 503).
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Requests for the JWKS so far (including those answered 503).
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Requests for the attacker's JWKS (`jku`/`x5u` targets): must stay 0.
    pub fn attacker_fetches(&self) -> usize {
        self.shared.attacker_fetches.load(Ordering::SeqCst)
    }

    /// Claims of a B2C user access token, valid for one hour:
    /// `aud`, `iss`, `sub` = `oid`, `scp` (space-separated), `azp` = the SPA, `tfp`, `ver` "1.0",
    /// `iat`, `nbf`, `exp`, `auth_time`, `name`, `emails`.
    pub fn user_claims(&self, sub: &str, aud: &str, scopes: &[&str]) -> Value {
        self.claims(sub, aud, |now| {
            json!({
                "name": "Alice Example",
                "emails": ["alice@example.com"],
                "tfp": POLICY,
                "scp": scopes.join(" "),
                "azp": SPA_CLIENT_ID,
                "ver": "1.0",
                "auth_time": now,
            })
        })
    }

    /// Claims of a client-credentials (app-to-app, seed 004) token, valid for one hour:
    /// `sub` = `oid` = `azp` = the client id, `roles` as given, no `scp`, no `name`.
    pub fn app_claims(&self, client_id: &str, aud: &str, roles: &[&str]) -> Value {
        self.claims(client_id, aud, |_| {
            json!({
                "azp": client_id,
                "roles": roles,
                "ver": "2.0",
            })
        })
    }

    /// Claims of a B2C ID token for the SPA: `aud` is the SPA's client id, with a `nonce`.
    pub fn id_token_claims(&self, sub: &str) -> Value {
        self.claims(sub, SPA_CLIENT_ID, |now| {
            json!({
                "name": "Alice Example",
                "emails": ["alice@example.com"],
                "tfp": POLICY,
                "nonce": "8f3c2a1b-nonce",
                "ver": "1.0",
                "auth_time": now,
            })
        })
    }

    /// What every token of this issuer carries — `iss`, one hour of `exp`/`nbf`/`iat`, `aud`,
    /// `sub` = `oid` — followed by the kind's own claims, `rest(now)`.
    fn claims(&self, sub: &str, aud: &str, rest: impl FnOnce(i64) -> Value) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer(),
            "exp": now + 3600,
            "nbf": now,
            "iat": now,
            "aud": aud,
            "sub": sub,
            "oid": sub,
        });
        if let (Some(target), Value::Object(fields)) = (claims.as_object_mut(), rest(now)) {
            target.extend(fields);
        }
        claims
    }

    pub(crate) fn rogue(&self) -> &SigningKey {
        &self.shared.rogue
    }
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "issuer is down (test)").into_response()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    shared.token_requests.lock().unwrap().push(form);
    let (status, body) = shared.token_reply.lock().unwrap().clone();
    let status = StatusCode::from_u16(status).unwrap();
    (status, Json(body)).into_response()
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    slow_down(&shared).await;
    if shared.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let base = &shared.base_url;
    Json(json!({
        "issuer": shared.issuer,
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "code id_token", "code token", "code id_token token", "id_token", "id_token token", "token", "token id_token"],
        "scopes_supported": ["openid"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["name", "emails", "sub", "oid", "tfp", "iss", "iat", "exp", "aud", "acr", "nonce", "auth_time"],
    }))
    .into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    slow_down(&shared).await;
    if shared.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let keys = shared.keys.lock().unwrap();
    let mut published: Vec<Value> = keys.previous.iter().map(|k| k.jwk()).collect();
    published.push(keys.current.jwk());
    Json(json!({ "keys": published })).into_response()
}

async fn slow_down(shared: &Shared) {
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
}

async fn attacker_jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.attacker_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "keys": [shared.rogue.jwk()] })).into_response()
}
