//! CSRF protection for the sign-in and sign-up forms: a signed double submit. The browser holds a
//! random id in an HttpOnly cookie; the form's hidden `csrf` field is HMAC-SHA256 of that id under
//! a secret drawn when the server starts, so only this server can issue a field that matches a
//! cookie. A plain double submit (cookie and field need only be equal) let any page that can plant
//! a cookie for the IdP's host — every other port of 127.0.0.1, since browsers do not separate
//! cookies by port — post a pair of its own choosing and swap the victim's sign-in for its account.
//! A post whose `Origin` is another origin is refused as well.

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use http_serve::cookie;

use crate::random_token;
use crate::session::set_cookie;

pub const COOKIE: &str = "devidp_csrf";
pub const FIELD: &str = "csrf";

/// Issues and checks the forms' tokens with this instance's secret.
pub struct Csrf {
    key: hmac::Key,
}

impl Default for Csrf {
    fn default() -> Self {
        Self::new()
    }
}

impl Csrf {
    /// A fresh secret: tokens of an earlier run (or another instance) do not verify.
    pub fn new() -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
        }
    }

    fn sign(&self, id: &str) -> String {
        B64.encode(hmac::sign(&self.key, id.as_bytes()).as_ref())
    }

    /// The token to embed in a form, and the cookie to set when the browser has none yet.
    pub fn token(&self, headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
        match cookie::value(headers, COOKIE).filter(|id| id.len() == 43) {
            Some(id) => (self.sign(id), None),
            None => {
                let id = random_token();
                let header = set_cookie(COOKIE, &id, 86400, secure);
                (self.sign(&id), Some(header))
            }
        }
    }

    /// True only when the cookie is present and the field is this server's signature of it.
    pub fn verify(&self, headers: &HeaderMap, submitted: Option<&str>) -> bool {
        let (Some(id), Some(field)) = (cookie::value(headers, COOKIE), submitted) else {
            return false;
        };
        let Ok(tag) = B64.decode(field) else {
            return false;
        };
        !id.is_empty() && hmac::verify(&self.key, id.as_bytes(), &tag).is_ok()
    }
}

/// False when the post names an `Origin` other than `own` (`scheme://host:port`), `null` (a
/// sandboxed or opaque page) included. Browsers send it on every form post; clients that send none
/// (scripts, old browsers) rely on the token alone.
pub fn same_origin(headers: &HeaderMap, own: &str) -> bool {
    headers
        .get(header::ORIGIN)
        .is_none_or(|origin| origin.as_bytes() == own.as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_cookie(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={id}")).unwrap(),
        );
        headers
    }

    #[test]
    fn only_this_instances_signature_of_the_cookie_verifies() {
        let csrf = Csrf::new();
        let (token, cookie) = csrf.token(&HeaderMap::new(), false);
        let cookie = cookie.unwrap();
        let id = cookie.to_str().unwrap().split(['=', ';']).nth(1).unwrap();
        let headers = with_cookie(id);
        assert!(csrf.verify(&headers, Some(&token)));
        // The same cookie is signed the same way on the next page.
        assert_eq!(csrf.token(&headers, false), (token.clone(), None));
        assert!(
            !csrf.verify(&headers, Some(id)),
            "cookie == field is no longer enough"
        );
        assert!(
            !Csrf::new().verify(&headers, Some(&token)),
            "another instance"
        );
        assert!(!csrf.verify(&with_cookie(&random_token()), Some(&token)));
        assert!(!csrf.verify(&headers, None));
        assert!(!csrf.verify(&headers, Some("not base64 !")));
    }
}
