//! The ID token checks of OpenID Connect Core §3.1.3.7 that matter in a browser: `iss`, `aud`,
//! `exp` and `nonce`.
//!
//! The signature is deliberately not verified here: the token comes straight from the token
//! endpoint, a host in `knownAuthorities`, in the answer to our own TLS request (Core §3.1.3.7
//! item 6 allows exactly this), and the SPA uses it only to greet the user and as the sign-out
//! hint. Every API call is authorised by the gateway and the function, which verify the access
//! token's signature.

use crate::json::Json;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

/// Leeway for clocks that disagree (the browser's clock is the user's).
pub const CLOCK_SKEW_SECONDS: u64 = 120;

/// How the `nonce` claim is checked.
#[derive(Debug, Clone, Copy)]
pub enum NonceRule<'a> {
    /// After sign-in: must be present and equal to the nonce this tab sent.
    Required(&'a str),
    /// After a refresh: providers may omit it; if present it must be the original one (Core §12.2).
    AbsentOr(&'a str),
}

/// The claims, borrowed from the decoded payload.
#[derive(Debug)]
struct Claims<'a> {
    iss: &'a str,
    aud: Vec<&'a str>,
    exp: u64,
    nbf: Option<u64>,
    azp: Option<&'a str>,
    nonce: Option<&'a str>,
    name: Option<&'a str>,
    emails: Option<Vec<&'a str>>,
    preferred_username: Option<&'a str>,
    sub: Option<&'a str>,
}

impl<'a> Claims<'a> {
    /// Any claim of the wrong type makes the whole token unreadable.
    fn from_json(doc: &'a Json) -> Result<Self, String> {
        Ok(Self {
            iss: doc.string("iss")?,
            aud: audience(doc).ok_or_else(|| "aud".to_owned())?,
            exp: doc.optional_u64("exp")?.ok_or_else(|| "exp".to_owned())?,
            nbf: doc.optional_u64("nbf")?,
            azp: doc.optional_string("azp")?,
            nonce: doc.optional_string("nonce")?,
            name: doc.optional_string("name")?,
            emails: match doc.get("emails") {
                None | Some(Json::Null) => None,
                Some(emails) => Some(emails.as_strings().ok_or_else(|| "emails".to_owned())?),
            },
            preferred_username: doc.optional_string("preferred_username")?,
            sub: doc.optional_string("sub")?,
        })
    }
}

/// `aud` is a string or an array of strings (Core §2).
fn audience(doc: &Json) -> Option<Vec<&str>> {
    match doc.get("aud")? {
        Json::String(one) => Some(vec![one.as_str()]),
        many => many.as_strings(),
    }
}

/// What the page needs from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `name`, else the first of `emails`, else `preferred_username`, else `sub`.
    pub name: String,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenError {
    Malformed,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    NonceMissing,
    NonceMismatch,
}

impl fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "it is not a readable JWT",
            Self::WrongIssuer => "it was issued by another issuer",
            Self::WrongAudience => "it was issued for another application",
            Self::Expired => "it has expired",
            Self::NotYetValid => "it is not valid yet",
            Self::NonceMissing => "it carries no nonce",
            Self::NonceMismatch => "its nonce does not match this sign-in",
        })
    }
}

/// Decodes the payload and applies the checks; `now` is seconds since the epoch.
pub fn verify(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: NonceRule<'_>,
    now: u64,
) -> Result<Identity, IdTokenError> {
    let payload = decode(id_token).ok_or(IdTokenError::Malformed)?;
    let claims = Claims::from_json(&payload).map_err(|_| IdTokenError::Malformed)?;
    if claims.iss != issuer {
        return Err(IdTokenError::WrongIssuer);
    }
    // Core §3.1.3.7 items 3-5: ours among the audiences, and with several the authorized party
    // must be us.
    let audience_ok =
        claims.aud.contains(&client_id) && (claims.aud.len() == 1 || claims.azp == Some(client_id));
    if !audience_ok {
        return Err(IdTokenError::WrongAudience);
    }
    if claims.exp.saturating_add(CLOCK_SKEW_SECONDS) <= now {
        return Err(IdTokenError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECONDS))
    {
        return Err(IdTokenError::NotYetValid);
    }
    match (nonce, claims.nonce) {
        (NonceRule::Required(_), None) => return Err(IdTokenError::NonceMissing),
        (NonceRule::Required(want) | NonceRule::AbsentOr(want), Some(got)) if got != want => {
            return Err(IdTokenError::NonceMismatch);
        }
        _ => {}
    }
    let name = claims
        .name
        .filter(|n| !n.trim().is_empty())
        .or_else(|| claims.emails.and_then(|e| e.first().copied()))
        .or(claims.preferred_username)
        .or(claims.sub)
        .unwrap_or("user")
        .to_owned();
    Ok(Identity {
        name,
        expires_at: claims.exp,
    })
}

/// The payload of a compact JWT, parsed.
pub(crate) fn decode(jwt: &str) -> Option<Json> {
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    Json::parse(text)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub const ISSUER: &str = "http://127.0.0.1:7010/3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b/v2.0/";
    pub const CLIENT: &str = "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b";
    pub const NOW: u64 = 1_795_000_000;

    pub fn jwt(claims: serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    pub fn good_claims() -> serde_json::Value {
        serde_json::json!({
            "iss": ISSUER, "aud": CLIENT, "exp": NOW + 3600, "nbf": NOW - 5, "iat": NOW - 5,
            "nonce": "n-1", "name": "Alice Example", "sub": "user-1",
            "emails": ["alice@example.com"]
        })
    }

    fn check(claims: serde_json::Value, nonce: NonceRule<'_>) -> Result<Identity, IdTokenError> {
        verify(&jwt(claims), ISSUER, CLIENT, nonce, NOW)
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut claims = good_claims();
        claims[key] = value;
        claims
    }

    #[test]
    fn a_good_id_token_yields_the_name() {
        let identity = check(good_claims(), NonceRule::Required("n-1")).unwrap();
        assert_eq!(identity.name, "Alice Example");
        assert_eq!(identity.expires_at, NOW + 3600);
        let mut no_name = good_claims();
        no_name.as_object_mut().unwrap().remove("name");
        assert_eq!(
            check(no_name, NonceRule::Required("n-1")).unwrap().name,
            "alice@example.com"
        );
    }

    #[test]
    fn wrong_or_missing_nonce_is_refused() {
        assert_eq!(
            check(good_claims(), NonceRule::Required("n-2")).unwrap_err(),
            IdTokenError::NonceMismatch
        );
        let mut no_nonce = good_claims();
        no_nonce.as_object_mut().unwrap().remove("nonce");
        assert_eq!(
            check(no_nonce.clone(), NonceRule::Required("n-1")).unwrap_err(),
            IdTokenError::NonceMissing
        );
        // A refreshed ID token may omit the nonce, but may not carry another one.
        assert!(check(no_nonce, NonceRule::AbsentOr("n-1")).is_ok());
        assert_eq!(
            check(good_claims(), NonceRule::AbsentOr("n-2")).unwrap_err(),
            IdTokenError::NonceMismatch
        );
    }

    #[test]
    fn wrong_issuer_audience_or_time_is_refused() {
        let rule = NonceRule::Required("n-1");
        assert_eq!(
            check(with("iss", "https://evil.example/v2.0/".into()), rule).unwrap_err(),
            IdTokenError::WrongIssuer
        );
        assert_eq!(
            check(
                with("aud", "9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e".into()),
                rule
            )
            .unwrap_err(),
            IdTokenError::WrongAudience
        );
        let shared_aud = serde_json::json!([CLIENT, "someone-else"]);
        assert_eq!(
            check(with("aud", shared_aud.clone()), rule).unwrap_err(),
            IdTokenError::WrongAudience
        );
        let mut with_azp = with("aud", shared_aud);
        with_azp["azp"] = CLIENT.into();
        assert!(check(with_azp, rule).is_ok());
        assert_eq!(
            check(with("exp", (NOW - CLOCK_SKEW_SECONDS).into()), rule).unwrap_err(),
            IdTokenError::Expired
        );
        assert!(check(with("exp", (NOW - CLOCK_SKEW_SECONDS + 1).into()), rule).is_ok());
        assert_eq!(
            check(with("nbf", (NOW + 3000).into()), rule).unwrap_err(),
            IdTokenError::NotYetValid
        );
        assert_eq!(
            check(with("exp", "tomorrow".into()), rule).unwrap_err(),
            IdTokenError::Malformed
        );
        for (claim, bad) in [
            ("aud", serde_json::json!(7)),
            ("aud", serde_json::json!([CLIENT, 7])),
            ("exp", serde_json::json!(1.5)),
            ("nonce", serde_json::json!(["n-1"])),
            ("emails", serde_json::json!("alice@example.com")),
        ] {
            assert_eq!(
                check(with(claim, bad), rule).unwrap_err(),
                IdTokenError::Malformed,
                "{claim}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "a.b",
            "a.!!!.c",
            "a.b.c.d",
            &jwt(serde_json::json!({"iss": ISSUER})),
        ] {
            assert_eq!(
                verify(bad, ISSUER, CLIENT, NonceRule::Required("n-1"), NOW).unwrap_err(),
                IdTokenError::Malformed,
                "{bad}"
            );
        }
    }
}
