//! CSRF protection for the sign-in and sign-up forms (double-submit): a random token in an
//! HttpOnly cookie must equal the hidden `csrf` field. Another site can neither read nor set
//! the cookie, so it cannot forge a valid post (which would sign a victim into its account).

use axum::http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use crate::random_token;
use crate::session::{cookie, set_cookie};

pub const COOKIE: &str = "devidp_csrf";
pub const FIELD: &str = "csrf";

/// The token to embed in a form, and the cookie to set when the browser has none yet.
pub fn token(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    match cookie(headers, COOKIE).filter(|t| t.len() == 43) {
        Some(existing) => (existing, None),
        None => {
            let fresh = random_token();
            let header = set_cookie(COOKIE, &fresh, 86400, secure);
            (fresh, Some(header))
        }
    }
}

/// True only when the cookie is present and the submitted field equals it.
pub fn verify(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (cookie(headers, COOKIE), submitted) {
        (Some(expected), Some(got)) if !expected.is_empty() => {
            bool::from(expected.as_bytes().ct_eq(got.as_bytes()))
        }
        _ => false,
    }
}
