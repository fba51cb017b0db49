//! Proof Key for Code Exchange (RFC 7636), S256 only: public clients must not use `plain`.
//! oauth2 provides the verifier type; the challenge is SHA-256 (sha2) in base64url without
//! padding (base64), RFC 7636 §4.2, computed here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::PkceCodeVerifier;
use sha2::{Digest, Sha256};

/// The only `code_challenge_method` this client sends.
pub const METHOD: &str = "S256";

/// A fresh verifier (32 random bytes from the browser's CSPRNG, base64url) and its S256 challenge;
/// `None` if there is no CSPRNG to draw from.
pub fn new_pair() -> Option<(String, PkceCodeVerifier)> {
    let verifier = PkceCodeVerifier::new(crate::secret::new()?);
    Some((s256(&verifier), verifier))
}

/// The S256 challenge of a stored verifier, or `None` if the verifier is not 43..=128 characters
/// of the RFC's alphabet (§4.1): a tampered sessionStorage must not become a request.
pub fn challenge_for(verifier: &PkceCodeVerifier) -> Option<String> {
    let secret = verifier.secret();
    let alphabet_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    ((43..=128).contains(&secret.len()) && alphabet_ok).then(|| s256(verifier))
}

/// `BASE64URL(SHA256(ASCII(code_verifier)))`.
fn s256(verifier: &PkceCodeVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oauth2::PkceCodeChallenge;

    /// RFC 7636 Appendix B. (Issue 7 quotes the challenge as `…URWbuiGvHoadoc`; the RFC's and
    /// SHA-256's answer is `…URWbuGJSstw-cM`, which this test pins.)
    #[test]
    fn rfc7636_appendix_b_pair() {
        let verifier = PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        let challenge = challenge_for(&verifier).unwrap();
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn fresh_pairs_are_s256_as_oauth2_computes_them_and_differ() {
        let (challenge, verifier) = new_pair().unwrap();
        assert_eq!(challenge_for(&verifier).unwrap(), challenge);
        let by_oauth2 = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        assert_eq!(by_oauth2.as_str(), challenge);
        assert_eq!(by_oauth2.method().as_str(), METHOD);
        assert_eq!(verifier.secret().len(), 43);
        let (_, other) = new_pair().unwrap();
        assert_ne!(verifier.secret(), other.secret());
    }

    #[test]
    fn refuses_verifiers_outside_the_rfc_shape() {
        for bad in ["short", &"a".repeat(129), &format!("{}+", "a".repeat(43))] {
            assert!(challenge_for(&PkceCodeVerifier::new(bad.to_string())).is_none());
        }
    }
}
