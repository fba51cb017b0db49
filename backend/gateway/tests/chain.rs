//! SPA's call through the real chain: gateway → the hello function (in process), both
//! validating the same in-test issuer's token, the gateway holding the function key.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer};

#[tokio::test]
async fn a_user_token_reaches_the_function_through_the_gateway() {
    let issuer = TestIssuer::start().await;
    let (hello_url, _stop_hello) = start_hello(&issuer).await;
    let gw = start_gateway(config_for(&issuer, &hello_url)).await;
    let client = client();
    let token = issuer.mint(&issuer.user_claims("chain-user", API_CLIENT_ID, &[API_SCOPE]));

    let (status, headers, body) = read(
        client
            .get(gw.hello_url())
            .header("origin", SPA_ORIGIN)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["access-control-allow-origin"], SPA_ORIGIN);
    let hello: shared::HelloResponse = serde_json::from_str(&body).unwrap();
    assert!(
        hello.message.starts_with("Hello World, time and date are "),
        "{}",
        hello.message
    );
    assert_eq!(hello.caller.subject, "chain-user");
    assert_eq!(hello.caller.scopes, [API_SCOPE]);

    // The function itself refuses the same call without the key only the gateway holds.
    let direct = client
        .get(format!("{hello_url}/api/hello"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);

    // An attacker's token stops at the gateway; the function never sees it.
    let forged = issuer.attack_tokens(API_CLIENT_ID).remove(0);
    let (status, _, _) = read(
        client
            .get(gw.hello_url())
            .bearer_auth(forged.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}
