//! API Management's `validate-jwt`: a bearer token in `Authorization`, signed by a key from one of
//! the configured openid-configurations, unexpired, for one of the audiences and issuers.
//! Every failure is the same 401 with APIM's body; the reason goes to the log, the token never.

use crate::error::GatewayError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use token_validation::{Principal, Validator, bearer_token};

/// The validated caller, attached to the response so the access log can name its `sub`: the
/// principal itself (a reference count), not a copy of the subject per call.
#[derive(Debug, Clone)]
pub struct AuthenticatedSubject(pub Arc<Principal>);

impl AuthenticatedSubject {
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
}

pub async fn validate_jwt(
    State(validator): State<Validator>,
    mut request: Request,
    next: Next,
) -> Result<Response, GatewayError> {
    let principal = {
        let token = bearer_token(request.headers()).map_err(|error| {
            tracing::info!(reason = %error.description(), "validate-jwt: refused");
            GatewayError::Unauthorized
        })?;
        // token-validation logs its own refusals (reason only).
        validator
            .validate(token)
            .await
            .map_err(|_| GatewayError::Unauthorized)?
    };
    let subject = AuthenticatedSubject(principal.clone());
    request.extensions_mut().insert(principal);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(subject);
    Ok(response)
}
