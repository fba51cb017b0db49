//! Who the caller is, by address: the socket peer, or — only when that peer is one of
//! `GATEWAY_TRUSTED_PROXIES` (Front Door's ranges, a load balancer) — the right-most address in
//! `X-Forwarded-For` that is not itself a trusted proxy.
//!
//! Right-most, because each proxy appends the address it saw: everything left of the last
//! untrusted hop was written by someone we cannot vouch for, so a client can prepend anything it
//! likes and still be judged by the address Front Door saw. From an untrusted peer the header is
//! ignored entirely. The result ([`ClientIp`]) is what the per-IP limit, the IP filter and the
//! access log use; nothing else in the gateway reads `X-Forwarded-For`.

use crate::config::{ConfigError, bad};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

pub const VAR: &str = "GATEWAY_TRUSTED_PROXIES";
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// A chain longer than this is not a real proxy path; the walk stops there (at a trusted hop).
const MAX_HOPS: usize = 32;

/// The caller's address as the gateway judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// A CIDR list such as `10.0.0.0/8,192.0.2.7` (a bare address is a /32 or /128).
pub fn parse_networks(var: &'static str, text: &str) -> Result<Vec<IpNet>, ConfigError> {
    let networks: Vec<IpNet> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| bad(var, format!("`{item}` is not an IP address or CIDR range")))
        })
        .collect::<Result<_, _>>()?;
    if networks.is_empty() {
        return Err(bad(var, "needs at least one address or CIDR range"));
    }
    Ok(networks)
}

/// The proxies whose `X-Forwarded-For` is believed. Empty: none (the socket peer is the client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        parse_networks(VAR, text).map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // Several X-Forwarded-For headers are one list, in order.
        let hops: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .flat_map(|value| value.to_str().unwrap_or("").split(','))
            .collect();
        for hop in hops.iter().rev().take(MAX_HOPS) {
            // A hop a trusted proxy wrote that is no address: stop at the proxy that wrote it.
            let Some(ip) = hop_address(hop.trim()) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443` (proxies differ).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Outside the access log: puts the [`ClientIp`] of the call from `peer` into the request.
pub fn resolve(proxies: &TrustedProxies, peer: SocketAddr, request: &mut Request) -> ClientIp {
    let client = ClientIp(proxies.client(peer.ip(), request.headers()));
    request.extensions_mut().insert(client);
    client
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7").unwrap();
        let front_door = ip("10.1.2.3");
        // The client prepended a lie; Front Door appended what it saw; an inner proxy too.
        let h = headers(&["6.6.6.6, 203.0.113.9", "10.9.9.9"]);
        assert_eq!(proxies.client(front_door, &h), ip("203.0.113.9"));
        assert_eq!(
            proxies.client(front_door, &headers(&["[2001:db8::5]:443"])),
            ip("2001:db8::5")
        );
        assert_eq!(
            proxies.client(front_door, &headers(&["198.51.100.1:5000"])),
            ip("198.51.100.1")
        );
        // Only trusted hops: the left-most of them.
        assert_eq!(
            proxies.client(front_door, &headers(&["192.0.2.7"])),
            ip("192.0.2.7")
        );
        // No header: the proxy itself.
        assert_eq!(proxies.client(front_door, &HeaderMap::new()), front_door);
        // Garbage where a trusted proxy should have written: judged as that proxy.
        assert_eq!(
            proxies.client(front_door, &headers(&["203.0.113.9, junk"])),
            front_door
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_speak_for_anyone() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&["10.0.0.1, 127.0.0.1"]);
        assert_eq!(proxies.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
        assert_eq!(
            proxies.client(ip("::ffff:203.0.113.9"), &h),
            ip("203.0.113.9"),
            "IPv4-mapped peers are their IPv4 address"
        );
    }

    #[test]
    fn bad_lists_are_named() {
        for text in ["", " , ", "10.0.0.0/33", "example.com", "10.0.0.1-10.0.0.9"] {
            assert_eq!(TrustedProxies::parse(text).unwrap_err().var, VAR, "{text}");
        }
    }
}
