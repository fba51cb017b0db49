//! API Management's `ip-filter` from `GATEWAY_IP_FILTER`: `allow:10.0.0.0/8,192.0.2.7` lets
//! only those callers through, `forbid:…` refuses exactly those. A refused call is APIM's 403
//! `{"statusCode":403,"message":"Forbidden"}`, before validate-jwt, so a filtered caller costs no
//! signature check. The caller is the [`ClientIp`] (the socket peer, or the client behind a trusted
//! proxy), never an address a client wrote itself.

use crate::client_addr::{ClientIp, parse_networks};
use crate::config::{ConfigError, bad};
use crate::error::GatewayError;
use axum::Extension;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

pub const VAR: &str = "GATEWAY_IP_FILTER";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Forbid,
}

impl Action {
    /// The `action` attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Forbid => "forbid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpFilter {
    pub action: Action,
    pub networks: Vec<IpNet>,
}

impl IpFilter {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let (action, list) = text
            .split_once(':')
            .ok_or_else(|| bad(VAR, "expected `allow:` or `forbid:` before the addresses"))?;
        let action = match action.trim() {
            "allow" => Action::Allow,
            "forbid" => Action::Forbid,
            other => {
                return Err(bad(
                    VAR,
                    format!("`{other}` is neither `allow` nor `forbid`"),
                ));
            }
        };
        Ok(Self {
            action,
            networks: parse_networks(VAR, list)?,
        })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let listed = self.networks.iter().any(|net| net.contains(&ip));
        match self.action {
            Action::Allow => listed,
            Action::Forbid => !listed,
        }
    }
}

/// The policy as middleware. Without a [`ClientIp`] (the layer order is broken) nobody passes.
pub async fn apply(
    State(filter): State<Arc<IpFilter>>,
    client: Option<Extension<ClientIp>>,
    request: Request,
    next: Next,
) -> Response {
    match client {
        Some(Extension(ClientIp(ip))) if filter.permits(ip) => next.run(request).await,
        Some(Extension(ClientIp(ip))) => {
            tracing::info!(%ip, action = filter.action.as_str(), "ip-filter: refused");
            GatewayError::Forbidden.into_response()
        }
        None => {
            tracing::error!("ip-filter reached without a client address");
            GatewayError::Forbidden.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn allow_and_forbid_lists() {
        let allow = IpFilter::parse("allow:10.0.0.0/8, 192.0.2.7").unwrap();
        assert!(allow.permits("10.20.30.40".parse().unwrap()));
        assert!(allow.permits("192.0.2.7".parse().unwrap()));
        assert!(allow.permits("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!allow.permits("192.0.2.8".parse().unwrap()));
        let forbid = IpFilter::parse("forbid:192.0.2.0/24").unwrap();
        assert!(!forbid.permits("192.0.2.200".parse().unwrap()));
        assert!(forbid.permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_filters_are_named() {
        for text in [
            "10.0.0.0/8",
            "deny:10.0.0.0/8",
            "allow:",
            "allow:10.0.0.300",
            "forbid:a,b",
        ] {
            assert_eq!(IpFilter::parse(text).unwrap_err().var, VAR, "{text}");
        }
    }
}
