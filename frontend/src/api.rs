//! Calling the API through the gateway with the access token, renewing once on 401.

use crate::auth::{self, Provider};
use crate::session::Session;
use crate::status::{self, Status};
use crate::{location, storage};
use gloo_net::http::{Request, Response};

/// What a Call API click ends in.
pub enum Outcome {
    Show(Status),
    /// No usable session and renewal failed: the user must sign in again.
    SignInAgain,
}

pub async fn call(provider: &Provider) -> Outcome {
    let mut session = match storage::load_session() {
        Some(session) if session.is_fresh(location::now()) => session,
        Some(_) => match auth::renew(provider).await {
            Ok(session) => session,
            Err(_) => return Outcome::SignInAgain,
        },
        None => return Outcome::SignInAgain,
    };
    let mut renewed = false;
    loop {
        let response = match send(provider, &session).await {
            Ok(response) => response,
            Err(status) => return Outcome::Show(status),
        };
        // A 401 means the token was refused (revoked, expired early, keys rolled): renew and
        // retry exactly once; a second 401 is shown as the error it is.
        if response.status() == 401 && !renewed {
            renewed = true;
            match auth::renew(provider).await {
                Ok(next) => {
                    session = next;
                    continue;
                }
                Err(_) => return Outcome::SignInAgain,
            }
        }
        return Outcome::Show(read(response).await);
    }
}

async fn send(provider: &Provider, session: &Session) -> Result<Response, Status> {
    Request::get(&provider.config.api_url)
        .header(
            "Authorization",
            &format!("Bearer {}", session.access_token.secret()),
        )
        .send()
        .await
        .map_err(|e| status::network_failure(&e.to_string()))
}

async fn read(response: Response) -> Status {
    let headers = response.headers();
    let body = match response.text().await {
        Ok(body) => body,
        Err(e) => return status::network_failure(&e.to_string()),
    };
    if response.ok() {
        status::api_success(headers.get("content-type").as_deref(), &body)
    } else {
        status::api_failure(
            response.status(),
            headers.get("retry-after").as_deref(),
            &body,
        )
    }
}
