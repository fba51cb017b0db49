//! A standard OpenID Connect relying-party library (`openidconnect`), used as any app would:
//! discover from the user flow's metadata, sign in (driving the HTML form), exchange the code with PKCE,
//! validate the ID token (signature via JWKS, iss, aud, nonce, at_hash), refresh, and validate
//! the access token against the same JWKS.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet as JsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

/// The library's HTTP hook, backed by reqwest (no redirects, as the library advises).
async fn http(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).unwrap())
}

#[tokio::test]
async fn an_openidconnect_client_discovers_signs_in_exchanges_refreshes_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start(config(dir.path())).await;
    let reqwest_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http_client = |request: HttpRequest| http(&reqwest_client, request);

    // Discovery from the user flow's metadata URL: B2C's issuer names no policy, so the
    // issuer-relative document is the tenant's, not the user flow's (as in Azure).
    let metadata_url = format!("{}/v2.0/.well-known/openid-configuration", idp.policy_url());
    let (_, document) = get_json(&metadata_url).await;
    let metadata: CoreProviderMetadata = serde_json::from_value(document).unwrap();
    assert_eq!(metadata.issuer(), &IssuerUrl::new(idp.issuer()).unwrap());
    let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &http_client)
        .await
        .unwrap();
    let metadata = metadata.set_jwks(jwks);
    let client =
        CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(SPA.to_owned()), None)
            .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".to_owned()))
        .add_scope(Scope::new(API_SCOPE.to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    // The user signs in on the HTML form.
    let mut browser = Browser::new();
    let redirect = browser
        .sign_in(&idp, authorize_url.as_str(), ALICE, ALICE_PASSWORD)
        .await;
    let params = response_params(&redirect.location(), false);
    assert_eq!(&params["state"], csrf_state.secret());

    let response = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .unwrap();
    let scopes: Vec<String> = response
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(scopes.contains(&API_SCOPE.to_owned()), "{scopes:?}");

    let verifier = client.id_token_verifier();
    let id_token = response.id_token().unwrap();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.issuer().as_str(), idp.issuer());
    let expected_hash = claims.access_token_hash().unwrap();
    let actual_hash = AccessTokenHash::from_token(
        response.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual_hash, expected_hash);
    // A different nonce is refused by the library.
    assert!(
        id_token
            .claims(&verifier, &Nonce::new("other".to_owned()))
            .is_err()
    );

    // The access token validates against the discovered JWKS for the API audience.
    let jwks = serde_json::to_value(metadata.jwks()).unwrap();
    let at = verify(response.access_token().secret(), &jwks, &idp.issuer(), API).unwrap();
    assert_eq!(at["sub"].as_str().unwrap(), claims.subject().as_str());

    // Refresh: a new pair, and the new ID token validates too (no nonce on refresh).
    let refreshed = client
        .exchange_refresh_token(response.refresh_token().unwrap())
        .unwrap()
        .request_async(&http_client)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        response.refresh_token().unwrap().secret()
    );
    let refreshed_id = refreshed.id_token().unwrap();
    let refreshed_claims = refreshed_id
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(refreshed_claims.subject(), claims.subject());
    verify(refreshed.access_token().secret(), &jwks, &idp.issuer(), API).unwrap();

    // Replaying the first refresh token is an RFC 6749 error the library understands.
    let replay = client
        .exchange_refresh_token(response.refresh_token().unwrap())
        .unwrap()
        .request_async(&http_client)
        .await;
    match replay {
        Err(openidconnect::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_grant");
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    idp.stop().await;
}
