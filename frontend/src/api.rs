//! Calling the API through the gateway with the access token, renewing once on 401.

use crate::auth::{self, Provider};
use crate::fetch::{self, Response};
use crate::session::Session;
use crate::status::{self, Status};
use crate::{location, storage};

/// What a Call API click ends in.
pub enum Outcome {
    Show(Status),
    /// No usable session and renewal failed: the user must sign in again.
    SignInAgain,
}

pub async fn call(provider: &Provider) -> Outcome {
    let mut session = match storage::load_session(provider.client.keys) {
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
    let mut authorization = String::from("Bearer ");
    authorization.push_str(session.access_token.secret());
    fetch::get(&provider.config.api_url, Some(&authorization))
        .await
        .map_err(|e| status::network_failure(&e))
}

async fn read(response: Response) -> Status {
    let (ok, code) = (response.ok(), response.status());
    let content_type = fetch::header(&response, "content-type");
    let retry_after = fetch::header(&response, "retry-after");
    let body = match fetch::text(&response).await {
        Ok(body) => body,
        Err(e) => return status::network_failure(&e),
    };
    if ok {
        status::api_success(content_type.as_deref(), &body)
    } else {
        status::api_failure(code, retry_after.as_deref(), &body)
    }
}
