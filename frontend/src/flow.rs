//! The Authorization Code + PKCE flow's messages: the authorize URL, the redirect back, and the
//! token endpoint's form bodies. No I/O here, so every refusal is unit-tested.

use crate::client::Client;
use crate::discovery::ProviderMetadata;
use crate::{pkce, secret};
use oauth2::{AuthorizationCode, ClientId, CsrfToken, PkceCodeVerifier, RefreshToken, Scope};
use serde::{Deserialize, Serialize};
use shared::SpaConfig;
use std::fmt;
use url::form_urlencoded;

/// What a started sign-in leaves in sessionStorage until the browser comes back: the `state` the
/// answer must carry, the `nonce` the ID token must carry, the PKCE verifier, and what the
/// answer is redeemed with and returns to.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingSignIn {
    pub state: CsrfToken,
    pub nonce: CsrfToken,
    pub verifier: PkceCodeVerifier,
    pub redirect_uri: String,
    /// The user flow when not the sign-up/sign-in one (its code is redeemed at its own endpoint).
    pub flow: Option<String>,
    /// The page's path when the sign-in started (the redirect URI is always the site root).
    pub return_to: String,
    /// `prompt=none`: a refusal means "no session at the IdP", not an error to show.
    pub silent: bool,
}

/// How a sign-in is started, and as which client.
#[derive(Debug, Clone, Copy)]
pub struct Start<'a> {
    pub client: &'a Client,
    pub flow: Option<&'a str>,
    pub return_to: &'a str,
    pub silent: bool,
}

impl<'a> Start<'a> {
    /// An interactive sign-up/sign-in that returns to the site root.
    pub fn sign_in(client: &'a Client) -> Self {
        Self {
            client,
            flow: None,
            return_to: "/",
            silent: false,
        }
    }
}

/// A path of this site to go back to: `/…` but not `//host` (another origin), else the root.
pub fn local_path(path: &str) -> &str {
    let local = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    if local { path } else { "/" }
}

/// `openid offline_access` (an ID token and a refresh token) plus the API scopes from config.json.
pub fn scopes(config: &SpaConfig) -> Vec<Scope> {
    let mut names = vec!["openid".to_owned(), "offline_access".to_owned()];
    for scope in &config.scopes {
        if !names.contains(scope) {
            names.push(scope.clone());
        }
    }
    names.into_iter().map(Scope::new).collect()
}

fn scope_param(config: &SpaConfig) -> String {
    let mut param = String::new();
    for scope in scopes(config) {
        if !param.is_empty() {
            param.push(' ');
        }
        param.push_str(scope.as_str());
    }
    param
}

/// Starts a sign-in: fresh state, nonce and PKCE pair, and the URL to send the browser to.
/// `None` if the browser offers no CSPRNG (then there is no safe sign-in to start).
pub fn begin(
    metadata: &ProviderMetadata,
    config: &SpaConfig,
    start: Start<'_>,
) -> Option<(String, PendingSignIn)> {
    let (challenge, verifier) = pkce::new_pair()?;
    let redirect_uri = start.client.redirect_uri.as_str();
    let pending = PendingSignIn {
        state: CsrfToken::new(secret::new()?),
        nonce: CsrfToken::new(secret::new()?),
        verifier,
        redirect_uri: redirect_uri.to_owned(),
        flow: start.flow.map(str::to_owned),
        return_to: local_path(start.return_to).to_owned(),
        silent: start.silent,
    };
    let client_id = &start.client.id;
    let mut query = form_urlencoded::Serializer::new(String::new());
    if start.silent {
        query.append_pair("prompt", "none");
    }
    let query = query
        .append_pair("client_id", client_id.as_str())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        // The fragment never reaches the static host's logs (and is what MSAL uses with B2C).
        .append_pair("response_mode", "fragment")
        .append_pair("scope", &scope_param(config))
        .append_pair("state", pending.state.secret())
        .append_pair("nonce", pending.nonce.secret())
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", pkce::METHOD)
        .finish();
    Some((
        with_query(&metadata.authorization_endpoint, &query),
        pending,
    ))
}

/// Appends a query to an endpoint that may already have one (B2C's `?p=policy` form).
fn with_query(endpoint: &str, query: &str) -> String {
    let mut url = String::from(endpoint);
    url.push(if endpoint.contains('?') { '&' } else { '?' });
    url.push_str(query);
    url
}

/// What the identity provider put on the redirect URI, read from the fragment or the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    Code {
        code: String,
        state: Option<String>,
    },
    Error {
        error: String,
        description: Option<String>,
        state: Option<String>,
    },
}

/// Reads `code`/`error` and `state` from `location.hash` or `location.search`; `None` on an
/// ordinary page load.
pub fn parse_redirect(search: &str, hash: &str) -> Option<Redirect> {
    [hash.trim_start_matches('#'), search.trim_start_matches('?')]
        .into_iter()
        .find_map(parse_params)
}

fn parse_params(params: &str) -> Option<Redirect> {
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (key, value) in form_urlencoded::parse(params.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        slot.get_or_insert(value.into_owned());
    }
    match (error, code) {
        (Some(error), _) => Some(Redirect::Error {
            error,
            description,
            state,
        }),
        (None, Some(code)) => Some(Redirect::Code { code, state }),
        (None, None) => None,
    }
}

/// Why a sign-in did not complete; `Display` is the sentence the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// A redirect arrived, but this tab started no sign-in (or already used its state).
    NoPendingSignIn,
    StateMissing,
    StateMismatch,
    /// The identity provider refused; already in plain words.
    Provider(String),
    /// "Forgot your password?" on the sign-in page (B2C's `AADB2C90118`): start the reset flow.
    ForgotPassword,
    /// A silent sign-in found no session at the identity provider.
    NoIdpSession,
    /// The token endpoint refused or answered something unusable.
    Token(String),
    /// The ID token failed a check (nonce, iss, aud, exp, shape).
    IdToken(String),
}

impl fmt::Display for SignInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPendingSignIn => f.write_str(
                "Sign-in failed: this answer does not belong to a sign-in started in this tab. Please sign in again.",
            ),
            Self::StateMissing => f.write_str(
                "Sign-in failed: the identity provider's answer has no state. Please sign in again.",
            ),
            Self::StateMismatch => f.write_str(
                "Sign-in failed: the identity provider's answer does not match this sign-in. Please sign in again.",
            ),
            Self::Provider(text) => f.write_str(text),
            Self::ForgotPassword => f.write_str(&crate::status::idp_error_text(
                "access_denied",
                Some(FORGOT_PASSWORD),
            )),
            Self::NoIdpSession => f.write_str(crate::status::SIGNED_OUT),
            Self::Token(why) => write!(f, "Sign-in failed: {why}"),
            Self::IdToken(why) => write!(f, "Sign-in failed: the ID token was refused ({why})."),
        }
    }
}

/// Checks the redirect against the sign-in this tab started and yields the authorization code.
/// State is compared for errors too, so nobody can put words on the page with a crafted link.
pub fn accept_redirect(
    redirect: Redirect,
    pending: Option<&PendingSignIn>,
) -> Result<AuthorizationCode, SignInError> {
    let pending = pending.ok_or(SignInError::NoPendingSignIn)?;
    let state = match &redirect {
        Redirect::Code { state, .. } | Redirect::Error { state, .. } => state.as_deref(),
    };
    let state = state.ok_or(SignInError::StateMissing)?;
    if state != pending.state.secret() {
        return Err(SignInError::StateMismatch);
    }
    let (error, description) = match redirect {
        Redirect::Code { code, .. } => return Ok(AuthorizationCode::new(code)),
        Redirect::Error {
            error, description, ..
        } => (error, description),
    };
    let description = description.unwrap_or_default();
    if pending.silent && SILENT_REFUSALS.contains(&error.as_str()) {
        return Err(SignInError::NoIdpSession);
    }
    if description.trim_start().starts_with(FORGOT_PASSWORD) {
        return Err(SignInError::ForgotPassword);
    }
    Err(SignInError::Provider(crate::status::idp_error_text(
        &error,
        Some(&description),
    )))
}

/// B2C's code for "Forgot your password?" on the sign-up/sign-in page.
const FORGOT_PASSWORD: &str = "AADB2C90118";

/// What `prompt=none` gets when the user has to interact (OpenID Connect Core §3.1.2.6).
const SILENT_REFUSALS: [&str; 3] = ["login_required", "interaction_required", "consent_required"];

/// The token endpoint's form for redeeming the code (RFC 6749 §4.1.3 + RFC 7636 §4.5).
pub fn code_exchange_body(
    config: &SpaConfig,
    client_id: &ClientId,
    code: &AuthorizationCode,
    pending: &PendingSignIn,
) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("client_id", client_id.as_str())
        .append_pair("code", code.secret())
        .append_pair("redirect_uri", &pending.redirect_uri)
        .append_pair("code_verifier", pending.verifier.secret())
        .append_pair("scope", &scope_param(config))
        .finish()
}

/// The token endpoint's form for silent renewal (RFC 6749 §6).
pub fn refresh_body(
    config: &SpaConfig,
    client_id: &ClientId,
    refresh_token: &RefreshToken,
) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", client_id.as_str())
        .append_pair("refresh_token", refresh_token.secret())
        .append_pair("scope", &scope_param(config))
        .finish()
}

/// The end-session URL (OpenID Connect RP-Initiated Logout) or `None` if the provider has none.
pub fn end_session_url(
    metadata: &ProviderMetadata,
    client_id: &ClientId,
    post_logout_redirect_uri: &str,
    id_token: Option<&str>,
) -> Option<String> {
    let endpoint = metadata.end_session_endpoint.as_deref()?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
        .append_pair("client_id", client_id.as_str());
    if let Some(id_token) = id_token {
        query.append_pair("id_token_hint", id_token);
    }
    Some(with_query(endpoint, &query.finish()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn config() -> SpaConfig {
        SpaConfig::from_json(include_str!("../config.json")).unwrap()
    }

    fn spa() -> Client {
        Client::spa(&config(), "http://127.0.0.1:8080/")
    }

    fn metadata(authorize: &str) -> ProviderMetadata {
        ProviderMetadata {
            issuer: "http://127.0.0.1:7010/tenant/v2.0/".into(),
            authorization_endpoint: authorize.into(),
            token_endpoint: "http://127.0.0.1:7010/token".into(),
            end_session_endpoint: Some("http://127.0.0.1:7010/logout".into()),
        }
    }

    fn query_of(url: &str) -> Vec<(String, String)> {
        let query = url.split_once('?').unwrap().1;
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn get<'a>(params: &'a [(String, String)], key: &str) -> &'a str {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn authorize_url_carries_pkce_state_nonce_and_scopes() {
        let (url, pending) = begin(
            &metadata("http://127.0.0.1:7010/authorize"),
            &config(),
            Start::sign_in(&spa()),
        )
        .unwrap();
        assert!(url.starts_with("http://127.0.0.1:7010/authorize?"));
        let params = query_of(&url);
        assert_eq!(get(&params, "response_type"), "code");
        assert_eq!(
            get(&params, "client_id"),
            "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b"
        );
        assert_eq!(get(&params, "redirect_uri"), "http://127.0.0.1:8080/");
        assert_eq!(
            get(&params, "scope"),
            "openid offline_access https://devtenant.onmicrosoft.com/hello-api/accessapp"
        );
        assert_eq!(get(&params, "state"), pending.state.secret());
        assert_eq!(get(&params, "nonce"), pending.nonce.secret());
        assert_eq!(get(&params, "code_challenge_method"), "S256");
        assert_eq!(
            get(&params, "code_challenge"),
            pkce::challenge_for(&pending.verifier).unwrap()
        );
        assert_ne!(pending.state.secret(), pending.nonce.secret());
    }

    #[test]
    fn the_console_signs_in_as_its_own_client() {
        let console = Client::console(&config(), "http://127.0.0.1:8080/").unwrap();
        let start = Start {
            return_to: "/console",
            ..Start::sign_in(&console)
        };
        let (url, pending) = begin(
            &metadata("http://127.0.0.1:7010/authorize"),
            &config(),
            start,
        )
        .unwrap();
        let params = query_of(&url);
        assert_eq!(get(&params, "client_id"), console.id.as_str());
        assert_ne!(console.id, spa().id);
        assert_eq!(
            get(&params, "redirect_uri"),
            "http://127.0.0.1:8080/console"
        );
        assert_eq!(pending.redirect_uri, "http://127.0.0.1:8080/console");
        assert_eq!(pending.return_to, "/console");
        let body = code_exchange_body(
            &config(),
            &console.id,
            &AuthorizationCode::new("c".into()),
            &pending,
        );
        let params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(get(&params, "client_id"), console.id.as_str());
        assert_eq!(
            get(&params, "redirect_uri"),
            "http://127.0.0.1:8080/console"
        );
    }

    #[test]
    fn authorize_url_keeps_a_policy_query() {
        let (url, _) = begin(
            &metadata("https://t.b2clogin.com/t.onmicrosoft.com/oauth2/v2.0/authorize?p=B2C_1_x"),
            &config(),
            Start::sign_in(&spa()),
        )
        .unwrap();
        assert!(url.contains("authorize?p=B2C_1_x&client_id="));
    }

    fn pending() -> PendingSignIn {
        PendingSignIn {
            state: CsrfToken::new("the-state".into()),
            nonce: CsrfToken::new("the-nonce".into()),
            verifier: PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into()),
            redirect_uri: "http://127.0.0.1:8080/".into(),
            flow: None,
            return_to: "/".into(),
            silent: false,
        }
    }

    fn error_redirect(error: &str, description: &str) -> Redirect {
        Redirect::Error {
            error: error.into(),
            description: Some(description.into()),
            state: Some("the-state".into()),
        }
    }

    #[test]
    fn forgot_password_and_silent_refusals_are_told_apart() {
        let forgot = error_redirect(
            "access_denied",
            "AADB2C90118: The user has forgotten their password.",
        );
        assert_eq!(
            accept_redirect(forgot, Some(&pending())).unwrap_err(),
            SignInError::ForgotPassword
        );
        let no_session = error_redirect("login_required", "AADB2C90077: no session");
        let silent = PendingSignIn {
            silent: true,
            ..pending()
        };
        assert_eq!(
            accept_redirect(no_session.clone(), Some(&silent)).unwrap_err(),
            SignInError::NoIdpSession
        );
        // Interactive, the same answer is an error to show; and a foreign state is still refused.
        assert!(matches!(
            accept_redirect(no_session, Some(&pending())),
            Err(SignInError::Provider(_))
        ));
        let foreign = Redirect::Error {
            error: "access_denied".into(),
            description: Some("AADB2C90118: forgot".into()),
            state: Some("other".into()),
        };
        assert_eq!(
            accept_redirect(foreign, Some(&pending())).unwrap_err(),
            SignInError::StateMismatch
        );
    }

    #[test]
    fn silent_sign_ins_ask_for_no_prompt_and_remember_where_to_return() {
        let client = spa();
        let start = Start {
            flow: Some("B2C_1_profileedit"),
            return_to: "/profile",
            silent: true,
            ..Start::sign_in(&client)
        };
        let (url, pending) = begin(
            &metadata("http://127.0.0.1:7010/authorize"),
            &config(),
            start,
        )
        .unwrap();
        assert_eq!(get(&query_of(&url), "prompt"), "none");
        assert_eq!(pending.flow.as_deref(), Some("B2C_1_profileedit"));
        assert_eq!(pending.return_to, "/profile");
        assert!(pending.silent);
        let (url, _) = begin(
            &metadata("http://127.0.0.1:7010/authorize"),
            &config(),
            Start::sign_in(&spa()),
        )
        .unwrap();
        assert!(!url.contains("prompt="));
    }

    #[test]
    fn only_paths_of_this_site_are_returned_to() {
        assert_eq!(local_path("/profile"), "/profile");
        for foreign in [
            "//evil.example/x",
            "https://evil.example/",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(local_path(foreign), "/", "{foreign}");
        }
    }

    #[test]
    fn pending_sign_in_survives_session_storage() {
        let (_, started) = begin(
            &metadata("http://127.0.0.1:7010/authorize"),
            &config(),
            Start::sign_in(&spa()),
        )
        .unwrap();
        let text = serde_json::to_string(&started).unwrap();
        let back: PendingSignIn = serde_json::from_str(&text).unwrap();
        assert_eq!(back.state.secret(), started.state.secret());
        assert_eq!(back.nonce.secret(), started.nonce.secret());
        assert_eq!(back.verifier.secret(), started.verifier.secret());
        assert_eq!(back.redirect_uri, "http://127.0.0.1:8080/");
        let tampered = text.replace("\"nonce\"", "\"other\"");
        assert!(serde_json::from_str::<PendingSignIn>(&tampered).is_err());
        assert!(serde_json::from_str::<PendingSignIn>("garbage").is_err());
    }

    #[test]
    fn redirect_with_matching_state_yields_the_code() {
        let redirect = parse_redirect("", "#code=abc%2Bdef&state=the-state").unwrap();
        let code = accept_redirect(redirect, Some(&pending())).unwrap();
        assert_eq!(code.secret(), "abc+def");
        // The query form works too.
        let redirect = parse_redirect("?state=the-state&code=xyz", "").unwrap();
        assert_eq!(
            accept_redirect(redirect, Some(&pending()))
                .unwrap()
                .secret(),
            "xyz"
        );
    }

    #[test]
    fn redirect_with_wrong_or_missing_state_is_refused() {
        let wrong = parse_redirect("", "#code=abc&state=other").unwrap();
        assert_eq!(
            accept_redirect(wrong, Some(&pending())).unwrap_err(),
            SignInError::StateMismatch
        );
        let missing = parse_redirect("", "#code=abc").unwrap();
        assert_eq!(
            accept_redirect(missing, Some(&pending())).unwrap_err(),
            SignInError::StateMissing
        );
        let unexpected = parse_redirect("", "#code=abc&state=the-state").unwrap();
        assert_eq!(
            accept_redirect(unexpected, None).unwrap_err(),
            SignInError::NoPendingSignIn
        );
    }

    #[test]
    fn provider_errors_come_back_in_plain_words_only_for_our_state() {
        let cancelled = parse_redirect(
            "",
            "#error=access_denied&error_description=AADB2C90091%3A+The+user+has+cancelled+entering+self-asserted+information.&state=the-state",
        )
        .unwrap();
        match accept_redirect(cancelled, Some(&pending())).unwrap_err() {
            SignInError::Provider(text) => assert!(text.contains("cancelled"), "{text}"),
            other => panic!("{other:?}"),
        }
        let forged =
            parse_redirect("?error=access_denied&error_description=Call+0800+now", "").unwrap();
        assert_eq!(
            accept_redirect(forged, Some(&pending())).unwrap_err(),
            SignInError::StateMissing
        );
    }

    #[test]
    fn ordinary_page_loads_are_not_redirects() {
        assert_eq!(parse_redirect("", ""), None);
        assert_eq!(parse_redirect("?foo=bar", "#section"), None);
    }

    #[test]
    fn token_bodies_carry_verifier_and_refresh_token() {
        let body = code_exchange_body(
            &config(),
            &spa().id,
            &AuthorizationCode::new("c o".into()),
            &pending(),
        );
        let params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(get(&params, "grant_type"), "authorization_code");
        assert_eq!(get(&params, "code"), "c o");
        assert_eq!(
            get(&params, "code_verifier"),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        assert_eq!(get(&params, "redirect_uri"), "http://127.0.0.1:8080/");
        let body = refresh_body(&config(), &spa().id, &RefreshToken::new("rt".into()));
        let params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(get(&params, "grant_type"), "refresh_token");
        assert_eq!(get(&params, "refresh_token"), "rt");
    }

    #[test]
    fn end_session_url_has_hint_and_return_address() {
        let url = end_session_url(
            &metadata("http://127.0.0.1:7010/authorize"),
            &spa().id,
            "http://127.0.0.1:8080/",
            Some("the.id.token"),
        )
        .unwrap();
        let params = query_of(&url);
        assert_eq!(
            get(&params, "post_logout_redirect_uri"),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(get(&params, "id_token_hint"), "the.id.token");
    }
}
