//! Content negotiation: which of the function's two representations (JSON, plain text) the
//! caller's `Accept` ranks higher.

use axum::http::{HeaderMap, header};

/// Whether `Accept` ranks `text/plain` above `application/json` (JSON wins ties and `*/*`).
/// Several `Accept` headers are one list, in order.
pub fn prefers_text(headers: &HeaderMap) -> bool {
    let text = quality(headers, "text", "plain");
    text > 0.0 && text > quality(headers, "application", "json")
}

/// The `q` of the most specific range of `Accept` that matches `kind/subtype`, 0 when none does.
fn quality(headers: &HeaderMap, kind: &str, subtype: &str) -> f32 {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let (range_kind, range_subtype) = parts.next()?.split_once('/')?;
            // Specific ranges beat wildcards: rank by (specificity, q).
            let specificity = match (range_kind, range_subtype) {
                (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) => 2,
                (k, "*") if k.eq_ignore_ascii_case(kind) => 1,
                ("*", "*") => 0,
                _ => return None,
            };
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((specificity, q))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map_or(0.0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for value in values {
            h.append(header::ACCEPT, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn negotiates_text_only_when_preferred() {
        assert!(prefers_text(&accept(&["text/plain"])));
        assert!(prefers_text(&accept(&[
            "text/plain, application/json;q=0.5"
        ])));
        assert!(prefers_text(&accept(&["text/*"])));
        assert!(prefers_text(&accept(&["Text/Plain"])));
        assert!(!prefers_text(&accept(&["application/json"])));
        assert!(!prefers_text(&accept(&["*/*"])));
        assert!(!prefers_text(&accept(&[
            "text/plain;q=0.5, application/json"
        ])));
        assert!(!prefers_text(&accept(&["text/plain;q=0"])));
        assert!(!prefers_text(&HeaderMap::new()));
        assert!(!prefers_text(&accept(&["text/html"])));
    }

    #[test]
    fn several_accept_headers_are_one_list() {
        assert!(prefers_text(&accept(&[
            "application/json;q=0.5",
            "text/plain"
        ])));
        assert!(!prefers_text(&accept(&[
            "text/plain;q=0.5",
            "application/json"
        ])));
    }
}
