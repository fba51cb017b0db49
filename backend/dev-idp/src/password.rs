//! Password hashing (argon2id) and B2C's "strong" password and account field rules.
//!
//! Hashing and verifying are deliberately slow: call them from a blocking thread, never while
//! holding the database lock. Request handlers go through [`Hashing`], which bounds how many run
//! at once: each holds 19 MiB, and 48 concurrent unauthenticated posts once took the process from
//! 25 MiB to about 1 GB while the token and JWKS endpoints (on the same blocking pool) stalled.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shown on the form (503) when every hash slot is taken.
pub const BUSY_MESSAGE: &str =
    "The sign-in service is busy right now. Please wait a moment and try again.";

/// Requests that may wait for a slot, per slot: a short line absorbs a burst of real users (a
/// class signing up at once) without letting a flood queue without bound.
const WAITING_PER_SLOT: usize = 4;
/// How long one may wait in that line before being told to retry.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// The hash slots of the server: a fixed number of argon2id computations at once, and a short,
/// bounded line in front of them. A request that finds the line full, or waits too long, is told
/// to retry; a waiting request holds no more than its (size-limited) form.
pub struct Hashing {
    slots: Arc<Semaphore>,
    line: Arc<Semaphore>,
}

/// One taken slot; it is released when the computation ends, even if the client has gone.
pub struct HashSlot {
    _slot: OwnedSemaphorePermit,
    _place: OwnedSemaphorePermit,
}

/// Why a hash produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl Hashing {
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            line: Arc::new(Semaphore::new(slots * (1 + WAITING_PER_SLOT))),
        }
    }

    /// A slot, after a bounded wait; `None` when the server is busy.
    pub async fn slot(&self) -> Option<HashSlot> {
        let place = Arc::clone(&self.line).try_acquire_owned().ok()?;
        let slot = tokio::time::timeout(MAX_WAIT, Arc::clone(&self.slots).acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(HashSlot {
            _slot: slot,
            _place: place,
        })
    }
}

impl HashSlot {
    pub async fn verify(self, password: String, stored: String) -> Result<bool, HashError> {
        self.run(move || Ok(verify(&password, &stored))).await
    }

    pub async fn hash(self, password: String) -> Result<String, HashError> {
        self.run(move || hash(&password).map_err(|e| HashError::Failed(e.to_string())))
            .await
    }

    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        tokio::task::spawn_blocking(move || {
            let _held = self;
            work()
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))?
    }
}

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

    #[tokio::test]
    async fn slots_run_out_and_the_line_in_front_of_them_is_bounded() {
        let hashing = Arc::new(Hashing::new(1));
        let first = hashing.slot().await.unwrap();
        let waiting: Vec<_> = (0..WAITING_PER_SLOT)
            .map(|_| {
                let hashing = Arc::clone(&hashing);
                tokio::spawn(async move { hashing.slot().await.is_some() })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(hashing.slot().await.is_none(), "the line is full");
        drop(first);
        for waiter in waiting {
            assert!(
                waiter.await.unwrap(),
                "a waiter is served once the slot frees"
            );
        }
        assert!(hashing.slot().await.is_some(), "everything released");
    }

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
