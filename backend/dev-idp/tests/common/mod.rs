//! Shared test support: run the provider in-process on 127.0.0.1:0 and drive it like a browser.
#![allow(clippy::unwrap_used, dead_code, unused_imports)]

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dev_idp::config::Config;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio::sync::oneshot;

pub use testkit::dev_tenant::{
    ALICE, ALICE_PASSWORD, API_CLIENT_ID as API, API_SCOPE_URI as API_SCOPE, APP_SCOPE_URI,
    DAEMON_CLIENT_ID as DAEMON, DAEMON_SECRET, SPA_CLIENT_ID as SPA, TENANT_ID,
};
/// RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// An extra redirect URI the tests register (nothing listens there: we read `Location`).
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const SPA_ORIGIN: &str = "http://127.0.0.1:9";

/// The built-in configuration with the test redirect URI and a private data directory.
pub fn config(dir: &Path) -> Config {
    let mut config = Config::builtin().unwrap();
    config.data_dir = dir.to_path_buf();
    config.port = 0;
    config.spas[0].redirect_uris.push(REDIRECT.to_owned());
    config.spas[0].post_logout_redirect_uris = Some(vec![REDIRECT.to_owned()]);
    config
}

pub struct Idp {
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Idp {
    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            dev_idp::serve(config, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let idp = Self {
            base,
            shutdown: Some(tx),
            handle: Some(handle),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(format!("{}/healthz", idp.base)).send().await
                && r.status().is_success()
            {
                return idp;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("dev-idp did not become ready");
    }

    /// A provider some test started as a process of its own at `base`; stopping it is the
    /// test's business.
    pub fn external(base: String) -> Self {
        Self {
            base,
            shutdown: None,
            handle: None,
        }
    }

    /// Stops the server and waits until it has released its database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }

    pub fn issuer(&self) -> String {
        format!("{}/{TENANT_ID}/v2.0/", self.base)
    }

    pub fn policy_url(&self) -> String {
        format!("{}/devtenant.onmicrosoft.com/b2c_1_signupsignin", self.base)
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.policy_url())
    }

    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let params: Vec<(&str, &str)> = vec![
            ("client_id", SPA),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            (
                "scope",
                "openid offline_access https://devtenant.onmicrosoft.com/hello-api/accessapp",
            ),
            ("state", "state-123"),
            ("nonce", "nonce-456"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let endpoint = format!("{}/oauth2/v2.0/authorize", self.policy_url());
        with_params(&endpoint, params, extra)
    }

    pub async fn jwks(&self) -> Value {
        reqwest::get(format!("{}/discovery/v2.0/keys", self.policy_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .unwrap_or_else(|| panic!("no Location; status {} body {}", self.status, self.body))
            .to_str()
            .unwrap()
            .to_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

/// A browser without JavaScript: keeps cookies, never follows redirects.
pub struct Browser {
    client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            client,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Response {
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Response {
            status: response.status(),
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Response {
        let r = self
            .client
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, url: &str, fields: &[(String, String)]) -> Response {
        self.post_with(url, fields, &[]).await
    }

    /// [`Browser::post`] with extra request headers.
    pub async fn post_with(
        &mut self,
        url: &str,
        fields: &[(String, String)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .post(url)
            .header("cookie", self.cookie_header())
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        self.finish(r).await
    }

    /// Fills the page's form (hidden fields kept) and submits it.
    pub async fn submit(&mut self, base: &str, page: &str, fields: &[(&str, &str)]) -> Response {
        let action = format!("{base}{}", Form::parse(page).action);
        self.submit_to(&action, page, fields).await
    }

    /// Posts the page's form (hidden fields kept, `fields` added) to another URL.
    pub async fn submit_to(&mut self, url: &str, page: &str, fields: &[(&str, &str)]) -> Response {
        let mut values = Form::parse(page).hidden;
        for (k, v) in fields {
            values.push(((*k).to_owned(), (*v).to_owned()));
        }
        self.post(url, &values).await
    }

    /// Follows the link with `id` on `page` (a path on the provider).
    pub async fn follow(&mut self, idp: &Idp, page: &Response, id: &str) -> Response {
        let href = link(&page.body, id);
        self.get(&format!("{}{href}", idp.base)).await
    }

    /// Opens the authorize URL and follows its "Sign up now" link: the sign-up page.
    pub async fn sign_up_page(&mut self, idp: &Idp) -> Response {
        let page = self.get(&idp.authorize_url(&[])).await;
        self.follow(idp, &page, "createAccount").await
    }

    /// Opens the authorize URL, signs in on the form, returns the redirect to the app.
    pub async fn sign_in(
        &mut self,
        idp: &Idp,
        authorize_url: &str,
        user: &str,
        password: &str,
    ) -> Response {
        let page = self.get(authorize_url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        self.submit(
            &idp.base,
            &page.body,
            &[("signInName", user), ("password", password)],
        )
        .await
    }
}

/// The first form on a page: where it posts and its hidden fields.
pub struct Form {
    pub action: String,
    pub hidden: Vec<(String, String)>,
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

impl Form {
    pub fn parse(html: &str) -> Self {
        let form_start = html.find("<form").expect("page has a form");
        let form_tag = &html[form_start..form_start + html[form_start..].find('>').unwrap()];
        let action = attribute(form_tag, "action").unwrap();
        let mut hidden = Vec::new();
        let mut rest = &html[form_start..];
        while let Some(i) = rest.find("<input") {
            let tag = &rest[i..i + rest[i..].find('>').unwrap()];
            if tag.contains("type=\"hidden\"") {
                hidden.push((
                    attribute(tag, "name").unwrap(),
                    attribute(tag, "value").unwrap(),
                ));
            }
            rest = &rest[i + 6..];
        }
        Self { action, hidden }
    }
}

/// The href of the link with `id` on the page.
pub fn link(html: &str, id: &str) -> String {
    let i = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let tag_start = html[..i].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    attribute(tag, "href").unwrap()
}

/// The parameters of a redirect's query (or, with `fragment`, its fragment).
pub fn response_params(location: &str, fragment: bool) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    let raw = if fragment {
        url.fragment().unwrap_or("").to_owned()
    } else {
        url.query().unwrap_or("").to_owned()
    };
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

/// The claims of a JWT, unverified.
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

pub fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

/// Verifies a JWT's signature against the JWKS and checks iss/aud/exp the way a resource would.
pub fn verify(jwt: &str, jwks: &Value, issuer: &str, audience: &str) -> Result<Value, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let kid = jsonwebtoken::decode_header(jwt)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} not in JWKS"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

/// POSTs a form to the token endpoint.
pub async fn token(idp: &Idp, fields: &[(&str, &str)]) -> Response {
    post_form(&idp.token_url(), fields).await
}

/// Status and JSON body of a GET.
pub async fn get_json(url: &str) -> (StatusCode, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// POSTs a form without cookies.
pub async fn post_form(url: &str, fields: &[(&str, &str)]) -> Response {
    let r = reqwest::Client::new()
        .post(url)
        .form(fields)
        .send()
        .await
        .unwrap();
    Response {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

/// POSTs a form to the token endpoint `url` as the daemon app, its `secret` in HTTP Basic.
pub async fn post_basic(url: &str, secret: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .basic_auth(DAEMON, Some(secret))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// The daemon's client-credentials request for the API (`{app id uri}/.default`), its `secret`
/// in HTTP Basic.
pub async fn daemon_token(url: &str, secret: &str) -> reqwest::Response {
    let fields = [
        ("grant_type", "client_credentials"),
        ("scope", APP_SCOPE_URI),
    ];
    post_basic(url, secret, &fields).await
}

/// Signs Alice in and redeems the code: the token response.
pub async fn alice_tokens(idp: &Idp) -> Value {
    let mut browser = Browser::new();
    let redirect = browser
        .sign_in(idp, &idp.authorize_url(&[]), ALICE, ALICE_PASSWORD)
        .await;
    let code = response_params(&redirect.location(), false)["code"].clone();
    let r = token(
        idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

pub const PASSWORD_RESET: &str = "b2c_1_passwordreset";
pub const PROFILE_EDIT: &str = "b2c_1_profileedit";

impl Idp {
    /// [`Idp::authorize_url`] for another user flow of the tenant.
    pub fn flow_authorize_url(&self, policy: &str, extra: &[(&str, &str)]) -> String {
        self.authorize_url(extra)
            .replace("/b2c_1_signupsignin/", &format!("/{policy}/"))
    }
}

/// Redeems `code` (from the app's redirect) at `policy`'s token endpoint.
pub async fn redeem(idp: &Idp, policy: &str, code: &str) -> Response {
    let url = idp
        .token_url()
        .replace("/b2c_1_signupsignin/", &format!("/{policy}/"));
    redeem_at(&url, code).await
}

/// Redeems the SPA's `code` at the token endpoint `url`.
pub async fn redeem_at(url: &str, code: &str) -> Response {
    post_form(
        url,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

/// `endpoint?params`, each of `extra` replacing the parameter of its name (an empty value drops it).
pub fn with_params<'a>(
    endpoint: &str,
    mut params: Vec<(&'a str, &'a str)>,
    extra: &[(&'a str, &'a str)],
) -> String {
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{endpoint}?{query}")
}

/// The text of the page's `#error` box, if any.
pub fn error_text(html: &str) -> Option<String> {
    let start = html.find("id=\"error\">")? + "id=\"error\">".len();
    let end = html[start..].find('<')? + start;
    Some(unescape(&html[start..end]))
}
