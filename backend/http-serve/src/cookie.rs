//! Reading a cookie from a request (RFC 6265 §5.4's `Cookie` header: `name=value` pairs separated
//! by `;`, possibly over several header lines), once for the servers that set their own.

use axum::http::{HeaderMap, header};

/// The value of the first cookie called exactly `name`, if the request carries one.
pub fn value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(header::COOKIE, HeaderValue::from_str(line).unwrap());
        }
        map
    }

    #[test]
    fn finds_the_named_cookie_among_pairs_and_lines() {
        let h = headers(&["a=1; session=abc=def", "other=2"]);
        assert_eq!(value(&h, "session"), Some("abc=def"));
        assert_eq!(value(&h, "other"), Some("2"));
        assert_eq!(value(&h, "a"), Some("1"));
    }

    #[test]
    fn names_match_exactly_and_malformed_pairs_are_skipped() {
        let h = headers(&["Session=x; sessionx=y; session; =z"]);
        assert_eq!(value(&h, "session"), None);
        assert_eq!(value(&headers(&[]), "session"), None);
        assert_eq!(value(&headers(&["session="]), "session"), Some(""));
    }
}
