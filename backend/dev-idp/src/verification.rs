//! Email verification codes: six random digits, mailed in the clear and stored only as an
//! HMAC under a secret of this instance, so the database alone does not give them away (a
//! plain hash of one of a million codes would). A restart therefore voids outstanding codes,
//! which only costs the user a "Send new code". Whoever can type an address can make the
//! provider store a row and write a mail, so unexpired codes are capped in all
//! (`[limits] outstanding_verification_codes`).

use aws_lc_rs::hmac;

/// How many codes one address may be sent per minute.
pub const SENDS_PER_MINUTE: i64 = 3;
/// Wrong codes tolerated per sent code; the next try needs a new code.
pub const TRIES_PER_CODE: u32 = 3;

pub struct Codes {
    key: hmac::Key,
}

impl Default for Codes {
    fn default() -> Self {
        Self::new()
    }
}

impl Codes {
    pub fn new() -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
        }
    }

    /// A fresh code: six uniformly random digits.
    pub fn draw() -> String {
        format!("{:06}", rand::random_range(0..1_000_000u32))
    }

    pub fn mac(&self, code: &str) -> Vec<u8> {
        hmac::sign(&self.key, code.as_bytes()).as_ref().to_vec()
    }

    /// Constant-time check of a typed code against a stored MAC.
    pub fn matches(&self, mac: &[u8], typed: &str) -> bool {
        hmac::verify(&self.key, typed.as_bytes(), mac).is_ok()
    }
}

/// Whether the text is a code's shape: exactly six ASCII digits.
pub fn well_formed(typed: &str) -> bool {
    typed.len() == 6 && typed.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_only_their_own_mac_matches() {
        let codes = Codes::new();
        let code = Codes::draw();
        assert!(well_formed(&code), "{code}");
        let mac = codes.mac(&code);
        assert!(codes.matches(&mac, &code));
        assert!(!codes.matches(&mac, "12345x"));
        assert!(!Codes::new().matches(&mac, &code), "another instance's key");
        assert!(!well_formed("12345") && !well_formed("1234567") && !well_formed("12 456"));
    }
}
