//! API Management's `validate-jwt`: a bearer token in `Authorization`, signed by a key from one of
//! the configured openid-configurations, unexpired, for one of the audiences and issuers.
//! Every failure is the same 401 with APIM's body; the reason goes to the log, the token never.

use crate::client_addr::ClientIp;
use crate::error::GatewayError;
use crate::rate_limit::{self, IpThenSubject};
use axum::Extension;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// validate-jwt on `request`: its principal, also put into its extensions for the policies after
/// it (required claims are the validator's), or the 401.
pub async fn validate_jwt(
    validator: &Validator,
    request: &mut Request,
) -> Result<Arc<Principal>, GatewayError> {
    let token = bearer_token(request.headers()).map_err(|error| {
        tracing::info!(reason = %error.description(), "validate-jwt: refused");
        GatewayError::Unauthorized
    })?;
    // token-validation logs its own refusals (reason only).
    let principal = validator
        .validate(token)
        .await
        .map_err(|_| GatewayError::Unauthorized)?;
    request.extensions_mut().insert(principal.clone());
    Ok(principal)
}

/// What [`validate_jwt_then_rate_limit`] needs.
pub struct Admission {
    pub validator: Validator,
    /// The API's `rate-limit-by-key` policies, by IP then by subject.
    pub rate_limits: Arc<IpThenSubject>,
}

/// The layer (`from_fn_with_state`) of validate-jwt and then the API's two `rate-limit-by-key`
/// policies: adjacent in APIM's order, so one layer (as two `from_fn` layers they cost a boxed
/// future and a boxed service more per call). The validated caller goes on the response for the
/// access log.
pub async fn validate_jwt_then_rate_limit(
    State(admission): State<Arc<Admission>>,
    Extension(client): Extension<ClientIp>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match validate_jwt(&admission.validator, &mut request).await {
        Ok(principal) => principal,
        Err(refusal) => return refusal.into_response(),
    };
    let subject = AuthenticatedSubject(principal.clone());
    let mut response =
        rate_limit::by_ip_then_subject(&admission.rate_limits, client, &principal, request, next)
            .await;
    response.extensions_mut().insert(subject);
    response
}
