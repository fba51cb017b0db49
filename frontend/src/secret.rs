//! Fresh secrets for a sign-in (state, nonce, PKCE verifier): 32 bytes from a CSPRNG, base64url
//! without padding, 43 characters — what oauth2's `new_random` constructors make. In the browser
//! the bytes come straight from `crypto.getRandomValues`, which keeps `rand`'s ChaCha generator
//! (seeded from that same source) out of the wasm.

#[cfg(target_arch = "wasm32")]
pub fn new() -> Option<String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = [0u8; 32];
    web_sys::window()?
        .crypto()
        .ok()?
        .get_random_values_with_u8_array(&mut bytes)
        .ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Natively (the unit tests) oauth2's own generator, which draws from the OS.
#[cfg(not(target_arch = "wasm32"))]
pub fn new() -> Option<String> {
    Some(oauth2::CsrfToken::new_random_len(32).into_secret())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_are_43_base64url_characters_and_differ() {
        let (a, b) = (new().unwrap(), new().unwrap());
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }
}
