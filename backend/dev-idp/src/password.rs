//! Password hashing (argon2id) and B2C's "strong" password and account field rules.
//!
//! Hashing and verifying are deliberately slow: call them from a blocking thread, never while
//! holding the database lock.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// False for a wrong password and for a hash that does not parse.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// B2C's strong policy: 8–64 characters and at least three of the four character classes.
pub fn check_rules(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if !(8..=64).contains(&len) {
        return Err("The password must be between 8 and 64 characters.");
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|&&present| present).count() < 3 {
        return Err(
            "The password must have at least 3 of the following: a lowercase letter, an uppercase letter, a digit, a symbol.",
        );
    }
    Ok(())
}

/// A deliberately loose check: one `@`, a dotted domain, no spaces, at most 254 characters.
pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub fn check_display_name(name: &str) -> Result<(), &'static str> {
    let len = name.trim().chars().count();
    if len == 0 || len > 100 || name.chars().any(char::is_control) {
        return Err("Please enter a display name of 1 to 100 characters.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_verify_and_rules_hold() {
        let h = hash("Hello-B2C-2026!").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Hello-B2C-2026!", &h));
        assert!(!verify("hello-b2c-2026!", &h));
        assert!(!verify("x", "not a hash"));
        assert!(check_rules("short1A").is_err());
        assert!(check_rules("alllowercase1").is_err());
        assert!(check_rules("Lower-and-1").is_ok());
        assert!(plausible_email("a@b.co"));
        assert!(!plausible_email("a@b"));
        assert!(!plausible_email("a b@c.de"));
    }
}
