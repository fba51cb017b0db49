//! Pinning the gateway to one Azure Front Door profile, as Microsoft's guidance does with APIM's
//! `check-header`: `GATEWAY_FRONT_DOOR_ID` set, a request without exactly that `X-Azure-FDID`
//! gets APIM's 403. Front Door's addresses are shared by every customer, so an address check
//! alone (`GATEWAY_TRUSTED_PROXIES`) would let anyone's Front Door profile in; the id is what
//! makes the traffic ours. Compared exactly (case included) and in constant time.

use crate::config::{ConfigError, bad};
use crate::error::GatewayError;
use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub const VAR: &str = "GATEWAY_FRONT_DOOR_ID";
pub const HEADER: HeaderName = HeaderName::from_static("x-azure-fdid");

/// The Front Door profile's id (a GUID in Azure; any printable token is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontDoorId(String);

impl FrontDoorId {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                VAR,
                "must be the Front Door id: printable ASCII without spaces, at most 128 characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn matches(&self, request: &Request) -> bool {
        let mut values = request.headers().get_all(&HEADER).iter();
        // One header with the id; a second one is a forgery's way of hiding behind ours.
        match (values.next(), values.next()) {
            (Some(value), None) => bool::from(value.as_bytes().ct_eq(self.0.as_bytes())),
            _ => false,
        }
    }
}

/// `check-header name="X-Azure-FDID"` as middleware.
pub async fn check(State(id): State<Arc<FrontDoorId>>, request: Request, next: Next) -> Response {
    if id.matches(&request) {
        next.run(request).await
    } else {
        tracing::info!("check-header: X-Azure-FDID missing or not ours");
        GatewayError::Forbidden.into_response()
    }
}
