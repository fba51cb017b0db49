//! Access restrictions: CIDR allow rules with an implicit deny, judged on the socket's peer
//! address only — never on `X-Forwarded-For` or any other header a client can write.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::AppState;
use crate::refusal::Refusal;

#[derive(Debug, Clone)]
pub struct AllowList {
    networks: Vec<IpNet>,
}

impl AllowList {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self { networks }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }
}

/// Middleware: 403 unless the peer is allow-listed (when a list is configured).
pub async fn allow_listed(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(list) = &state.allow_list else {
        return next.run(request).await;
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical());
    match peer {
        Some(ip) if list.allows(ip) => next.run(request).await,
        Some(ip) => {
            tracing::info!(%ip, "caller IP not allow-listed");
            Refusal::IpDenied(ip).into_response()
        }
        // Served without peer addresses: nobody can be judged, so nobody passes.
        None => {
            tracing::error!(
                "no peer address available: serve with into_make_service_with_connect_info"
            );
            Refusal::IpDenied(IpAddr::from([0, 0, 0, 0])).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cidrs_allow_and_everything_else_is_denied() {
        let list = AllowList::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(list.allows("10.200.3.4".parse().unwrap()));
        assert!(list.allows("::1".parse().unwrap()));
        assert!(!list.allows("127.0.0.1".parse().unwrap()));
        assert!(!list.allows("11.0.0.1".parse().unwrap()));
        assert!(
            list.allows("::ffff:10.1.1.1".parse().unwrap()),
            "IPv4-mapped IPv6"
        );
        assert!(!AllowList::new(vec![]).allows("10.0.0.1".parse().unwrap()));
    }
}
