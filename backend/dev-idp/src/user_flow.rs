//! The user flow (B2C's "policy") a request runs: its canonical name, and the extractor that
//! resolves `/{tenant}/{policy}/…` once for every handler under such a path.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// A configured user flow's name as the configuration spells it (`B2C_1_signupsignin`): what
/// `tfp` carries and what codes and refresh tokens are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy(String);

impl Policy {
    /// Only [`AppState::resolve`] and the store (for names it resolved before) make one.
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Policy {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an endpoint answers a path whose tenant or user flow does not exist.
pub trait UnknownFlow: IntoResponse {
    fn unknown(tenant: &str, policy: &str) -> Self;
}

/// The user flow of a `/{tenant}/{policy}/…` path (tenant and policy matched case-insensitively,
/// as B2C does); a path naming none is refused with `R`'s answer.
pub struct Flow<R> {
    pub policy: Policy,
    refusal: PhantomData<fn() -> R>,
}

impl<R: UnknownFlow> FromRequestParts<Arc<AppState>> for Flow<R> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Path((tenant, policy)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match state.resolve(&tenant, &policy) {
            Some(policy) => Ok(Self {
                policy,
                refusal: PhantomData,
            }),
            None => Err(R::unknown(&tenant, &policy).into_response()),
        }
    }
}
