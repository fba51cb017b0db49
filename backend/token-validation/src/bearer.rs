//! Taking the token out of `Authorization: Bearer <token>` (RFC 6750 §2.1).

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::ValidationError;

/// The token of the request's single `Authorization: Bearer …` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ValidationError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(ValidationError::MissingToken)?;
    if values.next().is_some() {
        // Two credentials: which one a proxy and we would pick could differ.
        return Err(ValidationError::NotBearer);
    }
    let value = value.to_str().map_err(|_| ValidationError::NotBearer)?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ValidationError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ValidationError::MissingToken);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn takes_the_token_whatever_the_scheme_case() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def.ghi"])),
            Ok("abc.def.ghi")
        );
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["BEARER   abc  "])), Ok("abc"));
    }

    #[test]
    fn refuses_missing_other_schemes_and_duplicates() {
        assert_eq!(
            bearer_token(&headers(&[])),
            Err(ValidationError::MissingToken)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer"])),
            Err(ValidationError::MissingToken)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer  "])),
            Err(ValidationError::MissingToken)
        );
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcjpwYXNz"])),
            Err(ValidationError::NotBearer)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearerabc"])),
            Err(ValidationError::NotBearer)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(ValidationError::NotBearer)
        );
    }
}
