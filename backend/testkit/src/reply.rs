//! Reading a test request's answer.

/// Sends `request` and parses its answer as JSON, whatever the status; panics if either fails
/// (a set-up failure, or an answer that is not JSON where the test needs JSON).
pub async fn json_reply(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("request failed: {e}"));
    let (status, url) = (response.status(), response.url().clone());
    response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{status} from {url} is not JSON: {e}"))
}
